"""Container networking: links, addresses, firewall, ports and the embedded DNS server."""
