"""Pumping bytes between a hijacked client connection and a shim stream (attach, exec start).

Client -> shim is stdin: watched for the detach key sequence (default ctrl-p,ctrl-q), and the
client's half-close becomes a half-close towards the shim. Shim -> client is output; when the
shim closes (the process exited and its output is drained) the client connection is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from dockyard.engine.server.hijack import Hijacked
from dockyard.errors import InvalidArgument
from dockyard.supervisor.shim.client import ShimStream

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"


def parse_detach_keys(spec: str) -> bytes:
    """"ctrl-p,ctrl-q" -> b"\\x10\\x11"; single characters stand for themselves."""
    out = bytearray()
    for part in (spec or DEFAULT_DETACH_KEYS).split(","):
        part = part.strip()
        if len(part) == 1:
            out.append(ord(part))
        elif part.startswith("ctrl-") and len(part) == 6:
            ch = part[5]
            codes = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}
            if "a" <= ch <= "z":
                out.append(ord(ch) - ord("a") + 1)
            elif ch in codes:
                out.append(codes[ch])
            else:
                raise InvalidArgument(f"Unknown character: '{part}'")
        else:
            raise InvalidArgument(f"Unknown character: '{part}'")
    return bytes(out)


class _DetachWatch:
    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.matched = 0

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to pass on, detached?) — a partial key sequence is held back until it resolves."""
        if not self.keys:
            return data, False
        out = bytearray()
        for b in data:
            if b == self.keys[self.matched]:
                self.matched += 1
                if self.matched == len(self.keys):
                    return bytes(out), True
                continue
            if self.matched:
                out += self.keys[:self.matched]
                self.matched = 0
            out.append(b)
        return bytes(out), False


async def relay(client: Hijacked, stream: ShimStream, *, stdin: bool, detach_keys: bytes,
                before_close: Callable[[], Awaitable[None]] | None = None) -> str:
    """Pump until the output ends or the client detaches; returns "exit", "detach" or "gone".

    ``before_close`` runs after the output ended and before the client's connection is closed
    (exec waits there for the exit code, which clients read as soon as the stream ends)."""
    watch = _DetachWatch(detach_keys if stdin else b"")
    outcome = "exit"

    async def upstream() -> str:
        while True:
            data = await client.read()
            if not data:
                stream.close_stdin()
                return "eof"
            if not stdin:
                continue
            data, detached = watch.feed(data)
            if data:
                await stream.write(data)
            if detached:
                return "detach"

    async def downstream() -> None:
        while data := await stream.read(65536):
            await client.send(data)

    up = asyncio.create_task(upstream())
    down = asyncio.create_task(downstream())
    try:
        done, _ = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        if down in done:
            outcome = "gone" if down.exception() is not None else "exit"
        elif up.exception() is not None:
            outcome = "gone"
        elif up.result() == "detach":
            outcome = "detach"
        else:  # stdin ended: keep pumping output until the process is done
            await down
    except (ConnectionError, asyncio.CancelledError):
        outcome = "gone"
    finally:
        for t in (up, down):
            t.cancel()
            with contextlib.suppress(BaseException):
                await t
        await stream.close()
        if before_close is not None and outcome == "exit":
            with contextlib.suppress(Exception):
                await before_close()
        await client.close()
    return outcome
