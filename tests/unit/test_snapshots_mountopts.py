"""kernel.mount option parsing (mounting itself is exercised in tests/privileged)."""

from __future__ import annotations

from dockyard.kernel import consts as c
from dockyard.kernel.mount import parse_options


def test_flags_and_data_are_split():
    flags, data = parse_options(["ro", "rbind", "nosuid", "lowerdir=/a:/b", "index=off"])
    assert flags == c.MS_RDONLY | c.MS_BIND | c.MS_REC | c.MS_NOSUID
    assert data == "lowerdir=/a:/b,index=off"


def test_clearing_flags():
    flags, _ = parse_options(["ro", "rw"])
    assert flags == 0
