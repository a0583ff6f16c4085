"""Containers: records, the state table, create, lifecycle (start/stop/kill/restart/remove, exits and restart
policy, live restore), the container filesystem, streams (logs, attach), networking glue, execs and listing.

A service package: it depends on the runtime, snapshotter, images, volumes and networks only through the
protocols in `container/types.py`, and never imports the API or the CLI.
"""
