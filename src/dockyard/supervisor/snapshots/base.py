"""What both snapshotters share: records, directories, the prepare/commit/remove life cycle.

On-disk tree of one snapshotter (``<root>/snapshots/<name>/`` in a supervisor root)::

    <root>/
      metadata.db          SQLite (WAL, synchronous=FULL): the snapshots table (storage.py)
      snapshots/<id>/fs    a snapshot's tree (overlay: its upper dir / layer; native: a full copy)
      snapshots/<id>/work  overlayfs workdir (overlay only)
      tmp/                 directories being created or removed; emptied on open

A new snapshot's directory is built under tmp/ and renamed to snapshots/<id>
inside the transaction that inserts its row, so after a crash there is never a
row without a directory; directories without a row are removed on open.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
import stat
import tempfile
import time
from typing import Iterator, Mapping

from ...errors import Conflict, InvalidArgument, NotFound
from .storage import Record, Store
from .types import Kind, Mount, SnapshotInfo, Usage


class BaseSnapshotter:
    """The life cycle; subclasses say how a directory is populated and mounted."""

    name = "base"
    # Whether a layer's directory is independent of its parent's (overlay), so that layers can be
    # applied into parentless snapshots concurrently and given their parent at commit.
    detached_layers = False

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self._snapshots = os.path.join(self.root, "snapshots")
        self._tmp = os.path.join(self.root, "tmp")
        os.makedirs(self._snapshots, 0o711, exist_ok=True)
        os.makedirs(self._tmp, 0o700, exist_ok=True)
        self.store = Store(os.path.join(self.root, "metadata.db"))
        self._clean()

    def close(self) -> None:
        """Close the database (directories stay)."""
        self.store.close()

    # -- the interface ------------------------------------------------------------------------

    def prepare(self, key: str, parent: str | None = None, labels: Mapping[str, str] | None = None) -> list[Mount]:
        """A new writable snapshot ``key`` on top of the committed ``parent``; its mounts."""
        return self._create(Kind.ACTIVE, key, parent, labels)

    def view(self, key: str, parent: str | None, labels: Mapping[str, str] | None = None) -> list[Mount]:
        """A new read-only snapshot ``key`` of the committed ``parent``; its mounts."""
        return self._create(Kind.VIEW, key, parent, labels)

    def mounts(self, key: str) -> list[Mount]:
        """The mounts of the active or view snapshot ``key`` (NotFound)."""
        rec = self.store.get(key)
        if rec.info.kind is Kind.COMMITTED:
            raise InvalidArgument(f"snapshot {key!r} is committed: view or prepare on top of it", id=key)
        return self._mounts(rec, self._parents(rec))

    def commit(self, name: str, key: str, labels: Mapping[str, str] | None = None, *,
               parent: str | None = None) -> None:
        """Make the active snapshot ``key`` the immutable ``name`` (Conflict if ``name`` exists).

        ``parent`` (only where `detached_layers`): ``key`` was prepared without a parent and
        becomes a child of the committed ``parent`` now; how layers are unpacked in parallel.
        """
        if parent is not None and not self.detached_layers:
            raise InvalidArgument(f"{self.name} snapshots cannot change parent at commit", id=key)
        rec = self.store.get(key)
        if rec.info.kind is not Kind.ACTIVE:
            raise Conflict(f"snapshot {key!r} is not active, cannot commit it", id=key)
        usage = disk_usage(self._fs(rec.id))
        with self.store.transaction() as db:
            rec = self.store.get(key, db)
            if rec.info.kind is not Kind.ACTIVE:
                raise Conflict(f"snapshot {key!r} is not active, cannot commit it", id=key)
            if db.execute("SELECT 1 FROM snapshots WHERE key=?", (name,)).fetchone():
                raise Conflict(f"snapshot {name!r} already exists", id=name)
            new_labels = dict(rec.info.labels if labels is None else labels)
            new_parent = rec.info.parent
            if parent is not None:
                if rec.info.parent is not None:
                    raise InvalidArgument(f"snapshot {key!r} already has parent {rec.info.parent!r}", id=key)
                if self.store.get(parent, db).info.kind is not Kind.COMMITTED:
                    raise InvalidArgument(f"parent {parent!r} of {name!r} is not committed", id=parent)
                new_parent = parent
            db.execute("UPDATE snapshots SET key=?, kind=?, parent=?, labels=?, updated_at=?, size=?, inodes=? "
                       "WHERE id=?", (name, Kind.COMMITTED.value, new_parent, json.dumps(new_labels), time.time(),
                                      usage.size, usage.inodes, rec.id))

    def remove(self, key: str) -> None:
        """Remove ``key`` (NotFound; Conflict while other snapshots have it as parent)."""
        doomed = tempfile.mkdtemp(dir=self._tmp, prefix="rm-")
        os.rmdir(doomed)
        with self.store.transaction() as db:
            rec = self.store.get(key, db)
            if self.store.has_children(db, key):
                raise Conflict(f"snapshot {key!r} has children, remove them first", id=key)
            db.execute("DELETE FROM snapshots WHERE id=?", (rec.id,))
            os.rename(self._dir(rec.id), doomed)
        _rmtree(doomed)

    def stat(self, key: str) -> SnapshotInfo:
        """The record of ``key`` (NotFound)."""
        return self.store.get(key).info

    def walk(self) -> Iterator[SnapshotInfo]:
        """Every snapshot, oldest first."""
        for rec in self.store.all():
            yield rec.info

    def usage(self, key: str) -> Usage:
        """Bytes and inodes of ``key``'s own layer (cached for committed snapshots)."""
        rec = self.store.get(key)
        if rec.info.kind is Kind.COMMITTED and rec.size >= 0:
            return Usage(rec.size, rec.inodes)
        return disk_usage(self._fs(rec.id))

    def upper_dir(self, key: str) -> str:
        """The writable directory of the active snapshot ``key`` (where a layer is applied)."""
        rec = self.store.get(key)
        if rec.info.kind is not Kind.ACTIVE:
            raise InvalidArgument(f"snapshot {key!r} is {rec.info.kind.value}, not active", id=key)
        return self._fs(rec.id)

    def parents(self, key: str) -> list[str]:
        """Directories of ``key``'s ancestors, nearest first (a diff's lower dirs)."""
        return [self._fs(r.id) for r in self._parents(self.store.get(key))]

    # -- for subclasses ---------------------------------------------------------------------------

    def _populate(self, tmp: str, kind: Kind, parents: list[Record]) -> None:
        raise NotImplementedError

    def _mounts(self, rec: Record, parents: list[Record]) -> list[Mount]:
        raise NotImplementedError

    def _dir(self, id: int) -> str:
        return os.path.join(self._snapshots, str(id))

    def _fs(self, id: int) -> str:
        return os.path.join(self._snapshots, str(id), "fs")

    # -- internals --------------------------------------------------------------------------------

    def _create(self, kind: Kind, key: str, parent: str | None, labels: Mapping[str, str] | None) -> list[Mount]:
        if not key:
            raise InvalidArgument("snapshot key must not be empty")
        try:
            self.store.get(key)
            raise Conflict(f"snapshot {key!r} already exists", id=key)
        except NotFound:
            pass
        parents = self._committed_chain(parent, key)
        tmp = tempfile.mkdtemp(dir=self._tmp, prefix="new-")
        busy = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(busy, fcntl.LOCK_EX)  # tells `_clean` in other processes: in use
        try:
            os.chmod(tmp, 0o700)
            self._populate(tmp, kind, parents)  # outside the transaction: copies can be long
            with self.store.transaction() as db:
                if parent:
                    self._committed_chain(parent, key, db)  # still there?
                id_ = self.store.insert(db, key, kind, parent, labels)
                os.rename(tmp, self._dir(id_))
        except BaseException:
            _rmtree(tmp)
            raise
        finally:
            os.close(busy)
        return self.mounts(key)

    def _committed_chain(self, parent: str | None, key: str, db: sqlite3.Connection | None = None) -> list[Record]:
        if not parent:
            return []
        prec = self.store.get(parent, db)
        if prec.info.kind is not Kind.COMMITTED:
            raise InvalidArgument(f"parent {parent!r} of {key!r} is not committed", id=parent)
        return [prec] + self._parents(prec)

    def _parents(self, rec: Record) -> list[Record]:
        out: list[Record] = []
        parent = rec.info.parent
        while parent:
            p = self.store.get(parent)
            out.append(p)
            parent = p.info.parent
        return out

    def _clean(self) -> None:
        """Remove leftovers of crashed operations: tmp/ contents and directories without a row."""
        with self.store.transaction():
            ids = {str(r.id) for r in self.store.all()}
            for name in os.listdir(self._snapshots):
                if name not in ids:
                    _rmtree(os.path.join(self._snapshots, name))
            for name in os.listdir(self._tmp):
                path = os.path.join(self._tmp, name)
                if name.startswith("rm-") or (name.startswith("new-") and not _locked(path)):
                    _rmtree(path)


def disk_usage(path: str) -> Usage:
    """du(1) of ``path``: allocated bytes and inodes, hardlinked inodes counted once."""
    seen: set[tuple[int, int]] = set()
    size = inodes = 0
    stack = [path]
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except FileNotFoundError:
            continue
        with it:
            for e in it:
                st = e.stat(follow_symlinks=False)
                if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
                    if (st.st_dev, st.st_ino) in seen:
                        continue
                    seen.add((st.st_dev, st.st_ino))
                size += st.st_blocks * 512
                inodes += 1
                if stat.S_ISDIR(st.st_mode):
                    stack.append(e.path)
    return Usage(size, inodes)


def _locked(path: str) -> bool:
    """Whether another process holds the flock of the directory ``path`` (a prepare under way)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _rmtree(path: str) -> None:
    if os.path.lexists(path):
        shutil.rmtree(path, ignore_errors=True)
