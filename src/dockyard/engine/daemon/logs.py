"""Reading a container's json-file log for ``GET /containers/{id}/logs``.

The file holds one JSON object per line, ``{"log": "...", "stream":
"stdout"|"stderr", "time": "<RFC3339Nano>"}``. Rotation renames ``<path>``
to ``<path>.1`` (``.1`` to ``.2`` ...; ``.N`` is the oldest, maybe gzipped
as ``.N.gz``) and starts a fresh ``<path>``.

Docker's semantics, kept here: ``tail`` counts entries of both streams
before any filtering; ``since`` skips older entries, ``until`` ends the read
at the first newer one; stream selection comes last. A line without its
``"\\n"`` yet is being written: it is never yielded until complete.
Following polls the file (cheap, no inotify) and notices rotation by the
inode of ``<path>`` changing.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import time
from collections.abc import AsyncIterator
from typing import IO

from ...errors import InvalidArgument
from ...supervisor.shim.protocol import format_time, frame
from .timefmt import parse_rfc3339

__all__ = ["read_logs", "frame", "format_time", "parse_time", "log_files"]

POLL_INTERVAL = 0.05
_CHUNK = 64 * 1024
_STREAMS = {"stdout": 1, "stderr": 2}


def parse_time(text: str) -> int:
    """Nanoseconds since the epoch of an RFC3339(Nano) time; ValueError if malformed."""
    try:
        return parse_rfc3339(text)
    except InvalidArgument as e:
        raise ValueError(str(e)) from None


def log_files(path: str) -> list[str]:
    """The log's files, oldest first: ``path.N[.gz]`` ... ``path.1``, then ``path`` itself."""
    rotated: list[str] = []
    n = 1
    while True:
        for candidate in (f"{path}.{n}", f"{path}.{n}.gz"):
            if os.path.exists(candidate):
                rotated.append(candidate)
                break
        else:
            break
        n += 1
    return list(reversed(rotated)) + [path]


