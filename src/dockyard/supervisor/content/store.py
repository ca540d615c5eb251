"""The content store: blobs addressed by digest, written through ingests, labelled in SQLite.

A blob is visible (``exists``/``info``/``open``) only once ``Writer.commit`` has
verified it and renamed it into ``blobs/`` (see paths.py for the tree). Two
writers of the same digest under different refs are safe: the second commit
finds the blob present and succeeds without replacing it. Labels live in the
metadata database (supervisor/metadata.py); the commit's rename, its labels and
its lease entry happen under the shared GC lock so that an online GC never sees
a blob that is committed but not yet protected by its lease.
"""

from __future__ import annotations

import fcntl
import io
import os
import shutil
import time
import uuid
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO

from dockyard.errors import NotFound
from dockyard.oci import digest as digests

from ..leases import CONTENT, LeaseManager
from ..metadata import Metadata
from .paths import ContentPaths
from .writer import IngestStatus, Writer, fsync_dir, read_status

_CHUNK = 1 << 20
_DB_NAME = "metadata.db"


@dataclass(frozen=True)
class ContentInfo:
    digest: str
    size: int
    created_at: float
    labels: Mapping[str, str] = field(default_factory=dict)


class ContentStore:
    """Content-addressed blobs under ``<root>/content``; metadata in ``<root>/metadata.db`` unless given."""

    def __init__(self, root: str, metadata: Metadata | None = None) -> None:
        self.root = os.path.abspath(root)
        self.paths = ContentPaths(self.root)
        self.paths.ensure()
        self._owns_metadata = metadata is None
        self.metadata = metadata if metadata is not None else Metadata(os.path.join(self.root, _DB_NAME))

    def close(self) -> None:
        if self._owns_metadata:
            self.metadata.close()

    # -- writing ---------------------------------------------------------------------------------

    def writer(self, ref: str, *, expected: str | None = None, total: int | None = None,
               lease: str | None = None) -> Writer:
        """Open (or resume) the ingest ``ref``; Conflict if another writer holds it.

        ``lease``: the committed blob is added to that lease, protecting it from GC
        until the caller has recorded what references it.
        """
        return Writer(self, ref, expected=expected, total=total, lease=lease)

    def add(self, data: bytes | BinaryIO, *, expected: str | None = None, size: int | None = None,
            labels: Mapping[str, str] | None = None, lease: str | None = None) -> str:
        """Write a whole blob from bytes or a stream (read in chunks) and commit it; returns the digest."""
        if expected is not None and self.exists(expected):
            if labels or lease:
                self._publish(None, expected, labels, lease)
            return expected
        stream: BinaryIO = io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
        w = self.writer(f"add-{uuid.uuid4().hex}", expected=expected, total=size, lease=lease)
        try:
            while chunk := stream.read(_CHUNK):
                w.write(chunk)
            return w.commit(size=size, expected=expected, labels=labels)
        except BaseException:
            w.abort()
            raise

    def _publish(self, data_path: str | None, d: str, labels: Mapping[str, str] | None, lease: str | None) -> None:
        """Rename a verified, fsynced ingest file into place; record labels and the lease (Writer.commit)."""
        target = self.paths.blob(d)
        with self.metadata.gc_lock():
            if data_path is not None and not os.path.exists(target):
                os.chmod(data_path, 0o444)
                os.rename(data_path, target)
                fsync_dir(os.path.dirname(target))
            with self.metadata.transaction():
                if labels:
                    merged = {**self.metadata.content_labels(d), **labels}
                    self.metadata.set_content_labels(d, merged)
                if lease:
                    LeaseManager(self.metadata).add_resource(lease, CONTENT, d)

    # -- reading ---------------------------------------------------------------------------------

    def exists(self, d: str) -> bool:
        return os.path.exists(self.paths.blob(d))

    def info(self, d: str) -> ContentInfo:
        try:
            st = os.stat(self.paths.blob(d))
        except FileNotFoundError:
            raise NotFound(f"content {d} not found", id=d, path=self.paths.blob(d)) from None
        return ContentInfo(d, st.st_size, st.st_mtime, self.metadata.content_labels(d))

    def open(self, d: str) -> BinaryIO:
        try:
            return open(self.paths.blob(d), "rb")
        except FileNotFoundError:
            raise NotFound(f"content {d} not found", id=d, path=self.paths.blob(d)) from None

    def read(self, d: str) -> bytes:
        """The whole blob (for manifests and configs; stream layers with ``open``)."""
        with self.open(d) as f:
            return f.read()

    def path(self, d: str) -> str:
        """The blob's file (read-only), for hardlinks and sendfile; NotFound if absent."""
        p = self.paths.blob(d)
        if not os.path.exists(p):
            raise NotFound(f"content {d} not found", id=d, path=p)
        return p

    def walk(self) -> Iterator[ContentInfo]:
        labels = self.metadata.all_content_labels()
        for algorithm in sorted(os.listdir(self.paths.blobs)):
            base = self.paths.blob_dir(algorithm)
            for name in sorted(os.listdir(base)):
                d = f"{algorithm}:{name}"
                if not digests.is_valid(d):
                    continue
                try:
                    st = os.stat(os.path.join(base, name))
                except FileNotFoundError:
                    continue
                yield ContentInfo(d, st.st_size, st.st_mtime, labels.get(d, {}))

    # -- changing --------------------------------------------------------------------------------

    def set_labels(self, d: str, labels: Mapping[str, str]) -> ContentInfo:
        """Replace the labels of blob ``d``."""
        if not self.exists(d):
            raise NotFound(f"content {d} not found", id=d, path=self.paths.blob(d))
        with self.metadata.gc_lock():
            self.metadata.set_content_labels(d, labels)
        return self.info(d)

    def delete(self, d: str) -> None:
        """Remove blob ``d`` and its labels (GC calls this; users normally let GC decide)."""
        try:
            os.unlink(self.paths.blob(d))
        except FileNotFoundError:
            raise NotFound(f"content {d} not found", id=d, path=self.paths.blob(d)) from None
        self.metadata.delete_content_labels(d)

    # -- ingests ---------------------------------------------------------------------------------

    def list_ingests(self) -> list[IngestStatus]:
        out = []
        for name in sorted(os.listdir(self.paths.ingest)):
            if name.startswith(_TRASH):
                continue
            status = read_status(os.path.join(self.paths.ingest, name))
            if status is not None:
                out.append(status)
        return out

    def abort_ingest(self, ref: str) -> None:
        """Drop the ingest ``ref``: NotFound if none, Conflict if a writer holds it."""
        d = self.paths.ingest_dir(ref)
        if not os.path.isdir(d):
            raise NotFound(f"ingest {ref!r} not found", id=ref, path=d)
        Writer(self, ref).abort()

    def clean_ingests(self, older_than: float, keep: Collection[str] = ()) -> list[str]:
        """Remove unlocked ingests not written for ``older_than`` seconds (and broken ingest dirs); their refs.

        Refs in ``keep`` (held by a lease) are left alone. An ingest is removed
        only while its lock is held here, by renaming it out of the way first,
        so a writer opening the same ref meanwhile starts afresh or gets Conflict.
        A directory without a ref file (a crash right after mkdir) must also be
        older than ``BROKEN_GRACE`` seconds, since a writer may be creating it.
        """
        removed = []
        now = time.time()
        for name in os.listdir(self.paths.ingest):
            path = os.path.join(self.paths.ingest, name)
            if name.startswith(_TRASH):
                shutil.rmtree(path, ignore_errors=True)
                continue
            status = read_status(path)
            if status is not None and status.ref in keep:
                continue
            try:
                last = max(status.updated_at, status.started_at) if status else os.stat(path).st_mtime
            except FileNotFoundError:
                continue
            if now - last < older_than:
                continue
            try:
                fd = _try_lock(path)
            except BlockingIOError:
                continue  # a live writer
            if status is None and now - last < max(older_than, BROKEN_GRACE):
                if fd is not None:
                    os.close(fd)
                continue  # no ref yet: maybe a writer between mkdir and its first write
            try:
                trash = os.path.join(self.paths.ingest, f"{_TRASH}{uuid.uuid4().hex}")
                try:
                    os.rename(path, trash)
                except FileNotFoundError:
                    continue
            finally:
                if fd is not None:
                    os.close(fd)
            shutil.rmtree(trash, ignore_errors=True)
            removed.append(status.ref if status else name)
        return removed


_TRASH = ".trash-"
BROKEN_GRACE = 60.0


def _try_lock(ingest_dir: str) -> int | None:
    """flock the ingest's lock file (None if it has none); BlockingIOError if a writer holds it."""
    lock_path = ContentPaths.ingest_file(ingest_dir, "lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if not os.path.samestat(os.fstat(fd), os.stat(lock_path)):
            raise BlockingIOError  # replaced meanwhile: someone else is working on it
    except (BlockingIOError, FileNotFoundError):
        os.close(fd)
        raise BlockingIOError from None
    return fd
