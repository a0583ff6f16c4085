"""Volumes: the `local` volume driver (`local.py`) and the resolution of a container's mounts
(`-v`, `--mount`, `--tmpfs`, `--volumes-from`, image VOLUMEs) into OCI mounts and Docker's `Mounts` entries
(`mounts.py`). It never writes through a container's rootfs except by `copy_up` with an in-root path walk.
"""
