"""Netlink plumbing for container networks: bridges, veth pairs, addresses, routes.

Everything goes through pyroute2 (rtnetlink), never the ``ip`` command. Each call opens its own
IPRoute in the calling thread's network namespace and closes it before returning, so the calls
are safe from any worker thread (not from a thread running an asyncio loop: pyroute2's sync API
runs its own loop). Work inside a container's namespace runs through ``kernel.netns.run_in``,
because a netlink socket acts on the namespace it was created in.

A container's interface is made straight inside its namespace (the veth peer is created there
under its final name and MAC), so nothing with a temporary name ever appears on the host.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import random
import re
import socket
from contextlib import contextmanager
from socket import AF_INET, AF_INET6
from typing import Any, Callable, Iterator, TypeVar

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from dockyard.errors import Conflict, DockyardError, InvalidArgument
from dockyard.kernel import netns as kns
from dockyard.network import sysctl

IFA_F_NODAD = 0x02
T = TypeVar("T")
MAIN_TABLE = 254
IFNAMSIZ = 15  # usable characters in an interface name
_MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")


@contextmanager
def _ipr(what: str = "netlink request") -> Iterator[Any]:
    """An IPRoute bound to the calling thread's network namespace, closed on exit.

    Netlink errors escaping the block become DockyardErrors naming what was being done.
    """
    ipr = IPRoute()
    try:
        yield ipr
    except NetlinkError as e:
        raise DockyardError(f"{what}: {_reason(e)}") from e
    finally:
        ipr.close()


def _in_netns(path: str, fn: Callable[[Any], T], what: str = "netlink request") -> T:
    """Run fn(ipr) with an IPRoute living inside the namespace at path."""
    def body() -> T:
        with _ipr(f"{what} in {path}") as ipr:
            return fn(ipr)

    return kns.run_in(path, body)


def _index(name: str) -> int | None:
    """The ifindex of a link by name in the calling thread's namespace, or None.

    An ioctl on a fresh socket: about a hundred times cheaper than a netlink round trip
    through pyroute2, which matters on the container start path.
    """
    try:
        return socket.if_nametoindex(name)
    except OSError:
        return None


def _kind(link: Any) -> str | None:
    info = link.get_attr("IFLA_LINKINFO")
    return info.get_attr("IFLA_INFO_KIND") if info is not None else None


def _check_name(name: str) -> None:
    if not name or len(name) > IFNAMSIZ or "/" in name or any(c.isspace() for c in name):
        raise InvalidArgument(f"invalid interface name {name!r}")


def _check_mac(mac: str) -> None:
    if not _MAC.fullmatch(mac):
        raise InvalidArgument(f"invalid MAC address {mac!r}")


def _random_mac() -> str:
    """A locally administered unicast MAC, so the bridge's MAC never follows its ports'."""
    octets = [0x02] + [random.randrange(256) for _ in range(5)]
    return ":".join(f"{o:02x}" for o in octets)


def _ipv4_addresses(ipr: Any, index: int) -> set[str]:
    """The "ip/len" IPv4 addresses on a link."""
    return {
        f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}"
        for a in ipr.get_addr(family=AF_INET, index=index)
    }


def _ipv6_global_addresses(ipr: Any, index: int) -> set[str]:
    """The "ip/len" IPv6 addresses on a link, less the link-local ones the kernel manages."""
    out = set()
    for a in ipr.get_addr(family=AF_INET6, index=index):
        iface = ipaddress.IPv6Interface(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}")
        if not iface.ip.is_link_local:
            out.add(str(iface))
    return out


def _parse_iface6(address: str) -> ipaddress.IPv6Interface:
    try:
        return ipaddress.IPv6Interface(address)
    except ValueError as e:
        raise InvalidArgument(f"invalid address {address!r}: {e}") from e


def _add_address6(ipr: Any, index: int, iface: ipaddress.IPv6Interface) -> None:
    """An IPv6 address without duplicate address detection (usable at once, as Docker sets it)."""
    _ignore(errno.EEXIST, lambda: ipr.addr("add", index=index, address=str(iface.ip),
                                           prefixlen=iface.network.prefixlen, flags=IFA_F_NODAD))


def _parse_iface(address: str) -> ipaddress.IPv4Interface:
    try:
        return ipaddress.IPv4Interface(address)
    except ValueError as e:
        raise InvalidArgument(f"invalid address {address!r}: {e}") from e


# ---------------------------------------------------------------------------- host side

def ensure_bridge(name: str, addresses: list[str], mtu: int = 1500) -> None:
    """Make the bridge exist, hold exactly these IPv4 addresses, have this MTU and be up.

    Idempotent. Also sets route_localnet on it, so DNAT from 127.0.0.1 to containers works.
    """
    _check_name(name)
    wanted = {str(_parse_iface(a)) for a in addresses if ":" not in a}
    wanted6 = {str(_parse_iface6(a)) for a in addresses if ":" in a}
    with _ipr(f"cannot set up bridge {name}") as ipr:
        index = _create_bridge(ipr, name, mtu)
        link = ipr.get_links(index)[0]
        if _kind(link) != "bridge":
            raise Conflict(f"interface {name} exists and is not a bridge")
        if link.get_attr("IFLA_MTU") != mtu:
            ipr.link("set", index=index, mtu=mtu)
        present = _ipv4_addresses(ipr, index)
        for extra in sorted(present - wanted):
            ip, plen = extra.split("/")
            ipr.addr("del", index=index, address=ip, prefixlen=int(plen))
        for missing in sorted(wanted - present):
            ip, plen = missing.split("/")
            _ignore(errno.EEXIST, lambda: ipr.addr("add", index=index, address=ip, prefixlen=int(plen)))
        present6 = _ipv6_global_addresses(ipr, index)
        for extra in sorted(present6 - wanted6):
            old6 = ipaddress.IPv6Interface(extra)
            ipr.addr("del", index=index, address=str(old6.ip), prefixlen=old6.network.prefixlen)
        for missing in sorted(wanted6 - present6):
            _add_address6(ipr, index, ipaddress.IPv6Interface(missing))
        ipr.link("set", index=index, state="up")
    sysctl.set_route_localnet(name)


def _create_bridge(ipr: Any, name: str, mtu: int) -> int:
    """The bridge's ifindex, creating it (with a fixed random MAC) when missing."""
    index = _index(name)
    if index is not None:
        return index
    try:
        ipr.link("add", ifname=name, kind="bridge", mtu=mtu, address=_random_mac())
    except NetlinkError as e:
        if e.code != errno.EEXIST:  # lost a race with another creator: fine
            raise DockyardError(f"cannot create bridge {name}: {e}") from e
    index = _index(name)
    if index is None:
        raise DockyardError(f"bridge {name} vanished while being set up")
    return index