def _read_all(name: str) -> bytes:
    """A whole (rotated) file's bytes, gunzipped when needed; b'' if it vanished."""
    try:
        if name.endswith(".gz"):
            with gzip.open(name, "rb") as gz:
                return gz.read()
        with open(name, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return b""


def _complete_lines(data: bytes) -> list[bytes]:
    """The newline-terminated lines of ``data`` (a trailing partial line is dropped)."""
    end = data.rfind(b"\n")
    if end < 0:
        return []
    return data[: end + 1].splitlines()


def _tail_offset(f: IO[bytes], n: int) -> tuple[int, int]:
    """(offset where the last ``n`` complete lines start, lines found) in an open file.

    Reads backwards in chunks so a large live file is not read whole.
    """
    size = f.seek(0, os.SEEK_END)
    pos = size
    end: int | None = None  # offset just past the last "\n"
    count = 0
    while pos > 0:
        step = min(_CHUNK, pos)
        pos -= step
        f.seek(pos)
        chunk = f.read(step)
        i = len(chunk)
        while True:
            i = chunk.rfind(b"\n", 0, i)
            if i < 0:
                break
            if end is None:
                end = pos + i + 1
                if n == 0:
                    return end, 0
            else:
                count += 1
                if count == n:
                    return pos + i + 1, count
    if end is None:
        return 0, 0
    return 0, count + 1


def _plan(files: list[str], tail: int) -> list[tuple[str, int]]:
    """(file, start offset) pairs covering the last ``tail`` lines (all when negative)."""
    if tail < 0:
        return [(name, 0) for name in files]
    plan: list[tuple[str, int]] = []
    remaining = tail
    for name in reversed(files):
        if remaining <= 0 and plan:
            break
        if name.endswith(".gz"):
            lines = _complete_lines(_read_all(name))
            if len(lines) >= remaining:
                skip = sum(len(line) + 1 for line in lines[: len(lines) - remaining])
                plan.append((name, skip))
                remaining = 0
            else:
                plan.append((name, 0))
                remaining -= len(lines)
        else:
            try:
                with open(name, "rb") as f:
                    offset, found = _tail_offset(f, remaining)
            except FileNotFoundError:
                continue
            plan.append((name, offset))
            remaining -= found
    plan.reverse()
    if not plan or plan[-1][0] != files[-1]:
        plan.append((files[-1], 0))
    return plan


class _Filter:
    """Decodes lines and applies since/until/stream/timestamps."""

    def __init__(self, stdout: bool, stderr: bool, since_ns: int, until_ns: int, timestamps: bool) -> None:
        self.wanted = {1: stdout, 2: stderr}
        self.since_ns = since_ns
        self.until_ns = until_ns
        self.timestamps = timestamps
        self.done = False  # an entry past ``until`` was seen

    def apply(self, line: bytes) -> tuple[int, bytes] | None:
        """The (stream, payload) of a raw line, or None when filtered out or malformed."""
        try:
            entry = json.loads(line)
            stream = _STREAMS[entry["stream"]]
            ns = parse_time(entry["time"])
            text = entry["log"]
        except (ValueError, KeyError, TypeError):
            return None
        if self.since_ns and ns < self.since_ns:
            return None
        if self.until_ns and ns > self.until_ns:
            self.done = True
            return None
        if not self.wanted[stream]:
            return None
        payload = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else b""
        if self.timestamps:
            payload = format_time(ns).encode() + b" " + payload
        return stream, payload


class _Follower:
    """The live file: reads appended complete lines, reopens it after rotation."""

    def __init__(self, path: str, f: IO[bytes] | None) -> None:
        self.path = path
        self.f = f
        self.buf = b""

    def read_lines(self) -> list[bytes]:
        """Complete lines appended since the last call (the partial rest stays buffered)."""
        if self.f is None:
            return []
        while True:
            data = self.f.read(_CHUNK)  # bounded: a big log is not read whole
            if not data:
                return []
            data = self.buf + data
            end = data.rfind(b"\n")
            if end < 0:
                self.buf = data  # a line longer than a chunk: keep reading
                continue
            self.buf = data[end + 1 :]
            return data[: end + 1].splitlines()

    def rotated(self) -> bool:
        """Whether ``path`` is now another file (or appeared after being absent)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        if self.f is None:
            return True
        return os.fstat(self.f.fileno()).st_ino != st.st_ino

    def truncated(self) -> bool:
        """Whether the file was truncated in place (rotation with max-file 1): then restart at 0."""
        if self.f is None or os.fstat(self.f.fileno()).st_size >= self.f.tell():
            return False
        self.f.seek(0)
        self.buf = b""
        return True

    def reopen(self) -> None:
        """Switch to the new ``path`` (the old file was drained by the caller)."""
        if self.f is not None:
            self.f.close()
        self.buf = b""
        try:
            self.f = open(self.path, "rb")
        except FileNotFoundError:
            self.f = None

    def close(self) -> None:
        if self.f is not None:
            self.f.close()
            self.f = None


def _open_live(path: str, offset: int) -> IO[bytes] | None:
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return None
    f.seek(offset)
    return f


async def read_logs(
    path: str,
    *,
    stdout: bool,
    stderr: bool,
    since_ns: int = 0,
    until_ns: int = 0,
    tail: int = -1,
    follow: bool = False,
    timestamps: bool = False,
    stopped: asyncio.Event | None = None,
) -> AsyncIterator[tuple[int, bytes]]:
    """Yield (stream 1|2, payload) for the log at ``path``, as ``docker logs`` shows it.

    With ``follow``, keeps reading appended lines (across rotation) until
    ``stopped`` is set and the file is drained, or ``until_ns`` has passed.
    """
    flt = _Filter(stdout, stderr, since_ns, until_ns, timestamps)
    files = log_files(path)
    plan = _plan(files, tail)
    live_name, live_offset = plan[-1]
    live = _Follower(path, _open_live(live_name, live_offset))
    draining = False
    try:
        for name, offset in plan[:-1]:
            data = _read_all(name)[offset:]
            for line in _complete_lines(data):
                item = flt.apply(line)
                if flt.done:
                    return
                if item is not None:
                    yield item
            await asyncio.sleep(0)
        while True:
            lines = live.read_lines()
            for line in lines:
                item = flt.apply(line)
                if flt.done:
                    return
                if item is not None:
                    yield item
            if lines:
                await asyncio.sleep(0)
                continue
            if not follow:
                return
            if live.rotated():
                while rest := live.read_lines():  # drain what the old file got last
                    for line in rest:
                        item = flt.apply(line)
                        if flt.done:
                            return
                        if item is not None:
                            yield item
                live.reopen()
                continue
            if live.truncated():
                continue
            if until_ns and time.time_ns() > until_ns:
                return
            if stopped is not None and stopped.is_set():
                if draining:
                    return
                draining = True  # one more pass: lines written just before the stop
                continue
            await asyncio.sleep(POLL_INTERVAL)
    finally:
        live.close()
