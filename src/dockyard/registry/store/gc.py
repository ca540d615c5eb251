"""Online garbage collection: mark every blob a manifest revision needs, sweep the rest of ``blobs/``.

Like distribution's ``registry garbage-collect`` (mark: every revision of every
repository marks itself, its config and layers, an index its children; sweep:
unmarked data under ``blobs/`` goes, with the repositories' ``_layers`` links to
it), but ONLINE: pushes and pulls go on meanwhile, in this process and in other
processes sharing the storage.  ``remove_untagged`` also removes revisions no tag
reaches (directly, as an index child, or as a referrer of a kept manifest).

Why no race loses data
----------------------
GC starts by writing a probe file; its mtime ``t0`` is the storage's clock and
``cutoff = t0 - grace``.  Anything written at or after ``cutoff`` is *young*.
The writers keep three rules (store/uploads.py, manifests.py, registry.py):

W1 finish_upload writes the repository's ``_layers`` link BEFORE committing the data;
   mount_blob writes the link, then re-checks the data (else "upload it instead").
W2 put_manifest checks its references are linked, writes its revision link, then
   RE-WRITES every reference's link (fresh mtime), and only THEN verifies their data
   exists; if not, it removes the new revision and fails with MANIFEST_BLOB_UNKNOWN.
W3 a tag PUT re-checks its revision after setting the tag and stores it again if an
   untagged-removal took it meanwhile.

GC deletes a blob B only if B is unmarked, its data is older than ``cutoff``, and,
checked AFTER B's data was moved aside into GC's trash (so B is invisible while
checked), no repository has a revision link to B and every ``_layers`` link to B
is older than ``cutoff``; otherwise B is moved back.  Take a manifest PUT naming B,
re-link at ``tr``, verify at ``tv`` (``tr < tv``); GC moves B aside at ``tm`` and
checks the links at ``tb > tm``:

* ``tv > tm``: the verify runs while B is aside or gone -> the PUT fails cleanly,
  or B was moved back and the PUT succeeds with B present.
* ``tv < tm``: then ``tr < tb``.  If ``tr >= t0`` GC sees a young link and keeps B.
  If ``tr < t0`` the revision link (written before ``tr``) existed when the mark
  phase (after ``t0``) listed revisions, so B is marked.

Uploads in flight live in ``_uploads`` (never swept; upload purging ages them out);
W1 makes a just-finished upload young through its link even when the committed
data is old, and a re-upload of a blob being swept simply re-creates it.  The
``_layers`` links of a swept blob are removed only if still older than ``cutoff``.
Revisions are removed the same way (moved aside, re-checked for a tag, a young
link or a re-created link, then deleted or restored-and-marked).  The grace period
adds margin on top: a blob uploaded for a manifest not pushed yet survives if
its upload ended less than ``grace`` before GC began.  A GC that dies leaves its
trash under ``_dockyard_gc/``; the next GC puts that back where it came from.
Known limit: on drivers whose move does not keep mtimes (S3 copies), a revision's
age is read just before it is moved aside, a window of one request.
"""

from __future__ import annotations

import logging
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any

from dockyard.registry.storage.driver import PathNotFound, StorageDriver
from dockyard.registry.store import gc_mark, paths

log = logging.getLogger("dockyard.registry.gc")
GC_DIR = "_dockyard_gc"
STALE_RUN = 3600.0  # another GC's trash older than this is from a GC that died: put it back


@dataclass
class GcReport:
    """What a collection removed (or, in a dry run, would remove)."""

    dry_run: bool = False
    blobs: list[str] = field(default_factory=list)
    manifests: list[tuple[str, str]] = field(default_factory=list)   # (repository, digest)
    bytes: int = 0
    links: int = 0            # _layers links removed with swept blobs
    kept_young: int = 0       # unmarked blobs kept because young or re-linked during the sweep
    marked: int = 0

    def summary(self) -> str:
        verb = "eligible for deletion" if self.dry_run else "deleted"
        return (f"{len(self.blobs)} blobs and {len(self.manifests)} manifests {verb}, {self.bytes} bytes, "
                f"{self.marked} blobs marked, {self.kept_young} unmarked kept as young")


def _driver_of(target: Any) -> StorageDriver:
    return target if isinstance(target, StorageDriver) else target.driver


async def collect(registry_or_driver: Any, *, grace: float = 3600.0, remove_untagged: bool = False,
                  dry_run: bool = False) -> GcReport:
    """Mark and sweep the registry's storage while it keeps serving; see the module docstring."""
    gc = _Collector(_driver_of(registry_or_driver), grace, remove_untagged, dry_run)
    return await gc.run()


