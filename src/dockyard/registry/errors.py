"""Registry errors: one class carrying the spec's code, message, HTTP status and detail.

The server turns a RegistryError into ``{"errors":[{"code","message","detail"}]}``
with ``status``; the constructors below give each spec code its usual text and
status (distribution/distribution's choices, FEATURES.md §3.4).
"""

from __future__ import annotations

from typing import Any

from dockyard.errors import DockyardError


class RegistryError(DockyardError):
    """An error the registry reports to its client as a spec error code."""

    def __init__(self, code: str, message: str, status: int, detail: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.detail = detail

    def to_json(self) -> dict[str, Any]:
        """One entry of the ``errors`` array of an error body."""
        return {"code": self.code, "message": self.message, "detail": self.detail}


def blob_unknown(detail: Any = None) -> RegistryError:
    return RegistryError("BLOB_UNKNOWN", "blob unknown to registry", 404, detail)


def blob_upload_invalid(detail: Any = None) -> RegistryError:
    return RegistryError("BLOB_UPLOAD_INVALID", "blob upload invalid", 400, detail)


def blob_upload_unknown(detail: Any = None) -> RegistryError:
    return RegistryError("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", 404, detail)


def digest_invalid(detail: Any = None) -> RegistryError:
    return RegistryError("DIGEST_INVALID", "provided digest did not match uploaded content", 400, detail)


def manifest_blob_unknown(detail: Any = None) -> RegistryError:
    return RegistryError("MANIFEST_BLOB_UNKNOWN", "blob unknown to registry", 400, detail)


def manifest_invalid(detail: Any = None) -> RegistryError:
    return RegistryError("MANIFEST_INVALID", "manifest invalid", 400, detail)


def manifest_unknown(detail: Any = None) -> RegistryError:
    return RegistryError("MANIFEST_UNKNOWN", "manifest unknown", 404, detail)


def name_invalid(detail: Any = None) -> RegistryError:
    return RegistryError("NAME_INVALID", "invalid repository name", 400, detail)


def name_unknown(detail: Any = None) -> RegistryError:
    return RegistryError("NAME_UNKNOWN", "repository name not known to registry", 404, detail)


def size_invalid(detail: Any = None) -> RegistryError:
    return RegistryError("SIZE_INVALID", "provided length did not match content length", 400, detail)


def tag_invalid(detail: Any = None) -> RegistryError:
    return RegistryError("TAG_INVALID", "manifest tag did not match URI", 400, detail)


def unsupported(detail: Any = None) -> RegistryError:
    return RegistryError("UNSUPPORTED", "The operation is unsupported.", 405, detail)


def range_invalid(detail: Any = None) -> RegistryError:
    return RegistryError("RANGE_INVALID", "invalid content range", 416, detail)


def pagination_number_invalid(detail: Any = None) -> RegistryError:
    return RegistryError("PAGINATION_NUMBER_INVALID", "invalid number of results requested", 400, detail)


def unknown(detail: Any = None) -> RegistryError:
    return RegistryError("UNKNOWN", "unknown error", 500, detail)


def denied(detail: Any = None, message: str = "requested access to the resource is denied") -> RegistryError:
    return RegistryError("DENIED", message, 403, detail)
