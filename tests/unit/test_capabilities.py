"""Capability names, parse() masks, and the call sequence of drop/apply (with a fake kernel)."""

from __future__ import annotations

import os
import re

import pytest

from dockyard.errors import InvalidArgument
from dockyard.kernel import capability as kcap
from dockyard.runtime import capabilities as caps

DOCKER_DEFAULT = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
]
DOCKER_DEFAULT_MASK = 0xA80425FB  # CapBnd of a default docker container


def test_cap_names_table():
    assert len(caps.CAP_NAMES) == 41
    assert sorted(caps.CAP_NAMES.values()) == list(range(41))
    assert caps.CAP_NAMES["CAP_CHOWN"] == 0
    assert caps.CAP_NAMES["CAP_SETPCAP"] == 8
    assert caps.CAP_NAMES["CAP_SYS_ADMIN"] == 21
    assert caps.CAP_NAMES["CAP_AUDIT_READ"] == 37
    assert caps.CAP_NAMES["CAP_CHECKPOINT_RESTORE"] == 40


def test_cap_names_match_the_kernel_header():
    header = "/usr/include/linux/capability.h"
    if not os.path.exists(header):
        pytest.skip("no linux/capability.h")
    with open(header) as f:
        found = dict(re.findall(r"#define\s+(CAP_[A-Z_]+)\s+(\d+)\s*$", f.read(), re.M))
    for name, number in caps.CAP_NAMES.items():
        assert int(found[name]) == number, name


def test_parse_docker_defaults():
    sets = caps.parse({kind: DOCKER_DEFAULT for kind in ("bounding", "effective", "permitted")}, last_cap=40)
    assert sets.bounding == sets.effective == sets.permitted == DOCKER_DEFAULT_MASK
    assert sets.inheritable == sets.ambient == 0
    assert sets.unknown == ()
    assert sets.names("bounding") == sorted(DOCKER_DEFAULT, key=caps.CAP_NAMES.__getitem__)


def test_parse_each_set_on_its_own():
    sets = caps.parse(
        {
            "bounding": ["CAP_KILL"],
            "effective": ["CAP_CHOWN"],
            "inheritable": ["CAP_SETUID"],
            "permitted": ["CAP_SYS_ADMIN"],
            "ambient": ["CAP_CHECKPOINT_RESTORE"],
        },
        last_cap=40,
    )
    assert (sets.bounding, sets.effective, sets.inheritable, sets.permitted, sets.ambient) == (
        1 << 5,
        1 << 0,
        1 << 7,
        1 << 21,
        1 << 40,
    )


def test_missing_capabilities_means_none():
    assert caps.parse(None) == caps.CapSets()
    assert caps.parse({}, last_cap=40) == caps.CapSets()
    assert caps.parse({"bounding": None}, last_cap=40).bounding == 0


def test_unknown_and_unavailable_names_are_ignored_with_one_warning(capfd):
    sets = caps.parse(
        {"bounding": ["CAP_CHOWN", "CAP_NOPE", "CAP_BPF"], "effective": ["CAP_CHECKPOINT_RESTORE", "CAP_NOPE"]},
        last_cap=38,  # a kernel without CAP_BPF (39) and CAP_CHECKPOINT_RESTORE (40)
    )
    assert sets.bounding == 1 and sets.effective == 0
    assert sets.unknown == ("CAP_BPF", "CAP_CHECKPOINT_RESTORE", "CAP_NOPE")
    err = capfd.readouterr().err
    assert err.count("ignoring unknown or unavailable capabilities") == 1
    assert "[CAP_BPF CAP_CHECKPOINT_RESTORE CAP_NOPE]" in err


def test_parse_uses_the_running_kernels_last_cap():
    everything = caps.parse({"bounding": list(caps.CAP_NAMES)})
    assert everything.bounding == (1 << (kcap.last_cap() + 1)) - 1


@pytest.mark.parametrize("bad", [["CAP_CHOWN", 3], "CAP_CHOWN", {"CAP_CHOWN": 1}])
def test_parse_rejects_malformed_sets(bad):
    with pytest.raises(InvalidArgument, match="process.capabilities.effective"):
        caps.parse({"effective": bad}, last_cap=40)
    with pytest.raises(InvalidArgument):
        caps.parse(["CAP_CHOWN"], last_cap=40)  # type: ignore[arg-type]


