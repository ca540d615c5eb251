"""NetworkSettings of inspect for the built-in network modes.

Until bridge networking lands (its own issue), "bridge" gives the container a private network
namespace with only the loopback interface, like "none"; inspect says so with empty addresses.
"""

from __future__ import annotations

from typing import Any

from dockyard.engine.daemon.containers.model import Container


def endpoint(network_id: str = "") -> dict[str, Any]:
    return {"IPAMConfig": None, "Links": None, "Aliases": None, "NetworkID": network_id, "EndpointID": "",
            "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": None}


def network_name(c: Container) -> str:
    mode = c.host_config.get("NetworkMode") or "default"
    return "bridge" if mode == "default" else mode


def network_settings(c: Container) -> dict[str, Any]:
    return {"Bridge": "", "SandboxID": "", "HairpinMode": False, "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0, "Ports": {}, "SandboxKey": "", "SecondaryIPAddresses": None,
            "SecondaryIPv6Addresses": None, "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "",
            "Networks": {network_name(c): endpoint()}}
