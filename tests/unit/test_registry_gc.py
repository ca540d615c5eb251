"""Online GC, upload purging and the maintenance loop over both storage drivers (store/gc.py, maintenance.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import pytest

from dockyard.errors import InvalidArgument
from dockyard.oci import digest as digests
from dockyard.oci import mediatypes as mt
from dockyard.registry.durations import parse_duration
from dockyard.registry.errors import RegistryError
from dockyard.registry.storage.driver import FileInfo, StorageDriver, Writer
from dockyard.registry.storage.filesystem import FilesystemDriver
from dockyard.registry.storage.inmemory import InMemoryDriver
from dockyard.registry.store import Registry, gc, gc_mark, maintenance, paths
from tests.support.registry_store import DRIVER_KINDS, chunks, driver_for, run

T = TypeVar("T")


@pytest.fixture(params=DRIVER_KINDS)
def reg(request, tmp_path) -> Registry:
    return Registry(driver_for(request.param, tmp_path))


async def push_blob(reg: Registry, repo: str, data: bytes) -> str:
    d = digests.from_bytes(data)
    uuid = await reg.start_upload(repo)
    await reg.finish_upload(repo, uuid, d, chunks(data))
    return d


def desc(media_type: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digests.from_bytes(data), "size": len(data)}


def manifest(config: bytes, layers: list[bytes], **extra: Any) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": desc(mt.OCI_CONFIG, config),
                       "layers": [desc(mt.OCI_LAYER_GZIP, x) for x in layers], **extra}).encode()


async def push_image(reg: Registry, repo: str, ref: str, layers: list[bytes]) -> tuple[bytes, str]:
    config = b'{"os":"linux","layers":"' + b",".join(layers) + b'"}'
    for blob in (config, *layers):
        await push_blob(reg, repo, blob)
    data = manifest(config, layers)
    d, _ = await reg.put_manifest(repo, ref, data, mt.OCI_MANIFEST)
    return data, d


async def stored(reg: Registry, d: str) -> bool:
    return await reg.driver.stat(paths.blob_data(d)) is not None


async def settle() -> None:
    """Let the storage clock move past what was just written (coarse filesystem timestamps)."""
    await asyncio.sleep(0.03)


async def check_consistent(reg: Registry) -> None:
    """Every revision's data and references are present and linked; every tag names a revision."""
    drv = reg.driver
    for repo in await gc_mark.repositories(drv):
        revs = await gc_mark.revisions(drv, repo)
        for d in revs:
            parsed = await gc_mark.read_refs(drv, d)
            assert parsed is not None, f"{repo}@{d}: manifest data missing"
            for b in parsed.blobs:
                assert await reg.blob_size(repo, b) >= 0
            for c in parsed.children:
                assert c in revs, f"{repo}@{d}: child {c} missing"
        for tag, d in (await gc_mark.tag_targets(drv, repo)).items():
            assert d in revs, f"{repo}:{tag} -> {d} has no revision"
            await reg.get_manifest(repo, tag)


# --- mark and sweep ----------------------------------------------------------------------------------
def test_unreferenced_blobs_go_referenced_stay(reg):
    async def main() -> None:
        data, _ = await push_image(reg, "app", "v1", [b"base", b"top"])
        orphan = await push_blob(reg, "app", b"orphan data")
        other = await push_blob(reg, "other/repo", b"other orphan")
        await settle()
        report = await gc.collect(reg, grace=0)
        assert sorted(report.blobs) == sorted([orphan, other])
        assert report.bytes == len(b"orphan data") + len(b"other orphan") and report.links == 2
        assert not await stored(reg, orphan) and not await stored(reg, other)
        assert await reg.driver.stat(paths.layer_link("app", orphan)) is None
        with pytest.raises(RegistryError) as e:
            await reg.blob_size("app", orphan)
        assert e.value.code == "BLOB_UNKNOWN"
        assert (await reg.get_manifest("app", "v1"))[0] == data
        await check_consistent(reg)
        assert await reg.driver.list(gc.GC_DIR) == []
        assert (await gc.collect(reg, grace=0)).blobs == []  # nothing left to do
    run(main())


