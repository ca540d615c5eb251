"""Metadata in SQLite: image records, content labels, leases and (optionally) snapshots.

The database is opened in WAL mode with foreign keys on and ``synchronous=FULL``:
every committed transaction is durable when ``commit`` returns. NORMAL would
survive kill -9 just as well, but after a power loss it could roll back the
last transactions (say an image deletion) while a later, already-performed
blob unlink by GC persists, leaving a record that names a missing blob. The
store writes a few transactions per image, so the extra fsync is cheap.

All writes go through ``with md.transaction() as tx:`` (BEGIN IMMEDIATE ...
COMMIT, or ROLLBACK on error); transactions nest by joining the outer one.
One connection is shared by the threads of a process behind a re-entrant lock.

``gc_lock`` (flock on ``<db>.lock``) orders writers against the garbage
collector across processes and threads: every write transaction, and a blob
commit's rename, hold it shared for their short critical section; GC holds it
exclusively while it marks and sweeps, so nothing becomes reachable between
its mark and its sweep. Order is always gc_lock, then the connection lock.

Snapshotters may keep their state here (table ``snapshots``) or in their own
SQLite file; the overlay and native snapshotters use their own file.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from dockyard.errors import Conflict, InvalidArgument, NotFound, Unavailable
from dockyard.oci import digest as digests
from dockyard.oci.image import Descriptor

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    name TEXT PRIMARY KEY,
    target_media_type TEXT NOT NULL,
    target_digest TEXT NOT NULL,
    target_size INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS images_by_digest ON images(target_digest);
CREATE TABLE IF NOT EXISTS content_labels (
    digest TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (digest, key)
);
CREATE TABLE IF NOT EXISTS leases (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    expires_at REAL,
    labels TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS lease_resources (
    lease_id TEXT NOT NULL REFERENCES leases(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (lease_id, kind, key)
);
CREATE TABLE IF NOT EXISTS snapshots (
    snapshotter TEXT NOT NULL,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    parent TEXT,
    labels TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    PRIMARY KEY (snapshotter, key)
);
"""


@dataclass(frozen=True)
class ImageRecord:
    """A named image: ``name`` (fully qualified reference) -> ``target`` (manifest or index)."""

    name: str
    target: Descriptor
    created_at: float
    updated_at: float
    labels: Mapping[str, str] = field(default_factory=dict)


def _labels_json(labels: Mapping[str, str] | None) -> str:
    return json.dumps(dict(labels or {}), sort_keys=True)


