"""The OCI ``linux.seccomp`` filter: validated, compiled and loaded as runc does.

Semantics follow runc 1.1.5:

- ``SCMP_ACT_KILL`` means kill-thread; ERRNO and TRACE default to EPERM.
- Each name of a ``syscalls[]`` entry is one rule. Rules whose action equals
  the default action are skipped (libseccomp refuses them), and so are names
  libseccomp does not know (they may be newer than it).
- Conditions of a rule are ANDed, unless two of them test the same argument:
  then every condition becomes a rule of its own (ORed).
- Unless the default action already lets syscalls through (ALLOW, LOG,
  TRACE) or returns ENOSYS, a stub runs before libseccomp's program and
  answers ENOSYS to syscall numbers above the highest one the profile names
  for that arch, so that programs probing for syscalls newer than the
  profile fall back instead of failing on EPERM. runc 1.1.5 covers the listed
  architectures; as later runc does, the native one is always covered too.
- ``flags``: runc 1.1.5 rejects them all; like later runc, Dockyard accepts
  TSYNC (a no-op: the init is single-threaded), LOG, SPEC_ALLOW and
  WAIT_KILLABLE_RECV, and does not add SPEC_ALLOW on its own.

no_new_privs is the caller's business: without it, loading needs
CAP_SYS_ADMIN, which is why runc loads the filter before dropping
capabilities in that case, and just before execve otherwise.
libseccomp itself is opened only when a filter is built.
"""

from __future__ import annotations

import os

from ..errors import InvalidArgument, Unavailable
from ..kernel import seccomp as k
from . import log

ENOSYS = 38
EPERM = 1
_MAX_ARGS = 6
_U64 = (1 << 64) - 1

_FIXED_ACTIONS = {
    "SCMP_ACT_KILL": k.ACT_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": k.ACT_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": k.ACT_KILL_PROCESS,
    "SCMP_ACT_TRAP": k.ACT_TRAP,
    "SCMP_ACT_ALLOW": k.ACT_ALLOW,
    "SCMP_ACT_LOG": k.ACT_LOG,
    "SCMP_ACT_NOTIFY": k.ACT_NOTIFY,
}
ACTIONS = frozenset(_FIXED_ACTIONS) | {"SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"}
# Default actions after which no ENOSYS stub is needed.
_LETS_THROUGH = frozenset({"SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"})
OPERATORS = {
    "SCMP_CMP_NE": k.CMP_NE,
    "SCMP_CMP_LT": k.CMP_LT,
    "SCMP_CMP_LE": k.CMP_LE,
    "SCMP_CMP_EQ": k.CMP_EQ,
    "SCMP_CMP_GE": k.CMP_GE,
    "SCMP_CMP_GT": k.CMP_GT,
    "SCMP_CMP_MASKED_EQ": k.CMP_MASKED_EQ,
}
# OCI name -> libseccomp's name for it.
ARCHES = {
    "SCMP_ARCH_X86": "x86",
    "SCMP_ARCH_X86_64": "x86_64",
    "SCMP_ARCH_X32": "x32",
    "SCMP_ARCH_ARM": "arm",
    "SCMP_ARCH_AARCH64": "aarch64",
    "SCMP_ARCH_MIPS": "mips",
    "SCMP_ARCH_MIPS64": "mips64",
    "SCMP_ARCH_MIPS64N32": "mips64n32",
    "SCMP_ARCH_MIPSEL": "mipsel",
    "SCMP_ARCH_MIPSEL64": "mipsel64",
    "SCMP_ARCH_MIPSEL64N32": "mipsel64n32",
    "SCMP_ARCH_PPC": "ppc",
    "SCMP_ARCH_PPC64": "ppc64",
    "SCMP_ARCH_PPC64LE": "ppc64le",
    "SCMP_ARCH_RISCV64": "riscv64",
    "SCMP_ARCH_S390": "s390",
    "SCMP_ARCH_S390X": "s390x",
    "SCMP_ARCH_LOONGARCH64": "loongarch64",
}
# OCI filter flag -> seccomp(2) flag (TSYNC: accepted, not passed on).
FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 0,
    "SECCOMP_FILTER_FLAG_LOG": k.FILTER_FLAG_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": k.FILTER_FLAG_SPEC_ALLOW,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": k.FILTER_FLAG_WAIT_KILLABLE_RECV,
}
_CACHE_FORMAT = "dockyard-seccomp-1"
# Binary-tree dispatch pays off past this many rules (runc's threshold).
_OPTIMIZE_ABOVE = 32


