"""The engine side of networking: networks, container endpoints, the DNS view."""
