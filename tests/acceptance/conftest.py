"""Acceptance fixtures: every case runs against the real dockerd 20.10 AND against dockyardd.

``engine`` is parametrized over ("dockerd", "dockyardd"), dockerd first, so the
dockerd run shows the test is right and a dockyardd failure is a difference
from Docker. One daemon per engine for the whole session (``dockerd_engine``,
``dockyard_engine``), both with the same busybox:latest (`docker load` of
tests/support/dockyardd.busybox_archive, so image ids match). Everything is
skipped (not failed) without root or without what the real dockerd needs. If
dockyardd will not start (or dies and will not restart), its cases FAIL with
the end of its log. After each case the containers, volumes and images it
named are removed, and leftover container cgroups or mounts fail the case.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.support import hostclean
from tests.support.dockerd import DockerDaemon, Result, missing_prerequisites
from tests.support.dockyardd import DaemonStartError, DockyardDaemon, load_busybox_via_cli
from tests.support.ptyproc import PtyProcess

HERE = Path(__file__).resolve().parent
ENGINES = ("dockerd", "dockyardd")
CLIS = {"28": "/usr/local/bin/docker", "20.10": "/usr/bin/docker"}
_HEX64 = re.compile(r"[0-9a-f]{64}")
T = TypeVar("T")
_log_dirs: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "acceptance: docker CLI / docker-py against dockerd and dockyardd")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reasons: list[str] | None = None
    for item in items:
        if HERE not in Path(str(item.fspath)).resolve().parents:
            continue
        if reasons is None:
            reasons = missing_prerequisites() + [f"{p} not found" for p in CLIS.values() if not os.path.exists(p)]
        if reasons:
            item.add_marker(pytest.mark.skip(reason="real dockerd cannot run here: " + ", ".join(reasons)))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    for d in _log_dirs:
        terminalreporter.write_line(f"acceptance: daemon logs in {d}")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """A case whose engine could not start fails (in the call phase, with the daemon's log)."""
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, BrokenEngine):
            pytest.fail(value.reason, pytrace=False)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


class SessionDaemon:
    """A session daemon, or why it is not there."""

    def __init__(self, kind: str, daemon: DockerDaemon | DockyardDaemon | None, error: str = "") -> None:
        self.kind = kind
        self.daemon = daemon
        self.error = error
        self.reported: set[str] = set()  # leaks already blamed on an earlier case

    def pid(self) -> int | None:
        if self.daemon is None:
            return None
        pidfile = self.daemon.path("docker.pid" if self.kind == "dockerd" else "dockyardd.pid")
        try:
            with open(pidfile) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None


@pytest.fixture(scope="session")
def dockerd_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SessionDaemon]:
    """The real dockerd 20.10 (+ its containerd), busybox:latest loaded."""
    hostclean.sweep_stale()
    log_dir = str(tmp_path_factory.mktemp("dockerd-logs"))
    _log_dirs.append(log_dir)
    daemon = DockerDaemon(log_dir=log_dir)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        daemon.start()
        load_busybox_via_cli(daemon.docker, daemon.base)
        yield SessionDaemon("dockerd", daemon)
    finally:
        signal.signal(signal.SIGTERM, previous)
        daemon.stop()


@pytest.fixture(scope="session")
def dockyard_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SessionDaemon]:
    """dockyardd with busybox:latest loaded, or the reason it could not be had (its cases then fail)."""
    hostclean.sweep_stale()
    log_dir = str(tmp_path_factory.mktemp("dockyardd-logs"))
    _log_dirs.append(log_dir)
    daemon = DockyardDaemon(log_dir=log_dir)
    session = SessionDaemon("dockyardd", daemon)
    session.error = start_dockyardd(daemon)
    try:
        yield session
    finally:
        daemon.stop()


def start_dockyardd(daemon: DockyardDaemon) -> str:
    """Start it and load busybox; "" or why it is unusable (its cases then fail with that)."""
    try:
        daemon.start()
        daemon.load_busybox()
    except DaemonStartError as e:
        return f"dockyardd unusable: {e}"
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"dockyardd unusable: {e}\n--- log tail:\n{daemon.log_tail()}"
    return ""


