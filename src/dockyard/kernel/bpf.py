"""bpf(2) for cgroup device filters: load, query, attach, detach.

Only what cgroup v2 device control needs: a BPF_PROG_TYPE_CGROUP_DEVICE
program is loaded from already-encoded instructions and attached to a
cgroup dir fd with BPF_F_ALLOW_MULTI, replacing the program attached
before (BPF_F_REPLACE when there is exactly one, else attach then detach
the old ones, as runc does). Errors are OSError with errno.
"""

from __future__ import annotations

import ctypes
import os

from .libc import syscall

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


class _ProgLoad(ctypes.Structure):
    _fields_ = [
        ("prog_type", ctypes.c_uint32),
        ("insn_cnt", ctypes.c_uint32),
        ("insns", ctypes.c_uint64),
        ("license", ctypes.c_uint64),
        ("log_level", ctypes.c_uint32),
        ("log_size", ctypes.c_uint32),
        ("log_buf", ctypes.c_uint64),
        ("kern_version", ctypes.c_uint32),
        ("prog_flags", ctypes.c_uint32),
        ("prog_name", ctypes.c_char * 16),
        ("prog_ifindex", ctypes.c_uint32),
        ("expected_attach_type", ctypes.c_uint32),
    ]


class _Attach(ctypes.Structure):
    _fields_ = [
        ("target_fd", ctypes.c_uint32),
        ("attach_bpf_fd", ctypes.c_uint32),
        ("attach_type", ctypes.c_uint32),
        ("attach_flags", ctypes.c_uint32),
        ("replace_bpf_fd", ctypes.c_uint32),
    ]


class _Query(ctypes.Structure):
    _fields_ = [
        ("target_fd", ctypes.c_uint32),
        ("attach_type", ctypes.c_uint32),
        ("query_flags", ctypes.c_uint32),
        ("attach_flags", ctypes.c_uint32),
        ("prog_ids", ctypes.c_uint64),
        ("prog_cnt", ctypes.c_uint32),
    ]


class _GetId(ctypes.Structure):
    _fields_ = [
        ("prog_id", ctypes.c_uint32),
        ("next_id", ctypes.c_uint32),
        ("open_flags", ctypes.c_uint32),
    ]


def _bpf(cmd: int, attr: ctypes.Structure, what: str) -> int:
    buf = ctypes.create_string_buffer(_ATTR_SIZE)
    ctypes.memmove(buf, ctypes.addressof(attr), ctypes.sizeof(attr))
    ret = syscall(SYS_bpf, ctypes.c_int(cmd), buf, ctypes.c_uint(_ATTR_SIZE))
    err = ctypes.get_errno() if ret < 0 else 0
    # the kernel writes results (prog_cnt, even with ENOSPC) back into the attr
    ctypes.memmove(ctypes.addressof(attr), buf, ctypes.sizeof(attr))
    if ret < 0:
        raise OSError(err, f"bpf({what}): {os.strerror(err)}")
    return int(ret)


def _raise_memlock() -> None:
    # Kernels before 5.11 charge programs to RLIMIT_MEMLOCK; runc raises it.
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_MEMLOCK, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (OSError, ValueError):
        pass


def load_device_program(code: bytes, license: str) -> int:
    """Load a CGROUP_DEVICE program (encoded instructions); return its fd."""
    if len(code) % 8:
        raise ValueError("eBPF code must be a whole number of 8-byte instructions")
    insns = ctypes.create_string_buffer(code, len(code))
    lic = ctypes.create_string_buffer(license.encode())
    attr = _ProgLoad(
        prog_type=BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt=len(code) // 8,
        insns=ctypes.addressof(insns),
        license=ctypes.addressof(lic),
    )
    try:
        return _bpf(BPF_PROG_LOAD, attr, "BPF_PROG_LOAD")
    except OSError as e:
        if e.errno == 1:  # EPERM: maybe memlock on an old kernel
            _raise_memlock()
            return _bpf(BPF_PROG_LOAD, attr, "BPF_PROG_LOAD")
        if e.errno != 22:  # EINVAL: get the verifier's reason
            raise
    log = ctypes.create_string_buffer(65536)
    attr.log_level = 1
    attr.log_size = len(log)
    attr.log_buf = ctypes.addressof(log)
    try:
        return _bpf(BPF_PROG_LOAD, attr, "BPF_PROG_LOAD")
    except OSError as e:
        text = log.value.decode(errors="replace").strip()
        raise OSError(e.errno, f"bpf(BPF_PROG_LOAD): {os.strerror(e.errno)}: {text[-500:]}") from None


def attached_device_programs(cgroup_fd: int) -> list[int]:
    """The ids of the CGROUP_DEVICE programs attached to a cgroup."""
    size = 64
    for _ in range(10):
        ids = (ctypes.c_uint32 * size)()
        attr = _Query(target_fd=cgroup_fd, attach_type=BPF_CGROUP_DEVICE, prog_ids=ctypes.addressof(ids), prog_cnt=size)
        try:
            _bpf(BPF_PROG_QUERY, attr, "BPF_PROG_QUERY")
        except OSError as e:
            if e.errno == 28:  # ENOSPC: prog_cnt now holds the real count
                size = max(attr.prog_cnt, size * 2)
                continue
            raise
        return list(ids[: attr.prog_cnt])
    raise OSError(28, "bpf(BPF_PROG_QUERY): the list of device programs keeps growing")


def program_fd(prog_id: int) -> int:
    """An fd for the loaded program ``prog_id``."""
    return _bpf(BPF_PROG_GET_FD_BY_ID, _GetId(prog_id=prog_id), "BPF_PROG_GET_FD_BY_ID")


def attach_device_program(cgroup_fd: int, prog_fd: int, flags: int = BPF_F_ALLOW_MULTI, replace_fd: int = 0) -> None:
    attr = _Attach(
        target_fd=cgroup_fd,
        attach_bpf_fd=prog_fd,
        attach_type=BPF_CGROUP_DEVICE,
        attach_flags=flags,
        replace_bpf_fd=replace_fd,
    )
    _bpf(BPF_PROG_ATTACH, attr, "BPF_PROG_ATTACH")


def detach_device_program(cgroup_fd: int, prog_fd: int) -> None:
    attr = _Attach(target_fd=cgroup_fd, attach_bpf_fd=prog_fd, attach_type=BPF_CGROUP_DEVICE)
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
