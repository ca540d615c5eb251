"""Container records on disk and the in-memory index (ids, names, prefixes).

    <data-root>/containers/<id>/
        config.v2.json      the record (tmp + fsync + rename: a kill -9 leaves the old or the new one)
        hostname hosts resolv.conf
        <id>-json.log[.N]   json-file logs (written by the shim)
        exit.json           the shim's exit record of the last run
        rootfs/             mount point of the container's filesystem while it runs
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator

from dockyard.engine.daemon.containers.model import Container
from dockyard.errors import Conflict, NotFound

RECORD = "config.v2.json"


def write_atomic(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dfd = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


class ContainerStore:
    """All containers of a daemon, by id, with name and prefix lookup."""

    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(root, exist_ok=True)
        self._by_id: dict[str, Container] = {}
        self._names: dict[str, str] = {}   # "/name" -> id

    def dir(self, id: str) -> str:
        return os.path.join(self.root, id)

    def load_all(self) -> list[str]:
        """Read every record; directories without a readable record are reported, not loaded."""
        broken: list[str] = []
        for id in sorted(os.listdir(self.root)):
            path = os.path.join(self.root, id, RECORD)
            try:
                with open(path, "rb") as f:
                    c = Container.from_json(json.loads(f.read()))
            except (OSError, ValueError, KeyError):
                broken.append(id)
                continue
            self._by_id[c.id] = c
            self._names[c.name] = c.id
        return broken

    def save(self, c: Container) -> None:
        os.makedirs(self.dir(c.id), exist_ok=True)
        write_atomic(os.path.join(self.dir(c.id), RECORD), json.dumps(c.to_json()).encode())

    def reserve(self, name: str, id: str) -> None:
        """Hold ``name`` for the container ``id`` being created (Conflict if anyone has it)."""
        self.reserve_check(name)
        self._names[name] = id

    def release(self, name: str, id: str) -> None:
        """Drop a reservation that did not become a container (a recorded container keeps its name)."""
        if self._names.get(name) == id and id not in self._by_id:
            del self._names[name]

    def add(self, c: Container) -> None:
        if self._names.get(c.name, c.id) != c.id:
            raise Conflict(_name_conflict(c.name, self._names[c.name]))
        self._by_id[c.id] = c
        self._names[c.name] = c.id
        self.save(c)

    def reserve_check(self, name: str) -> None:
        if name in self._names:
            raise Conflict(_name_conflict(name, self._names[name]))

    def rename(self, c: Container, new_name: str) -> None:
        self.reserve_check(new_name)
        del self._names[c.name]
        c.name = new_name
        self._names[new_name] = c.id
        self.save(c)

    def delete(self, c: Container) -> None:
        self._by_id.pop(c.id, None)
        if self._names.get(c.name) == c.id:
            del self._names[c.name]
        shutil.rmtree(self.dir(c.id), ignore_errors=True)

    def name_taken(self, name: str) -> bool:
        return ("/" + name.lstrip("/")) in self._names

    def __iter__(self) -> Iterator[Container]:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, ref: str) -> Container:
        """By full id, exact name, or unique id prefix (Docker's order)."""
        if ref in self._by_id:
            return self._by_id[ref]
        name = "/" + ref.lstrip("/")
        if self._names.get(name) in self._by_id:
            return self._by_id[self._names[name]]
        if ref:
            found = [c for id, c in self._by_id.items() if id.startswith(ref)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise NotFound(f"No such container: {ref}", id=ref)  # ambiguous prefix: dockerd says no such
        raise NotFound(f"No such container: {ref}", id=ref)


def _name_conflict(name: str, holder: str) -> str:
    return (f'Conflict. The container name "{name}" is already in use by container "{holder}". '
            "You have to remove (or rename) that container to be able to reuse that name.")
