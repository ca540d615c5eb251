"""dockyard-registry: an OCI Distribution Spec v1.1 registry (storage drivers, store, HTTP server)."""