def test_young_blobs_stay_and_dry_run_removes_nothing(reg):
    async def main() -> None:
        orphan = await push_blob(reg, "app", b"fresh")
        report = await gc.collect(reg, grace=3600)
        assert report.blobs == [] and report.kept_young == 1 and await stored(reg, orphan)
        await settle()
        dry = await gc.collect(reg, grace=0, dry_run=True)
        assert dry.blobs == [orphan] and dry.bytes == 5 and await stored(reg, orphan)
        assert gc.report_lines(dry)[0] == f"blob eligible for deletion: {orphan}"
        assert await reg.driver.list(gc.GC_DIR) == []  # no run left behind, and a dry run writes nothing
    run(main())


def test_deleted_image_loses_only_its_unique_blobs(reg):
    async def main() -> None:
        _, keep = await push_image(reg, "app", "v1", [b"shared", b"one"])
        _, gone = await push_image(reg, "app", "v2", [b"shared", b"two"])
        await reg.delete_manifest("app", gone)
        await settle()
        report = await gc.collect(reg, grace=0)
        removed = set(report.blobs)
        assert gone in removed and digests.from_bytes(b"two") in removed
        assert digests.from_bytes(b"shared") not in removed and keep not in removed
        assert not await stored(reg, digests.from_bytes(b"two")) and await stored(reg, digests.from_bytes(b"shared"))
        await check_consistent(reg)
    run(main())


def test_remove_untagged_keeps_tagged_index_children_and_referrers(reg):
    async def main() -> None:
        old_data, old = await push_image(reg, "app", "latest", [b"old layer"])
        _, new = await push_image(reg, "app", "latest", [b"new layer"])   # `old` is now untagged
        child_data, child = await push_image(reg, "app", "tmp", [b"child"])
        await reg.delete_manifest("app", "tmp")                            # child: untagged, but in an index
        index = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                            "manifests": [desc(mt.OCI_MANIFEST, child_data)]}).encode()
        await reg.put_manifest("app", "multi", index, mt.OCI_INDEX)
        sig_cfg = await push_blob(reg, "app", b"{}")
        new_data = (await reg.get_manifest("app", "latest"))[0]
        sig = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "artifactType": "application/x-sig",
                          "config": {"mediaType": mt.OCI_CONFIG, "digest": sig_cfg, "size": 2}, "layers": [],
                          "subject": desc(mt.OCI_MANIFEST, new_data)}).encode()
        sig_d, subject = await reg.put_manifest("app", digests.from_bytes(sig), sig, mt.OCI_MANIFEST)
        assert subject == new
        await settle()
        plain = await gc.collect(reg, grace=0)
        assert plain.manifests == [] and plain.blobs == []
        report = await gc.collect(reg, grace=0, remove_untagged=True)
        assert report.manifests == [("app", old)]
        assert set(report.blobs) == {old, digests.from_bytes(b"old layer"),
                                     digests.from_bytes(b'{"os":"linux","layers":"old layer"}')}
        with pytest.raises(RegistryError):
            await reg.get_manifest("app", old)
        assert (await reg.get_manifest("app", child))[0] == child_data
        assert [m["digest"] for m in (await reg.referrers("app", new, None))["manifests"]] == [sig_d]
        await check_consistent(reg)
        assert old_data
    run(main())


def test_young_untagged_revision_is_kept(reg):
    async def main() -> None:
        await push_image(reg, "app", "latest", [b"a"])
        _, untagged = await push_image(reg, "app", "tmp", [b"b"])
        await reg.delete_manifest("app", "tmp")
        report = await gc.collect(reg, grace=3600, remove_untagged=True)
        assert report.manifests == [] and (await reg.get_manifest("app", untagged))[2] == untagged
    run(main())


