"""Reading the listing page (web/listing_page.py) as a browser shows it:
its member rows, its breadcrumbs, and any element a hostile name could
have injected. Used on the server's bytes (in memory) and on the DOM that
headless Chromium dumps (tests/test_browser.py)."""
import lxml.html

# elements the page never has: any of them in a listing is an injection
FOREIGN = ("script", "img", "iframe", "object", "embed", "svg", "math", "form", "input",
           "link", "base", "video", "audio", "source", "b", "i")


def parse(page):
    return lxml.html.document_fromstring(page)


def _class(name):
    return "contains(concat(' ', normalize-space(@class), ' '), ' %s ')" % name


def rows(doc):
    """[{name, kind, size, modified, href, text, shown_kind, routes}] of the
    member rows, in page order."""
    found = []
    for tr in doc.xpath("//tbody/tr[%s]" % _class("member")):
        link = tr.xpath("td[%s]/a" % _class("name"))[0]
        found.append({
            "name": tr.get("data-name"),
            "kind": tr.get("data-kind"),
            "size": int(tr.get("data-size")),
            "modified": int(tr.get("data-modified")),
            "href": link.get("href"),
            "text": link.text_content(),
            "shown_kind": tr.xpath("td[%s]" % _class("kind"))[0].text_content(),
            "routes": [tuple(c.text_content() for c in li.xpath("code"))
                       for li in tr.xpath(".//ul[%s]/li" % _class("routes"))],
        })
    return found


def crumbs(doc):
    """[(label, href or None)] of the breadcrumbs."""
    return [(el.text_content(), el.get("href")) for el in doc.xpath("//nav/a | //nav/span")]


def foreign(doc):
    """Elements no listing has (what an injection would add), a meta other
    than the charset and viewport, and every attribute named on*."""
    found = [el.tag for tag in FOREIGN for el in doc.iter(tag)]
    found += ["meta" for el in doc.iter("meta") if el.get("http-equiv") is not None]
    found += ["%s@%s" % (el.tag, name) for el in doc.iter() if isinstance(el.tag, str)
              for name in el.attrib if name.lower().startswith("on")]
    return found
