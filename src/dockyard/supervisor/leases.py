"""Leases: named holds that protect content, ingests and snapshots from GC while work is in flight.

A pull or load creates a lease, adds each blob and snapshot it writes (the
content store does this on commit when given ``lease=``), records the image,
then deletes the lease; everything the image references is then protected by
the image record itself. A lease with ``expires_at`` in the past is removed by GC.

Resource kinds follow containerd: ``content`` (key: digest), ``ingests``
(key: ref) and ``snapshots/<snapshotter>`` (key: snapshot key).
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from dockyard.errors import Conflict, InvalidArgument, NotFound

from .metadata import Metadata

CONTENT = "content"
INGESTS = "ingests"
SNAPSHOTS_PREFIX = "snapshots/"


def snapshots_kind(snapshotter: str) -> str:
    """The resource kind of snapshots of ``snapshotter`` ("snapshots/overlayfs")."""
    return SNAPSHOTS_PREFIX + snapshotter


@dataclass(frozen=True)
class Lease:
    id: str
    created_at: float
    expires_at: float | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Resource:
    kind: str
    key: str


class LeaseManager:
    """Create, list and delete leases and their resources in the metadata database."""

    def __init__(self, metadata: Metadata) -> None:
        self.metadata = metadata

    def create(self, id: str | None = None, expires_in: float | None = None,
               labels: Mapping[str, str] | None = None) -> Lease:
        """A new lease (a random id unless given); Conflict if ``id`` exists."""
        lease_id = id or f"lease-{uuid.uuid4().hex}"
        now = time.time()
        expires = now + expires_in if expires_in is not None else None
        try:
            with self.metadata.transaction() as tx:
                tx.execute("INSERT INTO leases(id, created_at, expires_at, labels) VALUES (?,?,?,?)",
                           (lease_id, now, expires, json.dumps(dict(labels or {}), sort_keys=True)))
        except sqlite3.IntegrityError as e:
            raise Conflict(f"lease {lease_id!r} already exists", id=lease_id) from e
        return Lease(lease_id, now, expires, dict(labels or {}))

    def get(self, id: str) -> Lease:
        rows = self.metadata.query("SELECT id, created_at, expires_at, labels FROM leases WHERE id=?", (id,))
        if not rows:
            raise NotFound(f"lease {id!r} not found", id=id)
        return _lease(rows[0])

    def list(self) -> list[Lease]:
        return [_lease(r) for r in self.metadata.query(
            "SELECT id, created_at, expires_at, labels FROM leases ORDER BY created_at, id")]

    def delete(self, id: str) -> None:
        """Delete the lease and its resources (which GC may then collect); NotFound if absent."""
        with self.metadata.transaction() as tx:
            if tx.execute("DELETE FROM leases WHERE id=?", (id,)).rowcount == 0:
                raise NotFound(f"lease {id!r} not found", id=id)

    def delete_expired(self, now: float | None = None) -> builtins.list[str]:
        """Delete leases whose expiry has passed; their ids."""
        now = time.time() if now is None else now
        with self.metadata.transaction() as tx:
            ids = [str(r[0]) for r in tx.execute("SELECT id FROM leases WHERE expires_at IS NOT NULL AND "
                                                 "expires_at <= ?", (now,)).fetchall()]
            tx.execute("DELETE FROM leases WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,))
        return ids

    def add_resource(self, lease_id: str, kind: str, key: str) -> None:
        """Protect ``key`` of ``kind`` by the lease (idempotent); NotFound if the lease does not exist."""
        if not kind or not key:
            raise InvalidArgument(f"lease {lease_id!r}: resource kind and key must not be empty", id=lease_id)
        with self.metadata.transaction() as tx:
            if not tx.execute("SELECT 1 FROM leases WHERE id=?", (lease_id,)).fetchone():
                raise NotFound(f"lease {lease_id!r} not found", id=lease_id)
            tx.execute("INSERT OR IGNORE INTO lease_resources(lease_id, kind, key) VALUES (?,?,?)",
                       (lease_id, kind, key))

    def remove_resource(self, lease_id: str, kind: str, key: str) -> None:
        with self.metadata.transaction() as tx:
            tx.execute("DELETE FROM lease_resources WHERE lease_id=? AND kind=? AND key=?", (lease_id, kind, key))

    def resources(self, lease_id: str | None = None) -> builtins.list[Resource]:
        """The resources of one lease, or of all leases when ``lease_id`` is None."""
        if lease_id is None:
            rows = self.metadata.query("SELECT DISTINCT kind, key FROM lease_resources ORDER BY kind, key")
        else:
            rows = self.metadata.query("SELECT kind, key FROM lease_resources WHERE lease_id=? ORDER BY kind, key",
                                       (lease_id,))
        return [Resource(str(k), str(v)) for k, v in rows]

    @contextmanager
    def lease(self, id: str | None = None, expires_in: float | None = None,
              labels: Mapping[str, str] | None = None) -> Iterator[Lease]:
        """``with lm.lease() as lease:`` -- the lease is deleted on exit (also on error)."""
        lease = self.create(id, expires_in, labels)
        try:
            yield lease
        finally:
            try:
                self.delete(lease.id)
            except NotFound:
                pass


def _lease(row: tuple[object, ...]) -> Lease:
    lid, created, expires, labels = row
    return Lease(str(lid), float(created), float(expires) if expires is not None else None,  # type: ignore[arg-type]
                 json.loads(str(labels)))
