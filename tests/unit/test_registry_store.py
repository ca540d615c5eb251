"""The Registry facade over both storage drivers: uploads, blobs, manifests, tags, catalog, referrers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from dockyard.oci import digest as digests
from dockyard.oci import mediatypes as mt
from dockyard.registry.errors import RegistryError
from dockyard.registry.storage.filesystem import FilesystemDriver
from dockyard.registry.store import Registry
from tests.support.registry_store import DRIVER_KINDS, chunks, driver_for, run

T = TypeVar("T")


@pytest.fixture(params=DRIVER_KINDS)
def reg(request, tmp_path) -> Registry:
    return Registry(driver_for(request.param, tmp_path))


async def read_all(it: AsyncIterator[bytes]) -> bytes:
    return b"".join([c async for c in it])


async def code_of(aw: Awaitable[Any]) -> tuple[str, int]:
    with pytest.raises(RegistryError) as e:
        await aw
    return e.value.code, e.value.status


async def push_blob(reg: Registry, repo: str, data: bytes) -> str:
    d = digests.from_bytes(data)
    uuid = await reg.start_upload(repo)
    await reg.finish_upload(repo, uuid, d, chunks(data))
    return d


def desc(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digests.from_bytes(data), "size": len(data), **extra}


def image_manifest(config: bytes, layers: list[bytes], media_type: str = mt.OCI_MANIFEST, **extra: Any) -> bytes:
    cfg_type = mt.OCI_CONFIG if media_type == mt.OCI_MANIFEST else mt.DOCKER_CONFIG
    layer_type = mt.OCI_LAYER_GZIP if media_type == mt.OCI_MANIFEST else mt.DOCKER_LAYER_GZIP
    doc = {"schemaVersion": 2, "mediaType": media_type, "config": desc(cfg_type, config),
           "layers": [desc(layer_type, x) for x in layers], **extra}
    return json.dumps(doc, indent=3).encode()  # odd indentation: bytes must come back exactly


async def push_image(reg: Registry, repo: str, tag: str, seed: bytes = b"") -> tuple[bytes, str]:
    config = b'{"architecture":"amd64","os":"linux"' + seed + b"}"
    layer = b"layer-" + seed
    await push_blob(reg, repo, config)
    await push_blob(reg, repo, layer)
    data = image_manifest(config, [layer])
    d, subject = await reg.put_manifest(repo, tag, data, mt.OCI_MANIFEST)
    assert subject is None
    return data, d


# --- blobs and uploads -----------------------------------------------------

def test_monolithic_upload_then_read(reg):
    async def go():
        data = b"x" * (3 << 20) + b"tail"
        d = await push_blob(reg, "library/busybox", data)
        assert await reg.blob_size("library/busybox", d) == len(data)
        assert await read_all(reg.blob_reader("library/busybox", d)) == data
        assert await read_all(reg.blob_reader("library/busybox", d, 5, 10)) == data[5:15]
        assert await read_all(reg.blob_reader("library/busybox", d, len(data) - 2)) == b"il"
        return await reg.blob_file("library/busybox", d), data
    local, data = run(go())
    if isinstance(reg.driver, FilesystemDriver):
        assert local is not None and Path(local).read_bytes() == data
    else:
        assert local is None


def test_blob_invisible_in_other_repos(reg):
    async def go():
        d = await push_blob(reg, "a/one", b"secret")
        assert await code_of(reg.blob_size("a/two", d)) == ("BLOB_UNKNOWN", 404)
        assert await code_of(reg.blob_file("a/two", d)) == ("BLOB_UNKNOWN", 404)
        assert await code_of(read_all(reg.blob_reader("a/two", d))) == ("BLOB_UNKNOWN", 404)
    run(go())


def test_chunked_upload_with_offsets(reg):
    async def go():
        uuid = await reg.start_upload("r")
        assert await reg.upload_offset("r", uuid) == 0
        assert await reg.append_upload("r", uuid, chunks(b"hello ", b"wor"), 0) == 9
        assert await reg.upload_offset("r", uuid) == 9
        assert await reg.append_upload("r", uuid, chunks(b"ld"), None) == 11  # PATCH without Content-Range
        assert await reg.append_upload("r", uuid, chunks(b", "), 11) == 13
        d = digests.from_bytes(b"hello world, again")
        await reg.finish_upload("r", uuid, d, chunks(b"again"))
        assert await read_all(reg.blob_reader("r", d)) == b"hello world, again"
        assert await code_of(reg.upload_offset("r", uuid)) == ("BLOB_UPLOAD_UNKNOWN", 404)
    run(go())


def test_out_of_order_chunk_is_range_invalid_and_keeps_the_session(reg):
    async def go():
        uuid = await reg.start_upload("r")
        await reg.append_upload("r", uuid, chunks(b"0123"), 0)
        assert await code_of(reg.append_upload("r", uuid, chunks(b"zz"), 10)) == ("RANGE_INVALID", 416)
        assert await code_of(reg.append_upload("r", uuid, chunks(b"zz"), 0)) == ("RANGE_INVALID", 416)
        assert await reg.upload_offset("r", uuid) == 4
        await reg.append_upload("r", uuid, chunks(b"45"), 4)
        await reg.finish_upload("r", uuid, digests.from_bytes(b"012345"), None)
        assert await reg.blob_size("r", digests.from_bytes(b"012345")) == 6
    run(go())


def test_digest_mismatch_removes_upload_and_shows_nothing(reg):
    async def go():
        uuid = await reg.start_upload("r")
        await reg.append_upload("r", uuid, chunks(b"real content"), 0)
        claimed = digests.from_bytes(b"other content")
        assert await code_of(reg.finish_upload("r", uuid, claimed, None)) == ("DIGEST_INVALID", 400)
        assert await code_of(reg.blob_size("r", claimed)) == ("BLOB_UNKNOWN", 404)
        actual = digests.from_bytes(b"real content")
        assert await code_of(reg.blob_size("r", actual)) == ("BLOB_UNKNOWN", 404)
        assert await code_of(reg.upload_offset("r", uuid)) == ("BLOB_UPLOAD_UNKNOWN", 404)
        assert await reg.driver.stat("blobs") is None  # no data was ever moved in
        bad = await reg.start_upload("r")
        assert await code_of(reg.finish_upload("r", bad, "sha256:nothex", chunks(b"x"))) == ("DIGEST_INVALID", 400)
    run(go())


def test_sha512_digest_is_verified(reg):
    async def go():
        uuid = await reg.start_upload("r")
        d = digests.from_bytes(b"five-twelve", "sha512")
        await reg.finish_upload("r", uuid, d, chunks(b"five-", b"twelve"))
        assert await read_all(reg.blob_reader("r", d)) == b"five-twelve"
    run(go())


def test_digest_rebuilt_after_restart(reg):
    async def go():
        uuid = await reg.start_upload("r")
        await reg.append_upload("r", uuid, chunks(b"first half "), 0)
        again = Registry(reg.driver)  # a new process over the same storage: no digest state
        await again.finish_upload("r", uuid, digests.from_bytes(b"first half second"), chunks(b"second"))
        assert await again.blob_size("r", digests.from_bytes(b"first half second")) == 17
    run(go())


def test_cancel_and_unknown_uploads(reg):
    async def go():
        uuid = await reg.start_upload("r")
        await reg.append_upload("r", uuid, chunks(b"abc"), 0)
        await reg.cancel_upload("r", uuid)
        assert await code_of(reg.upload_offset("r", uuid)) == ("BLOB_UPLOAD_UNKNOWN", 404)
        assert await code_of(reg.cancel_upload("r", uuid)) == ("BLOB_UPLOAD_UNKNOWN", 404)
        assert await code_of(reg.append_upload("r", uuid, chunks(b"x"), None)) == ("BLOB_UPLOAD_UNKNOWN", 404)
        d = digests.from_bytes(b"")
        assert await code_of(reg.finish_upload("r", uuid, d, None)) == ("BLOB_UPLOAD_UNKNOWN", 404)
        other = await reg.start_upload("r")
        assert await code_of(reg.upload_offset("s", other)) == ("BLOB_UPLOAD_UNKNOWN", 404)
        assert await code_of(reg.upload_offset("r", "../../x")) == ("BLOB_UPLOAD_UNKNOWN", 404)
    run(go())


def test_empty_blob_and_reupload_of_existing_blob(reg):
    async def go():
        d = await push_blob(reg, "r", b"")
        assert await reg.blob_size("r", d) == 0
        d2 = await push_blob(reg, "r", b"same")
        assert await push_blob(reg, "other", b"same") == d2  # data already stored: just linked
        assert await read_all(reg.blob_reader("other", d2)) == b"same"
    run(go())


def test_mount(reg):
    async def go():
        d = await push_blob(reg, "src/repo", b"shared layer")
        assert await reg.mount_blob("dst", d, "src/repo") is True
        assert await reg.blob_size("dst", d) == 12
        assert await reg.mount_blob("dst", d, None) is True  # already there
        missing = digests.from_bytes(b"missing")
        assert await reg.mount_blob("dst2", missing, "src/repo") is False
        assert await reg.mount_blob("dst2", d, "elsewhere") is False
        assert await reg.mount_blob("dst2", d, None) is False
        assert await code_of(reg.blob_size("dst2", d)) == ("BLOB_UNKNOWN", 404)
        assert await code_of(reg.mount_blob("dst2", d, "Bad")) == ("NAME_INVALID", 400)
    run(go())


def test_delete_blob(reg, tmp_path):
    async def go():
        d = await push_blob(reg, "r", b"to delete")
        await reg.delete_blob("r", d)
        assert await code_of(reg.blob_size("r", d)) == ("BLOB_UNKNOWN", 404)
        assert await code_of(reg.delete_blob("r", d)) == ("BLOB_UNKNOWN", 404)
        ro = Registry(reg.driver, delete_enabled=False)
        d2 = await push_blob(ro, "r", b"kept")
        assert await code_of(ro.delete_blob("r", d2)) == ("UNSUPPORTED", 405)
        assert await ro.blob_size("r", d2) == 4
    run(go())


# --- manifests ---------------------------------------------------------------

def test_manifest_put_get_by_tag_and_digest_exact_bytes(reg):
    async def go():
        data, d = await push_image(reg, "library/app", "v1")
        assert d == digests.from_bytes(data)
        assert await reg.get_manifest("library/app", "v1") == (data, mt.OCI_MANIFEST, d)
        assert await reg.get_manifest("library/app", d) == (data, mt.OCI_MANIFEST, d)
        assert await reg.blob_size("library/app", d) == len(data)  # manifests readable as blobs
        assert await code_of(reg.get_manifest("library/other", d)) == ("MANIFEST_UNKNOWN", 404)
        assert await code_of(reg.get_manifest("library/app", "v2")) == ("MANIFEST_UNKNOWN", 404)
    run(go())


def test_manifest_put_by_digest(reg):
    async def go():
        config, layer = b"{}", b"L"
        await push_blob(reg, "r", config)
        await push_blob(reg, "r", layer)
        data = image_manifest(config, [layer], mt.DOCKER_MANIFEST)
        d = digests.from_bytes(data)
        assert await reg.put_manifest("r", d, data, mt.DOCKER_MANIFEST + "; charset=utf-8") == (d, None)
        assert await reg.get_manifest("r", d) == (data, mt.DOCKER_MANIFEST, d)
        assert await reg.tags("r") == []
        wrong = digests.from_bytes(b"not it")
        assert await code_of(reg.put_manifest("r", wrong, data, mt.DOCKER_MANIFEST)) == ("DIGEST_INVALID", 400)
    run(go())


def test_manifest_blob_unknown(reg):
    async def go():
        config, layer = b"{}", b"L"
        await push_blob(reg, "r", config)
        data = image_manifest(config, [layer])
        assert await code_of(reg.put_manifest("r", "t", data, mt.OCI_MANIFEST)) == ("MANIFEST_BLOB_UNKNOWN", 400)
        await push_blob(reg, "r", layer)
        data = image_manifest(b"missing config", [layer])
        assert await code_of(reg.put_manifest("r", "t", data, mt.OCI_MANIFEST)) == ("MANIFEST_BLOB_UNKNOWN", 400)
        await push_blob(reg, "elsewhere", b"only there")
        data = image_manifest(config, [b"only there"])
        assert await code_of(reg.put_manifest("r", "t", data, mt.OCI_MANIFEST)) == ("MANIFEST_BLOB_UNKNOWN", 400)
        assert await code_of(reg.get_manifest("r", "t")) == ("MANIFEST_UNKNOWN", 404)
    run(go())


def index_of(children: list[tuple[bytes, str]], media_type: str = mt.OCI_INDEX) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": [
        desc(t, c, platform={"architecture": "amd64", "os": "linux"}) for c, t in children]}).encode()


def test_index_needs_its_child_manifests(reg):
    async def go():
        child, _ = await push_image(reg, "r", "amd64")
        missing = image_manifest(b"{}", [])
        idx = index_of([(child, mt.OCI_MANIFEST), (missing, mt.OCI_MANIFEST)])
        assert await code_of(reg.put_manifest("r", "multi", idx, mt.OCI_INDEX)) == ("MANIFEST_BLOB_UNKNOWN", 400)
        idx = index_of([(child, mt.OCI_MANIFEST)], mt.DOCKER_MANIFEST_LIST)
        d, _ = await reg.put_manifest("r", "multi", idx, mt.DOCKER_MANIFEST_LIST)
        assert await reg.get_manifest("r", "multi") == (idx, mt.DOCKER_MANIFEST_LIST, d)
    run(go())


def test_manifest_invalid(reg):
    async def go():
        config = b"{}"
        await push_blob(reg, "r", config)
        good = image_manifest(config, [])
        cases = [
            (b"not json", mt.OCI_MANIFEST),
            (b"[1, 2]", mt.OCI_MANIFEST),
            (good, mt.DOCKER_MANIFEST),  # Content-Type differs from mediaType
            (good, "application/json"),
            (json.dumps({"schemaVersion": 1, "mediaType": mt.OCI_MANIFEST}).encode(), mt.OCI_MANIFEST),
            (json.dumps({"schemaVersion": 2, "mediaType": "application/x-nope",
                         "config": desc(mt.OCI_CONFIG, config)}).encode(), "application/x-nope"),
            (json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST}).encode(), mt.OCI_MANIFEST),
            (json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": {"digest": "sha256:1"},
                         "layers": []}).encode(), mt.OCI_MANIFEST),
            (json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": "x"}).encode(), mt.OCI_INDEX),
            (json.dumps({"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST,
                         "config": desc(mt.DOCKER_CONFIG, config)}).encode(), mt.DOCKER_MANIFEST),  # no layers
        ]
        for data, ctype in cases:
            assert await code_of(reg.put_manifest("r", "t", data, ctype)) == ("MANIFEST_INVALID", 400), data
        assert await reg.tags("r") == []
    run(go())


def test_manifest_without_media_type_gets_its_type_from_its_shape(reg):
    async def go():
        config = b"{}"
        await push_blob(reg, "r", config)
        data = json.dumps({"schemaVersion": 2, "config": desc(mt.OCI_CONFIG, config), "layers": []}).encode()
        d, _ = await reg.put_manifest("r", "t", data, mt.OCI_MANIFEST)
        assert await reg.get_manifest("r", "t") == (data, mt.OCI_MANIFEST, d)
        assert await code_of(reg.put_manifest("r", "t", data, mt.OCI_INDEX)) == ("MANIFEST_INVALID", 400)
    run(go())


def test_delete_manifest_by_tag_and_by_digest(reg):
    async def go():
        data, d = await push_image(reg, "r", "v1")
        await reg.put_manifest("r", "v2", data, mt.OCI_MANIFEST)
        await reg.put_manifest("r", "v3", data, mt.OCI_MANIFEST)
        await reg.delete_manifest("r", "v1")  # untag only
        assert await code_of(reg.get_manifest("r", "v1")) == ("MANIFEST_UNKNOWN", 404)
        assert (await reg.get_manifest("r", d))[2] == d
        assert await reg.tags("r") == ["v2", "v3"]
        assert await code_of(reg.delete_manifest("r", "v1")) == ("MANIFEST_UNKNOWN", 404)
        await reg.delete_manifest("r", d)  # revision and its tags go
        assert await code_of(reg.get_manifest("r", d)) == ("MANIFEST_UNKNOWN", 404)
        assert await code_of(reg.get_manifest("r", "v2")) == ("MANIFEST_UNKNOWN", 404)
        assert await reg.tags("r") == []
        assert await code_of(reg.delete_manifest("r", d)) == ("MANIFEST_UNKNOWN", 404)
        ro = Registry(reg.driver, delete_enabled=False)
        await push_image(ro, "r", "keep")
        assert await code_of(ro.delete_manifest("r", "keep")) == ("UNSUPPORTED", 405)
    run(go())


def test_retag_moves_the_tag(reg):
    async def go():
        _, d1 = await push_image(reg, "r", "latest", b',"a":1')
        _, d2 = await push_image(reg, "r", "latest", b',"a":2')
        assert d1 != d2 and (await reg.get_manifest("r", "latest"))[2] == d2
        assert (await reg.get_manifest("r", d1))[2] == d1
    run(go())


def test_tags_sorted_and_unknown_repo(reg):
    async def go():
        for tag in ("b", "A", "a", "1.0", "latest"):
            await push_image(reg, "r", tag)
        assert await reg.tags("r") == ["1.0", "A", "a", "b", "latest"]
        assert await code_of(reg.tags("never/pushed")) == ("NAME_UNKNOWN", 404)
    run(go())


def test_catalog(reg):
    async def go():
        assert await reg.catalog() == []
        await push_image(reg, "zeta", "1")
        await push_image(reg, "library/busybox", "1")
        await push_image(reg, "a/b/c", "1")
        await push_blob(reg, "blobs-only", b"x")
        assert await reg.catalog() == ["a/b/c", "blobs-only", "library/busybox", "zeta"]
    run(go())


def test_referrers(reg):
    async def go():
        _, subject = await push_image(reg, "r", "v1")
        empty = b"{}"
        await push_blob(reg, "r", empty)
        sig_cfg = {"mediaType": mt.OCI_EMPTY, "digest": digests.from_bytes(empty), "size": 2}
        subj = {"mediaType": mt.OCI_MANIFEST, "digest": subject, "size": 1}
        sig = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "artifactType": "application/x-sig",
                          "config": sig_cfg, "layers": [sig_cfg], "subject": subj,
                          "annotations": {"k": "v"}}).encode()
        sbom_cfg = b'{"sbom":true}'
        await push_blob(reg, "r", sbom_cfg)
        sbom = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "subject": subj, "layers": [],
                           "config": desc("application/x-sbom", sbom_cfg)}).encode()
        d_sig, s1 = await reg.put_manifest("r", digests.from_bytes(sig), sig, mt.OCI_MANIFEST)
        d_sbom, s2 = await reg.put_manifest("r", "sbom", sbom, mt.OCI_MANIFEST)
        assert s1 == s2 == subject
        idx = await reg.referrers("r", subject, None)
        assert idx["schemaVersion"] == 2 and idx["mediaType"] == mt.OCI_INDEX
        by_digest = {m["digest"]: m for m in idx["manifests"]}
        assert by_digest == {
            d_sig: {"mediaType": mt.OCI_MANIFEST, "digest": d_sig, "size": len(sig),
                    "artifactType": "application/x-sig", "annotations": {"k": "v"}},
            d_sbom: {"mediaType": mt.OCI_MANIFEST, "digest": d_sbom, "size": len(sbom),
                     "artifactType": "application/x-sbom"},
        }
        only = await reg.referrers("r", subject, "application/x-sig")
        assert [m["digest"] for m in only["manifests"]] == [d_sig]
        await reg.delete_manifest("r", d_sig)
        assert [m["digest"] for m in (await reg.referrers("r", subject, None))["manifests"]] == [d_sbom]
        nothing = await reg.referrers("r", digests.from_bytes(b"no such subject"), None)
        assert nothing["manifests"] == []
        assert (await reg.referrers("other", subject, None))["manifests"] == []
        assert await code_of(reg.referrers("r", "sha256:bad", None)) == ("DIGEST_INVALID", 400)
    run(go())


def test_subject_need_not_exist(reg):
    async def go():
        config = b"{}"
        await push_blob(reg, "r", config)
        ghost = digests.from_bytes(b"ghost")
        data = image_manifest(config, [], subject={"mediaType": mt.OCI_MANIFEST, "digest": ghost, "size": 5})
        d, subject = await reg.put_manifest("r", "t", data, mt.OCI_MANIFEST)
        assert subject == ghost
        assert [m["digest"] for m in (await reg.referrers("r", ghost, None))["manifests"]] == [d]
    run(go())


def test_invalid_names_tags_digests(reg):
    async def go():
        d = digests.from_bytes(b"x")
        for name in ("UPPER", "-lead", "a//b", "a/", "../etc", "a..b", "x" * 256, ""):
            assert await code_of(reg.check_name(name)) == ("NAME_INVALID", 400), name
            assert await code_of(reg.start_upload(name)) == ("NAME_INVALID", 400)
            assert await code_of(reg.blob_size(name, d)) == ("NAME_INVALID", 400)
            assert await code_of(reg.tags(name)) == ("NAME_INVALID", 400)
        for name in ("a", "a/b/c", "library/busybox", "a.b_c__d--e", "x" * 255):
            await reg.check_name(name)
        for tag in (".dot", "-dash", "t" * 129, "a/b", "sp ace"):
            assert await code_of(reg.put_manifest("r", tag, b"{}", mt.OCI_MANIFEST)) == ("TAG_INVALID", 400)
            assert await code_of(reg.get_manifest("r", tag)) == ("TAG_INVALID", 400)
        for bad in ("sha256:abc", "md5:" + "0" * 32, "sha256:" + "A" * 64):
            assert await code_of(reg.blob_size("r", bad)) == ("DIGEST_INVALID", 400)
            assert await code_of(reg.get_manifest("r", bad)) == ("DIGEST_INVALID", 400)
            assert await code_of(reg.mount_blob("r", bad, "s")) == ("DIGEST_INVALID", 400)
    run(go())


def test_big_blob_streams_with_flat_memory(tmp_path):
    """32 MiB through upload, digest check, commit and read: peak allocation stays a few MiB."""
    import tracemalloc

    reg = Registry(FilesystemDriver(str(tmp_path / "root")))
    piece = bytes(range(256)) * 256  # 64 KiB
    count = 512

    h = digests.Digester()
    for _ in range(count):
        h.update(piece)

    async def go() -> int:
        uuid = await reg.start_upload("big")
        half = count // 2

        async def first() -> AsyncIterator[bytes]:
            for _ in range(half):
                yield piece
        await reg.append_upload("big", uuid, first(), 0)

        async def rest() -> AsyncIterator[bytes]:
            for _ in range(count - half):
                yield piece
        await reg.finish_upload("big", uuid, h.digest(), rest())
        total = 0
        async for chunk in reg.blob_reader("big", h.digest()):
            total += len(chunk)
        return total

    tracemalloc.start()
    try:
        total = run(go())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == len(piece) * count
    assert peak < 8 << 20, peak
