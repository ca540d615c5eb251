"""The container's filesystem view: mounts, /dev, pivot_root, masked and read-only paths.

Runs inside the container's new mount namespace, in the init process, in the
order runc uses: propagation, bind the rootfs onto itself, each mount of the
config in order, /dev (devices, symlinks, ptmx), then pivot_root. Unlike runc,
sysctl, read-only and masked paths come before pivot_root (see
``_protection_steps``), and a cgroup mount may come later than its place in
the list (see ``prepare``). Finishing touches (read-only root, /dev and
/sys/fs/cgroup) come after the console.
Every kernel call goes through ``k`` (dockyard.kernel.libc, or a recording
fake in unit tests).
"""

from __future__ import annotations

import os
import stat as st

from ..errors import InvalidArgument
from ..kernel import consts as c
from . import mountopts

# (path, type, major, minor): the devices every container gets, mode 0666 root:root.
DEFAULT_DEVICES = (
    ("/dev/null", "c", 1, 3), ("/dev/zero", "c", 1, 5), ("/dev/full", "c", 1, 7),
    ("/dev/tty", "c", 5, 0), ("/dev/urandom", "c", 1, 9), ("/dev/random", "c", 1, 8),
)
DEV_SYMLINKS = (("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
                ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"))
_MAX_SYMLINKS = 255


def _no_cgroup_mounts() -> list[tuple[str, str]]:
    return []


class _DirsMade:
    """The cgroup dirs to bind exist already (see init._CgroupJoin for the init's own)."""

    def dir_ready(self, path: str) -> bool:
        return True

    def wait_a_little(self) -> None:
        pass


def secure_join(root: str, unsafe: str) -> str:
    """``root``/``unsafe`` with every symlink resolved as if ``root`` were ``/``.

    The result never leaves ``root``: ``..`` stops at the root and absolute
    symlink targets restart from it. Missing components are kept as they are.
    """
    root = root.rstrip("/") or "/"
    parts = [p for p in unsafe.split("/") if p]
    parts.reverse()  # a stack: the next component last
    base = root  # what is resolved so far
    links = 0
    while parts:
        part = parts.pop()
        if part == ".":
            continue
        if part == "..":
            if base != root:
                base = os.path.dirname(base)
            continue
        candidate = base + "/" + part if base != "/" else "/" + part
        try:
            is_link = st.S_ISLNK(os.lstat(candidate).st_mode)  # no exception for the common case
        except OSError:
            is_link = False
        target = None
        if is_link:
            try:
                target = os.readlink(candidate)
            except OSError:
                pass
        if target is None:
            base = candidate
            continue
        links += 1
        if links > _MAX_SYMLINKS:
            raise InvalidArgument(f"too many symlinks resolving {unsafe!r} in {root!r}")
        if target.startswith("/"):
            base = root
        parts.extend(reversed([p for p in target.split("/") if p]))
    return base


def _mkdir_in(root: str, path: str, mode: int = 0o755) -> None:
    """mkdir -p for a path already resolved inside ``root``."""
    os.makedirs(path, mode, exist_ok=True)


def _touch(path: str) -> None:
    os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
    if not os.path.lexists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o755))


