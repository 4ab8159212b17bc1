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
    ones it uses, and the xml:lang in scope (lxml drops an inherited one)."""
    lang = lang_in_scope(el)
    el = copy.deepcopy(el)  # a copy sheds the unused declarations of ancestors
    el.tail = None
    if lang is not None and el.get(XML_LANG) is None:
        el.set(XML_LANG, lang)
    return etree.tostring(el, encoding="utf-8")


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
