"""Block I/O: the v1 blkio controller and its v2 successor, io.

v1: ``weight`` -> blkio.weight (blkio.bfq.weight when the CFQ file is
absent), ``leafWeight`` -> blkio.leaf_weight, ``weightDevice[]`` ->
blkio[.bfq].weight_device / blkio.leaf_weight_device ("M:m W"),
``throttle{Read,Write}{Bps,IOPS}Device[]`` ->
blkio.throttle.{read,write}_{bps,iops}_device ("M:m rate"), one write per
device.

v2: ``weight`` -> io.bfq.weight when BFQ is there, else io.weight converted
from [10, 1000] to [1, 10000] (1 + (w - 10) * 9999 / 990); device weights
only where io.bfq.weight accepts them (kernel 5.4+); throttles -> io.max
("M:m rbps=N", wbps, riops, wiops).
"""

from __future__ import annotations

from ...errors import DockyardError, InvalidArgument
from . import files
from .values import integer, items, section, uint64

THROTTLES = (
    ("throttleReadBpsDevice", "blkio.throttle.read_bps_device", "rbps"),
    ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device", "wbps"),
    ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device", "riops"),
    ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", "wiops"),
)


def _dev(entry: object, key: str) -> tuple[int, int, dict]:
    if not isinstance(entry, dict):
        raise InvalidArgument(f"blockIO.{key} entries must be objects")
    where = "blockIO." + key
    return integer(entry, "major", where), integer(entry, "minor", where), entry


def set_v1(path: str, resources: dict) -> None:
    bio = section(resources, "blockIO")
    if not bio:
        return
    weight = integer(bio, "weight", "blockIO")
    devices = items(bio, "weightDevice")
    weight_file, device_file = "blkio.weight", "blkio.weight_device"
    if (weight or devices) and not files.exists(files.join(path, "blkio.weight")):
        weight_file, device_file = "blkio.bfq.weight", "blkio.bfq.weight_device"
    if weight != 0:
        files.write(path, weight_file, str(weight))
    leaf = integer(bio, "leafWeight", "blockIO")
    if leaf != 0:
        files.write(path, "blkio.leaf_weight", str(leaf))
    for entry in devices:
        major, minor, dev = _dev(entry, "weightDevice")
        w = integer(dev, "weight", "blockIO.weightDevice")
        lw = integer(dev, "leafWeight", "blockIO.weightDevice")
        if w != 0:
            files.write(path, device_file, f"{major}:{minor} {w}")
        if lw != 0:
            files.write(path, "blkio.leaf_weight_device", f"{major}:{minor} {lw}")
    for key, name, _v2 in THROTTLES:
        for entry in items(bio, key):
            major, minor, dev = _dev(entry, key)
            files.write(path, name, f"{major}:{minor} {integer(dev, 'rate', 'blockIO.' + key)}")


def weight_to_io(weight: int) -> int:
    """blkio weight [10, 1000] to io.weight [1, 10000], as runc converts it."""
    if weight == 0:
        return 0
    return 1 + uint64(uint64(weight - 10) * 9999) // 990


def is_set(resources: dict) -> bool:
    bio = section(resources, "blockIO")
    return integer(bio, "weight", "blockIO") != 0 or any(
        items(bio, k) for k in ("weightDevice",) + tuple(t[0] for t in THROTTLES)
    )


def set_v2(path: str, resources: dict) -> None:
    if not is_set(resources):
        return
    bio = section(resources, "blockIO")
    weight = integer(bio, "weight", "blockIO")
    devices = items(bio, "weightDevice")
    bfq = bool(weight or devices) and files.exists(files.join(path, "io.bfq.weight"))
    if weight != 0:
        if bfq:
            files.write(path, "io.bfq.weight", str(weight))
        else:
            files.write(path, "io.weight", str(weight_to_io(weight)))
    if bfq and devices:
        # an old kernel shows one number here and takes no per-device weight
        current = files.read(path, "io.bfq.weight").strip()
        if not current.lstrip("-").isdigit():
            for entry in devices:
                major, minor, dev = _dev(entry, "weightDevice")
                w = integer(dev, "weight", "blockIO.weightDevice")
                files.write(path, "io.bfq.weight", f"{major}:{minor} {w}\n")
    for key, _v1, name in THROTTLES:
        for entry in items(bio, key):
            major, minor, dev = _dev(entry, key)
            files.write(path, "io.max", f"{major}:{minor} {name}={integer(dev, 'rate', 'blockIO.' + key)}")


