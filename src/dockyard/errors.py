"""The one error root of Dockyard and its few categories.

Every layer raises these (or subclasses of them); servers map categories to
status codes in exactly one place, command lines map them to exit codes.
Context travels in fields (``id``, ``path``), never encoded only in the text.
"""

from __future__ import annotations


class DockyardError(Exception):
    """Root of every error Dockyard raises on purpose."""

    def __init__(self, message: str, *, id: str | None = None, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.id = id
        self.path = path

    def __str__(self) -> str:
        return self.message


class NotFound(DockyardError):
    """The named object (container, image, file...) does not exist."""


class Conflict(DockyardError):
    """The object exists already, or is in a state that forbids the operation."""


class InvalidArgument(DockyardError):
    """The caller's input is malformed or not allowed."""


class NotModified(DockyardError):
    """The operation had nothing to do (already started, already stopped)."""


class Unavailable(DockyardError):
    """A resource or kernel feature the operation needs is not available here."""


class Forbidden(DockyardError):
    """The operation is refused by policy (read-only rootfs or volume, a built-in network)."""


class Unauthorized(DockyardError):
    """The caller's credentials were missing or rejected."""


class NotImplementedYet(DockyardError):
    """The operation exists in Docker's API but Dockyard does not provide it."""
