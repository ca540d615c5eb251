"""IPv4 address management: subnets for networks, addresses for endpoints.

Pure bookkeeping, rebuilt from the records at every daemon start (networks keep their pools in
their own files, endpoints keep their addresses in their containers' records), so nothing here is
persisted and nothing can leak. Error texts are the ones Docker users see from dockerd.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from dockyard.errors import Conflict, Forbidden, InvalidArgument, Unavailable

IPv4Net = ipaddress.IPv4Network
IPv4 = ipaddress.IPv4Address
IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network
IP = ipaddress.IPv4Address | ipaddress.IPv6Address

# Docker's local default pools: 172.17-31.0.0/16, then 192.168.0.0/16 cut in /20s. 172.17.0.0/16 is
# left out: it is what a Docker engine on the same host gives docker0.
DOCKER0_SUBNET = ipaddress.ip_network("172.17.0.0/16")


def default_pools() -> Iterator[IPv4Net]:
    for second in range(18, 32):
        yield ipaddress.IPv4Network(f"172.{second}.0.0/16")
    yield from ipaddress.IPv4Network("192.168.0.0/16").subnets(new_prefix=20)


def parse_subnet(text: str) -> IPv4Net:
    """An IPv4 subnet (where only IPv4 makes sense: --bip, --fixed-cidr, the host's routes)."""
    net = parse_any_subnet(text)
    if not isinstance(net, IPv4Net):
        raise InvalidArgument(f"invalid IPv4 CIDR address: {text}")
    return net


def parse_any_subnet(text: str) -> IPNet:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidArgument(f"invalid CIDR address: {text}") from None


def parse_ip(text: str) -> IP:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise InvalidArgument(f"invalid IP address: {text}") from None


@dataclass
class Pool:
    """One IPAM.Config entry of a network, validated."""

    subnet: IPNet
    gateway: IP | None
    ip_range: IPNet | None = None
    aux: dict[str, IP] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: dict[str, object], *, default_gateway: bool = True) -> Pool:
        try:
            subnet = parse_any_subnet(str(cfg["Subnet"]))
        except InvalidArgument as e:
            raise InvalidArgument(f"Invalid subnet {cfg['Subnet']} : {e}") from None
        rng = parse_any_subnet(str(cfg["IPRange"])) if cfg.get("IPRange") else None
        if rng is not None and (rng.version != subnet.version or not rng.subnet_of(subnet)):  # type: ignore[arg-type]
            raise Forbidden(f"no matching subnet for range {cfg['IPRange']}")
        gw: IP | None = None
        if cfg.get("Gateway"):
            gw = parse_ip(str(cfg["Gateway"]))
            if gw not in subnet:
                raise Forbidden(f"no matching subnet for gateway {gw}")
        elif default_gateway:
            gw = next(subnet.hosts(), None) if subnet.prefixlen < 32 else None
        aux = {}
        for name, addr in dict(cfg.get("AuxiliaryAddresses") or cfg.get("AuxAddress") or {}).items():  # type: ignore[call-overload]
            ip = parse_ip(str(addr))
            if ip not in subnet:
                raise Forbidden(f"no matching subnet for aux-address {ip}")
            aux[str(name)] = ip
        return cls(subnet, gw, rng, aux)

    def to_config(self) -> dict[str, object]:
        out: dict[str, object] = {"Subnet": str(self.subnet)}
        if self.ip_range is not None:
            out["IPRange"] = str(self.ip_range)
        if self.gateway is not None:
            out["Gateway"] = str(self.gateway)
        if self.aux:
            out["AuxiliaryAddresses"] = {k: str(v) for k, v in self.aux.items()}
        return out

    @property
    def version(self) -> int:
        return self.subnet.version

    def reserved(self) -> set[IP]:
        out: set[IP] = {self.subnet.network_address, *self.aux.values()}
        if self.version == 4:
            out.add(self.subnet.broadcast_address)
        if self.gateway is not None:
            out.add(self.gateway)
        return out


def pick_subnet(taken: Iterable[IPNet], candidates: Iterable[IPv4Net] | None = None) -> IPv4Net:
    """The first default pool overlapping nothing taken (our networks, the host's routes, docker0)."""
    used = [t for t in taken if t.version == 4] + [DOCKER0_SUBNET]
    for net in candidates if candidates is not None else default_pools():
        if not any(net.overlaps(t) for t in used):
            return net
    raise Unavailable("could not find an available, non-overlapping IPv4 address pool among the defaults "
                      "to assign to the network")


def check_overlap(subnet: IPNet, others: Iterable[IPNet]) -> None:
    if any(subnet.version == o.version and subnet.overlaps(o) for o in others):  # type: ignore[arg-type]
        raise Forbidden("Pool overlaps with other one on this address space")


class Addresses:
    """Addresses in use in one network; allocate the first free one, or a requested one."""

    def __init__(self, network_name: str, network_id: str, pools: list[Pool]) -> None:
        self.name = network_name
        self.id = network_id
        self.pools = pools
        self.used: dict[IP, str] = {}   # address -> owner (endpoint key)

    def pool_of(self, ip: IP) -> Pool | None:
        return next((p for p in self.pools if p.version == ip.version and ip in p.subnet), None)

    def has(self, version: int) -> bool:
        return any(p.version == version for p in self.pools)

    def request(self, owner: str, wanted: str = "", version: int = 4) -> tuple[IP, Pool]:
        if wanted:
            ip = parse_ip(wanted)
            pool = self.pool_of(ip)
            if pool is None:
                raise InvalidArgument(f"no configured subnet or ip-range contain the IP address {ip}")
            if ip in pool.reserved() or self.used.get(ip, owner) != owner:
                raise Conflict("Address already in use")
            self.used[ip] = owner
            return ip, pool
        for pool in self.pools:
            if pool.version != version:
                continue
            space = pool.ip_range or pool.subnet
            reserved = pool.reserved()
            for ip in space.hosts() if space.prefixlen < 31 else space:
                if ip not in reserved and ip not in self.used:
                    self.used[ip] = owner
                    return ip, pool
        raise Unavailable(f"no available IPv{version} addresses on this network's address pools: "
                          f"{self.name} ({self.id})")

    def adopt(self, owner: str, ip: str) -> None:
        """Mark an address as in use after a restart (no checks: the record is the truth)."""
        self.used[parse_ip(ip)] = owner

    def release(self, owner: str) -> None:
        for ip in [ip for ip, o in self.used.items() if o == owner]:
            del self.used[ip]


def mac_for(ip: IP) -> str:
    """The MAC Docker derives from an IPv4 address: 02:42 and the address's four bytes."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ip.packed)
