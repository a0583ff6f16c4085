"""The Engine API server: HTTP/1.1 (h11) over unix sockets and TCP(+TLS), one module per resource.

`server.py` runs connections, `router.py` matches routes and API versions, `http.py` holds the request
and response types, `errors.py` maps gorae errors to HTTP statuses in one place; `system.py`,
`containers.py`, `exec.py`, `images.py` are the resources, assembled by `app.py`.
"""
