"""libseccomp (through ctypes) to compile filters, and seccomp(2) to load them.

libseccomp is opened on first use, so a process that never builds a filter
never pays for it. Filters are compiled to classic BPF with
``Filter.export_bpf`` and loaded with ``load``, a direct seccomp(2) call: the
caller may patch the program first and chooses the kernel flags itself
(libseccomp's own loader would also set no_new_privs behind its back).
libseccomp reports failures as negative errno values; they become OSError.
"""

from __future__ import annotations

import ctypes
import os
import struct

from .libc import check, syscall

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

# Actions (SCMP_ACT_*; the kernel's SECCOMP_RET_* with libseccomp's names).
ACT_KILL_PROCESS = 0x80000000
ACT_KILL_THREAD = 0x00000000
ACT_TRAP = 0x00030000
ACT_NOTIFY = 0x7FC00000
ACT_LOG = 0x7FFC0000
ACT_ALLOW = 0x7FFF0000
_ACT_ERRNO = 0x00050000
_ACT_TRACE = 0x7FF00000


def act_errno(errno: int) -> int:
    """SCMP_ACT_ERRNO(errno): fail the syscall with ``errno``."""
    return _ACT_ERRNO | (errno & 0xFFFF)


def act_trace(msg: int) -> int:
    """SCMP_ACT_TRACE(msg): notify a ptrace tracer, which sees ``msg``."""
    return _ACT_TRACE | (msg & 0xFFFF)


# Argument comparisons (enum scmp_compare).
CMP_NE = 1
CMP_LT = 2
CMP_LE = 3
CMP_EQ = 4
CMP_GE = 5
CMP_GT = 6
CMP_MASKED_EQ = 7

# Filter attributes (enum scmp_filter_attr).
ATTR_ACT_BADARCH = 2
ATTR_CTL_NNP = 3
ATTR_CTL_TSYNC = 4
ATTR_CTL_LOG = 6
ATTR_CTL_SSB = 7
ATTR_CTL_OPTIMIZE = 8

# seccomp(2) SECCOMP_SET_MODE_FILTER flags.
FILTER_FLAG_TSYNC = 1 << 0
FILTER_FLAG_LOG = 1 << 1
FILTER_FLAG_SPEC_ALLOW = 1 << 2
FILTER_FLAG_NEW_LISTENER = 1 << 3
FILTER_FLAG_TSYNC_ESRCH = 1 << 4
FILTER_FLAG_WAIT_KILLABLE_RECV = 1 << 5
_SECCOMP_SET_MODE_FILTER = 1

# Linux audit architecture numbers (what the kernel puts in seccomp_data.arch).
AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_S390 = 0x00000016
AUDIT_ARCH_S390X = 0x80000016
# libseccomp's token for x32 is not an audit arch: x32 runs as x86_64 with
# bit 30 set in the syscall number.
ARCH_X32 = 0x4000003E
X32_SYSCALL_BIT = 0x40000000
NR_SCMP_ERROR = -1

# Classic BPF, as much as a seccomp stub needs.
BPF_LD_W_ABS = 0x20
BPF_JMP_JA = 0x05
BPF_JMP_JEQ_K = 0x15
BPF_JMP_JGT_K = 0x25
BPF_JMP_JSET_K = 0x45
BPF_RET_K = 0x06
SECCOMP_DATA_NR = 0
SECCOMP_DATA_ARCH = 4
BPF_MAXINSNS = 4096
_INSN = struct.Struct("=HBBI")
INSN_SIZE = _INSN.size


def audit_arch(token: int) -> int:
    """The audit arch of a libseccomp arch token (they differ only for x32)."""
    return AUDIT_ARCH_X86_64 if token == ARCH_X32 else token


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


class _Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


_lib: ctypes.CDLL | None = None


def _load() -> ctypes.CDLL:
    global _lib
    if _lib is not None:
        return _lib
    try:
        lib = ctypes.CDLL("libseccomp.so.2")
    except OSError as e:
        raise OSError(2, f"libseccomp.so.2 cannot be loaded: {e}") from e
    u32, ctx, cstr, c_int = ctypes.c_uint32, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    sigs: dict[str, tuple[list[type], type | None]] = {
        "seccomp_init": ([u32], ctx),
        "seccomp_release": ([ctx], None),
        "seccomp_arch_add": ([ctx, u32], c_int),
        "seccomp_arch_native": ([], u32),
        "seccomp_arch_resolve_name": ([cstr], u32),
        "seccomp_attr_set": ([ctx, c_int, u32], c_int),
        "seccomp_syscall_resolve_name": ([cstr], c_int),
        "seccomp_syscall_resolve_name_arch": ([u32, cstr], c_int),
        "seccomp_rule_add_array": ([ctx, u32, c_int, ctypes.c_uint, ctypes.POINTER(_ArgCmp)], c_int),
        "seccomp_export_bpf": ([ctx, c_int], c_int),
        "seccomp_api_get": ([], ctypes.c_uint),
        "seccomp_version": ([], ctypes.POINTER(_Version)),
    }
    for name, (args, res) in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes = args
        fn.restype = res
    _lib = lib
    return lib


