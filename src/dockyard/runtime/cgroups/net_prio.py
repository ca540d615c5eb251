"""The net_prio controller (v1 only): ``network.priorities[]`` -> net_prio.ifpriomap.

One "<interface> <priority>" write per entry. cgroup v2 has no equivalent;
there the setting is ignored, as runc does.
"""

from __future__ import annotations

from ...errors import InvalidArgument
from . import files
from .values import integer, items, section, string


def set_v1(path: str, resources: dict) -> None:
    for entry in items(section(resources, "network"), "priorities"):
        if not isinstance(entry, dict):
            raise InvalidArgument("network.priorities entries must be objects")
        name = string(entry, "name", "network.priorities")
        files.write(path, "net_prio.ifpriomap", f"{name} {integer(entry, 'priority', 'network.priorities')}")
