"""Streams against both engines: the websocket attach, and clients that go away mid-stream.

`GET /containers/{id}/attach/ws` (binary messages both ways, output not multiplexed), and
`docker events` / `docker logs -f` clients killed mid-stream: the engine's event listener count
(`docker info`'s NEventsListener) goes back to what it was, and the engine keeps answering.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time

import aiohttp
import pytest

pytestmark = [pytest.mark.acceptance, pytest.mark.privileged]


async def _ws_session(socket_path: str, path: str, send: bytes, want: bytes, timeout: float = 15) -> bytes:
    connector = aiohttp.UnixConnector(path=socket_path)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.ws_connect(f"http://docker{path}") as ws:
            await ws.send_bytes(send)
            got = b""
            deadline = time.monotonic() + timeout
            while want not in got and time.monotonic() < deadline:
                try:
                    msg = await ws.receive(timeout=max(0.1, deadline - time.monotonic()))
                except asyncio.TimeoutError:
                    break
                if msg.type == aiohttp.WSMsgType.BINARY:
                    got += msg.data
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    got += msg.data.encode()
                else:
                    break
            return got


def test_attach_websocket(engine):
    name = engine.new_name()
    engine.ok("run", "-d", "-i", "--name", name, "busybox", "sh", "-c", "while read l; do echo got:$l; done")
    cid = engine.inspect(name, "{{.Id}}")
    socket_path = engine.host.removeprefix("unix://")
    got = asyncio.run(_ws_session(socket_path, f"/v1.41/containers/{cid}/attach/ws?stream=1&stdin=1&stdout=1",
                                  b"hello\n", b"got:hello"))
    assert b"got:hello" in got and b"\x01\x00\x00\x00" not in got  # raw output, no multiplexing headers
    engine.ok("rm", "-f", name)


def _listeners(engine) -> int:
    return int(engine.ok("info", "--format", "{{.NEventsListener}}").strip())


def test_clients_that_disconnect_leak_nothing(engine):
    name = engine.new_name()
    engine.ok("run", "-d", "--name", name, "busybox", "sleep", "300")
    before = _listeners(engine)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    streams = [engine.popen("events", **quiet), engine.popen("events", "--filter", "type=container", **quiet),
               engine.popen("logs", "-f", name, **quiet), engine.popen("wait", name, **quiet),
               engine.popen("stats", name, **quiet)]
    engine.wait_for("events listeners", lambda: _listeners(engine) >= before + 2 or None, timeout=10)
    for p in streams:
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)
    engine.wait_for("listeners gone", lambda: _listeners(engine) == before or None, timeout=10)
    assert engine.ok("inspect", "-f", "{{.State.Status}}", name).strip() == "running"
    engine.ok("rm", "-f", name)
