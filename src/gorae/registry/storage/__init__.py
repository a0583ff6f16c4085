"""Registry storage: a path-keyed blob filesystem (`driver.StorageDriver`) and its implementations.

Imports only the standard library and gorae's base layer, so any driver (filesystem, S3, ...) and
`gorae registry gc` can build on it without the HTTP side (tests/unit/test_layering.py holds it to that).
"""