def _ignore(code: int, fn: Callable[[], object]) -> None:
    """Call fn, treating a netlink error with this errno as success."""
    try:
        fn()
    except NetlinkError as e:
        if e.code != code:
            raise


def delete_link(name: str) -> None:
    """Delete a link (bridge, veth...) by name if it exists; deleting a veth removes both ends."""
    index = _index(name)
    if index is None:
        return
    with _ipr(f"cannot delete interface {name}") as ipr:
        try:
            ipr.link("del", index=index)
        except NetlinkError as e:
            if e.code not in (errno.ENODEV, errno.ENOENT):
                raise DockyardError(f"cannot delete interface {name}: {e}") from e


def link_exists(name: str) -> bool:
    """True when a link of that name exists in the caller's namespace."""
    return _index(name) is not None


def list_links(prefix: str, kind: str | None = None) -> list[str]:
    """Names of the links starting with prefix (and of that kind, e.g. "bridge", "veth")."""
    with _ipr() as ipr:
        names = []
        for link in ipr.get_links():
            ifname = link.get_attr("IFLA_IFNAME")
            if ifname.startswith(prefix) and (kind is None or _kind(link) == kind):
                names.append(ifname)
        return sorted(names)


def host_routes(exclude_prefixes: tuple[str, ...] = ()) -> list[str]:
    """IPv4 networks ("a.b.c.d/len") in use in the caller's namespace: every address's network
    and every main-table route but the default one, for IPAM to stay clear of them.

    Links whose names start with one of exclude_prefixes (the engine's own bridges) are left out.
    """
    nets: set[ipaddress.IPv4Network] = set()
    with _ipr() as ipr:
        skip = {
            link["index"]
            for link in ipr.get_links()
            if exclude_prefixes and link.get_attr("IFLA_IFNAME").startswith(exclude_prefixes)
        }
        for a in ipr.get_addr(family=AF_INET):
            if a["index"] not in skip:
                nets.add(ipaddress.IPv4Interface(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}").network)
        for r in ipr.get_routes(family=AF_INET, table=MAIN_TABLE):
            if r["dst_len"] == 0 or r.get_attr("RTA_OIF") in skip:
                continue
            nets.add(ipaddress.IPv4Network(f"{r.get_attr('RTA_DST')}/{r['dst_len']}", strict=False))
    return [str(n) for n in sorted(nets)]


# ---------------------------------------------------------------------------- container side

def attach(
    netns: str,
    bridge: str,
    host_ifname: str,
    ifname: str,
    mac: str,
    address: str,
    gateway: str | None,
    mtu: int = 1500,
    address6: str | None = None,
    gateway6: str | None = None,
) -> None:
    """Plug the namespace at netns into bridge through a veth pair.

    address6/gateway6: the endpoint's IPv6 address ("ip/len") and default route, on dual-stack
    networks (no duplicate address detection, as Docker sets it).

    host_ifname stays on the host, enslaved to the bridge and up; its peer is created inside
    the namespace as ifname with this MAC, gets address ("ip/len"), goes up, and, when gateway
    is given and the namespace has no default route yet, a default route via gateway. On any
    failure what was made is deleted and a DockyardError says what went wrong.
    """
    _check_name(host_ifname)
    _check_name(ifname)
    _check_mac(mac)
    iface = _parse_iface(address)
    iface6 = _parse_iface6(address6) if address6 else None
    created = False
    try:
        _make_veth(netns, bridge, host_ifname, ifname, mac, mtu)
        created = True
        _hairpin(host_ifname)
        what = f"failed to attach {ifname} ({address}) to bridge {bridge}"
        _in_netns(netns, lambda ipr: _configure_inside(ipr, ifname, iface, gateway, iface6, gateway6), what)
    except BaseException as e:
        if created:
            _undo(host_ifname)
        if isinstance(e, DockyardError):
            raise
        if isinstance(e, (NetlinkError, OSError, ValueError)):
            raise DockyardError(
                f"failed to attach {ifname} ({address}) to bridge {bridge} via {host_ifname}: {_reason(e)}"
            ) from e
        raise


def _make_veth(netns: str, bridge: str, host_ifname: str, ifname: str, mac: str, mtu: int) -> None:
    """Create the pair, host end on the bridge and up, peer already inside the namespace."""
    master = _index(bridge)
    if master is None:
        raise DockyardError(f"failed to attach {ifname} via {host_ifname}: bridge {bridge} not found")
    fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        peer = {"ifname": ifname, "address": mac.lower(), "mtu": mtu, "net_ns_fd": fd}
        with _ipr(f"failed to create veth {host_ifname} for {ifname} on bridge {bridge}") as ipr:
            ipr.link("add", ifname=host_ifname, kind="veth", mtu=mtu, master=master, state="up", peer=peer)
    finally:
        os.close(fd)


def _hairpin(host_ifname: str) -> None:
    """A container reaching its own published port gets the DNAT'd packet back out the bridge port
    it came in by (br_netfilter); the bridge drops that unless the port is in hairpin mode."""
    index = _index(host_ifname)
    if index is not None:
        with _ipr(f"failed to set hairpin mode on {host_ifname}") as ipr:
            ipr.brport("set", index=index, mode=1)


def _configure_inside(ipr: Any, ifname: str, iface: ipaddress.IPv4Interface, gateway: str | None,
                      iface6: ipaddress.IPv6Interface | None = None, gateway6: str | None = None) -> None:
    """Addresses, up, and the default routes, done inside the container's namespace."""
    index = _index(ifname)
    if index is None:
        raise DockyardError(f"interface {ifname} did not appear in the container's namespace")
    ipr.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
    if iface6 is not None:
        _add_address6(ipr, index, iface6)
    ipr.link("set", index=index, state="up")
    if gateway:
        # "add" is exclusive: EEXIST means the namespace has its default route already
        _ignore(errno.EEXIST, lambda: ipr.route("add", dst="0.0.0.0/0", gateway=gateway, oif=index))
    if iface6 is not None and gateway6:
        _ignore(errno.EEXIST, lambda: ipr.route("add", family=AF_INET6, dst="::/0", gateway=gateway6, oif=index))


def _undo(host_ifname: str) -> None:
    """Best-effort removal of a half-made pair; the original error is what the caller sees."""
    try:
        delete_link(host_ifname)
    except Exception:
        pass


def _reason(e: BaseException) -> str:
    if isinstance(e, NetlinkError):
        return os.strerror(e.code) if e.code else str(e)
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e)


def detach(host_ifname: str) -> None:
    """Remove a container's veth pair by its host end (the peer goes with it). Idempotent."""
    delete_link(host_ifname)


def loopback_up(netns: str) -> None:
    """Bring "lo" up inside the namespace at netns."""
    def up(ipr: Any) -> None:
        index = _index("lo")
        if index is not None:
            ipr.link("set", index=index, state="up")

    _in_netns(netns, up, "cannot bring up lo")


def interface_names(netns: str) -> list[str]:
    """Names of the links inside the namespace at netns (to pick the next free eth<N>)."""
    return _in_netns(netns, lambda ipr: sorted(link.get_attr("IFLA_IFNAME") for link in ipr.get_links()))
