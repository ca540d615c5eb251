"""The OCI / Docker schema2 image model: descriptors, manifests, indexes, configs.

Parsed documents keep their ``raw`` bytes: a manifest's digest is the digest of
its exact bytes, so ``to_bytes()`` returns ``raw`` whenever the parsed content
is unchanged, and only re-serialises an object built or modified in Python.
Image ID = digest of the config bytes, as in Docker, so an image has the same
ID here and in dockerd. Chain IDs key unpacked layer snapshots.
"""

from __future__ import annotations

import json
import platform as _platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dockyard.errors import InvalidArgument, NotFound
from dockyard.oci import digest as digests
from dockyard.oci import mediatypes as mt


def _load(raw: bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidArgument(f"invalid {what}: not JSON ({e})") from e
    if not isinstance(data, dict):
        raise InvalidArgument(f"invalid {what}: expected a JSON object")
    return data


def _dump(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.os_version:
            d["os.version"] = self.os_version
        if self.os_features:
            d["os.features"] = list(self.os_features)
        if self.variant:
            d["variant"] = self.variant
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Platform:
        try:
            return cls(os=str(d["os"]), architecture=str(d["architecture"]), variant=d.get("variant") or None,
                       os_version=d.get("os.version") or None, os_features=tuple(d.get("os.features") or ()))
        except KeyError as e:
            raise InvalidArgument(f"invalid platform: missing {e.args[0]!r}") from e

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()
    annotations: Mapping[str, str] | None = None
    platform: Platform | None = None
    artifact_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.urls:
            d["urls"] = list(self.urls)
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        if self.platform is not None:
            d["platform"] = self.platform.to_dict()
        if self.artifact_type:
            d["artifactType"] = self.artifact_type
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Descriptor:
        if not isinstance(d, Mapping):
            raise InvalidArgument("invalid descriptor: expected a JSON object")
        try:
            size = d["size"]
            dg = digests.validate(d["digest"])
        except KeyError as e:
            raise InvalidArgument(f"invalid descriptor: missing {e.args[0]!r}") from e
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidArgument(f"invalid descriptor {dg}: bad size {size!r}", id=dg)
        plat = d.get("platform")
        return cls(media_type=str(d.get("mediaType") or ""), digest=dg, size=size,
                   urls=tuple(d.get("urls") or ()), annotations=dict(d["annotations"]) if d.get("annotations") else None,
                   platform=Platform.from_dict(plat) if plat else None, artifact_type=d.get("artifactType") or None)


def _descriptors(items: Any, what: str) -> tuple[Descriptor, ...]:
    if items is None:
        return ()
    if not isinstance(items, list):
        raise InvalidArgument(f"invalid {what}: expected a list")
    return tuple(Descriptor.from_dict(x) for x in items)


class _Document:
    """What a manifest and an index share: byte-exact serialisation and addressing."""

    raw: bytes | None
    media_type: str
    subject: Descriptor | None
    annotations: Mapping[str, str] | None

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_bytes(cls, raw: bytes, media_type: str | None = None) -> Any:
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """The bytes it was parsed from when unchanged (digests depend on them), else fresh JSON."""
        if self.raw is not None and type(self).from_bytes(self.raw) == self:
            return self.raw
        return _dump(self.to_dict())

    def digest(self) -> str:
        return digests.from_bytes(self.to_bytes())

    def descriptor(self) -> Descriptor:
        data = self.to_bytes()
        return Descriptor(self.media_type, digests.from_bytes(data), len(data))

    def _add_tail(self, d: dict[str, Any]) -> dict[str, Any]:
        if self.subject is not None:
            d["subject"] = self.subject.to_dict()
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        return d


@dataclass(frozen=True)
class Manifest(_Document):
    """An image manifest (OCI or Docker schema2): one config and ordered layers."""

    config: Descriptor
    layers: tuple[Descriptor, ...] = ()
    media_type: str = mt.OCI_MANIFEST
    annotations: Mapping[str, str] | None = None
    subject: Descriptor | None = None
    artifact_type: str | None = None
    schema_version: int = 2
    raw: bytes | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"schemaVersion": self.schema_version, "mediaType": self.media_type}
        if self.artifact_type:
            d["artifactType"] = self.artifact_type
        d["config"] = self.config.to_dict()
        d["layers"] = [x.to_dict() for x in self.layers]
        return self._add_tail(d)

    @classmethod
    def from_bytes(cls, raw: bytes, media_type: str | None = None) -> Manifest:
        d = _load(raw, "manifest")
        mtype = d.get("mediaType") or media_type or mt.OCI_MANIFEST
        if mtype not in mt.MANIFESTS:
            raise InvalidArgument(f"invalid manifest: unexpected media type {mtype!r}")
        if "config" not in d:
            raise InvalidArgument("invalid manifest: missing 'config'")
        subject = d.get("subject")
        return cls(config=Descriptor.from_dict(d["config"]), layers=_descriptors(d.get("layers"), "manifest layers"),
                   media_type=mtype, annotations=d.get("annotations") or None,
                   subject=Descriptor.from_dict(subject) if subject else None,
                   artifact_type=d.get("artifactType") or None, schema_version=int(d.get("schemaVersion", 2)),
                   raw=bytes(raw))


@dataclass(frozen=True)
class Index(_Document):
    """An OCI image index or Docker manifest list."""

    manifests: tuple[Descriptor, ...] = ()
    media_type: str = mt.OCI_INDEX
    annotations: Mapping[str, str] | None = None
    subject: Descriptor | None = None
    artifact_type: str | None = None
    schema_version: int = 2
    raw: bytes | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"schemaVersion": self.schema_version}
        if self.media_type:
            d["mediaType"] = self.media_type
        if self.artifact_type:
            d["artifactType"] = self.artifact_type
        d["manifests"] = [x.to_dict() for x in self.manifests]
        return self._add_tail(d)

    @classmethod
    def from_bytes(cls, raw: bytes, media_type: str | None = None) -> Index:
        d = _load(raw, "index")
        mtype = d.get("mediaType") or media_type or mt.OCI_INDEX
        if mtype not in mt.INDEXES:
            raise InvalidArgument(f"invalid index: unexpected media type {mtype!r}")
        subject = d.get("subject")
        return cls(manifests=_descriptors(d.get("manifests"), "index manifests"), media_type=mtype,
                   annotations=d.get("annotations") or None,
                   subject=Descriptor.from_dict(subject) if subject else None,
                   artifact_type=d.get("artifactType") or None, schema_version=int(d.get("schemaVersion", 2)),
                   raw=bytes(raw))


