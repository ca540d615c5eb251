"""The ``auth`` and ``http.tls`` sections of the registry config, parsed into typed settings.

Kept apart from the auth code itself so that reading a config never imports bcrypt or PyJWT.
Shapes (distribution's, plus ``auth.token.builtin`` for the issuer dockyard-registry can run)::

    auth:
      htpasswd: {realm: NAME, path: FILE}
      token:
        realm: URL            # where clients get tokens (the built-in issuer serves its path)
        service: NAME         # the audience tokens must carry
        issuer: NAME          # the iss tokens must carry
        rootcertbundle: FILE  # PEM certificates whose keys may sign tokens (optional with builtin)
        builtin: {key: PEM, certificate: PEM, htpasswd: FILE, expiration: 300, anonymouspull: false}
                              # certificate (optional): the key's certificate, sent as the JWT x5c
                              # header so that other registries (distribution) can verify the tokens
    http:
      tls: {certificate: PEM, key: PEM}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dockyard.errors import InvalidArgument

SCHEMA: dict[str, Any] = {
    "htpasswd": {"realm": str, "path": str},
    "token": {"realm": str, "service": str, "issuer": str, "rootcertbundle": str, "autoredirect": None,
              "builtin": {"key": str, "certificate": str, "htpasswd": str, "expiration": int,
                          "anonymouspull": bool}},
}
TLS_SCHEMA: dict[str, Any] = {"certificate": str, "key": str}
DEFAULT_EXPIRATION = 300


@dataclass(frozen=True)
class HtpasswdSettings:
    """Basic authentication against a bcrypt htpasswd file."""

    realm: str
    path: str


@dataclass(frozen=True)
class BuiltinIssuerSettings:
    """The token issuer dockyard-registry serves itself at the realm's path."""

    key: str  # PEM private key (RSA -> RS256, EC P-256 -> ES256)
    htpasswd: str  # the users who may log in
    expiration: int = DEFAULT_EXPIRATION
    anonymous_pull: bool = False
    certificate: str | None = None  # PEM certificate of ``key``: tokens then carry it as ``x5c``


@dataclass(frozen=True)
class TokenSettings:
    """Bearer token authentication (distribution's ``auth.token``)."""

    realm: str
    service: str
    issuer: str
    rootcertbundle: str | None = None
    builtin: BuiltinIssuerSettings | None = None


AuthSettings = HtpasswdSettings | TokenSettings


@dataclass(frozen=True)
class TlsSettings:
    """HTTPS with this certificate chain and key (both PEM files)."""

    certificate: str
    key: str


def _text(section: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = section.get(key, default)
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"configuration: {where}.{key} must be a non-empty string")
    return value


def _optional_text(section: dict[str, Any], key: str, where: str) -> str | None:
    return _text(section, key, where) if section.get(key) is not None else None


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidArgument(f"configuration: {where} must be true or false, got {value!r}")


def _int(value: Any, where: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidArgument(f"configuration: {where} must be a number of seconds, got {value!r}") from None
    if number <= 0:
        raise InvalidArgument(f"configuration: {where} must be positive, got {number}")
    return number


def parse_auth(raw: Any) -> AuthSettings | None:
    """The ``auth`` section -> settings (None when absent); exactly one scheme may be named."""
    if not raw:
        return None
    if not isinstance(raw, dict):
        raise InvalidArgument("configuration: auth must be a mapping")
    schemes = [k for k in ("htpasswd", "token") if raw.get(k) is not None]
    if len(schemes) != 1:
        raise InvalidArgument("configuration: auth must name exactly one scheme (htpasswd or token), got "
                              + (" and ".join(schemes) or "none"))
    section = raw[schemes[0]]
    if not isinstance(section, dict):
        raise InvalidArgument(f"configuration: auth.{schemes[0]} must be a mapping")
    if schemes[0] == "htpasswd":
        return HtpasswdSettings(realm=_text(section, "realm", "auth.htpasswd", "Registry Realm"),
                                path=_text(section, "path", "auth.htpasswd"))
    return _parse_token(section)


def _parse_token(section: dict[str, Any]) -> TokenSettings:
    where = "auth.token"
    builtin = _parse_builtin(section.get("builtin"))
    bundle = _optional_text(section, "rootcertbundle", where)
    if bundle is None and builtin is None:
        raise InvalidArgument("configuration: auth.token needs rootcertbundle (or a builtin issuer)")
    return TokenSettings(realm=_text(section, "realm", where), service=_text(section, "service", where),
                         issuer=_text(section, "issuer", where), rootcertbundle=bundle, builtin=builtin)


def _parse_builtin(raw: Any) -> BuiltinIssuerSettings | None:
    if raw is None:
        return None
    where = "auth.token.builtin"
    if not isinstance(raw, dict):
        raise InvalidArgument(f"configuration: {where} must be a mapping")
    return BuiltinIssuerSettings(
        key=_text(raw, "key", where), htpasswd=_text(raw, "htpasswd", where),
        expiration=_int(raw.get("expiration", DEFAULT_EXPIRATION), f"{where}.expiration"),
        anonymous_pull=_bool(raw.get("anonymouspull", False), f"{where}.anonymouspull"),
        certificate=_optional_text(raw, "certificate", where))


def parse_tls(raw: Any) -> TlsSettings | None:
    """``http.tls`` -> settings (None when absent); both files are required."""
    if not raw:
        return None
    if not isinstance(raw, dict):
        raise InvalidArgument("configuration: http.tls must be a mapping")
    return TlsSettings(certificate=_text(raw, "certificate", "http.tls"), key=_text(raw, "key", "http.tls"))
