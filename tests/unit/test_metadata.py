"""Metadata (SQLite, WAL) image records and leases."""

from __future__ import annotations

import os

import pytest

from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.oci import digest, mediatypes as mt
from dockyard.oci.image import Descriptor
from dockyard.supervisor.leases import CONTENT, LeaseManager, Resource
from dockyard.supervisor.metadata import Metadata


@pytest.fixture
def md(tmp_path: object) -> Metadata:
    return Metadata(os.path.join(str(tmp_path), "metadata.db"))


def _desc(data: bytes = b"m") -> Descriptor:
    return Descriptor(mt.OCI_MANIFEST, digest.from_bytes(data), len(data))


def test_wal_and_integrity(md: Metadata) -> None:
    assert str(md.query("PRAGMA journal_mode")[0][0]) == "wal"
    assert md.query("PRAGMA foreign_keys")[0][0] == 1
    assert md.integrity_check() == "ok"


def test_image_records(md: Metadata) -> None:
    rec = md.put_image("docker.io/library/busybox:latest", _desc(), labels={"x": "y"})
    assert rec.target == _desc() and rec.labels == {"x": "y"}
    again = md.put_image("docker.io/library/busybox:latest", _desc(b"n"))
    assert again.created_at == rec.created_at and again.target.digest == digest.from_bytes(b"n")
    md.put_image("docker.io/library/alpine:3", _desc(b"n"))
    assert [r.name for r in md.list_images()] == ["docker.io/library/alpine:3", "docker.io/library/busybox:latest"]
    assert len(md.images_by_digest(digest.from_bytes(b"n"))) == 2
    md.delete_image("docker.io/library/alpine:3")
    with pytest.raises(NotFound, match="alpine"):
        md.get_image("docker.io/library/alpine:3")
    with pytest.raises(NotFound):
        md.delete_image("docker.io/library/alpine:3")
    with pytest.raises(InvalidArgument):
        md.put_image("x", Descriptor(mt.OCI_MANIFEST, "sha256:bad", 1))


def test_transaction_rolls_back(md: Metadata) -> None:
    with pytest.raises(RuntimeError):
        with md.transaction():
            md.put_image("a", _desc())
            with md.transaction():
                md.put_image("b", _desc())
            raise RuntimeError("boom")
    assert md.list_images() == []


def test_reopen_keeps_records(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "m.db")
    with Metadata(path) as md:
        md.put_image("a", _desc())
    with Metadata(path) as md:
        assert md.get_image("a").target == _desc()


def test_gc_lock_reentrant_and_no_upgrade(md: Metadata) -> None:
    with md.gc_lock(exclusive=True):
        with md.transaction():  # joins the held lock
            md.put_image("a", _desc())
    with md.gc_lock():
        with pytest.raises(Conflict):
            with md.gc_lock(exclusive=True):
                pass


def test_leases(md: Metadata) -> None:
    lm = LeaseManager(md)
    lease = lm.create("l1", labels={"k": "v"})
    assert lm.get("l1") == lease
    with pytest.raises(Conflict):
        lm.create("l1")
    lm.add_resource("l1", CONTENT, "sha256:" + "a" * 64)
    lm.add_resource("l1", CONTENT, "sha256:" + "a" * 64)
    assert lm.resources("l1") == [Resource(CONTENT, "sha256:" + "a" * 64)]
    with pytest.raises(NotFound):
        lm.add_resource("nope", CONTENT, "x")
    lm.delete("l1")
    assert lm.resources() == []  # cascaded
    with pytest.raises(NotFound):
        lm.delete("l1")
    with lm.lease() as tmp:
        assert [x.id for x in lm.list()] == [tmp.id]
    assert lm.list() == []
    lm.create("old", expires_in=-1)
    lm.create("new", expires_in=3600)
    assert lm.delete_expired() == ["old"]
    assert [x.id for x in lm.list()] == ["new"]
