"""The net_cls controller (v1 only): ``network.classID`` -> net_cls.classid.

cgroup v2 has no equivalent; there the setting is ignored, as runc does.
"""

from __future__ import annotations

from . import files
from .values import integer, section


def set_v1(path: str, resources: dict) -> None:
    classid = integer(section(resources, "network"), "classID", "network")
    if classid != 0:
        files.write(path, "net_cls.classid", str(classid))
