"""Reading and writing cgroup files and dirs: the one place that touches them.

Every controller goes through :func:`write` and :func:`read`, so errors are
turned into Dockyard errors in one place (always naming the file and the
value), and unit tests can record every write by wrapping :func:`write`.

Files are opened with plain ``os.open``: no buffering, no text layer. Writes
use ``O_TRUNC`` (accepted by cgroupfs, and it makes a regular file in a test
tree hold the last value written) but never ``O_CREAT``, so a file the kernel
does not provide fails with ENOENT exactly as it does on cgroupfs.
"""

from __future__ import annotations

import errno
import os
import time

from ...errors import Conflict, DockyardError, InvalidArgument, NotFound, Unavailable

MAX_UINT64 = (1 << 64) - 1


def join(dirpath: str, name: str) -> str:
    return dirpath + "/" + name


def error(exc: OSError, what: str, path: str) -> DockyardError:
    """Turn an OSError from a cgroup file operation into a Dockyard error."""
    code = exc.errno
    reason = os.strerror(code) if code else str(exc)
    msg = f"{what} {path}: {reason}"
    if code == errno.ENOENT:
        if not os.path.isdir(os.path.dirname(path)):
            return NotFound(f"{what} {path}: cgroup does not exist", path=path)
        return Unavailable(f"{what} {path}: not supported by this kernel or controller not enabled", path=path)
    if code in (errno.EINVAL, errno.ERANGE, errno.EBUSY, errno.EOVERFLOW):
        return InvalidArgument(msg, path=path)
    if code in (errno.EPERM, errno.EACCES, errno.EROFS, errno.ENODEV, errno.EOPNOTSUPP):
        return Unavailable(msg, path=path)
    return DockyardError(msg, path=path)


def write_raw(dirpath: str, name: str, data: str) -> None:
    """Write ``data`` to ``dirpath/name``; OSError passes through unchanged."""
    fd = os.open(join(dirpath, name), os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    try:
        os.write(fd, data.encode())
    finally:
        os.close(fd)


def write(dirpath: str, name: str, data: str) -> None:
    """Write ``data`` to the cgroup file ``dirpath/name``.

    Raises NotFound (cgroup gone), Unavailable (file missing: controller or
    feature absent), InvalidArgument (the kernel refused the value).
    """
    try:
        write_raw(dirpath, name, data)
    except OSError as e:
        raise error(e, f"write {data!r} to", join(dirpath, name)) from e


def read_raw(path: str) -> str:
    """Read a whole (small) file; OSError passes through unchanged."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while True:
            b = os.read(fd, 65536)
            if not b:
                break
            chunks.append(b)
    finally:
        os.close(fd)
    return b"".join(chunks).decode()


def read(dirpath: str, name: str) -> str:
    """The contents of ``dirpath/name`` (errors mapped as for :func:`write`)."""
    path = join(dirpath, name)
    try:
        return read_raw(path)
    except OSError as e:
        raise error(e, "read", path) from e


def read_opt(dirpath: str, name: str) -> str | None:
    """Like :func:`read`, but None when the file does not exist."""
    path = join(dirpath, name)
    try:
        return read_raw(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise error(e, "read", path) from e


def exists(path: str) -> bool:
    try:
        os.stat(path)
    except OSError:
        return False
    return True


def parse_uint(text: str, path: str = "") -> int:
    """A cgroup unsigned value: "max" is 2**64-1, negative values read as 0.

    Some kernels report negative memory statistics; runc reads them as 0.
    """
    text = text.strip()
    if text == "max":
        return MAX_UINT64
    try:
        value = int(text, 10)
    except ValueError:
        raise DockyardError(f"unable to parse {path}: {text!r} is not a number", path=path) from None
    if value < 0:
        return 0
    return value


def parse_int(text: str, path: str = "") -> int:
    """A cgroup signed value ("max" is 2**63-1)."""
    text = text.strip()
    if text == "max":
        return (1 << 63) - 1
    try:
        return int(text, 10)
    except ValueError:
        raise DockyardError(f"unable to parse {path}: {text!r} is not a number", path=path) from None


def read_uint(dirpath: str, name: str) -> int:
    return parse_uint(read(dirpath, name), join(dirpath, name))


def read_uint_opt(dirpath: str, name: str) -> int | None:
    text = read_opt(dirpath, name)
    if text is None:
        return None
    return parse_uint(text, join(dirpath, name))


def parse_key_values(text: str, path: str = "") -> dict[str, int]:
    """Parse "key value" lines (memory.stat, cpu.stat ...) into a dict."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        if not line:
            continue
        parts = line.split(" ")
        if len(parts) != 2:
            raise DockyardError(f"unable to parse {path}: line {line!r} is not in key value format", path=path)
        out[parts[0]] = parse_uint(parts[1], path)
    return out


def value_by_key(text: str, key: str, path: str = "") -> int:
    """The value of ``key`` in a "key value" file, 0 when absent."""
    for line in text.split("\n"):
        parts = line.split(" ")
        if len(parts) == 2 and parts[0] == key:
            return parse_uint(parts[1], path)
    return 0


# ---- cgroup dirs: create, join, list, remove (both drivers) ----


def mkdirs(path: str) -> None:
    """``mkdir -p`` (the kernel fills each new cgroup dir with its files)."""
    try:
        os.makedirs(path, 0o755, exist_ok=True)
    except OSError as e:
        raise error(e, "mkdir", path) from e


def write_pid(path: str, pid: int) -> None:
    """Move ``pid`` into the cgroup ``path`` (-1: nothing to move).

    EINVAL can mean the task is still being created (TASK_NEW): retried up
    to 5 times, 30 ms apart, as runc does.
    """
    if pid == -1:
        return
    for attempt in range(5):
        try:
            write(path, "cgroup.procs", str(pid))
            return
        except DockyardError as e:
            cause = e.__cause__
            if not isinstance(cause, OSError) or cause.errno != errno.EINVAL or attempt == 4:
                raise
            time.sleep(0.03)


def _procs(path: str) -> list[int]:
    return [int(x) for x in read(path, "cgroup.procs").split()]


def all_pids(path: str) -> list[int]:
    """The processes of ``path`` and of every cgroup below it."""
    if not os.path.isdir(path):
        raise NotFound(f"cgroup {path} does not exist", path=path)
    out = _procs(path)
    try:
        entries = list(os.scandir(path))
    except OSError as e:
        raise error(e, "list", path) from e
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            out.extend(all_pids(entry.path))
    return out


def _remove(path: str) -> None:
    """rmdir ``path``, sub-cgroups first; gone already is fine."""
    try:
        os.rmdir(path)
        return
    except FileNotFoundError:
        return
    except OSError:
        pass
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            _remove(entry.path)
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


def remove(paths: list[str]) -> None:
    """Remove cgroup dirs, retrying 5 times (10, 20, 40, 80 ms apart).

    A cgroup stays busy for a moment after its last process is killed
    (until it is reaped), hence the retries. Raises Conflict when some dir
    still holds processes after that.
    """
    pending = list(dict.fromkeys(paths))
    delay = 0.01
    last: OSError | None = None
    for attempt in range(5):
        if attempt:
            time.sleep(delay)
            delay *= 2
        left = []
        for path in pending:
            try:
                _remove(path)
            except OSError as e:
                last = e
                left.append(path)
        pending = left
        if not pending:
            return
    reason = f": {os.strerror(last.errno)}" if last is not None and last.errno else ""
    raise Conflict(f"failed to remove cgroup {', '.join(pending)}{reason}", path=pending[0])
