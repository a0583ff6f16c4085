"""The registry server (`gorae registry serve`): the OCI distribution spec 1.1 over a storage driver.

`storage/` is the bottom of the package (a driver protocol, the filesystem driver, the on-disk layout and the
conformance suite every driver passes); the rest (handlers, uploads, auth) sits on top of it and of
`gorae.httpserver`. Nothing here imports the engine: the server runs without a daemon.
"""
