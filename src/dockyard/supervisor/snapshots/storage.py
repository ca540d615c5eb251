"""A snapshotter's records in its own SQLite file (WAL, one transaction per change).

Each snapshot has a numeric id naming its directory, so `commit` (which renames
a key) never moves files. ``parent`` stores the parent's key; removing a
snapshot with children is refused by a foreign key-like check in the same
transaction.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from typing import Iterator, Mapping

from ...errors import Conflict, NotFound
from .types import Kind, SnapshotInfo

_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    parent TEXT,
    labels TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    size INTEGER NOT NULL DEFAULT -1,
    inodes INTEGER NOT NULL DEFAULT -1
);
CREATE INDEX IF NOT EXISTS snapshots_parent ON snapshots(parent);
"""


class Record:
    """A row: the public info plus the directory id and cached usage."""

    __slots__ = ("id", "info", "size", "inodes")

    def __init__(self, id: int, info: SnapshotInfo, size: int, inodes: int) -> None:
        self.id, self.info, self.size, self.inodes = id, info, size, inodes


class Store:
    """The snapshot table. ``synchronous=FULL``: a commit acknowledged is a commit kept."""

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._lock = threading.RLock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT (rolled back on error); serialises writers across processes."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def get(self, key: str, db: sqlite3.Connection | None = None) -> Record:
        with self._lock:
            row = (db or self._db).execute("SELECT * FROM snapshots WHERE key=?", (key,)).fetchone()
        if row is None:
            raise NotFound(f"snapshot {key!r} not found", id=key)
        return _record(row)

    def insert(self, db: sqlite3.Connection, key: str, kind: Kind, parent: str | None,
               labels: Mapping[str, str] | None) -> int:
        now = time.time()
        try:
            cur = db.execute("INSERT INTO snapshots(key, kind, parent, labels, created_at, updated_at) "
                             "VALUES (?, ?, ?, ?, ?, ?)", (key, kind.value, parent, json.dumps(dict(labels or {})),
                                                          now, now))
        except sqlite3.IntegrityError as e:
            raise Conflict(f"snapshot {key!r} already exists", id=key) from e
        assert cur.lastrowid is not None
        return cur.lastrowid

    def has_children(self, db: sqlite3.Connection, key: str) -> bool:
        return db.execute("SELECT 1 FROM snapshots WHERE parent=? LIMIT 1", (key,)).fetchone() is not None

    def all(self) -> list[Record]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM snapshots ORDER BY id").fetchall()
        return [_record(r) for r in rows]


def _record(row: tuple[object, ...]) -> Record:
    id_, key, kind, parent, labels, created, updated, size, inodes = row
    info = SnapshotInfo(str(key), Kind(kind), parent if parent is None else str(parent),
                        json.loads(str(labels)), float(created), float(updated))  # type: ignore[arg-type]
    return Record(int(id_), info, int(size), int(inodes))  # type: ignore[call-overload]
