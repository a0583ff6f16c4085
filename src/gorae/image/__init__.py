"""Images: models and references, the image store, the image service, import/commit, save/load.

`reference.py` parses and normalises names, `models.py` the image config and IDs, `changes.py` the
`--change` lines, `layers.py` layer registration into snapshots, `store.py` the `ImageStore` (the one
writer of image, ref and layer records), `service.py` the `ImageService` (Docker's image use cases and
their events), `importer.py` import and commit, `save.py`/`load.py` docker-save tarballs and OCI
layouts, `bootstrap.py` the offline busybox image. Nothing here depends on `service.py` but the callers
of the service.
"""
