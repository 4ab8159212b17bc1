"""The page a person sees when a browser GETs a collection: breadcrumbs, and
a table of the members (name, kind, size, modification time, a link),
sorted by any column through the query (``?sort=size&order=desc``).

Pure: members in, bytes out. Every name comes from the disk or a client, so
each is escaped for its place (text and attribute values with
``html.escape``; hrefs percent-encoded segment by segment, then escaped),
and the answer's Content-Security-Policy allows no script at all and only
this page's own stylesheet (by its hash): a name can neither add markup
nor run anything.

The page has a validator of its own (``etag``): a digest of the
collection's ETag, every member's name and ETag, the sort, and this
module's version; any member added, removed or changed changes it.
"""
import base64
import datetime
import hashlib
from html import escape
from urllib.parse import quote

from lxml import etree

from ..dav.xmlutil import PNS
from .state import quote_segment

VERSION = "1"  # of the page's markup: part of its ETag
SORTS = ("name", "kind", "size", "modified")
ORDERS = ("asc", "desc")
DEFAULT = ("name", "asc")
KINDS = {"collection": "folder", "box": "folder", "service": "service", "src": "folder",
         "file": "file"}
_KIND_RANK = {"folder": 0, "service": 1, "file": 2}
SERVICE = (PNS, "service")
_PATH = "{%s}path" % PNS
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)

STYLE = (
    "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}"
    "table{border-collapse:collapse;min-width:50%}"
    "th,td{padding:.25em .8em;text-align:left;border-bottom:1px solid #ddd;"
    "vertical-align:top}td.size{text-align:right}th a{color:inherit}"
    "ul.routes{margin:.2em 0;padding-left:1.2em;font-size:90%}")
CSP = ("default-src 'none'; style-src 'sha256-%s'; img-src 'none'; base-uri 'none'; "
       "form-action 'none'; frame-ancestors 'none'" % base64.b64encode(
           hashlib.sha256(STYLE.encode("ascii")).digest()).decode("ascii"))
HEADERS = {
    "Content-Type": b"text/html; charset=utf-8",
    "Content-Security-Policy": CSP.encode("ascii"),
    "X-Content-Type-Options": b"nosniff",
    "Referrer-Policy": b"no-referrer",
    "Cache-Control": b"private, no-cache",
    "Vary": b"Accept",
}


def wants_html(accept):
    """Does an ``Accept`` header ask for a page (``text/html`` or XHTML,
    not refused with ``q=0``)?"""
    for part in (accept or "").lower().split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if media in ("text/html", "application/xhtml+xml"):
            if not any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000")
                       for p in params):
                return True
    return False


def sort_of(args):
    """(sort, order) from the query (twisted's ``request.args``); an unknown
    or missing value falls back to the default."""
    def first(name):
        values = args.get(name.encode("ascii")) or [b""]
        return values[0].decode("latin-1").strip().lower()

    sort, order = first("sort"), first("order")
    return (sort if sort in SORTS else DEFAULT[0], order if order in ORDERS else DEFAULT[1])


def kind_of(info):
    return KINDS.get(info.kind, "file")


def _key(sort):
    if sort == "kind":
        return lambda m: (_KIND_RANK[kind_of(m)], m.name.casefold(), m.name)
    if sort == "size":
        return lambda m: (m.size if m.kind == "file" else -1, m.name.casefold(), m.name)
    if sort == "modified":
        return lambda m: (m.modified, m.name.casefold(), m.name)
    return lambda m: (m.name.casefold(), m.name)


def ordered(members, sort, order):
    return sorted(members, key=_key(sort), reverse=order == "desc")


def etag(info, members, sort, order):
    """The page's own strong ETag."""
    digest = hashlib.sha256()
    for part in (VERSION, info.etag, sort, order):
        digest.update(part.encode("utf-8") + b"\0")
    for m in members:
        digest.update(m.name.encode("utf-8", "surrogatepass") + b"\0" + m.etag.encode() + b"\0")
    return '"page-%s"' % digest.hexdigest()[:40]


