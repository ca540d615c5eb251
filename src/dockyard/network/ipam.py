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

# Docker's local default pools: 172.17-31.0.0/16, then 192.168.0.0/16 cut in /20s. 172.17.0.0/16 is
# left out: it is what a Docker engine on the same host gives docker0.
DOCKER0_SUBNET = ipaddress.ip_network("172.17.0.0/16")


def default_pools() -> Iterator[IPv4Net]:
    for second in range(18, 32):
        yield ipaddress.IPv4Network(f"172.{second}.0.0/16")
    yield from ipaddress.IPv4Network("192.168.0.0/16").subnets(new_prefix=20)


def parse_subnet(text: str) -> IPv4Net:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidArgument(f"invalid CIDR address: {text}") from None
    if not isinstance(net, IPv4Net):
        raise InvalidArgument("IPv6 networks are not supported by Dockyard yet")
    return net


def parse_ip(text: str) -> IPv4:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidArgument(f"invalid IP address: {text}") from None
    if not isinstance(ip, IPv4):
        raise InvalidArgument("IPv6 addresses are not supported by Dockyard yet")
    return ip


@dataclass
class Pool:
    """One IPAM.Config entry of a network, validated."""

    subnet: IPv4Net
    gateway: IPv4 | None
    ip_range: IPv4Net | None = None
    aux: dict[str, IPv4] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: dict[str, object], *, default_gateway: bool = True) -> Pool:
        try:
            subnet = parse_subnet(str(cfg["Subnet"]))
        except InvalidArgument as e:
            raise InvalidArgument(f"Invalid subnet {cfg['Subnet']} : {e}") from None
        rng = parse_subnet(str(cfg["IPRange"])) if cfg.get("IPRange") else None
        if rng is not None and not rng.subnet_of(subnet):
            raise Forbidden(f"no matching subnet for range {cfg['IPRange']}")
        gw: IPv4 | None = None
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

    def reserved(self) -> set[IPv4]:
        out = {self.subnet.network_address, self.subnet.broadcast_address, *self.aux.values()}
        if self.gateway is not None:
            out.add(self.gateway)
        return out


def pick_subnet(taken: Iterable[IPv4Net], candidates: Iterable[IPv4Net] | None = None) -> IPv4Net:
    """The first default pool overlapping nothing taken (our networks, the host's routes, docker0)."""
    used = [*taken, DOCKER0_SUBNET]
    for net in candidates if candidates is not None else default_pools():
        if not any(net.overlaps(t) for t in used):
            return net
    raise Unavailable("could not find an available, non-overlapping IPv4 address pool among the defaults "
                      "to assign to the network")


def check_overlap(subnet: IPv4Net, others: Iterable[IPv4Net]) -> None:
    if any(subnet.overlaps(o) for o in others):
        raise Forbidden("Pool overlaps with other one on this address space")


class Addresses:
    """Addresses in use in one network; allocate the first free one, or a requested one."""

    def __init__(self, network_name: str, network_id: str, pools: list[Pool]) -> None:
        self.name = network_name
        self.id = network_id
        self.pools = pools
        self.used: dict[IPv4, str] = {}   # address -> owner (endpoint key)

    def pool_of(self, ip: IPv4) -> Pool | None:
        return next((p for p in self.pools if ip in p.subnet), None)

    def request(self, owner: str, wanted: str = "") -> tuple[IPv4, Pool]:
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
            space = pool.ip_range or pool.subnet
            reserved = pool.reserved()
            for ip in space.hosts() if space.prefixlen < 31 else space:
                if ip not in reserved and ip not in self.used:
                    self.used[ip] = owner
                    return ip, pool
        raise Unavailable(f"no available IPv4 addresses on this network's address pools: {self.name} ({self.id})")

    def adopt(self, owner: str, ip: str) -> None:
        """Mark an address as in use after a restart (no checks: the record is the truth)."""
        self.used[parse_ip(ip)] = owner

    def release(self, owner: str) -> None:
        for ip in [ip for ip, o in self.used.items() if o == owner]:
            del self.used[ip]


def mac_for(ip: IPv4) -> str:
    """The MAC Docker derives from an IPv4 address: 02:42 and the address's four bytes."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ip.packed)
