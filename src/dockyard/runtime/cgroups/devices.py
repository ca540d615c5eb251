"""The devices controller: OCI device rules, v1 files and the v2 eBPF filter.

Rules are replayed, as in runc (libcontainer/cgroups/devices), into an
:class:`Emulator` that starts in *deny-all* mode, so a rule list without a
leading "a" deny still yields an allow-list.

v1: the cgroup's current state is read from ``devices.list``, and only the
transition is written to ``devices.deny`` / ``devices.allow``: a disruptive
``a *:* rwm`` only when the default policy changes (or the current state is
an allow-all list, whose deny exceptions cannot be read back), then
removals and additions sorted by (major, minor, type). ``devices.list`` is
read back and compared at the end.

v2: the emulator's clean rule list becomes an eBPF program
(:mod:`.devicefilter`) attached to the cgroup dir, replacing the previous
one; so v1 and v2 accept and refuse the same rule sets.

Inside a user namespace the v1 files are left alone, as runc does.

A rule is a tuple ``(type, major, minor, perms, allow)``: type "a", "b" or
"c"; -1 for a wildcard major/minor; perms a subset of "rwm" in that order.
"""

from __future__ import annotations

import os

from ...errors import DockyardError, InvalidArgument
from . import files

Rule = tuple  # (type: str, major: int, minor: int, perms: str, allow: bool)

_BITS = {"r": 1, "w": 2, "m": 4}


def perm_bits(perms: str) -> int:
    bits = 0
    for ch in perms:
        bits |= _BITS.get(ch, 0)
    return bits


def perm_str(bits: int) -> str:
    return ("r" if bits & 1 else "") + ("w" if bits & 2 else "") + ("m" if bits & 4 else "")


def cgroup_string(rule: Rule) -> str:
    """The devices.allow / devices.deny line of a rule, e.g. ``c 1:3 rwm``."""
    typ, major, minor, perms, _allow = rule
    ma = "*" if major == -1 else str(major)
    mi = "*" if minor == -1 else str(minor)
    return f"{typ} {ma}:{mi} {perms}"


