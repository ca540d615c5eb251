"""Image references with Docker's normalisation (as distribution/reference does).

``busybox`` -> ``docker.io/library/busybox:latest``; ``index.docker.io`` is
``docker.io``; a first component containing '.' or ':' or equal to
``localhost`` (or containing uppercase) is a registry domain, optionally with a
port; ``name:tag``, ``name@digest`` and ``name:tag@digest`` are accepted.
A bare 64-hex string is rejected: it is ambiguous with an image ID.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from dockyard.errors import InvalidArgument
from dockyard.oci import digest as digests

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = re.compile(rf"^(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})(?::[0-9]+)?$")
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_PATH = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_ID = re.compile(r"^[a-f0-9]{64}$")


@dataclass(frozen=True)
class Reference:
    """A fully normalised reference: ``domain/path[:tag][@digest]``."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """``docker.io/library/busybox``: the repository, without tag or digest."""
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        s = self.name
        if self.tag is not None:
            s += f":{self.tag}"
        if self.digest is not None:
            s += f"@{self.digest}"
        return s

    def familiar_name(self) -> str:
        """``busybox``, ``user/app``, ``myreg:5000/x/y``: the short name docker prints."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        path = self.path
        if path.startswith(OFFICIAL_REPO_PREFIX) and "/" not in path[len(OFFICIAL_REPO_PREFIX):]:
            return path[len(OFFICIAL_REPO_PREFIX):]
        return path

    def familiar(self) -> str:
        """``busybox:latest``, ``myreg:5000/x/y:1``, ``busybox@sha256:...``."""
        s = self.familiar_name()
        if self.tag is not None:
            s += f":{self.tag}"
        if self.digest is not None:
            s += f"@{self.digest}"
        return s

    def with_tag(self, tag: str) -> Reference:
        """The same repository with ``tag`` (and without a digest)."""
        if not _TAG.match(tag):
            raise InvalidArgument(f"invalid tag {tag!r} for {self.name}", id=tag)
        return replace(self, tag=tag, digest=None)

    def with_digest(self, d: str) -> Reference:
        """The same repository pinned to ``d`` (the tag is kept)."""
        return replace(self, digest=digests.validate(d))


def _split_domain(name: str) -> tuple[str, str]:
    i = name.find("/")
    first = name[:i]
    if i == -1 or (not any(c in first for c in ".:") and first != "localhost" and first.lower() == first):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, name[i + 1:]
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def _bad(s: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"invalid reference format {s!r}: {why}", id=s)


def parse(s: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalise ``s``; ``latest`` is added when neither tag nor digest is given."""
    if not s:
        raise _bad(s, "empty reference")
    if _ID.match(s):
        raise _bad(s, "cannot specify 64-byte hexadecimal strings as a repository name")
    rest, digest = s, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not digests.is_valid(digest):
            raise _bad(s, f"invalid digest {digest!r}")
    tag = None
    colon, slash = rest.rfind(":"), rest.rfind("/")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG.match(tag):
            raise _bad(s, f"invalid tag {tag!r}")
    domain, path = _split_domain(rest)
    if path.lower() != path:
        raise _bad(s, "repository name must be lowercase")
    if not _DOMAIN.match(domain) or not _PATH.match(path):
        raise _bad(s, "invalid repository name")
    if len(domain) + 1 + len(path) > NAME_TOTAL_LENGTH_MAX:
        raise _bad(s, f"repository name longer than {NAME_TOTAL_LENGTH_MAX} characters")
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def normalize(s: str) -> str:
    """``str(parse(s))``: the fully qualified form used as the key of image records."""
    return str(parse(s))


def looks_like_id(s: str) -> bool:
    """True for a full image ID (64 hex, optionally ``sha256:``-prefixed)."""
    if s.startswith("sha256:"):
        s = s[len("sha256:"):]
    return bool(_ID.match(s))
