"""``GET /containers/json`` and ``GET /events`` filtering, over inspect-shaped dicts.

Pure functions: the daemon hands in the containers' ``GET /containers/{id}/json``
documents and the current time; these return the list items Docker 20.10
returns, in Docker's order, with Docker's filter semantics and messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dockyard.engine.daemon import filters as F
from dockyard.engine.daemon.filters import EVENT_FILTERS, match_event
from dockyard.engine.daemon.human import human_duration
from dockyard.engine.daemon.timefmt import ZERO_TIME_NS, is_zero, parse_rfc3339, unix_seconds
from dockyard.errors import InvalidArgument, NotFound

Doc = dict[str, Any]
__all__ = ["EVENT_FILTERS", "PS_FILTERS", "match_event", "select", "summary"]

PS_FILTERS = frozenset({
    "ancestor", "before", "exited", "id", "isolation", "label", "name", "status",
    "health", "since", "volume", "network", "is-task", "publish", "expose",
})
STATES = frozenset({"created", "restarting", "running", "removing", "paused", "exited", "dead"})
HEALTH_VALUES = frozenset({"starting", "healthy", "unhealthy", "none"})
SWARM_TASK_LABEL = "com.docker.swarm.task.id"

_ENDPOINT_COPY = ("NetworkID", "EndpointID", "Gateway", "IPAddress", "IPPrefixLen",
                  "IPv6Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen", "MacAddress")


def _ts(value: str | None) -> int:
    """An inspect timestamp in ns; missing means Go's zero time."""
    return parse_rfc3339(value) if value else ZERO_TIME_NS


def state_string(state: Mapping[str, Any]) -> str:
    """Docker's one-word state (``State.Status``) derived from the state flags."""
    if state.get("Running") or state.get("Paused") or state.get("Restarting"):
        if state.get("Paused"):
            return "paused"
        return "restarting" if state.get("Restarting") else "running"
    if state.get("Status") == "removing":
        return "removing"
    if state.get("Dead") or state.get("Status") == "dead":
        return "dead"
    return "created" if is_zero(state.get("StartedAt")) else "exited"


def status_text(state: Mapping[str, Any], now_ns: int) -> str:
    """Docker's ``Status`` column: "Up 5 seconds (healthy)", "Exited (0) 2 minutes ago"..."""
    since_start = human_duration(now_ns - _ts(state.get("StartedAt")))
    code = state.get("ExitCode", 0)
    if state.get("Running") or state.get("Paused") or state.get("Restarting"):
        if state.get("Paused"):
            return f"Up {since_start} (Paused)"
        if state.get("Restarting"):
            return f"Restarting ({code}) {human_duration(now_ns - _ts(state.get('FinishedAt')))} ago"
        health = state.get("Health")
        if health is not None:
            word = health.get("Status") or "unhealthy"
            return f"Up {since_start} ({'health: starting' if word == 'starting' else word})"
        return f"Up {since_start}"
    word = state_string(state)
    if word == "removing":
        return "Removal In Progress"
    if word == "dead":
        return "Dead"
    if word == "created":
        return "Created"
    if is_zero(state.get("FinishedAt")):
        return ""
    return f"Exited ({code}) {human_duration(now_ns - _ts(state.get('FinishedAt')))} ago"


def health_word(state: Mapping[str, Any]) -> str:
    """The ``health`` filter's view: starting|healthy|unhealthy, or none without a check."""
    health = state.get("Health")
    if health is None:
        return "none"
    return str(health.get("Status") or "unhealthy")


def command_text(path: str, args: list[str] | None) -> str:
    """Path and args as ``docker ps`` shows them: args with a space get single quotes."""
    if not args:
        return path
    shown = [f"'{a}'" if " " in a else a for a in args]
    return f"{path} {' '.join(shown)}"


def _port_number(text: str) -> int | None:
    """go-connections ``ParsePort``: "" is 0, a single 16-bit number, else invalid."""
    if text == "":
        return 0
    if not text.isdigit() or int(text) > 65535:
        return None
    return int(text)


