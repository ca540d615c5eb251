"""Seccomp filters loaded for real, each in a forked child that reports through a pipe."""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import socket
import time

import pytest

from dockyard.errors import Unavailable
from dockyard.kernel import libc
from dockyard.runtime import capabilities, seccomp
from tests.support.forked import fork_and_collect
from tests.unit.test_seccomp import docker_profile

pytestmark = [
    pytest.mark.privileged,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]

PR_SET_NO_NEW_PRIVS = 38
SYS_getppid = 110
SYS_acct = 163


def in_child(fn, *, no_new_privs: bool = True) -> tuple[int, object]:
    """Run ``fn`` in a forked child; return (wait status, what it returned or raised)."""

    def child(w: int) -> None:
        code = 0
        try:
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if no_new_privs:
                libc.prctl(PR_SET_NO_NEW_PRIVS, 1)
            out = {"ok": fn()}
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            out = {"error": f"{type(e).__name__}: {e}"}
            code = 1
        os.write(w, json.dumps(out).encode())
        os._exit(code)

    status, data = fork_and_collect(child)
    return status, (json.loads(data) if data else None)


def errno_of(call) -> int:
    try:
        call()
    except OSError as e:
        return e.errno or 0
    return 0


def cfg(default: str, calls: list[dict]) -> dict:
    return {"defaultAction": default, "architectures": ["SCMP_ARCH_X86_64"], "syscalls": calls}


def test_mkdir_denied_with_eperm(tmp_path):
    profile = cfg("SCMP_ACT_ALLOW", [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}])

    def child():
        assert seccomp.install(profile) is None
        return [errno_of(lambda: os.mkdir(tmp_path / "d")), os.path.exists(tmp_path / "d"), os.getpid() > 0]

    status, out = in_child(child)
    assert out == {"ok": [errno.EPERM, False, True]}, out
    assert os.waitstatus_to_exitcode(status) == 0


def test_custom_errno():
    profile = cfg("SCMP_ACT_ALLOW", [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42}])

    def child():
        seccomp.install(profile)
        return errno_of(lambda: libc.check(libc.syscall(SYS_getppid), "getppid"))

    assert in_child(child)[1] == {"ok": 42}