def test_interrupted_gc_trash_is_put_back(tmp_path):
    async def main() -> None:
        reg = Registry(FilesystemDriver(str(tmp_path / "root")))
        await push_image(reg, "app", "v1", [b"precious"])
        layer = digests.from_bytes(b"precious")
        stale = f"{gc.GC_DIR}/deadbeef"
        await reg.driver.put(f"{stale}/clock", b"0")
        await reg.driver.put(f"{stale}/trash/1/origin", paths.blob_dir(layer).encode())
        await reg.driver.move(paths.blob_dir(layer), f"{stale}/trash/1/item")
        old = time.time() - 2 * gc.STALE_RUN
        os.utime(tmp_path / "root" / stale / "clock", (old, old))
        assert not await stored(reg, layer)
        await gc.collect(reg, grace=0)
        assert await stored(reg, layer) and await reg.driver.list(gc.GC_DIR) == []
        await check_consistent(reg)
    run(main())


# --- races -------------------------------------------------------------------------------------------
def test_upload_then_gc_then_manifest_fails_cleanly(reg):
    async def main() -> None:
        config, layer = b'{"os":"linux"}', b"layer racing gc"
        await push_blob(reg, "app", config)
        await push_blob(reg, "app", layer)
        await settle()
        await gc.collect(reg, grace=0)  # nothing references them yet: swept (no grace)
        with pytest.raises(RegistryError) as e:
            await reg.put_manifest("app", "v1", manifest(config, [layer]), mt.OCI_MANIFEST)
        assert e.value.code == "MANIFEST_BLOB_UNKNOWN"
        assert await reg.tags("app") == [] and await gc_mark.revisions(reg.driver, "app") == {}
        await push_image(reg, "app", "v1", [layer])  # the client retries: uploads again, fine
        await check_consistent(reg)
    run(main())


def test_manifest_put_during_sweep_keeps_its_blobs(reg, monkeypatch):
    """GC pauses between mark and sweep; a manifest naming an old unmarked blob lands meanwhile."""
    async def main() -> None:
        config, layer = b'{"os":"linux"}', b"old upload"
        await push_blob(reg, "app", config)
        await push_blob(reg, "app", layer)
        await settle()
        marked, resume = asyncio.Event(), asyncio.Event()
        real = gc_mark.all_blobs

        async def paused(driver: StorageDriver) -> list[str]:
            marked.set()
            await resume.wait()
            return await real(driver)
        monkeypatch.setattr(gc_mark, "all_blobs", paused)
        task = asyncio.create_task(gc.collect(reg, grace=0))
        await marked.wait()
        await reg.put_manifest("app", "v1", manifest(config, [layer]), mt.OCI_MANIFEST)
        resume.set()
        report = await task
        assert report.blobs == [] and report.kept_young >= 2
        await check_consistent(reg)
    run(main())


def test_manifest_put_while_blob_is_aside_fails_cleanly(reg, monkeypatch):
    async def main() -> None:
        config, layer = b'{"os":"linux"}', b"aside"
        await push_blob(reg, "app", config)
        await push_blob(reg, "app", layer)
        await settle()
        aside, resume = asyncio.Event(), asyncio.Event()
        collector_in_use = gc._Collector._in_use
        calls = 0

        async def in_use(self: Any, d: str, repos: list[str]) -> bool:
            nonlocal calls
            calls += 1
            if calls == 2:  # the re-check of the first candidate, after it was moved aside
                aside.set()
                await resume.wait()
            return await collector_in_use(self, d, repos)
        monkeypatch.setattr(gc._Collector, "_in_use", in_use)
        task = asyncio.create_task(gc.collect(reg, grace=0))
        await aside.wait()
        with pytest.raises(RegistryError) as e:
            await reg.put_manifest("app", "v1", manifest(config, [layer]), mt.OCI_MANIFEST)
        assert e.value.code == "MANIFEST_BLOB_UNKNOWN"
        resume.set()
        await task
        await check_consistent(reg)
    run(main())


