"""XML in and out: the hardened parser, qualified names, the D:-prefixed writer.

Request bodies are parsed by lxml with entity resolution, network access and
DTD loading off, and any DOCTYPE is refused outright: lxml would otherwise
expand internal entities (billion laughs). Property values are kept as
self-contained serialised elements (bytes), so a PROPFIND only joins them.
"""
import copy
from xml.sax.saxutils import escape, quoteattr

from lxml import etree

from .errors import DavError

DAV = "DAV:"
PNS = "urn:x-personium:xmlns"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

MAX_DEPTH = 64

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_blank_text=False,
)


def parse(body, max_depth=MAX_DEPTH):
    """Parse a request body; any DOCTYPE, malformed XML or deep nesting is 400."""
    if not body or not body.strip():
        raise DavError("PR400-DV-0001")
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as e:
        if b"<!DOCTYPE" not in body and "depth" in str(e).lower():
            raise _too_deep_error(max_depth)  # libxml2's own cap (256)
        raise DavError("PR400-DV-0001")
    except ValueError:
        raise DavError("PR400-DV-0001")
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise DavError("PR400-DV-0001")
    if _too_deep(root, max_depth):
        raise _too_deep_error(max_depth)
    return root


def _too_deep_error(max_depth):
    return DavError("PR400-DV-0006", "elements nested deeper than %d" % max_depth)


def _too_deep(root, max_depth):
    stack = [(root, 1)]
    while stack:
        el, depth = stack.pop()
        if depth > max_depth:
            return True
        stack.extend((c, depth + 1) for c in el)
    return False


def split(tag):
    """'{ns}local' -> (ns, local); a tag with no namespace -> ('', local)."""
    if tag[0] == "{":
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag


def is_element(node):
    return isinstance(node.tag, str)


def children(el):
    """Element children only (no comments or processing instructions)."""
    return [c for c in el if is_element(c)]


def has_text(el):
    """True when the element holds non-whitespace text directly."""
    if el.text and el.text.strip():
        return True
    return any(c.tail and c.tail.strip() for c in el)


def lang_in_scope(el):
    while el is not None:
        lang = el.get(XML_LANG)
        if lang is not None:
            return lang
        el = el.getparent()
    return None


def freeze(el):
    """Serialise a property element alone: its own namespace declarations, the
    ones it uses, and the xml:lang in scope (lxml drops an inherited one).
    ``DAV:`` is written as ``D:`` in it, as in the rest of every answer
    (docs/behaviour.md §7), whatever prefix the client used."""
    lang = lang_in_scope(el)
    el = copy.deepcopy(el)  # a copy sheds the unused declarations of ancestors
    el.tail = None
    if lang is not None and el.get(XML_LANG) is None:
        el.set(XML_LANG, lang)
    out = etree.tostring(el, encoding="utf-8")
    if (b'"DAV:"' in out or b"xmlns:D=" in out) and _other_d_binding(el):
        out = etree.tostring(_d_prefixed(el), encoding="utf-8")
    return out


def _other_d_binding(el):
    """True when DAV: is bound to anything but D (a default namespace
    too), or D to anything but DAV:, somewhere in ``el``."""
    for node in el.iter():
        if is_element(node):
            for prefix, uri in node.nsmap.items():
                if (uri == DAV) != (prefix == "D"):
                    return True
    return False


def _d_prefixed(el, parent=None, inherited=None):
    """A copy of ``el`` with the same names, attributes, text and children,
    whose declarations bind DAV: to D and D to nothing else (lxml makes a
    fresh prefix for a namespace the client had bound to D)."""
    nsmap = {prefix: uri for prefix, uri in el.nsmap.items()
             if uri != DAV and prefix != "D" and (inherited or {}).get(prefix) != uri}
    if parent is None:
        new = etree.Element(el.tag, nsmap=dict(nsmap, D=DAV))
    else:
        new = etree.SubElement(parent, el.tag, nsmap=nsmap)
    for name, value in el.attrib.items():
        new.set(name, value)
    new.text, new.tail = el.text, el.tail
    for child in el:
        if is_element(child):
            _d_prefixed(child, new, el.nsmap)
        else:  # a comment or processing instruction, with its tail
            new.append(copy.copy(child))
    return new


def empty_element(ns, local):
    """An empty element for a property name, DAV: always as D:."""
    if ns == DAV:
        return "<D:%s/>" % local
    if not ns:
        return '<%s xmlns=""/>' % local
    return "<X:%s xmlns:X=%s/>" % (local, quoteattr(ns))


def text_element(ns, local, text):
    """A property element with escaped text (live properties)."""
    if ns == DAV:
        return "<D:%s>%s</D:%s>" % (local, escape(text), local)
    return "<X:%s xmlns:X=%s>%s</X:%s>" % (local, quoteattr(ns), escape(text), local)


XML_HEAD = b'<?xml version="1.0" encoding="utf-8"?>\n'
MULTISTATUS_OPEN = XML_HEAD + b'<D:multistatus xmlns:D="DAV:">'
MULTISTATUS_CLOSE = b"</D:multistatus>"
