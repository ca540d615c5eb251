"""Pure parts of the runtime: mount options, secure joins, signals, durations, sizes, log lines."""

from __future__ import annotations

import os

import pytest

from dockyard.errors import InvalidArgument
from dockyard.kernel import consts as c
from dockyard.runtime import create, events, log, mountopts, rootfs, signals, update


def test_mount_options_to_flags_and_data():
    p = mountopts.parse(["nosuid", "noexec", "nodev", "mode=1777", "size=65536k", "ro"])
    assert p.flags == c.MS_NOSUID | c.MS_NOEXEC | c.MS_NODEV | c.MS_RDONLY
    assert p.data == "mode=1777,size=65536k"
    assert p.propagation == [] and not p.is_bind


def test_mount_options_bind_propagation_and_clearing():
    p = mountopts.parse(["rbind", "ro", "rw", "rprivate", "tmpcopyup", "rnosuid"])
    assert p.flags == c.MS_BIND | c.MS_REC | c.MS_NOSUID
    assert p.propagation == [c.MS_PRIVATE | c.MS_REC]
    assert p.extensions == ["tmpcopyup"] and p.is_bind


def test_rootfs_propagation_default_is_rslave():
    assert mountopts.propagation_flags("") == c.MS_SLAVE | c.MS_REC
    assert mountopts.propagation_flags("shared") == c.MS_SHARED


def test_secure_join_stays_inside_root(tmp_path):
    root = str(tmp_path)
    os.makedirs(tmp_path / "a" / "b")
    os.symlink("/etc", tmp_path / "abs")        # absolute link: restarts at root
    os.symlink("../../..", tmp_path / "a" / "up")  # climbs past root: clamped
    assert rootfs.secure_join(root, "/abs/passwd") == os.path.join(root, "etc", "passwd")
    assert rootfs.secure_join(root, "a/up/x") == os.path.join(root, "x")
    assert rootfs.secure_join(root, "/../../a/./b") == os.path.join(root, "a", "b")


def test_secure_join_symlink_loop(tmp_path):
    os.symlink("loop", tmp_path / "loop")
    with pytest.raises(InvalidArgument, match="too many symlinks"):
        rootfs.secure_join(str(tmp_path), "/loop/x")


@pytest.mark.parametrize("raw,num", [("KILL", 9), ("SIGKILL", 9), ("9", 9), ("term", 15), ("SIGRTMIN+2", 36),
                                     ("RTMAX", 64), ("usr1", 10)])
def test_signal_parsing(raw, num):
    assert signals.parse(raw) == num


def test_unknown_signal_message():
    with pytest.raises(InvalidArgument, match='unknown signal "FOO"'):
        signals.parse("FOO")


def test_durations():
    assert events.parse_duration("5s") == 5
    assert events.parse_duration("1m30s") == 90
    assert events.parse_duration("250ms") == pytest.approx(0.25)
    for bad in ("5", "x", "0"):
        with pytest.raises(InvalidArgument):
            events.parse_duration(bad)


def test_byte_sizes():
    assert update.parse_bytes("64m") == 64 << 20
    assert update.parse_bytes("1g") == 1 << 30
    assert update.parse_bytes("1024") == 1024
    assert update.parse_bytes("-1") == -1
    with pytest.raises(InvalidArgument):
        update.parse_bytes("lots")


def test_rfc3339_nano_trims_zeros():
    assert create.rfc3339_nano(1_700_000_000_123_400_000) == "2023-11-14T22:13:20.1234Z"
    assert create.rfc3339_nano(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"


def test_logrus_text_quoting():
    assert log._quote("error") == "error"
    assert log._quote("2026-11-27T19:22:00Z") == '"2026-11-27T19:22:00Z"'
    assert log._quote('unknown signal "FOO"') == '"unknown signal \\"FOO\\""'


def test_pid_file_is_atomic_and_bare(tmp_path):
    path = tmp_path / "pid"
    create.write_pid_file(str(path), 1234)
    assert path.read_text() == "1234"
    assert sorted(os.listdir(tmp_path)) == ["pid"]
