"""The shim's json-file log writer: Docker's line format, partial lines, rotation."""

from __future__ import annotations

import json
import os

from dockyard.supervisor.shim.jsonlog import PARTIAL_LIMIT, JsonLogWriter

NS = 1_795_816_215_123_456_789  # 2026-11-27T21:50:15.123456789Z


def entries(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_lines_streams_and_time(tmp_path):
    path = str(tmp_path / "c.log")
    w = JsonLogWriter(path)
    w.write(1, b"hello\nwor", NS)
    w.write(2, b"oops\n", NS)
    w.write(1, b"ld\n", NS + 1)
    w.close(NS + 2)
    got = entries(path)
    assert got == [
        {"log": "hello\n", "stream": "stdout", "time": "2026-11-27T21:50:15.123456789Z"},
        {"log": "oops\n", "stream": "stderr", "time": "2026-11-27T21:50:15.123456789Z"},
        {"log": "world\n", "stream": "stdout", "time": "2026-11-27T21:50:15.123456790Z"},
    ]
    raw = open(path).read()
    assert raw.startswith('{"log":"hello\\n","stream":"stdout","time":"2026-11-27T21:50:15.123456789Z"}\n')


def test_partial_line_written_at_close_and_at_16k(tmp_path):
    path = str(tmp_path / "c.log")
    w = JsonLogWriter(path)
    w.write(1, b"x" * (PARTIAL_LIMIT + 10), NS)
    assert [e["log"] for e in entries(path)] == ["x" * PARTIAL_LIMIT]
    w.write(1, b"tail", NS)
    w.close(NS)
    assert [e["log"] for e in entries(path)][1:] == ["x" * 10 + "tail"]


def test_invalid_utf8_and_escaping(tmp_path):
    path = str(tmp_path / "c.log")
    w = JsonLogWriter(path)
    w.write(1, b'q"\\\t\xff\xc3\xa9\n', NS)
    w.close(NS)
    assert entries(path)[0]["log"] == 'q"\\\t\ufffd\u00e9\n'


def test_rotation_keeps_max_file_files(tmp_path):
    path = str(tmp_path / "c.log")
    w = JsonLogWriter(path, max_size=300, max_file=3)
    for i in range(30):
        w.write(1, f"line {i:03d}\n".encode(), NS)
    w.close(NS)
    names = sorted(os.listdir(tmp_path))
    assert names == ["c.log", "c.log.1", "c.log.2"]
    for name in names:
        assert os.path.getsize(tmp_path / name) <= 300
    newest = [e["log"] for e in entries(path)]
    older = [e["log"] for e in entries(path + ".1")]
    oldest = [e["log"] for e in entries(path + ".2")]
    assert newest[-1] == "line 029\n"
    all_lines = oldest + older + newest
    assert all_lines == [f"line {i:03d}\n" for i in range(30 - len(all_lines), 30)]


def test_max_file_one_truncates_in_place(tmp_path):
    path = str(tmp_path / "c.log")
    w = JsonLogWriter(path, max_size=200, max_file=1)
    for i in range(20):
        w.write(2, f"e{i}\n".encode(), NS)
    w.close(NS)
    assert os.listdir(tmp_path) == ["c.log"]
    assert os.path.getsize(path) <= 200
    assert entries(path)[-1] == {"log": "e19\n", "stream": "stderr", "time": "2026-11-27T21:50:15.123456789Z"}


def test_unlimited_size_never_rotates_and_reopen_appends(tmp_path):
    path = str(tmp_path / "c.log")
    w = JsonLogWriter(path, max_size=0, max_file=5)
    w.write(1, b"a\n" * 1000, NS)
    w.close(NS)
    w = JsonLogWriter(path, max_size=0, max_file=5)
    w.write(1, b"b\n", NS)
    w.close(NS)
    assert os.listdir(tmp_path) == ["c.log"]
    assert len(entries(path)) == 1001
