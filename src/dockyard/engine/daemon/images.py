"""Docker-shaped image views and operations over the supervisor's ImageService.

Everything here is synchronous (ImageService and SQLite work); routes run it through
``daemon.run_blocking``. Operations return the events to emit instead of emitting them, so
the event bus is only touched from the event loop. Shapes and messages follow dockerd 20.10.
"""

from __future__ import annotations

import inspect as inspect_module
import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from dockyard.engine.daemon import filters as flt
from dockyard.engine.daemon import timefmt
from dockyard.images.archive.changes import apply_changes
from dockyard.errors import Conflict, DockyardError, InvalidArgument, NotFound
from dockyard.oci import reference
from dockyard.oci.image import chain_ids
from dockyard.supervisor.images import ID_LABEL, ImageService, is_image_id, load_messages
from dockyard.supervisor.metadata import ImageRecord

log = logging.getLogger("dockyard.engine")
Event = tuple[str, str, dict[str, str]]  # (action, actor id, attributes) of an "image" event
Users = Callable[[str], list[tuple[str, bool]]]  # image id -> [(container id, running)]
LIST_FILTERS = frozenset({"before", "dangling", "label", "reference", "since"})
PRUNE_FILTERS = frozenset({"dangling", "until", "label", "label!"})
CONFIG_FIELDS: tuple[tuple[str, Any], ...] = (
    ("Hostname", ""), ("Domainname", ""), ("User", ""), ("AttachStdin", False), ("AttachStdout", False),
    ("AttachStderr", False), ("Tty", False), ("OpenStdin", False), ("StdinOnce", False), ("Env", None),
    ("Cmd", None), ("Image", ""), ("Volumes", None), ("WorkingDir", ""), ("Entrypoint", None),
    ("OnBuild", None), ("Labels", None))


@dataclass
class ImageInfo:
    """One image (an image ID) with every name it has and its parsed config."""

    id: str
    records: list[ImageRecord]
    config: dict[str, Any]
    layer_sizes: list[int]
    diff_ids: list[str]
    blobs: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        """Full references (tags and digests); the ID record of an untagged image is left out."""
        return [r.name for r in self.records if not r.name.startswith("sha256:")]

    @property
    def size(self) -> int:
        return sum(self.layer_sizes)

    @property
    def created_ns(self) -> int:
        created = self.config.get("created")
        try:
            return timefmt.parse_rfc3339(created) if created else timefmt.ZERO_TIME_NS
        except InvalidArgument:
            return timefmt.ZERO_TIME_NS

    @property
    def labels(self) -> dict[str, str] | None:
        return (self.config.get("config") or {}).get("Labels") or None

    def repo_tags(self) -> list[str]:
        return [reference.parse(n).familiar() for n in self.names if reference.parse(n, default_tag=False).tag]

    def repo_digests(self) -> list[str]:
        out = []
        for n in self.names:
            ref = reference.parse(n, default_tag=False)
            if ref.digest:
                out.append(f"{ref.familiar_name()}@{ref.digest}")
        return out


