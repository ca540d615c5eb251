"""The engine's HTTP layer without a daemon: version prefix, error mapping, headers, hijack, relay."""

from __future__ import annotations

import asyncio
import socket
import tempfile
import os

import pytest
from aiohttp import web

from dockyard.engine.server.app import create_app
from dockyard.engine.server.hijack import Hijacked
from dockyard.engine.server.relay import _DetachWatch, parse_detach_keys
from dockyard.engine.server.responses import json_response, while_connected
from dockyard.engine.server.router import Router
from dockyard.errors import Conflict, InvalidArgument, NotFound, NotModified


def _app() -> web.Application:
    router = Router()

    async def ok(request: web.Request) -> web.StreamResponse:
        return json_response({"version": request.match_info.get("api_version", "")})

    async def fail(request: web.Request) -> web.StreamResponse:
        kind = request.query["kind"]
        raise {"404": NotFound("No such container: x"), "409": Conflict("in use"),
               "400": InvalidArgument("bad"), "304": NotModified("already started")}.get(kind, RuntimeError("boom"))

    async def echo(request: web.Request) -> web.StreamResponse:
        client = Hijacked(request)
        await client.start()
        await client.send(b"hello\n")
        while data := await client.read():
            await client.send(data.upper())
        await client.send(b"after-eof\n")  # output still flows after the client's half-close
        await client.close()
        return client

    router.add("GET", "/ok", ok)
    router.add("GET", "/fail", fail)
    router.add("POST", "/echo", echo)
    return create_app(None, [router])  # type: ignore[arg-type]


async def _serve(sock_path: str) -> web.AppRunner:
    runner = web.AppRunner(_app())
    await runner.setup()
    await web.UnixSite(runner, sock_path).start()
    return runner


def _request(sock_path: str, raw: bytes, half_close_after: bytes | None = None) -> bytes:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(sock_path)
        s.sendall(raw)
        out = b""
        if half_close_after is not None:  # like the docker CLI: stdin only after the upgrade answer
            while b"\r\n\r\n" not in out:
                out += s.recv(65536)
            s.sendall(half_close_after)
            s.shutdown(socket.SHUT_WR)
        while chunk := s.recv(65536):
            out += chunk
        return out


@pytest.fixture
def server():
    loop = asyncio.new_event_loop()
    d = tempfile.mkdtemp()
    path = os.path.join(d, "api.sock")
    runner = loop.run_until_complete(_serve(path))

    def call(raw: bytes, half_close_after: bytes | None = None) -> bytes:
        return loop.run_until_complete(loop.run_in_executor(None, _request, path, raw, half_close_after))

    yield call
    loop.run_until_complete(runner.cleanup())
    loop.close()


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n".encode()


def test_routes_with_and_without_version_prefix(server):
    assert b'{"version":"1.41"}' in server(_get("/v1.41/ok"))
    assert b'{"version":""}' in server(_get("/ok"))


def test_versions_out_of_range_are_400_with_dockerds_messages(server):
    old = server(_get("/v1.12/ok"))
    assert old.startswith(b"HTTP/1.1 400") and b"client version 1.12 is too old" in old
    new = server(_get("/v1.99/ok"))
    assert new.startswith(b"HTTP/1.1 400") and b"is too new. Maximum supported API version is" in new


def test_errors_map_to_status_codes_and_json_messages(server):
    for kind, status in (("404", b"404"), ("409", b"409"), ("400", b"400"), ("boom", b"500")):
        out = server(_get(f"/v1.41/fail?kind={kind}"))
        assert out.startswith(b"HTTP/1.1 " + status), out
        assert b"Content-Type: application/json\r\n" in out  # exactly: the docker CLI compares it
    assert server(_get("/fail?kind=304")).startswith(b"HTTP/1.1 304")
    assert b'{"message":"No such container: x"}' in server(_get("/fail?kind=404"))
    assert b'{"message":"page not found"}' in server(_get("/v1.41/nowhere"))


def test_every_response_carries_dockers_headers(server):
    out = server(_get("/ok"))
    assert b"Api-Version: 1.41" in out and b"Ostype: linux" in out and b"Server: Docker/" in out


def test_hijack_upgrades_and_survives_half_close(server):
    out = server(b"POST /echo HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
                 half_close_after=b"abc\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 UPGRADED")
    assert b"Content-Type: application/vnd.docker.raw-stream" in head
    assert b"Transfer-Encoding" not in head
    assert body == b"hello\nABC\nafter-eof\n"


def test_detach_keys():
    assert parse_detach_keys("") == b"\x10\x11"
    assert parse_detach_keys("ctrl-a,x") == b"\x01x"
    with pytest.raises(InvalidArgument):
        parse_detach_keys("ctrl-1")
    w = _DetachWatch(b"\x10\x11")
    assert w.feed(b"ab\x10") == (b"ab", False)  # a possible start of the sequence is held back
    assert w.feed(b"c") == (b"\x10c", False)   # ...and released when it was not
    assert w.feed(b"x\x10\x11y") == (b"x", True)


def test_while_connected_cancels_work_when_the_client_is_gone():
    class FakeRequest:
        transport = None  # a closed connection

    async def forever() -> int:
        await asyncio.sleep(3600)
        return 1

    async def quick() -> int:
        return 7

    async def main() -> tuple[object, object]:
        gone = await while_connected(FakeRequest(), forever(), poll=0.01)  # type: ignore[arg-type]
        done = await while_connected(FakeRequest(), quick(), poll=0.01)  # type: ignore[arg-type]
        return gone, done

    gone, done = asyncio.run(main())
    assert gone is None and done == 7