class BrokenEngine:
    """Stands in for an engine that is not there; pytest_runtest_call fails the case with ``reason``."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class Engine:
    """One engine as one test case sees it: CLI and docker-py against it, plus cleanup of what it made."""

    def __init__(self, session: SessionDaemon, label: str) -> None:
        assert session.daemon is not None
        self.session = session
        self.kind = session.kind
        self.daemon = session.daemon
        self.host = self.daemon.host
        short = re.sub(r"[^a-z0-9]+", "-", label.split("::")[-1].split("[")[0].lower()).strip("-")[:28]
        # unique per case (parameters included); valid as a container, volume and image name
        self.label = f"{short.removeprefix('test-')}-{zlib.crc32(label.encode()):08x}"
        self.names: list[str] = []
        self.volumes: list[str] = []
        self.images: list[str] = []
        self._clients: list[Any] = []

    def __repr__(self) -> str:
        return f"Engine({self.kind})"

    # -- clients -----------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env["DOCKER_HOST"] = self.host
        env["DOCKER_CONFIG"] = self.daemon.path("cli")
        return env

    def argv(self, *args: str, cli: str = "28") -> list[str]:
        return [CLIS[cli], *args]

    def docker(self, *args: str, cli: str = "28", input: str | bytes | None = None,
               timeout: float = 30.0) -> Result:
        """Run the docker CLI (28 or 20.10) with DOCKER_HOST set; returns (rc, stdout, stderr)."""
        data = input.encode() if isinstance(input, str) else input
        try:
            proc = subprocess.run(self.argv(*args, cli=cli), input=data, capture_output=True, env=self.env(),
                                  stdin=subprocess.DEVNULL if data is None else None, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise AssertionError(f"[{self.kind}] docker {' '.join(args)}: no answer in {timeout}s "
                                 f"(stdout so far: {e.stdout!r})") from None
        return Result(proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))

    def ok(self, *args: str, **kw: Any) -> str:
        """docker ARGS, asserting exit 0; returns stdout."""
        r = self.docker(*args, **kw)
        assert r.rc == 0, f"[{self.kind}] docker {' '.join(args)}: {r}"
        return r.stdout

    def popen(self, *args: str, cli: str = "28", **kw: Any) -> subprocess.Popen:
        return subprocess.Popen(self.argv(*args, cli=cli), env=self.env(), **kw)

    def pty(self, *args: str, cli: str = "28") -> PtyProcess:
        """docker ARGS on a real terminal (for -it)."""
        return PtyProcess(self.argv(*args, cli=cli), self.env())

    def client(self) -> Any:
        import docker

        c = docker.DockerClient(base_url=self.host, timeout=30)
        self._clients.append(c)
        return c

    # -- names -------------------------------------------------------------------------------
    def new_name(self) -> str:
        name = f"acc-{self.label}-{self.kind}-{len(self.names)}"
        self.names.append(name)
        return name

    def new_volume(self) -> str:
        name = f"accvol-{self.label}-{self.kind}-{len(self.volumes)}"
        self.volumes.append(name)
        return name

    def new_image(self) -> str:
        name = f"acc-{self.label}-{self.kind}-{len(self.images)}:latest"
        self.images.append(name)
        return name

    # -- helpers -----------------------------------------------------------------------------
    def run_d(self, *args: str) -> str:
        """``docker run -d --name N ARGS``; returns N (asserts it started)."""
        name = self.new_name()
        self.ok("run", "-d", "--name", name, *args)
        return name

    def inspect(self, name: str, template: str) -> str:
        return self.ok("inspect", "-f", template, name).strip()

    def wait_for(self, what: str, probe: Callable[[], T | None], timeout: float = 15.0,
                 interval: float = 0.1) -> T:
        """Poll ``probe`` until it returns something truthy; AssertionError naming ``what`` if not."""
        deadline = time.monotonic() + timeout
        last: T | None = None
        while time.monotonic() < deadline:
            last = probe()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"[{self.kind}] {what}: not within {timeout}s (last: {last!r})")

    def wait_status(self, name: str, status: str, timeout: float = 15.0) -> None:
        self.wait_for(f"{name} status {status}",
                      lambda: self.docker("inspect", "-f", "{{.State.Status}}", name).stdout.strip() == status,
                      timeout)

    def wait_log(self, name: str, text: str, timeout: float = 15.0) -> str:
        return self.wait_for(f"{text!r} in logs of {name}",
                             lambda: (lambda r: r.stdout if text in r.stdout else None)(self.docker("logs", name)),
                             timeout)

    # -- cleanup -----------------------------------------------------------------------------
    def cleanup(self) -> list[str]:
        """Remove what this case named; return new leaks (container cgroups, mounts) once nothing runs."""
        for c in self._clients:
            c.close()
        if not self.session.daemon or (self.kind == "dockyardd" and not self.daemon.ping()):
            return []
        if self.names:
            self.docker("rm", "-f", "-v", *self.names, timeout=60)
        if self.volumes:
            self.docker("volume", "rm", "-f", *self.volumes, timeout=60)
        if self.images:
            self.docker("rmi", "-f", *self.images, timeout=60)
        return self._new_leaks()

    def _new_leaks(self) -> list[str]:
        if self.docker("ps", "-aq").stdout.strip():
            return []  # something else still exists (not ours): cannot judge
        deadline = time.monotonic() + 3
        while True:
            leaks = self._leaks() - self.session.reported
            if not leaks or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.session.reported |= leaks
        return sorted(leaks)

    def _leaks(self) -> set[str]:
        name = self.daemon.name
        found = {f"cgroup {d}" for d in hostclean.cgroup_dirs(name) if _HEX64.search(d)}
        pid = self.session.pid()
        if pid is not None:
            try:
                points = [m for m, _, _ in hostclean.mountinfo(pid)]
            except OSError:
                points = []
            base = self.daemon.base + "/"  # data-root or exec-root themselves may be (bind) mounts: fine
            found |= {f"mount {m}" for m in points if m.startswith(base) and "/" in m[len(base):]}
        return found


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Iterator[Engine | BrokenEngine]:
    """The case's view of one engine; its containers, volumes and images are removed afterwards."""
    fixture = "dockerd_engine" if request.param == "dockerd" else "dockyard_engine"
    yield from engine_for(request.getfixturevalue(fixture), request, Engine)


