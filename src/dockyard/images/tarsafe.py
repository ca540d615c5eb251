"""Path checks for extracting a tar into a directory that must not be escaped.

Entry names are cleaned (no absolute paths, no ``..``), and every parent
directory is resolved inside the root like `secure_join` does, except that a
symlink whose target would leave the root is an error rather than being
re-rooted: a layer that writes through such a link is malformed or hostile.
Resolved parents are cached, since layers list thousands of entries under a few
hundred directories; the cache is dropped whenever a directory is replaced.
"""

from __future__ import annotations

import os
import stat

from ..errors import InvalidArgument

MAX_SYMLINKS = 40


def clean_name(name: str, entry: str | None = None) -> str:
    """``name`` relative to the root, '' for the root itself; rejects '/x' and '..'.

    ``entry`` is the tar entry named in errors when ``name`` is a link target.
    """
    what = "" if entry is None else f" (link target {name!r})"
    entry = name if entry is None else entry
    if name.startswith("/"):
        raise InvalidArgument(f"layer entry {entry!r}: absolute path not allowed{what}", path=entry)
    parts = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise InvalidArgument(f"layer entry {entry!r}: '..' component not allowed{what}", path=entry)
        parts.append(part)
    return "/".join(parts)


class Resolver:
    """Resolves (and creates) parent directories of entries inside ``root``."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._dirs: dict[str, str] = {"": root}
        self.made: set[str] = set()  # host paths of the parents it had to create

    def forget(self) -> None:
        """Drop cached resolutions (a directory was removed or replaced)."""
        self._dirs = {"": self.root}

    def directory(self, rel: str, entry: str, *, create: bool = True) -> str:
        """Host path of directory ``rel`` (cleaned), never outside the root.

        Missing components are created (0755) when ``create``; otherwise a
        missing component raises InvalidArgument naming ``entry``.
        """
        cached = self._dirs.get(rel)
        if cached is not None:
            return cached
        parts = rel.split("/") if rel else []
        resolved: list[str] = []
        links = 0
        while parts:
            part = parts.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if not resolved:
                    raise InvalidArgument(f"layer entry {entry!r}: path leaves the root through a symlink",
                                          path=entry)
                resolved.pop()
                continue
            host = os.path.join(self.root, *resolved, part)
            try:
                st = os.lstat(host)
            except FileNotFoundError:
                if not create:
                    raise InvalidArgument(f"layer entry {entry!r}: {rel!r} does not exist", path=entry) from None
                os.mkdir(host, 0o755)
                self.made.add(host)
                resolved.append(part)
                continue
            if stat.S_ISDIR(st.st_mode):
                resolved.append(part)
            elif stat.S_ISLNK(st.st_mode):
                links += 1
                link = os.readlink(host)
                if links > MAX_SYMLINKS:
                    raise InvalidArgument(f"layer entry {entry!r}: too many symlinks", path=entry)
                if link.startswith("/"):
                    raise InvalidArgument(
                        f"layer entry {entry!r}: writes through symlink {'/'.join(resolved + [part])!r} -> "
                        f"{link!r}, which leaves the root", path=entry)
                parts = link.split("/") + parts
            else:
                raise InvalidArgument(f"layer entry {entry!r}: parent {part!r} is not a directory", path=entry)
        host = os.path.join(self.root, *resolved)
        self._dirs[rel] = host
        return host
