"""Where everything lives in the driver (distribution-like layout) and the name grammar.

  blobs/<alg>/<hex[:2]>/<hex>/data
  repositories/<name>/_layers/<alg>/<hex>/link
  repositories/<name>/_manifests/revisions/<alg>/<hex>/link
  repositories/<name>/_manifests/tags/<tag>/current/link
  repositories/<name>/_uploads/<uuid>/data, startedat
  repositories/<name>/_referrers/<subject-hex>/<manifest-hex>   (content: the manifest digest)
"""

from __future__ import annotations

import re

from dockyard.errors import InvalidArgument
from dockyard.oci import digest as digests
from dockyard.registry import errors

NAME_MAX = 255
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_NAME = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
_UUID = re.compile(r"^[a-zA-Z0-9-]{1,64}$")


def check_name(name: str) -> str:
    """``name`` if it matches the spec's repository grammar, else NAME_INVALID."""
    if not isinstance(name, str) or len(name) > NAME_MAX or not _NAME.match(name):
        raise errors.name_invalid({"name": name})
    return name


def check_tag(tag: str) -> str:
    """``tag`` if it matches the tag grammar, else TAG_INVALID."""
    if not isinstance(tag, str) or not _TAG.match(tag):
        raise errors.tag_invalid({"tag": tag})
    return tag


def check_digest(d: str) -> str:
    """``d`` if it is a well-formed digest, else DIGEST_INVALID."""
    try:
        return digests.validate(d)
    except InvalidArgument:
        raise errors.digest_invalid({"digest": d}) from None


def is_digest_ref(ref: str) -> bool:
    """True when a manifest reference names a digest rather than a tag."""
    return ":" in ref


def check_uuid(uuid: str) -> str:
    """An upload id we could have issued, else BLOB_UPLOAD_UNKNOWN (it is also a path component)."""
    if not isinstance(uuid, str) or not _UUID.match(uuid):
        raise errors.blob_upload_unknown({"uuid": uuid})
    return uuid


def _split(d: str) -> tuple[str, str]:
    alg, hexpart = d.split(":", 1)
    return alg, hexpart


REPOSITORIES = "repositories"


def blob_dir(d: str) -> str:
    alg, h = _split(d)
    return f"blobs/{alg}/{h[:2]}/{h}"


def blob_data(d: str) -> str:
    return f"{blob_dir(d)}/data"


def repo_dir(name: str) -> str:
    return f"{REPOSITORIES}/{name}"


def layer_link_dir(name: str, d: str) -> str:
    alg, h = _split(d)
    return f"{repo_dir(name)}/_layers/{alg}/{h}"


def layer_link(name: str, d: str) -> str:
    return f"{layer_link_dir(name, d)}/link"


def revision_dir(name: str, d: str) -> str:
    alg, h = _split(d)
    return f"{repo_dir(name)}/_manifests/revisions/{alg}/{h}"


def revision_link(name: str, d: str) -> str:
    return f"{revision_dir(name, d)}/link"


def tags_dir(name: str) -> str:
    return f"{repo_dir(name)}/_manifests/tags"


def tag_dir(name: str, tag: str) -> str:
    return f"{tags_dir(name)}/{tag}"


def tag_link(name: str, tag: str) -> str:
    return f"{tag_dir(name, tag)}/current/link"


def upload_dir(name: str, uuid: str) -> str:
    return f"{repo_dir(name)}/_uploads/{uuid}"


def upload_data(name: str, uuid: str) -> str:
    return f"{upload_dir(name, uuid)}/data"


def upload_started(name: str, uuid: str) -> str:
    return f"{upload_dir(name, uuid)}/startedat"


def referrers_dir(name: str, subject: str) -> str:
    return f"{repo_dir(name)}/_referrers/{_split(subject)[1]}"


def referrer_entry(name: str, subject: str, manifest: str) -> str:
    return f"{referrers_dir(name, subject)}/{_split(manifest)[1]}"
