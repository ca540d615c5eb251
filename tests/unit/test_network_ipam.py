"""IPAM: default pools, subnet choice around what is taken, address allocation and its errors."""

from __future__ import annotations

import ipaddress

import pytest

from dockyard.errors import Conflict, Forbidden, InvalidArgument, Unavailable
from dockyard.network import ipam
from dockyard.network.store import Network, NetworkStore


def net(text: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(text)


def test_pick_subnet_skips_docker0_and_taken() -> None:
    assert ipam.pick_subnet([]) == net("172.18.0.0/16")
    assert ipam.pick_subnet([net("172.18.5.0/24"), net("172.19.0.0/16")]) == net("172.20.0.0/16")
    everything = [net("172.16.0.0/12")]
    assert ipam.pick_subnet(everything) == net("192.168.0.0/20")


def test_pick_subnet_exhausted() -> None:
    with pytest.raises(Unavailable, match="non-overlapping IPv4 address pool"):
        ipam.pick_subnet([net("0.0.0.0/0")])


def test_pool_defaults_and_validation() -> None:
    p = ipam.Pool.from_config({"Subnet": "10.5.0.0/24"})
    assert str(p.gateway) == "10.5.0.1"
    assert p.to_config() == {"Subnet": "10.5.0.0/24", "Gateway": "10.5.0.1"}
    with pytest.raises(Forbidden, match="no matching subnet for gateway 10.6.0.1"):
        ipam.Pool.from_config({"Subnet": "10.5.0.0/24", "Gateway": "10.6.0.1"})
    with pytest.raises(Forbidden, match="no matching subnet for range"):
        ipam.Pool.from_config({"Subnet": "10.5.0.0/24", "IPRange": "10.6.0.0/25"})
    with pytest.raises(InvalidArgument, match="invalid CIDR address: nonsense"):
        ipam.Pool.from_config({"Subnet": "nonsense"})


def test_overlap() -> None:
    ipam.check_overlap(net("10.1.0.0/24"), [net("10.2.0.0/16")])
    with pytest.raises(Forbidden, match="Pool overlaps with other one on this address space"):
        ipam.check_overlap(net("10.2.3.0/24"), [net("10.2.0.0/16")])


def test_addresses_first_free_skips_reserved_and_reuses() -> None:
    pool = ipam.Pool.from_config({"Subnet": "10.9.0.0/29", "AuxiliaryAddresses": {"r": "10.9.0.2"}})
    book = ipam.Addresses("n1", "abc", [pool])
    got = [str(book.request(f"c{i}")[0]) for i in range(4)]
    assert got == ["10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"]
    with pytest.raises(Unavailable, match=r"no available IPv4 addresses on this network's address pools: n1 \(abc\)"):
        book.request("c9")
    book.release("c1")
    assert str(book.request("c5")[0]) == "10.9.0.4"


def test_addresses_static_and_ip_range() -> None:
    pool = ipam.Pool.from_config({"Subnet": "10.9.0.0/24", "IPRange": "10.9.0.128/25"})
    book = ipam.Addresses("n1", "abc", [pool])
    assert str(book.request("a")[0]) == "10.9.0.129"
    assert str(book.request("b", "10.9.0.7")[0]) == "10.9.0.7"   # static may be outside the range
    with pytest.raises(Conflict, match="Address already in use"):
        book.request("c", "10.9.0.7")
    with pytest.raises(Conflict, match="Address already in use"):
        book.request("c", "10.9.0.1")                          # the gateway
    with pytest.raises(InvalidArgument, match="no configured subnet or ip-range contain the IP address 10.8.0.1"):
        book.request("c", "10.8.0.1")
    book.adopt("d", "10.9.0.130")
    assert str(book.request("e")[0]) == "10.9.0.131"


def test_mac_for() -> None:
    assert ipam.mac_for(ipaddress.IPv4Address("172.17.0.2")) == "02:42:ac:11:00:02"


def test_store_roundtrip_and_find(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = NetworkStore(str(tmp_path))
    a = Network(name="n1", id="aa" + "0" * 62, created="2026-01-01T00:00:00Z",
                ipam_config=[{"Subnet": "10.1.0.0/24", "Gateway": "10.1.0.1"}], bridge_name="br-aa0")
    b = Network(name="n2", id="ab" + "0" * 62, created="2026-01-02T00:00:00Z")
    store.save(a)
    store.save(b)
    again = NetworkStore(str(tmp_path))
    assert again.load_all() == []
    assert again.find("n1").bridge_name == "br-aa0"
    assert again.find("aa").name == "n1"
    with pytest.raises(Exception, match="ambiguous"):
        again.find("a")
    with pytest.raises(Exception, match="network nope not found"):
        again.find("nope")
    doc = again.find("n1").inspect({})
    assert "BridgeName" not in doc and doc["IPAM"]["Config"][0]["Gateway"] == "10.1.0.1"
    again.delete(again.find("n2"))
    assert [n.name for n in NetworkStore(str(tmp_path)).__iter__()] == []  # not loaded yet
