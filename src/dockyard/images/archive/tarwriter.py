"""Writing archive files, into a tar stream or into a directory, through one small interface."""

from __future__ import annotations

import io
import os
import posixpath
import shutil
import tarfile
from typing import BinaryIO, Protocol

from dockyard.errors import InvalidArgument

COPY_BUFFER = 1 << 20


class ArchiveSink(Protocol):
    def add_bytes(self, name: str, data: bytes) -> None: ...

    def add_file(self, name: str, f: BinaryIO, size: int) -> None: ...

    def add_symlink(self, name: str, target: str) -> None: ...

    def close(self) -> None: ...


class TarSink:
    """Entries of a tar stream; deterministic headers (root-owned, mtime 0) as `docker save` writes."""

    def __init__(self, out: BinaryIO) -> None:
        self._tar = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, copybufsize=COPY_BUFFER)  # type: ignore[call-overload]
        self._dirs: set[str] = set()

    def _info(self, name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime = kind, mode, 0
        info.uname = info.gname = "root"
        return info

    def _parents(self, name: str) -> None:
        parent = posixpath.dirname(name)
        if parent and parent not in self._dirs:
            self._parents(parent)
            self._dirs.add(parent)
            self._tar.addfile(self._info(parent + "/", tarfile.DIRTYPE, 0o755))

    def add_bytes(self, name: str, data: bytes) -> None:
        self.add_file(name, io.BytesIO(data), len(data))

    def add_file(self, name: str, f: BinaryIO, size: int) -> None:
        self._parents(name)
        info = self._info(name, tarfile.REGTYPE, 0o644)
        info.size = size
        self._tar.addfile(info, f)

    def add_symlink(self, name: str, target: str) -> None:
        self._parents(name)
        info = self._info(name, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        self._tar.addfile(info)

    def close(self) -> None:
        self._tar.close()


class DirSink:
    """The same entries as files under a directory (an OCI layout for skopeo's ``oci:DIR``)."""

    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(root, exist_ok=True)

    def _path(self, name: str) -> str:
        if name.startswith("/") or ".." in name.split("/"):
            raise InvalidArgument(f"bad archive entry name {name!r}", path=name)
        path = os.path.join(self.root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def add_bytes(self, name: str, data: bytes) -> None:
        self.add_file(name, io.BytesIO(data), len(data))

    def add_file(self, name: str, f: BinaryIO, size: int) -> None:
        path = self._path(name)
        tmp = path + ".tmp"
        with open(tmp, "wb") as out:
            shutil.copyfileobj(f, out, COPY_BUFFER)
        os.replace(tmp, path)

    def add_symlink(self, name: str, target: str) -> None:
        path = self._path(name)
        if os.path.lexists(path):
            os.unlink(path)
        os.symlink(target, path)

    def close(self) -> None:
        pass
