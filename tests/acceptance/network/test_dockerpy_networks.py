"""docker-py 7's network API against each engine (high-level models and the low-level APIClient).

The docker sdist on PyPI ships no tests (no tests/integration/api_network_test.py or
models_networks_test.py), so CI cannot run docker-py's own suite; these cases make the same kind of
calls themselves (and pin what a run of that suite found: IPAM Options null when not given, the
MacAddress of a connect before the first start): networks
create/get/list/prune/remove, connect/disconnect with aliases and static addresses, containers.run
with network= and ports=, and the errors docker-py raises for Docker's status codes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from tests.acceptance.network.conftest import NetEngine

pytestmark = [pytest.mark.acceptance, pytest.mark.privileged]


def _ipam(subnet: str, gateway: str, ip_range: str | None = None, aux: dict[str, str] | None = None) -> Any:
    import docker

    pool = docker.types.IPAMPool(subnet=subnet, gateway=gateway, iprange=ip_range, aux_addresses=aux)
    return docker.types.IPAMConfig(pool_configs=[pool])


def test_models_create_get_list_remove(net_engine: NetEngine) -> None:
    import docker

    eng = net_engine
    client = eng.client()
    name = eng.new_network()
    net = client.networks.create(name, driver="bridge", labels={"acc": eng.label},
                                 ipam=_ipam("10.211.0.0/24", "10.211.0.1", "10.211.0.128/25", {"r": "10.211.0.200"}))
    assert net.name == name and len(net.id) == 64
    got = client.networks.get(name)
    assert got.id == net.id and got.attrs["Driver"] == "bridge" and got.attrs["Labels"] == {"acc": eng.label}
    assert got.attrs["IPAM"]["Config"] == [{"Subnet": "10.211.0.0/24", "IPRange": "10.211.0.128/25",
                                            "Gateway": "10.211.0.1", "AuxiliaryAddresses": {"r": "10.211.0.200"}}]
    assert [n.id for n in client.networks.list(names=[name])] == [net.id]
    assert [n.name for n in client.networks.list(ids=[net.id])] == [name]
    assert [n.name for n in client.networks.list(filters={"label": f"acc={eng.label}"})] == [name]
    assert {"bridge", "host", "none"} <= {n.name for n in client.networks.list()}
    with pytest.raises(docker.errors.APIError) as dup:
        client.networks.create(name, check_duplicate=True)
    assert dup.value.status_code == 409 and f"network with name {name} already exists" in str(dup.value)
    net.remove()
    with pytest.raises(docker.errors.NotFound):
        client.networks.get(name)


def test_models_connect_disconnect_and_greedy_list(net_engine: NetEngine) -> None:
    import docker

    eng = net_engine
    client = eng.client()
    name = eng.new_network()
    net = client.networks.create(name, ipam=_ipam("10.212.0.0/24", "10.212.0.1"))
    c = client.containers.run("busybox", ["sleep", "300"], name=eng.new_name(), detach=True)
    net.connect(c, aliases=["pyalias"], ipv4_address="10.212.0.50")
    net.reload()
    assert [x.id for x in net.containers] == [c.id]
    c.reload()
    ep = c.attrs["NetworkSettings"]["Networks"][name]
    assert ep["IPAddress"] == "10.212.0.50" and "pyalias" in ep["Aliases"], ep
    assert ep["IPAMConfig"]["IPv4Address"] == "10.212.0.50"
    assert "inet 10.212.0.50/24" in c.exec_run(["ip", "-4", "-o", "addr", "show", "eth1"]).output.decode()
    [listed] = client.networks.list(names=[name], greedy=True)
    assert [x.id for x in listed.containers] == [c.id]
    with pytest.raises(docker.errors.APIError) as again:
        net.connect(c)
    assert again.value.status_code == 403, again.value
    assert f"endpoint with name {c.name} already exists in network {name}" in str(again.value)
    net.disconnect(c)
    net.reload()
    assert net.containers == []
    with pytest.raises(docker.errors.APIError) as not_connected:
        net.disconnect(c)
    assert not_connected.value.status_code == 500, not_connected.value  # dockerd 20.10 says 500 here
    assert f"container {c.id} is not connected to network {name}" in str(not_connected.value)
    with pytest.raises(docker.errors.NotFound):
        client.networks.get(f"nosuch-{eng.label}")


def test_containers_run_with_network_and_ports(net_engine: NetEngine) -> None:
    eng = net_engine
    client = eng.client()
    name = eng.new_network()
    client.networks.create(name)
    script = "mkdir -p /www && echo from-dockerpy > /www/file && exec httpd -f -p 80 -h /www"
    c = client.containers.run("busybox", ["sh", "-c", script], name=eng.new_name(), detach=True, network=name,
                              ports={"80/tcp": ("127.0.0.1", 18100)})
    c.reload()
    assert list(c.attrs["NetworkSettings"]["Networks"]) == [name]
    assert c.ports == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18100"}]}, c.ports
    assert eng.wait_http("http://127.0.0.1:18100/file", expect="from-dockerpy").strip() == "from-dockerpy"
    out = _within(60, "containers.run(network=, remove=True) (it follows the logs until the container ends)",
                  lambda: client.containers.run("busybox", ["wget", "-qO-", f"http://{c.name}/file"], network=name,
                                                remove=True))
    assert out.strip() == b"from-dockerpy"


def _within(seconds: float, what: str, fn: Callable[[], Any]) -> Any:
    """fn() on a helper thread; fail (instead of hanging the session) if it has not returned in time.

    A stuck call's thread stays blocked until the daemon closes its connection at the end of the session.
    """
    box: dict[str, Any] = {}

    def body() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # handed to the test
            box["error"] = e

    t = threading.Thread(target=body, name="dockerpy-call", daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        pytest.fail(f"docker-py {what}: no answer in {seconds}s", pytrace=False)
    if "error" in box:
        raise box["error"]
    return box["value"]


def test_low_level_api_and_prune(net_engine: NetEngine) -> None:
    import docker

    eng = net_engine
    api = eng.client().api
    used, unused = eng.new_network(), eng.new_network()
    made = api.create_network(used, driver="bridge", internal=True, labels={"acc": eng.label},
                              ipam=_ipam("10.213.0.0/24", "10.213.0.1"))
    assert set(made) >= {"Id", "Warning"} and len(made["Id"]) == 64, made
    api.create_network(unused, labels={"acc": eng.label})
    info = api.inspect_network(made["Id"])
    assert info["Name"] == used and info["Internal"] is True
    with pytest.raises(docker.errors.APIError) as overlap:
        api.create_network(f"{used}-x", ipam=_ipam("10.213.0.0/25", "10.213.0.1"))
    assert "Pool overlaps with other one on this address space" in str(overlap.value)
    assert overlap.value.status_code == 403, overlap.value

    config = api.create_networking_config({used: api.create_endpoint_config(ipv4_address="10.213.0.9",
                                                                            aliases=["lowlevel"])})
    cname = eng.new_name()
    cont = api.create_container("busybox", ["sleep", "300"], name=cname, networking_config=config,
                                host_config=api.create_host_config(network_mode=used))
    api.start(cont["Id"])
    ep = api.inspect_container(cont["Id"])["NetworkSettings"]["Networks"][used]
    assert ep["IPAddress"] == "10.213.0.9" and "lowlevel" in ep["Aliases"], ep
    with pytest.raises(docker.errors.APIError) as busy:
        api.remove_network(used)
    assert busy.value.status_code == 403 and "has active endpoints" in str(busy.value)
    api.disconnect_container_from_network(cont["Id"], used, force=True)
    assert used not in api.inspect_container(cont["Id"])["NetworkSettings"]["Networks"]

    api.remove_container(cont["Id"], force=True)
    pruned = api.prune_networks(filters={"label": f"acc={eng.label}"})
    assert sorted(pruned["NetworksDeleted"]) == sorted([used, unused]), pruned
    with pytest.raises(docker.errors.NotFound):
        api.inspect_network(made["Id"])


def test_ipam_options_null_and_mac_before_start(net_engine: NetEngine) -> None:
    eng = net_engine
    api = eng.client().api
    name = eng.new_network()
    api.create_network(name, ipam=_ipam("10.216.0.0/24", "10.216.0.1"))
    assert api.inspect_network(name)["IPAM"]["Options"] is None
    cont = api.create_container("busybox", "true", name=eng.new_name())
    api.connect_container_to_network(cont["Id"], name, mac_address="02:42:0a:d8:00:09")
    ep = api.inspect_container(cont["Id"])["NetworkSettings"]["Networks"][name]
    assert ep["MacAddress"] == "02:42:0a:d8:00:09", ep
