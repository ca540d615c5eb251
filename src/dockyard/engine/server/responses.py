"""Response helpers: JSON bodies, 204s and Docker's JSON message (progress) streams."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable
from typing import Any, TypeVar

from aiohttp import web

JSON = "application/json"
T = TypeVar("T")


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def json_response(obj: Any, status: int = 200) -> web.Response:
    # Exactly "application/json" (no charset): the docker CLI compares the header verbatim.
    return web.Response(status=status, body=(dumps(obj) + "\n").encode(), headers={"Content-Type": JSON})


def no_content(status: int = 204) -> web.Response:
    return web.Response(status=status)


class JSONStream:
    """A 200 response carrying JSON messages separated by CRLF; errors go in band once it started."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.response = web.StreamResponse(status=200, headers={"Content-Type": JSON})
        self.started = False

    async def start(self) -> None:
        if not self.started:
            self.started = True
            await self.response.prepare(self.request)

    async def send(self, message: dict[str, Any]) -> None:
        await self.start()
        await self.response.write(dumps(message).encode() + b"\r\n")

    async def error(self, message: str) -> None:
        await self.send({"errorDetail": {"message": message}, "error": message})

    async def finish(self) -> web.StreamResponse:
        await self.start()
        await self.response.write_eof()
        return self.response


async def while_connected(request: web.Request, work: Awaitable[T], poll: float = 0.5) -> T | None:
    """Run ``work`` until it ends or the client disconnects (then cancel it and return None).

    Long-lived streams (logs -f, events, stats, wait) must not outlive their client.
    """
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=poll)
            if done:
                return task.result()
            transport = request.transport
            if transport is None or transport.is_closing():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                return None
    finally:
        if not task.done():
            task.cancel()