class JitterDriver(StorageDriver):
    """Delegates to ``inner`` but yields to the loop a random number of times around every call."""

    def __init__(self, inner: StorageDriver, rnd: random.Random) -> None:
        self.inner, self.rnd, self.name = inner, rnd, inner.name

    async def _jit(self) -> None:
        for _ in range(self.rnd.randrange(4)):
            await asyncio.sleep(0)

    async def stat(self, path: str) -> FileInfo | None:
        await self._jit()
        return await self.inner.stat(path)

    async def get(self, path: str) -> bytes:
        await self._jit()
        return await self.inner.get(path)

    async def put(self, path: str, data: bytes) -> None:
        await self._jit()
        await self.inner.put(path, data)
        await self._jit()

    async def reader(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        await self._jit()
        async for c in self.inner.reader(path, offset, length):
            yield c

    def local_file(self, path: str) -> str | None:
        return self.inner.local_file(path)

    async def writer(self, path: str, append: bool = False) -> Writer:
        await self._jit()
        return await self.inner.writer(path, append)

    async def list(self, path: str) -> list[str]:
        await self._jit()
        return await self.inner.list(path)

    async def move(self, src: str, dst: str) -> None:
        await self._jit()
        await self.inner.move(src, dst)
        await self._jit()

    async def delete(self, path: str) -> None:
        await self._jit()
        await self.inner.delete(path)


@pytest.mark.parametrize("seed", range(60))
def test_random_interleavings_of_pushes_and_gc_never_break_a_manifest(seed):
    """Two registries (two processes' worth of state) share one store; GCs race pushes and re-tags."""
    async def main() -> None:
        rnd = random.Random(seed)
        inner = InMemoryDriver()
        a, b = Registry(JitterDriver(inner, rnd)), Registry(JitterDriver(inner, rnd))
        base = Registry(inner)
        _, old = await push_image(base, "app", "v1", [b"shared", b"old"])
        _, v2 = await push_image(base, "app", "v2", [b"gone"])
        await base.delete_manifest("app", v2)
        config = b'{"os":"linux","layers":"shared,new"}'
        for blob in (config, b"new"):
            await push_blob(base, "app", blob)
        await base.put_manifest("app", digests.from_bytes(manifest(config, [b"shared", b"new"])),
                                manifest(config, [b"shared", b"new"]), mt.OCI_MANIFEST)  # untagged, old
        await asyncio.sleep(0.002)

        async def push_new() -> str:
            await asyncio.sleep(0)
            try:
                await a.put_manifest("app", "v3", manifest(config, [b"shared", b"new"]), mt.OCI_MANIFEST)
            except RegistryError as e:
                assert e.code == "MANIFEST_BLOB_UNKNOWN"
                return "failed"
            return "ok"

        async def push_fresh() -> None:
            await push_image(b, "other", "x", [b"shared", b"fresh-" + str(seed).encode()])

        results = await asyncio.gather(
            push_new(), push_fresh(),
            gc.collect(b, grace=0, remove_untagged=rnd.random() < 0.5),
            gc.collect(a, grace=0, remove_untagged=rnd.random() < 0.5))
        await check_consistent(base)
        assert (await base.get_manifest("app", "v1"))[2] == old
        assert (await base.get_manifest("other", "x"))[0]
        if results[0] == "ok":
            assert (await base.get_manifest("app", "v3"))[0]
        assert not await stored(base, digests.from_bytes(b"gone"))
    run(main())


# --- upload purging, the maintenance loop, settings ---------------------------------------------------
def test_purge_uploads_by_age(reg):
    async def main() -> None:
        old = await reg.start_upload("app")
        new = await reg.start_upload("app")
        await reg.driver.put(paths.upload_started("app", old), repr(time.time() - 8 * 86400).encode())
        assert await maintenance.purge_uploads(reg.driver, age=7 * 86400, dry_run=True) == [f"app/{old}"]
        assert await reg.upload_offset("app", old) == 0
        assert await maintenance.purge_uploads(reg.driver, age=7 * 86400) == [f"app/{old}"]
        with pytest.raises(RegistryError):
            await reg.upload_offset("app", old)
        assert await reg.upload_offset("app", new) == 0
    run(main())


def test_maintenance_loop_runs_purge_and_gc_and_stops(reg):
    async def main() -> None:
        orphan = await push_blob(reg, "app", b"orphan")
        upload = await reg.start_upload("app")
        await settle()
        settings = maintenance.parse_maintenance({
            "uploadpurging": {"enabled": True, "age": "0s", "interval": "1s"},
            "gc": {"enabled": True, "interval": "1s", "graceperiod": "0s"}})
        m = maintenance.Maintenance(reg, settings, purge_delay=0, gc_delay=0.05)
        m.start()
        for _ in range(100):
            if m.gc_reports and m.purged:
                break
            await asyncio.sleep(0.02)
        await m.stop()
        assert m.tasks == [] and m.purged == [f"app/{upload}"] and m.gc_reports[0].blobs == [orphan]
    run(main())


def test_parse_maintenance_defaults_and_errors():
    s = maintenance.parse_maintenance(None)
    assert (s.purging.enabled, s.purging.age, s.purging.interval, s.purging.dry_run) == (True, 604800, 86400, False)
    assert (s.gc.enabled, s.gc.interval, s.gc.grace, s.gc.dry_run) == (False, 86400, 3600, False)
    s = maintenance.parse_maintenance({"gc": {"enabled": "true", "graceperiod": "90m", "dryrun": True}})
    assert s.gc.enabled and s.gc.grace == 5400 and s.gc.dry_run
    for raw, text in [({"uploadpurging": {"age": "week"}}, "storage.maintenance.uploadpurging.age"),
                      ({"gc": {"interval": "0s"}}, "storage.maintenance.gc.interval must be at least"),
                      ({"gc": {"enabled": "yes"}}, "storage.maintenance.gc.enabled must be true or false"),
                      ({"gc": "on"}, "storage.maintenance.gc must be a mapping")]:
        with pytest.raises(InvalidArgument, match=text):
            maintenance.parse_maintenance(raw)


def test_parse_duration():
    assert [parse_duration(t, "x") for t in ("10m", "1h30m", "168h", "300ms", "1.5s", "0", 45)] == \
        [600, 5400, 604800, 0.3, 1.5, 0, 45]
    for bad in ("", "h", "10x", "1h 2m", True):
        with pytest.raises(InvalidArgument, match="configuration: a.b must be a duration"):
            parse_duration(bad, "a.b")  # type: ignore[arg-type]


def test_run_gc_command_prints_distribution_like_lines(tmp_path, capsys):
    from dockyard.registry.config import RegistryConfig

    async def setup() -> tuple[str, str]:
        reg = Registry(FilesystemDriver(str(tmp_path)))
        await push_image(reg, "app", "v1", [b"kept"])
        return await push_blob(reg, "app", b"garbage"), ""
    orphan, _ = run(setup())
    time.sleep(0.03)
    config = RegistryConfig(root_directory=str(tmp_path))
    args = argparse.Namespace(dry_run=True, delete_untagged=False, grace="0s")
    assert maintenance.run_gc_command(config, args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"blob eligible for deletion: {orphan}" and "eligible for deletion" in out[-1]
    assert os.path.exists(tmp_path / paths.blob_data(orphan))
    args = argparse.Namespace(dry_run=False, delete_untagged=True, grace="0s")
    assert maintenance.run_gc_command(config, args) == 0
    assert not os.path.exists(tmp_path / paths.blob_data(orphan))
    assert "1 blobs and 0 manifests deleted" in capsys.readouterr().out
