"""bpf(2) for cgroup device filters: load, query, attach, detach.

Only what cgroup v2 device control needs: a BPF_PROG_TYPE_CGROUP_DEVICE
program is loaded from already-encoded instructions and attached to a
cgroup dir fd with BPF_F_ALLOW_MULTI, replacing the program attached
before (BPF_F_REPLACE when there is exactly one, else attach then detach
the old ones, as runc does). Errors are OSError with errno.
"""

from __future__ import annotations

import os
import struct

from . import ffi
from .libc import setrlimit, syscall

SYS_bpf = 321  # x86_64

BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_PROG_QUERY = 16

BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6  # attach type

BPF_F_ALLOW_MULTI = 1 << 1
BPF_F_REPLACE = 1 << 2

_ATTR_SIZE = 128  # bigger than every member we use; the tail stays zero
RLIMIT_MEMLOCK = 8

# The members of union bpf_attr we use, little-endian with the kernel's alignment (x86_64).
_PROG_LOAD = "<IIQQIIQII16sII"  # prog_type insn_cnt insns license log_level log_size log_buf kern_version
#                                 prog_flags prog_name prog_ifindex expected_attach_type
_ATTACH = "<IIIII"  # target_fd attach_bpf_fd attach_type attach_flags replace_bpf_fd
_QUERY = "<IIIIQI"  # target_fd attach_type query_flags attach_flags prog_ids prog_cnt
_GET_ID = "<III"  # prog_id next_id open_flags


def _buffer(data: bytes):
    """A C buffer holding a copy of ``data`` (its address stays valid while the buffer lives)."""
    return (ffi.c_char * max(len(data), 1)).from_buffer_copy(data or b"\0")


def _call(cmd: int, attr: bytes) -> tuple[int, int, bytes]:
    """bpf(2): (return value, errno, the attr as the kernel left it)."""
    buf = _buffer(attr.ljust(_ATTR_SIZE, b"\0"))
    ret = syscall(SYS_bpf, cmd, buf, _ATTR_SIZE)
    err = ffi.get_errno() if ret < 0 else 0
    return int(ret), err, bytes(buf)


def _bpf(cmd: int, attr: bytes, what: str) -> int:
    ret, err, _ = _call(cmd, attr)
    if ret < 0:
        raise OSError(err, f"bpf({what}): {os.strerror(err)}")
    return ret


def _raise_memlock() -> None:
    # Kernels before 5.11 charge programs to RLIMIT_MEMLOCK; runc raises it.
    try:
        setrlimit(RLIMIT_MEMLOCK, -1, -1)
    except OSError:
        pass


def load_device_program(code: bytes, license: str) -> int:
    """Load a CGROUP_DEVICE program (encoded instructions); return its fd."""
    if len(code) % 8:
        raise ValueError("eBPF code must be a whole number of 8-byte instructions")
    insns = _buffer(code)
    lic = _buffer(license.encode() + b"\0")

    def attr(log=None) -> bytes:
        level, size, address = (1, len(log), ffi.addressof(log)) if log is not None else (0, 0, 0)
        return struct.pack(_PROG_LOAD, BPF_PROG_TYPE_CGROUP_DEVICE, len(code) // 8, ffi.addressof(insns),
                           ffi.addressof(lic), level, size, address, 0, 0, b"", 0, 0)

    try:
        return _bpf(BPF_PROG_LOAD, attr(), "BPF_PROG_LOAD")
    except OSError as e:
        if e.errno == 1:  # EPERM: maybe memlock on an old kernel
            _raise_memlock()
            return _bpf(BPF_PROG_LOAD, attr(), "BPF_PROG_LOAD")
        if e.errno != 22:  # EINVAL: get the verifier's reason
            raise
    log = _buffer(bytes(65536))
    try:
        return _bpf(BPF_PROG_LOAD, attr(log), "BPF_PROG_LOAD")
    except OSError as e:
        text = bytes(log).split(b"\0", 1)[0].decode(errors="replace").strip()
        raise OSError(e.errno, f"bpf(BPF_PROG_LOAD): {os.strerror(e.errno)}: {text[-500:]}") from None


def attached_device_programs(cgroup_fd: int) -> list[int]:
    """The ids of the CGROUP_DEVICE programs attached to a cgroup."""
    size = 64
    for _ in range(10):
        ids = _buffer(bytes(4 * size))
        ret, err, out = _call(BPF_PROG_QUERY, struct.pack(_QUERY, cgroup_fd, BPF_CGROUP_DEVICE, 0, 0,
                                                         ffi.addressof(ids), size))
        count = struct.unpack_from(_QUERY, out)[5]  # written back even with ENOSPC
        if ret < 0:
            if err == 28:  # ENOSPC: prog_cnt now holds the real count
                size = max(count, size * 2)
                continue
            raise OSError(err, f"bpf(BPF_PROG_QUERY): {os.strerror(err)}")
        return list(struct.unpack_from(f"<{count}I", bytes(ids)))
    raise OSError(28, "bpf(BPF_PROG_QUERY): the list of device programs keeps growing")


def program_fd(prog_id: int) -> int:
    """An fd for the loaded program ``prog_id``."""
    return _bpf(BPF_PROG_GET_FD_BY_ID, struct.pack(_GET_ID, prog_id, 0, 0), "BPF_PROG_GET_FD_BY_ID")


def attach_device_program(cgroup_fd: int, prog_fd: int, flags: int = BPF_F_ALLOW_MULTI, replace_fd: int = 0) -> None:
    attr = struct.pack(_ATTACH, cgroup_fd, prog_fd, BPF_CGROUP_DEVICE, flags, replace_fd)
    _bpf(BPF_PROG_ATTACH, attr, "BPF_PROG_ATTACH")


def detach_device_program(cgroup_fd: int, prog_fd: int) -> None:
    attr = struct.pack(_ATTACH, cgroup_fd, prog_fd, BPF_CGROUP_DEVICE, 0, 0)
    _bpf(BPF_PROG_DETACH, attr, "BPF_PROG_DETACH")


def _old_program_fds(cgroup_fd: int) -> list[int]:
    fds = []
    for prog_id in attached_device_programs(cgroup_fd):
        try:
            fds.append(program_fd(prog_id))
        except PermissionError:
            # a program an LSM hides from us: it can only restrict more
            continue
    return fds


def replace_device_filter(cgroup_fd: int, code: bytes, license: str) -> None:
    """Make ``code`` the device filter of a cgroup (dir fd), replacing the old one."""
    old = _old_program_fds(cgroup_fd)
    try:
        prog = load_device_program(code, license)
        try:
            if len(old) == 1:
                try:
                    attach_device_program(cgroup_fd, prog, BPF_F_ALLOW_MULTI | BPF_F_REPLACE, old[0])
                    return
                except OSError as e:
                    if e.errno != 22:  # EINVAL: no BPF_F_REPLACE (kernel < 5.6)
                        raise
            attach_device_program(cgroup_fd, prog)
            for fd in old:
                detach_device_program(cgroup_fd, fd)
        finally:
            os.close(prog)
    finally:
        for fd in old:
            os.close(fd)
