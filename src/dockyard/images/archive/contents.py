"""One pass over an archive's files: blobs into the store, small JSON files kept in memory.

`docker save` output is a tar whose manifest.json comes last, and ``docker load`` reads it from
stdin, so the reader cannot seek: every regular file is handled as it streams by. Files named
``blobs/<alg>/<hex>`` are added with that digest as the expected one (a mismatch is an error naming
the entry); ``layer.tar`` files and anything large are added without; the rest (manifest.json,
repositories, index.json, configs, VERSION, json) stays in memory. Symlinks and hardlinks between
entries (Docker links a layer shared by two images) are resolved by name afterwards.
"""

from __future__ import annotations

import os
import posixpath
import tarfile
from dataclasses import dataclass, field
from typing import BinaryIO

from dockyard.errors import DockyardError, InvalidArgument, NotFound
from dockyard.images.archive.types import BlobStore
from dockyard.oci import digest as digests

SMALL_FILE_LIMIT = 4 << 20  # bigger files go to the store even when not named like a blob
_MAX_LINK_HOPS = 16
READ_BUFFER = 1 << 20


@dataclass(frozen=True)
class StoredFile:
    digest: str
    size: int


@dataclass
class ArchiveContents:
    """The files of an archive by normalised name: in memory, in the store, or links."""

    data: dict[str, bytes] = field(default_factory=dict)
    blobs: dict[str, StoredFile] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)  # name -> target name (normalised)

    def _resolve(self, name: str) -> str:
        name = normalise(name)
        for _ in range(_MAX_LINK_HOPS):
            if name not in self.links:
                return name
            name = self.links[name]
        raise InvalidArgument(f"archive entry {name!r}: too many levels of links", path=name)

    def has(self, name: str) -> bool:
        name = self._resolve(name)
        return name in self.data or name in self.blobs

    def read(self, name: str, store: BlobStore) -> bytes:
        """The bytes of a (small) file of the archive."""
        real = self._resolve(name)
        if real in self.data:
            return self.data[real]
        if real in self.blobs:
            with store.open(self.blobs[real].digest) as f:
                return f.read()
        raise NotFound(f"archive has no file {name!r}", path=name)

    def blob(self, name: str, store: BlobStore) -> StoredFile:
        """The file as a blob of the store (small files are added on demand)."""
        real = self._resolve(name)
        if real in self.blobs:
            return self.blobs[real]
        if real in self.data:
            raw = self.data[real]
            stored = StoredFile(store.add(raw, size=len(raw)), len(raw))
            self.blobs[real] = stored
            return stored
        raise NotFound(f"archive has no file {name!r}", path=name)


def normalise(name: str) -> str:
    """``./a/b/`` -> ``a/b``; absolute names and ``..`` are bad input."""
    clean = posixpath.normpath("/" + name.lstrip("/"))[1:] if name else ""
    if name.startswith("/") or ".." in name.split("/"):
        raise InvalidArgument(f"archive entry {name!r}: absolute or '..' path", path=name)
    return clean


def _expected_digest(name: str) -> str | None:
    parts = name.split("/")
    if len(parts) == 3 and parts[0] == "blobs":
        d = f"{parts[1]}:{parts[2]}"
        if not digests.is_valid(d):
            raise InvalidArgument(f"archive entry {name!r}: not a valid blob name", path=name)
        return d
    return None


def _goes_to_store(name: str, size: int) -> bool:
    return size > SMALL_FILE_LIMIT or name.endswith("layer.tar") or name.startswith("blobs/")


def _add_file(contents: ArchiveContents, store: BlobStore, name: str, size: int, f: BinaryIO) -> None:
    if not _goes_to_store(name, size):
        data = f.read()
        if len(data) != size:
            raise InvalidArgument(f"archive entry {name!r}: truncated", path=name)
        contents.data[name] = data
        return
    try:
        d = store.add(f, expected=_expected_digest(name), size=size)
    except DockyardError as e:
        raise type(e)(f"archive entry {name!r}: {e}", path=name) from e
    contents.blobs[name] = StoredFile(d, size)


def ingest_tar(stream: BinaryIO, store: BlobStore) -> ArchiveContents:
    """Stream a tar archive (plain, or gzip-compressed) into ``ArchiveContents``."""
    contents = ArchiveContents()
    # a regular file is read in random-access mode: members are then read straight from the file
    # rather than through tarfile's small-block stream buffer (3x fewer copies for big layers)
    try:
        with (tarfile.open(fileobj=stream, mode="r:*") if _seekable(stream) else
              tarfile.open(fileobj=stream, mode="r|*", bufsize=READ_BUFFER)) as tar:
            for member in tar:
                _ingest_member(contents, store, tar, member)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise InvalidArgument(f"cannot read image archive: {e}") from e
    return contents


def _seekable(stream: BinaryIO) -> bool:
    try:
        return stream.seekable() and stream.tell() == 0
    except (OSError, ValueError):
        return False


def _ingest_member(contents: ArchiveContents, store: BlobStore, tar: tarfile.TarFile,
                   member: tarfile.TarInfo) -> None:
    name = normalise(member.name)
    if member.isfile():
        f = tar.extractfile(member)
        assert f is not None
        _add_file(contents, store, name, member.size, f)  # type: ignore[arg-type]
    elif member.issym():
        target = member.linkname
        joined = target if target.startswith("/") else posixpath.join(posixpath.dirname(name), target)
        contents.links[name] = normalise(posixpath.normpath(joined))
    elif member.islnk():
        contents.links[name] = normalise(member.linkname)


def ingest_dir(root: str, store: BlobStore) -> ArchiveContents:
    """The same as ``ingest_tar`` for an unpacked archive or an OCI layout directory."""
    contents = ArchiveContents()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fname in sorted(filenames):
            path = os.path.join(dirpath, fname)
            name = normalise(os.path.relpath(path, root))
            if os.path.islink(path):
                target = os.readlink(path)
                contents.links[name] = normalise(posixpath.normpath(
                    posixpath.join(posixpath.dirname(name), target)))
            elif os.path.isfile(path):
                with open(path, "rb") as f:
                    _add_file(contents, store, name, os.fstat(f.fileno()).st_size, f)
    return contents
