"""Config.User ("name|uid[:group|gid]") and HostConfig.GroupAdd -> process.user.

Resolved against the image's /etc/passwd and /etc/group (looked up inside
the rootfs, symlinks kept inside it) with runc's libcontainer/user rules and
messages, as dockerd does.
"""

from __future__ import annotations

import os
import posixpath

from ....errors import InvalidArgument

MAX_ID = 2**31 - 1
_RANGE_ERROR = f"uids and gids must be in range 0-{MAX_ID}"


def path_in_rootfs(rootfs: str, path: str) -> str:
    """``path`` inside ``rootfs`` with symlinks resolved without leaving it."""
    parts = [p for p in path.split("/") if p]
    current = "/"
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            current = posixpath.dirname(current)
            continue
        candidate = posixpath.join(current, part)
        host = os.path.join(rootfs, candidate.lstrip("/"))
        if os.path.islink(host) and hops < 255:
            hops += 1
            target = os.readlink(host)
            current = "/" if target.startswith("/") else current
            parts = [p for p in target.split("/") if p] + parts
            continue
        current = candidate
    return os.path.join(rootfs, current.lstrip("/"))


def _read_entries(path: str, min_fields: int) -> list[list[str]] | None:
    """Colon-separated lines of a passwd/group file; None if it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    out = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        out.append(fields + [""] * (min_fields - len(fields)))
    return out


def _atoi(text: str) -> int | None:
    try:
        return int(text, 10)
    except ValueError:
        return None


def _check_range(value: int) -> int:
    if value < 0 or value > MAX_ID:
        raise InvalidArgument(_RANGE_ERROR)
    return value


def _find_user(user_arg: str, passwd: list[list[str]] | None) -> tuple[str, int, int] | None:
    uid_arg = _atoi(user_arg)
    for name, _pw, uid, gid, *_rest in passwd or []:
        if (user_arg == "" and _atoi(uid) == 0) or (uid_arg is not None and _atoi(uid) == uid_arg) or (
                uid_arg is None and name == user_arg):
            return name, _atoi(uid) or 0, _atoi(gid) or 0
    return None


def _resolve_group(group_arg: str, groups: list[list[str]] | None) -> int:
    gid_arg = _atoi(group_arg)
    for name, _pw, gid, *_rest in groups or []:
        if (gid_arg is not None and _atoi(gid) == gid_arg) or (gid_arg is None and name == group_arg):
            return _atoi(gid) or 0
    if gid_arg is None:
        raise InvalidArgument(f"unable to find group {group_arg}: no matching entries in group file")
    return _check_range(gid_arg)


def _member_gids(user_name: str, groups: list[list[str]] | None) -> list[int]:
    return [_atoi(g[2]) or 0 for g in groups or [] if user_name in g[3].split(",")]


def _additional(group_add: list[str], groups: list[list[str]] | None) -> list[int]:
    """HostConfig.GroupAdd entries (names or gids) as gids, first match by name or gid."""
    out: list[int] = []
    for wanted in group_add:
        match = next((_atoi(g[2]) or 0 for g in groups or [] if g[0] == wanted or g[2] == wanted), None)
        if match is None:
            number = _atoi(wanted)
            if number is None:
                raise InvalidArgument(f"Unable to find group {wanted}")
            match = _check_range(number)
        if match not in out:
            out.append(match)
    return out


def resolve_user(rootfs: str, user: str, group_add: list[str] | None = None) -> dict:
    """OCI process.user {uid, gid, additionalGids} for ``user`` in the image at ``rootfs``.

    additionalGids starts with the primary gid, then the user's groups from
    /etc/group (only when no group is given), then GroupAdd, as dockerd does.
    """
    passwd = _read_entries(path_in_rootfs(rootfs, "/etc/passwd"), 7)
    groups = _read_entries(path_in_rootfs(rootfs, "/etc/group"), 4)
    user_arg, _, group_arg = (user or "").partition(":")
    group_arg = group_arg.split(":", 1)[0]
    uid, gid, matched = 0, 0, ""
    found = _find_user(user_arg, passwd)
    if found:
        matched, uid, gid = found
    elif user_arg:
        number = _atoi(user_arg)
        if number is None:
            raise InvalidArgument(f"unable to find user {user_arg}: no matching entries in passwd file")
        uid = _check_range(number)
    sgids: list[int] = []
    if group_arg:
        gid = _resolve_group(group_arg, groups)
    elif matched:
        sgids = _member_gids(matched, groups)
    extra = _additional(group_add, groups) if group_add else []
    return {"uid": uid, "gid": gid, "additionalGids": [gid, *sgids, *extra]}
