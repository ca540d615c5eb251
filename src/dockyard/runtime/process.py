"""The last steps before a container process execs: identity, limits, privileges.

Shared by the container's init and by ``exec``: rlimits, the user switch with
capabilities kept across it, no_new_privs, seccomp placement (before the caps
drop without no_new_privs, as late as possible with it), PATH lookup with Go's
messages, and execve with signal dispositions reset.
"""

from __future__ import annotations

import os

from ..errors import InvalidArgument, NotFound
from ..oci.runtime_spec import RLIMITS


class ExecError(NotFound):
    """The process's executable cannot be found or run (messages as Go's os/exec)."""


def env_map(env: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in env or []:
        key, sep, value = entry.partition("=")
        if key:
            out[key] = value
    return out


def set_rlimits(process: dict) -> None:
    rlimits = process.get("rlimits") or []
    if not rlimits:
        return
    from ..kernel import libc

    for rl in rlimits:
        try:
            libc.setrlimit(RLIMITS[rl["type"]], int(rl.get("soft", 0)), int(rl.get("hard", 0)))
        except OSError as e:
            reason = os.strerror(e.errno or 0).lower()
            raise OSError(e.errno, f"error setting rlimit type {RLIMITS[rl['type']]}: {reason}") from None


def home_of(uid: int, passwd: str = "/etc/passwd") -> str:
    """The home directory of ``uid`` in the container's /etc/passwd, or /."""
    try:
        with open(passwd) as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    return fields[5] or "/"
    except OSError:
        pass
    return "/"


def look_path(name: str, env: dict[str, str]) -> str:
    """The executable ``name`` resolves to, with Go exec.LookPath's semantics and errors."""
    if "/" in name:
        _check_executable(name, name)
        return name
    for directory in env.get("PATH", "").split(":"):
        candidate = os.path.join(directory or ".", name)
        try:
            _check_executable(candidate, name)
            return candidate
        except ExecError:
            continue
    raise ExecError(f'exec: "{name}": executable file not found in $PATH')


def _check_executable(path: str, name: str) -> None:
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise ExecError(f'exec: "{name}": stat {path}: {(e.strerror or str(e)).lower()}') from None
    if stat.S_ISDIR(mode) or not mode & 0o111:
        raise ExecError(f'exec: "{name}": permission denied')


def switch_user(process: dict, caps) -> None:
    """Drop the bounding set, change uid/gids keeping capabilities, then set the caps."""
    from . import capabilities

    user = process.get("user") or {}
    uid, gid = int(user.get("uid", 0)), int(user.get("gid", 0))
    if caps is not None:
        capabilities.drop_bounding(caps)
        capabilities.set_keepcaps(True)
    groups = [int(g) for g in user.get("additionalGids") or []]
    try:
        os.setgroups(groups)
    except PermissionError:
        if groups:
            raise
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if caps is not None:
        capabilities.set_keepcaps(False)
        capabilities.apply(caps)


def prepare_exec(process: dict, seccomp_program, before_last=None) -> tuple[str, list[str], dict]:
    """Everything after the rootfs is ready, up to (not including) the exec.

    Returns (path, argv, env). Seccomp is loaded before the capability drop
    without no_new_privs (loading needs CAP_SYS_ADMIN then), else last.
    ``before_last`` (if given) runs after everything else, just before that
    last seccomp load: the container's init exchanges its final messages there.
    """
    from . import capabilities

    nnp = bool(process.get("noNewPrivileges"))
    if nnp:
        from ..kernel import libc
        from ..kernel.consts import PR_SET_NO_NEW_PRIVS

        libc.prctl(PR_SET_NO_NEW_PRIVS, 1)
    if seccomp_program is not None and not nnp:
        load_seccomp(seccomp_program)
    caps = capabilities.parse(process.get("capabilities"))
    env = env_map(process.get("env"))
    cwd = process.get("cwd") or "/"
    try:
        os.chdir(cwd)
    except PermissionError:
        pass  # retried as the target user below, as runc does
    switch_user(process, caps)
    os.chdir(cwd)
    if "HOME" not in env:
        env["HOME"] = home_of(int((process.get("user") or {}).get("uid", 0)))
    umask = (process.get("user") or {}).get("umask")
    os.umask(0o022 if umask is None else int(umask))
    args = process.get("args") or []
    if not args:
        raise InvalidArgument("args must not be empty")
    path = look_path(args[0], env)
    if before_last is not None:
        before_last()
    if seccomp_program is not None and nnp:
        load_seccomp(seccomp_program)  # as late as possible: fewer syscalls after it
    return path, list(args), env


def compile_seccomp(linux: dict | None, runtime_root: str | None = None):
    """Compile the container's seccomp filter in the runtime, before any clone.

    Building costs libseccomp some 20 ms for Docker's profile; doing it here
    (cached under the runtime root) keeps it off the init's path, and a bad
    profile fails create before anything exists.
    """
    cfg = (linux or {}).get("seccomp")
    if not cfg:
        return None
    from . import seccomp

    if not seccomp.enabled(cfg):
        return None
    cache_dir = None
    if runtime_root:
        # Beside the containers, root-only (the seccomp module checks before trusting it).
        cache_dir = os.path.join(runtime_root, ".seccomp-cache")
        os.makedirs(cache_dir, 0o700, exist_ok=True)
    return seccomp.build(cfg, cache_dir=cache_dir)


def load_seccomp(program) -> None:
    from . import seccomp

    fd = seccomp.load(program)
    if fd is not None:
        os.close(fd)  # listener delivery (listenerPath) is not supported yet


def execve(path: str, args: list[str], env: dict) -> None:
    """Reset what Python changed about signals, then exec; never returns."""
    import _signal

    for signum in (_signal.SIGPIPE, _signal.SIGXFSZ, _signal.SIGINT):
        _signal.signal(signum, _signal.SIG_DFL)
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])
    os.execve(path, args, env)


def mark_cloexec_from(first: int) -> None:
    """Make every descriptor >= ``first`` close on exec (fds the caller did not pass on)."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd >= first:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass


def preserve_fds(count: int) -> int:
    """Fds 3..3+count(+LISTEN_FDS) stay open in the container; return the first fd to close."""
    listen = os.environ.get("LISTEN_FDS")
    extra = int(listen) if listen and listen.isdigit() else 0
    last = 3 + count + extra
    for fd in range(3, last):
        try:
            os.set_inheritable(fd, True)
        except OSError:
            pass
    return last
