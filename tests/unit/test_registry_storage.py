"""One conformance suite for every registry storage driver (filesystem, in-memory)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TypeVar

import pytest

from dockyard.errors import InvalidArgument, NotFound
from dockyard.registry.storage import PathNotFound, StorageDriver
from dockyard.registry.storage.driver import CHUNK
from dockyard.registry.storage.filesystem import FilesystemDriver
from tests.support.registry_store import DRIVER_KINDS, driver_for, run

T = TypeVar("T")


@pytest.fixture(params=DRIVER_KINDS)
def drv(request, tmp_path) -> StorageDriver:
    return driver_for(request.param, tmp_path)


async def collect(it: AsyncIterator[bytes]) -> bytes:
    return b"".join([c async for c in it])


def test_names(drv):
    assert drv.name in ("filesystem", "inmemory")


def test_put_get_stat(drv):
    async def go():
        assert await drv.stat("a/b/c") is None
        await drv.put("a/b/c", b"hello")
        assert await drv.get("a/b/c") == b"hello"
        assert await drv.get("/a/b/c/") == b"hello"  # leading/trailing slashes are ignored
        info = await drv.stat("a/b/c")
        assert (info.path, info.size, info.is_dir) == ("a/b/c", 5, False) and info.mtime > 0
        d = await drv.stat("a/b")
        assert d.is_dir and d.path == "a/b"
        root = await drv.stat("")
        assert root is not None and root.is_dir
    run(go())


def test_put_replaces_atomically_and_leaves_no_temp_files(drv):
    async def go():
        await drv.put("x/f", b"old content")
        await drv.put("x/f", b"new")
        assert await drv.get("x/f") == b"new"
        assert await drv.list("x") == ["f"]
        assert (await drv.stat("x/f")).size == 3
    run(go())
    if isinstance(drv, FilesystemDriver):
        assert os.listdir(os.path.join(drv.root, "x")) == ["f"]


def test_get_missing_or_directory_raises_path_not_found(drv):
    async def go():
        await drv.put("d/f", b"1")
        for p in ("nope", "d/nope", "d", "d/f/deeper"):
            with pytest.raises(PathNotFound):
                await drv.get(p)
    run(go())
    assert issubclass(PathNotFound, NotFound)


def test_invalid_paths_are_rejected(drv):
    async def go():
        for p in ("../etc/passwd", "a/../../b", "a//b", "a/./b"):
            with pytest.raises(InvalidArgument):
                await drv.put(p, b"x")
    run(go())


def test_reader_offsets_and_lengths(drv):
    data = bytes(range(256)) * (CHUNK // 256 * 2 + 7)  # a bit over 2 MiB: several chunks
    async def go():
        await drv.put("blob", data)
        assert await collect(drv.reader("blob")) == data
        chunks = [c async for c in drv.reader("blob")]
        assert max(len(c) for c in chunks) <= CHUNK and len(chunks) >= 3
        assert await collect(drv.reader("blob", 10)) == data[10:]
        assert await collect(drv.reader("blob", 10, 100)) == data[10:110]
        assert await collect(drv.reader("blob", CHUNK - 3, CHUNK + 5)) == data[CHUNK - 3:2 * CHUNK + 2]
        assert await collect(drv.reader("blob", len(data))) == b""
        assert await collect(drv.reader("blob", 0, 0)) == b""
        assert await collect(drv.reader("blob", len(data) - 5, 1000)) == data[-5:]
        with pytest.raises(PathNotFound):
            await collect(drv.reader("nope"))
    run(go())


def test_writer_truncates_then_appends(drv):
    async def go():
        await drv.put("w/f", b"previous")
        w = await drv.writer("w/f")
        assert w.size == 0
        await w.write(b"abc")
        await w.write(b"")
        await w.write(b"de")
        assert w.size == 5
        await w.close()
        assert await drv.get("w/f") == b"abcde"
        w = await drv.writer("w/f", append=True)
        assert w.size == 5
        await w.write(b"fgh")
        assert w.size == 8
        await w.close()
        await w.close()  # idempotent
        assert await drv.get("w/f") == b"abcdefgh"
        assert (await drv.stat("w/f")).size == 8
    run(go())


def test_append_writer_creates_missing_file_and_parents(drv):
    async def go():
        w = await drv.writer("new/deep/file", append=True)
        assert w.size == 0
        big = b"z" * (CHUNK + 123)
        await w.write(big)
        await w.write(b"!")
        await w.close()
        assert await drv.get("new/deep/file") == big + b"!"
    run(go())


def test_list_children_sorted(drv):
    async def go():
        for p in ("l/b", "l/a/x", "l/c/y/z", "l/A"):
            await drv.put(p, b"")
        assert await drv.list("l") == ["A", "a", "b", "c"]
        assert await drv.list("l/c") == ["y"]
        assert "l" in await drv.list("")
        with pytest.raises(PathNotFound):
            await drv.list("missing")
        with pytest.raises(PathNotFound):
            await drv.list("l/b")  # a file has no children
    run(go())


def test_move_file_replaces_destination_and_makes_parents(drv):
    async def go():
        await drv.put("src/f", b"new")
        await drv.put("dst/f", b"old")
        await drv.move("src/f", "dst/f")
        assert await drv.get("dst/f") == b"new"
        assert await drv.stat("src/f") is None
        await drv.move("dst/f", "far/away/g")
        assert await drv.get("far/away/g") == b"new"
        with pytest.raises(PathNotFound):
            await drv.move("nope", "x")
    run(go())


def test_move_directory(drv):
    async def go():
        await drv.put("d1/a", b"1")
        await drv.put("d1/sub/b", b"2")
        await drv.put("d2/old", b"3")
        await drv.move("d1", "d2")
        assert await drv.list("d2") == ["a", "sub"]
        assert await drv.get("d2/sub/b") == b"2"
        assert await drv.stat("d1") is None
    run(go())


def test_delete_file_and_tree(drv):
    async def go():
        await drv.put("t/a/b/c", b"1")
        await drv.put("t/a/d", b"2")
        await drv.put("t/e", b"3")
        await drv.delete("t/e")
        assert await drv.stat("t/e") is None
        await drv.delete("t/a")
        assert await drv.stat("t/a/b/c") is None and await drv.stat("t/a") is None
        assert await drv.list("t") == []  # the parent directory stays
        for p in ("t/a", "nothing", "t/e"):
            with pytest.raises(PathNotFound):
                await drv.delete(p)
    run(go())


def test_local_file(drv, tmp_path):
    async def go():
        await drv.put("blobs/x/data", b"payload")
    run(go())
    local = drv.local_file("blobs/x/data")
    if isinstance(drv, FilesystemDriver):
        assert local is not None and Path(local).read_bytes() == b"payload"
        assert drv.local_file("blobs/x") is None and drv.local_file("nope") is None
    else:
        assert local is None


def test_filesystem_files_live_under_the_root(tmp_path):
    drv = FilesystemDriver(str(tmp_path / "r"))
    run(drv.put("repositories/a/b/link", b"sha256:x"))
    assert (tmp_path / "r" / "repositories" / "a" / "b" / "link").read_bytes() == b"sha256:x"
