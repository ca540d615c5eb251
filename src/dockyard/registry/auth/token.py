"""Bearer tokens: JWTs signed with RS256 or ES256 (distribution's token.md), issued and verified.

The verifier trusts the public keys of the certificates in ``rootcertbundle``, plus any key it is
given directly (the built-in issuer's). A token whose header carries an ``x5c`` chain is checked
with its leaf certificate, which must be one of the roots or directly issued by one. Claims checked:
``iss`` equals the issuer, ``aud`` holds the service, ``exp``/``nbf`` are valid (60 s leeway).
"""

from __future__ import annotations

import base64
import datetime
import secrets
import time
from collections.abc import Iterable
from typing import Any

import jwt
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from dockyard.errors import InvalidArgument
from dockyard.registry.auth.access import Access, from_claims, to_claims

ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
LEEWAY = 60
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class TokenError(Exception):
    """The token is malformed, badly signed, expired, or for another issuer or service."""


def load_private_key(path: str) -> tuple[PrivateKey, str]:
    """The PEM private key at ``path`` and its JWT algorithm (RSA: RS256, EC P-256: ES256)."""
    try:
        with open(path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
    except (OSError, ValueError, TypeError) as e:
        raise InvalidArgument(f"token signing key {path}: {e}", path=path) from None
    if isinstance(key, rsa.RSAPrivateKey):
        return key, "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        algorithm = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}.get(key.curve.name)
        if algorithm:
            return key, algorithm
    raise InvalidArgument(f"token signing key {path}: only RSA and EC P-256/384/521 keys are supported",
                          path=path)


def load_certificates(path: str) -> list[x509.Certificate]:
    """Every certificate of the PEM bundle at ``path`` (at least one)."""
    try:
        with open(path, "rb") as f:
            certs = x509.load_pem_x509_certificates(f.read())
    except (OSError, ValueError) as e:
        raise InvalidArgument(f"rootcertbundle {path}: {e}", path=path) from None
    return certs


class TokenIssuer:
    """Signs tokens for one issuer/service with one private key."""

    def __init__(self, key_path: str, *, issuer: str, service: str, expiration: int = 300,
                 certificate: str | None = None) -> None:
        self.key, self.algorithm = load_private_key(key_path)
        self.issuer = issuer
        self.service = service
        self.expiration = expiration
        self.headers: dict[str, Any] = {}
        if certificate is not None:
            self.headers["x5c"] = _x5c(load_certificates(certificate), self.key, certificate)

    @property
    def public_key(self) -> PublicKey:
        return self.key.public_key()

    def issue(self, subject: str, granted: Iterable[Access], now: float | None = None) -> dict[str, Any]:
        """The token endpoint's JSON answer for ``subject`` ("" = anonymous) granting ``granted``."""
        issued = int(time.time() if now is None else now)
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "iat": issued, "nbf": issued - 1,
                  "exp": issued + self.expiration, "jti": secrets.token_hex(16), "access": to_claims(granted)}
        token = jwt.encode(claims, self.key, algorithm=self.algorithm, headers=self.headers or None)
        stamp = datetime.datetime.fromtimestamp(issued, datetime.UTC).isoformat().replace("+00:00", "Z")
        return {"token": token, "access_token": token, "expires_in": self.expiration, "issued_at": stamp}


def _x5c(chain: list[x509.Certificate], key: PrivateKey, path: str) -> list[str]:
    """The x5c header value of ``chain`` (leaf first), whose leaf must hold ``key``'s public half."""
    if not chain or _spki(chain[0].public_key()) != _spki(key.public_key()):
        raise InvalidArgument(f"token certificate {path}: its first certificate is not for the signing key",
                              path=path)
    return [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in chain]


class TokenVerifier:
    """Checks tokens for one issuer/service against trusted keys and root certificates."""

    def __init__(self, *, issuer: str, service: str, roots: Iterable[x509.Certificate] = (),
                 keys: Iterable[PublicKey] = ()) -> None:
        self.issuer = issuer
        self.service = service
        self.roots = list(roots)
        self.keys: list[Any] = [c.public_key() for c in self.roots] + list(keys)

    def verify(self, token: str) -> set[Access]:
        """What ``token`` grants; TokenError when it must not be trusted."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise TokenError(f"malformed token: {e}") from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise TokenError(f"token algorithm {algorithm!r} is not accepted")
        candidates = [self._chain_key(header["x5c"])] if header.get("x5c") else self.keys
        last: Exception = TokenError("no trusted key")
        for key in candidates:
            try:
                claims = jwt.decode(token, key, algorithms=[algorithm], audience=self.service,
                                    issuer=self.issuer, leeway=LEEWAY, options={"require": ["exp", "iss", "aud"]})
            except jwt.InvalidSignatureError as e:
                last = e
                continue
            except (jwt.PyJWTError, ValueError, TypeError) as e:
                raise TokenError(f"invalid token: {e}") from None
            return from_claims(claims.get("access"))
        raise TokenError(f"token signature not trusted: {last}")

    def _chain_key(self, chain: Any) -> Any:
        """The public key of the x5c leaf, if that key is trusted, or a root is the leaf or directly issued it."""
        try:
            leaf = x509.load_der_x509_certificate(base64.b64decode(chain[0]))
        except (ValueError, TypeError, IndexError, KeyError) as e:
            raise TokenError(f"token x5c header: {e}") from None
        if _spki(leaf.public_key()) in {_spki(k) for k in self.keys}:  # a key trusted directly
            return leaf.public_key()
        for root in self.roots:
            if root == leaf:
                return leaf.public_key()
            try:
                leaf.verify_directly_issued_by(root)
                return leaf.public_key()
            except (InvalidSignature, ValueError, TypeError):
                continue
        raise TokenError("token x5c certificate is not signed by a trusted root")


def _spki(key: Any) -> bytes:
    """A public key's DER SubjectPublicKeyInfo, to compare keys."""
    return bytes(key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
