"""The rdma controller: ``rdma{<device>: {hcaHandles, hcaObjects}}`` -> rdma.max.

The same file and format in v1 and v2: one "<device> hca_handle=N
hca_object=M" write per device (a missing limit is left out of the line).
Statistics are not part of runc's events output, so none are collected.
"""

from __future__ import annotations

from ...errors import InvalidArgument
from . import files
from .values import optional, section


def is_set(resources: dict) -> bool:
    return bool(section(resources, "rdma"))


def set_any(path: str, resources: dict) -> None:
    for device, limits in section(resources, "rdma").items():
        if not isinstance(limits, dict):
            raise InvalidArgument(f"rdma.{device} must be an object")
        line = device
        handles = optional(limits, "hcaHandles", "rdma." + device)
        objects = optional(limits, "hcaObjects", "rdma." + device)
        if handles is not None:
            line += f" hca_handle={handles}"
        if objects is not None:
            line += f" hca_object={objects}"
        files.write(path, "rdma.max", line)


set_v1 = set_any
set_v2 = set_any