def ports_list(ports: Mapping[str, Any] | None) -> list[Doc]:
    """``NetworkSettings.Ports`` ({"80/tcp": [{HostIp, HostPort}]}) as list items."""
    out: list[Doc] = []
    for key in sorted(ports or {}, key=_port_sort_key):
        number, _, proto = key.partition("/")
        private = _port_number(number)
        if private is None:
            continue
        proto = proto or "tcp"
        bindings = (ports or {})[key] or []
        if not bindings:
            out.append({"PrivatePort": private, "Type": proto})
            continue
        for b in bindings:
            public = _port_number(str(b.get("HostPort") or ""))
            if public is None:
                continue
            item = {"IP": b.get("HostIp") or "", "PrivatePort": private, "PublicPort": public, "Type": proto}
            out.append({k: v for k, v in item.items() if v or k in ("PrivatePort", "Type")})
    return out


def _port_sort_key(key: str) -> tuple[int, str]:
    number, _, proto = key.partition("/")
    return (int(number) if number.isdigit() else -1, proto)


def _networks(settings: Mapping[str, Any] | None) -> Doc:
    """The summary's per-network endpoint settings (the fields Docker copies)."""
    out: Doc = {}
    for name, ep in ((settings or {}).get("Networks") or {}).items():
        if ep is None:
            continue
        item: Doc = {"IPAMConfig": None, "Links": None, "Aliases": None}
        ipam = ep.get("IPAMConfig")
        if ipam is not None:
            item["IPAMConfig"] = {k: ipam[k] for k in ("IPv4Address", "IPv6Address") if ipam.get(k)}
        for key in _ENDPOINT_COPY:
            item[key] = ep.get(key, 0 if key.endswith("PrefixLen") else "")
        item["DriverOpts"] = None
        out[name] = item
    return out


def _mounts(mounts: list[Mapping[str, Any]] | None) -> list[Doc]:
    """MountPoint objects, with Docker's omitempty on Type, Name and Driver."""
    out: list[Doc] = []
    for m in mounts or []:
        item: Doc = {}
        for key in ("Type", "Name", "Source", "Destination", "Driver", "Mode", "RW", "Propagation"):
            value = m.get(key, False if key == "RW" else "")
            if key in ("Type", "Name", "Driver") and not value:
                continue
            item[key] = value
        out.append(item)
    return out


def summary(inspect: Mapping[str, Any], now_ns: int,
            resolve_image: Callable[[str], str | None] | None = None) -> Doc:
    """One item of ``GET /containers/json`` from a container's inspect document.

    ``resolve_image(ref) -> image id or None``: when given and the container's
    image reference no longer names its image, Image shows the image id, as Docker does.
    """
    config = inspect.get("Config") or {}
    state = inspect.get("State") or {}
    name = inspect.get("Name") or ""
    image_id = inspect.get("Image") or ""
    image = config.get("Image") or image_id
    if resolve_image is not None and image != image_id and resolve_image(image) != image_id:
        image = image_id
    return {
        "Id": inspect["Id"],
        "Names": ["/" + name.lstrip("/")] if name else [],
        "Image": image,
        "ImageID": image_id,
        "Command": command_text(inspect.get("Path") or "", inspect.get("Args")),
        "Created": unix_seconds(_ts(inspect.get("Created"))),
        "Ports": ports_list((inspect.get("NetworkSettings") or {}).get("Ports")),
        "Labels": dict(config.get("Labels") or {}),
        "State": state_string(state),
        "Status": status_text(state, now_ns),
        "HostConfig": {"NetworkMode": (inspect.get("HostConfig") or {}).get("NetworkMode", "")},
        "NetworkSettings": {"Networks": _networks(inspect.get("NetworkSettings"))},
        "Mounts": _mounts(inspect.get("Mounts")),
    }

# ---- GET /containers/json selection -------------------------------------------------


