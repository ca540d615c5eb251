"""Published ports (loopback, -P, remote host, udp, conflicts) and the host/none/container: modes."""

from __future__ import annotations

import json
import re
import sys

import pytest

from tests.acceptance.conftest import errors
from tests.acceptance.network.conftest import NetEngine

pytestmark = [pytest.mark.acceptance, pytest.mark.privileged]


def _port_lines(eng: NetEngine, c: str) -> list[str]:
    return [line for line in eng.ok("port", c).splitlines() if line]


def test_publish_on_loopback(net_engine: NetEngine) -> None:
    eng = net_engine
    c = eng.httpd("-p", "127.0.0.1:18080:80", body="on-loopback")
    assert eng.wait_http("http://127.0.0.1:18080/file", expect="on-loopback").strip() == "on-loopback"
    assert _port_lines(eng, c) == ["80/tcp -> 127.0.0.1:18080"]
    assert eng.ok("port", c, "80").splitlines() == ["127.0.0.1:18080"]
    assert eng.ok("port", c, "80/tcp").splitlines() == ["127.0.0.1:18080"]
    ports = json.loads(eng.inspect(c, "{{json .NetworkSettings.Ports}}"))
    assert ports == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18080"}]}, ports
    bindings = json.loads(eng.inspect(c, "{{json .HostConfig.PortBindings}}"))
    assert bindings == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18080"}]}, bindings
    r = eng.ns.curl(f"http://{eng.ns.address}:18080/file", remote=True, timeout=2)
    assert r.rc != 0, r  # bound to loopback only
    r = eng.docker("port", c, "81")
    assert r.rc == 1 and "Error: No public port '81' published for" in r.stderr, r


def test_publish_all_exposed(net_engine: NetEngine) -> None:
    eng = net_engine
    c = eng.httpd("--expose", "80", "--expose", "7000-7001", "-P", body="random-port")
    lines = _port_lines(eng, c)
    by_port: dict[str, str] = {}
    for line in lines:
        m = re.fullmatch(r"(\d+/tcp) -> (0\.0\.0\.0|\[::\]):(\d+)", line)
        assert m, lines
        by_port.setdefault(m.group(1), m.group(3))
    assert sorted(by_port) == ["7000/tcp", "7001/tcp", "80/tcp"], lines
    host_port = int(by_port["80/tcp"])
    assert 32768 <= host_port <= 60999, host_port  # from the kernel's ephemeral range, as Docker does
    ports = json.loads(eng.inspect(c, "{{json .NetworkSettings.Ports}}"))
    assert {"HostIp": "0.0.0.0", "HostPort": str(host_port)} in ports["80/tcp"], ports
    assert eng.wait_http(f"http://127.0.0.1:{host_port}/file", expect="random-port").strip() == "random-port"
    assert eng.ns.curl(f"http://{eng.ns.address}:{host_port}/file", remote=True).stdout.strip() == "random-port"


def test_published_port_reached_from_remote_host(net_engine: NetEngine) -> None:
    eng = net_engine
    c = eng.httpd("-p", "18081:80", body="from-afar")
    url = f"http://{eng.ns.address}:18081/file"
    assert eng.wait_http(url, remote=True, expect="from-afar").strip() == "from-afar"
    assert eng.ns.curl("http://127.0.0.1:18081/file").stdout.strip() == "from-afar"
    assert "80/tcp -> 0.0.0.0:18081" in _port_lines(eng, c)
    eng.ok("rm", "-f", c)
    r = eng.ns.curl(url, remote=True, timeout=2)
    assert r.rc != 0 and "from-afar" not in r.stdout, r  # unpublished with the container


def test_published_port_on_ipv6_loopback(net_engine: NetEngine) -> None:
    """The kernel cannot DNAT [::1] to a container's IPv4 address: a userland proxy serves it."""
    eng = net_engine
    c = eng.httpd("-p", "18087:80", body="over-v6")
    assert eng.wait_http("http://[::1]:18087/file", expect="over-v6").strip() == "over-v6"
    assert "80/tcp -> [::]:18087" in _port_lines(eng, c)
    local = eng.httpd("-p", "127.0.0.1:18088:80", body="v4-only")
    assert eng.wait_http("http://127.0.0.1:18088/file", expect="v4-only")
    assert eng.ns.curl("http://[::1]:18088/file", timeout=2).rc != 0  # bound to 127.0.0.1 only
    assert _port_lines(eng, local) == ["80/tcp -> 127.0.0.1:18088"]
    eng.ok("rm", "-f", c)
    assert eng.ns.curl("http://[::1]:18087/file", timeout=2).rc != 0