def short_id(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def image_info(svc: ImageService, image_id: str, records: list[ImageRecord]) -> ImageInfo:
    resolved = svc.resolve(records[0].name)
    config = json.loads(svc.content.read(resolved.config_digest))
    blobs = [resolved.manifest.digest, resolved.config_digest, *(layer.digest for layer in resolved.layers)]
    return ImageInfo(image_id, records, config, _layer_sizes(svc, resolved),
                     list(resolved.diff_ids), blobs)


SIZE_LABEL = "dockyard.layer.content-size"


def _layer_sizes(svc: ImageService, resolved: Any) -> list[int]:
    """Each layer's size as dockerd reports it: the sizes of its non-directories on disk (file bytes,
    symlink target lengths; hard links once), which is what overlay2 measures.

    Counted once per layer blob by reading its tar, then kept as a label on the blob.
    """
    return [_content_size(svc, layer.digest) for layer in resolved.layers]


def _content_size(svc: ImageService, digest: str) -> int:
    info = svc.content.info(digest)
    cached = info.labels.get(SIZE_LABEL)
    if cached is not None:
        return int(cached)
    from dockyard.images.compression import LayerStream
    from dockyard.images.tarstream import TarReader

    total = 0
    seen: set[str] = set()
    with svc.content.open(digest) as raw:
        reader = TarReader(LayerStream(raw, threaded=False))
        while (entry := reader.next()) is not None:
            if entry.isreg() and entry.name not in seen:
                seen.add(entry.name)
                total += entry.size
            elif entry.type == b"2":  # a symlink's size is its target's length
                total += len(entry.linkname.encode())
    svc.content.set_labels(digest, {**info.labels, SIZE_LABEL: str(total)})
    return total


def all_images(svc: ImageService) -> dict[str, ImageInfo]:
    """Every image by ID, oldest record first."""
    grouped: dict[str, list[ImageRecord]] = {}
    for record in sorted(svc.list(), key=lambda r: r.created_at):
        grouped.setdefault(record.labels.get(ID_LABEL, record.target.digest), []).append(record)
    out = {}
    for image_id, records in grouped.items():
        try:
            out[image_id] = image_info(svc, image_id, records)
        except (DockyardError, OSError, ValueError, KeyError) as e:  # one broken image must not hide the rest
            log.warning("image %s: %s", image_id, e)
    return out


def _missing_name(ref: str) -> str:
    """How dockerd names a missing image: familiar, with ":latest" added to a bare name."""
    try:
        return reference.parse(ref).familiar()
    except InvalidArgument:
        return ref


def find_image(svc: ImageService, ref: str) -> ImageInfo:
    """The image ``ref`` names (name, ID or ID prefix); NotFound "No such image: ref"."""
    try:
        record = svc.get(ref)
    except (InvalidArgument, NotFound):
        raise NotFound(f"No such image: {_missing_name(ref)}", id=ref) from None
    image_id = record.labels.get(ID_LABEL, record.target.digest)
    records = [r for r in svc.list() if r.labels.get(ID_LABEL) == image_id] or [record]
    return image_info(svc, image_id, records)


# -- list ------------------------------------------------------------------------------------


def summary(info: ImageInfo, containers: int = -1) -> dict[str, Any]:
    """GET /images/json's entry; an untagged image shows "<none>:<none>" like 20.10."""
    tags, digests = info.repo_tags(), info.repo_digests()
    if not tags and not digests:
        tags, digests = ["<none>:<none>"], ["<none>@<none>"]
    return {"Containers": containers, "Created": timefmt.unix_seconds(info.created_ns), "Id": info.id,
            "Labels": info.labels, "ParentId": info.config.get("parent", ""), "RepoDigests": digests or None,
            "RepoTags": tags or None, "SharedSize": -1, "Size": info.size, "VirtualSize": info.size}


def go_path_match(pattern: str, name: str) -> bool:
    """Go's path.Match: '*' and '?' never match '/'; bad patterns match nothing."""
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                return False
            body = pattern[i + 1:end]
            out += "[" + ("^" + body[1:] if body.startswith("^") else body) + "]"
            i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(c)
        i += 1
    try:
        return re.fullmatch(out, name) is not None
    except re.error:
        return False


def _reference_match(patterns: list[str], name: str) -> bool:
    ref = reference.parse(name, default_tag=False)
    return any(go_path_match(p, ref.familiar()) or go_path_match(p, ref.familiar_name()) for p in patterns)


def list_images(svc: ImageService, filters: flt.Filters, *, containers: Callable[[str], int] | None = None
                ) -> list[dict[str, Any]]:
    """GET /images/json, newest first; the ``reference`` filter also narrows RepoTags."""
    flt.validate(filters, LIST_FILTERS)
    images = all_images(svc)
    bounds = {key: find_image(svc, flt.get(filters, key)[-1]).created_ns for key in ("before", "since")
              if flt.get(filters, key)}
    out = []
    for info in sorted(images.values(), key=lambda i: i.created_ns, reverse=True):
        if "before" in bounds and info.created_ns >= bounds["before"]:
            continue
        if "since" in bounds and info.created_ns <= bounds["since"]:
            continue
        if "dangling" in filters and flt.truthy(filters, "dangling") != (not info.names):
            continue
        if not flt.match_labels(filters, info.labels):
            continue
        if flt.get(filters, "reference"):
            matching = [r for r in info.records if not r.name.startswith("sha256:")
                        and _reference_match(flt.get(filters, "reference"), r.name)]
            if not matching:
                continue
            info = ImageInfo(info.id, matching, info.config, info.layer_sizes, info.diff_ids)
        out.append(summary(info, containers(info.id) if containers else -1))
    return out


# -- inspect and history ---------------------------------------------------------------------


def container_config(raw: dict[str, Any] | None) -> dict[str, Any]:
    """An image config's "config" in Docker's container-config shape (every field present)."""
    raw = dict(raw or {})
    out = {key: raw.pop(key, default) for key, default in CONFIG_FIELDS}
    out.update(raw)
    return out


def inspect(info: ImageInfo, graph_driver: str) -> dict[str, Any]:
    """GET /images/{name}/json."""
    tagged = [r for r in info.records if not r.name.startswith("sha256:")]
    last_tag = timefmt.rfc3339_nano(int(max(r.updated_at for r in tagged) * 1e9)) if tagged else timefmt.ZERO_TIME
    config = info.config
    out: dict[str, Any] = {
        "Id": info.id, "RepoTags": info.repo_tags(), "RepoDigests": info.repo_digests(),
        "Parent": config.get("parent", ""), "Comment": config.get("comment", ""),
        "Created": timefmt.rfc3339_nano(info.created_ns), "Container": config.get("container", ""),
        "ContainerConfig": container_config(config.get("container_config")),
        "DockerVersion": config.get("docker_version", ""), "Author": config.get("author", ""),
        "Config": container_config(config.get("config")), "Architecture": config.get("architecture", ""),
        "Os": config.get("os", "")}
    if config.get("variant"):
        out["Variant"] = config["variant"]
    if config.get("os.version"):
        out["OsVersion"] = config["os.version"]
    out.update({"Size": info.size, "VirtualSize": info.size,
                "GraphDriver": {"Data": None, "Name": graph_driver},
                "RootFS": {"Type": "layers", "Layers": list(info.diff_ids)},
                "Metadata": {"LastTagTime": last_tag}})
    return out


def history(info: ImageInfo) -> list[dict[str, Any]]:
    """GET /images/{name}/history: newest first; only the top entry carries the ID and tags."""
    entries = info.config.get("history") or [{"created": info.config.get("created", "")}] * len(info.diff_ids)
    sizes = iter(info.layer_sizes)
    rows = []
    for entry in entries:
        size = 0 if entry.get("empty_layer") else next(sizes, 0)
        created = entry.get("created")
        try:
            created_ns = timefmt.parse_rfc3339(created) if created else timefmt.ZERO_TIME_NS
        except InvalidArgument:
            created_ns = timefmt.ZERO_TIME_NS
        rows.append({"Comment": entry.get("comment", ""), "Created": timefmt.unix_seconds(created_ns),
                     "CreatedBy": entry.get("created_by", ""), "Id": "<missing>", "Size": size, "Tags": None})
    rows.reverse()
    if rows:
        rows[0]["Id"], rows[0]["Tags"] = info.id, info.repo_tags() or None
    return rows


# -- tag -------------------------------------------------------------------------------------


def parse_repo_tag(repo: str, tag: str = "") -> str:
    """A tag target from ?repo=&tag= with distribution/reference's messages; the full reference."""
    if not repo:
        raise InvalidArgument("invalid reference format")
    if re.fullmatch(r"[a-f0-9]{64}", repo):
        raise InvalidArgument(f"invalid repository name ({repo}), cannot specify 64-byte hexadecimal strings")
    if tag and not re.fullmatch(r"[\w][\w.-]{0,127}", tag):
        raise InvalidArgument("invalid tag format")
    try:
        ref = reference.parse(repo, default_tag=False)
    except InvalidArgument as e:
        name = repo.split("@")[0]
        name = name[:name.rfind(":")] if name.rfind(":") > name.rfind("/") else name
        if "lowercase" in e.message or name.lower() != name:
            raise InvalidArgument("invalid reference format: repository name must be lowercase") from None
        raise InvalidArgument("invalid reference format") from None
    if tag:
        ref = ref.with_tag(tag)
    elif ref.tag is None and ref.digest is None:
        ref = ref.with_tag(reference.DEFAULT_TAG)
    return str(ref)


def tag(svc: ImageService, src: str, repo: str, tag_: str = "") -> list[Event]:
    """POST /images/{name}/tag."""
    target = parse_repo_tag(repo, tag_)
    info = find_image(svc, src)
    svc.tag(info.records[0].name, target)
    return [("tag", info.id, {"name": reference.parse(target).familiar()})]


# -- delete and prune ------------------------------------------------------------------------


def _conflict(image_id: str, message: str, *, hard: bool) -> Conflict:
    force = "cannot be forced" if hard else "must be forced"
    return Conflict(f"conflict: unable to delete {short_id(image_id)} ({force}) - {message}", id=image_id)


def _container_conflict(info: ImageInfo, users: list[tuple[str, bool]], *, force: bool) -> Conflict | None:
    for cid, running in users:
        if running:
            return _conflict(info.id, f"image is being used by running container {short_id(cid)}", hard=True)
    if users and not force:
        return _conflict(info.id, f"image is being used by stopped container {short_id(users[0][0])}", hard=False)
    return None


def _is_id_prefix(image_id: str, ref: str) -> bool:
    return is_image_id(ref) and (image_id.startswith(ref) or image_id.startswith("sha256:" + ref))


def _single_repository(names: list[str]) -> bool:
    refs = [reference.parse(n, default_tag=False) for n in names]
    return len({r.name for r in refs}) <= 1 and sum(1 for r in refs if r.tag) <= 1


def delete(svc: ImageService, ref: str, users: Users, *, force: bool = False
           ) -> tuple[list[dict[str, str]], list[Event]]:
    """DELETE /images/{name}: untag a name, or delete an image by ID, with dockerd's conflicts."""
    info = find_image(svc, ref)
    using = users(info.id)
    records: list[dict[str, str]] = []
    events: list[Event] = []
    names = info.names
    if not _is_id_prefix(info.id, ref):
        name = svc.get(ref).name
        if using and not force and len(names) == 1:
            raise Conflict(f'conflict: unable to remove repository reference "{ref}" (must force) - container '
                           f'{short_id(using[0][0])} is using its referenced image {short_id(info.id)}', id=ref)
        going = [name] + _digest_refs_left_alone(names, name)
        last = sorted(names) == sorted(going)
        keep = last and (any(running for _, running in using) or (using and not force)
                         or _has_children(svc, info.id))
        if keep:  # dockerd leaves the image behind, untagged, when a container still needs it
            svc.metadata.put_image(info.id, info.records[0].target, info.records[0].labels)
        _untag(svc, going, info.id, records, events)
        if not last or keep:
            return records, events
    else:
        if _has_children(svc, info.id):  # checked first, as by dockerd: force does not help
            raise _conflict(info.id, "image has dependent child images", hard=True)
        if _single_repository(names):
            found = _container_conflict(info, using, force=force)
            if found:
                raise found
            _untag(svc, names, info.id, records, events)
        else:
            found = _container_conflict(info, [u for u in using if u[1]], force=True)
            if found or not force:
                raise found or _conflict(info.id, "image is referenced in multiple repositories", hard=False)
    return _delete_image(svc, info, bool(using), records, events)


def _digest_refs_left_alone(names: list[str], name: str) -> list[str]:
    """When ``name`` is its repository's last tag, that repository's digest references (what a
    pull records: repo@sha256:...) go with it, as dockerd removes them."""
    ref = reference.parse(name, default_tag=False)
    if ref.digest:
        return []
    others = [(n, reference.parse(n, default_tag=False)) for n in names if n != name]
    if any(o.name == ref.name and not o.digest for _, o in others):
        return []
    return [n for n, o in others if o.name == ref.name and o.digest]


def _has_children(svc: ImageService, image_id: str) -> bool:
    """Whether another image names ``image_id`` as its parent (committed on top of it)."""
    return any(other.config.get("parent") == image_id for other in all_images(svc).values())


def _untag(svc: ImageService, names: list[str], image_id: str, records: list[dict[str, str]],
           events: list[Event]) -> None:
    for name in names:
        svc.remove(name)
        records.append({"Untagged": reference.parse(name, default_tag=False).familiar()})
        events.append(("untag", image_id, {"name": image_id}))


def _delete_image(svc: ImageService, info: ImageInfo, used: bool, records: list[dict[str, str]],
                  events: list[Event]) -> tuple[list[dict[str, str]], list[Event]]:
    """Drop every remaining record of the image, report it and its layers no other image uses."""
    for name in svc.names_of(info.id):
        if not name.startswith("sha256:"):
            records.append({"Untagged": reference.parse(name, default_tag=False).familiar()})
            events.append(("untag", info.id, {"name": info.id}))
        svc.metadata.delete_image(name)
    records.append({"Deleted": info.id})
    events.append(("delete", info.id, {"name": info.id}))
    if not used:
        others = {c for other in all_images(svc).values() for c in chain_ids(other.diff_ids)}
        records += [{"Deleted": c} for c in reversed(chain_ids(info.diff_ids)) if c not in others]
    return records, events


def reclaim(svc: ImageService, blobs: Iterable[str]) -> int:
    """Run GC and return the bytes of ``blobs`` it removed (dockerd's SpaceReclaimed)."""
    sizes = {}
    for digest in set(blobs):
        try:
            sizes[digest] = svc.content.info(digest).size
        except NotFound:
            continue
    removed = set(svc.gc().removed_content)
    return sum(size for digest, size in sizes.items() if digest in removed)


def prune(svc: ImageService, filters: flt.Filters, users: Users) -> tuple[dict[str, Any], list[Event]]:
    """POST /images/prune: dangling images (all unused ones with dangling=false), then GC."""
    flt.validate(filters, PRUNE_FILTERS)
    dangling_only = flt.truthy(filters, "dangling", default=True)
    until = max((parse_until(v) for v in flt.get(filters, "until")), default=None)
    deleted: list[dict[str, str]] = []
    events: list[Event] = []
    blobs: list[str] = []
    for info in all_images(svc).values():
        if (dangling_only and info.names) or users(info.id) or not flt.match_labels(filters, info.labels):
            continue
        if until is not None and info.created_ns >= until:
            continue
        _delete_image(svc, info, False, deleted, events)
        blobs += info.blobs
    reclaimed = reclaim(svc, blobs) if deleted else 0
    return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}, events


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def parse_until(value: str, now_ns: int | None = None) -> int:
    """The ``until`` filter: a Go duration before now ("24h"), a Unix timestamp or RFC 3339."""
    now = timefmt.now_ns() if now_ns is None else now_ns
    if value and _DURATION.sub("", value) == "" and not value.isdigit():
        total = sum(int(float(n) * _UNIT_NS[u]) for n, u in _DURATION.findall(value))
        return now - total
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T.*", value):
        return timefmt.parse_rfc3339(value)
    return timefmt.parse_api_timestamp(value)


