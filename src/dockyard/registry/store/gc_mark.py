"""GC's mark phase and the storage walks it needs (see store/gc.py for the whole argument).

Every revision of every repository marks itself and its references (config, layers,
an index's children).  With ``remove_untagged`` a repository's revisions are kept
only when reachable from a tag (as the target, an index child, or a referrer of a
kept manifest) or young (revision link written at or after the cutoff: a push in
progress); the others are returned as removable and mark nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dockyard.oci import digest as digests
from dockyard.registry import errors
from dockyard.registry.storage.driver import PathNotFound, StorageDriver
from dockyard.registry.store import manifests, paths

_REPO_MARKERS = ("_layers", "_manifests", "_uploads")


@dataclass
class MarkState:
    """Marked digests, untagged revisions to remove, and the subjects of removable referrers."""

    marked: set[str] = field(default_factory=set)
    removable: list[tuple[str, str]] = field(default_factory=list)
    subjects: dict[tuple[str, str], str] = field(default_factory=dict)


async def _list(driver: StorageDriver, path: str) -> list[str]:
    try:
        return await driver.list(path)
    except PathNotFound:
        return []


async def repositories(driver: StorageDriver) -> list[str]:
    """Every repository name (a directory holding _layers, _manifests or _uploads), sorted."""
    found: list[str] = []
    stack = [(paths.REPOSITORIES, "")]
    while stack:
        path, name = stack.pop()
        children = await _list(driver, path)
        if name and any(c in _REPO_MARKERS for c in children):
            found.append(name)
        stack += [(f"{path}/{c}", f"{name}/{c}" if name else c) for c in children if not c.startswith("_")]
    return sorted(found)


async def _digests_under(driver: StorageDriver, base: str) -> list[str]:
    """``<alg>:<hex>`` for every ``base/<alg>/<hex>`` directory."""
    found = []
    for alg in await _list(driver, base):
        found += [f"{alg}:{h}" for h in await _list(driver, f"{base}/{alg}")]
    return [d for d in found if digests.is_valid(d)]


async def revisions(driver: StorageDriver, repo: str) -> dict[str, float]:
    """Revision digest -> mtime of its link, for every revision of ``repo``."""
    found = {}
    for d in await _digests_under(driver, f"{paths.repo_dir(repo)}/_manifests/revisions"):
        info = await driver.stat(paths.revision_link(repo, d))
        if info is not None:
            found[d] = info.mtime
    return found


async def tag_targets(driver: StorageDriver, repo: str) -> dict[str, str]:
    """Tag -> digest for every tag of ``repo``."""
    found = {}
    for tag in await _list(driver, paths.tags_dir(repo)):
        try:
            found[tag] = (await driver.get(paths.tag_link(repo, tag))).decode().strip()
        except PathNotFound:
            continue
    return found


async def tags_pointing(driver: StorageDriver, repo: str, d: str) -> list[str]:
    return [t for t, target in (await tag_targets(driver, repo)).items() if target == d]


async def all_blobs(driver: StorageDriver) -> list[str]:
    """Every digest with a directory under ``blobs/<alg>/<xx>/``."""
    found = []
    for alg in await _list(driver, "blobs"):
        for prefix in await _list(driver, f"blobs/{alg}"):
            found += [f"{alg}:{h}" for h in await _list(driver, f"blobs/{alg}/{prefix}")]
    return sorted(d for d in found if digests.is_valid(d))


async def read_refs(driver: StorageDriver, d: str) -> manifests.Parsed | None:
    """The references of manifest ``d`` (None if its data is missing or not a manifest)."""
    try:
        return manifests.parse(await driver.get(paths.blob_data(d)), "")
    except (PathNotFound, errors.RegistryError):
        return None


def _mark_parsed(state: MarkState, d: str, parsed: manifests.Parsed | None) -> None:
    state.marked.add(d)
    if parsed is not None:
        state.marked.update(parsed.blobs)
        state.marked.update(parsed.children)


async def mark_revision(driver: StorageDriver, state: MarkState, repo: str, d: str) -> None:
    """Mark a revision GC decided to keep after all (its removal raced with a push)."""
    _mark_parsed(state, d, await read_refs(driver, d))


async def drop_referrer_entry(driver: StorageDriver, state: MarkState, repo: str, d: str) -> None:
    """Remove the referrers-index entry of a removed revision, if it had a subject."""
    subject = state.subjects.get((repo, d))
    if subject is None:
        return
    try:
        await driver.delete(paths.referrer_entry(repo, subject, d))
    except PathNotFound:
        pass


async def mark(driver: StorageDriver, cutoff: float, remove_untagged: bool) -> MarkState:
    """Walk every repository's revisions; see the module docstring."""
    state = MarkState()
    for repo in await repositories(driver):
        revs = await revisions(driver, repo)
        parsed = {d: await read_refs(driver, d) for d in revs}
        keep = set(revs)
        if remove_untagged:
            roots = {d for d in (await tag_targets(driver, repo)).values() if d in revs}
            roots |= {d for d, mtime in revs.items() if mtime >= cutoff}
            keep = _reachable(roots, parsed)
        for d in revs:
            if d in keep:
                _mark_parsed(state, d, parsed[d])
                continue
            state.removable.append((repo, d))
            p = parsed[d]
            if p is not None and p.subject is not None:
                state.subjects[(repo, d)] = p.subject
    return state


def _reachable(roots: set[str], parsed: dict[str, manifests.Parsed | None]) -> set[str]:
    """Roots plus index children and referrers of kept manifests, to a fixpoint."""
    keep = set(roots)
    changed = True
    while changed:
        changed = False
        for d, p in parsed.items():
            if p is None:
                if d not in keep:
                    keep.add(d)  # unreadable: never delete what we cannot understand
                    changed = True
                continue
            if d in keep:
                new = {c for c in p.children if c in parsed} - keep
            elif p.subject is not None and p.subject in keep:
                new = {d}
            else:
                new = set()
            if new:
                keep |= new
                changed = True
    return keep
