"""Query and body parameters the way dockerd reads them."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from dockyard.errors import DockyardError, InvalidArgument


def query_bool(request: web.Request, name: str, default: bool = False) -> bool:
    """Docker's boolValue: absent -> default; "", "0", "no", "false", "none" -> False; anything else True."""
    if name not in request.query:
        return default
    return request.query[name].strip().lower() not in ("", "0", "no", "false", "none")


def query_int(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name, "")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidArgument(f'strconv.Atoi: parsing "{raw}": invalid syntax') from None


def query_list(request: web.Request, name: str) -> list[str]:
    return request.query.getall(name, [])


def query_filters(request: web.Request) -> dict[str, list[str]]:
    from dockyard.engine.daemon.filters import parse_filters
    raw = request.query.get("filters")
    if raw:
        try:
            json.loads(raw)
        except ValueError as e:  # dockerd 20.10 answers undecodable filters with 500
            raise DockyardError(f"invalid filters: {e}") from None
    return parse_filters(raw)


async def read_json(request: web.Request, *, required: bool = False) -> dict[str, Any]:
    """The JSON object body; an empty body is {} unless required (dockerd: "request body can't be empty")."""
    raw = await request.read()
    if not raw.strip():
        if required:
            raise InvalidArgument("bad parameter: request body can't be empty")
        return {}
    try:
        body = json.loads(raw)
    except ValueError as e:  # dockerd 20.10: a body that does not decode is a 500
        raise DockyardError(f"invalid JSON: {e}") from None
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidArgument("invalid JSON: expected an object")
    return body
