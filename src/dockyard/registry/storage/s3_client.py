"""The S3 requests the S3 driver makes, as async calls over one thread-safe boto3 client.

boto3 is blocking, so every request runs in ``asyncio.to_thread``; the client keeps no event-loop
state, so one driver works from any loop.  botocore errors become Dockyard errors here, in one
place: a missing key -> PathNotFound, anything else -> Unavailable naming the operation and key.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from dockyard.errors import Unavailable
from dockyard.registry.storage.driver import PathNotFound
from dockyard.registry.storage.s3_config import S3Settings

T = TypeVar("T")
MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
DELETE_BATCH = 1000  # DeleteObjects' limit


@dataclass(frozen=True)
class ObjectInfo:
    """What HeadObject / ListObjectsV2 tell about one key."""

    key: str
    size: int
    mtime: float


class Missing(Exception):
    """The key is absent (translated to PathNotFound by callers that know the driver path)."""


class RangeNotSatisfiable(Exception):
    """A ranged GET started at or past the end of an existing object (HTTP 416)."""


def make_client(s: S3Settings) -> Any:
    """A boto3 S3 client for ``s`` (SigV4; path-style when forcepathstyle)."""
    session = boto3.session.Session(aws_access_key_id=s.access_key, aws_secret_access_key=s.secret_key,
                                    region_name=s.region)
    config = Config(signature_version="s3v4", s3={"addressing_style": "path" if s.force_path_style else "auto"},
                    retries={"max_attempts": 4, "mode": "standard"},
                    max_pool_connections=max(16, s.copy_max_concurrency),
                    user_agent_extra=s.user_agent, connect_timeout=10, read_timeout=120,
                    request_checksum_calculation="when_required", response_checksum_validation="when_required")
    return session.client("s3", endpoint_url=s.endpoint, use_ssl=s.secure, verify=not s.skip_verify,
                          config=config)


class S3Client:
    """Async S3 operations on one bucket; keys are full object keys (the driver adds its root)."""

    def __init__(self, settings: S3Settings, client: Any | None = None) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self.raw = client if client is not None else make_client(settings)
        self._transfer = TransferConfig(multipart_threshold=settings.copy_threshold or 1,
                                        multipart_chunksize=settings.copy_chunk_size,
                                        max_concurrency=settings.copy_max_concurrency, use_threads=True)

    async def call(self, op: str, key: str, **kwargs: Any) -> Any:
        """Run client method ``op`` with Bucket and ``kwargs``; Missing when the key is absent."""
        fn = getattr(self.raw, op)
        return await self.run(op, key, functools.partial(fn, Bucket=self.bucket, **kwargs))

    async def run(self, op: str, key: str, fn: Callable[[], T]) -> T:
        """``fn()`` in a worker thread with botocore errors translated."""
        try:
            return await asyncio.to_thread(fn)
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code in MISSING_CODES:
                raise Missing(key) from None
            if code == "InvalidRange":
                raise RangeNotSatisfiable(key) from None
            raise Unavailable(f"s3: {op} {self.bucket}/{key}: {code}: "
                              f"{e.response.get('Error', {}).get('Message', '')}", path=key) from None
        except BotoCoreError as e:
            raise Unavailable(f"s3: {op} {self.bucket}/{key}: {e}", path=key) from None

    async def head(self, key: str) -> ObjectInfo | None:
        """Size and mtime of ``key``, or None if it does not exist."""
        try:
            r = await self.call("head_object", key, Key=key)
        except Missing:
            return None
        return ObjectInfo(key, int(r["ContentLength"]), r["LastModified"].timestamp())

    async def get_bytes(self, key: str, path: str) -> bytes:
        """The whole object (PathNotFound for ``path`` when absent)."""
        def read() -> bytes:
            body = self.raw.get_object(Bucket=self.bucket, Key=key)["Body"]
            with body:
                return bytes(body.read())
        try:
            return await self.run("get_object", key, read)
        except Missing:
            raise PathNotFound(path) from None

    async def put(self, key: str, data: bytes) -> None:
        await self.call("put_object", key, Key=key, Body=data, **self.settings.write_args())

    async def has_children(self, prefix: str) -> tuple[bool, float]:
        """Whether anything lives under ``prefix`` ("dir/"), and the first object's mtime if any."""
        r = await self.call("list_objects_v2", prefix, Prefix=prefix, Delimiter="/", MaxKeys=1)
        contents = r.get("Contents") or []
        mtime = contents[0]["LastModified"].timestamp() if contents else 0.0
        return bool(contents or r.get("CommonPrefixes")), mtime

    async def list_level(self, prefix: str) -> tuple[list[str], list[str]]:
        """(object keys, common prefixes) directly under ``prefix``, every page."""
        def walk() -> tuple[list[str], list[str]]:
            keys: list[str] = []
            dirs: list[str] = []
            for page in self._pages(Prefix=prefix, Delimiter="/"):
                keys += [c["Key"] for c in page.get("Contents") or []]
                dirs += [p["Prefix"] for p in page.get("CommonPrefixes") or []]
            return keys, dirs
        return await self.run("list_objects_v2", prefix, walk)

    async def list_tree(self, prefix: str) -> list[ObjectInfo]:
        """Every object under ``prefix`` (no delimiter), every page."""
        def walk() -> list[ObjectInfo]:
            return [ObjectInfo(c["Key"], int(c["Size"]), c["LastModified"].timestamp())
                    for page in self._pages(Prefix=prefix) for c in page.get("Contents") or []]
        return await self.run("list_objects_v2", prefix, walk)

    def _pages(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        paginator = self.raw.get_paginator("list_objects_v2")
        yield from paginator.paginate(Bucket=self.bucket, **kwargs)

    async def delete_keys(self, keys: list[str]) -> None:
        """Delete ``keys`` in order, DELETE_BATCH at a time (absent keys are not an error)."""
        for i in range(0, len(keys), DELETE_BATCH):
            batch = keys[i:i + DELETE_BATCH]
            r = await self.call("delete_objects", batch[0],
                                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
            failed = [e for e in r.get("Errors") or [] if e.get("Code") not in MISSING_CODES | {"NoSuchKey"}]
            if failed:
                first = failed[0]
                raise Unavailable(f"s3: delete_objects {self.bucket}/{first.get('Key')}: "
                                  f"{first.get('Code')}: {first.get('Message')}", path=first.get("Key"))

    async def copy(self, src: str, dst: str) -> None:
        """Server-side copy; s3transfer switches to UploadPartCopy above multipartcopythresholdsize."""
        source = {"Bucket": self.bucket, "Key": src}
        await self.run("copy", src, functools.partial(self.raw.copy, source, self.bucket, dst,
                                                       ExtraArgs=self.settings.write_args() or None,
                                                       Config=self._transfer))

    def close(self) -> None:
        self.raw.close()
