"""Registry protocol details over http.client, against distribution 2.8 AND dockyard-registry.

Each scenario returns observations (statuses, error codes, headers) that must equal SPEC;
DISTRIBUTION_2_8 records where distribution 2.8 differs from the spec (checked too, so the
reference's behaviour is pinned). A dockyard failure is a bug to fix. The registries come from the
``registry``/``client`` fixtures of tests/interop/conftest.py.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from typing import Any
from unittest.mock import ANY  # in DISTRIBUTION_2_8: not compared

import pytest

from tests.support.registries import (
    OCI_MANIFEST,
    RegistryClient,
    RegistryProcess,
    Response,
    image_manifest,
    sha256,
    with_query,
)

pytestmark = [pytest.mark.interop, pytest.mark.privileged]
SCHEMA2 = "application/vnd.docker.distribution.manifest.v2+json"
OCTETS = {"Content-Type": "application/octet-stream"}
ACCEPT = {"Accept": f"{OCI_MANIFEST}, {SCHEMA2}"}  # distribution 2.8 hides an OCI manifest from other clients


# -- 3. protocol details -----------------------------------------------------------------------------
Scenario = Callable[[RegistryClient, str], dict[str, Any]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__] = fn
    return fn


@scenario
def api_version(c: RegistryClient, repo: str) -> dict[str, Any]:
    r = c.request("GET", "/v2/")
    return {"status": r.status, "api_version": r.headers.get("Docker-Distribution-API-Version")}


@scenario
def chunked_upload(c: RegistryClient, repo: str) -> dict[str, Any]:
    data = os.urandom(25)
    start = c.request("POST", f"/v2/{repo}/blobs/uploads/")
    p1 = c.patch(start.headers["Location"], data[:10], 0)
    status = c.request("GET", p1.headers["Location"])
    p2 = c.patch(status.headers["Location"], data[10:20], 10)
    done = c.request("PUT", with_query(p2.headers["Location"], digest=sha256(data)), data[20:], OCTETS)
    blob = c.request("GET", f"/v2/{repo}/blobs/{sha256(data)}")
    return {"post": start.status, "uuid_header": "Docker-Upload-UUID" in start.headers,
            "patch": (p1.status, p1.headers.get("Range")), "status": (status.status, status.headers.get("Range")),
            "patch2": (p2.status, p2.headers.get("Range")),
            "put": (done.status, done.headers.get("Docker-Content-Digest") == sha256(data)),
            "blob": (blob.status, blob.body == data, blob.headers.get("Docker-Content-Digest") == sha256(data))}


@scenario
def chunk_out_of_order(c: RegistryClient, repo: str) -> dict[str, Any]:
    start = c.request("POST", f"/v2/{repo}/blobs/uploads/")
    p1 = c.patch(start.headers["Location"], b"0123456789", 0)
    loc = p1.headers["Location"]
    bad = c.patch(loc, b"abcde", 20)
    after = c.request("GET", bad.headers.get("Location", loc))
    return {"first": p1.status, "out_of_order": bad.status, "after": (after.status, after.headers.get("Range"))}


@scenario
def monolithic_post(c: RegistryClient, repo: str) -> dict[str, Any]:
    data = os.urandom(40)
    r = c.request("POST", f"/v2/{repo}/blobs/uploads/?digest={sha256(data)}", data, OCTETS)
    if r.status == 202:  # the spec's fallback: the registry wants POST then PUT
        c.request("PUT", with_query(r.headers["Location"], digest=sha256(data)), data, OCTETS)
    head = c.request("HEAD", f"/v2/{repo}/blobs/{sha256(data)}")
    return {"status": r.status, "blob": (head.status, head.headers.get("Content-Length"))}


@scenario
def digest_mismatch(c: RegistryClient, repo: str) -> dict[str, Any]:
    start = c.request("POST", f"/v2/{repo}/blobs/uploads/")
    r = c.request("PUT", with_query(start.headers["Location"], digest=sha256(b"other")), b"data", OCTETS)
    return {"put": r.err(), "blob_after": c.request("HEAD", f"/v2/{repo}/blobs/{sha256(b'data')}").status,
            "other_after": c.request("HEAD", f"/v2/{repo}/blobs/{sha256(b'other')}").status}


@scenario
def manifest_blob_unknown(c: RegistryClient, repo: str) -> dict[str, Any]:
    config = c.upload_blob(repo, b"{}")
    body = image_manifest(config, 2, [(sha256(b"never uploaded"), 14)])
    r = c.request("PUT", f"/v2/{repo}/manifests/v1", body, {"Content-Type": OCI_MANIFEST})
    return {"put": r.err(), "after": c.request("GET", f"/v2/{repo}/manifests/v1", headers=ACCEPT).err()}


@scenario
def tags_pagination(c: RegistryClient, repo: str) -> dict[str, Any]:
    for tag in ("c", "a", "b"):
        c.push_image(repo, tag, [tag.encode()])
    first = c.request("GET", f"/v2/{repo}/tags/list?n=1")
    walk = c.walk(f"/v2/{repo}/tags/list?n=1", "tags")
    empty = c.request("GET", f"/v2/{repo}/tags/list?n=0")
    return {"first": first.json(), "link": first.next_link() is not None, "walk": walk,
            "n0": (empty.json().get("tags"), empty.next_link()),
            "unknown_repo": c.request("GET", f"/v2/{repo}-none/tags/list").err()}


@scenario
def catalog_pagination(c: RegistryClient, repo: str) -> dict[str, Any]:
    for sub in ("b", "a"):
        c.push_image(f"{repo}/{sub}", "v1", [sub.encode()])
    full = c.request("GET", "/v2/_catalog").json()["repositories"]
    first = c.request("GET", "/v2/_catalog?n=1")
    walk = c.walk("/v2/_catalog?n=1", "repositories")
    return {"first_size": len(first.json()["repositories"]), "link": first.next_link() is not None,
            "walk_is_full": walk == full, "sorted": full == sorted(full),
            "ours": [r for r in full if r.startswith(repo + "/")]}


@scenario
def blob_range(c: RegistryClient, repo: str) -> dict[str, Any]:
    data = os.urandom(25)
    digest = c.upload_blob(repo, data)
    r = c.request("GET", f"/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=2-5"})
    head = c.request("HEAD", f"/v2/{repo}/blobs/{digest}")
    return {"status": r.status, "content_range": r.headers.get("Content-Range"), "body": r.body == data[2:6],
            "head": (head.status, head.headers.get("Content-Length"), head.headers.get("Docker-Content-Digest") == digest),
            "unknown": c.request("GET", f"/v2/{repo}/blobs/{sha256(b'unknown')}").err()}


@scenario
def cross_repo_mount(c: RegistryClient, repo: str) -> dict[str, Any]:
    digest = c.upload_blob(f"{repo}/src", os.urandom(30))
    r = c.request("POST", f"/v2/{repo}/dst/blobs/uploads/?mount={digest}&from={repo}/src")
    unknown = c.request("POST", f"/v2/{repo}/dst/blobs/uploads/?mount={sha256(b'zz')}&from={repo}/src")
    return {"status": r.status, "digest": r.headers.get("Docker-Content-Digest") == digest,
            "location": "Location" in r.headers, "head": c.request("HEAD", f"/v2/{repo}/dst/blobs/{digest}").status,
            "unknown": (unknown.status, "Location" in unknown.headers)}


@scenario
def manifest_delete(c: RegistryClient, repo: str) -> dict[str, Any]:
    digest, put = c.push_image(repo, "v1", [b"layer"])
    c.push_image(repo, "v2", [b"layer", b"other"])
    got = c.request("GET", f"/v2/{repo}/manifests/v1", headers=ACCEPT)
    r = c.request("DELETE", f"/v2/{repo}/manifests/{digest}")
    by_tag = c.request("DELETE", f"/v2/{repo}/manifests/v2")
    return {"put": (put.status, put.headers.get("Docker-Content-Digest") == digest),
            "get": (got.status, got.headers.get("Content-Type"), got.headers.get("Docker-Content-Digest") == digest),
            "delete": r.status, "by_digest_after": c.request("GET", f"/v2/{repo}/manifests/{digest}", headers=ACCEPT).err(),
            "tag_after": c.request("GET", f"/v2/{repo}/manifests/v1", headers=ACCEPT).err(),
            "delete_by_tag": by_tag.status,
            "v2_after": c.request("GET", f"/v2/{repo}/manifests/v2", headers=ACCEPT).status}


@scenario
def invalid_names(c: RegistryClient, repo: str) -> dict[str, Any]:
    names = {"upper": "a/Upper", "upper_first": "Upper/case", "double_dot": "a..b", "too_long": "a" * 256}
    return {label: c.request("POST", f"/v2/{name}/blobs/uploads/").err() for label, name in names.items()}


@scenario
def upload_unknown(c: RegistryClient, repo: str) -> dict[str, Any]:
    return {"status": c.request("GET", f"/v2/{repo}/blobs/uploads/{uuid.uuid4()}").err()}


@scenario
def tag_invalid(c: RegistryClient, repo: str) -> dict[str, Any]:
    body = image_manifest(c.upload_blob(repo, b"{}"), 2, [])
    return {label: c.request("PUT", f"/v2/{repo}/manifests/{tag}", body, {"Content-Type": OCI_MANIFEST}).err()
            for label, tag in (("leading_dash", "-bad"), ("too_long", "t" * 129))}


@scenario
def digest_checks(c: RegistryClient, repo: str) -> dict[str, Any]:
    body = image_manifest(c.upload_blob(repo, b"{}"), 2, [])
    wrong_ref = c.request("PUT", f"/v2/{repo}/manifests/{sha256(b'zz')}", body, {"Content-Type": OCI_MANIFEST})
    start = c.request("POST", f"/v2/{repo}/blobs/uploads/")
    no_digest = c.request("PUT", start.headers["Location"], b"abc", OCTETS)
    return {"manifest_wrong_digest": wrong_ref.err(), "put_without_digest": no_digest.err(),
            "manifest_after": c.request("GET", f"/v2/{repo}/manifests/{sha256(body)}", headers=ACCEPT).status}


@scenario
def blob_delete_and_cancel(c: RegistryClient, repo: str) -> dict[str, Any]:
    digest = c.upload_blob(repo, b"to delete")
    deleted = c.request("DELETE", f"/v2/{repo}/blobs/{digest}")
    start = c.request("POST", f"/v2/{repo}/blobs/uploads/")
    cancel = c.request("DELETE", start.headers["Location"])
    return {"delete": deleted.status, "head_after": c.request("HEAD", f"/v2/{repo}/blobs/{digest}").status,
            "again": c.request("DELETE", f"/v2/{repo}/blobs/{digest}").err(), "cancel": cancel.status,
            "status_after_cancel": c.request("GET", start.headers["Location"]).err()}


@scenario
def interrupted_transfers(c: RegistryClient, repo: str) -> dict[str, Any]:
    full = os.urandom(100)
    start = c.request("POST", f"/v2/{repo}/blobs/uploads/")
    c.send_partial("PUT", with_query(start.headers["Location"], digest=sha256(full)), OCTETS, 100, full[:10])
    blob_after_put = c.request("HEAD", f"/v2/{repo}/blobs/{sha256(full)}").status
    start = c.request("POST", f"/v2/{repo}/blobs/uploads/")
    loc = c.patch(start.headers["Location"], full[:10], 0).headers["Location"]
    c.send_partial("PATCH", loc, {**OCTETS, "Content-Range": "10-99"}, 90, full[10:40])
    status = c.request("GET", loc)
    offset = int(status.headers.get("Range", "0-9").split("-")[1]) + 1
    resumed = c.patch(status.headers.get("Location", loc), full[offset:], offset)
    done = c.request("PUT", with_query(resumed.headers.get("Location", loc), digest=sha256(full)))
    return {"blob_after_put": blob_after_put, "serving": c.request("GET", "/v2/").status,
            "status_after_patch": (status.status, status.headers.get("Range")), "resumed": (resumed.status, done.status)}


@scenario
def referrers(c: RegistryClient, repo: str) -> dict[str, Any]:
    subject, _ = c.push_image(repo, "v1", [b"base"])
    empty = c.request("GET", f"/v2/{repo}/referrers/{subject}")
    cfg = c.upload_blob(repo, b"{}")
    desc = {"mediaType": "application/vnd.oci.empty.v1+json", "digest": cfg, "size": 2}
    art = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": SIGNATURE, "config": desc,
                      "layers": [desc], "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 1},
                      "annotations": {"k": "v"}}).encode()
    put = c.request("PUT", f"/v2/{repo}/manifests/{sha256(art)}", art, {"Content-Type": OCI_MANIFEST})
    listed = c.request("GET", f"/v2/{repo}/referrers/{subject}")
    other = c.request("GET", f"/v2/{repo}/referrers/{subject}?artifactType=application/vnd.example.other")
    names = {sha256(art): "artifact"}
    return {"empty": _index(empty, names), "put": (put.status, put.headers.get("OCI-Subject") == subject),
            "listed": _index(listed, names),
            "filtered": (*_index(other, names), other.headers.get("OCI-Filters-Applied"))}


def _index(r: Response, names: dict[str, str]) -> tuple[int, str | None, list[Any]]:
    """(status, Content-Type, [(name of digest, artifactType, annotations)]) of a referrers answer."""
    if r.status != 200:
        return r.status, None, []
    return r.status, r.headers.get("Content-Type"), [
        (names.get(m["digest"], m["digest"]), m.get("artifactType"), m.get("annotations"))
        for m in r.json()["manifests"]]


SIGNATURE = "application/vnd.example.sig"
@scenario
def index_and_invalid_manifests(c: RegistryClient, repo: str) -> dict[str, Any]:
    children = [c.push_image(repo, tag, [tag.encode()])[0] for tag in ("amd64", "arm64")]

    def index(digests: list[str]) -> bytes:
        return json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": d, "size": 1, "platform": {"architecture": a, "os": "linux"}}
            for d, a in zip(digests, ("amd64", "arm64"))]}).encode()

    put = c.request("PUT", f"/v2/{repo}/manifests/multi", index(children), {"Content-Type": INDEX})
    got = c.request("GET", f"/v2/{repo}/manifests/multi", headers={"Accept": INDEX})
    bare = c.request("GET", f"/v2/{repo}/manifests/multi")
    missing = c.request("PUT", f"/v2/{repo}/manifests/bad", index([children[0], sha256(b"q")]), {"Content-Type": INDEX})
    image = image_manifest(c.upload_blob(repo, b"{}"), 2, [])
    invalid = {"not_json": (b"{oops", OCI_MANIFEST), "type_mismatch": (image, SCHEMA2),
               "schema1": (b'{"schemaVersion": 1}', "application/vnd.docker.distribution.manifest.v1+prettyjws")}
    return {"put": (put.status, put.headers.get("Docker-Content-Digest") == sha256(index(children))),
            "get": (got.status, got.headers.get("Content-Type"), got.body == index(children)),
            "without_accept": (bare.status, bare.headers.get("Content-Type")), "missing_child": missing.err(),
            **{k: c.request("PUT", f"/v2/{repo}/manifests/bad", b, {"Content-Type": t}).err()
               for k, (b, t) in invalid.items()}}


INDEX = "application/vnd.oci.image.index.v1+json"
SPEC: dict[str, dict[str, Any]] = {
    "api_version": {"status": 200, "api_version": "registry/2.0"},
    "chunked_upload": {"post": 202, "uuid_header": True, "patch": (202, "0-9"), "status": (204, "0-9"),
                       "patch2": (202, "0-19"), "put": (201, True), "blob": (200, True, True)},
    "chunk_out_of_order": {"first": 202, "out_of_order": 416, "after": (204, "0-9")},
    "monolithic_post": {"status": 201, "blob": (200, "40")},
    "digest_mismatch": {"put": (400, ["DIGEST_INVALID"]), "blob_after": 404, "other_after": 404},
    "manifest_blob_unknown": {"put": (400, ["MANIFEST_BLOB_UNKNOWN"]), "after": (404, ["MANIFEST_UNKNOWN"])},
    "tags_pagination": {"first": {"name": "proto/tags-pagination", "tags": ["a"]}, "link": True,
                        "walk": ["a", "b", "c"], "n0": ([], None), "unknown_repo": (404, ["NAME_UNKNOWN"])},
    "catalog_pagination": {"first_size": 1, "link": True, "walk_is_full": True, "sorted": True,
                           "ours": ["proto/catalog-pagination/a", "proto/catalog-pagination/b"]},
    "blob_range": {"status": 206, "content_range": "bytes 2-5/25", "body": True, "head": (200, "25", True),
                   "unknown": (404, ["BLOB_UNKNOWN"])},
    "cross_repo_mount": {"status": 201, "digest": True, "location": True, "head": 200, "unknown": (202, True)},
    "manifest_delete": {"put": (201, True), "get": (200, OCI_MANIFEST, True), "delete": 202,
                        "by_digest_after": (404, ["MANIFEST_UNKNOWN"]), "tag_after": (404, ["MANIFEST_UNKNOWN"]),
                        "delete_by_tag": 202, "v2_after": 404},
    "invalid_names": {"upper": (400, ["NAME_INVALID"]), "upper_first": (400, ["NAME_INVALID"]), "double_dot": (400, ["NAME_INVALID"]),
                      "too_long": (400, ["NAME_INVALID"])},
    "upload_unknown": {"status": (404, ["BLOB_UPLOAD_UNKNOWN"])},
    "tag_invalid": {"leading_dash": (400, ["TAG_INVALID"]), "too_long": (400, ["TAG_INVALID"])},
    "digest_checks": {"manifest_wrong_digest": (400, ["DIGEST_INVALID"]), "put_without_digest": (400, ["DIGEST_INVALID"]),
                      "manifest_after": 404},
    "blob_delete_and_cancel": {"delete": 202, "head_after": 404, "again": (404, ["BLOB_UNKNOWN"]), "cancel": 204,
                               "status_after_cancel": (404, ["BLOB_UPLOAD_UNKNOWN"])},
    "interrupted_transfers": {"blob_after_put": 404, "serving": 200, "status_after_patch": (204, "0-9"),
                              "resumed": (202, 201)},
    "referrers": {"empty": (200, INDEX, []), "put": (201, True),
                  "listed": (200, INDEX, [("artifact", SIGNATURE, {"k": "v"})]),
                  "filtered": (200, INDEX, [], "artifactType")},
    "index_and_invalid_manifests": {"put": (201, True), "get": (200, INDEX, True), "without_accept": (200, INDEX),
                                    "missing_child": (400, ["MANIFEST_BLOB_UNKNOWN"]),
                                    "not_json": (400, ["MANIFEST_INVALID"]), "type_mismatch": (400, ["MANIFEST_INVALID"]),
                                    "schema1": (400, ["MANIFEST_INVALID"])},
}
# Where distribution 2.8.2 (Debian) departs from SPEC, as measured; dockyard-registry must follow SPEC.
DISTRIBUTION_2_8: dict[str, dict[str, Any]] = {
    "chunk_out_of_order": {"out_of_order": 202, "after": (204, "0-14")},  # Content-Range ignored: appended
    "monolithic_post": {"status": 202},                                    # single-POST push unsupported
    "tags_pagination": {"first": {"name": "proto/tags-pagination", "tags": ANY}, "link": False,
                        "walk": ANY, "n0": (ANY, None)},                   # n ignored; order = readdir order
    "manifest_delete": {"delete_by_tag": 400, "v2_after": 200},            # DIGEST_INVALID: no delete by tag
    "invalid_names": {"upper": (404, []), "upper_first": (202, []),  # a first component may be a host name
                      "double_dot": (404, []), "too_long": (500, ["UNKNOWN"])},  # router's text 404; a 500
    "upload_unknown": {"status": (404, ["BLOB_UPLOAD_INVALID"])},
    "tag_invalid": {"leading_dash": (404, []), "too_long": (404, [])},   # the router's text 404
    "interrupted_transfers": {"status_after_patch": (404, None), "resumed": (404, 404)},  # upload state lost
    "referrers": {"empty": (404, None, []), "put": (201, False), "listed": (404, None, []),
                  "filtered": (404, None, [], None)},                      # no referrers API (OCI 1.1)
    "index_and_invalid_manifests": {"without_accept": (404, "application/json; charset=utf-8")},  # Accept-gated
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_protocol(name: str, registry: RegistryProcess, client: RegistryClient) -> None:
    expected = {**SPEC[name], **(DISTRIBUTION_2_8.get(name, {}) if registry.kind == "distribution" else {})}
    got = SCENARIOS[name](client, "proto/" + name.replace("_", "-"))
    diff = {k: {"expected": expected.get(k), "got": got.get(k)} for k in expected.keys() | got.keys()
            if expected.get(k) != got.get(k)}
    assert not diff, f"{registry.kind}: {name} differs from {'distribution 2.8' if registry.kind == 'distribution' else 'the spec'}: {diff}"
