"""Live restore: after a daemon restart, running containers keep their published ports and their DNS.

dockyardd: the session daemon (live restore is its default), SIGKILLed and started again.
dockerd: a daemon of its own started with --live-restore (in its own host netns), SIGTERMed and started
again on the same directories (the DockerDaemon harness has no restart: its private _terminate and
_start_dockerd are used).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.acceptance.conftest import ENGINES, BrokenEngine
from tests.acceptance.network.conftest import NetEngine, NetSession, _engine_for, dockerd_session, wget
from tests.support.dockerd import DockerDaemon
from tests.support.dockyardd import DockyardDaemon

pytestmark = [pytest.mark.acceptance, pytest.mark.privileged]


@pytest.fixture(scope="module")
def live_restore_dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetSession]:
    yield from dockerd_session(tmp_path_factory, "net-dockerd-live-restore-logs", 3, ("--live-restore",))


@pytest.fixture(params=ENGINES)
def restartable(request: pytest.FixtureRequest) -> Iterator[NetEngine | BrokenEngine]:
    fixture = "live_restore_dockerd" if request.param == "dockerd" else "net_dockyardd"
    yield from _engine_for(request.getfixturevalue(fixture), request)


def _restarter(eng: NetEngine) -> Callable[[], None]:
    daemon = eng.daemon
    if isinstance(daemon, DockyardDaemon):
        def restart_dockyardd() -> None:
            daemon.kill9()
            daemon.restart()
        return restart_dockyardd
    assert isinstance(daemon, DockerDaemon)

    def restart_dockerd() -> None:
        daemon._terminate("dockerd", daemon.shutdown_timeout + 10)
        daemon._start_dockerd(daemon._tracking_cgroup())
    return restart_dockerd


def test_ports_and_dns_survive_a_restart(restartable: NetEngine) -> None:
    eng = restartable
    n1 = eng.new_network()
    eng.ok("network", "create", n1)
    srv = eng.httpd("-p", "18090:80", "--network-alias", "web", body="still-here", network=n1)
    client = eng.run_d("--network", n1, "busybox", "sleep", "300")
    assert eng.wait_http("http://127.0.0.1:18090/file", expect="still-here").strip() == "still-here"
    before = eng.ok("exec", client, *wget("http://web/file"))
    assert before.strip() == "still-here"
    pid = eng.inspect(srv, "{{.State.Pid}}")

    _restarter(eng)()

    assert eng.inspect(srv, "{{.State.Status}} {{.State.Pid}}") == f"running {pid}"
    assert eng.wait_http("http://127.0.0.1:18090/file", expect="still-here").strip() == "still-here"
    url = f"http://{eng.ns.address}:18090/file"
    assert eng.wait_http(url, remote=True, expect="still-here").strip() == "still-here"
    by_alias = eng.wait_for("DNS in a running container after the restart",
                            lambda: eng.docker("exec", client, *wget("http://web/file")).stdout.strip())
    assert by_alias == "still-here"
    assert eng.docker("exec", client, *wget(f"http://{srv}/file")).stdout.strip() == "still-here"
    assert eng.wget_from(n1, f"http://{srv}/file").stdout.strip() == "still-here"  # and in a new one
    r = eng.docker("run", "--rm", "-p", "18090:80", "busybox", "true")
    assert r.rc == 125 and "port is already allocated" in r.stderr, r  # the allocation survived too
