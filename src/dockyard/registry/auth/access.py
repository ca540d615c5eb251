"""Access scopes: what a request needs (``repository:NAME:pull``...) and whether a grant covers it.

Scope strings are ``type:name:action[,action...]`` (distribution's scope.md); token claims carry
``access: [{"type", "name", "actions": [...]}]``. A granted action ``*`` covers every action.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

PULL, PUSH, DELETE = "pull", "push", "delete"
REPOSITORY_ACTIONS = (PULL, PUSH, DELETE)
CATALOG = ("registry", "catalog", "*")
_METHOD_ACTIONS = {"GET": (PULL,), "HEAD": (PULL,), "POST": (PULL, PUSH), "PUT": (PULL, PUSH),
                   "PATCH": (PULL, PUSH), "DELETE": (DELETE,)}


@dataclass(frozen=True, order=True)
class Access:
    """One action on one resource."""

    type: str
    name: str
    action: str

    def detail(self) -> dict[str, str]:
        """The entry of an UNAUTHORIZED error's detail list (distribution's field names)."""
        return {"Type": self.type, "Class": "", "Name": self.name, "Action": self.action}


def parse_scope(scope: str) -> list[Access]:
    """``repository:a/b:pull,push registry:catalog:*`` -> the Access items (malformed parts skipped)."""
    found: list[Access] = []
    for part in scope.split():
        kind, sep, rest = part.partition(":")
        name, sep2, actions = rest.rpartition(":")
        if not (sep and sep2 and kind and name):
            continue
        found += [Access(kind, name, a) for a in actions.split(",") if a]
    return found


def scope_string(items: Iterable[Access]) -> str:
    """The scope text for ``items``, one ``type:name:actions`` per resource, space-separated."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for a in items:
        actions = grouped.setdefault((a.type, a.name), [])
        if a.action not in actions:
            actions.append(a.action)
    return " ".join(f"{t}:{n}:{','.join(acts)}" for (t, n), acts in grouped.items())


def to_claims(items: Iterable[Access]) -> list[dict[str, Any]]:
    """The ``access`` claim of a token granting ``items``."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for a in items:
        actions = grouped.setdefault((a.type, a.name), [])
        if a.action not in actions:
            actions.append(a.action)
    return [{"type": t, "name": n, "actions": acts} for (t, n), acts in grouped.items()]


def from_claims(claims: Any) -> set[Access]:
    """The Access items a token's ``access`` claim grants (malformed entries grant nothing)."""
    granted: set[Access] = set()
    if not isinstance(claims, list):
        return granted
    for entry in claims:
        if not isinstance(entry, dict):
            continue
        kind, name, actions = entry.get("type"), entry.get("name"), entry.get("actions")
        if isinstance(kind, str) and isinstance(name, str) and isinstance(actions, list):
            granted |= {Access(kind, name, a) for a in actions if isinstance(a, str)}
    return granted


def missing(needed: Iterable[Access], granted: set[Access]) -> list[Access]:
    """The needed items ``granted`` does not cover (``*`` granted covers any action)."""
    return [a for a in needed if a not in granted and Access(a.type, a.name, "*") not in granted]


def required(request: web.Request) -> list[Access]:
    """What ``request`` needs: pull for GET/HEAD, pull+push for writes, delete for DELETE on the
    route's repository (plus pull on a mount's source), ``registry:catalog:*`` for the catalog;
    nothing beyond authentication for ``/v2/`` and unknown paths."""
    path = request.path.rstrip("/")
    if path == "/v2/_catalog":
        return [Access(*CATALOG)]
    name = request.match_info.get("name")
    if not name:
        return []
    needed = [Access("repository", name, a) for a in _METHOD_ACTIONS.get(request.method, (PULL,))]
    source = request.query.get("from")
    if request.method == "POST" and request.query.get("mount") and source and source != name:
        needed.append(Access("repository", source, PULL))
    return needed
