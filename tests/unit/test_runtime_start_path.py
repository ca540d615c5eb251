"""The runtime's start path, arranged around the kernel's cgroup wait (see docs/runtime.md).

The order of mounts and protections the init makes, the command word the
launcher's warm-up looks at, and the thin libc layer (no ``ctypes`` package)
it relies on. Nothing here needs root.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dockyard.kernel import consts as c
from dockyard.oci import jsonio
from dockyard.runtime import rootfs, warmup


class RecordingKernel:
    """Stands in for kernel.libc: records mount calls (destinations only matter here)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str | None, str, str | None, int]] = []

    def mount(self, source, target, fstype, flags, data=None) -> None:
        self.calls.append((source, target, fstype, flags))


def _bundle(tmp_path, mounts, linux):
    root = tmp_path / "rootfs"
    for d in ("proc/sys/net/ipv4", "proc/kcore", "sys/fs/cgroup", "dev", "run"):
        os.makedirs(root / d, exist_ok=True)
    devdir = tmp_path / "hostdev"
    devdir.mkdir()
    spec = {"mounts": mounts + [{"destination": "/dev", "type": "bind", "source": str(devdir),
                                  "options": ["rbind"]}], "linux": linux}
    return spec, str(root)


def _events(k: RecordingKernel, root: str, spec_mounts: dict[str, str]) -> list[str]:
    """Mount calls as short names: a mount of the config by its destination, a protection by path."""
    out = []
    for source, target, fstype, flags in k.calls:
        rel = "/" + os.path.relpath(target, root) if target.startswith(root) else target
        if fstype == "tmpfs" and rel == "/sys/fs/cgroup":
            out.append("cgroup")
        elif rel in spec_mounts and fstype == spec_mounts[rel]:
            out.append(rel)
        elif fstype is None and flags & c.MS_BIND and not flags & c.MS_REMOUNT and source in (target, "/dev/null"):
            out.append(("mask " if source == "/dev/null" else "ro ") + rel)
    return out


MOUNTS = [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs"},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro"]},
    {"destination": "/run", "type": "tmpfs", "source": "tmpfs"},
]
TYPES = {"/proc": "proc", "/sys": "sysfs", "/run": "tmpfs"}
LINUX = {"readonlyPaths": ["/proc/sys"], "maskedPaths": ["/proc/kcore"],
         "sysctl": {"net.ipv4.ip_forward": "1"}}


def test_cgroup_mount_waits_for_the_end_of_independent_mounts_and_protections(tmp_path):
    spec, root = _bundle(tmp_path, list(MOUNTS), dict(LINUX))
    k = RecordingKernel()
    asked = []
    builder = rootfs.RootfsBuilder(spec, root, k, lambda: asked.append(len(k.calls)) or [])
    builder.prepare()
    assert _events(k, root, TYPES) == ["/proc", "/sys", "/run", "ro /proc/sys", "mask /proc/kcore", "cgroup"]
    with open(os.path.join(root, "proc/sys/net/ipv4/ip_forward")) as f:
        assert f.read() == "1"  # the sysctl went through the container's /proc, before it turned read-only
    assert len(asked) == 1


def test_a_later_mount_under_the_cgroup_mount_keeps_the_order(tmp_path):
    mounts = list(MOUNTS) + [{"destination": "/sys/fs/cgroup/extra", "type": "tmpfs", "source": "tmpfs"}]
    spec, root = _bundle(tmp_path, mounts, {"maskedPaths": ["/sys/fs/cgroup/extra/x", "/proc/kcore"]})
    k = RecordingKernel()
    rootfs.RootfsBuilder(spec, root, k, lambda: []).prepare()
    got = _events(k, root, {**TYPES, "/sys/fs/cgroup/extra": "tmpfs"})
    assert got == ["/proc", "/sys", "/run", "cgroup", "/sys/fs/cgroup/extra", "mask /sys/fs/cgroup/extra/x",
                   "mask /proc/kcore"]


def test_a_protection_under_a_deferred_cgroup_mount_comes_after_it(tmp_path):
    spec, root = _bundle(tmp_path, list(MOUNTS), {"maskedPaths": ["/proc/kcore", "/sys/fs/cgroup/x"]})
    k = RecordingKernel()
    rootfs.RootfsBuilder(spec, root, k, lambda: []).prepare()
    assert _events(k, root, TYPES) == ["/proc", "/sys", "/run", "mask /proc/kcore", "cgroup", "mask /sys/fs/cgroup/x"]


def test_with_hooks_the_protections_wait_for_protect(tmp_path):
    spec, root = _bundle(tmp_path, list(MOUNTS), dict(LINUX))
    k = RecordingKernel()
    builder = rootfs.RootfsBuilder(spec, root, k, lambda: [])
    builder.prepare(protect=False)
    assert _events(k, root, TYPES) == ["/proc", "/sys", "/run", "cgroup"]
    assert not os.path.exists(os.path.join(root, "proc/sys/net/ipv4/ip_forward"))
    builder.protect()
    assert _events(k, root, TYPES)[-2:] == ["ro /proc/sys", "mask /proc/kcore"]


