"""Archive readers and writers over synthetic tars and an in-memory store (no root, no daemon)."""

from __future__ import annotations

import gzip
import io
import json
import os

import pytest

from dockyard.errors import InvalidArgument
from dockyard.images.archive import ImageToSave, docker, ingest_dir, ingest_tar, oci_layout, read_archive
from dockyard.images.archive.changes import apply_changes
from dockyard.images.archive.rootfs import import_rootfs
from dockyard.images.archive.tarwriter import DirSink, TarSink
from dockyard.oci import digest as digests
from dockyard.oci import mediatypes as mt
from tests.support.images import MemoryStore, docker_archive, layer_tar, tar_file, tar_members

BASE = layer_tar({"bin": None, "bin/sh": b"#!sh", "etc": None, "etc/motd": b"hi"})
TOP = layer_tar({"etc": None, "etc/.wh.motd": b"", "data": None, "data/a": b"a"})


def _load(data: bytes, store: MemoryStore) -> list:
    return read_archive(ingest_tar(io.BytesIO(data), store), store)


def test_docker_archive_loads_with_image_id_and_tags() -> None:
    store = MemoryStore()
    images = _load(docker_archive([(["app:v1", "reg:5000/x/app:v2"], [BASE, TOP])]), store)
    assert len(images) == 1
    img = images[0]
    assert img.names == ("app:v1", "reg:5000/x/app:v2")
    manifest = json.loads(store.blobs[img.target.digest])
    assert img.target.media_type == manifest["mediaType"] == mt.DOCKER_MANIFEST
    assert [layer["digest"] for layer in manifest["layers"]] == [digests.from_bytes(BASE), digests.from_bytes(TOP)]
    assert manifest["config"]["digest"] == img.config_digest
    config = json.loads(store.blobs[img.config_digest])
    assert config["rootfs"]["diff_ids"] == [digests.from_bytes(BASE), digests.from_bytes(TOP)]


def test_shared_layer_symlink_and_several_images() -> None:
    store = MemoryStore()
    data = docker_archive([(["a:1"], [BASE, TOP]), (["b:1"], [TOP, BASE])])
    assert any(m.issym() for m in tar_members(data).values())
    images = _load(data, store)
    assert [i.names for i in images] == [("a:1",), ("b:1",)]
    out = io.BytesIO()
    sink = TarSink(out)
    docker.write([ImageToSave(i.target, tuple(i.names)) for i in images], store, sink)
    sink.close()
    written = tar_members(out.getvalue())
    assert sum(1 for m in written.values() if m.issym()) == 2  # BASE and TOP each stored once
    assert [i.config_digest for i in _load(out.getvalue(), MemoryStore())] == [i.config_digest for i in images]


def test_gzip_layers_are_kept_and_diff_ids_checked() -> None:
    store = MemoryStore()
    [img] = _load(docker_archive([(["a:1"], [BASE])], gzip_layers=True), store)
    layer = json.loads(store.blobs[img.target.digest])["layers"][0]
    assert layer["mediaType"] == mt.DOCKER_LAYER_GZIP


def test_missing_layer_is_rejected_naming_it() -> None:
    data = docker_archive([(["a:1"], [BASE, TOP])])
    name = next(n for n in tar_members(data) if n.endswith("layer.tar") and tar_file(data, n) == TOP)
    with pytest.raises(InvalidArgument, match="missing layer"):
        _load(docker_archive([(["a:1"], [BASE, TOP])], drop=name), MemoryStore())


def test_diff_id_mismatch_is_rejected() -> None:
    data = docker_archive([(["a:1"], [BASE])])
    members = tar_members(data)
    buf = io.BytesIO()
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(data)) as src, tarfile.open(fileobj=buf, mode="w") as dst:
        for m in members.values():
            f = src.extractfile(m)
            payload = f.read() if f else b""
            if m.name.endswith("layer.tar"):
                payload = TOP
                m.size = len(payload)
            dst.addfile(m, io.BytesIO(payload) if m.isfile() else None)
    with pytest.raises(InvalidArgument, match="diff ID"):
        _load(buf.getvalue(), MemoryStore())


