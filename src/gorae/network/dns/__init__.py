"""The embedded DNS server of user-defined networks: the wire format (dnsmsg), the per-sandbox server
(dnsserver) and the names it answers (resolver)."""
