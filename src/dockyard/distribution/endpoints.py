"""Where a repository lives: the registry host for a reference's domain, and which schemes to try.

Docker's rules: docker.io is served by registry-1.docker.io; every registry is tried over https
first; plain http is allowed only for registries marked insecure (``--insecure-registry`` takes a
host[:port] or a CIDR) and for loopback addresses, which are insecure by default.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from dockyard.oci.reference import DEFAULT_DOMAIN

DOCKER_HUB_HOST = "registry-1.docker.io"


@dataclass(frozen=True)
class Endpoint:
    """A registry to talk to: ``host`` ("host[:port]") and the base URLs to try in order."""

    domain: str
    host: str
    insecure: bool
    base: str = ""  # a mirror's URL ("https://mirror.example:5000"): the only one tried

    @property
    def urls(self) -> tuple[str, ...]:
        if self.base:
            return (self.base,)
        https = f"https://{self.host}"
        return (https, f"http://{self.host}") if self.insecure else (https,)


def _split_host(hostport: str) -> str:
    """The host part of "host[:port]" (IPv6 brackets removed)."""
    if hostport.startswith("["):
        return hostport[1:hostport.find("]")]
    return hostport.rsplit(":", 1)[0] if hostport.count(":") == 1 else hostport


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def is_loopback(hostport: str) -> bool:
    host = _split_host(hostport)
    ip = _ip(host)
    return host == "localhost" or (ip is not None and ip.is_loopback)


def is_insecure(hostport: str, insecure: Iterable[str]) -> bool:
    """True for loopback registries and those named (or inside a CIDR) in ``insecure``."""
    if is_loopback(hostport):
        return True
    ip = _ip(_split_host(hostport))
    for entry in insecure:
        entry = entry.strip().removeprefix("http://").removeprefix("https://").rstrip("/")
        if entry == hostport:
            return True
        if "/" in entry and ip is not None:
            try:
                if ip in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def endpoint_for(domain: str, insecure: Iterable[str] = ()) -> Endpoint:
    """The endpoint serving ``domain`` (a reference's domain, "docker.io" or "host[:port]")."""
    host = DOCKER_HUB_HOST if domain == DEFAULT_DOMAIN else domain
    return Endpoint(domain, host, is_insecure(domain, insecure))


def endpoints_for(domain: str, insecure: Iterable[str] = (), mirrors: Iterable[str] = ()) -> list[Endpoint]:
    """``--registry-mirror`` URLs (for docker.io only, in order), then the registry itself."""
    out: list[Endpoint] = []
    if domain == DEFAULT_DOMAIN:
        for url in mirrors:
            url = url.rstrip("/")
            if "://" not in url:
                url = "https://" + url
            hostport = url.split("://", 1)[1].split("/", 1)[0]
            out.append(Endpoint(domain, hostport, url.startswith("http://") or is_insecure(hostport, insecure),
                                base=url))
    return [*out, endpoint_for(domain, insecure)]
