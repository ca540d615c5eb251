"""Networking acceptance fixtures: each engine runs inside its own "host" network namespace.

``net_engine`` is parametrized over ("dockerd", "dockyardd") like ``engine``: one daemon per engine
for the session, started by tests/support (DockerDaemon / DockyardDaemon with ``netns=``) inside a
NetnsHost (tests/support/netns_host.py) whose veth leads to a "remote host" namespace. So docker0 /
dockyard0, the firewall rules, ip_forward and the published ports all live in throw-away namespaces;
all traffic stays inside them. dockerd runs with its default networking (bridge, iptables,
userland proxy). After each case its containers and networks are removed, and veth or bridge links
left in the engine's host namespace fail the case (Docker leaves none behind).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
import pytest

from tests.acceptance.conftest import (ENGINES, BrokenEngine, Engine, SessionDaemon, _log_dirs, engine_for,
                                       start_dockyardd)
from tests.support import hostclean
from tests.support.daemonbase import Result
from tests.support.dockerd import DockerDaemon
from tests.support.dockyardd import DockyardDaemon, load_busybox_via_cli
from tests.support.netns_host import NetnsHost

DEFAULT_BRIDGE = {"dockerd": "docker0", "dockyardd": "dockyard0"}


class NetSession(SessionDaemon):
    """A session daemon plus the namespace it runs in."""

    def __init__(self, kind: str, daemon: DockerDaemon | DockyardDaemon | None, ns: NetnsHost,
                 error: str = "") -> None:
        super().__init__(kind, daemon, error)
        self.ns = ns


@pytest.fixture(scope="session")
def net_dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetSession]:
    """The real dockerd 20.10 with default networking, inside its own host netns; busybox loaded."""
    yield from dockerd_session(tmp_path_factory, "net-dockerd-logs", 1)


def dockerd_session(tmp_path_factory: pytest.TempPathFactory, logs: str, octet: int,
                    extra_args: tuple[str, ...] = ()) -> Iterator[NetSession]:
    """A real dockerd in a fresh host netns (remote host on 10.250.<octet>.0/30), busybox loaded."""
    hostclean.sweep_stale()
    log_dir = str(tmp_path_factory.mktemp(logs))
    _log_dirs.append(log_dir)
    ns = NetnsHost(remote=True, subnet_octet=octet)
    daemon = DockerDaemon(log_dir=log_dir, netns=ns.path, extra_args=extra_args)
    try:
        daemon.start()
        load_busybox_via_cli(daemon.docker, daemon.base)
        yield NetSession("dockerd", daemon, ns)
    finally:
        try:
            daemon.stop()
        finally:
            ns.remove()


@pytest.fixture(scope="session")
def net_dockyardd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetSession]:
    """dockyardd inside its own host netns, busybox loaded, or why not (its cases then fail)."""
    hostclean.sweep_stale()
    log_dir = str(tmp_path_factory.mktemp("net-dockyardd-logs"))
    _log_dirs.append(log_dir)
    ns = NetnsHost(remote=True, subnet_octet=2)
    daemon = DockyardDaemon(log_dir=log_dir, netns=ns.path)
    session = NetSession("dockyardd", daemon, ns, start_dockyardd(daemon))
    try:
        yield session
    finally:
        try:
            daemon.stop()
        finally:
            ns.remove()


def wget(url: str, timeout: int = 3) -> list[str]:
    """A busybox command line fetching url to stdout within timeout seconds.

    Not `wget -T`: Debian 12's static busybox 1.35 wget segfaults (rc 139) whenever -T is given. And
    not `timeout` as the container's command: busybox timeout execs wget in its own process, which is
    then PID 1 and ignores timeout's SIGTERM; under `sh -c '...; exit $?'` sh stays PID 1.
    """
    return ["sh", "-c", f"timeout {timeout} wget -qO- {url}; exit $?"]


class NetEngine(Engine):
    """Engine (CLI, docker-py, cleanup) plus its host namespace ``ns`` and the networks a case made."""

    def __init__(self, session: NetSession, label: str) -> None:
        super().__init__(session, label)
        self.ns = session.ns
        self.networks: list[str] = []
        self.default_bridge = DEFAULT_BRIDGE[self.kind]

    def new_network(self) -> str:
        name = f"accnet-{self.label}-{self.kind}-{len(self.networks)}"
        self.networks.append(name)
        return name

    def httpd(self, *args: str, body: str = "hello", network: str | None = None) -> str:
        """A detached busybox httpd on port 80 serving /www/file (= body); returns its name."""
        net = ("--network", network) if network else ()
        script = f"mkdir -p /www && echo {body} > /www/file && exec httpd -f -p 80 -h /www"
        return self.run_d(*net, *args, "busybox", "sh", "-c", script)

    def in_container(self, *args: str, timeout: float = 30.0) -> Result:
        """``docker run --rm ARGS`` (ARGS: options, busybox, command)."""
        return self.docker("run", "--rm", *args, timeout=timeout)

    def wget_from(self, network: str, url: str, *extra: str, timeout: int = 3) -> Result:
        """busybox wget of url from a fresh container on ``network`` (options ``extra``), ``timeout`` s at most."""
        return self.in_container("--network", network, *extra, "busybox", *wget(url, timeout))

    def wait_http(self, url: str, remote: bool = False, expect: str = "", timeout: float = 15.0) -> str:
        """curl url from the host (or remote) netns until it answers with ``expect`` in the body."""
        def probe() -> str | None:
            r = self.ns.curl(url, remote=remote)
            return r.stdout if r.rc == 0 and expect in r.stdout else None
        return self.wait_for(f"GET {url}", probe, timeout)

    def links(self, kind: str) -> list[str]:
        """Names of the links of a type (veth, bridge) in the engine's host netns."""
        r = self.ns.run("ip", "-o", "link", "show", "type", kind)
        return [line.split(":")[1].strip().split("@")[0] for line in r.stdout.splitlines() if ":" in line]

    def cleanup(self) -> list[str]:
        leaks = super().cleanup()
        if self.networks and self.daemon.ping():
            self.docker("network", "rm", *self.networks, timeout=60)
        return leaks + self._link_leaks()

    def _leaks(self) -> set[str]:
        """Engine's leak check, less dockerd's own "default" sandbox: dockerd 20.10 bind-mounts the
        host netns at exec-root/netns/default the first time a --network host container runs, and
        keeps it while it runs (it is not the case's leftover)."""
        found = super()._leaks()
        if self.kind == "dockerd":
            found = {f for f in found if not f.endswith("/exec/netns/default")}
        return found

    def _link_leaks(self) -> list[str]:
        """veth or bridge links still in the host netns although nothing of the case exists any more."""
        if not self.daemon.ping() or self.docker("ps", "-aq").stdout.strip():
            return []
        deadline = time.monotonic() + 3
        while True:
            left = [f"veth {n}" for n in self.links("veth") if n != "rhost0"]
            left += [f"bridge {n}" for n in self.links("bridge") if n != self.default_bridge]
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.1)


@pytest.fixture(params=ENGINES)
def net_engine(request: pytest.FixtureRequest) -> Iterator[NetEngine | BrokenEngine]:
    """One engine with networking, in its own host netns; what the case made is removed afterwards."""
    session: NetSession = request.getfixturevalue("net_dockerd" if request.param == "dockerd" else "net_dockyardd")
    yield from _engine_for(session, request)


def _engine_for(session: NetSession, request: pytest.FixtureRequest) -> Iterator[NetEngine | BrokenEngine]:
    yield from engine_for(session, request, NetEngine)