class Emulator:
    """The state of one devices cgroup: a default policy plus exceptions."""

    def __init__(self, default_allow: bool = False) -> None:
        self.default_allow = default_allow
        # (type, major, minor) -> permission bits
        self.rules: dict[tuple[str, int, int], int] = {}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Emulator):
            return NotImplemented
        return self.default_allow == other.default_allow and self.rules == other.rules

    def __repr__(self) -> str:
        return f"Emulator(default_allow={self.default_allow}, rules={self.rules})"

    def _add(self, meta: tuple[str, int, int], bits: int) -> None:
        self.rules[meta] = self.rules.get(meta, 0) | bits

    def _remove(self, meta: tuple[str, int, int], bits: int) -> None:
        typ, major, minor = meta
        # cgroup v1 silently ignores removing part of a wildcard exception;
        # refuse instead of pretending the hole was punched.
        for partial in ((typ, -1, minor), (typ, major, -1), (typ, -1, -1)):
            if partial == meta:
                continue
            overlap = self.rules.get(partial, 0) & bits
            if overlap:
                raise InvalidArgument(
                    f"device rule {cgroup_string((typ, major, minor, perm_str(bits), False))} is not supported: "
                    f"cannot punch a hole in the wildcard rule "
                    f"{cgroup_string((partial[0], partial[1], partial[2], perm_str(self.rules[partial]), True))}"
                )
        left = self.rules.get(meta, 0) & ~bits
        if left:
            self.rules[meta] = left
        else:
            self.rules.pop(meta, None)

    def apply(self, rule: Rule) -> None:
        """Replay one rule, as the kernel would."""
        typ, major, minor, perms, allow = rule
        if typ == "a":
            self.default_allow = allow
            self.rules = {}
            return
        meta = (typ, major, minor)
        bits = perm_bits(perms)
        if allow == self.default_allow:
            self._remove(meta, bits)
        else:
            self._add(meta, bits)

    def ordered(self) -> list[tuple[tuple[str, int, int], int]]:
        """Exceptions sorted by (major, minor, type), for stable output."""
        return sorted(self.rules.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0]))

    def transition(self, target: Emulator) -> list[Rule]:
        """The fewest rules that turn this state into ``target``."""
        out: list[Rule] = []
        old = self.rules
        if self.default_allow or self.default_allow != target.default_allow:
            out.append(("a", -1, -1, "rwm", target.default_allow))
            old = {}
        for meta, bits in sorted(old.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
            dropped = bits & ~target.rules.get(meta, 0)
            if dropped:
                out.append((meta[0], meta[1], meta[2], perm_str(dropped), target.default_allow))
        for meta, bits in target.ordered():
            gained = bits & ~old.get(meta, 0)
            if gained:
                out.append((meta[0], meta[1], meta[2], perm_str(gained), not target.default_allow))
        return out

    def clean_rules(self) -> list[Rule]:
        """The rules that build this state from a deny-all cgroup."""
        return Emulator(False).transition(self)


def from_rules(rules: list[Rule]) -> Emulator:
    """The state a list of rules produces, starting from deny-all."""
    emu = Emulator(False)
    for rule in rules:
        emu.apply(rule)
    return emu


def _parse_number(text: str, line: str) -> int:
    if text == "*":
        return -1
    if not text.isdigit():
        raise InvalidArgument(f"malformed devices.list rule {line!r}")
    return int(text)


def from_list(text: str) -> Emulator:
    """The state described by a ``devices.list`` (an allow-list).

    An ``a *:* rwm`` entry means the cgroup allows everything except deny
    exceptions the file cannot show; it is read as "allow all".
    """
    emu = Emulator(False)
    for line in text.splitlines():
        if not line:
            continue
        fields = line.replace(":", " ").split()
        if len(fields) != 4:
            raise InvalidArgument(f"malformed devices.list rule {line!r}")
        typ, major, minor, perms = fields
        if typ == "a":
            emu.default_allow = True
            emu.rules = {}
            continue
        if typ not in ("b", "c") or not perms or perm_str(perm_bits(perms)) != perms:
            raise InvalidArgument(f"malformed devices.list rule {line!r}")
        meta = (typ, _parse_number(major, line), _parse_number(minor, line))
        if emu.default_allow:
            emu._remove(meta, perm_bits(perms))
        else:
            emu._add(meta, perm_bits(perms))
    return emu


# runc's default allowed devices (specconv.AllowedDevices), appended to every
# container's rules; the path, when set, lets linux.devices override one.
DEFAULT_RULES: tuple[tuple[str | None, dict], ...] = (
    (None, {"allow": True, "type": "c", "access": "m"}),
    (None, {"allow": True, "type": "b", "access": "m"}),
    ("/dev/null", {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}),
    ("/dev/random", {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"}),
    ("/dev/full", {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"}),
    ("/dev/tty", {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"}),
    ("/dev/zero", {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"}),
    ("/dev/urandom", {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"}),
    (None, {"allow": True, "type": "c", "major": 136, "access": "rwm"}),  # /dev/pts/*
    (None, {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"}),  # /dev/ptmx
    (None, {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"}),  # tun/tap
)


def spec_rules(rules: list | None, linux_devices: list | None) -> list[dict]:
    """``resources.devices`` followed by the defaults not overridden by path."""
    taken = {d.get("path") for d in linux_devices or () if isinstance(d, dict)}
    out = list(rules or ())
    for path, rule in DEFAULT_RULES:
        if path is None or path not in taken:
            out.append(dict(rule))
    return out


def _number(rule: dict, key: str, idx: int) -> int:
    value = rule.get(key)
    if value is None:
        return -1
    if not isinstance(value, int) or isinstance(value, bool) or value < -1:
        raise InvalidArgument(f"device rule {idx}: invalid {key} {value!r}")
    return value


def parse_rules(rules: list) -> list[Rule]:
    """OCI ``resources.devices`` entries as emulator rules (validated)."""
    out: list[Rule] = []
    for idx, rule in enumerate(rules):
        if not isinstance(rule, dict):
            raise InvalidArgument(f"device rule {idx} is not an object")
        typ = rule.get("type") or "a"
        if typ not in ("a", "b", "c"):
            raise InvalidArgument(f"invalid device type {typ!r} in device rule {idx}")
        access = rule.get("access") or ""
        if not access:
            raise InvalidArgument(f"device access at {idx} field cannot be empty")
        if not isinstance(access, str) or access.strip("rwm"):
            raise InvalidArgument(f"invalid device access {access!r} in device rule {idx} (want a subset of rwm)")
        perms = ("r" if "r" in access else "") + ("w" if "w" in access else "") + ("m" if "m" in access else "")
        out.append((typ, _number(rule, "major", idx), _number(rule, "minor", idx), perms, bool(rule.get("allow"))))
    return out


def in_user_namespace() -> bool:
    """True unless the uid map is the initial namespace's identity map."""
    try:
        text = files.read_raw("/proc/self/uid_map")
    except OSError:
        return False
    return text.split() != ["0", "0", "4294967295"]


def set_v1(path: str, resources: dict) -> None:
    """Write the transition from the current rules to the requested ones."""
    if "devices" not in resources or in_user_namespace():
        return
    target = from_rules(parse_rules(resources["devices"] or []))
    current = from_list(files.read(path, "devices.list"))
    for rule in current.transition(target):
        typ, major, minor, perms, allow = rule
        ma = "*" if major == -1 else str(major)
        mi = "*" if minor == -1 else str(minor)
        files.write(path, "devices.allow" if allow else "devices.deny", f"{typ} {ma}:{mi} {perms}")
    after = from_list(files.read(path, "devices.list"))
    if not target.default_allow and after != target:
        raise DockyardError(f"{path}/devices.list does not match the requested device rules", path=path)
    if target.default_allow != after.default_allow:
        raise DockyardError(f"{path}/devices.list is not in the requested allow/deny mode", path=path)


def _all_allow_rwm(rules: list[Rule]) -> bool:
    return all(allow and perms == "rwm" for _t, _ma, _mi, perms, allow in rules)


def set_v2(path: str, resources: dict) -> None:
    """Compile the rules to eBPF and attach the program to the cgroup dir."""
    if "devices" not in resources:
        return
    from . import devicefilter

    rules = parse_rules(resources["devices"] or [])
    code = devicefilter.encode(devicefilter.program(rules))
    try:
        fd = os.open(path, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise files.error(e, "open", path) from e
    try:
        from ...kernel import bpf

        bpf.replace_device_filter(fd, code, devicefilter.LICENSE)
    except OSError as e:
        # Like runc (and crun): a filter that could only allow everything
        # anyway may be skipped where bpf(2) is refused, e.g. in a userns.
        if in_user_namespace() or _all_allow_rwm(rules):
            return
        raise files.error(e, "attach the eBPF device filter to", path) from e
    finally:
        os.close(fd)