def _atoi(text: str) -> int:
    """Go's ``strconv.Atoi`` with its error text (for the ``exited`` filter)."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise InvalidArgument(f'strconv.Atoi: parsing "{text}": invalid syntax')
    return int(text)


def _port_ranges(key: str, values: list[str]) -> list[tuple[int, int, str]]:
    """``publish``/``expose`` values: ``port[/proto]`` or ``start-end[/proto]``."""
    out: list[tuple[int, int, str]] = []
    for value in values:
        if ":" in value:
            raise InvalidArgument(f"filter for '{key}' should not contain ':': {value}")
        port, _, proto = value.partition("/")
        proto = proto.split("/")[0] or "tcp"
        bounds = port.split("-")
        for b in bounds[:2]:
            if not b.isdigit() or int(b) > 65535:
                why = "empty string specified for ports" if not port else \
                    f'strconv.ParseUint: parsing "{b}": invalid syntax'
                raise InvalidArgument(f"error while looking up for {key} {value}: {why}")
        start, end = int(bounds[0]), int(bounds[1] if len(bounds) > 1 else bounds[0])
        if end < start:
            raise InvalidArgument(f"error while looking up for {key} {value}: "
                                  f"invalid range specified for port: {port}")
        out.append((start, end, proto))
    return out


def _in_ranges(port: int, proto: str, ranges: list[tuple[int, int, str]]) -> bool:
    return any(lo <= port <= hi and proto == p for lo, hi, p in ranges)


def _bare(image_id: str) -> str:
    return image_id.removeprefix("sha256:")


def _find(containers: Sequence[Mapping[str, Any]], ref: str) -> str:
    """``before``/``since``: a full id, an exact name, or (leniently) a unique id prefix."""
    ids = [c["Id"] for c in containers]
    if ref in ids:
        return ref
    for c in containers:
        if (c.get("Name") or "").lstrip("/") == ref.lstrip("/"):
            return str(c["Id"])
    hits = [i for i in ids if ref and i.startswith(ref)]
    if len(hits) == 1:
        return hits[0]
    raise NotFound(f"no such container {ref}", id=ref)


def _candidates(containers: Sequence[Mapping[str, Any]], filters: F.Filters) -> list[Mapping[str, Any]]:
    """Docker's fast path for id/name filters (id = unique prefix), newest first."""
    names, ids = F.get(filters, "name"), F.get(filters, "id")
    pool = list(containers)
    if names or ids:
        all_ids = [c["Id"] for c in containers]
        matches = set()
        for ref in ids:
            hits = [i for i in all_ids if ref and i.startswith(ref)]
            if ref in all_ids or len(hits) == 1:
                matches.add(ref if ref in all_ids else hits[0])
        if names:
            for c in containers:
                name = c.get("Name") or ""
                if not name or (ids and c["Id"] not in matches):
                    continue
                if F.match(filters, "name", name) or F.match(filters, "name", name.lstrip("/")):
                    matches.add(c["Id"])
        pool = [c for c in containers if c["Id"] in matches]
    return sorted(pool, key=lambda c: _ts(c.get("Created")), reverse=True)


class _Plan:
    """The parsed, validated filters (moby's ``foldFilter``)."""

    def __init__(self, containers: Sequence[Mapping[str, Any]], filters: F.Filters,
                 image_ids: Callable[[str], set[str]] | None) -> None:
        F.validate(filters, PS_FILTERS)
        self.exited = [_atoi(v) for v in F.get(filters, "exited")]
        for v in F.get(filters, "status"):
            if v not in STATES:
                raise F.invalid_filter("status", v)
        self.is_task: bool | None = None
        if "is-task" in filters:
            if F.exact_match(filters, "is-task", "true"):
                self.is_task = True
            elif F.exact_match(filters, "is-task", "false"):
                self.is_task = False
            else:
                raise F.invalid_filter("is-task", F.get(filters, "is-task"))
        for v in F.get(filters, "health"):
            if v not in HEALTH_VALUES:
                raise InvalidArgument(f"Unrecognised filter value for health: {v}")
        self.before = [_find(containers, v) for v in F.get(filters, "before")][-1:]
        self.since = [_find(containers, v) for v in F.get(filters, "since")][-1:]
        self.ancestors = F.get(filters, "ancestor") if "ancestor" in filters else None
        self.images: set[str] | None = None
        if self.ancestors is not None and image_ids is not None:
            self.images = {_bare(i) for a in self.ancestors for i in image_ids(a)}
        self.publish = _port_ranges("publish", F.get(filters, "publish"))
        self.expose = _port_ranges("expose", F.get(filters, "expose"))

    def ancestor_ok(self, c: Mapping[str, Any]) -> bool:
        """The container's image is (a descendant of) one of the ``ancestor`` images."""
        if self.ancestors is None:
            return True
        image_id = _bare(c.get("Image") or "")
        if self.images is not None:
            return image_id in self.images
        ref = (c.get("Config") or {}).get("Image") or ""
        return any(a == ref or (_bare(a) and image_id.startswith(_bare(a))) for a in self.ancestors)


