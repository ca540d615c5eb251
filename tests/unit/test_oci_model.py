"""OCI model: digests, Docker reference normalisation, manifests, chain IDs."""

from __future__ import annotations

import hashlib
import json

import pytest

from dockyard.errors import InvalidArgument, NotFound
from dockyard.oci import digest, image, mediatypes as mt, reference

HEX = "a" * 64


def test_digest_validate_and_parts() -> None:
    d = f"sha256:{HEX}"
    assert digest.validate(d) == d
    assert digest.hex_of(d) == HEX and digest.algorithm_of(d) == "sha256"
    for bad in ("sha256:abc", "md5:" + HEX, HEX, "sha256:" + "A" * 64, "sha512:" + HEX):
        with pytest.raises(InvalidArgument):
            digest.validate(bad)
    assert digest.validate("sha512:" + "b" * 128)


def test_digester_matches_from_bytes() -> None:
    dg = digest.Digester()
    dg.update(b"hello ")
    dg.update(b"world")
    assert dg.size == 11
    assert dg.digest() == digest.from_bytes(b"hello world") == "sha256:" + hashlib.sha256(b"hello world").hexdigest()


@pytest.mark.parametrize("given,full,familiar", [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("user/app:v1", "docker.io/user/app:v1", "user/app:v1"),
    ("myreg:5000/x/y:1", "myreg:5000/x/y:1", "myreg:5000/x/y:1"),
    ("localhost/foo", "localhost/foo:latest", "localhost/foo:latest"),
    ("localhost:5000/foo", "localhost:5000/foo:latest", "localhost:5000/foo:latest"),
    ("quay.io/a/b", "quay.io/a/b:latest", "quay.io/a/b:latest"),
    (f"busybox@sha256:{HEX}", f"docker.io/library/busybox@sha256:{HEX}", f"busybox@sha256:{HEX}"),
    (f"busybox:1@sha256:{HEX}", f"docker.io/library/busybox:1@sha256:{HEX}", f"busybox:1@sha256:{HEX}"),
    ("docker.io/library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest"),
])
def test_reference_normalisation(given: str, full: str, familiar: str) -> None:
    ref = reference.parse(given)
    assert str(ref) == full
    assert ref.familiar() == familiar
    assert reference.parse(full) == ref


def test_reference_parts_and_with() -> None:
    ref = reference.parse("myreg:5000/x/y:1")
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("myreg:5000", "x/y", "1", None)
    assert ref.name == "myreg:5000/x/y"
    assert str(ref.with_tag("2")) == "myreg:5000/x/y:2"
    assert str(ref.with_digest(f"sha256:{HEX}")) == f"myreg:5000/x/y:1@sha256:{HEX}"


@pytest.mark.parametrize("bad", ["", HEX, "Busybox", "docker.io/Foo/bar", "foo:", "a/b:" + "x" * 200,
                                 "busybox@sha256:abc", "-foo", "foo//bar", "foo:bad tag"])
def test_reference_rejects(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        reference.parse(bad)


def _manifest_bytes() -> bytes:
    doc = {"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST,
           "config": {"mediaType": mt.DOCKER_CONFIG, "size": 10, "digest": f"sha256:{HEX}"},
           "layers": [{"mediaType": mt.DOCKER_LAYER_GZIP, "size": 5, "digest": "sha256:" + "b" * 64}]}
    return json.dumps(doc, indent=3).encode()


def test_manifest_round_trip_is_byte_exact() -> None:
    raw = _manifest_bytes()
    m = image.Manifest.from_bytes(raw)
    assert m.config.media_type == mt.DOCKER_CONFIG and len(m.layers) == 1
    assert m.to_bytes() == raw and m.digest() == digest.from_bytes(raw)
    built = image.Manifest(config=m.config, layers=m.layers, media_type=m.media_type)
    assert image.Manifest.from_bytes(built.to_bytes()) == m


def test_manifest_rejects_garbage() -> None:
    with pytest.raises(InvalidArgument):
        image.Manifest.from_bytes(b"not json")
    with pytest.raises(InvalidArgument):
        image.Manifest.from_bytes(b'{"schemaVersion":2,"mediaType":"' + mt.OCI_MANIFEST.encode() + b'"}')
    with pytest.raises(InvalidArgument):
        image.Descriptor.from_dict({"mediaType": mt.OCI_LAYER, "digest": "sha256:zz", "size": 1})


def test_config_diff_ids_chain_ids_and_image_id() -> None:
    d1, d2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    raw = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                      "rootfs": {"type": "layers", "diff_ids": [d1, d2]}}).encode()
    cfg = image.ImageConfig.from_bytes(raw)
    assert cfg.diff_ids == (d1, d2)
    expected2 = "sha256:" + hashlib.sha256(f"{d1} {d2}".encode()).hexdigest()
    assert image.chain_ids([d1, d2]) == [d1, expected2] == cfg.chain_ids()
    assert image.image_id(raw) == cfg.image_id() == digest.from_bytes(raw)
    assert cfg.to_bytes() == raw


def test_match_platform() -> None:
    def desc(arch: str, variant: str | None = None, os: str = "linux") -> image.Descriptor:
        return image.Descriptor(mt.OCI_MANIFEST, digest.from_bytes(f"{os}{arch}{variant}".encode()), 1,
                                platform=image.Platform(os, arch, variant))
    idx = image.Index(manifests=(desc("amd64"), desc("arm", "v6"), desc("arm", "v7"), desc("arm64", "v8"),
                                 desc("unknown", os="unknown")))
    assert image.match_platform(idx, architecture="amd64").platform == image.Platform("linux", "amd64")
    assert image.match_platform(idx, architecture="arm", variant="v7").platform.variant == "v7"  # type: ignore[union-attr]
    assert image.match_platform(idx, architecture="arm64", variant="v8").platform.variant == "v8"  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        image.match_platform(idx, architecture="s390x")
    assert image.match_platform(idx).platform is not None
    round_trip = image.Index.from_bytes(idx.to_bytes())
    assert round_trip == idx