class Program:
    """A compiled filter: BPF bytes (host order) and the seccomp(2) flags to load it with."""

    __slots__ = ("bpf", "flags")

    def __init__(self, bpf: bytes, flags: int) -> None:
        self.bpf = bpf
        self.flags = flags

    @property
    def notify(self) -> bool:
        """Whether loading returns a listener fd (some rule uses SCMP_ACT_NOTIFY)."""
        return bool(self.flags & k.FILTER_FLAG_NEW_LISTENER)

    def __len__(self) -> int:
        return len(self.bpf) // k.INSN_SIZE


def enabled(cfg: dict | None) -> bool:
    """runc treats a config without a default action and without rules as no seccomp."""
    if not cfg:
        return False
    return bool(cfg.get("defaultAction") or cfg.get("syscalls"))


def validate(cfg: dict) -> None:
    """Raise InvalidArgument for anything runc would refuse in ``linux.seccomp``."""
    if not isinstance(cfg, dict):
        raise InvalidArgument("linux.seccomp must be an object")
    if not enabled(cfg):
        return
    default = cfg.get("defaultAction", "")
    _check_action(default)
    if default == "SCMP_ACT_NOTIFY":
        raise InvalidArgument("SCMP_ACT_NOTIFY cannot be used as default action")
    _check_uint(cfg.get("defaultErrnoRet"), "defaultErrnoRet", 0xFFFFFFFF)
    for arch in _list(cfg, "architectures", "linux.seccomp"):
        if arch not in ARCHES:
            raise InvalidArgument(f"string {arch} is not a valid arch for seccomp")
    for flag in _list(cfg, "flags", "linux.seccomp"):
        if flag not in FLAGS:
            raise InvalidArgument(f"seccomp flag {flag} is not known")
    listener = cfg.get("listenerPath")
    if listener is not None and not isinstance(listener, str):
        raise InvalidArgument("linux.seccomp.listenerPath must be a string")
    calls = _list(cfg, "syscalls", "linux.seccomp")
    for call in calls:
        _validate_call(call)
    if not cfg.get("listenerPath") and any(c.get("action") == "SCMP_ACT_NOTIFY" and c.get("names") for c in calls):
        raise InvalidArgument("listenerPath is not set")


def _validate_call(call: object) -> None:
    if not isinstance(call, dict):
        raise InvalidArgument("linux.seccomp.syscalls entries must be objects")
    action = call.get("action", "")
    _check_action(action)
    _check_uint(call.get("errnoRet"), "errnoRet", 0xFFFFFFFF)
    names = _list(call, "names", "linux.seccomp.syscalls[]")
    for name in names:
        if not isinstance(name, str):
            raise InvalidArgument("linux.seccomp.syscalls[].names must be strings")
        if not name:
            raise InvalidArgument("empty string is not a valid syscall")
        if name == "write" and action == "SCMP_ACT_NOTIFY":
            raise InvalidArgument("SCMP_ACT_NOTIFY cannot be used for the write syscall")
    for arg in _list(call, "args", "linux.seccomp.syscalls[]"):
        if not isinstance(arg, dict):
            raise InvalidArgument("linux.seccomp.syscalls[].args entries must be objects")
        op = arg.get("op", "")
        if op not in OPERATORS:
            raise InvalidArgument(f"string {op} is not a valid operator for seccomp")
        index = arg.get("index", 0)
        _check_uint(index, "args[].index", _U64)
        if index >= _MAX_ARGS:
            who = names[0] if names else "?"
            raise InvalidArgument(
                f"error creating seccomp syscall condition for syscall {who}: "
                f"syscalls only have up to 6 arguments ({index} given)"
            )
        _check_uint(arg.get("value", 0), "args[].value", _U64)
        _check_uint(arg.get("valueTwo", 0), "args[].valueTwo", _U64)


def _check_action(action: object) -> None:
    if action not in ACTIONS:
        raise InvalidArgument(f"string {action} is not a valid action for seccomp")


