"""Port publishing: parsing the engine's port fields, allocating and holding host ports."""

from __future__ import annotations

import socket

import pytest

from dockyard.errors import Conflict, DockyardError, InvalidArgument
from dockyard.network import portmap as pm


def free_port(proto: str = "tcp") -> int:
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_block(n: int) -> int:
    """The first of n consecutive ports free right now (on 0.0.0.0, tcp)."""
    for base in range(40000, 60000, 37):
        try:
            socks = [pm._hold("tcp", "", p) for p in range(base, base + n)]
        except OSError:
            continue
        for s in socks:
            s.close()
        return base
    raise RuntimeError("no free block")


def can_bind(port: int, ip: str = "0.0.0.0", reuse: bool = True) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, int(reuse))
        try:
            s.bind((ip, port))
        except OSError:
            return False
        return True


@pytest.fixture
def alloc():
    a = pm.PortAllocator()
    yield a
    for owner in ("c1", "c2"):
        a.release(owner)


# --- parsing -------------------------------------------------------------------------------------

def test_requested_bindings_and_publish_all() -> None:
    exposed: dict = {"80/tcp": {}, "443/tcp": {}, "53/udp": {}}
    bindings = {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "127.0.0.1", "HostPort": "8081"}],
        "9000": [{"HostIp": "0.0.0.0", "HostPort": "9000-9010"}],
        "53/udp": [{"HostIp": "::", "HostPort": "53"}],  # IPv6: skipped
    }
    assert pm.requested(exposed, bindings, False) == [
        (80, "tcp", "", "8080"),
        (80, "tcp", "127.0.0.1", "8081"),
        (9000, "tcp", "", "9000-9010"),
    ]
    assert pm.requested(exposed, bindings, True) == [
        (80, "tcp", "", "8080"),
        (80, "tcp", "127.0.0.1", "8081"),
        (443, "tcp", "", ""),
        (9000, "tcp", "", "9000-9010"),
    ]
    assert pm.requested({"8000/tcp": {}}, None, True) == [(8000, "tcp", "", "")]
    assert pm.requested(None, None, True) == []
    # -p 80 with no host port: random host port even without -P
    assert pm.requested(None, {"80/tcp": [{"HostIp": "", "HostPort": ""}]}, False) == [(80, "tcp", "", "")]
    # an empty binding list is exposed only
    assert pm.requested(None, {"80/tcp": []}, False) == []
    assert pm.requested(None, {"80/tcp": None}, True) == [(80, "tcp", "", "")]


@pytest.mark.parametrize("bindings, message", [
    ({"abc/tcp": []}, 'invalid port specification: "abc"'),
    ({"70000/tcp": []}, 'invalid port specification: "70000"'),
    ({"80/tcp": [{"HostPort": "x"}]}, 'invalid port specification: "x"'),
    ({"80/tcp": [{"HostPort": "90-80"}]}, 'invalid port specification: "90-80"'),
    ({"80/icmp": []}, "invalid proto: icmp"),
    ({"80/tcp": [{"HostIp": "1.2.3", "HostPort": "1"}]}, "invalid IP address: 1.2.3"),
])
def test_requested_refuses_bad_input(bindings, message) -> None:
    with pytest.raises(InvalidArgument) as e:
        pm.requested(None, bindings, False)
    assert str(e.value) == message


def test_ports_doc_shape() -> None:
    exposed: dict = {"80/tcp": {}, "443/tcp": {}, "53": {}}
    binds = [pm.Binding(80, "tcp", "", 8080), pm.Binding(80, "tcp", "127.0.0.1", 8081),
             pm.Binding(9000, "udp", "", 9000)]
    assert pm.ports_doc(exposed, binds) == {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "127.0.0.1", "HostPort": "8081"}],
        "443/tcp": None,
        "53/tcp": None,
        "9000/udp": [{"HostIp": "0.0.0.0", "HostPort": "9000"}],
    }
    assert pm.ports_doc(None, []) == {}


def test_local_port_range(tmp_path) -> None:
    f = tmp_path / "range"
    f.write_text("10000\t20000\n")
    assert pm.local_port_range(str(f)) == (10000, 20000)
    assert pm.local_port_range(str(tmp_path / "missing")) == (32768, 60999)
    f.write_text("garbage")
    assert pm.local_port_range(str(f)) == (32768, 60999)


# --- allocation ----------------------------------------------------------------------------------

def test_fixed_port_is_held_and_released(alloc) -> None:
    port = free_port()
    b = alloc.allocate("c1", 80, "tcp", "", str(port))
    assert b == pm.Binding(80, "tcp", "", port)
    # held: a host program cannot bind it, even with SO_REUSEADDR
    assert not can_bind(port)
    alloc.release("c1")
    assert can_bind(port)
    alloc.release("c1")  # twice is fine


