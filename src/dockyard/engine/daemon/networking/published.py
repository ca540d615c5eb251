"""A container's published ports: host port reservations, DNAT rules, the IPv6 userland proxy.

Ports are published on the container's first endpoint (eth0). Each binding holds a reserved host
port (a bound socket, dockyard.network.portmap), one DNAT rule in the engine's nft table, and, for
TCP ports published on every address, a relay on [::]:P (dockyard.network.proxy). NetworkSettings.Ports
records them all, which is what a daemon restart rebuilds them from.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from dockyard.engine.daemon.containers.model import Container
from dockyard.errors import DockyardError
from dockyard.network import portmap
from dockyard.network.firewall import PortRule
from dockyard.network.portmap import Binding
from dockyard.network.proxy import Proxies, ipv6_available

if TYPE_CHECKING:
    from dockyard.engine.daemon.networking.service import NetworkService

log = logging.getLogger("dockyard.engine")


class Published:
    def __init__(self, svc: NetworkService) -> None:
        self.svc = svc
        self.ports = portmap.PortAllocator()
        self.proxies = Proxies()
        self.rules: dict[str, list[PortRule]] = {}

    def port_rules(self) -> list[PortRule]:
        return [r for rules in self.rules.values() for r in rules]

    def _proxied(self, b: Binding) -> bool:
        """A TCP port published on every address is served on IPv6 by the userland proxy."""
        return b.proto == "tcp" and not b.host_ip and self.svc.config.userland_proxy and ipv6_available()

    async def publish(self, c: Container, ep: dict[str, Any], bridge: str) -> None:
        """Reserve, program and record the container's ports on endpoint ep (all or none)."""
        wanted = portmap.requested(c.config.get("ExposedPorts"), c.host_config.get("PortBindings"),
                                   bool(c.host_config.get("PublishAllPorts")))
        bindings = []
        try:
            for port, proto, host_ip, spec in wanted:
                bindings.append(self.ports.allocate(c.id, port, proto, host_ip, spec))
        except DockyardError as e:
            self.ports.release(c.id)
            raise portmap.endpoint_error(e, c.bare_name, ep["EndpointID"]) from None
        doc = portmap.ports_doc(c.config.get("ExposedPorts"), bindings)
        c.network_settings["Ports"] = doc
        if bindings:
            self.rules[c.id] = [PortRule(b.proto, b.host_ip, b.host_port, ep["IPAddress"], b.container_port, bridge)
                                for b in bindings]
            await self.svc.apply_firewall()
        for b in bindings:
            if self._proxied(b):
                try:
                    await self.proxies.add(c.id, b.host_port, ep["IPAddress"], b.container_port)
                except OSError as e:
                    reason = os.strerror(e.errno).lower() if e.errno else str(e)
                    err = DockyardError(f"Error starting userland proxy: listen tcp6 [::]:{b.host_port}: bind: {reason}")
                    raise portmap.endpoint_error(err, c.bare_name, ep["EndpointID"]) from None
                doc[f"{b.container_port}/{b.proto}"].append({"HostIp": "::", "HostPort": str(b.host_port)})

    async def unpublish(self, c: Container) -> None:
        await self.proxies.remove(c.id)
        self.ports.release(c.id)
        if self.rules.pop(c.id, None):
            try:
                await self.svc.apply_firewall()
            except (DockyardError, OSError) as e:
                log.warning("network cleanup: %s", e)

    async def restore(self, c: Container, ep: dict[str, Any] | None, bridge: str) -> None:
        """After a daemon restart: re-reserve the recorded ports and take back their rules and relays."""
        rules = []
        for b in bindings_from_doc(c.network_settings.get("Ports") or {}):
            self.ports.adopt(c.id, b)
            if ep is None or not ep.get("IPAddress"):
                continue
            rules.append(PortRule(b.proto, b.host_ip, b.host_port, ep["IPAddress"], b.container_port, bridge))
            if self._proxied(b):
                try:
                    await self.proxies.add(c.id, b.host_port, ep["IPAddress"], b.container_port)
                except OSError as e:
                    log.warning("IPv6 proxy of %s for port %d not restored: %s", c.short_id, b.host_port, e)
        if rules:
            self.rules[c.id] = rules

    async def close(self) -> None:
        await self.proxies.close()
        for owner in list(self.rules):
            self.ports.release(owner)


def bindings_from_doc(doc: dict[str, Any]) -> list[Binding]:
    """The published ports recorded in NetworkSettings.Ports (how a restart finds them again)."""
    out = []
    for key, entries in doc.items():
        port, proto = portmap.parse_key(key)
        for e in entries or []:
            if e.get("HostIp") == "::":
                continue  # the userland proxy's side of a port published on every address
            host_ip = "" if e.get("HostIp") in ("", "0.0.0.0") else str(e["HostIp"])
            out.append(Binding(port, proto, host_ip, int(e["HostPort"])))
    return out
