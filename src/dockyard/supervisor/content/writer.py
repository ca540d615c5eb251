"""A resumable ingest: bytes go to ``ingest/<hash of ref>/data``; ``commit`` verifies and renames into blobs/.

containerd's model: a blob is written under a ref, committed against an
expected size and digest, and only the final ``rename`` makes it visible; until
then readers cannot see it and a crash leaves at most an ingest directory
(resumable by ref, or removed by ``abort_ingest`` / GC).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dockyard.errors import Conflict, InvalidArgument
from dockyard.oci import digest as digests

from .paths import ContentPaths

if TYPE_CHECKING:
    from .store import ContentStore

_CHUNK = 1 << 20


@dataclass(frozen=True)
class IngestStatus:
    """An in-progress (or abandoned) write."""

    ref: str
    offset: int
    total: int | None
    expected: str | None
    started_at: float
    updated_at: float


def _write_small(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _read_small(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_status(ingest_dir: str) -> IngestStatus | None:
    """The status of one ingest directory, or None when it has no readable ref."""
    ref = _read_small(ContentPaths.ingest_file(ingest_dir, "ref"))
    if ref is None:
        return None
    started = _read_small(ContentPaths.ingest_file(ingest_dir, "startedat"))
    total = _read_small(ContentPaths.ingest_file(ingest_dir, "total"))
    expected = _read_small(ContentPaths.ingest_file(ingest_dir, "expected"))
    try:
        st = os.stat(ContentPaths.ingest_file(ingest_dir, "data"))
        offset, updated = st.st_size, st.st_mtime
    except FileNotFoundError:
        offset, updated = 0, float(started or 0)
    return IngestStatus(ref=ref, offset=offset, total=int(total) if total else None, expected=expected or None,
                        started_at=float(started or 0), updated_at=updated)


def _same_file(fd: int, path: str) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


_CLEANER_WAIT = 0.5


def lock_ingest(ingest_dir: str, ref: str) -> int:
    """Create (if needed) and flock the ingest directory; Conflict when another writer holds it.

    GC's ingest cleaner also takes this lock, briefly, before moving a stale ingest away: a lock
    held for longer than ``_CLEANER_WAIT`` seconds is taken to be another writer's.
    """
    waited = 0.0
    while True:
        os.makedirs(ingest_dir, exist_ok=True)
        lock_path = ContentPaths.ingest_file(ingest_dir, "lock")
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            continue  # the directory was just removed by a cleaner: create it again
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            moved = not _same_file(fd, lock_path)
            os.close(fd)
            if moved or waited < _CLEANER_WAIT:  # a cleaner is (or may be) moving it away: retry
                time.sleep(0.01)
                waited += 0.01
                continue
            raise Conflict(f"ref locked: ingest {ref!r} is already being written", id=ref, path=ingest_dir) from None
        if _same_file(fd, lock_path):  # not removed by a concurrent abort between open and flock
            return fd
        os.close(fd)


class Writer:
    """Writes one blob under ``ref``; use as a context manager (``close`` on exit keeps the ingest)."""

    def __init__(self, store: ContentStore, ref: str, *, expected: str | None = None, total: int | None = None,
                 lease: str | None = None) -> None:
        if expected is not None:
            digests.validate(expected)
        self._store, self.ref, self.expected, self.total, self.lease = store, ref, expected, total, lease
        self._dir = store.paths.ingest_dir(ref)
        self._lock_fd: int | None = lock_ingest(self._dir, ref)
        try:
            self._init_files()
            self._data = open(ContentPaths.ingest_file(self._dir, "data"), "a+b")
            self._digester = digests.Digester(digests.algorithm_of(self.expected) if self.expected else "sha256")
            self._data.seek(0)
            while chunk := self._data.read(_CHUNK):
                self._digester.update(chunk)
        except BaseException:
            self._release()
            raise

    def _init_files(self) -> None:
        f = ContentPaths.ingest_file
        if _read_small(f(self._dir, "ref")) is None:
            _write_small(f(self._dir, "startedat"), repr(time.time()))
            _write_small(f(self._dir, "ref"), self.ref)
        if self.total is not None:
            _write_small(f(self._dir, "total"), str(self.total))
        else:
            stored = _read_small(f(self._dir, "total"))
            self.total = int(stored) if stored else None
        if self.expected is not None:
            _write_small(f(self._dir, "expected"), self.expected)
        else:
            self.expected = _read_small(f(self._dir, "expected")) or None

    @property
    def offset(self) -> int:
        return self._digester.size

    def write(self, data: bytes) -> int:
        if self.total is not None and self.offset + len(data) > self.total:
            raise InvalidArgument(f"ingest {self.ref!r}: writing {len(data)} bytes at offset {self.offset} exceeds "
                                  f"the expected total of {self.total}", id=self.ref)
        self._data.write(data)
        self._digester.update(data)
        return len(data)

    def digest(self) -> str:
        return self._digester.digest()

    def commit(self, *, size: int | None = None, expected: str | None = None,
               labels: Mapping[str, str] | None = None) -> str:
        """Verify size and digest, fsync, rename into blobs/; returns the digest (also if it already existed)."""
        self._data.flush()
        os.fsync(self._data.fileno())
        size = size if size is not None else self.total
        expected = expected or self.expected
        actual = self.digest()
        if size is not None and size != self.offset:
            raise InvalidArgument(f"ingest {self.ref!r}: size mismatch for {expected or actual}: expected {size} "
                                  f"bytes, got {self.offset}", id=expected or actual)
        if expected is not None and expected != actual:
            raise InvalidArgument(f"ingest {self.ref!r}: digest mismatch: expected {expected}, got {actual}",
                                  id=expected)
        self._store._publish(ContentPaths.ingest_file(self._dir, "data"), actual, labels, self.lease)
        self._data.close()
        shutil.rmtree(self._dir, ignore_errors=True)
        self._release()
        return actual

    def abort(self) -> None:
        """Drop the ingest and what was written."""
        self._data.close()
        shutil.rmtree(self._dir, ignore_errors=True)
        self._release()

    def close(self) -> None:
        """Release the ref and keep the ingest so that a later writer(ref) resumes at ``offset``."""
        if self._lock_fd is not None:
            self._data.close()
            self._release()

    def _release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
