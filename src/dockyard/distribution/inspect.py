"""``GET /distribution/{name}/json``: what the registry holds for a reference, without pulling it.

dockerd answers {"Descriptor": {mediaType, digest, size}, "Platforms": [...]}: for a manifest list
or OCI index the platforms of its entries, for a single manifest the platform fields
(architecture, os, os.version, os.features, variant) read from its config blob.
"""

from __future__ import annotations

import json
from typing import Any

from dockyard.distribution import manifests
from dockyard.distribution.client import Credentials, RegistryClient, RegistryError
from dockyard.distribution.endpoints import endpoint_for
from dockyard.errors import DockyardError, NotFound, Unauthorized
from dockyard.oci.image import Index
from dockyard.oci.reference import Reference

PLATFORM_FIELDS = ("architecture", "os", "os.version", "os.features", "variant")


async def inspect(ref: Reference, credentials: Credentials | None, insecure: tuple[str, ...] = ()) -> dict[str, Any]:
    """The descriptor and platforms of ``ref`` (tag or digest) on its registry."""
    async with RegistryClient(endpoint_for(ref.domain, insecure), ref.path, credentials) as client:
        try:
            data, ctype = await client.manifest(ref.digest or ref.tag or "latest", manifests.ACCEPT)
            fetched = manifests.checked(data, ctype, ref.digest)
            if fetched.is_index:
                index = Index.from_bytes(fetched.data, fetched.media_type)
                platforms = [d.platform.to_dict() if d.platform else {"architecture": "", "os": ""}
                             for d in index.manifests]
            else:
                config_digest = json.loads(fetched.data)["config"]["digest"]
                platforms = [platform_of(json.loads(await client.blob_bytes(config_digest)))]
        except RegistryError as e:
            raise _error(ref, e) from None
    return {"Descriptor": {"mediaType": fetched.media_type, "digest": fetched.digest, "size": len(fetched.data)},
            "Platforms": platforms}


def platform_of(config: dict[str, Any]) -> dict[str, Any]:
    """An image config's platform in OCI Platform JSON (empty fields left out, as Go's omitempty)."""
    out: dict[str, Any] = {"architecture": config.get("architecture") or "", "os": config.get("os") or ""}
    for key in PLATFORM_FIELDS[2:]:
        if config.get(key):
            out[key] = config[key]
    return out


def _error(ref: Reference, e: RegistryError) -> DockyardError:
    if e.status in (401, 403):
        return Unauthorized(e.message)
    if e.status == 404:
        return NotFound(e.message, id=ref.familiar())
    return e
