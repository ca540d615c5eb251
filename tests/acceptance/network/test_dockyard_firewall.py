"""dockyardd's own firewall table and endpoint bookkeeping (no dockerd counterpart: its rules are iptables).

The nft table `ip dockyard` in the engine's host namespace holds one DNAT rule per published port of a
running container; stopping the container removes it, a failed start leaves nothing, and a daemon start
rewrites the table from what is running (reconcile), e.g. after someone deleted it while the daemon was
down.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.acceptance.conftest import BrokenEngine
from tests.acceptance.network.conftest import NetEngine, _engine_for
from tests.support.dockyardd import DockyardDaemon

pytestmark = [pytest.mark.acceptance, pytest.mark.privileged]


@pytest.fixture
def dy(request: pytest.FixtureRequest) -> Iterator[NetEngine | BrokenEngine]:
    yield from _engine_for(request.getfixturevalue("net_dockyardd"), request)


def _table(eng: NetEngine) -> str:
    r = eng.ns.run("nft", "list", "table", "ip", "dockyard")
    assert r.rc == 0, r
    return r.stdout


def _dnat_lines(eng: NetEngine, port: int) -> list[str]:
    return [ln.strip() for ln in _table(eng).splitlines() if f"dport {port} dnat" in ln]


def test_port_rule_follows_the_container(dy: NetEngine) -> None:
    c = dy.httpd("-p", "18201:80", body="rule")
    ip = dy.inspect(c, "{{.NetworkSettings.IPAddress}}")
    assert _dnat_lines(dy, 18201) == [f"tcp dport 18201 dnat to {ip}:80"], _table(dy)
    dy.ok("stop", "-t", "1", c)
    assert _dnat_lines(dy, 18201) == [], _table(dy)
    assert dy.ns.curl("http://127.0.0.1:18201/file", timeout=2).rc != 0
    dy.ok("start", c)
    ip2 = dy.inspect(c, "{{.NetworkSettings.IPAddress}}")
    assert _dnat_lines(dy, 18201) == [f"tcp dport 18201 dnat to {ip2}:80"], _table(dy)
    assert dy.wait_http("http://127.0.0.1:18201/file", expect="rule").strip() == "rule"


def test_failed_start_leaves_no_rule_address_or_link(dy: NetEngine) -> None:
    first = dy.httpd("-p", "18202:80", body="first")
    ip = dy.inspect(first, "{{.NetworkSettings.IPAddress}}")
    veths = sorted(dy.links("veth"))
    second = dy.new_name()
    r = dy.docker("run", "-d", "--name", second, "-p", "18202:80", "busybox", "sleep", "300")
    assert r.rc == 125 and "Bind for 0.0.0.0:18202 failed: port is already allocated" in r.stderr, r
    assert _dnat_lines(dy, 18202) == [f"tcp dport 18202 dnat to {ip}:80"], _table(dy)
    dy.wait_for("the failed start's veth gone", lambda: sorted(dy.links("veth")) == veths, timeout=5)
    assert dy.inspect(second, "{{.State.Status}}") == "created"
    dy.ok("rm", "-f", first)
    dy.ok("start", second)  # the port and the address were given back
    assert dy.inspect(second, "{{.NetworkSettings.IPAddress}}") == ip
    assert len(_dnat_lines(dy, 18202)) == 1


def test_daemon_start_rewrites_a_deleted_table(dy: NetEngine) -> None:
    c = dy.httpd("-p", "18203:80", body="reconciled")
    assert dy.wait_http("http://127.0.0.1:18203/file", expect="reconciled")
    daemon = dy.daemon
    assert isinstance(daemon, DockyardDaemon)
    daemon.kill9()
    assert dy.ns.run("nft", "delete", "table", "ip", "dockyard").rc == 0
    assert dy.ns.curl("http://127.0.0.1:18203/file", timeout=2).rc != 0  # nothing forwards it now
    daemon.restart()
    assert dy.wait_http("http://127.0.0.1:18203/file", expect="reconciled").strip() == "reconciled"
    assert len(_dnat_lines(dy, 18203)) == 1
    assert dy.inspect(c, "{{.State.Status}}") == "running"
