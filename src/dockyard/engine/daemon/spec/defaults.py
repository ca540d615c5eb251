"""The fixed parts of a container's OCI spec, as dockerd 20.10 lays them out.

Capabilities, the mounts every container gets, masked / read-only paths and
the device cgroup rules are data here so that build.py only assembles them.
"""

from __future__ import annotations

import copy

OCI_VERSION = "1.0.2"
DEFAULT_PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHM_SIZE = 64 * 1024 * 1024
INIT_PATH_IN_CONTAINER = "/sbin/docker-init"

# The 14 capabilities a non-privileged container keeps.
DEFAULT_CAPS: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)

# Capability numbers 0..37 (CAP_AUDIT_READ): Docker 20.10 stops there even on
# newer kernels (PERFMON, BPF, CHECKPOINT_RESTORE are not granted by "ALL").
_ALL_CAP_NAMES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
)


def _cap_last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return len(_ALL_CAP_NAMES) - 1


def all_capabilities() -> list[str]:
    """Every capability "ALL" / --privileged means on this kernel (at most CAP_AUDIT_READ)."""
    last = min(_cap_last_cap(), len(_ALL_CAP_NAMES) - 1)
    return list(_ALL_CAP_NAMES[: last + 1])


MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
)
READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
)

_DEFAULT_MOUNTS: tuple[dict, ...] = (
    {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": ["ro", "nosuid", "noexec", "nodev"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777"]},
)


def default_mounts() -> list[dict]:
    """A fresh copy of the seven mounts every container starts from."""
    return copy.deepcopy(list(_DEFAULT_MOUNTS))


def _rule(allow: bool, major: int, minor: int) -> dict:
    return {"allow": allow, "type": "c", "major": major, "minor": minor, "access": "rwm"}


def default_device_rules() -> list[dict]:
    """Device cgroup rules of a non-privileged container: deny all, then a few char devices.

    The runtime appends runc's own defaults (``c *:* m``, ``b *:* m``, 1:7,
    136:*, 5:2, 10:200), exactly as runc does under dockerd.
    """
    return [
        {"allow": False, "access": "rwm"},
        _rule(True, 1, 5), _rule(True, 1, 3), _rule(True, 1, 9), _rule(True, 1, 8),
        _rule(True, 5, 0), _rule(True, 5, 1), _rule(False, 10, 229),
    ]


DEFAULT_NAMESPACES: tuple[str, ...] = ("mount", "network", "uts", "pid", "ipc")