class RootfsBuilder:
    """Builds the container's mount tree under ``rootfs`` (see module doc)."""

    def __init__(self, spec: dict, rootfs: str, k, cgroup_mounts=None, new_cgroupns: bool = False,
                 new_netns: bool = True, in_userns: bool = False, cgroup_dirs=None) -> None:
        self.spec = spec
        self.linux = spec.get("linux") or {}
        self.rootfs = rootfs
        self.k = k
        self.cgroup_mounts = cgroup_mounts or _no_cgroup_mounts
        self.cgroup_dirs = cgroup_dirs or _DirsMade()
        self.new_cgroupns = new_cgroupns
        self.new_netns = new_netns
        self.in_userns = in_userns
        self.ro_after_finalize: list[str] = []

    # -- before pivot_root ------------------------------------------------
    def prepare(self, protect: bool = True) -> None:
        """Every mount of the config, then /dev, then (``protect``) sysctl, read-only and masked paths.

        A cgroup mount waits for the runtime to have made the container's
        cgroup dirs, which waits on the kernel (see warmup); so it is
        put off past the mounts that follow it while none of them lies under
        or above its destination (the result is the same tree), at the latest
        to the end.
        """
        k = self.k
        k.mount(None, "/", None, mountopts.propagation_flags(self.linux.get("rootfsPropagation", "")))
        self._make_parent_private()
        k.mount(self.rootfs, self.rootfs, "bind", c.MS_BIND | c.MS_REC)
        dev_bound = False
        deferred: list[tuple[str, dict]] = []
        for m in self.spec.get("mounts") or []:
            dest = secure_join(self.rootfs, m["destination"])
            if deferred and any(_nested(dest, d) for d, _ in deferred):
                self._mount_deferred(deferred)
            is_bind = mountopts.parse(m.get("options")).is_bind
            if (m.get("type") or "") in ("cgroup", "cgroup2") and not is_bind:
                deferred.append((dest, m))
                continue
            self.mount_one(m, dest)
            if m["destination"].rstrip("/") == "/dev" and is_bind:
                dev_bound = True
        if not dev_bound:
            self.setup_dev()
        if not protect:
            self._mount_deferred(deferred)
            return
        steps = self._protection_steps()
        early = 0
        while early < len(steps) and not any(_nested(steps[early][0], d) for d, _ in deferred):
            early += 1
        for path, step in steps[:early]:
            step(path)
        self._mount_deferred(deferred)
        for path, step in steps[early:]:
            step(path)

    def protect(self) -> None:
        """sysctl, read-only and masked paths, for a ``prepare(protect=False)``."""
        for path, step in self._protection_steps():
            step(path)

    def _protection_steps(self) -> list:
        """sysctl, then read-only paths, then masked paths: (path in the rootfs, action), in order.

        runc applies them after pivot_root; done here on the same mounts (the
        container's /proc and /sys, reached under the rootfs), they are over
        before the wait for the cgroup mount ends. A sysctl goes to the
        namespaces of the writer, as it would after the pivot.
        """
        steps: list = []
        for key, value in (self.linux.get("sysctl") or {}).items():
            steps.append((secure_join(self.rootfs, "/proc/sys/" + key.replace(".", "/")), _writer(value)))
        steps += [(secure_join(self.rootfs, p), self.readonly_path) for p in self.linux.get("readonlyPaths") or []]
        steps += [(secure_join(self.rootfs, p), self.mask_path) for p in self.linux.get("maskedPaths") or []]
        return steps

    def _mount_deferred(self, deferred: list[tuple[str, dict]]) -> None:
        for dest, m in deferred:
            self.mount_one(m, dest)
        deferred.clear()

    def _make_parent_private(self) -> None:
        """pivot_root refuses a shared parent mount: make the rootfs's mount private."""
        mountpoint = self.rootfs
        while not os.path.ismount(mountpoint) and mountpoint != "/":
            mountpoint = os.path.dirname(mountpoint)
        try:
            self.k.mount(None, mountpoint, None, c.MS_PRIVATE)
        except OSError:
            pass  # not a mount point of its own in this namespace; the rbind below makes one

    def mount_one(self, m: dict, dest: str | None = None) -> None:
        """One mount of the config; ``dest`` is its destination already resolved in the rootfs."""
        dest = dest or secure_join(self.rootfs, m["destination"])
        opts = mountopts.parse(m.get("options"))
        kind = m.get("type") or ""
        if opts.is_bind or kind == "bind":
            self._bind(m.get("source") or "", dest, opts)
        elif kind == "cgroup" or kind == "cgroup2":
            self._cgroup(dest, opts)
        else:
            _mkdir_in(self.rootfs, dest)
            try:
                self.k.mount(m.get("source") or kind, dest, kind, opts.flags, opts.data or None)
            except PermissionError:
                if kind != "sysfs" or self.new_netns:
                    raise
                # sysfs cannot be mounted without a network namespace of one's own.
                self._bind("/sys", dest, mountopts.parse(["rbind"] + list(m.get("options") or [])))
                return
        for pflag in opts.propagation:
            self.k.mount(None, dest, None, pflag)

    def _bind(self, source: str, dest: str, opts) -> None:
        if not source:
            raise InvalidArgument(f"bind mount to {dest!r} needs a source")
        try:
            is_dir = st.S_ISDIR(os.stat(source).st_mode)
        except FileNotFoundError:
            raise InvalidArgument(f"bind mount source {source!r} does not exist", path=source) from None
        if is_dir:
            _mkdir_in(self.rootfs, dest)
        else:
            _touch(dest)
        flags = opts.flags | c.MS_BIND
        self.k.mount(source, dest, "bind", flags & (c.MS_BIND | c.MS_REC))
        extra = flags & ~(c.MS_BIND | c.MS_REC | c.MS_REMOUNT)
        if extra:
            self._remount(dest, flags | c.MS_REMOUNT)

    def _remount(self, dest: str, flags: int) -> None:
        """Bind remount, keeping the flags the kernel has locked (nosuid/nodev/noexec...)."""
        try:
            self.k.mount(None, dest, None, flags)
        except PermissionError:
            self.k.mount(None, dest, None, flags | locked_flags(dest))

    def _cgroup(self, dest: str, opts) -> None:
        """/sys/fs/cgroup: the container's own cgroups, read-only unless the config says rw."""
        binds = self.cgroup_mounts()
        if binds and binds[0][1] == "":  # cgroup v2: one unified hierarchy
            _mkdir_in(self.rootfs, dest)
            try:
                self.k.mount("cgroup", dest, "cgroup2", opts.flags, None)
            except (PermissionError, OSError):
                self.k.mount(binds[0][0], dest, "bind", c.MS_BIND | c.MS_REC)
                if opts.flags & c.MS_RDONLY:
                    self._remount(dest, c.MS_BIND | c.MS_REMOUNT | c.MS_RDONLY | opts.flags)
            return
        _mkdir_in(self.rootfs, dest)
        self.k.mount("tmpfs", dest, "tmpfs", opts.flags & ~c.MS_RDONLY, "mode=755")
        pending = []
        for host_dir, name in binds:
            sub = os.path.join(dest, name)
            if host_dir.startswith("symlink:"):
                if not os.path.lexists(sub):
                    os.symlink(host_dir[len("symlink:"):], sub)
                continue
            _mkdir_in(self.rootfs, sub)
            if self.new_cgroupns:
                self.k.mount("cgroup", sub, "cgroup", opts.flags, _hierarchy_data(name))
            else:
                pending.append((host_dir, sub))
        # The runtime may still be making the dirs: bind each as soon as it exists, in any order.
        while pending:
            ready = [(host_dir, sub) for host_dir, sub in pending if self.cgroup_dirs.dir_ready(host_dir)]
            if not ready:
                self.cgroup_dirs.wait_a_little()
                continue
            for host_dir, sub in ready:
                self.k.mount(host_dir, sub, "bind", c.MS_BIND | c.MS_REC)
                self._remount(sub, c.MS_BIND | c.MS_REMOUNT | opts.flags | c.MS_NOSUID | c.MS_NODEV | c.MS_NOEXEC)
                pending.remove((host_dir, sub))
        if opts.flags & c.MS_RDONLY:
            self.ro_after_finalize.append(dest)

    def setup_dev(self) -> None:
        """Device nodes, /dev symlinks and /dev/ptmx for a /dev the runtime populates."""
        old_umask = os.umask(0)
        try:
            devices = list(DEFAULT_DEVICES)
            specified = {d.get("path") for d in self.linux.get("devices") or []}
            devices = [d for d in devices if d[0] not in specified]
            for path, kind, major, minor in devices:
                self._device(path, kind, major, minor, 0o666, 0, 0)
            for d in self.linux.get("devices") or []:
                self._device(d["path"], d.get("type", "c"), d.get("major", 0), d.get("minor", 0),
                             d.get("fileMode", 0o666), d.get("uid", 0), d.get("gid", 0))
        finally:
            os.umask(old_umask)
        for src, link in DEV_SYMLINKS:
            self._symlink(src, link)
        if os.path.exists("/proc/kcore"):
            self._symlink("/proc/kcore", "/dev/core")
        ptmx = secure_join(self.rootfs, "/dev/ptmx")
        if os.path.lexists(ptmx):
            os.unlink(ptmx)
        os.symlink("pts/ptmx", ptmx)

    def _symlink(self, target: str, link: str) -> None:
        path = secure_join(self.rootfs, link)
        if not os.path.lexists(path):
            os.symlink(target, path)

    def _device(self, path: str, kind: str, major: int, minor: int, mode: int, uid: int, gid: int) -> None:
        dest = secure_join(self.rootfs, path)
        os.makedirs(os.path.dirname(dest), 0o755, exist_ok=True)
        if self.in_userns:
            # mknod is not allowed in a user namespace: bind the host's node instead.
            _touch(dest)
            self.k.mount(path, dest, "bind", c.MS_BIND)
            return
        kinds = {"c": st.S_IFCHR, "u": st.S_IFCHR, "b": st.S_IFBLK, "p": st.S_IFIFO}
        if kind not in kinds:
            raise InvalidArgument(f"{kind} is not a valid device type for device {path}")
        if os.path.lexists(dest):
            os.unlink(dest)
        os.mknod(dest, kinds[kind] | (mode & 0o7777), os.makedev(major, minor))
        os.chown(dest, uid, gid)

    def pivot(self, no_pivot: bool = False) -> None:
        """Make ``rootfs`` the root: pivot_root (or MS_MOVE + chroot for --no-pivot)."""
        k = self.k
        os.chdir(self.rootfs)
        if no_pivot:
            k.mount(self.rootfs, "/", None, c.MS_MOVE)
            os.chroot(".")
            os.chdir("/")
            return
        old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
        new_root = os.open(self.rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fchdir(new_root)
            k.pivot_root(".", ".")
            os.fchdir(old_root)
            k.mount(None, ".", None, c.MS_SLAVE | c.MS_REC)
            k.umount2(".", c.MNT_DETACH)
        finally:
            os.close(old_root)
            os.close(new_root)
        os.chdir("/")

    # -- after pivot_root -------------------------------------------------
    def finalize(self) -> None:
        """Read-only remounts that must wait until the console is set up."""
        for m in self.spec.get("mounts") or []:
            if m["destination"].rstrip("/") == "/dev" and "ro" in (m.get("options") or []):
                self._remount("/dev", c.MS_BIND | c.MS_REMOUNT | c.MS_RDONLY)
        for dest in self.ro_after_finalize:
            path = "/" + os.path.relpath(dest, self.rootfs)
            self._remount(path, c.MS_BIND | c.MS_REMOUNT | c.MS_RDONLY | c.MS_NOSUID | c.MS_NODEV | c.MS_NOEXEC)
        if (self.spec.get("root") or {}).get("readonly"):
            self._remount("/", c.MS_BIND | c.MS_REMOUNT | c.MS_RDONLY)

    def readonly_path(self, path: str) -> None:
        try:
            self.k.mount(path, path, None, c.MS_BIND | c.MS_REC)
        except FileNotFoundError:
            return
        self._remount(path, c.MS_BIND | c.MS_REMOUNT | c.MS_RDONLY | c.MS_REC)

    def mask_path(self, path: str) -> None:
        try:
            self.k.mount("/dev/null", path, None, c.MS_BIND)
        except FileNotFoundError:
            return
        except NotADirectoryError:
            self.k.mount("tmpfs", path, "tmpfs", c.MS_RDONLY, None)


_CONTROLLERS = {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "net_prio", "blkio",
                "perf_event", "hugetlb", "pids", "rdma", "misc"}


def _writer(value: str):
    def write(path: str) -> None:
        with open(path, "w") as f:
            f.write(value)

    return write


def _nested(a: str, b: str) -> bool:
    """Whether one of two absolute paths is the other or lies under it."""
    a, b = a.rstrip("/") + "/", b.rstrip("/") + "/"
    return a.startswith(b) or b.startswith(a)


def _hierarchy_data(name: str) -> str:
    """mount(2) data for a v1 hierarchy: its controllers, or ``name=X`` for a named one."""
    if all(part in _CONTROLLERS for part in name.split(",")):
        return name
    return "name=" + name


def locked_flags(path: str) -> int:
    """The mount flags of ``path`` that a remount must repeat (from statvfs)."""
    f = os.statvfs(path).f_flag
    flags = f & (c.MS_RDONLY | c.MS_NOSUID | c.MS_NODEV | c.MS_NOEXEC | c.MS_NOATIME | c.MS_NODIRATIME)
    if f & 4096:  # ST_RELATIME
        flags |= c.MS_RELATIME
    return flags
