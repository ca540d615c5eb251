"""Content store: ingest -> commit -> visible, resume by ref, verification, labels."""

from __future__ import annotations

import io
import os
import threading

import pytest

from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.oci import digest
from dockyard.supervisor.content import ContentStore


@pytest.fixture
def store(tmp_path: object) -> ContentStore:
    return ContentStore(str(tmp_path))


def test_add_and_read(store: ContentStore) -> None:
    d = store.add(b"hello")
    assert d == digest.from_bytes(b"hello")
    assert store.exists(d) and store.info(d).size == 5
    with store.open(d) as f:
        assert f.read() == b"hello"
    assert store.read(d) == b"hello"
    assert os.path.isfile(store.path(d))
    assert [i.digest for i in store.walk()] == [d]


def test_add_stream_and_expected(store: ContentStore) -> None:
    data = os.urandom(3 * (1 << 20) + 7)
    d = digest.from_bytes(data)
    assert store.add(io.BytesIO(data), expected=d, size=len(data)) == d
    assert store.add(b"ignored: already present", expected=d) == d
    assert store.list_ingests() == []


def test_blob_invisible_until_commit(store: ContentStore) -> None:
    d = digest.from_bytes(b"abcdef")
    w = store.writer("ref-1", expected=d, total=6)
    w.write(b"abc")
    assert not store.exists(d)
    with pytest.raises(NotFound):
        store.info(d)
    w.write(b"def")
    assert w.digest() == d
    assert w.commit() == d
    assert store.exists(d)
    assert store.list_ingests() == []


def test_resume_by_ref(store: ContentStore) -> None:
    d = digest.from_bytes(b"0123456789")
    with store.writer("pull-x", expected=d, total=10) as w:
        w.write(b"01234")
    [status] = store.list_ingests()
    assert (status.ref, status.offset, status.total, status.expected) == ("pull-x", 5, 10, d)
    with store.writer("pull-x") as w2:
        assert w2.offset == 5
        w2.write(b"56789")
        assert w2.commit() == d
    assert store.read(d) == b"0123456789"


def test_ref_locked(store: ContentStore) -> None:
    w = store.writer("busy")
    with pytest.raises(Conflict, match="ref locked"):
        store.writer("busy")
    w.close()
    store.writer("busy").abort()
    assert store.list_ingests() == []


def test_digest_and_size_mismatch(store: ContentStore) -> None:
    wrong = digest.from_bytes(b"other")
    w = store.writer("bad")
    w.write(b"data")
    with pytest.raises(InvalidArgument) as e:
        w.commit(expected=wrong)
    assert wrong in str(e.value) and digest.from_bytes(b"data") in str(e.value)
    with pytest.raises(InvalidArgument, match="size mismatch"):
        w.commit(size=99)
    assert not store.exists(wrong) and not store.exists(digest.from_bytes(b"data"))
    w.abort()
    with pytest.raises(InvalidArgument, match="exceeds"):
        with store.writer("small", total=2) as w2:
            w2.write(b"abc")
    with pytest.raises(InvalidArgument):
        store.add(b"xyz", expected=wrong)
    assert not store.exists(digest.from_bytes(b"xyz"))


def test_concurrent_writers_same_digest(store: ContentStore) -> None:
    data = os.urandom(1 << 20)
    results: list[str] = []

    def run(i: int) -> None:
        results.append(store.add(data))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(results) == {digest.from_bytes(data)}
    assert store.read(results[0]) == data
    assert store.list_ingests() == []


def test_labels_delete_and_abort(store: ContentStore) -> None:
    d = store.add(b"x", labels={"a": "1"})
    assert store.info(d).labels == {"a": "1"}
    store.set_labels(d, {"b": "2"})
    assert store.info(d).labels == {"b": "2"}
    store.delete(d)
    assert not store.exists(d)
    with pytest.raises(NotFound):
        store.delete(d)
    with pytest.raises(NotFound):
        store.set_labels(d, {})
    with pytest.raises(NotFound):
        store.abort_ingest("nope")
    store.writer("left").close()
    store.abort_ingest("left")
    assert store.list_ingests() == []


def test_clean_stale_ingests(store: ContentStore) -> None:
    store.writer("old").close()
    live = store.writer("live")
    assert store.clean_ingests(older_than=3600) == []
    assert store.clean_ingests(older_than=0) == ["old"]
    assert [s.ref for s in store.list_ingests()] == ["live"]
    live.abort()


def test_sha512_blobs_and_resume_keeps_expected(store: ContentStore) -> None:
    d = digest.from_bytes(b"long digest", "sha512")
    with store.writer("s512", expected=d) as w:
        w.write(b"long ")
    with store.writer("s512") as w:
        w.write(b"digest")
        assert w.commit() == d
    assert store.read(d) == b"long digest"
    assert d in [i.digest for i in store.walk()]


def test_reopen_sees_committed_blobs_and_labels(tmp_path: object) -> None:
    first = ContentStore(str(tmp_path))
    d = first.add(b"persist", labels={"k": "v"})
    first.close()
    again = ContentStore(str(tmp_path))
    assert again.info(d).labels == {"k": "v"} and again.read(d) == b"persist"
    assert oct(os.stat(again.path(d)).st_mode & 0o777) == "0o444"
