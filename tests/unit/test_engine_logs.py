"""Reading json-file logs: rotation, tail, since/until, timestamps, follow."""

from __future__ import annotations

import asyncio
import gzip
import json
import os

import pytest

from dockyard.engine.daemon import logs

BASE = logs.parse_time("2026-11-27T21:50:00Z")


def entry(text: str, stream: str = "stdout", sec: int = 0, nanos: int = 0) -> bytes:
    t = logs.format_time(BASE + sec * 1_000_000_000 + nanos)
    return json.dumps({"log": text, "stream": stream, "time": t}).encode() + b"\n"


def write(path: str, *entries: bytes) -> None:
    with open(path, "ab") as f:
        f.write(b"".join(entries))


async def collect(path: str, **kw: object) -> list[tuple[int, bytes]]:
    kw.setdefault("stdout", True)
    kw.setdefault("stderr", True)
    return [item async for item in logs.read_logs(path, **kw)]  # type: ignore[arg-type]


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


@pytest.fixture
def rotated(tmp_path):  # type: ignore[no-untyped-def]
    """Lines 0..8 over .2 (oldest, gzipped), .1 and the live file."""
    path = str(tmp_path / "c-json.log")
    with gzip.open(path + ".2.gz", "wb") as g:
        g.write(entry("l0\n", sec=0) + entry("l1\n", "stderr", sec=1) + entry("l2\n", sec=2))
    write(path + ".1", entry("l3\n", sec=3), entry("l4\n", "stderr", sec=4), entry("l5\n", sec=5))
    write(path, entry("l6\n", sec=6), entry("l7\n", "stderr", sec=7), entry("l8\n", sec=8))
    return path


def texts(items: list[tuple[int, bytes]]) -> list[bytes]:
    return [p for _, p in items]


def test_frame_header() -> None:
    assert logs.frame(2, b"abc") == b"\x02\x00\x00\x00\x00\x00\x00\x03abc"


def test_time_roundtrip_and_offsets() -> None:
    ns = logs.parse_time("2026-11-27T21:50:15.123456789Z")
    assert logs.format_time(ns) == "2026-11-27T21:50:15.123456789Z"
    assert logs.parse_time("2026-11-27T22:50:15.5+01:00") == ns - 123456789 + 500_000_000
    assert logs.format_time(logs.parse_time("2026-11-27T21:50:15Z")) == "2026-11-27T21:50:15.000000000Z"
    with pytest.raises(ValueError):
        logs.parse_time("yesterday")


def test_all_lines_across_rotation(rotated: str) -> None:
    items = run(collect(rotated))
    assert texts(items) == [f"l{i}\n".encode() for i in range(9)]
    assert [s for s, _ in items] == [1, 2, 1, 1, 2, 1, 1, 2, 1]


def test_stream_selection(rotated: str) -> None:
    assert texts(run(collect(rotated, stdout=False))) == [b"l1\n", b"l4\n", b"l7\n"]
    assert run(collect(rotated, stdout=False, stderr=False)) == []


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 7, 9, 50])
def test_tail_across_files(rotated: str, n: int) -> None:
    want = [f"l{i}\n".encode() for i in range(9)][9 - min(n, 9) :] if n else []
    assert texts(run(collect(rotated, tail=n))) == want


def test_tail_counts_both_streams_before_filtering(rotated: str) -> None:
    # Docker tails entries, then filters streams: last 2 are l7 (stderr), l8
    assert texts(run(collect(rotated, tail=2, stderr=False))) == [b"l8\n"]


def test_since_until(rotated: str) -> None:
    s = 1_000_000_000
    got = run(collect(rotated, since_ns=BASE + 3 * s, until_ns=BASE + 5 * s))
    assert texts(got) == [b"l3\n", b"l4\n", b"l5\n"]


def test_timestamps_prefix(rotated: str) -> None:
    got = run(collect(rotated, tail=1, timestamps=True))
    assert got == [(1, b"2026-11-27T21:50:08.000000000Z l8\n")]


def test_partial_last_line_not_yielded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "log")
    full = entry("second\n")
    write(path, entry("first\n"), full[:10])
    assert texts(run(collect(path))) == [b"first\n"]
    assert texts(run(collect(path, tail=1))) == [b"first\n"]


