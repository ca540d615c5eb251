"""The one place where Dockyard errors become Engine API status codes and bodies."""

from __future__ import annotations

from dockyard import errors

STATUS: tuple[tuple[type[errors.DockyardError], int], ...] = (
    (errors.NotFound, 404),
    (errors.InvalidArgument, 400),
    (errors.Conflict, 409),
    (errors.NotModified, 304),
    (errors.Forbidden, 403),
    (errors.Unauthorized, 401),
    (errors.Unavailable, 503),
    (errors.NotImplementedYet, 501),
)


def status_of(e: BaseException) -> int:
    for cls, status in STATUS:
        if isinstance(e, cls):
            return status
    return 500
