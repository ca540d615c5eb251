"""Content digests: plain strings "<algorithm>:<hex>" (sha256, sha512).

Digests stay ``str`` everywhere (dict keys, JSON, SQLite) so that no wrapper
type has to be unpacked at every boundary; ``validate`` is the one gate.
"""

from __future__ import annotations

import hashlib
import re

from dockyard.errors import InvalidArgument

_HEX_LENGTHS = {"sha256": 64, "sha512": 128}
_HEX = re.compile(r"^[a-f0-9]+$")


def validate(d: str) -> str:
    """Return ``d`` unchanged if it is a well-formed digest, else raise InvalidArgument."""
    if not isinstance(d, str) or ":" not in d:
        raise InvalidArgument(f"invalid digest {d!r}: expected <algorithm>:<hex>", id=str(d))
    algorithm, hexpart = d.split(":", 1)
    length = _HEX_LENGTHS.get(algorithm)
    if length is None:
        raise InvalidArgument(f"invalid digest {d!r}: unsupported algorithm {algorithm!r}", id=d)
    if len(hexpart) != length or not _HEX.match(hexpart):
        raise InvalidArgument(f"invalid digest {d!r}: expected {length} lowercase hex characters", id=d)
    return d


def is_valid(d: str) -> bool:
    """True if ``d`` is a well-formed digest."""
    try:
        validate(d)
    except InvalidArgument:
        return False
    return True


def algorithm_of(d: str) -> str:
    """The algorithm part ("sha256") of a valid digest."""
    return validate(d).split(":", 1)[0]


def hex_of(d: str) -> str:
    """The hex part of a valid digest."""
    return validate(d).split(":", 1)[1]


def _new_hash(algorithm: str) -> "hashlib._Hash":
    if algorithm not in _HEX_LENGTHS:
        raise InvalidArgument(f"unsupported digest algorithm {algorithm!r}")
    return hashlib.new(algorithm)


def from_bytes(data: bytes, algorithm: str = "sha256") -> str:
    """Digest of ``data``."""
    h = _new_hash(algorithm)
    h.update(data)
    return f"{algorithm}:{h.hexdigest()}"


class Digester:
    """Incremental digest of a stream; ``size`` counts the bytes seen."""

    def __init__(self, algorithm: str = "sha256") -> None:
        self.algorithm = algorithm
        self._hash = _new_hash(algorithm)
        self.size = 0

    def update(self, data: bytes) -> None:
        self._hash.update(data)
        self.size += len(data)

    def digest(self) -> str:
        return f"{self.algorithm}:{self._hash.hexdigest()}"