@dataclass(frozen=True)
class ImageConfig:
    """An image configuration (OCI config / Docker container image v1).

    ``data`` is the whole parsed document (history, container config, unknown
    fields); the typed fields are the parts the store needs.
    """

    architecture: str
    os: str
    diff_ids: tuple[str, ...]
    config: Mapping[str, Any] = field(default_factory=dict)
    variant: str | None = None
    created: str | None = None
    history: tuple[Mapping[str, Any], ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    raw: bytes | None = field(default=None, compare=False, repr=False)

    @property
    def platform(self) -> Platform:
        return Platform(self.os, self.architecture, self.variant, self.data.get("os.version") or None)

    def chain_ids(self) -> list[str]:
        return chain_ids(self.diff_ids)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = dict(self.data)
        d["architecture"], d["os"] = self.architecture, self.os
        if self.variant:
            d["variant"] = self.variant
        if self.created:
            d["created"] = self.created
        if self.config:
            d["config"] = dict(self.config)
        if self.history:
            d["history"] = [dict(h) for h in self.history]
        d["rootfs"] = {"type": "layers", "diff_ids": list(self.diff_ids)}
        return d

    def to_bytes(self) -> bytes:
        if self.raw is not None and ImageConfig.from_bytes(self.raw) == self:
            return self.raw
        return _dump(self.to_dict())

    def image_id(self) -> str:
        return digests.from_bytes(self.to_bytes())

    @classmethod
    def from_bytes(cls, raw: bytes) -> ImageConfig:
        d = _load(raw, "image config")
        rootfs = d.get("rootfs") or {}
        if not isinstance(rootfs, dict):
            raise InvalidArgument("invalid image config: 'rootfs' must be an object")
        ids = rootfs.get("diff_ids") or []
        if not isinstance(ids, list):
            raise InvalidArgument("invalid image config: 'rootfs.diff_ids' must be a list")
        return cls(architecture=str(d.get("architecture") or ""), os=str(d.get("os") or ""),
                   diff_ids=tuple(digests.validate(x) for x in ids), config=d.get("config") or {},
                   variant=d.get("variant") or None, created=d.get("created") or None,
                   history=tuple(d.get("history") or ()), data=d, raw=bytes(raw))


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """chainID(L0) = diffID(L0); chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln))."""
    out: list[str] = []
    for d in diff_ids:
        digests.validate(d)
        out.append(d if not out else digests.from_bytes(f"{out[-1]} {d}".encode()))
    return out


def image_id(config_bytes: bytes) -> str:
    """Docker's image ID: the digest of the exact config bytes."""
    return digests.from_bytes(config_bytes)


_ARCH_ALIASES = {"x86_64": ("amd64", None), "amd64": ("amd64", None), "aarch64": ("arm64", "v8"),
                 "arm64": ("arm64", "v8"), "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"),
                 "i386": ("386", None), "i686": ("386", None), "ppc64le": ("ppc64le", None),
                 "s390x": ("s390x", None), "riscv64": ("riscv64", None)}


def host_platform() -> Platform:
    """The platform of this machine in OCI spelling (linux/amd64, linux/arm64/v8, ...)."""
    machine = _platform.machine()
    arch, variant = _ARCH_ALIASES.get(machine, (machine, None))
    return Platform("linux", arch, variant)


def _variant_ok(arch: str, wanted: str | None, have: str | None) -> bool:
    if wanted is None or have == wanted:
        return True
    return have is None and arch == "arm64" and wanted == "v8"


def match_platform(index: Index, os: str = "linux", architecture: str | None = None,
                   variant: str | None = None) -> Descriptor:
    """The manifest of ``index`` for the platform (default: this host); NotFound if none.

    An exact variant match wins over a descriptor with no variant; entries
    without a platform (attestations carry ``unknown/unknown``) never match.
    """
    if architecture is None:
        host = host_platform()
        architecture, variant = host.architecture, variant or host.variant
    best: Descriptor | None = None
    for desc in index.manifests:
        p = desc.platform
        if p is None or p.os != os or p.architecture != architecture:
            continue
        if p.variant == variant:
            return desc
        if best is None and _variant_ok(architecture, variant, p.variant):
            best = desc
    if best is None:
        want = "/".join(x for x in (os, architecture, variant) if x)
        raise NotFound(f"no manifest for platform {want} in index {index.digest()}", id=want)
    return best
