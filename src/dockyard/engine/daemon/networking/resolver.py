"""What the embedded DNS server answers: the engine's view of names on user-defined networks.

A container on a user-defined network resolves, on each such network it is on: the other
containers' names, their network aliases (which include their short ids), the aliases of its
own --link entries, and "<name>.<network>". Other names go to the container's --dns servers,
else the daemon's --dns, else the host's resolv.conf; a container only on internal networks
gets no forwarding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

from dockyard.engine.daemon.containers.model import Container
from dockyard.errors import NotFound

if TYPE_CHECKING:
    from dockyard.engine.daemon.networking.service import NetworkService


def _live(c: Container) -> dict[str, dict[str, Any]]:
    return {name: ep for name, ep in (c.network_settings.get("Networks") or {}).items() if ep.get("IPAddress")}


def host_nameservers(path: str = "/etc/resolv.conf") -> list[str]:
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    return [ln.split()[1] for ln in lines if ln.startswith("nameserver") and len(ln.split()) > 1]


class Resolver:
    def __init__(self, svc: NetworkService) -> None:
        self.svc = svc

    def _container(self, sandbox: str) -> Container | None:
        try:
            return self.svc.daemon.containers.get(sandbox)
        except NotFound:
            return None

    def _user_networks(self, c: Container) -> Iterator[tuple[str, dict[str, Any]]]:
        for name, ep in _live(c).items():
            if name not in ("bridge", "host", "none"):
                yield name, ep

    def _peers(self, network: str) -> Iterator[tuple[Container, dict[str, Any]]]:
        for d in self.svc.daemon.containers.store:
            ep = _live(d).get(network) if d.running else None
            if ep is not None:
                yield d, ep

    def lookup(self, sandbox: str, name: str) -> list[str] | None:
        c = self._container(sandbox)
        if c is None:
            return None
        wanted = name.lower().rstrip(".")
        found: list[str] = []
        for net, own in self._user_networks(c):
            qname = wanted[: -len(net) - 1] if wanted.endswith("." + net.lower()) else wanted
            links = {}
            for link in own.get("Links") or []:
                target, _, alias = str(link).partition(":")
                links[(alias or target).lower()] = target.lower()
            target = links.get(qname, qname)
            for d, ep in self._peers(net):
                names = {d.bare_name.lower(), d.short_id, *(a.lower() for a in ep.get("Aliases") or [])}
                if target in names or qname in names:
                    if ep["IPAddress"] not in found:
                        found.append(ep["IPAddress"])
        return found or None

    def reverse(self, sandbox: str, ip: str) -> str | None:
        c = self._container(sandbox)
        if c is None:
            return None
        for net, _ in self._user_networks(c):
            for d, ep in self._peers(net):
                if ep["IPAddress"] == ip:
                    return f"{d.bare_name}.{net}"
        return None

    def upstreams(self, sandbox: str) -> list[str]:
        c = self._container(sandbox)
        if c is None:
            return []
        nets = [self.svc.store.by_name(net) for net, _ in self._user_networks(c)]
        if nets and all(n is not None and n.internal for n in nets):
            return []
        return list(c.host_config.get("Dns") or self.svc.config.dns or host_nameservers())
