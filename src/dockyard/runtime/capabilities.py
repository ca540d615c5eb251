"""OCI ``process.capabilities``: parsed to bitmasks and applied as runc does.

The container's init, running as root, does (runc 1.1.5's finalizeNamespace):

    sets = parse(spec_caps)
    drop_bounding(sets)          # needs CAP_SETPCAP: before the uid switch
    set_keepcaps(True)           # keep the permitted set across setresuid
    ... setgroups / setresgid / setresuid ...
    set_keepcaps(False)
    apply(sets)                  # capset, then the ambient set

Unknown names, and names this kernel does not have (above
/proc/sys/kernel/cap_last_cap), are ignored with one warning, as runc does;
a missing ``capabilities`` object means no capabilities at all.
"""

from __future__ import annotations

import errno
import os

from ..errors import InvalidArgument, Unavailable
from ..kernel import capability
from . import log

CAP_NAMES: dict[str, int] = {
    name: number
    for number, name in enumerate(
        (
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_DAC_READ_SEARCH",
            "CAP_FOWNER",
            "CAP_FSETID",
            "CAP_KILL",
            "CAP_SETGID",
            "CAP_SETUID",
            "CAP_SETPCAP",
            "CAP_LINUX_IMMUTABLE",
            "CAP_NET_BIND_SERVICE",
            "CAP_NET_BROADCAST",
            "CAP_NET_ADMIN",
            "CAP_NET_RAW",
            "CAP_IPC_LOCK",
            "CAP_IPC_OWNER",
            "CAP_SYS_MODULE",
            "CAP_SYS_RAWIO",
            "CAP_SYS_CHROOT",
            "CAP_SYS_PTRACE",
            "CAP_SYS_PACCT",
            "CAP_SYS_ADMIN",
            "CAP_SYS_BOOT",
            "CAP_SYS_NICE",
            "CAP_SYS_RESOURCE",
            "CAP_SYS_TIME",
            "CAP_SYS_TTY_CONFIG",
            "CAP_MKNOD",
            "CAP_LEASE",
            "CAP_AUDIT_WRITE",
            "CAP_AUDIT_CONTROL",
            "CAP_SETFCAP",
            "CAP_MAC_OVERRIDE",
            "CAP_MAC_ADMIN",
            "CAP_SYSLOG",
            "CAP_WAKE_ALARM",
            "CAP_BLOCK_SUSPEND",
            "CAP_AUDIT_READ",
            "CAP_PERFMON",
            "CAP_BPF",
            "CAP_CHECKPOINT_RESTORE",
        )
    )
}
CAP_SETPCAP = CAP_NAMES["CAP_SETPCAP"]
KINDS = ("bounding", "effective", "inheritable", "permitted", "ambient")


class CapSets:
    """The five capability sets of a process, as masks (bit N: capability N).

    ``unknown`` holds the names that were ignored. Immutable.
    """

    __slots__ = KINDS + ("unknown",)
    bounding: int
    effective: int
    inheritable: int
    permitted: int
    ambient: int
    unknown: tuple[str, ...]

    def __init__(
        self,
        bounding: int = 0,
        effective: int = 0,
        inheritable: int = 0,
        permitted: int = 0,
        ambient: int = 0,
        unknown: tuple[str, ...] = (),
    ) -> None:
        for name, value in zip(KINDS + ("unknown",), (bounding, effective, inheritable, permitted, ambient, unknown)):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("CapSets is immutable")

    def _key(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CapSets) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        sets = ", ".join(f"{kind}={getattr(self, kind):#x}" for kind in KINDS)
        return f"CapSets({sets}, unknown={self.unknown!r})"

    def names(self, kind: str) -> list[str]:
        """The capability names in one set, in number order."""
        mask = getattr(self, kind)
        return [name for name, number in CAP_NAMES.items() if mask >> number & 1]


def parse(caps: dict | None, *, last_cap: int | None = None) -> CapSets:
    """OCI ``process.capabilities`` to masks; ``last_cap`` defaults to this kernel's."""
    if caps is None:
        return CapSets()
    if not isinstance(caps, dict):
        raise InvalidArgument("process.capabilities must be an object")
    if last_cap is None:
        last_cap = capability.last_cap()
    masks: dict[str, int] = {}
    unknown: set[str] = set()
    for kind in KINDS:
        names = caps.get(kind) or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise InvalidArgument(f"process.capabilities.{kind} must be a list of strings")
        mask = 0
        for name in names:
            number = CAP_NAMES.get(name)
            if number is None or number > last_cap:
                unknown.add(name)
            else:
                mask |= 1 << number
        masks[kind] = mask
    if unknown:
        log.get().warning(f"ignoring unknown or unavailable capabilities: [{' '.join(sorted(unknown))}]")
    return CapSets(**masks, unknown=tuple(sorted(unknown)))


def drop_bounding(sets: CapSets) -> None:
    """Drop from the bounding set every capability not in ``sets.bounding``.

    As runc does, nothing happens without CAP_SETPCAP in the effective set,
    and capabilities the kernel refuses as unknown (EINVAL) are skipped.
    """
    try:
        effective = capability.capget()[0]
        if not effective >> CAP_SETPCAP & 1:
            return
        for cap in range(capability.last_cap() + 1):
            if sets.bounding >> cap & 1:
                continue
            try:
                capability.bounding_drop(cap)
            except OSError as e:
                if e.errno != errno.EINVAL:
                    raise
    except OSError as e:
        raise _error("unable to apply bounding set", e) from e


def set_keepcaps(on: bool) -> None:
    """PR_SET_KEEPCAPS, set around the switch away from uid 0 (and cleared after)."""
    try:
        capability.set_keepcaps(on)
    except OSError as e:
        raise _error("unable to set keep caps" if on else "unable to clear keep caps", e) from e


def apply(sets: CapSets) -> None:
    """Set effective, permitted and inheritable (capset), then the ambient set.

    Called after the uid switch, which empties the ambient set. As in runc,
    an ambient capability the kernel refuses (it must be both permitted and
    inheritable) is skipped, not an error.
    """
    try:
        capability.capset(sets.effective, sets.permitted, sets.inheritable)
    except OSError as e:
        raise _error("unable to apply caps", e) from e
    try:
        capability.ambient_clear()
    except OSError:
        return  # EINVAL: no ambient capabilities before Linux 4.3
    for cap in range(capability.last_cap() + 1):
        if sets.ambient >> cap & 1:
            try:
                capability.ambient_raise(cap)
            except OSError as e:
                log.get().debug(f"ambient capability {cap} not raised: {os.strerror(e.errno or 0)}")


def _error(what: str, e: OSError) -> InvalidArgument | Unavailable:
    """EPERM/EINVAL: the config asks for what this process cannot have."""
    message = f"{what}: {os.strerror(e.errno or 0)}"
    if e.errno in (errno.EPERM, errno.EINVAL):
        return InvalidArgument(message)
    return Unavailable(message)
