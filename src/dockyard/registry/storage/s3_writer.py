"""The S3 driver's Writer: a buffered multipart upload that can continue an existing object.

S3 has no append.  To append to an object of at least 5 MiB (S3's smallest non-final part) the
upload starts with UploadPartCopy parts that copy the existing object server-side, then the new
bytes follow as ordinary parts; a smaller object is read back and becomes the start of the buffer.
Nothing is visible until ``close``: a single PutObject when everything fits one chunk, else
CompleteMultipartUpload (atomic in S3).  On a failure the multipart upload is aborted.
"""

from __future__ import annotations

from typing import Any

from dockyard.registry.storage.driver import Writer
from dockyard.registry.storage.s3_client import S3Client
from dockyard.registry.storage.s3_config import MAX_CHUNK, MIN_CHUNK


def copy_ranges(size: int, limit: int = MAX_CHUNK) -> list[tuple[int, int]]:
    """Inclusive byte ranges of at most ``limit`` covering ``size`` bytes, all of near-equal size
    (so none is below S3's 5 MiB part minimum when ``size`` itself is not)."""
    count = -(-size // limit)
    piece = -(-size // count)
    return [(start, min(start + piece, size) - 1) for start in range(0, size, piece)]


class S3Writer(Writer):
    """Bytes for one key; ``size`` counts the existing bytes (when appending) plus those written."""

    def __init__(self, client: S3Client, key: str, *, existing: int = 0, head: bytes = b"",
                 copy_existing: bool = False) -> None:
        self._client = client
        self._key = key
        self._chunk = client.settings.chunk_size
        self._buffer = bytearray(head)
        self._copy_size = existing if copy_existing else 0  # leading bytes copied server-side
        self._dirty = not copy_existing and not head and existing == 0  # a fresh object is written even if empty
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._closed = False
        self.size = existing

    @classmethod
    async def open(cls, client: S3Client, key: str, append: bool) -> "S3Writer":
        """A writer that truncates ``key``, or continues it when ``append`` and it exists."""
        info = await client.head(key) if append else None
        if info is None:
            return cls(client, key)
        if info.size >= MIN_CHUNK:
            return cls(client, key, existing=info.size, copy_existing=True)
        head = await client.get_bytes(key, key) if info.size else b""
        return cls(client, key, existing=info.size, head=head)

    async def write(self, data: bytes) -> None:
        if self._closed:
            raise ValueError("write to a closed writer")
        if not data:
            return
        self._dirty = True
        self._buffer += data
        self.size += len(data)
        try:
            while len(self._buffer) >= self._chunk:
                await self._upload_part(bytes(self._buffer[:self._chunk]))
                del self._buffer[:self._chunk]
        except BaseException:
            await self._abort()
            raise

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._dirty:
            return  # appended nothing: the object stays as it is
        try:
            if self._upload_id is None and not self._copy_size:
                await self._client.put(self._key, bytes(self._buffer))
                return
            if self._buffer or not self._parts:
                await self._upload_part(bytes(self._buffer))
            await self._client.call("complete_multipart_upload", self._key, Key=self._key,
                                    UploadId=self._upload_id, MultipartUpload={"Parts": self._parts})
        except BaseException:
            await self._abort()
            raise
        finally:
            self._buffer = bytearray()

    async def _start(self) -> str:
        """Create the multipart upload, beginning with copies of the existing object if appending."""
        if self._upload_id is None:
            r = await self._client.call("create_multipart_upload", self._key, Key=self._key,
                                        **self._client.settings.write_args())
            self._upload_id = str(r["UploadId"])
            for first, last in copy_ranges(self._copy_size) if self._copy_size else []:
                part = await self._client.call(
                    "upload_part_copy", self._key, Key=self._key, UploadId=self._upload_id,
                    PartNumber=len(self._parts) + 1, CopySource={"Bucket": self._client.bucket, "Key": self._key},
                    CopySourceRange=f"bytes={first}-{last}")
                self._parts.append({"PartNumber": len(self._parts) + 1, "ETag": part["CopyPartResult"]["ETag"]})
        return self._upload_id

    async def _upload_part(self, data: bytes) -> None:
        upload_id = await self._start()
        number = len(self._parts) + 1
        r = await self._client.call("upload_part", self._key, Key=self._key, UploadId=upload_id,
                                    PartNumber=number, Body=data)
        self._parts.append({"PartNumber": number, "ETag": r["ETag"]})

    async def _abort(self) -> None:
        self._closed = True
        if self._upload_id is None:
            return
        upload_id, self._upload_id = self._upload_id, None
        try:
            await self._client.call("abort_multipart_upload", self._key, Key=self._key, UploadId=upload_id)
        except Exception:  # best effort: a lifecycle rule cleans up what is left
            pass
