"""A container's network sandbox: its namespace, one endpoint per network, published ports, DNS.

The sandbox is a network namespace file under <exec-root>/netns, made before the runtime runs
and handed to it in the spec, so it outlives the daemon (live-restore). Each endpoint is a veth
pair from the network's bridge into the sandbox (eth0, eth1, ...) with an address from the
network's IPAM. Everything a run set up is recorded in the container's NetworkSettings, which is
what teardown and restore work from.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import time
from typing import TYPE_CHECKING, Any

from dockyard.engine.daemon.containers.etcfiles import NetFiles
from dockyard.engine.daemon.containers.model import Container
from dockyard.errors import Conflict, DockyardError, Forbidden, InvalidArgument, NotFound
from dockyard.network import ipam
from dockyard.network.store import Network

if TYPE_CHECKING:
    from dockyard.engine.daemon.networking.service import NetworkService
    from dockyard.network.firewall import PortRule

log = logging.getLogger("dockyard.engine")
SHARED_NETWORK = ("container sharing network namespace with another container or host cannot be connected "
                  "to any other network")
HOST_NETWORK = "container cannot be disconnected from host network or connected to host network"
NO_NETWORK = "container cannot be connected to multiple networks with one of the networks in private (none) mode"
LIVE_FIELDS = {"EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
               "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "MacAddress": ""}


def host_ifname(sandbox_id: str, network_id: str) -> str:
    """The host end's name: "vd" and 11 hex chars, new for each run, so that a veth the kernel is
    still deleting from the last run never collides with the next one."""
    return "vd" + hashlib.sha256(f"{sandbox_id}/{network_id}".encode()).hexdigest()[:11]


def primary_name(c: Container) -> str:
    mode = c.host_config.get("NetworkMode") or "default"
    return "bridge" if mode == "default" else mode


def is_user_network(n: Network) -> bool:
    return n.is_bridge and n.name != "bridge"


class Endpoints:
    def __init__(self, svc: NetworkService) -> None:
        from dockyard.engine.daemon.networking.published import Published

        self.svc = svc
        self.published = Published(svc)
        self._dns: Any = None

    @property
    def dns(self) -> Any:
        if self._dns is None:
            from dockyard.engine.daemon.networking.resolver import Resolver
            from dockyard.network.dns import EmbeddedDNS
            self._dns = EmbeddedDNS(Resolver(self.svc))
        return self._dns

    def sandbox_path(self, c: Container) -> str:
        return os.path.join(self.svc.config.exec_root, "netns", c.id[:12])

    def port_rules(self) -> list[PortRule]:
        return self.published.port_rules()

    def networks_of(self, c: Container) -> list[tuple[Network, dict[str, Any]]]:
        """The bridge networks the container is on (its EndpointsConfig), its primary network first."""
        mode = c.host_config.get("NetworkMode") or "default"
        if mode in ("host", "none") or mode.startswith("container:"):
            return []
        first = primary_name(c)
        names = sorted(c.networking, key=lambda name: name != first)
        out = []
        for name in names:
            if name == "bridge" and not self.svc.bridge_enabled:
                continue
            out.append((self.svc.find(name), dict(c.networking[name] or {})))
        return out

    # -- a run -------------------------------------------------------------------------------------
    async def setup(self, c: Container) -> str | None:
        """Make the sandbox; return what the spec's network namespace is ("host", a path, or None)."""
        mode = c.host_config.get("NetworkMode") or "default"
        if mode == "host":
            return "host"
        if mode.startswith("container:"):
            return self.joined_namespace(c)
        nets = self.networks_of(c)
        if not nets:
            return None
        self._check_links(c, nets)

        path = self.sandbox_path(c)
        c.network_settings = {"SandboxID": secrets.token_hex(32), "SandboxKey": path, "Networks": {}, "Ports": {}}
        t0 = time.monotonic()
        try:
            await self.svc.run(self._new_namespace, path)
            t1 = time.monotonic()
            for i, (n, cfg) in enumerate(nets):
                await self._attach(c, path, n, cfg, i)
            t2 = time.monotonic()
            first = nets[0][0]
            await self.published.publish(c, c.network_settings["Networks"][first.name], first.bridge_name)
            t3 = time.monotonic()
            if any(is_user_network(n) for n, _ in nets):
                await self._serve_dns(c, path)
            log.debug("network %s: namespace %.1f ms, endpoints %.1f ms, ports %.1f ms, dns %.1f ms", c.short_id,
                      (t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000, (time.monotonic() - t3) * 1000)
        except BaseException:
            await self.teardown(c)
            raise
        return path

    @staticmethod
    def _new_namespace(path: str) -> None:
        from dockyard.kernel import netns
        from dockyard.network import links

        netns.remove(path)
        netns.create(path)
        links.loopback_up(path)

    def _check_links(self, c: Container, nets: list[tuple[Network, dict[str, Any]]]) -> None:
        if not any(n.name == "bridge" for n, _ in nets):
            return
        for link in c.host_config.get("Links") or []:
            target, _, alias = str(link).partition(":")
            child = self.svc.daemon.containers.get(target.lstrip("/"))
            if not child.running:
                raise Conflict(f"Cannot link to a non running container: {child.name} AS {alias}")

    async def _serve_dns(self, c: Container, path: str) -> None:
        """The embedded DNS server for this sandbox, on a free port of 127.0.0.11 that queries to
        127.0.0.11:53 are redirected to inside the namespace (port 53 stays free for the container)."""
        from dockyard.kernel import netns
        from dockyard.network import firewall

        await self.dns.add(c.id, path, port=0)
        bound = self.dns.bound(c.id)
        if bound is None:
            raise DockyardError(f"the embedded DNS server of {c.short_id} did not start")
        await self.svc.run(netns.run_in, path, lambda: firewall.apply_dns_redirect(bound[1], bound[0]))

    def joined_namespace(self, c: Container) -> str:
        ref = (c.host_config.get("NetworkMode") or "")[len("container:"):]
        other = self.svc.daemon.containers.get(ref)
        if not other.running or not other.state.get("Pid"):
            raise Conflict(f"cannot join network of a non running container: {other.id}")
        key = other.network_settings.get("SandboxKey")
        return str(key) if key else f"/proc/{other.state['Pid']}/ns/net"

    async def _attach(self, c: Container, path: str, n: Network, cfg: dict[str, Any], index: int) -> None:
        from dockyard.network import links

        ipam_cfg = cfg.get("IPAMConfig") or {}
        static, static6 = str(ipam_cfg.get("IPv4Address") or ""), str(ipam_cfg.get("IPv6Address") or "")
        check_static_ip(n, static)
        check_static_ip(n, static6)
        book = self.svc.addresses[n.id]
        ip, pool = book.request(c.id, static)
        v6 = None
        try:
            if n.enable_ipv6 and book.has(6):
                v6 = book.request(c.id, static6, version=6)
        except BaseException:
            book.release(c.id)
            raise
        mac = str(cfg.get("MacAddress") or (c.config.get("MacAddress") if index == 0 else "") or ipam.mac_for(ip))
        host_if = host_ifname(c.network_settings["SandboxID"], n.id)
        ifname = self._free_ifname(c)
        gateway = str(pool.gateway) if pool.gateway is not None and not n.internal else None
        default_route = gateway if not any(ep.get("Gateway") for ep in c.network_settings["Networks"].values()) else None
        address6 = f"{v6[0]}/{v6[1].subnet.prefixlen}" if v6 else None
        gateway6 = str(v6[1].gateway) if v6 and v6[1].gateway is not None and not n.internal else None
        try:
            await self.svc.run(links.attach, path, n.bridge_name, host_if, ifname, mac,
                               f"{ip}/{pool.subnet.prefixlen}", default_route, self.svc.mtu(n), address6, gateway6)
        except BaseException:
            book.release(c.id)
            raise
        aliases = list(cfg.get("Aliases") or [])
        if is_user_network(n) and c.short_id not in aliases:
            aliases.append(c.short_id)
        c.network_settings["Networks"][n.name] = {
            "IPAMConfig": cfg.get("IPAMConfig") or None, "Links": cfg.get("Links") or None,
            "Aliases": aliases or None, "NetworkID": n.id, "EndpointID": secrets.token_hex(32),
            "Gateway": str(pool.gateway) if pool.gateway is not None else "", "IPAddress": str(ip),
            "IPPrefixLen": pool.subnet.prefixlen, "IPv6Gateway": gateway6 or "",
            "GlobalIPv6Address": str(v6[0]) if v6 else "", "GlobalIPv6PrefixLen": v6[1].subnet.prefixlen if v6 else 0,
            "MacAddress": mac, "DriverOpts": cfg.get("DriverOpts") or None, "HostIfname": host_if, "Ifname": ifname}
        self._event("connect", c, n)

    def _event(self, action: str, c: Container, n: Network) -> None:
        self.svc.daemon.events.emit("network", action, n.id, {"container": c.id, "name": n.name, "type": n.driver})

    @staticmethod
    def _free_ifname(c: Container) -> str:
        used = {ep.get("Ifname") for ep in c.network_settings["Networks"].values()}
        return next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used)

    async def teardown(self, c: Container) -> None:
        """Undo a run's networking; safe on a half-made sandbox and when called twice."""
        from dockyard.kernel import netns
        from dockyard.network import links

        ns = c.network_settings
        if self._dns is not None:
            await self.dns.remove(c.id)
        await self.published.unpublish(c)
        for ep in (ns.get("Networks") or {}).values():
            # Removing the namespace (below) makes the kernel delete its veths, host ends included,
            # in the background: much faster than deleting each pair here.
            if ep.get("HostIfname") and not ns.get("SandboxKey"):
                await self._quiet(self.svc.run(links.detach, ep["HostIfname"]))
            book = self.svc.addresses.get(ep.get("NetworkID") or "")
            if book is not None:
                book.release(c.id)
            if ep.get("EndpointID") and ep.get("NetworkID") in {n.id for n in self.svc.store}:
                self._event("disconnect", c, self.svc.store.find(ep["NetworkID"]))
            ep.update(LIVE_FIELDS)
            ep.pop("HostIfname", None)
            ep.pop("Ifname", None)
        if ns.get("SandboxKey"):
            await self._quiet(self.svc.run(netns.remove, ns["SandboxKey"]))
        ns.update(SandboxID="", SandboxKey="", Ports={})

    @staticmethod
    async def _quiet(aw: Any) -> None:
        try:
            await aw
        except (DockyardError, OSError) as e:
            log.warning("network cleanup: %s", e)

    def files_for(self, c: Container) -> NetFiles:
        """Host entries (--link targets, then the container itself) and the resolver for its /etc files."""
        nets = c.network_settings.get("Networks") or {}
        cfg = self.svc.config
        entries: list[tuple[str, str]] = []
        for alias, child, ip in self._linked(c):
            names = [alias, str(child.config.get("Hostname") or child.short_id)]
            if alias != child.bare_name:
                names.append(child.bare_name)
            entries.append((ip, " ".join(names)))
        first = next((ep for ep in nets.values() if ep.get("Ifname") == "eth0"), None)
        if first is not None:
            hostname = str(c.config.get("Hostname") or c.short_id)
            domain = str(c.config.get("Domainname") or "")
            entries.append((first["IPAddress"], f"{hostname}.{domain} {hostname}" if domain else hostname))
        user = any(name not in ("bridge", "host", "none") for name in nets)
        return NetFiles(tuple(entries), user, tuple(cfg.dns), tuple(cfg.dns_search), tuple(cfg.dns_opts))

    def _linked(self, c: Container) -> list[tuple[str, Container, str]]:
        """(alias, target, target's IP on the default bridge) of each running --link target."""
        out: list[tuple[str, Container, str]] = []
        if "bridge" not in (c.network_settings.get("Networks") or {}):
            return out
        for link in c.host_config.get("Links") or []:
            target, _, alias = str(link).partition(":")
            try:
                child = self.svc.daemon.containers.get(target.lstrip("/"))
            except NotFound:
                continue
            ip = ((child.network_settings.get("Networks") or {}).get("bridge") or {}).get("IPAddress")
            if child.running and ip:
                out.append((alias.rsplit("/", 1)[-1] or child.bare_name, child, str(ip)))
        return out

    def link_env(self, c: Container) -> list[str]:
        """The legacy link variables: ALIAS_PORT..., ALIAS_NAME, ALIAS_ENV_... per --link target."""
        env: list[str] = []
        for alias, child, ip in self._linked(c):
            prefix = alias.upper().replace("-", "_")
            ports = sorted((int(k.split("/")[0]), (k.split("/") + ["tcp"])[1])
                           for k in (child.config.get("ExposedPorts") or {}))
            if ports:
                env.append(f"{prefix}_PORT={ports[0][1]}://{ip}:{ports[0][0]}")
            for port, proto in ports:
                key = f"{prefix}_PORT_{port}_{proto.upper()}"
                env += [f"{key}={proto}://{ip}:{port}", f"{key}_ADDR={ip}", f"{key}_PORT={port}",
                        f"{key}_PROTO={proto}"]
            env.append(f"{prefix}_NAME={c.name}/{alias}")
            for item in child.config.get("Env") or []:
                k, sep, v = str(item).partition("=")
                if sep and k not in ("HOME", "PATH"):
                    env.append(f"{prefix}_ENV_{k}={v}")
        return env

    def shared_files(self, c: Container) -> dict[str, str] | None:
        """For --network container:<x>, the /etc files of x."""
        mode = c.host_config.get("NetworkMode") or ""
        if not mode.startswith("container:"):
            return None
        other = self.svc.daemon.containers.get(mode[len("container:"):])
        return {k: other.paths[k] for k in ("HostnamePath", "HostsPath", "ResolvConfPath") if k in other.paths}

    # -- daemon restart ------------------------------------------------------------------------------
    async def restore(self, c: Container) -> None:
        """A container still running after a daemon restart: take its addresses, ports and DNS back."""
        ns = c.network_settings
        for name, ep in (ns.get("Networks") or {}).items():
            book = self.svc.addresses.get(ep.get("NetworkID") or "")
            if book is not None and ep.get("IPAddress"):
                book.adopt(c.id, ep["IPAddress"])
        primary = next((ep for ep in (ns.get("Networks") or {}).values() if ep.get("Ifname") == "eth0"), None)
        bridge = self.svc.store.find(primary["NetworkID"]).bridge_name if primary else ""
        await self.published.restore(c, primary, bridge)
        user_nets = [n for n in self.svc.store if is_user_network(n) and n.name in (ns.get("Networks") or {})]
        if user_nets and ns.get("SandboxKey"):
            try:
                await self._serve_dns(c, ns["SandboxKey"])
            except (DockyardError, OSError) as e:
                log.warning("DNS for %s not restored: %s", c.short_id, e)

    async def sweep(self, running: list[Container]) -> None:
        """After restore: drop veths and namespace files no running container owns."""
        from dockyard.kernel import netns
        from dockyard.network import links

        keep_if = {ep.get("HostIfname") for c in running
                   for ep in (c.network_settings.get("Networks") or {}).values()}
        for name in await self.svc.run(links.list_links, "vd", "veth"):
            if name not in keep_if:
                await self._quiet(self.svc.run(links.detach, name))
        keep_ns = {c.network_settings.get("SandboxKey") for c in running}
        directory = os.path.join(self.svc.config.exec_root, "netns")
        for entry in os.listdir(directory) if os.path.isdir(directory) else []:
            path = os.path.join(directory, entry)
            if path not in keep_ns:
                await self._quiet(self.svc.run(netns.remove, path))

    # -- connect / disconnect ---------------------------------------------------------------------
    async def connect(self, c: Container, n: Network, cfg: dict[str, Any]) -> None:
        mode = c.host_config.get("NetworkMode") or "default"
        if mode.startswith("container:"):
            raise InvalidArgument(SHARED_NETWORK)
        if mode == "host" or n.driver == "host":
            raise InvalidArgument(HOST_NETWORK)
        if mode == "none" or n.driver == "null":
            raise InvalidArgument(NO_NETWORK)
        if n.name in c.networking:
            raise Forbidden(f"endpoint with name {c.bare_name} already exists in network {n.name}")
        for key in ("IPv4Address", "IPv6Address"):
            check_static_ip(n, str((cfg.get("IPAMConfig") or {}).get(key) or ""))
        if c.running and c.network_settings.get("SandboxKey"):
            await self._attach(c, c.network_settings["SandboxKey"], n, cfg, len(c.network_settings["Networks"]))
            if is_user_network(n):
                await self._serve_dns(c, c.network_settings["SandboxKey"])
        c.networking[n.name] = cfg

    async def disconnect(self, c: Container, n: Network) -> None:
        from dockyard.network import links

        if n.name not in c.networking:  # dockerd 20.10 answers this one with a 500
            raise DockyardError(f"container {c.id} is not connected to network {n.name}")
        ep = (c.network_settings.get("Networks") or {}).pop(n.name, None)
        if ep and ep.get("HostIfname"):
            await self.svc.run(links.detach, ep["HostIfname"])
            self.svc.addresses[n.id].release(c.id)
            self._event("disconnect", c, n)
        c.networking.pop(n.name, None)

    async def close(self) -> None:
        await self.published.close()
        if self._dns is not None:
            await self._dns.close()


def check_static_ip(n: Network, static: str) -> None:
    if not static:
        return
    if n.name == "bridge":
        raise InvalidArgument("user specified IP address is supported on user defined networks only")
    ip = ipam.parse_ip(static)
    if ip.version == 4 and not n.user_subnets():  # IPv6 pools are always the user's
        raise InvalidArgument("user specified IP address is supported only when connecting to networks with "
                              "user configured subnets")
    pool_ok = any(p.version == ip.version and ip in p.subnet for p in n.pools())
    if not pool_ok:
        raise InvalidArgument(f"Invalid address {static}: It does not belong to any of this network's subnets")
