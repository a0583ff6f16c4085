"""Kernel plumbing for container networking: rtnetlink messages (rtnl), links, bridges and veths (netlink),
network namespaces (netns). Knows nothing of networks, endpoints or the metadata store."""