def _check_uint(value: object, what: str, limit: int) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
        raise InvalidArgument(f"linux.seccomp: {what} must be an integer from 0 to {limit}, not {value!r}")


def _list(obj: dict, key: str, where: str) -> list:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidArgument(f"{where}.{key} must be a list")
    return value


def preload() -> None:
    """Open libseccomp while the host's root is still visible.

    The container's init calls this before pivot_root, after which the
    library could not be found; ``install``, ``build`` and ``load`` then work
    from inside the container's root.
    """
    try:
        k.preload()
    except OSError as e:
        raise Unavailable(f"seccomp: {e.strerror}") from e


def install(cfg: dict, *, cache_dir: str | None = None) -> int | None:
    """Build the filter and load it into this process (no_new_privs: the caller's).

    Returns the listener fd when a rule uses SCMP_ACT_NOTIFY, else None.
    Nothing is loaded for a config with no default action and no rules.
    After pivot_root this needs ``preload`` to have run before it; and
    compiling takes some 20 ms for Docker's profile, so a caller that can
    ``build`` early (before clone, where errors also show sooner) and
    ``load`` late does better.
    """
    if not enabled(cfg):
        return None
    return load(build(cfg, cache_dir=cache_dir))


def load(program: Program) -> int | None:
    """Load a compiled program into this process (see ``install``)."""
    try:
        fd = k.load(program.bpf, program.flags)
    except OSError as e:
        raise Unavailable(f"error loading seccomp filter into kernel: {os.strerror(e.errno or 0)}") from e
    return fd if program.notify else None


def build(cfg: dict, *, cache_dir: str | None = None) -> Program:
    """Validate and compile an OCI seccomp config, without loading it.

    With ``cache_dir`` (a root-only directory, such as the runtime's state
    root) compiled programs are kept there, keyed by a SHA-256 of the config
    and the libseccomp version: compiling Docker's default profile takes
    libseccomp some 20 ms, reading it back well under one.
    """
    validate(cfg)
    if not enabled(cfg):
        raise InvalidArgument("linux.seccomp has no defaultAction and no syscalls: there is no filter to build")
    try:
        k.api_level()
    except OSError as e:
        raise Unavailable(f"seccomp: {e.strerror}") from e
    if cache_dir is None:
        return _compile(cfg)
    return _compile_cached(cfg, cache_dir)


def _compile_cached(cfg: dict, cache_dir: str) -> Program:
    """``_compile`` through the cache; an untrusted or unusable cache is just not used."""
    import hashlib

    key = hashlib.sha256(repr((_CACHE_FORMAT, k.version(), k.native_arch(), cfg)).encode()).hexdigest()
    path = f"{cache_dir}/{key}.bpf"
    trusted = _cache_trusted(cache_dir)
    if trusted:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            data = b""
        if len(data) > 4 and (len(data) - 4) % k.INSN_SIZE == 0:
            return Program(data[4:], int.from_bytes(data[:4], "little"))
    program = _compile(cfg)
    if trusted:
        _cache_store(path, program)
    return program


def _cache_trusted(cache_dir: str) -> bool:
    """Only a directory of ours that nobody else may write to is a safe cache."""
    try:
        os.makedirs(cache_dir, 0o700, exist_ok=True)
        st = os.stat(cache_dir)
    except OSError:
        return False
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _cache_store(path: str, program: Program) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, program.flags.to_bytes(4, "little") + program.bpf)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _cache_prune(os.path.dirname(path))
    except OSError as e:
        log.get().debug(f"seccomp: not caching the compiled filter: {e}")
        try:
            os.unlink(tmp)
        except OSError:
            pass


CACHE_ENTRIES = 64  # distinct profiles kept; a host typically uses one or two


def _cache_prune(cache_dir: str, keep: int = CACHE_ENTRIES) -> None:
    """Drop the least recently written entries beyond ``keep`` (the cache lives on tmpfs)."""
    entries = []
    for name in os.listdir(cache_dir):
        if name.endswith(".bpf"):
            try:
                entries.append((os.stat(f"{cache_dir}/{name}").st_mtime, name))
            except FileNotFoundError:
                continue
    for _, name in sorted(entries)[: max(0, len(entries) - keep)]:
        try:
            os.unlink(f"{cache_dir}/{name}")
        except FileNotFoundError:
            pass


