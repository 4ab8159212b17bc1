"""One module per WebDAV method: parse the request, act on the store, reply."""