@pytest.mark.parametrize("argv, command", [
    (["run", "--bundle", "b", "x"], "run"),
    (["--root", "/run/r", "--log", "/l", "create", "x"], "create"),
    (["--root=/run/r", "--debug", "exec", "x", "sh"], "exec"),
    (["--log-format", "json", "state", "run"], "state"),  # a container named "run" is not the command
    (["--systemd-cgroup", "kill", "x"], "kill"),
    (["--root", "run"], None),  # "run" is the value of --root
    ([], None),
])
def test_warm_up_reads_the_command_word_past_the_global_flags(argv, command):
    assert warmup.command_of(argv) == command


def test_every_value_flag_of_the_command_line_is_known_to_the_warm_up():
    from dockyard.runtime import cli

    assert {name for name, (takes_value, _) in cli.GLOBAL_FLAGS.items() if takes_value} == set(
        warmup.GLOBAL_VALUE_FLAGS)


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-IS", "-c", f"import sys; sys.path[:0] = {sys.path!r}\n" + code],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_libc_layer_sets_rlimits_and_reads_interface_flags_without_ctypes():
    out = _run(
        "import resource\n"
        "from dockyard.kernel import bpf, libc, loopback\n"
        "from dockyard.runtime.cgroups import devices, v2\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "libc.setrlimit(resource.RLIMIT_NOFILE, 100, hard)\n"
        "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
        "core_hard = resource.getrlimit(resource.RLIMIT_CORE)[1]\n"
        "libc.setrlimit(resource.RLIMIT_CORE, 0, 2**64 - 1 if core_hard == -1 else core_hard)\n"
        "assert resource.getrlimit(resource.RLIMIT_CORE) == (0, core_hard)\n"
        "fd = libc.socket(loopback.AF_INET, loopback.SOCK_DGRAM)\n"
        "req = b'lo'.ljust(16, b'\\0') + bytes(24)\n"
        "print(int.from_bytes(libc.ioctl_buffer(fd, loopback.SIOCGIFFLAGS, req)[16:18], 'little') & 8)\n"
        "try:\n"
        "    libc.setrlimit(resource.RLIMIT_NOFILE, 10, 5)\n"
        "except OSError as e:\n"
        "    print(e.errno)\n"
        "print('ctypes' in sys.modules)\n")
    assert out.split() == ["100", "8", "22", "False"]  # IFF_LOOPBACK; EINVAL for soft > hard


def test_json_of_the_start_path_takes_a_byte_order_mark():
    assert jsonio.loads(b'\xef\xbb\xbf{"a": "\xc3\xa9"}') == {"a": "\u00e9"}
    assert jsonio.loads(b"[1]") == [1]


class DirsBeingMade:
    """The runtime's side as the init sees it: one more cgroup dir exists per wait."""

    def __init__(self, order: list[str]) -> None:
        self.order = order
        self.made: list[str] = []
        self.waits = 0

    def dir_ready(self, path: str) -> bool:
        return path in self.made

    def wait_a_little(self) -> None:
        self.waits += 1
        self.made.append(self.order[len(self.made)])


def test_cgroup_dirs_are_bound_as_they_appear_in_any_order(tmp_path):
    spec, root = _bundle(tmp_path, [MOUNTS[2]], {})
    binds = [("/h/memory/c", "memory"), ("/h/cpu,cpuacct/c", "cpu,cpuacct"), ("/h/devices/c", "devices"),
             ("symlink:cpu,cpuacct", "cpu")]
    dirs = DirsBeingMade(["/h/devices/c", "/h/memory/c", "/h/cpu,cpuacct/c"])
    k = RecordingKernel()
    rootfs.RootfsBuilder(spec, root, k, lambda: binds, cgroup_dirs=dirs).prepare()
    bound = [source for source, target, fstype, flags in k.calls if fstype == "bind" and source.startswith("/h/")]
    assert bound == ["/h/devices/c", "/h/memory/c", "/h/cpu,cpuacct/c"] and dirs.waits == 3
    assert os.readlink(os.path.join(root, "sys/fs/cgroup/cpu")) == "cpu,cpuacct"


def test_the_init_learns_of_cgroup_dirs_from_the_runtime(tmp_path):
    from dockyard.runtime import init, sync

    runtime, init_end = sync.pair()
    try:
        joined = init._CgroupJoin(init_end)
        made = tmp_path / "made"
        runtime.send("cgroup", mounts=[[str(made), "memory"]])
        assert joined.container_mounts() == [(str(made), "memory")]
        assert not joined.dir_ready(str(made))
        joined.wait_a_little()  # nothing came: returns after the poll interval
        made.mkdir()
        assert joined.dir_ready(str(made))
        assert not joined.dir_ready(str(tmp_path / "never"))
        runtime.send("cgdirs")
        joined.wait_a_little()
        assert joined.dir_ready(str(tmp_path / "never"))  # all made: a missing one is the mount's error
        runtime.send("joined")
        joined.wait()
    finally:
        runtime.close()
        init_end.close()
