"""Swarm-scoped networks: cluster IPAM (allocator) and the component that serves and follows them."""