def _volume_ok(c: Mapping[str, Any], values: list[str]) -> bool:
    keys = set()
    for m in c.get("Mounts") or []:
        keys.add(m.get("Name") or m.get("Source") or "")
        if m.get("Destination"):
            keys.add(m["Destination"])
    return any(v in keys for v in values)


def _network_ok(c: Mapping[str, Any], values: list[str]) -> bool:
    nets = ((c.get("NetworkSettings") or {}).get("Networks")) or {}
    return any(v in nets or any(ep and (ep.get("NetworkID") or "").startswith(v)
                                for ep in nets.values()) for v in values)


def _ports_ok(item: Doc, plan: _Plan) -> bool:
    for p in item["Ports"]:
        if _in_ranges(p.get("PublicPort", 0), p["Type"], plan.publish):
            return True
        if _in_ranges(p["PrivatePort"], p["Type"], plan.expose):
            return True
    return False


def _passes(c: Mapping[str, Any], item: Doc, filters: F.Filters, plan: _Plan) -> bool:
    """moby's ``includeContainerInList`` checks after the limit check."""
    state = c.get("State") or {}
    if plan.exited:
        if state_string(state) in ("running", "paused", "restarting") or is_zero(state.get("StartedAt")):
            return False
        if state.get("ExitCode", 0) not in plan.exited:
            return False
    if not F.match(filters, "status", item["State"]):
        return False
    if not F.exact_match(filters, "health", health_word(state)):
        return False
    if "volume" in filters and not _volume_ok(c, F.get(filters, "volume")):
        return False
    if not plan.ancestor_ok(c):
        return False
    if "network" in filters and not _network_ok(c, F.get(filters, "network")):
        return False
    if (plan.publish or plan.expose) and not _ports_ok(item, plan):
        return False
    return True


def select(containers: Sequence[Mapping[str, Any]], *, all: bool = False, limit: int = 0,
           filters: F.Filters | None = None, image_ids: Callable[[str], set[str]] | None = None,
           now_ns: int, resolve_image: Callable[[str], str | None] | None = None) -> list[Doc]:
    """The ``GET /containers/json`` answer: filtered summaries, newest first.

    Without ``all`` only running (incl. paused/restarting) containers show,
    unless ``limit`` > 0 or a ``status`` filter is given (both imply all, as
    in Docker). ``image_ids(ref)`` gives the ids of the image ``ref`` names
    and of its descendants, for the ``ancestor`` filter.
    """
    filters = filters or {}
    plan = _Plan(containers, filters, image_ids)
    show_all = all or bool(F.get(filters, "status"))
    before = plan.before[0] if plan.before else None
    out: list[Doc] = []
    for c in _candidates(containers, filters):
        if before is not None:
            if c["Id"] == before:
                before = None
            continue
        if plan.since and c["Id"] == plan.since[0]:
            break
        state = c.get("State") or {}
        running = state_string(state) in ("running", "paused", "restarting")
        if not running and not show_all and limit <= 0:
            continue
        name = c.get("Name") or ""
        if not (F.match(filters, "name", name) or F.match(filters, "name", name.lstrip("/"))):
            continue
        if not F.match(filters, "id", c["Id"]):
            continue
        labels = (c.get("Config") or {}).get("Labels") or {}
        if plan.is_task is not None and plan.is_task != (SWARM_TASK_LABEL in labels):
            continue
        if not F.match_kv(F.get(filters, "label"), labels):
            continue
        if limit > 0 and len(out) == limit:
            break
        item = summary(c, now_ns, resolve_image)
        if _passes(c, item, filters, plan):
            out.append(item)
    return out
