"""Manifests as a puller needs them: Accept headers, digest checks, index -> platform manifest.

Registries answer a tag with whichever of these the Accept header allows; Docker asks for all
four (schema2, manifest list, OCI manifest, OCI index). A manifest list or OCI index is resolved
to this host's platform (linux/amd64 here) by oci.image.match_platform.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from dockyard.errors import InvalidArgument, NotFound
from dockyard.oci import digest as digests
from dockyard.oci import mediatypes as mt
from dockyard.oci.image import (
    Descriptor,
    Index,
    Manifest,
    Platform,
    host_platform,
    match_platform,
)

ACCEPT = f"{mt.DOCKER_MANIFEST}, {mt.DOCKER_MANIFEST_LIST}, {mt.OCI_MANIFEST}, {mt.OCI_INDEX}"


@dataclass(frozen=True)
class Fetched:
    """A manifest or index as received: exact bytes, media type and digest."""

    data: bytes
    media_type: str
    digest: str

    @property
    def is_index(self) -> bool:
        return mt.is_index(self.media_type)


def media_type_of(data: bytes, content_type: str) -> str:
    """The document's own mediaType, else the Content-Type, else guessed from its fields."""
    try:
        doc = json.loads(data)
    except ValueError:
        raise InvalidArgument("invalid manifest: not JSON") from None
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid manifest: not a JSON object")
    if isinstance(doc.get("mediaType"), str) and doc["mediaType"]:
        return str(doc["mediaType"])
    if content_type in mt.INDEXES or content_type in mt.MANIFESTS:
        return content_type
    if doc.get("schemaVersion") == 1:
        raise InvalidArgument("unsupported manifest format: schema 1 manifests are not supported")
    return mt.OCI_INDEX if "manifests" in doc else mt.OCI_MANIFEST


def checked(data: bytes, content_type: str, expected: str | None) -> Fetched:
    """Verify ``data`` against ``expected`` (when pulling by digest) and wrap it."""
    actual = digests.from_bytes(data, digests.algorithm_of(expected) if expected else "sha256")
    if expected is not None and actual != expected:
        raise InvalidArgument(f"manifest verification failed for digest {expected}")
    media_type = media_type_of(data, content_type)
    if media_type not in mt.INDEXES and media_type not in mt.MANIFESTS:
        raise InvalidArgument(f"unsupported manifest media type {media_type!r}")
    return Fetched(data, media_type, actual)


def parse_platform(text: str) -> Platform:
    """"linux/arm64/v8" -> Platform (``docker pull --platform``); containerd's error for a malformed one."""
    parts = text.strip().lower().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidArgument(f'"{text}": unknown operating system or architecture: invalid argument')
    arch = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64"}.get(parts[1], parts[1])
    return Platform(parts[0], arch, parts[2] if len(parts) == 3 else None)


def platform_name(p: Platform) -> str:
    return f"{p.os}/{p.architecture}" + (f"/{p.variant}" if p.variant else "")


class NoMatchingPlatform(NotFound):
    """The manifest list has no entry for the platform (reported after "Pulling from", as dockerd)."""


def select_platform(index: Fetched, platform: Platform | None = None) -> Descriptor:
    """The entry of a manifest list / OCI index for ``platform`` (default: this host's); dockerd's error
    when there is none."""
    p = platform or host_platform()
    try:
        return match_platform(Index.from_bytes(index.data, index.media_type), p.os, p.architecture, p.variant)
    except NotFound:
        raise NoMatchingPlatform(f"no matching manifest for {platform_name(p)} in the manifest list entries") from None


def parse_manifest(fetched: Fetched) -> Manifest:
    manifest = Manifest.from_bytes(fetched.data, fetched.media_type)
    if not mt.is_config(manifest.config.media_type):
        raise InvalidArgument(f"unsupported config media type {manifest.config.media_type!r} "
                              "(not a container image)")
    for layer in manifest.layers:
        if not mt.is_layer(layer.media_type):
            raise InvalidArgument(f"unsupported layer media type {layer.media_type!r}")
    return manifest