def preload() -> None:
    """Open libseccomp and look up seccomp(2) now, while the host's files are in reach."""
    _load()
    _sys_seccomp()


def _rc(ret: int, what: str) -> int:
    if ret < 0:
        raise OSError(-ret, f"{what}: {os.strerror(-ret)}")
    return ret


def api_level() -> int:
    """libseccomp's API level (6 on 2.5.x with a kernel that has user notification)."""
    return int(_load().seccomp_api_get())


def version() -> tuple[int, int, int]:
    v = _load().seccomp_version().contents
    return (v.major, v.minor, v.micro)


def native_arch() -> int:
    return int(_load().seccomp_arch_native())


def arch_token(name: str) -> int:
    """libseccomp's token for an arch name ("x86_64", "x32"...); 0 if unknown."""
    return int(_load().seccomp_arch_resolve_name(name.encode()))


def resolve(name: str, arch: int | None = None) -> int:
    """Syscall number of ``name`` (native arch by default).

    Returns NR_SCMP_ERROR (-1) for names libseccomp does not know, and a
    negative pseudo number (below -10000) for names it knows but that do not
    exist on that arch.
    """
    lib = _load()
    if arch is None:
        return int(lib.seccomp_syscall_resolve_name(name.encode()))
    return int(lib.seccomp_syscall_resolve_name_arch(arch, name.encode()))


def resolve_all(names: Sequence[str], arch: int) -> list[int]:
    """``resolve(name, arch)`` for many names: one binding, one loop."""
    fn = _load().seccomp_syscall_resolve_name_arch
    return [fn(arch, name.encode()) for name in names]


class Filter:
    """A libseccomp filter context; release it with ``close`` (or ``with``)."""

    def __init__(self, default_action: int) -> None:
        self._lib = _load()
        ctx = self._lib.seccomp_init(default_action)
        if not ctx:
            raise OSError(22, f"seccomp_init: invalid default action {default_action:#x}")
        self._ctx: int | None = ctx

    def __enter__(self) -> Filter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._ctx is not None:
            self._lib.seccomp_release(self._ctx)
            self._ctx = None

    def add_arch(self, token: int) -> None:
        """Add an architecture; adding one already present (the native one) is fine."""
        ret = self._lib.seccomp_arch_add(self._ctx, token)
        if ret != -17:  # EEXIST
            _rc(ret, "seccomp_arch_add")

    def set_attr(self, attr: int, value: int) -> None:
        _rc(self._lib.seccomp_attr_set(self._ctx, attr, value), "seccomp_attr_set")

    def add_rule(self, action: int, nr: int, conds: Sequence[tuple[int, int, int, int]] = ()) -> None:
        """Add a rule; ``conds`` are (arg index, CMP_*, datum_a, datum_b), all ANDed.

        Not the "exact" variant: libseccomp may rewrite the rule per arch
        (e.g. socket(2) through socketcall(2) on x86).
        """
        n = len(conds)
        array = (_ArgCmp * n)(*[_ArgCmp(*c) for c in conds]) if n else None
        _rc(self._lib.seccomp_rule_add_array(self._ctx, action, nr, n, array), "seccomp_rule_add")

    def export_bpf(self) -> bytes:
        """The compiled program: struct sock_filter entries in host byte order."""
        fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
        try:
            _rc(self._lib.seccomp_export_bpf(self._ctx, fd), "seccomp_export_bpf")
            return os.pread(fd, os.fstat(fd).st_size, 0)
        finally:
            os.close(fd)


def load(program: bytes, flags: int = 0) -> int:
    """Install a BPF program into this thread with seccomp(2).

    Returns the listener fd when ``flags`` has FILTER_FLAG_NEW_LISTENER, else 0.
    Without no_new_privs set the caller needs CAP_SYS_ADMIN (else EACCES).
    """
    count = len(program) // INSN_SIZE
    if not program or len(program) % INSN_SIZE or count > BPF_MAXINSNS:
        raise OSError(22, f"seccomp: bad program of {len(program)} bytes")
    nr = _sys_seccomp()
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _Fprog(count, ctypes.cast(buf, ctypes.c_char_p))
    ret = syscall(ctypes.c_long(nr), ctypes.c_ulong(_SECCOMP_SET_MODE_FILTER), ctypes.c_ulong(flags), ctypes.byref(prog))
    return check(ret, "seccomp")


