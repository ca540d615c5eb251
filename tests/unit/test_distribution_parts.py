"""Small pieces of dockyard.distribution: endpoints, auth parsing, manifests, progress bars."""

from __future__ import annotations

import base64
import json

import pytest

from dockyard.distribution import manifests
from dockyard.distribution.client import (
    Credentials,
    error_of,
    not_found,
    parse_challenge,
)
from dockyard.distribution.endpoints import endpoint_for, endpoints_for, is_insecure
from dockyard.distribution.progress import bar, human_size, short
from dockyard.errors import InvalidArgument, NotFound
from dockyard.oci import mediatypes as mt
from dockyard.oci.image import host_platform


def test_endpoints_follow_dockers_rules() -> None:
    assert endpoint_for("docker.io").urls == ("https://registry-1.docker.io",)
    assert endpoint_for("127.0.0.1:5000").urls == ("https://127.0.0.1:5000", "http://127.0.0.1:5000")
    assert endpoint_for("localhost:5000").insecure
    assert endpoint_for("[::1]:5000").insecure
    assert not endpoint_for("reg.example.com:5000").insecure
    assert is_insecure("reg.example.com:5000", ["reg.example.com:5000"])
    assert not is_insecure("reg.example.com:5001", ["reg.example.com:5000"])
    assert is_insecure("10.1.2.3:5000", ["10.0.0.0/8"])
    assert not is_insecure("11.1.2.3:5000", ["10.0.0.0/8"])
    hub = endpoints_for("docker.io", (), ("https://mirror.example", "http://10.0.0.1:5000/"))
    assert [e.urls for e in hub] == [("https://mirror.example",), ("http://10.0.0.1:5000",),
                                     ("https://registry-1.docker.io",)]
    assert [e.urls for e in endpoints_for("quay.io", (), ("https://mirror.example",))] == [("https://quay.io",)]


def test_challenges_and_credentials() -> None:
    scheme, params = parse_challenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                                     'scope="repository:library/busybox:pull"')
    assert scheme == "bearer"
    assert params == {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                      "scope": "repository:library/busybox:pull"}
    assert parse_challenge('Basic realm="Registry Realm"') == ("basic", {"realm": "Registry Realm"})
    header = base64.urlsafe_b64encode(json.dumps({"username": "me", "password": "s3cret",
                                                  "serveraddress": "x"}).encode()).decode().rstrip("=")
    creds = Credentials.from_header(header)
    assert creds == Credentials("me", "s3cret")
    assert creds.basic() == "Basic " + base64.b64encode(b"me:s3cret").decode()
    assert Credentials.from_header("") is None and Credentials.from_header("e30=") is None  # "{}"
    assert Credentials.from_header("!!!") is None


def test_registry_errors_become_dockers_text() -> None:
    e = error_of(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')
    err = not_found("127.0.0.1:5000/app:nope", e)
    assert isinstance(err, NotFound)
    assert err.message == "manifest for 127.0.0.1:5000/app:nope not found: manifest unknown: manifest unknown"
    denied = not_found("busybox:latest", error_of(401, b'{"errors":[{"code":"DENIED","message":"no"}]}'))
    assert denied.message == ("pull access denied for busybox, repository does not exist or may require "
                              "'docker login': denied: no")


def test_manifest_checks() -> None:
    raw = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                      "config": {"mediaType": mt.OCI_CONFIG, "digest": "sha256:" + "a" * 64, "size": 2},
                      "layers": []}).encode()
    fetched = manifests.checked(raw, "text/plain", None)
    assert fetched.media_type == mt.OCI_MANIFEST and not fetched.is_index
    with pytest.raises(InvalidArgument, match="manifest verification failed"):
        manifests.checked(raw, "", "sha256:" + "b" * 64)
    with pytest.raises(InvalidArgument, match="schema 1"):
        manifests.checked(b'{"schemaVersion": 1, "name": "x"}', "application/json", None)
    index = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": mt.OCI_MANIFEST, "digest": "sha256:" + "c" * 64, "size": 1,
         "platform": {"os": "linux", "architecture": "riscv64"}}]}).encode()
    fetched = manifests.checked(index, mt.OCI_INDEX, None)
    assert fetched.is_index
    if host_platform().architecture != "riscv64":
        with pytest.raises(NotFound, match=r"^no matching manifest for linux/\w+ in the manifest list entries$"):
            manifests.select_platform(fetched)
    assert mt.DOCKER_MANIFEST in manifests.ACCEPT and mt.OCI_INDEX in manifests.ACCEPT


def test_progress_rendering() -> None:
    assert human_size(512) == "512B" and human_size(1234567) == "1.235MB"
    assert short("sha256:0123456789abcdef") == "0123456789ab"
    half = bar(50, 100)
    assert half.startswith("[" + "=" * 24 + ">" + " " * 25 + "]") and half.endswith("50B/100B")
    assert bar(100, 100).startswith("[" + "=" * 50 + "]")
