"""The ``storage.s3`` section (distribution's key names) parsed into S3Settings.

Values may arrive as YAML scalars (bool, int) or as text (REGISTRY_STORAGE_S3_* overrides are
strings), so booleans and sizes accept both.  Errors name the key: "configuration: storage.s3.<key> ...".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dockyard.errors import InvalidArgument

MIB = 1 << 20
MIN_CHUNK = 5 * MIB  # S3's smallest non-final multipart part
DEFAULT_CHUNK = 10 * MIB  # distribution's default chunksize
MAX_CHUNK = 5 << 30  # S3's largest part
STORAGE_CLASSES = ("STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
                   "GLACIER", "GLACIER_IR", "DEEP_ARCHIVE", "OUTPOSTS", "EXPRESS_ONEZONE", "NONE")
KNOWN = ("accesskey", "secretkey", "region", "regionendpoint", "forcepathstyle", "bucket", "rootdirectory",
         "secure", "skipverify", "v4auth", "chunksize", "encrypt", "keyid", "storageclass",
         "multipartcopychunksize", "multipartcopymaxconcurrency", "multipartcopythresholdsize",
         "loglevel", "useragent")


@dataclass(frozen=True)
class S3Settings:
    """Everything the S3 driver needs to reach its bucket and shape its requests."""

    bucket: str
    region: str = "us-east-1"
    endpoint: str | None = None  # full URL (scheme added from ``secure`` when the config gave none)
    access_key: str | None = None  # None: boto3's default chain (AWS_* env, profile, instance role)
    secret_key: str | None = None
    force_path_style: bool = False
    secure: bool = True
    skip_verify: bool = False
    root_directory: str = ""  # key prefix without leading/trailing "/"
    chunk_size: int = DEFAULT_CHUNK
    encrypt: bool = False
    key_id: str | None = None
    storage_class: str | None = "STANDARD"
    copy_chunk_size: int = 32 * MIB
    copy_max_concurrency: int = 100
    copy_threshold: int = 32 * MIB
    user_agent: str | None = None

    def write_args(self) -> dict[str, str]:
        """Extra arguments for every request that creates an object (put, multipart, copy)."""
        args: dict[str, str] = {}
        if self.encrypt:
            args["ServerSideEncryption"] = "aws:kms" if self.key_id else "AES256"
            if self.key_id:
                args["SSEKMSKeyId"] = self.key_id
        if self.storage_class:
            args["StorageClass"] = self.storage_class
        return args


def parse(raw: dict[str, Any]) -> S3Settings:
    """Validate the raw ``storage.s3`` mapping; InvalidArgument names the offending key."""
    if not isinstance(raw, dict):
        raise InvalidArgument("configuration: storage.s3 must be a mapping")
    for key in raw:
        if key not in KNOWN:
            raise InvalidArgument(f"configuration: unknown key 'storage.s3.{key}' (known here: {', '.join(KNOWN)})")
    bucket = _text(raw, "bucket")
    if not bucket:
        raise InvalidArgument("configuration: storage.s3.bucket is required")
    access, secret = _text(raw, "accesskey"), _text(raw, "secretkey")
    if bool(access) != bool(secret):
        raise InvalidArgument("configuration: storage.s3.accesskey and storage.s3.secretkey must be set together")
    if not _bool(raw, "v4auth", True):
        raise InvalidArgument("configuration: storage.s3.v4auth: only true (AWS signature version 4) is supported")
    secure = _bool(raw, "secure", True)
    return S3Settings(
        bucket=bucket, region=_text(raw, "region") or "us-east-1",
        endpoint=_endpoint(_text(raw, "regionendpoint"), secure),
        access_key=access or None, secret_key=secret or None,
        force_path_style=_bool(raw, "forcepathstyle", False), secure=secure,
        skip_verify=_bool(raw, "skipverify", False), root_directory=_text(raw, "rootdirectory").strip("/"),
        chunk_size=_int(raw, "chunksize", DEFAULT_CHUNK, MIN_CHUNK, MAX_CHUNK),
        encrypt=_bool(raw, "encrypt", False), key_id=_text(raw, "keyid") or None,
        storage_class=_storage_class(raw),
        copy_chunk_size=_int(raw, "multipartcopychunksize", 32 * MIB, MIN_CHUNK, MAX_CHUNK),
        copy_max_concurrency=_int(raw, "multipartcopymaxconcurrency", 100, 1, 1000),
        copy_threshold=_int(raw, "multipartcopythresholdsize", 32 * MIB, 0, MAX_CHUNK),
        user_agent=_text(raw, "useragent") or None)


def _text(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise InvalidArgument(f"configuration: storage.s3.{key} must be a string")
    return str(value).strip()


def _bool(raw: dict[str, Any], key: str, default: bool) -> bool:
    value = raw.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InvalidArgument(f"configuration: storage.s3.{key} must be true or false, got {value!r}")


def _int(raw: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = raw.get(key)
    if value is None or value == "":
        return default
    try:
        number = value if isinstance(value, int) and not isinstance(value, bool) else int(str(value).strip())
    except ValueError:
        raise InvalidArgument(f"configuration: storage.s3.{key} must be an integer, got {value!r}") from None
    if not low <= number <= high:
        raise InvalidArgument(f"configuration: storage.s3.{key} must be between {low} and {high}, got {number}")
    return number


def _endpoint(text: str, secure: bool) -> str | None:
    if not text:
        return None
    if "://" in text:
        if not text.startswith(("http://", "https://")):
            raise InvalidArgument(f"configuration: storage.s3.regionendpoint {text!r} must be an http(s) URL")
        return text.rstrip("/")
    return f"{'https' if secure else 'http'}://{text.rstrip('/')}"


def _storage_class(raw: dict[str, Any]) -> str | None:
    value = _text(raw, "storageclass").upper() or "STANDARD"
    if value not in STORAGE_CLASSES:
        raise InvalidArgument(f"configuration: storage.s3.storageclass {value!r} is not one of "
                              + ", ".join(STORAGE_CLASSES))
    return None if value == "NONE" else value
