"""The Engine API server: HTTP/1.1 over unix sockets and TCP(+TLS), one module per resource.

`server.py` runs listeners and the fast path of each connection, `connection.py` the h11 path,
`heads.py` the response heads, `tls.py` the TLS context, `router.py` matches routes and API versions,
`http.py` holds the request and response types, `errors.py` maps gorae errors to HTTP statuses in one
place; `system.py`, `containers.py`, `exec.py`, `images.py`, ... are the resources, assembled by `app.py`.
"""
