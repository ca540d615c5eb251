"""The ``proxy`` configuration section (distribution's keys): remoteurl, username, password, ttl.

``ttl`` is how long a cached tag is trusted before it is re-checked upstream (a HEAD); a Go-style
duration, default 168h, and "0" means never re-check. Cached blobs and manifests by digest never
expire here: they are content-addressed (garbage collection is what removes content).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from dockyard.errors import InvalidArgument
from dockyard.registry.durations import parse_duration

DEFAULT_TTL = 168 * 3600.0
_KEYS = ("remoteurl", "username", "password", "ttl")


@dataclass(frozen=True)
class ProxySettings:
    """Where the upstream registry is, how to log in to it, and how long a cached tag is trusted."""

    remoteurl: str  # "https://host[:port]" without a trailing slash
    username: str = ""
    password: str = ""
    ttl: float = DEFAULT_TTL  # seconds; 0: a cached tag is never re-checked

    def __repr__(self) -> str:  # never log the password
        return f"ProxySettings(remoteurl={self.remoteurl!r}, username={self.username!r}, ttl={self.ttl})"


def _text(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise InvalidArgument(f"configuration: proxy.{key} must be a string")
    return str(value)


def _remote_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidArgument(f"configuration: proxy.remoteurl must be an http:// or https:// URL, got {value!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidArgument(f"configuration: proxy.remoteurl must name a registry host, not a path: {value!r}")
    return f"{parts.scheme}://{parts.netloc}"


def parse_settings(raw: dict[str, Any]) -> ProxySettings:
    """The proxy section as settings; InvalidArgument "configuration: proxy.<key> ..." on bad values."""
    if not isinstance(raw, dict):
        raise InvalidArgument("configuration: proxy must be a mapping with remoteurl, username, password, ttl")
    unknown = sorted(set(raw) - set(_KEYS))
    if unknown:
        raise InvalidArgument(f"configuration: proxy.{unknown[0]} is not a known key")
    remote = _text(raw, "remoteurl")
    if not remote:
        raise InvalidArgument("configuration: proxy.remoteurl is required")
    username, password = _text(raw, "username"), _text(raw, "password")
    if password and not username:
        raise InvalidArgument("configuration: proxy.password is set but proxy.username is not")
    ttl = DEFAULT_TTL
    if raw.get("ttl") not in (None, ""):
        ttl = parse_duration(raw["ttl"], "proxy.ttl")
        if ttl < 0:
            raise InvalidArgument(f"configuration: proxy.ttl must not be negative, got {raw['ttl']!r}")
    return ProxySettings(_remote_url(remote), username, password, ttl)
