"""The engine's packet filtering and NAT, as one nftables table it owns alone (``ip dockyard``).

The engine hands over the whole desired state (its bridges and published ports); ``apply``
replaces the table in one transaction, so a reconcile at daemon start is the same call, a
failed apply leaves the previous rules in place, and no other table is ever touched.

What the rules do (the behaviour of Docker's iptables rules, written for nft):
- published ports: DNAT of packets addressed to a local address, in prerouting (from outside
  and from containers) and in output (from the host itself, loopback included: the bridge needs
  net.ipv4.conf.<bridge>.route_localnet=1, which the links module sets); a port bound to a
  specific host IP matches only that destination;
- masquerade of a bridge subnet's traffic leaving by another interface (unless internal or
  masquerade is off); of host-originated DNAT'd traffic going out a bridge (so 127.0.0.1 can
  reach a container, and replies come back to the host); and of DNAT'd traffic from a bridge
  back into the same bridge (hairpin: a container reaching its own or a neighbour's published
  port through the host);
- forwarding: internal bridges forward nothing in or out; icc=False drops bridge-to-same-bridge
  (seen only when br_netfilter passes bridged frames to the IP hooks, as for Docker); replies and
  DNAT'd connections may enter a bridge; two different engine bridges cannot start connections
  to each other; anything else trying to enter a bridge is dropped. Published ports are open to
  every source, other engine networks included (as with Docker's userland proxy).
An ``accept`` here only ends this table's chain: other tables on the host still have their say.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Sequence

from dockyard.errors import InvalidArgument
from dockyard.kernel import nftables

PROTOS = ("tcp", "udp", "sctp")
ANY_IP = ("", "0.0.0.0")


@dataclass(frozen=True)
class BridgeRule:
    """One engine bridge and its IPv4 subnet."""

    bridge: str
    subnet: str
    internal: bool = False
    masquerade: bool = True
    icc: bool = True


@dataclass(frozen=True)
class PortRule:
    """One published port; host_ip "" or "0.0.0.0" means every local address of the host."""

    proto: str
    host_ip: str
    host_port: int
    container_ip: str
    container_port: int
    bridge: str


def _name(text: str) -> str:
    """An interface name as an nft string literal (names never hold quotes or spaces)."""
    if not text or len(text) > 15 or any(c in text for c in "\"' \t\n\\/"):
        raise InvalidArgument(f"invalid interface name {text!r}")
    return f'"{text}"'


def _names(items: Sequence[str]) -> str:
    return "{ " + ", ".join(_name(i) for i in items) + " }"


def _subnet(text: str) -> str:
    try:
        return str(ipaddress.IPv4Network(text, strict=False))
    except ValueError as e:
        raise InvalidArgument(f"invalid subnet {text!r}: {e}") from None


def _ip(text: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise InvalidArgument(f"invalid IPv4 address {text!r}") from None


def _port(n: int) -> int:
    if not 1 <= int(n) <= 65535:
        raise InvalidArgument(f"invalid port {n}")
    return int(n)


def _chain(name: str, hook: str | None, kind: str, prio: str, rules: list[str]) -> list[str]:
    head = [f"\tchain {name} {{"]
    if hook:
        head.append(f"\t\ttype {kind} hook {hook} priority {prio}; policy accept;")
    return head + [f"\t\t{r}" for r in rules] + ["\t}"]


def _dnat_rules(ports: Sequence[PortRule]) -> list[str]:
    """The DNAT of each published port: specific host IPs first, then any-address ones."""
    rules = []
    ordered = sorted(ports, key=lambda p: p.host_ip in ANY_IP)
    for p in ordered:
        if p.proto not in PROTOS:
            raise InvalidArgument(f"invalid proto: {p.proto}")
        match = "" if p.host_ip in ANY_IP else f"ip daddr {_ip(p.host_ip)} "
        to = f"{_ip(p.container_ip)}:{_port(p.container_port)}"
        rules.append(f"{match}{p.proto} dport {_port(p.host_port)} dnat to {to}")
    return rules


def _postrouting_rules(bridges: Sequence[BridgeRule]) -> list[str]:
    rules = []
    for b in bridges:
        br, net = _name(b.bridge), _subnet(b.subnet)
        # hairpin: a container reaching a published port on its own bridge through the host
        rules.append(f"oifname {br} ip saddr {net} ct status dnat masquerade")
        # the host itself (127.0.0.1 included) reaching a published port
        rules.append(f"oifname {br} ct status dnat fib saddr type local masquerade")
        if b.masquerade and not b.internal:
            rules.append(f"oifname != {br} ip saddr {net} masquerade")
    return rules


def _forward_rules(bridges: Sequence[BridgeRule]) -> list[str]:
    names = [b.bridge for b in bridges]
    if not names:
        return []
    rules = []
    for b in bridges:
        br = _name(b.bridge)
        if b.internal:
            rules.append(f"iifname {br} oifname != {br} drop")
            rules.append(f"oifname {br} iifname != {br} drop")
        if not b.icc:
            rules.append(f"iifname {br} oifname {br} drop")
    rules.append("oifname @bridges ct state established,related accept")
    rules.append("oifname @bridges ct status dnat accept")
    for b in bridges:
        others = [n for n in names if n != b.bridge]
        if others:
            rules.append(f"iifname {_name(b.bridge)} oifname {_names(others)} drop")
    rules.append("iifname @bridges accept")
    rules.append("oifname @bridges drop")
    return rules


def render(bridges: Sequence[BridgeRule], ports: Sequence[PortRule], table: str = "dockyard") -> str:
    """The nft script that replaces table with exactly this state, in one transaction."""
    tname = _table(table)
    lines = [f"add table ip {tname}", f"delete table ip {tname}", f"table ip {tname} {{"]
    names = sorted({b.bridge for b in bridges})
    lines.append("\tset bridges {")
    lines.append("\t\ttype ifname")
    if names:
        lines.append(f"\t\telements = {_names(names)}")
    lines.append("\t}")
    lines += _chain("ports", None, "", "", _dnat_rules(ports))
    lines += _chain("prerouting", "prerouting", "nat", "dstnat", ["fib daddr type local jump ports"])
    # -100 is dstnat's value: nft 1.0.6 only knows the name "dstnat" in prerouting
    lines += _chain("output", "output", "nat", "-100", ["fib daddr type local jump ports"])
    lines += _chain("postrouting", "postrouting", "nat", "srcnat", _postrouting_rules(bridges))
    lines += _chain("forward", "forward", "filter", "filter", _forward_rules(bridges))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _table(table: str) -> str:
    if not table or not table.replace("_", "").replace("-", "").isalnum() or not table[0].isalpha():
        raise InvalidArgument(f"invalid nft table name {table!r}")
    return table


def apply(bridges: Sequence[BridgeRule], ports: Sequence[PortRule], table: str = "dockyard") -> None:
    """Make the table hold exactly these rules (atomic: on error the old rules stay)."""
    nftables.run(render(bridges, ports, table))


def render_dns_redirect(port: int, address: str = "127.0.0.11", table: str = "dockyard_dns") -> str:
    """Inside a container's namespace: queries to address:53 go to the embedded DNS server's port.

    The engine serves DNS on address:<port> (a free port), not on 53, so that a container can still
    run its own DNS server on port 53; conntrack maps the replies back to port 53.
    """
    tname = _table(table)
    ip = _ip(address)
    p = _port(port)
    return (f"add table ip {tname}\ndelete table ip {tname}\n"
            f"table ip {tname} {{\n"
            f"  chain output {{\n    type nat hook output priority -100; policy accept;\n"
            f"    ip daddr {ip} udp dport 53 dnat to {ip}:{p}\n"
            f"    ip daddr {ip} tcp dport 53 dnat to {ip}:{p}\n  }}\n}}\n")


def apply_dns_redirect(port: int, address: str = "127.0.0.11") -> None:
    """Apply render_dns_redirect in the calling thread's namespace (the container's)."""
    nftables.run(render_dns_redirect(port, address))


def remove(table: str = "dockyard") -> None:
    """Delete the table; nothing to do when it is absent."""
    tname = _table(table)
    nftables.run(f"add table ip {tname}\ndelete table ip {tname}\n")


def listing(table: str = "dockyard") -> str:
    """The table as nft prints it ("" when absent): for diagnostics and tests."""
    tname = _table(table)
    try:
        return nftables.run(f"list table ip {tname}")
    except nftables.NftError:
        return ""
