"""dockyardd, our Docker engine, in a throw-away directory, for acceptance tests.

    daemon = DockyardDaemon(log_dir=...)
    daemon.start()                      # returns once GET /_ping answers (30 s at most)
    daemon.load_busybox()               # busybox:latest, the same image for dockerd (see busybox_archive)
    rc, out, err = daemon.docker("run", "--rm", "busybox", "true")
    daemon.kill9(); daemon.restart()    # crash the daemon only (shims live on), start it again
    daemon.stop()                       # SIGTERM; raises LeakError if processes, mounts or cgroups remain

On-disk layout (``name`` is ``dockyard-interop-<our pid>-<random>``, so
hostclean.sweep_stale finds the leftovers of a killed run)::

    /tmp/<name>/
        dockyard.sock  dockyardd.pid    -H unix://...  --pidfile
        data/  exec/                    --data-root  --exec-root
        cli/                            DOCKER_CONFIG of the docker CLI
    <cgroup mounts>/<name>/             --cgroup-parent of every container
    <pids hierarchy>/<name>/daemon/     dockyardd itself (so a sweep finds it and its children)
    <log_dir>/dockyardd.log
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

from tests.support import hostclean
from tests.support.daemonbase import DaemonBase
from tests.support.dockerd import (SYSTEM_PATH, DaemonStartError, LeakError, Result, _connects,
                                   docker_cli)

REPO = Path(__file__).resolve().parents[2]
_JOIN_CGROUP = 'echo 0 > "$1" && shift && exec "$@"'
BUSYBOX_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_EPOCH = 1_700_000_000  # fixed mtime/created: the busybox image id is the same on every engine and run

__all__ = ["DockyardDaemon", "DaemonStartError", "LeakError", "busybox_archive", "dockyardd_binary"]


def dockyardd_binary() -> str:
    """Our engine's console script in the repository's venv."""
    return str(REPO / ".venv" / "bin" / "dockyardd")


# -- the busybox image ---------------------------------------------------------------------------
def busybox_rootfs_tar(workdir: str) -> bytes:
    """The static-busybox rootfs of DockerDaemon.load_busybox as an uncompressed layer tar (root-owned)."""
    scripts = str(REPO / "scripts")
    if scripts not in sys.path:
        sys.path.insert(0, scripts)
    from busybox_bundle import make_rootfs

    rootfs = os.path.join(workdir, "busybox-rootfs")
    make_rootfs(rootfs)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(_walk(rootfs)):
            info = tar.gettarinfo(path, arcname=os.path.relpath(path, rootfs))
            _normalize(info)
            if info.isreg():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    subprocess.run(["rm", "-rf", rootfs], check=False)
    return buf.getvalue()


def _walk(root: str) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        found += [os.path.join(dirpath, n) for n in dirnames + filenames]
    return found


def _normalize(info: tarfile.TarInfo) -> None:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = _EPOCH


def busybox_archive(tag: str = "busybox:latest", workdir: str | None = None) -> bytes:
    """A `docker save` archive of busybox (CMD ["sh"], PATH set): one layer, fixed timestamps."""
    import hashlib

    work = workdir or tempfile.mkdtemp(prefix="busybox-")
    layer = busybox_rootfs_tar(work)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(_EPOCH))
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": created,
        "config": {"Env": [BUSYBOX_PATH_ENV], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": "busybox-static rootfs (tests/support/dockyardd.py)"}],
    }, separators=(",", ":")).encode()
    config_hex = hashlib.sha256(config).hexdigest()
    layer_dir = diff_id.split(":")[1]
    manifest = json.dumps([{"Config": f"{config_hex}.json", "RepoTags": [tag],
                            "Layers": [f"{layer_dir}/layer.tar"]}]).encode()
    repo, _, version = tag.rpartition(":")
    repositories = json.dumps({repo: {version: layer_dir}}).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        _add_dir(tar, layer_dir)
        for name, data in ((f"{layer_dir}/VERSION", b"1.0"), (f"{layer_dir}/layer.tar", layer),
                           (f"{config_hex}.json", config), ("manifest.json", manifest),
                           ("repositories", repositories)):
            _add_file(tar, name, data)
    if workdir is None:
        os.rmdir(work)
    return out.getvalue()


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, _EPOCH
    tar.addfile(info)


def _add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, _EPOCH
    tar.addfile(info, io.BytesIO(data))


def load_busybox_via_cli(docker, workdir: str, tag: str = "busybox:latest") -> str:
    """`docker load` busybox_archive() through ``docker`` (a DockerDaemon/DockyardDaemon.docker)."""
    r = docker("load", input=busybox_archive(tag, workdir), timeout=120)
    if r.rc != 0:
        raise DaemonStartError(f"docker load busybox failed: {r}")
    return r.stdout.strip()


# Outside a test host namespace the daemon must not touch the machine's own network (as dockerd's
# tests/support/dockerd.py does): no bridge, no firewall table, no forwarding switched on.
NO_HOST_NETWORKING = ("--bridge=none", "--iptables=false", "--ip-forward=false")


# -- the daemon ----------------------------------------------------------------------------------
class DockyardDaemon(DaemonBase):
    """One dockyardd, private to a test session (same surface as DockerDaemon where it fits)."""

    def __init__(self, *, log_dir: str | None = None, tmp_parent: str = "/tmp", start_timeout: float = 30.0,
                 stop_timeout: float = 20.0, binary: str | None = None, netns: str | None = None,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.binary = binary or dockyardd_binary()
        self.extra_args = extra_args
        # a network namespace file (tests/support/netns_host.py) the daemon runs in (nsenter --net), so
        # its bridges and firewall rules stay there; None: the caller's namespace, as before
        self.netns = netns
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.base = tempfile.mkdtemp(prefix=f"{hostclean.PREFIX}{os.getpid()}-", dir=tmp_parent)
        self.name = os.path.basename(self.base)
        self.log_dir = log_dir or self.base
        self.cli = docker_cli() or "docker"
        self.proc: subprocess.Popen | None = None
        self._log: BinaryIO | None = None
        self._stopped = False

    # -- paths -------------------------------------------------------------------------------
    @property
    def socket_path(self) -> str:
        return self.path("dockyard.sock")

    @property
    def log_path(self) -> str:
        return os.path.join(self.log_dir, "dockyardd.log")

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def log_tail(self, lines: int = 40) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError as e:
            return f"(no log: {e})"

    def argv(self) -> list[str]:
        return [self.binary, "-H", self.host, "--data-root", self.path("data"), "--exec-root",
                self.path("exec"), "--pidfile", self.path("dockyardd.pid"), "--log-level", "debug",
                "--cgroup-parent", self.cgroup_parent,
                *(() if self.netns else NO_HOST_NETWORKING), *self.extra_args]

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start dockyardd and wait for GET /_ping; DaemonStartError (with the log tail) if it will not."""
        for d in ("data", "exec", "cli"):
            os.makedirs(self.path(d), exist_ok=True)
        os.makedirs(self.log_dir, exist_ok=True)
        if self._log is None:
            self._log = open(self.log_path, "ab")
        env = {"PATH": f"{REPO / '.venv' / 'bin'}:{SYSTEM_PATH}", "HOME": self.base, "LANG": "C.UTF-8"}
        env.update({k: v for k, v in os.environ.items() if k.startswith("DOCKYARD_")})
        argv = ["sh", "-c", _JOIN_CGROUP, "sh", self._tracking_cgroup(), *self.argv()]
        if self.netns:
            argv = ["nsenter", f"--net={self.netns}", "--", *argv]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=env, cwd=self.base, start_new_session=True)
        deadline = time.monotonic() + self.start_timeout
        while not self.ping():
            if self.proc.poll() is not None:
                raise DaemonStartError(f"dockyardd exited with {self.proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise DaemonStartError(f"dockyardd not ready after {self.start_timeout}s:\n{self.log_tail()}")
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        """SIGKILL the daemon process only: shims and containers keep running."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def restart(self) -> None:
        """Start again on the same directories (after kill9() or a stop without cleanup)."""
        if self.alive():
            self._terminate()
        if _connects(self.socket_path):
            raise DaemonStartError(f"something still listens on {self.socket_path}")
        self.start()

    def _terminate(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM (SIGKILL after stop_timeout), then remove leftovers; LeakError names them. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._terminate()
        leaks = self.leaks()
        hostclean.kill_everything(self.name, None, needle=self.base)
        stuck = hostclean.remove_tree(self.base) if self.log_dir != self.base or not leaks else []
        stuck += hostclean.remove_cgroups(self.name)
        if self._log is not None:
            self._log.close()
        if leaks or stuck:
            raise LeakError(f"{self.name}: dockyardd left behind: {leaks + stuck}")

    def leaks(self) -> list[str]:
        """What is left of the daemon's work: processes, mounts under base, container cgroups."""
        procs = hostclean.find_processes(self.name, None, needle=self.base) | _cwd_under(self.base)
        found = [f"process {p} ({_describe(p)})" for p in sorted(procs)]
        found += [f"mount {m}" for m in hostclean.mounts_under(self.base)]
        own = {self.name, os.path.join(self.name, "daemon")}
        found += [f"cgroup {d}" for d in hostclean.cgroup_dirs(self.name)
                  if _relative_cgroup(d, self.name) not in own]
        return found

    # -- client ------------------------------------------------------------------------------
    def load_busybox(self, tag: str = "busybox:latest") -> str:
        """`docker load` the busybox image (same image id as on dockerd when loaded the same way)."""
        return load_busybox_via_cli(self.docker, self.base, tag)


def _cwd_under(base: str) -> set[int]:
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cwd = os.readlink(f"/proc/{entry}/cwd")
            except OSError:
                continue
            if cwd == base or cwd.startswith(base + "/"):
                pids.add(int(entry))
    return pids - {os.getpid()}


def _describe(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()[:120]
    except OSError:
        return "gone"


def _relative_cgroup(path: str, name: str) -> str:
    """``<mount>/<name>/x`` -> ``<name>/x``."""
    idx = path.find("/" + name)
    return path[idx + 1:] if idx >= 0 else path
