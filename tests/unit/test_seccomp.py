"""Seccomp config validation and filter compilation, without root.

Compiled programs are run through a small classic-BPF interpreter, so the
filter's verdicts (rules, argument conditions, the ENOSYS stub, x32/i386)
are checked without loading anything into the kernel.
"""

from __future__ import annotations

import copy
import os
import struct
import time

import pytest

from dockyard.errors import InvalidArgument
from dockyard.runtime import seccomp

# Docker's default profile (moby profiles/seccomp/default.json) as dockerd
# renders it for x86_64 and the default capabilities.
DOCKER_NAMES = """
accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2
dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64
fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchown fchown32 fchownat fcntl
fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64
fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_time64 futex_waitv
futimesat getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid
getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid
getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list
getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32
getxattr inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl
io_destroy io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup
io_submit io_uring_enter io_uring_register io_uring_setup ipc kill landlock_add_rule
landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat listen
listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise membarrier
memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2
mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend
mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock munlockall
munmap name_to_handle_at nanosleep newfstatat _newselect open openat openat2 pause pidfd_open
pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl
pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev
pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64
recvmsg remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq
rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr
sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler
sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr
sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop
semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32
setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority
setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit
set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32 setxattr
shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn
socketcall socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync
sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun
timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime
timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64 ugetrlimit
umask uname unlink unlinkat utime utimensat utimensat_time64 utimes vfork vmsplice wait4
waitid waitpid write writev
""".split()

ALLOW = "SCMP_ACT_ALLOW"
RET_ALLOW = 0x7FFF0000
RET_KILL_THREAD = 0
AUDIT_X86_64 = 0xC000003E
AUDIT_I386 = 0x40000003
AUDIT_AARCH64 = 0xC00000B7
X32_BIT = 0x40000000
NR = {"read": 0, "mkdir": 83, "socket": 41, "personality": 135, "clone": 56, "clone3": 435, "acct": 163, "getppid": 110}


def ret_errno(errno: int) -> int:
    return 0x00050000 | errno


def docker_profile() -> dict:
    """An OCI linux.seccomp like dockerd's default for x86_64 (about 350 names)."""
    calls: list[dict] = [
        {"names": list(DOCKER_NAMES), "action": ALLOW},
        {"names": ["process_vm_readv", "process_vm_writev", "ptrace"], "action": ALLOW},
        {"names": ["socket"], "action": ALLOW, "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]},
    ]
    for value in (0, 8, 131072, 131080, 4294967295):
        calls.append(
            {"names": ["personality"], "action": ALLOW, "args": [{"index": 0, "value": value, "op": "SCMP_CMP_EQ"}]}
        )
    calls += [
        {"names": ["arch_prctl", "modify_ldt", "chroot"], "action": ALLOW},
        {
            "names": ["clone"],
            "action": ALLOW,
            "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
        },
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
    ]
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": calls,
    }


def run_bpf(prog: bytes, nr: int, args: tuple[int, ...] = (), arch: int = AUDIT_X86_64) -> int:
    """Run a seccomp cBPF program on one syscall, the way the kernel would."""
    args = tuple(args) + (0,) * (6 - len(args))
    data = struct.pack("<iIQ6Q", nr, arch, 0, *args)
    insns = [struct.unpack_from("=HBBI", prog, off) for off in range(0, len(prog), 8)]
    a = x = pc = 0
    mem = [0] * 16
    alu = {
        0x00: lambda p, q: p + q,
        0x10: lambda p, q: p - q,
        0x20: lambda p, q: p * q,
        0x40: lambda p, q: p | q,
        0x50: lambda p, q: p & q,
        0x60: lambda p, q: p << q,
        0x70: lambda p, q: p >> q,
        0xA0: lambda p, q: p ^ q,
    }
    while True:
        code, jt, jf, k = insns[pc]
        pc += 1
        cls, op, src = code & 0x07, code & 0xF0, x if code & 0x08 else k
        if cls == 0x00:  # LD
            mode = code & 0xE0
            a = struct.unpack_from("<I", data, k)[0] if mode == 0x20 else k if mode == 0x00 else mem[k]
        elif cls == 0x01:  # LDX
            x = k if code & 0xE0 == 0x00 else mem[k]
        elif cls == 0x02:
            mem[k] = a
        elif cls == 0x03:
            mem[k] = x
        elif cls == 0x04:  # ALU
            a = (-a if op == 0x80 else alu[op](a, src)) & 0xFFFFFFFF
        elif cls == 0x05:  # JMP
            if op == 0x00:
                pc += k
                continue
            taken = {0x10: a == src, 0x20: a > src, 0x30: a >= src, 0x40: bool(a & src)}[op]
            pc += jt if taken else jf
        elif cls == 0x06:  # RET
            return a if code & 0x18 == 0x10 else k
        else:  # MISC: TAX / TXA
            if code & 0xF8 == 0x00:
                x = a
            else:
                a = x


