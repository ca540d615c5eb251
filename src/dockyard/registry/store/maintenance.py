"""Background maintenance in the serving process: upload purging and online GC on intervals.

``storage.maintenance`` (distribution's names; ``gc`` is Dockyard's)::

    uploadpurging: {enabled: true, age: 168h, interval: 24h, dryrun: false}
    gc:            {enabled: false, interval: 24h, graceperiod: 1h, dryrun: false}

Upload purging removes ``_uploads`` sessions started more than ``age`` ago (like
distribution, the first run comes after a random delay, here up to a minute, then
every ``interval``).  GC (store/gc.py) runs every ``interval`` while the server
keeps serving.  ``run_gc_command`` is the body of ``dockyard-registry garbage-collect``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.registry.durations import parse_duration
from dockyard.registry.storage.driver import PathNotFound, StorageDriver
from dockyard.registry.store import gc, gc_mark, paths

log = logging.getLogger("dockyard.registry.maintenance")
HOUR = 3600.0


@dataclass
class PurgeSettings:
    enabled: bool = True
    age: float = 168 * HOUR
    interval: float = 24 * HOUR
    dry_run: bool = False


@dataclass
class GcSettings:
    enabled: bool = False
    interval: float = 24 * HOUR
    grace: float = HOUR
    dry_run: bool = False


@dataclass
class MaintenanceSettings:
    purging: PurgeSettings = field(default_factory=PurgeSettings)
    gc: GcSettings = field(default_factory=GcSettings)


def _bool(section: dict[str, Any], key: str, default: bool, where: str) -> bool:
    value = section.get(key, default)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise InvalidArgument(f"configuration: {where}.{key} must be true or false, got {value!r}")
    return value


def _duration(section: dict[str, Any], key: str, default: float, where: str, minimum: float) -> float:
    if key not in section:
        return default
    seconds = parse_duration(section[key], f"{where}.{key}")
    if seconds < minimum:
        raise InvalidArgument(f"configuration: {where}.{key} must be at least {minimum:g}s, got {section[key]!r}")
    return seconds


def _section(raw: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"configuration: {where} must be a mapping")
    return value


def parse_maintenance(raw: dict[str, Any] | None) -> MaintenanceSettings:
    """Settings from the raw ``storage.maintenance`` section (errors name the key path)."""
    raw = raw or {}
    p = _section(raw, "uploadpurging", "storage.maintenance.uploadpurging")
    where = "storage.maintenance.uploadpurging"
    purging = PurgeSettings(_bool(p, "enabled", True, where), _duration(p, "age", 168 * HOUR, where, 0),
                            _duration(p, "interval", 24 * HOUR, where, 1), _bool(p, "dryrun", False, where))
    g = _section(raw, "gc", "storage.maintenance.gc")
    where = "storage.maintenance.gc"
    gcs = GcSettings(_bool(g, "enabled", False, where), _duration(g, "interval", 24 * HOUR, where, 1),
                     _duration(g, "graceperiod", HOUR, where, 0), _bool(g, "dryrun", False, where))
    return MaintenanceSettings(purging, gcs)


async def _started_at(driver: StorageDriver, repo: str, uuid: str) -> float | None:
    """When an upload began: its ``startedat`` file, else the session directory's mtime."""
    try:
        return float((await driver.get(paths.upload_started(repo, uuid))).decode().strip())
    except (PathNotFound, ValueError, UnicodeDecodeError):
        info = await driver.stat(paths.upload_dir(repo, uuid))
        return info.mtime if info is not None else None


async def purge_uploads(driver: StorageDriver, *, age: float, dry_run: bool = False,
                        now: float | None = None) -> list[str]:
    """Remove upload sessions older than ``age`` seconds; their "repo/uuid" names."""
    limit = (time.time() if now is None else now) - age
    purged = []
    for repo in await gc_mark.repositories(driver):
        try:
            uuids = await driver.list(f"{paths.repo_dir(repo)}/_uploads")
        except PathNotFound:
            continue
        for uuid in uuids:
            started = await _started_at(driver, repo, uuid)
            if started is None or started >= limit:
                continue
            purged.append(f"{repo}/{uuid}")
            if dry_run:
                log.info("upload eligible for purging: %s/%s", repo, uuid)
                continue
            with contextlib.suppress(PathNotFound):
                await driver.delete(paths.upload_dir(repo, uuid))
            log.info("upload purged: %s/%s", repo, uuid)
    return purged


class Maintenance:
    """The background tasks of one serving process: ``start()`` inside the loop, ``await stop()``."""

    def __init__(self, registry_or_driver: Any, settings: MaintenanceSettings, *,
                 purge_delay: float | None = None, gc_delay: float | None = None) -> None:
        self.driver: StorageDriver = gc._driver_of(registry_or_driver)
        self.settings = settings
        p = settings.purging
        self.purge_delay = purge_delay if purge_delay is not None else random.uniform(0, min(60.0, p.interval))
        self.gc_delay = gc_delay if gc_delay is not None else settings.gc.interval
        self.tasks: list[asyncio.Task[None]] = []
        self.gc_reports: list[gc.GcReport] = []
        self.purged: list[str] = []

    def start(self) -> None:
        """Start the enabled loops (call from within the running event loop)."""
        if self.settings.purging.enabled:
            self.tasks.append(asyncio.create_task(
                self._loop("upload purging", self.purge_delay, self.settings.purging.interval, self.purge_once)))
        if self.settings.gc.enabled:
            self.tasks.append(asyncio.create_task(
                self._loop("garbage collection", self.gc_delay, self.settings.gc.interval, self.gc_once)))

    async def stop(self) -> None:
        """Cancel the loops and wait for them (a GC in progress stops between storage calls)."""
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()

    async def purge_once(self) -> None:
        p = self.settings.purging
        self.purged += await purge_uploads(self.driver, age=p.age, dry_run=p.dry_run)

    async def gc_once(self) -> None:
        g = self.settings.gc
        self.gc_reports.append(await gc.collect(self.driver, grace=g.grace, dry_run=g.dry_run))

    @staticmethod
    async def _loop(what: str, delay: float, interval: float, job: Any) -> None:
        await asyncio.sleep(delay)
        while True:
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:  # a failed run must not end the loop; the next may succeed
                log.exception("%s failed", what)
            await asyncio.sleep(interval)


def run_gc_command(config: Any, args: argparse.Namespace) -> int:
    """``dockyard-registry garbage-collect [--dry-run] [--delete-untagged] CONFIG``: one collection.

    Safe while servers run on the same storage; grace is storage.maintenance.gc.graceperiod
    (default 1h) unless ``args.grace`` (a duration string) is given.
    """
    from dockyard.registry.cli import make_driver

    settings = parse_maintenance(getattr(config, "maintenance", None))
    grace_arg = getattr(args, "grace", None)
    grace = settings.gc.grace if grace_arg is None else parse_duration(grace_arg, "--grace")
    report = asyncio.run(gc.collect(make_driver(config), grace=grace,
                                    remove_untagged=bool(getattr(args, "delete_untagged", False)),
                                    dry_run=bool(getattr(args, "dry_run", False))))
    for line in gc.report_lines(report):
        print(line)
    return 0