def _parse_v1(path: str, name: str) -> list[dict] | None:
    text = files.read_opt(path, name)
    if text is None:
        return None
    out = []
    for line in text.splitlines():
        fields = line.replace(":", " ").split()
        if len(fields) < 3:
            if len(fields) == 2 and fields[0] == "Total":
                continue
            raise DockyardError(f"unable to parse {path}/{name}: malformed line {line!r}", path=path)
        try:
            major, minor = int(fields[0]), int(fields[1])
            value = int(fields[3] if len(fields) == 4 else fields[2])
        except ValueError:
            raise DockyardError(f"unable to parse {path}/{name}: malformed line {line!r}", path=path) from None
        op = fields[2] if len(fields) == 4 else ""
        out.append({"major": major, "minor": minor, "op": op, "value": value})
    return out or None


_SERVICE = ("ioServicedRecursive", "ioServiceBytesRecursive")
# runc's order of preference: BFQ debug, BFQ, CFQ, throttle (recursive), throttle
_GROUPS = (
    (
        ("blkio.bfq.sectors_recursive", "sectorsRecursive"),
        ("blkio.bfq.io_service_time_recursive", "ioServiceTimeRecursive"),
        ("blkio.bfq.io_wait_time_recursive", "ioWaitTimeRecursive"),
        ("blkio.bfq.io_merged_recursive", "ioMergedRecursive"),
        ("blkio.bfq.io_queued_recursive", "ioQueueRecursive"),
        ("blkio.bfq.time_recursive", "ioTimeRecursive"),
        ("blkio.bfq.io_serviced_recursive", _SERVICE[0]),
        ("blkio.bfq.io_service_bytes_recursive", _SERVICE[1]),
    ),
    (("blkio.bfq.io_serviced_recursive", _SERVICE[0]), ("blkio.bfq.io_service_bytes_recursive", _SERVICE[1])),
    (
        ("blkio.sectors_recursive", "sectorsRecursive"),
        ("blkio.io_service_time_recursive", "ioServiceTimeRecursive"),
        ("blkio.io_wait_time_recursive", "ioWaitTimeRecursive"),
        ("blkio.io_merged_recursive", "ioMergedRecursive"),
        ("blkio.io_queued_recursive", "ioQueueRecursive"),
        ("blkio.time_recursive", "ioTimeRecursive"),
        ("blkio.io_serviced_recursive", _SERVICE[0]),
        ("blkio.io_service_bytes_recursive", _SERVICE[1]),
    ),
    (
        ("blkio.throttle.io_serviced_recursive", _SERVICE[0]),
        ("blkio.throttle.io_service_bytes_recursive", _SERVICE[1]),
    ),
    (("blkio.throttle.io_serviced", _SERVICE[0]), ("blkio.throttle.io_service_bytes", _SERVICE[1])),
)


def stats_v1(path: str, st: dict) -> None:
    """The first group of files the kernel fills (empty files are skipped)."""
    out = st["blkio"]
    for group in _GROUPS:
        for i, (name, key) in enumerate(group):
            entries = _parse_v1(path, name)
            if entries is None:
                if i == 0:
                    break  # try the next group
                return
            out[key] = entries
        else:
            return


_IO_OPS = {
    "rbytes": ("Read", "ioServiceBytesRecursive"),
    "wbytes": ("Write", "ioServiceBytesRecursive"),
    "rios": ("Read", "ioServicedRecursive"),
    "wios": ("Write", "ioServicedRecursive"),
}


def stats_v2(path: str, st: dict) -> None:
    text = files.read_opt(path, "io.stat")
    if text is None:
        return
    out = st["blkio"]
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        dev = parts[0].split(":")
        if len(dev) != 2:
            continue
        major, minor = int(dev[0]), int(dev[1])
        for item in parts[1:]:
            key, sep, value = item.partition("=")
            if not sep or key not in _IO_OPS:
                continue
            op, table = _IO_OPS[key]
            out[table].append({"major": major, "minor": minor, "op": op, "value": int(value)})
