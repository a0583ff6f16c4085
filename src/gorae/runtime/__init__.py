"""The container runtime: OCI spec generation, the conmon+runc driver, attach, exec, logs and cgroup stats.

This package owns everything between a container's Docker-shaped configuration and the running
process: it never touches image content, metadata storage or the HTTP API.
"""