class Metadata:
    """The supervisor's SQLite database (see the module docstring)."""

    def __init__(self, path: str) -> None:
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        try:
            self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute("PRAGMA busy_timeout=30000")
        except sqlite3.Error as e:
            raise Unavailable(f"cannot open metadata database {path}: {e}", path=path) from e
        self._lock = threading.RLock()
        self._tls = threading.local()
        self._depth = 0
        with self.transaction() as tx:
            tx.executescript_in_tx(_SCHEMA)
            tx.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    # -- plumbing --------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Metadata:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A write transaction (BEGIN IMMEDIATE); nested calls join the outer one.

        The outermost transaction holds ``gc_lock`` shared, taken before the
        connection lock, so that writers and GC always lock in the same order.
        """
        with self.gc_lock(), self._lock:
            outer = self._depth == 0
            if outer:
                self._conn.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield Transaction(self._conn)
            except BaseException:
                self._depth -= 1
                if outer:
                    self._conn.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self._conn.execute("COMMIT")

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        """Run a read-only statement and return all rows."""
        with self._lock:
            return list(self._conn.execute(sql, params).fetchall())

    @contextmanager
    def gc_lock(self, *, exclusive: bool = False) -> Iterator[None]:
        """Cross-process lock ordering reachability-changing writes against GC (module docstring).

        Re-entrant per thread: a thread already holding it (in either mode) just
        proceeds; asking for exclusive while holding it shared is a Conflict.
        """
        held = getattr(self._tls, "gc", None)
        if held is not None:
            if exclusive and held != "exclusive":
                raise Conflict("cannot upgrade the shared GC lock to exclusive", path=self.path + ".lock")
            yield
            return
        fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            self._tls.gc = "exclusive" if exclusive else "shared"
            try:
                yield
            finally:
                self._tls.gc = None
        finally:
            os.close(fd)

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` result ("ok" when sound)."""
        return str(self.query("PRAGMA integrity_check")[0][0])

    # -- images ----------------------------------------------------------------------------------

    def put_image(self, name: str, descriptor: Descriptor, labels: Mapping[str, str] | None = None) -> ImageRecord:
        """Create or update the image record ``name`` (created_at kept on update)."""
        if not name:
            raise InvalidArgument("image name must not be empty")
        digests.validate(descriptor.digest)
        now = time.time()
        with self.transaction() as tx:
            tx.execute(
                "INSERT INTO images(name, target_media_type, target_digest, target_size, created_at, updated_at,"
                " labels) VALUES (?,?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET"
                " target_media_type=excluded.target_media_type, target_digest=excluded.target_digest,"
                " target_size=excluded.target_size, updated_at=excluded.updated_at, labels=excluded.labels",
                (name, descriptor.media_type, descriptor.digest, descriptor.size, now, now, _labels_json(labels)))
        return self.get_image(name)

    def get_image(self, name: str) -> ImageRecord:
        rows = self.query(_IMAGE_SELECT + " WHERE name=?", (name,))
        if not rows:
            raise NotFound(f"image {name!r} not found", id=name)
        return _image_record(rows[0])

    def list_images(self) -> list[ImageRecord]:
        return [_image_record(r) for r in self.query(_IMAGE_SELECT + " ORDER BY name")]

    def images_by_digest(self, target_digest: str) -> list[ImageRecord]:
        """Every record whose target is ``target_digest`` (names of one image)."""
        return [_image_record(r) for r in self.query(_IMAGE_SELECT + " WHERE target_digest=? ORDER BY name",
                                                     (target_digest,))]

    def delete_image(self, name: str) -> None:
        with self.transaction() as tx:
            if tx.execute("DELETE FROM images WHERE name=?", (name,)).rowcount == 0:
                raise NotFound(f"image {name!r} not found", id=name)

    # -- content labels --------------------------------------------------------------------------

    def content_labels(self, d: str) -> dict[str, str]:
        return {str(k): str(v) for k, v in self.query("SELECT key, value FROM content_labels WHERE digest=?", (d,))}

    def all_content_labels(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for d, k, v in self.query("SELECT digest, key, value FROM content_labels"):
            out.setdefault(str(d), {})[str(k)] = str(v)
        return out

    def set_content_labels(self, d: str, labels: Mapping[str, str]) -> None:
        """Replace the labels of blob ``d``."""
        with self.transaction() as tx:
            tx.execute("DELETE FROM content_labels WHERE digest=?", (d,))
            for k, v in labels.items():
                tx.execute("INSERT INTO content_labels(digest, key, value) VALUES (?,?,?)", (d, k, str(v)))

    def delete_content_labels(self, d: str) -> None:
        with self.transaction() as tx:
            tx.execute("DELETE FROM content_labels WHERE digest=?", (d,))


class Transaction:
    """The handle a ``Metadata.transaction()`` block writes through."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, params)

    def executescript_in_tx(self, script: str) -> None:
        """Run several ';'-separated DDL statements inside the current transaction."""
        for stmt in script.split(";"):
            if stmt.strip():
                self._conn.execute(stmt)


_IMAGE_SELECT = ("SELECT name, target_media_type, target_digest, target_size, created_at, updated_at, labels"
                 " FROM images")


def _image_record(row: tuple[object, ...]) -> ImageRecord:
    name, mtype, dg, size, created, updated, labels = row
    return ImageRecord(name=str(name), target=Descriptor(str(mtype), str(dg), int(size)),  # type: ignore[call-overload]
                       created_at=float(created), updated_at=float(updated),  # type: ignore[arg-type]
                       labels=json.loads(str(labels)))