def test_absolute_entry_name_is_rejected() -> None:
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("/etc/passwd")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(InvalidArgument, match="absolute"):
        ingest_tar(io.BytesIO(buf.getvalue()), MemoryStore())


def test_truncated_archive_is_rejected() -> None:
    data = docker_archive([(["a:1"], [BASE])])
    with pytest.raises(InvalidArgument):
        _load(data[: len(data) // 3], MemoryStore())


def test_docker_roundtrip_keeps_config_bytes_and_layers() -> None:
    store = MemoryStore()
    [img] = _load(docker_archive([(["app:v1"], [BASE, TOP])], gzip_layers=True), store)
    out = io.BytesIO()
    sink = TarSink(out)
    docker.write([ImageToSave(img.target, ("docker.io/library/app:v1",))], store, sink)
    sink.close()
    data = out.getvalue()
    manifest = json.loads(tar_file(data, "manifest.json"))
    assert manifest[0]["RepoTags"] == ["app:v1"]
    assert manifest[0]["Config"] == digests.hex_of(img.config_digest) + ".json"
    assert [tar_file(data, n) for n in manifest[0]["Layers"]] == [BASE, TOP]  # decompressed
    repositories = json.loads(tar_file(data, "repositories"))
    assert repositories == {"app": {"v1": manifest[0]["Layers"][-1].split("/")[0]}}
    store2 = MemoryStore()
    [again] = _load(data, store2)
    assert again.config_digest == img.config_digest


def test_oci_layout_roundtrip_tar_and_dir(tmp_path: str) -> None:
    store = MemoryStore()
    [img] = _load(docker_archive([(["app:v1"], [BASE, TOP])]), store)
    out = io.BytesIO()
    sink = TarSink(out)
    oci_layout.write([ImageToSave(img.target, ("docker.io/library/app:v1",))], store, sink)
    sink.close()
    members = tar_members(out.getvalue())
    assert "oci-layout" in members and "index.json" in members
    index = json.loads(tar_file(out.getvalue(), "index.json"))
    entry = index["manifests"][0]
    assert entry["mediaType"] == mt.OCI_MANIFEST
    assert entry["annotations"] == {"io.containerd.image.name": "docker.io/library/app:v1",
                                    "org.opencontainers.image.ref.name": "v1"}
    manifest = json.loads(tar_file(out.getvalue(), "blobs/sha256/" + digests.hex_of(entry["digest"])))
    assert manifest["config"]["digest"] == img.config_digest
    assert {layer["mediaType"] for layer in manifest["layers"]} == {mt.OCI_LAYER}
    store2 = MemoryStore()
    [again] = _load(out.getvalue(), store2)
    assert again.names == ("docker.io/library/app:v1",) and again.config_digest == img.config_digest
    d = os.path.join(str(tmp_path), "layout")
    oci_layout.write([ImageToSave(img.target, ("docker.io/library/app:v1",))], store, DirSink(d))
    store3 = MemoryStore()
    [from_dir] = read_archive(ingest_dir(d, store3), store3)
    assert from_dir.target.digest == entry["digest"]


def test_oci_layout_blob_with_wrong_digest_is_rejected(tmp_path: str) -> None:
    store = MemoryStore()
    [img] = _load(docker_archive([(["app:v1"], [BASE])]), store)
    d = os.path.join(str(tmp_path), "layout")
    oci_layout.write([ImageToSave(img.target, ("app:v1",))], store, DirSink(d))
    with open(os.path.join(d, "blobs", "sha256", digests.hex_of(digests.from_bytes(BASE))), "ab") as f:
        f.write(b"x")
    with pytest.raises(InvalidArgument, match="blobs/sha256"):
        ingest_dir(d, MemoryStore())


def test_oci_layout_missing_blob_is_rejected(tmp_path: str) -> None:
    store = MemoryStore()
    [img] = _load(docker_archive([(["app:v1"], [BASE])]), store)
    d = os.path.join(str(tmp_path), "layout")
    oci_layout.write([ImageToSave(img.target, ("app:v1",))], store, DirSink(d))
    os.unlink(os.path.join(d, "blobs", "sha256", digests.hex_of(digests.from_bytes(BASE))))
    store2 = MemoryStore()
    with pytest.raises(InvalidArgument, match="missing"):
        read_archive(ingest_dir(d, store2), store2)


def test_oci_tag_only_ref_name_uses_base_name(tmp_path: str) -> None:
    store = MemoryStore()
    [img] = _load(docker_archive([(["app:v1"], [BASE])]), store)
    d = os.path.join(str(tmp_path), "layout")
    oci_layout.write([ImageToSave(img.target, ())], store, DirSink(d))
    index = json.loads(open(os.path.join(d, "index.json")).read())
    index["manifests"][0]["annotations"] = {oci_layout.REF_NAME: "v9"}
    with open(os.path.join(d, "index.json"), "w") as f:
        json.dump(index, f)
    store2 = MemoryStore()
    [loaded] = oci_layout.read(ingest_dir(d, store2), store2, base_name="docker.io/library/app")
    assert loaded.names == ("docker.io/library/app:v9",)


def test_import_rootfs_with_changes() -> None:
    store = MemoryStore()
    img = import_rootfs(io.BytesIO(gzip.compress(BASE)), store,
                        changes=['CMD ["sh", "-c", "echo"]', "ENV A=1 B=2", "WORKDIR /srv", "EXPOSE 80",
                                 "LABEL x=y", "USER nobody", "ENTRYPOINT run me", "VOLUME /data",
                                 "STOPSIGNAL SIGINT"])
    config = json.loads(store.blobs[img.config_digest])
    assert config["rootfs"]["diff_ids"] == [digests.from_bytes(BASE)]
    assert store.blobs[digests.from_bytes(BASE)] == BASE  # stored uncompressed
    c = config["config"]
    assert c["Cmd"] == ["sh", "-c", "echo"] and c["Env"] == ["A=1", "B=2"] and c["WorkingDir"] == "/srv"
    assert c["ExposedPorts"] == {"80/tcp": {}} and c["Labels"] == {"x": "y"} and c["User"] == "nobody"
    assert c["Entrypoint"] == ["/bin/sh", "-c", "run me"] and c["Volumes"] == {"/data": {}}
    assert c["StopSignal"] == "SIGINT"


def test_changes_reject_unknown_instruction() -> None:
    with pytest.raises(InvalidArgument, match="RUN"):
        apply_changes({}, ["RUN true"])
    assert apply_changes({"Env": ["A=0"]}, ["ENV A 1 2"])["Env"] == ["A=1 2"]


class _Pipe(io.RawIOBase):
    """A stream that cannot seek, like stdin from `docker save | ...`."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:  # type: ignore[no-untyped-def]
        chunk = self._data.read(min(len(buf), 7000))
        buf[:len(chunk)] = chunk
        return len(chunk)


def test_non_seekable_stream_loads_the_same() -> None:
    data = docker_archive([(["a:1"], [BASE, TOP]), (["b:1"], [TOP, BASE])])
    store, piped = MemoryStore(), MemoryStore()
    assert _load(data, store) == read_archive(ingest_tar(_Pipe(data), piped), piped)  # type: ignore[arg-type]
    assert store.blobs == piped.blobs


def test_docker25_archive_with_blob_paths() -> None:
    """Docker 25+ writes layers and configs as blobs/sha256/<hex> next to manifest.json."""
    import tarfile

    config = json.dumps({"os": "linux", "architecture": "amd64",
                         "rootfs": {"type": "layers", "diff_ids": [digests.from_bytes(BASE)]}}).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for data in (BASE, config):
            info = tarfile.TarInfo("blobs/sha256/" + digests.hex_of(digests.from_bytes(data)))
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        manifest = json.dumps([{"Config": "blobs/sha256/" + digests.hex_of(digests.from_bytes(config)),
                                "RepoTags": ["new:1"],
                                "Layers": ["blobs/sha256/" + digests.hex_of(digests.from_bytes(BASE))]}]).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    [img] = _load(buf.getvalue(), MemoryStore())
    assert img.names == ("new:1",) and img.config_digest == digests.from_bytes(config)