class _Collector:
    def __init__(self, driver: StorageDriver, grace: float, remove_untagged: bool, dry_run: bool) -> None:
        self.driver = driver
        self.grace = grace
        self.remove_untagged = remove_untagged
        self.report = GcReport(dry_run=dry_run)
        self.run_dir = f"{GC_DIR}/{uuidlib.uuid4().hex}"
        self.keeps_mtime = driver.name in ("filesystem", "inmemory")
        self.cutoff = 0.0
        self._repos: list[str] = []
        self.t0 = 0.0
        self._n = 0

    async def run(self) -> GcReport:
        self.t0 = await self._clock()
        self.cutoff = self.t0 - self.grace
        try:
            if not self.report.dry_run:
                await self._recover_stale()
            state = await gc_mark.mark(self.driver, self.cutoff, self.remove_untagged)
            for repo, d in state.removable:
                await self._remove_revision(state, repo, d)
            self.report.marked = len(state.marked)
            self._repos = await gc_mark.repositories(self.driver)
            for d in await gc_mark.all_blobs(self.driver):
                if d not in state.marked:
                    await self._sweep(d)
        finally:
            await self._delete(self.run_dir)
        log.info("garbage collection: %s", self.report.summary())
        return self.report

    async def _clock(self) -> float:
        """The storage's idea of now: the mtime of a probe file (no writes in a dry run)."""
        if self.report.dry_run:
            return time.time()
        probe = f"{self.run_dir}/clock"
        await self.driver.put(probe, repr(time.time()).encode())
        info = await self.driver.stat(probe)
        return info.mtime if info is not None else time.time()

    # --- trash ----------------------------------------------------------------

    async def _aside(self, path: str) -> str | None:
        """Move ``path`` into this run's trash (recording where it came from); None if it is gone."""
        self._n += 1
        slot = f"{self.run_dir}/trash/{self._n}"
        await self.driver.put(f"{slot}/origin", path.encode())
        try:
            await self.driver.move(path, f"{slot}/item")
        except PathNotFound:
            await self._delete(slot)
            return None
        return slot

    async def _put_back(self, slot: str) -> None:
        """Restore a trash slot to its origin unless something new is there already."""
        origin = (await self.driver.get(f"{slot}/origin")).decode()
        if await self.driver.stat(origin) is None:
            try:
                await self.driver.move(f"{slot}/item", origin)
            except PathNotFound:
                pass
        await self._delete(slot)

    async def _delete(self, path: str) -> None:
        try:
            await self.driver.delete(path)
        except PathNotFound:
            pass

    async def _recover_stale(self) -> None:
        """Put back the trash of GCs that died (their clock is older than STALE_RUN)."""
        try:
            runs = await self.driver.list(GC_DIR)
        except PathNotFound:
            return
        for run in runs:
            run_dir = f"{GC_DIR}/{run}"
            if run_dir == self.run_dir:
                continue
            info = await self.driver.stat(f"{run_dir}/clock")
            if info is not None and info.mtime > self.t0 - STALE_RUN:
                continue  # another GC is running right now
            try:
                slots = await self.driver.list(f"{run_dir}/trash")
            except PathNotFound:
                slots = []
            for slot in slots:
                try:
                    await self._put_back(f"{run_dir}/trash/{slot}")
                except PathNotFound:
                    continue
            log.warning("garbage collection: recovered the trash of an interrupted run %s", run)
            await self._delete(run_dir)

    # --- untagged revisions ---------------------------------------------------

    async def _remove_revision(self, state: gc_mark.MarkState, repo: str, d: str) -> None:
        if self.report.dry_run:
            log.info("manifest eligible for deletion: %s@%s", repo, d)
            self.report.manifests.append((repo, d))
            return
        link = paths.revision_link(repo, d)
        before = await self.driver.stat(link)
        if before is None:
            return
        slot = await self._aside(paths.revision_dir(repo, d))
        if slot is None:
            return
        moved = await self.driver.stat(f"{slot}/item/link")
        mtime = max(before.mtime, moved.mtime if moved is not None and self.keeps_mtime else 0.0)
        reborn = await self.driver.stat(link) is not None
        if mtime >= self.cutoff or reborn or await gc_mark.tags_pointing(self.driver, repo, d):
            await self._put_back(slot)
            await gc_mark.mark_revision(self.driver, state, repo, d)
            return
        await self._delete(slot)
        await gc_mark.drop_referrer_entry(self.driver, state, repo, d)
        log.info("manifest deleted: %s@%s", repo, d)
        self.report.manifests.append((repo, d))

    # --- blobs ----------------------------------------------------------------

    async def _sweep(self, d: str) -> None:
        info = await self.driver.stat(paths.blob_data(d))
        if info is None or info.is_dir:
            return
        if info.mtime >= self.cutoff or await self._in_use(d, self._repos):
            self.report.kept_young += 1
            return
        if self.report.dry_run:
            log.info("blob eligible for deletion: %s", d)
            self._count(d, info.size)
            return
        slot = await self._aside(paths.blob_dir(d) if self.keeps_mtime else paths.blob_data(d))
        if slot is None:
            return
        if await self._in_use(d, await gc_mark.repositories(self.driver)):  # re-listed: new ones count
            self.report.kept_young += 1
            await self._put_back(slot)
            return
        await self._delete(slot)
        log.info("blob deleted: %s", d)
        self._count(d, info.size)
        await self._unlink_everywhere(d)

    def _count(self, d: str, size: int) -> None:
        self.report.blobs.append(d)
        self.report.bytes += size

    async def _in_use(self, d: str, repos: list[str]) -> bool:
        """A revision link to ``d`` in ``repos``, or a ``_layers`` link younger than the cutoff."""
        for repo in repos:
            if await self.driver.stat(paths.revision_link(repo, d)) is not None:
                return True
            link = await self.driver.stat(paths.layer_link(repo, d))
            if link is not None and link.mtime >= self.cutoff:
                return True
        return False

    async def _unlink_everywhere(self, d: str) -> None:
        """Remove the (old) ``_layers`` links of a swept blob; young ones belong to a re-upload."""
        for repo in await gc_mark.repositories(self.driver):
            link = await self.driver.stat(paths.layer_link(repo, d))
            if link is None or link.mtime >= self.cutoff:
                continue
            try:
                await self.driver.delete(paths.layer_link_dir(repo, d))
                self.report.links += 1
            except PathNotFound:
                pass


def report_lines(report: GcReport) -> list[str]:
    """distribution-like output of ``garbage-collect``."""
    lines = [f"{repo}: manifest eligible for deletion: {d}" for repo, d in report.manifests]
    lines += [f"blob eligible for deletion: {d}" for d in report.blobs]
    lines.append(report.summary())
    return lines


__all__ = ["GcReport", "collect", "report_lines"]