def test_same_port_twice_is_refused(net_engine: NetEngine) -> None:
    eng = net_engine
    eng.httpd("-p", "18082:80")
    second = eng.new_name()
    r = eng.docker("run", "-d", "--name", second, "-p", "18082:80", "busybox", "sleep", "300")
    assert r.rc == 125, r
    assert re.search(r"Bind for 0\.0\.0\.0:18082 failed: port is already allocated", errors(r.stderr)), r
    assert eng.inspect(second, "{{.State.Status}}") == "created"
    r = eng.docker("run", "--rm", "-p", "99999:80", "busybox", "true")
    assert r.rc == 125 and "invalid hostPort: 99999" in r.stderr, r


_SEND_UDP = ("import socket, sys; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
             "s.sendto(b'ping-udp', (sys.argv[1], int(sys.argv[2])))")


def _udp_noports(eng: NetEngine, c: str) -> int:
    """The container's Udp NoPorts counter: datagrams that arrived for a port nobody listens on."""
    lines = [line.split() for line in eng.ok("exec", c, "cat", "/proc/net/snmp").splitlines()
             if line.startswith("Udp:")]
    return int(lines[1][lines[0].index("NoPorts")])


def test_udp_port(net_engine: NetEngine) -> None:
    """Datagrams to a published udp port reach the container (busybox has no UDP server: count arrivals)."""
    eng = net_engine
    c = eng.run_d("-p", "15353:53/udp", "busybox", "sleep", "300")
    assert "53/udp -> 0.0.0.0:15353" in _port_lines(eng, c)
    ports = json.loads(eng.inspect(c, "{{json .NetworkSettings.Ports}}"))
    assert {"HostIp": "0.0.0.0", "HostPort": "15353"} in ports["53/udp"], ports
    before = _udp_noports(eng, c)

    def arrived() -> int | None:
        eng.ns.run_remote(sys.executable, "-c", _SEND_UDP, eng.ns.address, "15353")
        return _udp_noports(eng, c) > before or None
    eng.wait_for("a datagram from the remote host through 15353/udp", arrived)


def test_host_mode_shares_the_engine_host_netns(net_engine: NetEngine) -> None:
    eng = net_engine
    out = eng.ok("run", "--rm", "--network", "host", "busybox", "ip", "-o", "-4", "addr")
    assert f"inet {eng.ns.address}/30" in out, out  # the engine's host netns, not the CI machine's
    c = eng.run_d("--network", "host", "busybox", "sleep", "300")
    assert list(json.loads(eng.inspect(c, "{{json .NetworkSettings.Networks}}"))) == ["host"]
    assert eng.inspect(c, "{{.NetworkSettings.IPAddress}}") == ""


def test_none_mode_has_only_loopback(net_engine: NetEngine) -> None:
    eng = net_engine
    out = eng.ok("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link")
    assert [line.split(":")[1].strip() for line in out.splitlines()] == ["lo"], out
    c = eng.run_d("--network", "none", "busybox", "sleep", "300")
    assert list(json.loads(eng.inspect(c, "{{json .NetworkSettings.Networks}}"))) == ["none"]
    r = eng.docker("run", "--rm", "--network", "none", "-p", "18083:80", "busybox", "true")
    assert r.rc == 0, r  # Docker accepts it (and publishes nothing)


def test_container_mode_joins_the_other_netns(net_engine: NetEngine) -> None:
    eng = net_engine
    srv = eng.httpd(body="shared-netns")
    ip = eng.inspect(srv, "{{.NetworkSettings.IPAddress}}")
    out = eng.ok("run", "--rm", "--network", f"container:{srv}", "busybox", "ip", "-o", "-4", "addr")
    assert re.search(rf"\beth0\s+inet {re.escape(ip)}/", out), out
    body = eng.wait_for("httpd over the shared loopback", lambda: eng.docker(
        "run", "--rm", "--network", f"container:{srv}", "busybox", "wget", "-qO-", "http://127.0.0.1/file").stdout)
    assert body.strip() == "shared-netns"
    r = eng.docker("run", "--rm", "--network", f"container:{srv}", "-p", "18084:80", "busybox", "true")
    assert r.rc == 125 and "conflicting options: port publishing and the container type network mode" in r.stderr, r
    r = eng.docker("run", "--rm", "--network", "container:no-such-container-x", "busybox", "true")
    assert r.rc == 125 and "No such container: no-such-container-x" in r.stderr, r
