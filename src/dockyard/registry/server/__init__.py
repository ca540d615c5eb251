"""The registry's HTTP server (OCI distribution API over the Registry facade)."""

from dockyard.registry.server.app import create_app, runner_options

__all__ = ["create_app", "runner_options"]
