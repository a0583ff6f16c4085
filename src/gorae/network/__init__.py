"""Container networking on libnetwork's model.

`controller.NetworkController` is the one entry point the daemon uses: networks, container sandboxes
(`EndpointRequest` in, `ContainerNet` out), connect/disconnect, recovery. Network types are drivers behind
`types.NetworkDriver` (drivers/: bridge, host, null), chosen by type from a `registry.DriverRegistry`.
Kernel plumbing is in kernel/ (rtnetlink, links, namespaces), published ports in portmap/ (host ports,
iptables), the embedded DNS server in dns/, IPAM in ipam.py, docker's shapes in model.py and settings.py,
/etc/hosts and /etc/resolv.conf content in containerfiles.py, kernel object names in names.py.
"""
