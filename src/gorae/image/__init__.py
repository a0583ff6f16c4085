"""Images: models and references, the image service (list/inspect/tag/remove/import/commit), save/load.

`reference.py` parses and normalises names, `models.py` the image config and IDs, `changes.py` the
`--change` lines, `layers.py` layer registration into snapshots, `service.py` the `ImageService`,
`save.py`/`load.py` docker-save tarballs and OCI layouts, `bootstrap.py` the offline busybox image.
"""
