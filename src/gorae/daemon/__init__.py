"""The daemon: configuration, start-up and recovery, the event bus, and the wiring of the services.

Services here (containers, execs) own behaviour; storage lives in `store/`, `image/`, `snapshot/`;
processes in `runtime/`. Nothing in this package imports `api` or `cli`.
"""