def test_capsets_are_immutable_values():
    a = caps.CapSets(bounding=3)
    assert a == caps.CapSets(bounding=3) and hash(a) == hash(caps.CapSets(bounding=3))
    assert a != caps.CapSets(bounding=3, ambient=1)
    with pytest.raises(AttributeError):
        a.bounding = 0  # type: ignore[misc]
    assert "bounding=0x3" in repr(a)


class FakeKernel:
    """Records capability calls instead of making them."""

    def __init__(self, effective: int = DOCKER_DEFAULT_MASK, refuse: dict | None = None) -> None:
        self.calls: list[tuple] = []
        self.effective = effective
        self.refuse = refuse or {}

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in ("capget", "capset", "bounding_drop", "ambient_clear", "ambient_raise", "set_keepcaps"):
            monkeypatch.setattr(kcap, name, self._recorder(name))
        monkeypatch.setattr(kcap, "last_cap", lambda: 40)

    def _recorder(self, name: str):
        def call(*args):
            self.calls.append((name, *args))
            errno = self.refuse.get((name, *args)) or self.refuse.get(name)
            if errno:
                raise OSError(errno, os.strerror(errno))
            if name == "capget":
                return (self.effective, self.effective, 0)
            return None

        return call


def test_drop_bounding_drops_everything_not_kept(monkeypatch):
    fake = FakeKernel()
    fake.install(monkeypatch)
    caps.drop_bounding(caps.CapSets(bounding=DOCKER_DEFAULT_MASK))
    dropped = [c[1] for c in fake.calls if c[0] == "bounding_drop"]
    assert dropped == [n for n in range(41) if not DOCKER_DEFAULT_MASK >> n & 1]


def test_drop_bounding_skips_einval_and_does_nothing_without_setpcap(monkeypatch):
    fake = FakeKernel(refuse={("bounding_drop", 40): 22})
    fake.install(monkeypatch)
    caps.drop_bounding(caps.CapSets())
    assert ("bounding_drop", 40) in fake.calls
    fake = FakeKernel(effective=DOCKER_DEFAULT_MASK & ~(1 << 8))
    fake.install(monkeypatch)
    caps.drop_bounding(caps.CapSets())
    assert fake.calls == [("capget",)]


def test_drop_bounding_other_errors_are_reported(monkeypatch):
    FakeKernel(refuse={("bounding_drop", 3): 1}).install(monkeypatch)
    with pytest.raises(InvalidArgument, match="unable to apply bounding set: Operation not permitted"):
        caps.drop_bounding(caps.CapSets())


def test_apply_sets_then_raises_ambient(monkeypatch):
    fake = FakeKernel()
    fake.install(monkeypatch)
    caps.apply(caps.CapSets(effective=0b11, permitted=0b111, inheritable=0b101, ambient=0b101))
    assert fake.calls == [
        ("capset", 0b11, 0b111, 0b101),
        ("ambient_clear",),
        ("ambient_raise", 0),
        ("ambient_raise", 2),
    ]


def test_apply_ignores_refused_ambient_caps_like_runc(monkeypatch):
    fake = FakeKernel(refuse={("ambient_raise", 0): 1})
    fake.install(monkeypatch)
    caps.apply(caps.CapSets(ambient=0b101))
    assert ("ambient_raise", 2) in fake.calls


def test_apply_reports_capset_failure(monkeypatch):
    FakeKernel(refuse={"capset": 1}).install(monkeypatch)
    with pytest.raises(InvalidArgument, match="unable to apply caps: Operation not permitted"):
        caps.apply(caps.CapSets(effective=1))


def test_keepcaps(monkeypatch):
    fake = FakeKernel()
    fake.install(monkeypatch)
    caps.set_keepcaps(True)
    caps.set_keepcaps(False)
    assert fake.calls == [("set_keepcaps", True), ("set_keepcaps", False)]


def test_last_cap_probe_agrees_with_proc():
    with open("/proc/sys/kernel/cap_last_cap") as f:
        assert kcap._probe_last_cap() == int(f.read()) == kcap.last_cap()
