"""The registry's data model on top of a storage driver; ``Registry`` is the facade the server calls."""

from __future__ import annotations

from dockyard.registry.store.registry import Registry

__all__ = ["Registry"]