_nr_seccomp: int | None = None


def _sys_seccomp() -> int:
    global _nr_seccomp
    if _nr_seccomp is None:
        nr = resolve("seccomp")
        if nr < 0:
            raise OSError(38, "seccomp: no syscall number on this architecture")
        _nr_seccomp = nr
    return _nr_seccomp


def bpf_assemble(code: Sequence[str | tuple[int, int, str | None, str | None]]) -> bytes:
    """Assemble classic BPF with symbolic jumps.

    ``code`` holds labels (str) and instructions ``(opcode, k, jt, jf)`` whose
    jt/jf name a later label (None: the next instruction); for BPF_JMP_JA, jt
    is the target. A label may end the list: it then names whatever follows
    the program, such as a filter it is prepended to.
    """
    where: dict[str, int] = {}
    count = 0
    for item in code:
        if isinstance(item, str):
            where[item] = count
        else:
            count += 1
    out = bytearray()
    pc = 0
    for item in code:
        if isinstance(item, str):
            continue
        op, k, jt, jf = item
        if op == BPF_JMP_JA:
            k, jt_off, jf_off = _jump(where, jt, pc, 0xFFFFFFFF), 0, 0
        else:
            jt_off, jf_off = _jump(where, jt, pc, 255), _jump(where, jf, pc, 255)
        out += _INSN.pack(op, jt_off, jf_off, k)
        pc += 1
    return bytes(out)


def _jump(where: dict[str, int], label: str | None, pc: int, limit: int) -> int:
    if label is None:
        return 0
    offset = where[label] - pc - 1
    if not 0 <= offset <= limit:
        raise ValueError(f"BPF jump to {label} out of range ({offset})")
    return offset


def enosys_stub(highest: dict[int, int]) -> bytes:
    """BPF to put before a filter: ENOSYS for syscalls above ``highest[arch token]``.

    Per audit arch: load the syscall number; if it is above the bound, return
    ERRNO(ENOSYS), else fall through to the filter that follows. Other
    arches go straight to the filter. x86_64 and x32 share an audit arch and
    differ by bit 30 of the number; on s390(x), unknown syscalls arrive as 0,
    the multiplexer, which also gets ENOSYS.
    """
    by_audit: dict[int, dict[int, int]] = {}
    for token, top in highest.items():
        by_audit.setdefault(audit_arch(token), {})[token] = top
    if not by_audit:
        return b""
    code: list[str | tuple[int, int, str | None, str | None]] = [(BPF_LD_W_ABS, SECCOMP_DATA_ARCH, None, None)]
    for i, (audit, tops) in enumerate(by_audit.items()):
        code += [(BPF_JMP_JEQ_K, audit, None, f"next{i}"), (BPF_LD_W_ABS, SECCOMP_DATA_NR, None, None)]
        if audit in (AUDIT_ARCH_S390, AUDIT_ARCH_S390X):
            code.append((BPF_JMP_JEQ_K, 0, "enosys", None))
        amd64, x32 = tops.get(AUDIT_ARCH_X86_64), tops.get(ARCH_X32)
        if audit != AUDIT_ARCH_X86_64:
            code.append((BPF_JMP_JGT_K, max(tops.values()), "enosys", "filter"))
        elif amd64 and x32:
            code += [
                (BPF_JMP_JSET_K, X32_SYSCALL_BIT, f"x32_{i}", None),
                (BPF_JMP_JGT_K, amd64, "enosys", "filter"),
                f"x32_{i}",
                (BPF_JMP_JGT_K, x32, "enosys", "filter"),
            ]
        elif x32:
            code += [(BPF_JMP_JSET_K, X32_SYSCALL_BIT, None, "filter"), (BPF_JMP_JGT_K, x32, "enosys", "filter")]
        else:
            code += [(BPF_JMP_JSET_K, X32_SYSCALL_BIT, "filter", None), (BPF_JMP_JGT_K, amd64 or 0, "enosys", "filter")]
        code.append(f"next{i}")
    code += [(BPF_JMP_JA, 0, "filter", None), "enosys", (BPF_RET_K, act_errno(38), None, None), "filter"]
    return bpf_assemble(code)