# -- import, load, save, commit --------------------------------------------------------------


def import_image(svc: ImageService, stream: BinaryIO, *, repo: str = "", tag_: str = "", message: str = "",
                 changes: list[str] | None = None, source: str = "-") -> tuple[str, list[Event]]:
    """POST /images/create?fromSrc=-: the body tarball as a one-layer image; returns (id, events)."""
    target = parse_repo_tag(repo, tag_) if repo else None
    image_id = svc.import_rootfs(stream, target, changes or [], comment=message or f"Imported from {source}")
    svc.unpack(image_id, svc.default_snapshotter)  # like dockerd: the layer is unpacked as it is imported
    events: list[Event] = []
    if target:
        events.append(("tag", image_id, {"name": reference.parse(target).familiar()}))
    events.append(("import", image_id, {"name": image_id}))
    return image_id, events


def load(svc: ImageService, stream: BinaryIO) -> tuple[list[str], list[Event]]:
    """POST /images/load: docker load's lines ("Loaded image: busybox:latest") and load events."""
    loaded = svc.load(stream)
    for name in loaded:  # like dockerd: layers are unpacked as images are loaded
        svc.unpack(name, svc.default_snapshotter)
    events: list[Event] = []
    for name in loaded:
        image_id = svc.get(name).labels.get(ID_LABEL, name)
        if not any(e[1] == image_id for e in events):
            events.append(("load", image_id, {"name": image_id}))
    return load_messages(loaded), events


