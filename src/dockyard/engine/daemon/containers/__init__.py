"""Containers of dockyardd: the record (model), its store, and the service that runs them."""