def routes(info):
    """[(name, src)] of a service collection's ``p:service``; [] when it has
    none or it cannot be read."""
    value = info.props.get(SERVICE)
    if not value:
        return []
    try:
        element = etree.fromstring(value, _PARSER)
    except etree.XMLSyntaxError:
        return []
    return [(p.get("name") or "", p.get("src") or "") for p in element.iter(_PATH)]


def human_size(size):
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return "%d %s" % (size, unit) if unit == "bytes" else "%.1f %s" % (size, unit)
        size /= 1024


def _time(millis):
    t = datetime.datetime.fromtimestamp(millis / 1000, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ"), t.strftime("%Y-%m-%d %H:%M:%S UTC")


def _header(column, label, sort, order):
    """A column heading linking to this column's sort (the other order when
    it is the current one)."""
    current = column == sort
    following = "desc" if current and order == "asc" else "asc"
    aria = ' aria-sort="%s"' % ("ascending" if order == "asc" else "descending") if current else ""
    mark = (" \u25b2" if order == "asc" else " \u25bc") if current else ""
    href = "?sort=%s&order=%s" % (column, following)
    return '<th%s><a href="%s">%s%s</a></th>' % (aria, escape(href), label, mark)


def _segment(name):
    """A name as an href segment; a name from the disk that is not UTF-8
    (undecodable bytes kept as surrogates) is encoded byte for byte."""
    try:
        return quote_segment(name)
    except UnicodeEncodeError:
        return quote(name, safe="", errors="surrogateescape")


def _row(base, m):
    kind = kind_of(m)
    name = m.name + ("/" if m.is_collection else "")
    href = base + _segment(m.name) + ("/" if m.is_collection else "")
    iso, shown = _time(m.modified)
    size = '<td class="size" title="%d bytes">%s</td>' % (m.size, human_size(m.size)) \
        if m.kind == "file" else '<td class="size">\u2014</td>'
    extra = ""
    if m.kind == "service":
        items = "".join("<li><code>%s</code> \u2192 <code>%s</code></li>" % (escape(n), escape(s))
                        for n, s in routes(m))
        extra = '<ul class="routes">%s</ul>' % items if items else ""
    return ('<tr class="member" data-name="%s" data-kind="%s" data-size="%d" data-modified="%d">'
            '<td class="name"><a href="%s">%s</a>%s</td><td class="kind">%s</td>%s'
            '<td class="modified"><time datetime="%s">%s</time></td></tr>' % (
                escape(m.name), kind, m.size if m.kind == "file" else -1, m.modified,
                escape(href), escape(name), extra, kind, size, iso, escape(shown)))


def render(crumbs, base, members, sort, order):
    """The page, as bytes. ``crumbs``: [(label, href or None)] from the cell
    down to this collection; ``base``: this collection's href (percent-
    encoded, with its trailing slash); ``members``: their Info, in any order."""
    title = "/".join(label for label, _ in crumbs) + "/"
    nav = " / ".join(
        '<a href="%s">%s</a>' % (escape(href), escape(label)) if href
        else "<span>%s</span>" % escape(label) for label, href in crumbs)
    heads = "".join(_header(c, c, sort, order) for c in SORTS)
    rows = "".join(_row(base, m) for m in ordered(members, sort, order))
    empty = "" if members else '<p class="empty">This collection is empty.</p>'
    page = ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            "<title>%s</title><style>%s</style></head><body>"
            '<nav aria-label="breadcrumbs">%s</nav><h1>%s</h1>'
            '<table><thead><tr>%s</tr></thead><tbody>%s</tbody></table>%s'
            "<footer><p>%d members</p></footer></body></html>" % (
                escape(title), STYLE, nav, escape(crumbs[-1][0]) if crumbs else "", heads, rows,
                empty, len(members)))
    return page.encode("utf-8", "replace")
