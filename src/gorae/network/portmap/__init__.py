"""Published ports: parsing port specs, holding host ports (ports), turning PortBindings into mappings
(publish), and the iptables rule set that forwards them (iptables)."""
