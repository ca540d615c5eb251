"""The embedded DNS server, served in this namespace on 127.0.0.1 (the add(netns_path="") seam).

Queries are made with dnspython; forwarding goes to a fake upstream (UDP and TCP, also on
127.0.0.1) that answers every A query with 192.0.2.x records and can be told to truncate.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from dockyard.network import dns_upstream
from dockyard.network.dns import EmbeddedDNS

SB = "c0ffee" * 10 + "abcd"


class FakeResolver:
    def __init__(self, upstreams: list[str] | None = None) -> None:
        self.names = {"web": ["10.1.0.2"], "db.net1": ["10.1.0.3"], "many": ["10.1.0.4", "10.1.0.5"]}
        self.ptrs = {"10.1.0.2": "web.net1"}
        self.ups = upstreams or []
        self.asked: list[str] = []

    def lookup(self, sandbox: str, name: str) -> list[str] | None:
        assert sandbox == SB
        self.asked.append(name)
        return self.names.get(name)

    def reverse(self, sandbox: str, ip: str) -> str | None:
        return self.ptrs.get(ip)

    def upstreams(self, sandbox: str) -> list[str]:
        return self.ups


class Upstream:
    """A fake upstream: answers A queries with `count` records, truncating over UDP when big."""

    def __init__(self, count: int = 1, silent: bool = False) -> None:
        self.count = count
        self.silent = silent
        self.udp_queries = 0
        self.tcp_queries = 0
        self.ids: list[int] = []

    def reply(self, wire: bytes, tcp: bool) -> bytes:
        q = dns.message.from_wire(wire)
        self.ids.append(q.id)
        r = dns.message.make_response(q)
        rr = dns.rrset.from_text_list(q.question[0].name, 30, "IN", "A",
                                      [f"192.0.2.{i % 250 + 1}" for i in range(self.count)])
        r.answer.append(rr)
        limit = 65535 if tcp else (q.payload if q.edns >= 0 else 512)
        return r.to_wire(max_size=limit, prefer_truncation=True)

    async def start(self) -> str:
        loop = asyncio.get_running_loop()
        up = self

        class P(asyncio.DatagramProtocol):
            def connection_made(self, transport):  # type: ignore[no-untyped-def]
                self.t = transport

            def datagram_received(self, data, addr):  # type: ignore[no-untyped-def]
                up.udp_queries += 1
                if not up.silent:
                    self.t.sendto(up.reply(data, False), addr)

        self.udp, _ = await loop.create_datagram_endpoint(P, local_addr=("127.0.0.1", 0))
        port = self.udp.get_extra_info("sockname")[1]

        async def serve(reader, writer):  # type: ignore[no-untyped-def]
            size = int.from_bytes(await reader.readexactly(2), "big")
            data = await reader.readexactly(size)
            up.tcp_queries += 1
            out = up.reply(data, True)
            writer.write(len(out).to_bytes(2, "big") + out)
            await writer.drain()
            writer.close()

        self.tcp = await asyncio.start_server(serve, "127.0.0.1", port)
        return f"127.0.0.1:{port}"

    def stop(self) -> None:
        self.udp.close()
        self.tcp.close()


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, 30))


async def serving(resolver: FakeResolver) -> tuple[EmbeddedDNS, str, int]:
    server = EmbeddedDNS(resolver)
    await server.add(SB, "", "127.0.0.1", 0)
    where = server.bound(SB)
    assert where is not None
    return server, where[0], where[1]


def dead_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_record_for_a_container_name_over_udp_and_tcp():
    async def body() -> None:
        resolver = FakeResolver()
        server, host, port = await serving(resolver)
        try:
            q = dns.message.make_query("WeB", "A")
            r = await dns.asyncquery.udp(q, host, port=port, timeout=2)
            assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.RA
            assert [(rr.name.to_text(), rr.ttl, [x.address for x in rr]) for rr in r.answer] == \
                [("WeB.", 600, ["10.1.0.2"])]
            assert resolver.asked == ["web"]
            r = await dns.asyncquery.tcp(dns.message.make_query("many", "A"), host, port=port, timeout=2)
            assert sorted(x.address for x in r.answer[0]) == ["10.1.0.4", "10.1.0.5"]
            r = await dns.asyncquery.udp(dns.message.make_query("db.net1.", "A"), host, port=port, timeout=2)
            assert r.answer[0][0].address == "10.1.0.3"
        finally:
            await server.close()
    run(body())


def test_aaaa_of_a_known_name_is_noerror_without_records_and_ptr_answers():
    async def body() -> None:
        server, host, port = await serving(FakeResolver())
        try:
            r = await dns.asyncquery.udp(dns.message.make_query("web", "AAAA"), host, port=port, timeout=2)
            assert r.rcode() == dns.rcode.NOERROR and r.answer == []
            q = dns.message.make_query("2.0.1.10.in-addr.arpa", "PTR")
            r = await dns.asyncquery.udp(q, host, port=port, timeout=2)
            assert r.answer[0].ttl == 600 and r.answer[0][0].target.to_text() == "web.net1."
        finally:
            await server.close()
    run(body())


def test_unknown_names_are_forwarded_and_the_reply_keeps_the_client_id():
    async def body() -> None:
        up = Upstream(count=2)
        addr = await up.start()
        server, host, port = await serving(FakeResolver([addr]))
        try:
            q = dns.message.make_query("example.org", "A")
            r = await dns.asyncquery.udp(q, host, port=port, timeout=3)  # dnspython checks the id
            assert r.id == q.id and sorted(x.address for x in r.answer[0]) == ["192.0.2.1", "192.0.2.2"]
            assert up.ids[-1] != q.id or up.udp_queries == 1  # upstream saw a fresh id (almost surely)
            r = await dns.asyncquery.tcp(dns.message.make_query("x.org", "MX"), host, port=port, timeout=3)
            assert r.rcode() == dns.rcode.NOERROR and up.tcp_queries == 0
            # a known name is answered here, an unknown PTR goes upstream
            q = dns.message.make_query("9.9.9.10.in-addr.arpa", "PTR")
            await dns.asyncquery.udp(q, host, port=port, timeout=3)
            assert up.udp_queries == 3
        finally:
            await server.close()
            up.stop()
    run(body())


def test_truncated_upstream_replies_are_retried_over_tcp():
    async def body() -> None:
        up = Upstream(count=60)  # ~1 KB of answers: truncated at 512
        addr = await up.start()
        server, host, port = await serving(FakeResolver([addr]))
        try:
            r = await dns.asyncquery.tcp(dns.message.make_query("big.org", "A"), host, port=port, timeout=3)
            assert len(r.answer[0]) == 60 and up.tcp_queries == 1
            q = dns.message.make_query("big.org", "A", use_edns=0, payload=4096)
            r = await dns.asyncquery.udp(q, host, port=port, timeout=3)
            assert len(r.answer[0]) == 60 and not r.flags & dns.flags.TC
            q = dns.message.make_query("big.org", "A")  # plain 512-byte client: stays truncated
            r = await dns.asyncquery.udp(q, host, port=port, timeout=3, raise_on_truncation=False)
            assert r.flags & dns.flags.TC
        finally:
            await server.close()
            up.stop()
    run(body())


def test_no_upstream_or_dead_upstreams_answer_servfail(monkeypatch):
    monkeypatch.setattr(dns_upstream, "TIMEOUT", 0.3)

    async def body() -> None:
        resolver = FakeResolver([])
        server, host, port = await serving(resolver)
        silent = Upstream(silent=True)
        silent_addr = await silent.start()
        try:
            r = await dns.asyncquery.udp(dns.message.make_query("a.org", "A"), host, port=port, timeout=2)
            assert r.rcode() == dns.rcode.SERVFAIL
            resolver.ups = [f"127.0.0.1:{dead_port()}", silent_addr]
            t = time.monotonic()
            r = await dns.asyncquery.udp(dns.message.make_query("a.org", "A"), host, port=port, timeout=3)
            assert r.rcode() == dns.rcode.SERVFAIL and time.monotonic() - t < 1.5
            assert silent.udp_queries == 1
        finally:
            await server.close()
            silent.stop()
    run(body())


def test_first_dead_upstream_is_skipped_and_bad_entries_ignored():
    async def body() -> None:
        up = Upstream()
        addr = await up.start()
        server, host, port = await serving(FakeResolver(["not-an-ip", f"127.0.0.1:{dead_port()}", addr]))
        try:
            r = await dns.asyncquery.udp(dns.message.make_query("a.org", "A"), host, port=port, timeout=3)
            assert r.answer[0][0].address == "192.0.2.1"
        finally:
            await server.close()
            up.stop()
    run(body())


def test_garbage_is_dropped_and_serving_goes_on():
    async def body() -> None:
        server, host, port = await serving(FakeResolver())
        try:
            loop = asyncio.get_running_loop()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.setblocking(False)
                s.connect((host, port))
                for junk in (b"", b"\x00", os.urandom(11), os.urandom(300), b"\xff" * 12):
                    await loop.sock_sendall(s, junk)
                reply = dns.message.make_response(dns.message.make_query("web", "A")).to_wire()
                await loop.sock_sendall(s, reply)  # a response sent to us: dropped too
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"\x00\x05hello")
            await writer.drain()
            assert await reader.read() == b""  # the server hangs up on garbage
            writer.close()
            r = await dns.asyncquery.udp(dns.message.make_query("web", "A"), host, port=port, timeout=2)
            assert r.answer[0][0].address == "10.1.0.2"
        finally:
            await server.close()
    run(body())


def test_tcp_connection_carries_several_queries():
    async def body() -> None:
        server, host, port = await serving(FakeResolver())
        try:
            reader, writer = await asyncio.open_connection(host, port)
            for name in ("web", "many"):
                wire = dns.message.make_query(name, "A").to_wire()
                writer.write(len(wire).to_bytes(2, "big") + wire)
                size = int.from_bytes(await reader.readexactly(2), "big")
                r = dns.message.from_wire(await reader.readexactly(size))
                assert r.answer and r.answer[0].name.to_text() == name + "."
            writer.close()
        finally:
            await server.close()
    run(body())


def test_add_is_idempotent_and_remove_frees_the_port():
    async def body() -> None:
        server, host, port = await serving(FakeResolver())
        await server.add(SB, "", "127.0.0.1", 0)  # same arguments: nothing changes
        assert server.bound(SB) == (host, port) and server.sandboxes() == [SB]
        await server.remove(SB)
        await server.remove(SB)
        assert server.sandboxes() == [] and server.bound(SB) is None
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            u.bind((host, port))
            t.bind((host, port))
        await server.add(SB, "", "127.0.0.1", port)
        assert server.bound(SB) == (host, port)
        await server.close()
        assert server.sandboxes() == []
    run(body())


@pytest.mark.parametrize("text,addr", [
    ("8.8.8.8", ("8.8.8.8", 53)), ("10.0.0.1:5353", ("10.0.0.1", 5353)),
    ("::1", ("::1", 53)), ("[fe80::1]:54", ("fe80::1", 54)), ("[::1]", ("::1", 53)),
])
def test_upstream_addresses(text, addr):
    assert dns_upstream.parse_address(text) == addr


@pytest.mark.parametrize("text", ["", "x.y", "1.2.3.4:0", "1.2.3.4:99999", "[::1]x"])
def test_bad_upstream_addresses(text):
    with pytest.raises(ValueError):
        dns_upstream.parse_address(text)