def test_argument_filters():
    rules = [
        # socket(AF_INET, SOCK_DGRAM) only: two indexes, ANDed.
        {
            "names": ["socket"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": errno.EACCES,
            "args": [
                {"index": 0, "value": socket.AF_INET, "op": "SCMP_CMP_EQ"},
                {"index": 1, "value": 0xF, "valueTwo": socket.SOCK_DGRAM, "op": "SCMP_CMP_MASKED_EQ"},
            ],
        },
        # AF_INET6 or AF_PACKET: one index twice, ORed (runc's split).
        {
            "names": ["socket"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": errno.EAFNOSUPPORT,
            "args": [
                {"index": 0, "value": socket.AF_INET6, "op": "SCMP_CMP_EQ"},
                {"index": 0, "value": socket.AF_PACKET, "op": "SCMP_CMP_EQ"},
            ],
        },
        # lseek to exactly 0xffffffff: a 64-bit comparison.
        {"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 0xFFFFFFFF, "op": "SCMP_CMP_EQ"}]},
    ]
    profile = cfg("SCMP_ACT_ALLOW", rules)

    def child():
        seccomp.install(profile)
        fd = os.open("/dev/zero", os.O_RDONLY)

        def sock(family, kind):
            return lambda: socket.socket(family, kind).close()

        return {
            "inet dgram": errno_of(sock(socket.AF_INET, socket.SOCK_DGRAM)),
            "inet stream": errno_of(sock(socket.AF_INET, socket.SOCK_STREAM)),
            "unix dgram": errno_of(sock(socket.AF_UNIX, socket.SOCK_DGRAM)),
            "inet6": errno_of(sock(socket.AF_INET6, socket.SOCK_STREAM)),
            "lseek ffffffff": errno_of(lambda: os.lseek(fd, 0xFFFFFFFF, os.SEEK_SET)),
            "lseek 1ffffffff": errno_of(lambda: os.lseek(fd, 0x1FFFFFFFF, os.SEEK_SET)),
        }

    out = in_child(child)[1]
    assert out == {
        "ok": {
            "inet dgram": errno.EACCES,
            "inet stream": 0,
            "unix dgram": 0,
            "inet6": errno.EAFNOSUPPORT,
            "lseek ffffffff": errno.EPERM,
            "lseek 1ffffffff": 0,
        }
    }, out


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP"])
def test_kill_and_trap_end_in_sigsys(action):
    profile = cfg("SCMP_ACT_ALLOW", [{"names": ["getppid"], "action": action}])

    def child():
        seccomp.install(profile)
        os.getppid()
        return "survived"

    status, out = in_child(child)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS, (status, out)


def test_docker_profile_enosys_for_new_syscalls_eperm_for_denied_ones():
    def child():
        seccomp.install(docker_profile())
        return {
            "unknown 1000": errno_of(lambda: libc.check(libc.syscall(1000), "syscall 1000")),
            "acct": errno_of(lambda: libc.check(libc.syscall(SYS_acct, None), "acct")),
            "unshare": errno_of(lambda: libc.unshare(0x04000000)),  # CLONE_NEWUTS
            "getppid ok": os.getppid() > 0,
        }

    out = in_child(child)[1]
    assert out == {"ok": {"unknown 1000": errno.ENOSYS, "acct": errno.EPERM, "unshare": errno.EPERM, "getppid ok": True}}


def test_docker_profile_lets_a_program_run():
    def child():
        seccomp.install(docker_profile())
        os.execv("/bin/sh", ["sh", "-c", "ls / >/dev/null && exit 3"])

    status, _ = in_child(child)
    assert os.waitstatus_to_exitcode(status) == 3


def test_notify_returns_a_listener_fd():
    profile = cfg("SCMP_ACT_ALLOW", [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}])
    profile["listenerPath"] = "/run/agent.sock"

    def child():
        fd = seccomp.install(profile)
        return [isinstance(fd, int) and fd > 2, os.readlink(f"/proc/self/fd/{fd}")]

    out = in_child(child)[1]
    assert out["ok"][0] and "seccomp" in out["ok"][1], out


def test_flags_log_and_spec_allow_load():
    profile = cfg("SCMP_ACT_ALLOW", [{"names": ["mkdir"], "action": "SCMP_ACT_LOG"}])
    profile["flags"] = ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"]

    def child():
        seccomp.install(profile)
        with open("/proc/self/status") as f:
            return [line.split()[1] for line in f if line.startswith("Seccomp:")]

    assert in_child(child)[1] == {"ok": ["2"]}


def test_without_no_new_privs_loading_needs_cap_sys_admin():
    """Why runc loads the filter before dropping capabilities when noNewPrivileges is false."""
    profile = cfg("SCMP_ACT_ALLOW", [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}])

    def with_admin():
        seccomp.install(profile)
        return "loaded"

    def without_admin():
        program = seccomp.build(profile)
        keep = capabilities.parse({k: ["CAP_SETUID"] for k in ("effective", "permitted")})
        capabilities.apply(keep)
        try:
            seccomp.load(program)
        except Unavailable as e:
            return str(e)
        return "loaded"

    assert in_child(with_admin, no_new_privs=False)[1] == {"ok": "loaded"}
    out = in_child(without_admin, no_new_privs=False)[1]
    assert out == {"ok": "error loading seccomp filter into kernel: Permission denied"}


def test_docker_profile_build_and_load_time():
    seccomp.build(docker_profile())  # libseccomp loaded and warm, as after a first container

    def child():
        t0 = time.perf_counter()
        program = seccomp.build(docker_profile())
        t1 = time.perf_counter()
        seccomp.load(program)
        t2 = time.perf_counter()
        return [t1 - t0, t2 - t1, len(program)]

    build, load, size = in_child(child)[1]["ok"]  # type: ignore[index]
    print(f"docker profile ({size} insns): build {build * 1e3:.1f} ms, load {load * 1e3:.2f} ms")
    assert build + load < 0.25


def test_preload_lets_install_work_after_the_root_changes(tmp_path):
    """The init installs the filter after pivot_root, where libseccomp is out of reach."""
    import subprocess
    import sys

    script = f"""
import os
from dockyard.runtime import seccomp
seccomp.preload()
os.chroot({str(tmp_path)!r})
os.chdir("/")
from dockyard.kernel import libc
libc.prctl(38, 1)
seccomp.install({{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}}]}})
try:
    os.mkdir("/d")
except PermissionError:
    print("denied")
"""
    src = os.path.join(os.path.dirname(__file__), "..", "..", "src")
    env = dict(os.environ, PYTHONPATH=os.path.abspath(src))
    r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout) == (0, "denied\n"), r.stderr
