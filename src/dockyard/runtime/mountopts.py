"""OCI mount options -> mount(2) flags, propagation flags and filesystem data."""

from __future__ import annotations

from ..kernel import consts as c

# option -> (clear, flag): clear=True means the option removes the flag.
FLAGS = {
    "async": (True, c.MS_SYNCHRONOUS), "atime": (True, c.MS_NOATIME), "bind": (False, c.MS_BIND),
    "defaults": (False, 0), "dev": (True, c.MS_NODEV), "diratime": (True, c.MS_NODIRATIME),
    "dirsync": (False, c.MS_DIRSYNC), "exec": (True, c.MS_NOEXEC), "iversion": (False, c.MS_I_VERSION),
    "lazytime": (False, c.MS_LAZYTIME), "loud": (True, c.MS_SILENT), "mand": (False, c.MS_MANDLOCK),
    "noatime": (False, c.MS_NOATIME), "nodev": (False, c.MS_NODEV), "nodiratime": (False, c.MS_NODIRATIME),
    "noexec": (False, c.MS_NOEXEC), "noiversion": (True, c.MS_I_VERSION), "nolazytime": (True, c.MS_LAZYTIME),
    "nomand": (True, c.MS_MANDLOCK), "norelatime": (True, c.MS_RELATIME),
    "nostrictatime": (True, c.MS_STRICTATIME), "nosuid": (False, c.MS_NOSUID),
    "nosymfollow": (False, c.MS_NOSYMFOLLOW), "symfollow": (True, c.MS_NOSYMFOLLOW),
    "rbind": (False, c.MS_BIND | c.MS_REC), "relatime": (False, c.MS_RELATIME),
    "remount": (False, c.MS_REMOUNT), "ro": (False, c.MS_RDONLY), "rw": (True, c.MS_RDONLY),
    "silent": (False, c.MS_SILENT), "strictatime": (False, c.MS_STRICTATIME), "suid": (True, c.MS_NOSUID),
    "sync": (False, c.MS_SYNCHRONOUS),
}

PROPAGATION = {
    "private": c.MS_PRIVATE, "rprivate": c.MS_PRIVATE | c.MS_REC,
    "shared": c.MS_SHARED, "rshared": c.MS_SHARED | c.MS_REC,
    "slave": c.MS_SLAVE, "rslave": c.MS_SLAVE | c.MS_REC,
    "unbindable": c.MS_UNBINDABLE, "runbindable": c.MS_UNBINDABLE | c.MS_REC,
}

# Recursive attribute options (mount_setattr); accepted, applied as their plain form.
RECURSIVE = {"rro": "ro", "rrw": "rw", "rnosuid": "nosuid", "rsuid": "suid", "rnodev": "nodev", "rdev": "dev",
             "rnoexec": "noexec", "rexec": "exec", "rnoatime": "noatime", "ratime": "atime",
             "rnodiratime": "nodiratime", "rdiratime": "diratime", "rrelatime": "relatime",
             "rnorelatime": "norelatime", "rstrictatime": "strictatime", "rnostrictatime": "nostrictatime",
             "rnosymfollow": "nosymfollow", "rsymfollow": "symfollow"}

# Options for the runtime itself, never passed to the kernel.
RUNTIME_ONLY = ("tmpcopyup", "idmap", "ridmap")


class ParsedOptions:
    """What a mount's ``options`` list means to mount(2)."""

    __slots__ = ("flags", "propagation", "data", "extensions")

    def __init__(self, flags: int, propagation: list[int], data: str, extensions: list[str]) -> None:
        self.flags = flags
        self.propagation = propagation
        self.data = data
        self.extensions = extensions

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & c.MS_BIND)


def parse(options: list[str] | None) -> ParsedOptions:
    """Split options into flags, propagation changes, fs data and runtime extensions."""
    flags = 0
    propagation: list[int] = []
    data: list[str] = []
    extensions: list[str] = []
    for opt in options or []:
        opt = RECURSIVE.get(opt, opt)
        if opt in FLAGS:
            clear, bit = FLAGS[opt]
            flags = flags & ~bit if clear else flags | bit
        elif opt in PROPAGATION:
            propagation.append(PROPAGATION[opt])
        elif opt in RUNTIME_ONLY:
            extensions.append(opt)
        else:
            data.append(opt)
    return ParsedOptions(flags, propagation, ",".join(data), extensions)


def propagation_flags(name: str) -> int:
    """Flags for ``linux.rootfsPropagation`` (default: recursive slave)."""
    return PROPAGATION.get(name, c.MS_SLAVE | c.MS_REC) if name else c.MS_SLAVE | c.MS_REC
