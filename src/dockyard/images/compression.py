"""Layer stream decompression: detect by magic, decompress in a pipeline, hash both sides.

A layer blob may be a plain tar, gzip or zstd (bzip2 and xz are accepted too).
`open_layer` wraps the raw stream so that, as the tar reader consumes the
uncompressed bytes, the compressed digest and the diff ID (sha256 of the
uncompressed tar) are computed on the fly, never buffering a whole layer.
Decompression and hashing run in a reader thread (zlib, zstd and hashlib
release the GIL), so they overlap with the extraction work of the caller.
"""

from __future__ import annotations

import bz2
import enum
import hashlib
import lzma
import queue
import threading
import zlib
from typing import BinaryIO, Callable, Iterator

from ..errors import InvalidArgument

CHUNK = 1 << 20


class Compression(enum.Enum):
    """The compressions a layer blob may use."""

    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"
    BZIP2 = "bzip2"
    XZ = "xz"


_MAGIC = ((b"\x1f\x8b", Compression.GZIP), (b"\x28\xb5\x2f\xfd", Compression.ZSTD),
          (b"BZh", Compression.BZIP2), (b"\xfd7zXZ\x00", Compression.XZ))


def detect(head: bytes) -> Compression:
    """The compression of a stream starting with ``head`` (at least 6 bytes when available)."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return Compression.NONE


class CorruptStream(InvalidArgument):
    """The compressed stream is truncated or corrupt."""


def _chunks(raw: BinaryIO, first: bytes, hasher: "hashlib._Hash") -> Iterator[bytes]:
    if first:
        hasher.update(first)
        yield first
    while True:
        data = raw.read(CHUNK)
        if not data:
            return
        hasher.update(data)
        yield data


def _gunzip(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Multi-member gzip; truncation and trailing garbage are errors."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    fed = False
    for data in chunks:
        while data:
            fed = True
            try:
                out = d.decompress(data, CHUNK * 4)
            except zlib.error as e:
                raise CorruptStream(f"corrupt gzip stream: {e}") from e
            if out:
                yield out
            if d.eof:
                data = d.unused_data
                d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                fed = False
            else:
                data = d.unconsumed_tail
    if fed and not d.eof:
        raise CorruptStream("truncated gzip stream: ended before the end-of-stream marker")


def _decompressor_chunks(chunks: Iterator[bytes], make: Callable[[], object], what: str) -> Iterator[bytes]:
    d = make()
    eof = False
    for data in chunks:
        try:
            out = d.decompress(data)  # type: ignore[attr-defined]
        except Exception as e:  # zstd/bz2/lzma raise their own types
            raise CorruptStream(f"corrupt {what} stream: {e}") from e
        if out:
            yield out
        eof = bool(getattr(d, "eof", False))
    if not eof:
        raise CorruptStream(f"truncated {what} stream")


def _zstd(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Multi-frame zstd; truncation is an error."""
    import zstandard

    dctx = zstandard.ZstdDecompressor()
    d = dctx.decompressobj()
    fed = False
    for data in chunks:
        while data:
            fed = True
            try:
                out = d.decompress(data)
            except zstandard.ZstdError as e:
                raise CorruptStream(f"corrupt zstd stream: {e}") from e
            if out:
                yield out
            data = b""
            if d.eof:
                data, d, fed = d.unused_data, dctx.decompressobj(), False
    if fed and not d.eof:
        raise CorruptStream("truncated zstd stream")


class LayerStream:
    """A readable uncompressed view of a layer blob that hashes as it goes.

    ``read`` serves the tar reader. After the tar is consumed, `finish` drains
    the rest (tar padding) and returns (diff_id, uncompressed size,
    compressed digest).
    """

    def __init__(self, raw: BinaryIO, *, threaded: bool = True) -> None:
        first = raw.read(6)
        self.compression = detect(first)
        self._chash = hashlib.sha256()
        self._uhash = hashlib.sha256()
        self.size = 0
        chunks = _chunks(raw, first, self._chash)
        if self.compression is Compression.GZIP:
            source: Iterator[bytes] = _gunzip(chunks)
        elif self.compression is Compression.ZSTD:
            source = _zstd(chunks)
        elif self.compression is Compression.BZIP2:
            source = _decompressor_chunks(chunks, bz2.BZ2Decompressor, "bzip2")
        elif self.compression is Compression.XZ:
            source = _decompressor_chunks(chunks, lzma.LZMADecompressor, "xz")
        else:
            source = chunks
        self._source = self._hashed(source)
        self._chunk = b""
        self._pos = 0
        self._queue: queue.Queue[object] | None = None
        self._stop = threading.Event()
        if threaded:
            self._queue = queue.Queue(maxsize=16)
            self._thread = threading.Thread(target=self._pump, name="layer-decompress", daemon=True)
            self._thread.start()

    def _hashed(self, source: Iterator[bytes]) -> Iterator[bytes]:
        for data in source:
            self._uhash.update(data)
            self.size += len(data)
            yield data

    def _pump(self) -> None:
        assert self._queue is not None
        try:
            for data in self._source:
                while not self._stop.is_set():
                    try:
                        self._queue.put(data, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
            self._queue.put(None)
        except BaseException as e:  # handed to the reading thread
            self._queue.put(e)

    def _next(self) -> bytes | None:
        if self._queue is None:
            return next(self._source, None)
        item = self._queue.get()
        if isinstance(item, BaseException):
            self._queue.put(item)
            raise item
        if item is None:
            self._queue.put(None)
            return None
        assert isinstance(item, bytes)
        return item

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` uncompressed bytes (all the rest when n < 0); whole chunks are not copied."""
        if n is None or n < 0:
            parts = [self._chunk[self._pos:]]
            while (chunk := self._next()) is not None:
                parts.append(chunk)
            self._chunk, self._pos = b"", 0
            return b"".join(parts)
        if self._pos >= len(self._chunk):
            chunk = self._next()
            if chunk is None:
                return b""
            self._chunk, self._pos = chunk, 0
        pos = self._pos
        if pos == 0 and n >= len(self._chunk):
            self._pos = len(self._chunk)
            return self._chunk
        self._pos = min(pos + n, len(self._chunk))
        return self._chunk[pos:self._pos]

    def finish(self) -> tuple[str, int, str]:
        """Drain what the tar reader left (padding) and return (diff_id, size, compressed digest)."""
        self._chunk, self._pos = b"", 0
        while self._next() is not None:
            pass
        return "sha256:" + self._uhash.hexdigest(), self.size, "sha256:" + self._chash.hexdigest()

    def close(self) -> None:
        """Stop the reader thread (after an error the rest of the stream is abandoned)."""
        self._stop.set()
        if self._queue is not None:
            while self._thread.is_alive():
                try:
                    self._queue.get(timeout=0.05)
                except queue.Empty:
                    pass