def test_already_allocated_is_a_conflict_with_dockers_text(alloc) -> None:
    port = free_port()
    alloc.allocate("c1", 80, "tcp", "", str(port))
    with pytest.raises(Conflict) as e:
        alloc.allocate("c2", 80, "tcp", "0.0.0.0", str(port))
    assert str(e.value) == f"Bind for 0.0.0.0:{port} failed: port is already allocated"
    # the same port for udp is another port
    if can_bind_udp(port):
        assert alloc.allocate("c2", 53, "udp", "", str(port)).host_port == port


def can_bind_udp(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
        return True


def test_conflict_text_shows_the_host_ip(alloc) -> None:
    port = free_port()
    alloc.allocate("c1", 80, "tcp", "127.0.0.1", str(port))
    with pytest.raises(Conflict, match=rf"^Bind for 127\.0\.0\.1:{port} failed: port is already allocated$"):
        alloc.allocate("c2", 80, "tcp", "127.0.0.1", str(port))


def test_port_used_by_a_host_program(alloc) -> None:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(DockyardError) as e:
            alloc.allocate("c1", 80, "tcp", "", str(port))
    assert not isinstance(e.value, (Conflict, InvalidArgument))
    assert str(e.value) == (f"Error starting userland proxy: listen tcp4 0.0.0.0:{port}: "
                            "bind: address already in use")
    wrapped = pm.endpoint_error(e.value, "web", "abc123")
    assert str(wrapped).startswith("driver failed programming external connectivity on endpoint web (abc123): "
                                   "Error starting userland proxy: listen tcp4")


def test_host_ip_not_on_this_host(alloc) -> None:
    with pytest.raises(DockyardError, match="listen udp4 203.0.113.7:5000: bind: cannot assign requested address"):
        alloc.allocate("c1", 53, "udp", "203.0.113.7", "5000")


def test_range_takes_the_first_free_port(alloc) -> None:
    base = free_block(4)
    first = alloc.allocate("c1", 80, "tcp", "", f"{base}-{base + 3}")
    assert first.host_port == base
    with socket.socket() as busy:  # a host program on the next one: skipped
        busy.bind(("0.0.0.0", base + 1))
        second = alloc.allocate("c2", 80, "tcp", "", f"{base}-{base + 3}")
    assert second.host_port == base + 2
    alloc.allocate("c2", 81, "tcp", "", f"{base}-{base + 3}")
    with pytest.raises(Conflict, match="^all ports are allocated$"):
        alloc.allocate("c2", 82, "tcp", "", f"{base}-{base + 2}")


def test_random_ports_come_from_the_range_in_turn() -> None:
    base = free_block(3)
    alloc = pm.PortAllocator(random_range=(base, base + 2))
    try:
        ports = [alloc.allocate("c1", 80 + i, "tcp", "", "").host_port for i in range(3)]
        assert ports == [base, base + 1, base + 2]
        with pytest.raises(Conflict, match="^all ports are allocated$"):
            alloc.allocate("c1", 90, "tcp", "", "0")
        alloc.release("c1")
        # after the last one handed out, the search wraps around
        assert alloc.allocate("c2", 80, "tcp", "", "").host_port == base
    finally:
        alloc.release("c1")
        alloc.release("c2")


def test_random_port_default_range(alloc) -> None:
    lo, hi = pm.local_port_range()
    port = alloc.allocate("c1", 80, "tcp", "", "").host_port
    assert lo <= port <= hi and not can_bind(port)


def test_all_or_nothing_through_release(alloc) -> None:
    port = free_port()
    taken = alloc.allocate("c2", 80, "tcp", "", str(port))
    ok = alloc.allocate("c1", 80, "tcp", "", "")
    with pytest.raises(Conflict):
        alloc.allocate("c1", 81, "tcp", "", str(taken.host_port))
    alloc.release("c1")
    assert can_bind(ok.host_port)
    assert not can_bind(port)  # the other owner's port stays held


def test_adopt_after_restart(alloc) -> None:
    port = free_port()
    alloc.adopt("c1", pm.Binding(80, "tcp", "", port))
    alloc.adopt("c1", pm.Binding(80, "tcp", "", port))  # idempotent
    assert not can_bind(port)
    with pytest.raises(Conflict):
        alloc.allocate("c2", 80, "tcp", "", str(port))
    with pytest.raises(Conflict):
        alloc.adopt("c2", pm.Binding(80, "tcp", "", port))
    alloc.release("c1")
    assert can_bind(port)


def test_adopt_keeps_a_port_a_host_program_took_meanwhile(alloc) -> None:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        port = s.getsockname()[1]
        alloc.adopt("c1", pm.Binding(80, "tcp", "", port))
        with pytest.raises(Conflict):
            alloc.allocate("c2", 80, "tcp", "", str(port))
    alloc.release("c1")