def check_save(svc: ImageService, refs: list[str]) -> list[Event]:
    """Resolve every ref of a save before streaming (404s answered as errors, not mid-tar)."""
    if not refs:
        raise InvalidArgument("no images specified")
    return [("save", find_image(svc, ref).id, {"name": ref}) for ref in refs]


def save(svc: ImageService, refs: list[str], out: BinaryIO) -> None:
    """GET /images/get: a `docker save` tar of ``refs`` written to ``out``."""
    svc.save(refs, out)


def commit_image(daemon: Any, *, snapshot_key: str, container_config: dict[str, Any], container_id: str,
                 repo: str | None, tag: str | None, comment: str, author: str, changes: list[str],
                 base_image_id: str) -> str:
    """POST /commit's image half: the container's snapshot as a new image; returns its ID.

    Synchronous (run it with ``daemon.run_blocking``). As in dockerd, the container's config (with
    ``changes`` applied) should become the image's, and the image records ``container`` and
    ``container_config``: passed on when ImageService.commit takes ``config`` / ``container_id`` /
    ``container_config``; until then the base image's config is kept with ``changes`` applied.
    """
    svc: ImageService = daemon.images
    target = parse_repo_tag(repo, tag or "") if repo else None
    apply_changes(dict(container_config or {}), changes)  # bad changes fail before any work
    extra: dict[str, Any] = {}
    params = inspect_module.signature(svc.commit).parameters
    if "config" in params:
        extra["config"] = container_config
    if "container_id" in params:
        extra["container_id"] = container_id
    if "container_config" in params:
        extra["container_config"] = container_config
    return svc.commit(snapshot_key, target, base=base_image_id or None, snapshotter=daemon.snapshotter_name,
                      changes=changes, comment=comment, author=author, **extra)


def df_entries(daemon: Any) -> list[dict[str, Any]]:
    """`system df`'s images: summaries with Containers counted and SharedSize (layers in several images)."""
    images = all_images(daemon.images)
    holders: dict[str, int] = {}
    for info in images.values():
        for chain in set(chain_ids(info.diff_ids)):
            holders[chain] = holders.get(chain, 0) + 1
    out = []
    for info in sorted(images.values(), key=lambda i: i.created_ns, reverse=True):
        row = summary(info, len(daemon.containers.image_users(info.id)))
        row["SharedSize"] = sum(size for chain, size in zip(chain_ids(info.diff_ids), info.layer_sizes)
                                if holders[chain] > 1)
        out.append(row)
    return out
