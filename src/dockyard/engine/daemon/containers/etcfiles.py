"""/etc/hostname, /etc/hosts and /etc/resolv.conf of a container, written into its directory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

HOSTS_BASE = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
              "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
DEFAULT_DNS = ("8.8.8.8", "8.8.4.4")


def _write(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _host_file(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


@dataclass(frozen=True)
class NetFiles:
    """What the network setup adds to the files: host entries and the resolver to point at."""

    entries: tuple[tuple[str, str], ...] = ()    # (ip, "name [aliases...]"): links, then the container itself
    embedded_dns: bool = False                  # a user-defined network: nameserver 127.0.0.11
    dns: tuple[str, ...] = ()                   # the daemon's --dns, --dns-search, --dns-opt defaults
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()


EMBEDDED_DNS = "127.0.0.11"


def resolv_conf(hc: dict[str, Any], host_network: bool, host_text: str, net: NetFiles = NetFiles()) -> str:
    """The host's resolv.conf, minus loopback nameservers off the host network, with --dns* applied.

    On a user-defined network the nameserver is the embedded DNS server (which forwards to the
    servers that would otherwise be listed), with ndots:0 unless the options set ndots.
    """
    lines = host_text.splitlines()
    servers = [ln.split()[1] for ln in lines if ln.startswith("nameserver") and len(ln.split()) > 1]
    search = next((ln.split()[1:] for ln in reversed(lines) if ln.startswith("search")), [])
    options = next((ln.split()[1:] for ln in reversed(lines) if ln.startswith("options")), [])
    if not host_network:
        servers = [s for s in servers if not (s.startswith("127.") or s == "::1")]
        if not servers:
            servers = list(DEFAULT_DNS)
    servers = list(hc.get("Dns") or net.dns or servers)
    search = list(hc.get("DnsSearch") or net.dns_search or search)
    options = list(hc.get("DnsOptions") or net.dns_options or options)
    if net.embedded_dns:
        servers = [EMBEDDED_DNS]
        if not any(o.startswith("ndots:") for o in options):
            options.append("ndots:0")
    out = "".join(f"nameserver {s}\n" for s in servers)
    if search:
        out = f"search {' '.join(search)}\n" + out
    if options:
        out += f"options {' '.join(options)}\n"
    return out


def hosts(hc: dict[str, Any], hostname: str, host_network: bool, net: NetFiles = NetFiles()) -> str:
    if host_network:
        return _host_file("/etc/hosts") or HOSTS_BASE
    text = HOSTS_BASE
    for entry in hc.get("ExtraHosts") or []:
        name, _, ip = entry.partition(":")  # "host:ip"; the ip may be IPv6, so split at the first colon
        text += f"{ip}\t{name}\n"
    for ip, names in net.entries:
        text += f"{ip}\t{names}\n"
    return text


def write_all(directory: str, config: dict[str, Any], hc: dict[str, Any], host_network: bool,
              net: NetFiles = NetFiles()) -> dict[str, str]:
    """Write the three files; return their paths keyed as in inspect (HostnamePath ...)."""
    hostname = os.uname().nodename if host_network else str(config.get("Hostname") or "")
    paths = {"HostnamePath": os.path.join(directory, "hostname"), "HostsPath": os.path.join(directory, "hosts"),
             "ResolvConfPath": os.path.join(directory, "resolv.conf")}
    _write(paths["HostnamePath"], hostname + "\n")
    _write(paths["HostsPath"], hosts(hc, hostname, host_network, net))
    _write(paths["ResolvConfPath"], resolv_conf(hc, host_network, _host_file("/etc/resolv.conf"), net))
    return paths
