"""Dockyard's default seccomp profile (Docker format), equal in effect to Docker 20.10's.

An allowlist: anything not named fails with EPERM. Some syscalls are allowed
only when the container holds a capability (checked against its bounding
set when the profile is rendered) or on some architectures; ``clone`` without
CAP_SYS_ADMIN is allowed only without namespace flags, and ``clone3`` (whose
flags cannot be inspected) then fails with ENOSYS so libc falls back to clone.
"""

from __future__ import annotations

ENOSYS = 38
# clone flags a container without CAP_SYS_ADMIN may not pass: CLONE_NEWNS | NEWUTS |
# NEWIPC | NEWUSER | NEWPID | NEWNET | NEWCGROUP (0x7E020000).
CLONE_NAMESPACE_FLAGS = 0x7E020000
# personality(2) values allowed: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, query.
PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

ALWAYS_ALLOWED = """
accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32 clock_adjtime
clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep
clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3 epoll_create
epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2
execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir
fchmod fchmodat fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork
fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex
futex_time64 futex_waitv futimesat getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32
getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority
getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname
getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr inotify_add_watch inotify_init
inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents io_pgetevents_time64
ioprio_get ioprio_set io_setup io_submit io_uring_enter io_uring_register io_uring_setup ipc kill
landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat
listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise membarrier
memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect
mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64
mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock munlockall munmap nanosleep newfstatat _newselect
open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 poll ppoll ppoll_time64 prctl pread64
preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead
readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr rename
renameat renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo
rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity
sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler
sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam
sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64 send sendfile
sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups
setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32
setreuid setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid
setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn
socket socketcall socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync sync_file_range
syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64
timer_settime timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat utime utimensat
utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
"""

# (names, condition) rules allowed only under a condition: "cap:X" (in the
# bounding set), "arch:a,b" (native arch among these), "kernel:M.m" (at least).
CONDITIONAL: tuple[tuple[str, str], ...] = (
    ("ptrace", "kernel:4.8"),
    ("sync_file_range2", "arch:ppc64le"),
    ("arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls", "arch:arm,arm64"),
    ("arch_prctl", "arch:amd64,x32"),
    ("modify_ldt", "arch:amd64,x32,x86"),
    ("s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr", "arch:s390,s390x"),
    ("open_by_handle_at", "cap:CAP_DAC_READ_SEARCH"),
    ("bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount mount_setattr "
     "move_mount name_to_handle_at open_tree perf_event_open quotactl quotactl_fd setdomainname sethostname "
     "setns syslog umount umount2 unshare", "cap:CAP_SYS_ADMIN"),
    ("reboot", "cap:CAP_SYS_BOOT"),
    ("chroot", "cap:CAP_SYS_CHROOT"),
    ("delete_module init_module finit_module", "cap:CAP_SYS_MODULE"),
    ("acct", "cap:CAP_SYS_PACCT"),
    ("kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace", "cap:CAP_SYS_PTRACE"),
    ("iopl ioperm", "cap:CAP_SYS_RAWIO"),
    ("settimeofday stime clock_settime", "cap:CAP_SYS_TIME"),
    ("vhangup", "cap:CAP_SYS_TTY_CONFIG"),
    ("get_mempolicy mbind set_mempolicy", "cap:CAP_SYS_NICE"),
    ("syslog", "cap:CAP_SYSLOG"),
)

# Native architecture -> the sub-architectures whose syscalls are also filtered.
ARCH_MAP: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("SCMP_ARCH_X86_64", ("SCMP_ARCH_X86", "SCMP_ARCH_X32")),
    ("SCMP_ARCH_AARCH64", ("SCMP_ARCH_ARM",)),
    ("SCMP_ARCH_MIPS64", ("SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32")),
    ("SCMP_ARCH_MIPS64N32", ("SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64")),
    ("SCMP_ARCH_MIPSEL64", ("SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32")),
    ("SCMP_ARCH_MIPSEL64N32", ("SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64")),
    ("SCMP_ARCH_S390X", ("SCMP_ARCH_S390",)),
)

_ALLOW = "SCMP_ACT_ALLOW"


def _condition(cond: str) -> dict:
    kind, _, value = cond.partition(":")
    if kind == "cap":
        return {"includes": {"caps": [value]}}
    if kind == "arch":
        return {"includes": {"arches": value.split(",")}}
    return {"includes": {"minKernel": value}}


def _clone_rules() -> list[dict]:
    """clone without namespace flags when CAP_SYS_ADMIN is missing (flags are arg 1 on s390)."""
    no_admin = {"caps": ["CAP_SYS_ADMIN"]}
    masked = {"value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}
    return [
        {"names": ["clone"], "action": _ALLOW, "args": [{"index": 0, **masked}],
         "excludes": {**no_admin, "arches": ["s390", "s390x"]}},
        {"names": ["clone"], "action": _ALLOW, "args": [{"index": 1, **masked}],
         "includes": {"arches": ["s390", "s390x"]}, "excludes": no_admin},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS, "excludes": no_admin},
    ]


def default_profile() -> dict:
    """The default profile as a fresh Docker-format dict (render it with seccomp_profile.to_oci)."""
    calls: list[dict] = [{"names": ALWAYS_ALLOWED.split(), "action": _ALLOW}]
    calls += [{"names": ["personality"], "action": _ALLOW,
               "args": [{"index": 0, "value": v, "op": "SCMP_CMP_EQ"}]} for v in PERSONALITIES]
    calls += [{"names": names.split(), "action": _ALLOW, **_condition(cond)} for names, cond in CONDITIONAL]
    calls += _clone_rules()
    return {
        "defaultAction": "SCMP_ACT_ERRNO",  # errno EPERM: the runtime's default errno
        "archMap": [{"architecture": a, "subArchitectures": list(subs)} for a, subs in ARCH_MAP],
        "syscalls": calls,
    }