def _compile(cfg: dict) -> Program:
    syscalls = cfg.get("syscalls") or []
    default = _action(cfg["defaultAction"], cfg.get("defaultErrnoRet"))
    flags = 0
    for flag in cfg.get("flags") or ():
        flags |= FLAGS[flag]
    if any(call.get("action") == "SCMP_ACT_NOTIFY" and call.get("names") for call in syscalls):
        if k.api_level() < 6:
            raise Unavailable(
                f"seccomp notify unsupported: API level: got {k.api_level()}, want at least 6. "
                "Please try with libseccomp >= 2.5.0 and Linux >= 5.7"
            )
        flags |= k.FILTER_FLAG_NEW_LISTENER
    arches = {_arch_token(name): name for name in cfg.get("architectures") or ()}
    with k.Filter(default) as filt:
        for token in arches:
            filt.add_arch(token)
        filt.set_attr(k.ATTR_CTL_NNP, 0)
        if sum(len(call.get("names") or ()) for call in syscalls) > _OPTIMIZE_ABOVE:
            filt.set_attr(k.ATTR_CTL_OPTIMIZE, 2)
        for call in syscalls:
            _add_rules(filt, call, default)
        bpf = filt.export_bpf()
    if _stub_needed(cfg):
        bpf = _enosys_stub(arches, syscalls) + bpf
    if len(bpf) // k.INSN_SIZE > k.BPF_MAXINSNS:
        raise InvalidArgument(f"seccomp filter too long: {len(bpf) // k.INSN_SIZE} BPF instructions")
    return Program(bpf, flags)


def _action(name: str, errno_ret: int | None) -> int:
    if name == "SCMP_ACT_ERRNO":
        return k.act_errno(EPERM if errno_ret is None else errno_ret)
    if name == "SCMP_ACT_TRACE":
        return k.act_trace(EPERM if errno_ret is None else errno_ret)
    return _FIXED_ACTIONS[name]


def _arch_token(oci_name: str) -> int:
    token = k.arch_token(ARCHES[oci_name])
    if not token:
        raise Unavailable(f"error validating Seccomp architecture: {oci_name} is not supported by libseccomp")
    return token


def _add_rules(filt: k.Filter, call: dict, default: int) -> None:
    """One rule per name, or one per condition when two test the same argument."""
    names = call.get("names")
    action = _action(call["action"], call.get("errnoRet"))
    if not names or action == default:
        return
    conds = [
        (a.get("index", 0), OPERATORS[a["op"]], a.get("value", 0), a.get("valueTwo", 0))
        for a in call.get("args") or ()
    ]
    indexes = {c[0] for c in conds}
    groups = [[c] for c in conds] if len(indexes) < len(conds) else [conds]
    resolve, add_rule = k.resolve, filt.add_rule
    for name in names:
        nr = resolve(name)
        if nr == k.NR_SCMP_ERROR:
            log.get().debug(f'unknown seccomp syscall "{name}" ignored')
            continue
        try:
            for group in groups:
                add_rule(action, nr, group)
        except OSError as e:
            raise InvalidArgument(
                f"error adding seccomp filter rule for syscall {name}: {os.strerror(e.errno or 0)}"
            ) from e


def _stub_needed(cfg: dict) -> bool:
    if cfg.get("defaultErrnoRet") == ENOSYS:
        return False
    return cfg.get("defaultAction") not in _LETS_THROUGH


def _enosys_stub(arches: dict[int, str], syscalls: list) -> bytes:
    """The ENOSYS stub for the listed arches and the native one.

    The bound per arch is the highest syscall number among all the names in
    the profile, whatever their action (as runc computes it).
    """
    wanted = dict(arches)
    wanted.setdefault(k.native_arch(), "native")
    names = list({name for call in syscalls for name in call.get("names") or ()})
    highest: dict[int, int] = {}
    for token, label in wanted.items():
        top = max(k.resolve_all(names, token), default=0)
        if top > 0:
            highest[token] = top
        else:
            log.get().warning(f"could not find any syscalls for arch {label}")
    return k.enosys_stub(highest)