def test_missing_file_yields_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert run(collect(str(tmp_path / "none"))) == []
    assert run(collect(str(tmp_path / "none"), tail=3)) == []


def test_malformed_lines_skipped(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "log")
    write(path, b"not json\n", entry("ok\n"))
    assert texts(run(collect(path))) == [b"ok\n"]


def test_follow_appends_rotation_and_stop(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "log")
    write(path, entry("old\n"))
    stopped = asyncio.Event()

    async def scenario() -> list[bytes]:
        got: list[bytes] = []

        async def reader() -> None:
            async for _, payload in logs.read_logs(path, stdout=True, stderr=True, follow=True, stopped=stopped):
                got.append(payload)

        task = asyncio.create_task(reader())
        await asyncio.sleep(0.15)
        assert got == [b"old\n"]
        half = entry("new\n", sec=1)
        write(path, half[:7])
        await asyncio.sleep(0.15)
        assert got == [b"old\n"]  # half-written line held back
        write(path, half[7:])
        await asyncio.sleep(0.15)
        assert got == [b"old\n", b"new\n"]
        write(path, entry("before-rotate\n", sec=2))
        os.rename(path, path + ".1")  # rotation, maybe before the reader saw the last line
        write(path, entry("after-rotate\n", sec=3))
        await asyncio.sleep(0.2)
        write(path, entry("last\n", sec=4))
        stopped.set()
        await asyncio.wait_for(task, 2)
        return got

    got = run(scenario())
    assert got == [b"old\n", b"new\n", b"before-rotate\n", b"after-rotate\n", b"last\n"]


def test_follow_tail_zero_only_new(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "log")
    write(path, entry("old\n"))
    stopped = asyncio.Event()

    async def scenario() -> list[bytes]:
        task = asyncio.create_task(collect(path, follow=True, tail=0, stopped=stopped))
        await asyncio.sleep(0.1)
        write(path, entry("new\n"))
        await asyncio.sleep(0.15)
        stopped.set()
        return texts(await asyncio.wait_for(task, 2))

    assert run(scenario()) == [b"new\n"]


def test_follow_ends_when_until_passes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import time

    path = str(tmp_path / "log")
    now = time.time_ns()
    line = json.dumps({"log": "x\n", "stream": "stdout", "time": logs.format_time(now)}).encode() + b"\n"
    write(path, line)
    until = now + 200_000_000

    async def scenario() -> list[tuple[int, bytes]]:
        return await asyncio.wait_for(collect(path, follow=True, until_ns=until), 3)

    assert texts(run(scenario())) == [b"x\n"]


def test_big_log_and_long_lines(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(logs, "_CHUNK", 64)  # lines longer than a read chunk
    path = str(tmp_path / "log")
    write(path, *(entry(f"line {i} " + "x" * (i % 150) + "\n", sec=i) for i in range(300)))
    got = texts(run(collect(path)))
    assert len(got) == 300 and got[299] == b"line 299 " + b"x" * 149 + b"\n"
    assert texts(run(collect(path, tail=5))) == got[-5:]


def test_follow_truncated_in_place(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "log")
    write(path, entry("a long first line before truncation\n"))
    stopped = asyncio.Event()

    async def scenario() -> list[bytes]:
        task = asyncio.create_task(collect(path, follow=True, stopped=stopped))
        await asyncio.sleep(0.1)
        with open(path, "r+b") as f:  # max-file 1: the writer truncates and goes on
            f.truncate(0)
        write(path, entry("b\n"))
        await asyncio.sleep(0.2)
        stopped.set()
        return texts(await asyncio.wait_for(task, 2))

    assert run(scenario()) == [b"a long first line before truncation\n", b"b\n"]


def test_with_real_writer_rotation(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from dockyard.supervisor.shim.jsonlog import JsonLogWriter

    path = str(tmp_path / "log")
    w = JsonLogWriter(path, max_size=300, max_file=3)
    for i in range(12):
        w.write(1 + i % 2, f"msg {i}\n".encode(), BASE + i)
    w.close(BASE + 99)
    assert os.path.exists(path + ".2")
    got = run(collect(path))
    kept = [int(p.split()[1]) for p in texts(got)]
    assert kept == list(range(12 - len(kept), 12))  # oldest dropped, order kept
    assert texts(run(collect(path, tail=4))) == [f"msg {i}\n".encode() for i in range(8, 12)]