E = TypeVar("E", bound="Engine")


def engine_for(session: Any, request: pytest.FixtureRequest, cls: Callable[[Any, str], E]) -> Iterator[E | BrokenEngine]:
    """A case's engine (``cls``) on a session daemon, revived if it died; leaks after the case fail it."""
    if session.kind == "dockyardd" and not session.error:
        _revive(session)
    if session.error:
        yield BrokenEngine(session.error)
        return
    eng = cls(session, request.node.nodeid)
    try:
        yield eng
    finally:
        leaks = eng.cleanup()
    if leaks:
        pytest.fail(f"[{eng.kind}] left behind after the case's containers were removed: {leaks}", pytrace=False)


def _revive(session: SessionDaemon) -> None:
    """Restart a dockyardd whose process died during an earlier case (that case already failed)."""
    daemon = session.daemon
    assert isinstance(daemon, DockyardDaemon)
    if daemon.alive():  # alive but slow to answer is that case's failure, not a reason to restart
        return
    try:
        daemon.restart()
    except (DaemonStartError, OSError) as e:
        session.error = f"dockyardd died and did not restart: {e}"


class Pair:
    """dockerd and dockyardd side by side, in that order."""

    def __init__(self, docker: Engine, ours: Engine) -> None:
        self.engines = (docker, ours)


@pytest.fixture
def pair(dockerd_engine: SessionDaemon, dockyard_engine: SessionDaemon,
         request: pytest.FixtureRequest) -> Iterator[Pair | BrokenEngine]:
    """The real dockerd and dockyardd side by side (the case FAILS if dockyardd is not there)."""
    if not dockyard_engine.error:
        _revive(dockyard_engine)
    if dockyard_engine.error:
        yield BrokenEngine(dockyard_engine.error)
        return
    engines = Engine(dockerd_engine, request.node.nodeid), Engine(dockyard_engine, request.node.nodeid)
    try:
        yield Pair(*engines)
    finally:
        for e in engines:
            e.cleanup()


def errors(text: str) -> str:
    """stderr without the daemon's warnings (dockerd warns about IPv4 forwarding on every run)."""
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("WARNING:"))
