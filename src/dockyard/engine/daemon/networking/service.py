"""The daemon's networks: the built-in ones, user-defined bridges, their IPAM and firewall.

Records live in <data-root>/network (dockyard.network.store). At start the built-in networks
(bridge, host, none) are made once and keep their ids; every bridge network gets its Linux
bridge; the address books are rebuilt from the containers' records; the firewall table is
rewritten from the whole state in one transaction (which is also how it is reconciled after a
crash). Container attachment lives in endpoints.py, the embedded DNS view in resolver.py.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from dockyard.engine.daemon import filters as F
from dockyard.engine.daemon.networking.endpoints import Endpoints
from dockyard.engine.daemon.timefmt import now_rfc3339
from dockyard.errors import Conflict, Forbidden, InvalidArgument, NotFound
from dockyard.network import ipam
from dockyard.network.store import BUILTIN_DRIVERS, Network, NetworkStore

if TYPE_CHECKING:
    from dockyard.engine.daemon.daemon import Daemon

T = TypeVar("T")
log = logging.getLogger("dockyard.engine")

FILTERS = {"dangling", "driver", "id", "label", "name", "scope", "type"}
OPT_BRIDGE_NAME = "com.docker.network.bridge.name"
OPT_ICC = "com.docker.network.bridge.enable_icc"
OPT_MASQ = "com.docker.network.bridge.enable_ip_masquerade"
OPT_MTU = "com.docker.network.driver.mtu"
OPT_HOST_IP = "com.docker.network.bridge.host_binding_ipv4"
DEFAULT_BRIDGE = "dockyard0"


def bridge_name_for(network_id: str) -> str:
    return "br-" + network_id[:12]


class NetworkService:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.config = daemon.config
        self.store = NetworkStore(os.path.join(daemon.config.data_root, "network"))
        self.addresses: dict[str, ipam.Addresses] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="net")
        self._lock = asyncio.Lock()
        self.endpoints = Endpoints(self)

    @property
    def bridge_enabled(self) -> bool:
        return self.config.bridge != "none"

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Netlink, nft and namespace work, one at a time, off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, lambda: fn(*args))

    # -- start ------------------------------------------------------------------------------------
    async def start(self) -> None:
        from dockyard.network import sysctl

        for broken in self.store.load_all():
            log.warning("network record %s is unreadable; ignored", broken)
        for name, driver in BUILTIN_DRIVERS.items():
            if self.store.by_name(name) is None and (name != "bridge" or self.bridge_enabled):
                self.store.save(Network(name=name, id=secrets.token_hex(32), created=now_rfc3339(), driver=driver,
                                        ipam_options=None))
        bridge = self.store.by_name("bridge")
        if bridge is not None and not self.bridge_enabled:
            self.store.delete(bridge)
        elif bridge is not None:
            await self._configure_default_bridge(bridge)
        for n in self.store:
            if n.is_bridge:
                self.addresses[n.id] = ipam.Addresses(n.name, n.id, n.pools())
                await self.run(self._ensure_bridge, n)
        if self.config.ip_forward and any(n.is_bridge for n in self.store):
            await self.run(sysctl.set_forwarding)
        self._warm_dns()

    def _warm_dns(self) -> None:
        """Import the DNS server (dnspython: ~70 ms) in the background once a user network exists,
        not on the first container start that needs it; an engine without one never loads it."""
        if any(n.is_bridge and n.name != "bridge" for n in self.store):
            asyncio.get_running_loop().run_in_executor(self._pool, importlib.import_module, "dockyard.network.dns")

    async def _configure_default_bridge(self, n: Network) -> None:
        from dockyard.network import links

        name = self.config.bridge or DEFAULT_BRIDGE
        if self.config.bip:
            iface = ipam.parse_subnet(self.config.bip)
            gateway = self.config.bip.split("/")[0]
            config = [{"Subnet": str(iface), "Gateway": gateway}]
        elif n.ipam_config and n.bridge_name == name:
            config = n.ipam_config
        else:
            taken: list[ipam.IPNet] = [ipam.parse_subnet(s) for s in await self.run(links.host_routes)]
            taken += self._subnets(exclude=n.id)
            subnet = ipam.pick_subnet(taken)
            config = [{"Subnet": str(subnet), "Gateway": str(next(subnet.hosts()))}]
        if self.config.fixed_cidr:
            config[0]["IPRange"] = str(ipam.parse_subnet(self.config.fixed_cidr))
        n.ipam_config = config
        n.bridge_name = name
        n.options = {"com.docker.network.bridge.default_bridge": "true",
                     OPT_ICC: str(self.config.icc).lower(), OPT_MASQ: str(self.config.ip_masq).lower(),
                     OPT_HOST_IP: "0.0.0.0", OPT_BRIDGE_NAME: name, OPT_MTU: str(self.config.mtu or 1500)}
        self.store.save(n)

    def _ensure_bridge(self, n: Network) -> None:
        from dockyard.network import links

        addrs = [f"{p.gateway}/{p.subnet.prefixlen}" for p in n.pools()
                 if p.gateway is not None and (p.version == 4 or n.enable_ipv6)]
        links.ensure_bridge(n.bridge_name, addrs, self.mtu(n))

    def mtu(self, n: Network) -> int:
        return int(n.options.get(OPT_MTU) or self.config.mtu or 1500)

    def _subnets(self, exclude: str = "") -> list[ipam.IPNet]:
        return [p.subnet for n in self.store if n.is_bridge and n.id != exclude for p in n.pools()]

    async def shutdown(self) -> None:
        await self.endpoints.close()
        self._pool.shutdown(wait=True)

    # -- lookups ----------------------------------------------------------------------------------
    def find(self, ref: str) -> Network:
        return self.store.find(ref)

    def by_mode(self, mode: str) -> Network | None:
        """The network a NetworkMode names (None: host, none, container:, or no default bridge)."""
        if mode in ("default", ""):
            mode = "bridge"
        if mode in ("host", "none") or mode.startswith("container:"):
            return None
        if mode == "bridge" and not self.bridge_enabled:
            return None
        return self.store.find(mode)

    def members(self, n: Network) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for c in self.daemon.containers.store:
            ep = (c.network_settings.get("Networks") or {}).get(n.name)
            if c.running and ep and ep.get("EndpointID"):
                out[c.id] = {"Name": c.bare_name, "EndpointID": ep["EndpointID"], "MacAddress": ep["MacAddress"],
                             "IPv4Address": f"{ep['IPAddress']}/{ep['IPPrefixLen']}" if ep["IPAddress"] else "",
                             "IPv6Address": ""}
            elif c.running and n.driver in ("host", "null") and c.host_config.get("NetworkMode") == n.name:
                out[c.id] = {"Name": c.bare_name, "EndpointID": "", "MacAddress": "", "IPv4Address": "",
                             "IPv6Address": ""}
        return out

    def inspect(self, ref: str) -> dict[str, Any]:
        n = self.find(ref)
        return n.inspect(self.members(n))

    def list_docs(self, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        F.validate(filters, FILTERS)
        for t in filters.get("type", []):
            if t not in ("custom", "builtin"):
                raise InvalidArgument(f"invalid filter: 'type'='{t}'")
        out = []
        for n in self.store:
            if filters.get("name") and not any(v in n.name for v in filters["name"]):
                continue
            if filters.get("id") and not any(n.id.startswith(v) for v in filters["id"]):
                continue
            if not F.match(filters, "driver", n.driver) or not F.match(filters, "scope", "local"):
                continue
            if filters.get("type") and ("builtin" if n.builtin else "custom") not in filters["type"]:
                continue
            if not F.match_labels(filters, n.labels):
                continue
            if filters.get("dangling"):
                dangling = not n.builtin and not self._used(n)
                if F.truthy(filters, "dangling") != dangling:
                    continue
            out.append(n.inspect({}))
        return out

    def _used(self, n: Network) -> bool:
        return any(n.name in (c.network_settings.get("Networks") or {}) or n.name in c.networking
                   for c in self.daemon.containers.store if c.running)

    # -- create / remove / prune --------------------------------------------------------------------
    async def create(self, body: dict[str, Any]) -> dict[str, str]:
        async with self._lock:
            return await self._create(body)

    async def _create(self, body: dict[str, Any]) -> dict[str, str]:
        from dockyard.network import links

        name = str(body.get("Name") or "")
        if not name:
            raise InvalidArgument("network name is empty")
        driver = body.get("Driver") or "bridge"
        if self.store.by_name(name) is not None:
            raise Conflict(f"network with name {name} already exists")
        if driver in ("host", "null"):
            raise Forbidden(f'only one instance of "{driver}" network is allowed')
        if driver != "bridge":
            raise NotFound(f'plugin "{driver}" not found')
        ipam_body = body.get("IPAM") or {}
        if (ipam_body.get("Driver") or "default") != "default":
            raise NotFound(f'plugin "{ipam_body["Driver"]}" not found')
        nid = secrets.token_hex(32)
        configs = list(ipam_body.get("Config") or [])
        pools = [ipam.Pool.from_config(c) for c in configs]
        others = self._subnets()
        for i, p in enumerate(pools):
            ipam.check_overlap(p.subnet, others + [q.subnet for q in pools[:i]])
        ipv6 = bool(body.get("EnableIPv6"))
        if ipv6 and not any(p.version == 6 for p in pools):
            raise Forbidden("could not find an available, non-overlapping IPv6 address pool among the defaults "
                            "to assign to the network")
        auto = not any(p.version == 4 for p in pools)
        if auto:  # an IPv4 pool always, as Docker; IPv6 ones only when asked for
            routes: list[ipam.IPNet] = [ipam.parse_subnet(s) for s in await self.run(links.host_routes)]
            subnet = ipam.pick_subnet(routes + others)
            pools.insert(0, ipam.Pool(subnet, next(subnet.hosts())))
        options = {str(k): str(v) for k, v in (body.get("Options") or {}).items()}
        bridge = options.get(OPT_BRIDGE_NAME) or bridge_name_for(nid)
        if any(n.bridge_name == bridge for n in self.store):
            raise Conflict(f"bridge name {bridge} is already in use")
        n = Network(name=name, id=nid, created=now_rfc3339(), internal=bool(body.get("Internal")), enable_ipv6=ipv6,
                    attachable=bool(body.get("Attachable")),
                    ipam_options=dict(ipam_body["Options"]) if ipam_body.get("Options") is not None else None,
                    ipam_config=[p.to_config() for p in pools], options=options,
                    labels={str(k): str(v) for k, v in (body.get("Labels") or {}).items()},
                    bridge_name=bridge, auto_subnet=auto)
        await self.run(self._ensure_bridge, n)
        try:
            self.store.save(n)
            self.addresses[n.id] = ipam.Addresses(n.name, n.id, n.pools())
            await self.apply_firewall()
        except BaseException:
            self.store.delete(n)
            self.addresses.pop(n.id, None)
            await self.run(links.delete_link, bridge)
            raise
        self.daemon.events.emit("network", "create", n.id, {"name": n.name, "type": n.driver})
        self._warm_dns()
        return {"Id": n.id, "Warning": ""}

    async def remove(self, ref: str) -> None:
        async with self._lock:
            n = self.find(ref)
            if n.builtin:
                raise Forbidden(f"{n.name} is a pre-defined network and cannot be removed")
            if self.members(n):
                raise Forbidden(f"error while removing network: network {n.name} id {n.id} has active endpoints")
            await self._delete(n)

    async def _delete(self, n: Network) -> None:
        from dockyard.network import links

        self.store.delete(n)
        self.addresses.pop(n.id, None)
        await self.apply_firewall()
        await self.run(links.delete_link, n.bridge_name)
        self.daemon.events.emit("network", "destroy", n.id, {"name": n.name, "type": n.driver})

    async def prune(self, filters: dict[str, list[str]]) -> list[str]:
        from dockyard.engine.daemon.images import parse_until
        from dockyard.engine.daemon.timefmt import parse_rfc3339

        F.validate(filters, {"until", "label", "label!"})
        cutoff = max((parse_until(v) for v in F.get(filters, "until")), default=None)
        deleted = []
        async with self._lock:
            for n in list(self.store):
                if n.builtin or self.members(n) or not F.match_labels(filters, n.labels):
                    continue
                if cutoff is not None and parse_rfc3339(n.created) >= cutoff:
                    continue
                await self._delete(n)
                deleted.append(n.name)
        if deleted:
            self.daemon.events.emit("network", "prune", "", {"reclaimed": "0"})
        return deleted

    # -- firewall ---------------------------------------------------------------------------------
    async def apply_firewall(self) -> None:
        """Rewrite the engine's nft table from the whole state (bridges and published ports)."""
        if not self.config.iptables:
            return
        from dockyard.network import firewall

        bridges = []
        for n in self.store:
            if not n.is_bridge:
                continue
            masq = (n.options.get(OPT_MASQ, "true") == "true") and self.config.ip_masq
            icc = n.options.get(OPT_ICC, "true") == "true"
            for p in n.pools():
                if p.version != 4:
                    continue  # IPv6 is routed, not NATed (as Docker without ip6tables)
                bridges.append(firewall.BridgeRule(n.bridge_name, str(p.subnet), n.internal, masq, icc))
        ports = self.endpoints.port_rules()
        await self.run(firewall.apply, bridges, ports)

