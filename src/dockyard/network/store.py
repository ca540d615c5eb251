"""Network records on disk and their lookup by name, id and id prefix.

    <data-root>/network/<id>.json    one record per network (tmp + fsync + rename)

A record is Docker's network inspect document without the live "Containers" map, plus
"BridgeName" (the Linux bridge behind a bridge network). Endpoints are not stored here:
each container's record holds its own, so a kill -9 can never leave the two disagreeing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from dockyard.engine.daemon.containers.store import write_atomic
from dockyard.errors import Conflict, NotFound
from dockyard.network.ipam import Pool

BUILTIN_DRIVERS = {"bridge": "bridge", "host": "host", "none": "null"}


@dataclass
class Network:
    name: str
    id: str
    created: str
    driver: str = "bridge"
    internal: bool = False
    attachable: bool = False
    ingress: bool = False
    enable_ipv6: bool = False
    ipam_driver: str = "default"
    ipam_options: dict[str, str] | None = field(default_factory=dict)
    ipam_config: list[dict[str, Any]] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    config_only: bool = False
    config_from: str = ""
    bridge_name: str = ""
    auto_subnet: bool = False   # the engine picked the subnet (no static --ip then, as in Docker)

    @property
    def builtin(self) -> bool:
        return self.name in BUILTIN_DRIVERS

    @property
    def is_bridge(self) -> bool:
        return self.driver == "bridge"

    def pools(self) -> list[Pool]:
        return [Pool.from_config(c) for c in self.ipam_config]

    def user_subnets(self) -> bool:
        """True when the user chose the subnet (static --ip is allowed only then)."""
        return bool(self.ipam_config) and not self.auto_subnet

    def to_json(self) -> dict[str, Any]:
        return {"Name": self.name, "Id": self.id, "Created": self.created, "Scope": "local",
                "Driver": self.driver, "EnableIPv6": self.enable_ipv6,
                "IPAM": {"Driver": self.ipam_driver, "Options": self.ipam_options, "Config": self.ipam_config},
                "Internal": self.internal, "Attachable": self.attachable, "Ingress": self.ingress,
                "ConfigFrom": {"Network": self.config_from}, "ConfigOnly": self.config_only,
                "Options": self.options, "Labels": self.labels, "BridgeName": self.bridge_name,
                "AutoSubnet": self.auto_subnet}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Network:
        ipam = d.get("IPAM") or {}
        return cls(name=d["Name"], id=d["Id"], created=d["Created"], driver=d.get("Driver", "bridge"),
                   internal=bool(d.get("Internal")), attachable=bool(d.get("Attachable")),
                   ingress=bool(d.get("Ingress")), enable_ipv6=bool(d.get("EnableIPv6")),
                   ipam_driver=ipam.get("Driver") or "default", ipam_options=ipam.get("Options"),
                   ipam_config=list(ipam.get("Config") or []), options=dict(d.get("Options") or {}),
                   labels=dict(d.get("Labels") or {}), config_only=bool(d.get("ConfigOnly")),
                   config_from=(d.get("ConfigFrom") or {}).get("Network", ""),
                   bridge_name=d.get("BridgeName", ""), auto_subnet=bool(d.get("AutoSubnet")))

    def inspect(self, containers: dict[str, Any]) -> dict[str, Any]:
        doc = self.to_json()
        del doc["BridgeName"], doc["AutoSubnet"]
        doc["Containers"] = containers
        return doc


class NetworkStore:
    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(root, exist_ok=True)
        self._by_id: dict[str, Network] = {}

    def load_all(self) -> list[str]:
        broken = []
        for entry in sorted(os.listdir(self.root)):
            if not entry.endswith(".json"):
                continue
            try:
                with open(os.path.join(self.root, entry), "rb") as f:
                    n = Network.from_json(json.loads(f.read()))
            except (OSError, ValueError, KeyError):
                broken.append(entry)
                continue
            self._by_id[n.id] = n
        return broken

    def __iter__(self) -> Iterator[Network]:
        return iter(sorted(self._by_id.values(), key=lambda n: n.created))

    def save(self, n: Network) -> None:
        write_atomic(os.path.join(self.root, f"{n.id}.json"), json.dumps(n.to_json()).encode())
        self._by_id[n.id] = n

    def delete(self, n: Network) -> None:
        try:
            os.unlink(os.path.join(self.root, f"{n.id}.json"))
        except FileNotFoundError:
            pass
        self._by_id.pop(n.id, None)

    def by_name(self, name: str) -> Network | None:
        return next((n for n in self._by_id.values() if n.name == name), None)

    def find(self, ref: str) -> Network:
        """By full id, then exact name, then unique id prefix (Docker's order)."""
        if ref in self._by_id:
            return self._by_id[ref]
        named = self.by_name(ref)
        if named is not None:
            return named
        matches = [n for n in self._by_id.values() if ref and n.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise Conflict(f"network {ref} is ambiguous ({len(matches)} matches found based on ID prefix)")
        raise NotFound(f"network {ref} not found")
