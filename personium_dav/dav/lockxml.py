"""The XML of WebDAV locks (RFC 4918 §14): ``D:activelock`` and
``D:lockdiscovery``, as PROPFIND and LOCK answers show them.
``href(names, collection)`` writes a lock root's href."""
from .xmlutil import escape


def activelock(href, lock, now):
    remaining = max(0, int(lock.expires - now + 0.999))
    return (
        "<D:activelock><D:locktype><D:write/></D:locktype>"
        "<D:lockscope><D:%s/></D:lockscope><D:depth>%s</D:depth>%s"
        "<D:timeout>Second-%d</D:timeout>"
        "<D:locktoken><D:href>%s</D:href></D:locktoken>"
        "<D:lockroot><D:href>%s</D:href></D:lockroot></D:activelock>"
        % (lock.scope, lock.depth, lock.owner, remaining, escape(lock.token),
           escape(href(list(lock.root), lock.collection))))


def discovery(href, locks, names, now, first=()):
    """The ``D:lockdiscovery`` of the URL at ``names``: every live lock
    covering it (those of ``first`` first), or None when there is none."""
    covering = [lk for lk in locks if lk.covers(names)]
    if not covering:
        return None
    ordered = [lk for lk in covering if lk.token in first]
    ordered += [lk for lk in covering if lk.token not in first]
    return ("<D:lockdiscovery>%s</D:lockdiscovery>"
            % "".join(activelock(href, lk, now) for lk in ordered))
