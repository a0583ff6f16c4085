"""Network drivers behind `types.NetworkDriver`: bridge (Linux bridge, veths, iptables), host and null;
`builtin.builtin_drivers()` makes the set every daemon has."""