@pytest.fixture(scope="module")
def libseccomp():
    from dockyard.kernel import seccomp as k

    try:
        k.api_level()
    except OSError as e:
        pytest.skip(f"libseccomp not available: {e}")
    return k


def _cfg(default: str = ALLOW, **extra) -> dict:
    cfg = {"defaultAction": default, "architectures": ["SCMP_ARCH_X86_64"], "syscalls": []}
    cfg.update(extra)
    return cfg


# --- validate ---------------------------------------------------------------


def test_docker_profile_is_valid_and_docker_sized():
    seccomp.validate(docker_profile())
    assert 340 <= sum(len(c["names"]) for c in docker_profile()["syscalls"]) <= 400


@pytest.mark.parametrize(
    "change, message",
    [
        ({"defaultAction": "SCMP_ACT_NOPE"}, "string SCMP_ACT_NOPE is not a valid action for seccomp"),
        ({"defaultAction": "SCMP_ACT_NOTIFY"}, "SCMP_ACT_NOTIFY cannot be used as default action"),
        ({"architectures": ["SCMP_ARCH_Z80"]}, "string SCMP_ARCH_Z80 is not a valid arch for seccomp"),
        ({"flags": ["SECCOMP_FILTER_FLAG_BOGUS"]}, "seccomp flag SECCOMP_FILTER_FLAG_BOGUS is not known"),
        ({"defaultErrnoRet": -1}, "defaultErrnoRet must be an integer"),
        ({"syscalls": {"names": ["read"]}}, "syscalls must be a list"),
        ({"syscalls": [{"names": ["read"], "action": "ALLOW"}]}, "string ALLOW is not a valid action"),
        ({"syscalls": [{"names": [""], "action": ALLOW}]}, "empty string is not a valid syscall"),
        ({"syscalls": [{"names": [3], "action": ALLOW}]}, "names must be strings"),
        ({"syscalls": [{"names": ["read"], "action": ALLOW, "errnoRet": "1"}]}, "errnoRet must be an integer"),
        (
            {"syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}], "listenerPath": "/x"},
            "SCMP_ACT_NOTIFY cannot be used for the write syscall",
        ),
        ({"syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]}, "listenerPath is not set"),
    ],
)
def test_validate_rejects(change, message):
    cfg = _cfg()
    cfg.update(change)
    with pytest.raises(InvalidArgument, match=message):
        seccomp.validate(cfg)


@pytest.mark.parametrize(
    "arg, message",
    [
        ({"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}, r"syscalls only have up to 6 arguments \(6 given\)"),
        ({"index": 0, "value": 1, "op": "SCMP_CMP_XX"}, "string SCMP_CMP_XX is not a valid operator for seccomp"),
        ({"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}, "value must be an integer"),
        ({"index": 0, "value": 1 << 64, "op": "SCMP_CMP_EQ"}, "value must be an integer"),
        ({"index": 0, "value": 1, "valueTwo": 1.5, "op": "SCMP_CMP_EQ"}, "valueTwo must be an integer"),
        ({"index": -1, "value": 1, "op": "SCMP_CMP_EQ"}, "index must be an integer"),
    ],
)
def test_validate_rejects_bad_args(arg, message):
    cfg = _cfg(syscalls=[{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [arg]}])
    with pytest.raises(InvalidArgument, match=message):
        seccomp.validate(cfg)


def test_validate_accepts_all_actions_ops_arches_flags():
    calls = [{"names": ["read"], "action": a} for a in sorted(seccomp.ACTIONS - {"SCMP_ACT_NOTIFY"})]
    calls.append({"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"})
    calls += [{"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 5, "op": op}]} for op in seccomp.OPERATORS]
    seccomp.validate(
        {
            "defaultAction": "SCMP_ACT_KILL",
            "architectures": sorted(seccomp.ARCHES),
            "flags": sorted(seccomp.FLAGS),
            "listenerPath": "/run/agent.sock",
            "syscalls": calls,
        }
    )


def test_no_default_action_and_no_rules_means_no_seccomp():
    assert not seccomp.enabled(None)
    assert not seccomp.enabled({})
    assert not seccomp.enabled({"defaultAction": "", "syscalls": []})
    assert seccomp.install({"defaultAction": "", "architectures": ["SCMP_ARCH_X86_64"]}) is None
    seccomp.validate({"defaultAction": ""})


# --- build (compile, export, no load) ---------------------------------------


def test_build_exports_bpf_that_changes_with_the_rules(libseccomp):
    base = seccomp.build(_cfg(syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]))
    assert len(base.bpf) > 0 and len(base.bpf) % 8 == 0 and len(base) == len(base.bpf) // 8
    more = seccomp.build(_cfg(syscalls=[{"names": ["mkdir", "rmdir"], "action": "SCMP_ACT_ERRNO"}]))
    other_errno = seccomp.build(_cfg(syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5}]))
    assert len({base.bpf, more.bpf, other_errno.bpf}) == 3
    assert base.flags == 0 and not base.notify


def test_errno_rules_default_to_eperm(libseccomp):
    prog = seccomp.build(_cfg(syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}])).bpf
    assert run_bpf(prog, NR["mkdir"]) == ret_errno(1)
    assert run_bpf(prog, NR["read"]) == RET_ALLOW
    custom = seccomp.build(_cfg(syscalls=[{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42}])).bpf
    assert run_bpf(custom, NR["getppid"]) == ret_errno(42)


@pytest.mark.parametrize(
    "action, ret",
    [
        ("SCMP_ACT_KILL", 0x00000000),
        ("SCMP_ACT_KILL_THREAD", 0x00000000),
        ("SCMP_ACT_KILL_PROCESS", 0x80000000),
        ("SCMP_ACT_TRAP", 0x00030000),
        ("SCMP_ACT_TRACE", 0x7FF00001),
        ("SCMP_ACT_LOG", 0x7FFC0000),
        ("SCMP_ACT_NOTIFY", 0x7FC00000),
    ],
)
def test_actions(libseccomp, action, ret):
    cfg = _cfg(syscalls=[{"names": ["getppid"], "action": action}], listenerPath="/x")
    program = seccomp.build(cfg)
    assert run_bpf(program.bpf, NR["getppid"]) == ret
    assert program.notify == (action == "SCMP_ACT_NOTIFY")


def test_flags(libseccomp):
    cfg = _cfg(syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_LOG"}])
    assert seccomp.build(cfg).flags == 0
    cfg["flags"] = ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
    assert seccomp.build(cfg).flags == (1 << 1) | (1 << 2)


def test_rule_with_the_default_action_is_skipped(libseccomp):
    cfg = _cfg("SCMP_ACT_ERRNO", syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}, {"names": ["read"], "action": ALLOW}])
    prog = seccomp.build(cfg).bpf
    assert run_bpf(prog, NR["mkdir"]) == ret_errno(1)
    assert run_bpf(prog, NR["read"]) == RET_ALLOW
    # Same action but another errno is not the default action.
    cfg["syscalls"][0]["errnoRet"] = 13
    assert run_bpf(seccomp.build(cfg).bpf, NR["mkdir"]) == ret_errno(13)


def test_unknown_syscall_names_are_ignored(libseccomp):
    cfg = _cfg(syscalls=[{"names": ["no_such_syscall_ever", "mkdir"], "action": "SCMP_ACT_ERRNO"}])
    assert run_bpf(seccomp.build(cfg).bpf, NR["mkdir"]) == ret_errno(1)


def test_args_on_distinct_indexes_are_anded(libseccomp):
    args = [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 0xF, "valueTwo": 2, "op": "SCMP_CMP_MASKED_EQ"}]
    prog = seccomp.build(_cfg(syscalls=[{"names": ["socket"], "action": "SCMP_ACT_ERRNO", "args": args}])).bpf
    assert run_bpf(prog, NR["socket"], (2, 2 | 0x80000)) == ret_errno(1)
    assert run_bpf(prog, NR["socket"], (2, 1)) == RET_ALLOW
    assert run_bpf(prog, NR["socket"], (1, 2)) == RET_ALLOW


def test_args_on_the_same_index_are_ored_like_runc(libseccomp):
    # Two conditions on arg 0: runc makes one rule per condition, the third
    # (arg 1) included, so any one of them matching is enough.
    args = [
        {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
        {"index": 0, "value": 10, "op": "SCMP_CMP_EQ"},
        {"index": 1, "value": 5, "op": "SCMP_CMP_EQ"},
    ]
    prog = seccomp.build(_cfg(syscalls=[{"names": ["socket"], "action": "SCMP_ACT_ERRNO", "args": args}])).bpf
    assert run_bpf(prog, NR["socket"], (2, 1)) == ret_errno(1)
    assert run_bpf(prog, NR["socket"], (10, 1)) == ret_errno(1)
    assert run_bpf(prog, NR["socket"], (1, 5)) == ret_errno(1)
    assert run_bpf(prog, NR["socket"], (1, 1)) == RET_ALLOW


def test_64bit_comparisons(libseccomp):
    args = [{"index": 1, "value": 0xFFFFFFFF, "op": "SCMP_CMP_EQ"}]
    prog = seccomp.build(_cfg(syscalls=[{"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "args": args}])).bpf
    assert run_bpf(prog, 8, (3, 0xFFFFFFFF)) == ret_errno(1)
    assert run_bpf(prog, 8, (3, 0x1FFFFFFFF)) == RET_ALLOW
    gt = [{"index": 1, "value": 1 << 40, "op": "SCMP_CMP_GT"}]
    prog = seccomp.build(_cfg(syscalls=[{"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "args": gt}])).bpf
    assert run_bpf(prog, 8, (3, (1 << 40) + 1)) == ret_errno(1)
    assert run_bpf(prog, 8, (3, 1 << 40)) == RET_ALLOW


def test_docker_profile_verdicts(libseccomp):
    prog = seccomp.build(docker_profile()).bpf
    verdicts = {
        "read": run_bpf(prog, NR["read"]),
        "acct": run_bpf(prog, NR["acct"]),
        "clone3": run_bpf(prog, NR["clone3"]),
        "socket(AF_INET)": run_bpf(prog, NR["socket"], (2, 1)),
        "socket(AF_VSOCK)": run_bpf(prog, NR["socket"], (40, 1)),
        "personality(query)": run_bpf(prog, NR["personality"], (0xFFFFFFFF,)),
        "personality(5)": run_bpf(prog, NR["personality"], (5,)),
        "clone(SIGCHLD)": run_bpf(prog, NR["clone"], (17,)),
        "clone(NEWUSER)": run_bpf(prog, NR["clone"], (0x10000000 | 17,)),
    }
    assert verdicts == {
        "read": RET_ALLOW,
        "acct": ret_errno(1),
        "clone3": ret_errno(38),
        "socket(AF_INET)": RET_ALLOW,
        "socket(AF_VSOCK)": ret_errno(1),
        "personality(query)": RET_ALLOW,
        "personality(5)": ret_errno(1),
        "clone(SIGCHLD)": RET_ALLOW,
        "clone(NEWUSER)": ret_errno(1),
    }


def test_enosys_stub_for_syscalls_newer_than_the_profile(libseccomp):
    prog = seccomp.build(docker_profile()).bpf
    enosys, eperm = ret_errno(38), ret_errno(1)
    # x86_64: above the highest named syscall -> ENOSYS; a known one not allowed -> EPERM.
    assert run_bpf(prog, 1000) == enosys
    assert run_bpf(prog, NR["acct"]) == eperm
    # x32 (same audit arch, bit 30): read allowed, new numbers ENOSYS.
    assert run_bpf(prog, X32_BIT | 0) == RET_ALLOW
    assert run_bpf(prog, X32_BIT | 1000) == enosys
    # i386: read is 3; acct is 51.
    assert run_bpf(prog, 3, arch=AUDIT_I386) == RET_ALLOW
    assert run_bpf(prog, 51, arch=AUDIT_I386) == eperm
    assert run_bpf(prog, 1000, arch=AUDIT_I386) == enosys
    # An arch outside the filter: libseccomp's bad-arch action (kill).
    assert run_bpf(prog, 0, arch=AUDIT_AARCH64) == RET_KILL_THREAD


def test_enosys_stub_covers_the_native_arch_even_if_not_listed(libseccomp):
    cfg = docker_profile()
    cfg["architectures"] = []
    prog = seccomp.build(cfg).bpf
    assert run_bpf(prog, 1000) == ret_errno(38)
    assert run_bpf(prog, X32_BIT | 0) == RET_KILL_THREAD  # x32 not in the filter


@pytest.mark.parametrize("default", ["SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"])
def test_no_enosys_stub_when_the_default_lets_syscalls_through(libseccomp, default):
    cfg = _cfg(default, syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}])
    assert run_bpf(seccomp.build(cfg).bpf, 1000) == run_bpf(seccomp.build(cfg).bpf, NR["read"]) != ret_errno(38)


def test_no_enosys_stub_when_the_default_errno_is_enosys(libseccomp):
    cfg = docker_profile()
    with_stub = seccomp.build(cfg)
    cfg["defaultErrnoRet"] = 38
    without = seccomp.build(cfg)
    # libseccomp's part differs only in a constant: the difference is the stub.
    assert 0 < len(with_stub) - len(without) < 20
    assert run_bpf(without.bpf, 1000) == ret_errno(38)


def test_cache_returns_the_same_program(libseccomp, tmp_path):
    cache = str(tmp_path / "cache")
    first = seccomp.build(docker_profile(), cache_dir=cache)
    assert len(os.listdir(cache)) == 1
    again = seccomp.build(docker_profile(), cache_dir=cache)
    assert (again.bpf, again.flags) == (first.bpf, first.flags)
    changed = docker_profile()
    changed["syscalls"][-1]["errnoRet"] = 95
    assert seccomp.build(changed, cache_dir=cache).bpf != first.bpf
    assert len(os.listdir(cache)) == 2


def test_cache_in_a_writable_by_others_dir_is_not_used(libseccomp, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o777)
    os.chmod(cache, 0o777)
    seccomp.build(docker_profile(), cache_dir=str(cache))
    assert os.listdir(cache) == []


def test_libseccomp_errors_are_oserrors(libseccomp):
    with libseccomp.Filter(libseccomp.ACT_ALLOW) as filt:
        with pytest.raises(OSError) as err:
            filt.add_rule(libseccomp.act_errno(1), NR["read"], [(9, libseccomp.CMP_EQ, 0, 0)])
        assert err.value.errno == 22
        with pytest.raises(OSError) as err:
            filt.add_rule(libseccomp.ACT_ALLOW, NR["read"])  # the default action
        assert err.value.errno == 13


def test_a_refused_rule_is_invalid_argument(libseccomp, monkeypatch):
    def refuse(self, action, nr, conds=()):
        raise OSError(17, "seccomp_rule_add: File exists")

    monkeypatch.setattr(libseccomp.Filter, "add_rule", refuse)
    with pytest.raises(InvalidArgument, match="error adding seccomp filter rule for syscall mkdir: File exists"):
        seccomp.build(_cfg(syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]))


def test_building_the_docker_profile_is_fast(libseccomp):
    seccomp.build(docker_profile())  # warm up: libseccomp loaded, pages touched
    cfg = docker_profile()
    start = time.perf_counter()
    program = seccomp.build(copy.deepcopy(cfg))
    elapsed = time.perf_counter() - start
    print(f"docker profile: {len(program)} BPF instructions built in {elapsed * 1000:.1f} ms")
    assert elapsed < 0.25


def test_cache_keeps_a_bounded_number_of_entries(tmp_path):
    import os
    import time

    from dockyard.runtime import seccomp as sc

    for i in range(5):
        path = tmp_path / f"{i:02d}.bpf"
        path.write_bytes(b"x")
        os.utime(path, (time.time() + i, time.time() + i))
    (tmp_path / "other").write_text("kept")
    sc._cache_prune(str(tmp_path), keep=3)
    assert sorted(os.listdir(tmp_path)) == ["02.bpf", "03.bpf", "04.bpf", "other"]
