"""Versions dockyardd reports: its own, and the Engine API range it serves.

API_VERSION is what ``/_ping`` and ``/version`` advertise, so clients negotiate down to it
(the docker CLI and docker-py both do). Requests naming a version between MIN_API_VERSION and
MAX_API_VERSION are served with API_VERSION's shapes; outside that range the answer is 400,
with dockerd's messages.
"""

from __future__ import annotations

import platform

import dockyard

API_VERSION = "1.41"
MIN_API_VERSION = "1.24"
MAX_API_VERSION = "1.51"
# Engine version in Docker's form: the Engine release whose API Dockyard serves, with our build tag.
SERVER_VERSION = f"20.10.24+dockyard.{getattr(dockyard, '__version__', '0.1.0')}"
SERVER_HEADER = f"Docker/{SERVER_VERSION} (linux)"
GIT_COMMIT = "dockyard"


def version_tuple(v: str) -> tuple[int, ...]:
    """'1.41' -> (1, 41); junk compares as (0,)."""
    try:
        return tuple(int(p) for p in v.split("."))
    except ValueError:
        return (0,)


def kernel_version() -> str:
    return platform.release()
