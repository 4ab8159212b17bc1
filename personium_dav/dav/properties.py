"""Dead-property instructions: what PROPPATCH and an extended MKCOL ask,
checked before anything is stored (all or nothing)."""
from . import service
from .errors import DavError
from .live import PROTECTED
from .xmlutil import PNS, children, freeze, split

SERVICE = (PNS, "service")


def instructions(root):
    """[(op, element)] in document order from a ``D:propertyupdate``."""
    if root.tag != "{DAV:}propertyupdate":
        raise DavError("PR400-DV-0001")
    ops = []
    for op in children(root):
        if op.tag not in ("{DAV:}set", "{DAV:}remove"):
            raise DavError("PR400-DV-0002")
        props = children(op)
        if not props or any(p.tag != "{DAV:}prop" for p in props):
            raise DavError("PR400-DV-0002")
        kind = "set" if op.tag == "{DAV:}set" else "remove"
        ops.extend((kind, el) for p in props for el in children(p))
    if not ops:
        raise DavError("PR400-DV-0001")
    return ops


def refusal(op, el):
    """The precondition a property instruction fails, or None. A bad
    ``p:service`` refuses the whole request (400) instead."""
    key = split(el.tag)
    if key in PROTECTED:
        return "cannot-modify-protected-property"
    if key == SERVICE and op == "set":
        service.validate(el)
    return None


def frozen(elements, config=None):
    """{key: value bytes} of property elements, within the limits."""
    values = {split(el.tag): freeze(el) for el in elements}
    if config is not None:
        check_limits(len(elements), values.items(), config)
    return values


def check_limits(count, values, config):
    """400 PR400-DV-0006 for too many properties in one request, or for a
    property value (serialised) over ``max_prop_value`` bytes."""
    if count > config.max_props_per_request:
        raise DavError("PR400-DV-0006", "more than %d properties in one request"
                       % config.max_props_per_request)
    for (ns, local), value in values:
        if value is not None and len(value) > config.max_prop_value:
            raise DavError("PR400-DV-0006", "value of {%s}%s is larger than %d bytes"
                           % (ns, local, config.max_prop_value))
