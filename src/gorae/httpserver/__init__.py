"""The HTTP/1.1 server shared by the Engine API (`gorae.api`) and the registry server (`gorae.registry`).

`server.HttpServer` serves an `Application` (`connection.Application`: its routing, error bodies and fixed
headers) on unix, TCP and TLS listeners, with a fast path for simple requests, h11 for the rest, header and
idle timeouts, a connection cap and sendfile for file responses. `message` holds the objects handlers see
(`Request`, `Response`, `StreamResponse`, `FileResponse`, `json_response`, ...), `router` a route table.
Imports only gorae's base layer.
"""
