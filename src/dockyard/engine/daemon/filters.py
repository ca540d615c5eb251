"""The ``filters`` query parameter of Docker's list, prune and events endpoints.

Clients send a JSON object mapping a key to its values, in one of two shapes:
the Go CLI sends sets (``{"status": {"running": true}}``), docker-py and old
clients send lists (``{"status": ["running"]}``). Both become
``dict[str, list[str]]`` here. The match helpers follow the semantics of
moby 20.10's ``filters.Args`` (a key that is absent never filters anything);
:func:`match_event` applies them as the ``GET /events`` stream does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.oci import reference

Filters = dict[str, list[str]]


def go_list(values: Iterable[str]) -> str:
    """Render a string list the way Go's ``%s`` prints a ``[]string``: ``[a b]``."""
    return "[" + " ".join(values) + "]"


def invalid_filter(key: str, value: str | list[str] | None = None) -> InvalidArgument:
    """Docker's ``Invalid filter 'key'`` / ``Invalid filter 'key=value'`` error (400)."""
    if value is None:
        return InvalidArgument(f"Invalid filter '{key}'")
    shown = go_list(value) if isinstance(value, list) else value
    return InvalidArgument(f"Invalid filter '{key}={shown}'")


def _as_text(value: object) -> str:
    """One filter value as text; docker-py turns booleans into true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise InvalidArgument("invalid filter")


def parse_filters(raw: str | None) -> Filters:
    """Decode the ``filters`` parameter; empty or missing means no filters.

    Malformed JSON raises InvalidArgument ``invalid filter`` (Docker 20.10
    passes Go's JSON decoder error through instead; newer releases answer this).
    """
    if raw is None or raw.strip() == "":
        return {}
    try:
        doc = json.loads(raw)
    except ValueError:
        raise InvalidArgument("invalid filter") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid filter")
    out: Filters = {}
    for key, values in doc.items():
        if values is None:
            out[key] = []
        elif isinstance(values, dict):
            out[key] = [_as_text(v) for v in values]
        elif isinstance(values, list):
            out[key] = _dedup(_as_text(v) for v in values)
        else:
            raise InvalidArgument("invalid filter")
    return out


def _dedup(values: Iterable[str]) -> list[str]:
    """Values form a set in Docker; keep first-seen order for stable messages."""
    return list(dict.fromkeys(values))


def to_json(filters: Mapping[str, Iterable[str]]) -> str:
    """Encode filters in the Go CLI's set shape (empty filters encode as "")."""
    if not filters:
        return ""
    return json.dumps({k: {v: True for v in vs} for k, vs in filters.items()})


def validate(filters: Mapping[str, object], allowed: set[str] | frozenset[str]) -> None:
    """Reject any key not in ``allowed`` with Docker's ``Invalid filter '<key>'``."""
    for key in filters:
        if key not in allowed:
            raise invalid_filter(key)


def contains(filters: Mapping[str, list[str]], key: str) -> bool:
    """True when the key was given at all (even with no values)."""
    return key in filters


def get(filters: Mapping[str, list[str]], key: str) -> list[str]:
    """The values of a key, [] when absent."""
    return list(filters.get(key) or [])


def exact_match(filters: Mapping[str, list[str]], key: str, source: str) -> bool:
    """True if the key is unset/empty or one of its values equals ``source``."""
    values = filters.get(key)
    if not values:
        return True
    return source in values


def fuzzy_match(filters: Mapping[str, list[str]], key: str, source: str) -> bool:
    """Like :func:`exact_match`, but a value that is a prefix of ``source`` matches too."""
    if exact_match(filters, key, source):
        return True
    return any(source.startswith(v) for v in filters.get(key) or [])


def match(filters: Mapping[str, list[str]], key: str, source: str) -> bool:
    """Exact match, or any value used as an unanchored regular expression matches.

    Values that are not valid expressions are skipped, as Docker does.
    """
    if exact_match(filters, key, source):
        return True
    for pattern in filters.get(key) or []:
        try:
            if re.search(pattern, source):
                return True
        except re.error:
            continue
    return False


def match_kv(values: Iterable[str], labels: Mapping[str, str] | None) -> bool:
    """Every ``k`` / ``k=v`` in ``values`` is present in ``labels`` (MatchKVList).

    No values match everything; with values, no labels match nothing.
    """
    wanted = list(values)
    if not wanted:
        return True
    if not labels:
        return False
    for item in wanted:
        k, has_value, v = item.partition("=")
        if k not in labels:
            return False
        if has_value and labels[k] != v:
            return False
    return True


def match_labels(filters: Mapping[str, list[str]], labels: Mapping[str, str] | None) -> bool:
    """The ``label`` filter, plus the prune endpoints' negated ``label!``.

    ``label!`` excludes an object when all of its pairs match, as in moby.
    """
    if not match_kv(filters.get("label") or [], labels):
        return False
    if "label!" in filters and match_kv(filters["label!"], labels):
        return False
    return True


def truthy(filters: Mapping[str, list[str]], key: str, default: bool = False) -> bool:
    """A boolean filter such as ``dangling``: true|1 or false|0.

    Absent gives ``default``; anything else raises ``Invalid filter 'key=[..]'``.
    As in Docker's prune, a false value wins over a true one.
    """
    values = filters.get(key)
    if not values:
        return default
    if "false" in values or "0" in values:
        return False
    if "true" in values or "1" in values:
        return True
    raise invalid_filter(key, list(values))


# ---- GET /events filtering ----------------------------------------------------------

EVENT_FILTERS = frozenset({
    "config", "container", "daemon", "event", "image", "label", "network", "node",
    "plugin", "scope", "secret", "service", "type", "volume",
})
_FUZZY_EVENTS = frozenset({"health_status", "exec_create", "exec_start"})
_NAMED_KINDS = ("daemon", "container", "plugin", "volume", "network", "service", "node",
                "secret", "config")


def _strip_tag(image: str) -> str:
    """The familiar repository name of an image reference (``busybox``), else as given."""
    try:
        return reference.parse(image, default_tag=False).familiar_name()
    except InvalidArgument:
        return image


def match_event(event: Mapping[str, Any], filters: Filters) -> bool:
    """Whether an event passes the ``GET /events`` filters (moby's events ``Filter.Include``).

    A per-kind filter (``container=``, ``volume=``...) matches the actor's id by
    prefix or its ``name`` attribute, and so excludes events of other types.
    """
    actor = event.get("Actor") or {}
    actor_id = actor.get("ID") or event.get("id") or ""
    attrs = actor.get("Attributes") or {}
    action = event.get("Action") or event.get("status") or ""
    if _FUZZY_EVENTS.intersection(get(filters, "event")):
        ok = fuzzy_match(filters, "event", action)
    else:
        ok = exact_match(filters, "event", action)
    if not ok or not exact_match(filters, "type", event.get("Type") or ""):
        return False
    if not exact_match(filters, "scope", event.get("scope") or ""):
        return False
    for kind in _NAMED_KINDS:
        if not (fuzzy_match(filters, kind, actor_id)
                or fuzzy_match(filters, kind, attrs.get("name") or "")):
            return False
    image_name = attrs.get("name" if event.get("Type") == "image" else "image") or ""
    if not any(exact_match(filters, "image", s)
               for s in (actor_id, image_name, _strip_tag(actor_id), _strip_tag(image_name))):
        return False
    return match_kv(get(filters, "label"), attrs)
