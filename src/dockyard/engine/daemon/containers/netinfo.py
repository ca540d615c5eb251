"""NetworkSettings of inspect, rendered from the container's record.

The record's EndpointsConfig (``networking``) lists the networks a container is on; its
NetworkSettings holds the live endpoints of the current run. A network without a live endpoint
shows Docker's empty endpoint. The top-level address fields mirror the default bridge's
endpoint only, as in Docker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dockyard.engine.daemon.containers.model import Container

if TYPE_CHECKING:
    from dockyard.engine.daemon.networking.service import NetworkService

PRIVATE = ("HostIfname", "Ifname")
TOP_FIELDS = ("EndpointID", "Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen", "IPAddress", "IPPrefixLen",
              "IPv6Gateway", "MacAddress")


def endpoint(network_id: str = "", cfg: dict[str, Any] | None = None) -> dict[str, Any]:
    cfg = cfg or {}
    return {"IPAMConfig": cfg.get("IPAMConfig") or None, "Links": cfg.get("Links") or None,
            "Aliases": cfg.get("Aliases") or None, "NetworkID": network_id, "EndpointID": "",
            "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "MacAddress": cfg.get("MacAddress") or "",
            "DriverOpts": cfg.get("DriverOpts") or None}


def network_name(c: Container) -> str:
    mode = c.host_config.get("NetworkMode") or "default"
    return "bridge" if mode == "default" else mode


def network_settings(c: Container, svc: NetworkService | None = None) -> dict[str, Any]:
    live = (c.network_settings.get("Networks") or {}) if c.running else {}
    stored = c.network_settings.get("Networks") or {}
    networks: dict[str, Any] = {}
    names = list(c.networking)  # seeded at create with the NetworkMode network (none for container:)
    for name in names:
        if name in live:
            networks[name] = {k: v for k, v in live[name].items() if k not in PRIVATE}
            continue
        nid = (stored.get(name) or {}).get("NetworkID", "")
        if not nid and c.running and svc is not None and name in ("host", "none"):
            found = svc.store.by_name(name)
            nid = found.id if found is not None else ""
        networks[name] = endpoint(nid, c.networking.get(name))
    bridge = networks.get("bridge") or endpoint()
    doc = {"Bridge": "", "SandboxID": c.network_settings.get("SandboxID", "") if c.running else "",
           "HairpinMode": False, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
           "Ports": (c.network_settings.get("Ports") or {}) if c.running else {},
           "SandboxKey": c.network_settings.get("SandboxKey", "") if c.running else "",
           "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None}
    doc.update({k: bridge.get(k, "") for k in TOP_FIELDS})
    doc["Networks"] = networks
    return doc
