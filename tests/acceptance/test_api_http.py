"""The Engine API on the wire, side by side: status, Content-Type and body of the same raw requests.

Clients key off these: the CLI only parses an error body whose Content-Type is
exactly application/json; docker-py and the CLI negotiate the version from the
/_ping headers.
"""

from __future__ import annotations

import json
import socket

import pytest


pytestmark = [pytest.mark.acceptance, pytest.mark.privileged]

PING_HEADERS = {"api-version", "ostype", "docker-experimental", "cache-control", "pragma", "content-type"}


def request(host: str, method: str, path: str, body: bytes | None = None,
            content_type: str = "application/json") -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.0 request over the unix socket; (status, lower-cased headers, body)."""
    head = f"{method} {path} HTTP/1.0\r\nHost: docker\r\n"
    if body is not None:
        head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(15)
        s.connect(host.removeprefix("unix://"))
        s.sendall(head.encode() + b"\r\n" + (body or b""))
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    raw_head, _, payload = data.partition(b"\r\n\r\n")
    lines = raw_head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, payload


def test_ping_headers(pair):
    seen = []
    for e in pair.engines:
        status, headers, body = request(e.host, "GET", "/_ping")
        seen.append((status, body, {k: headers.get(k) for k in PING_HEADERS}))
        status, headers, body = request(e.host, "HEAD", "/_ping")
        assert (status, body) == (200, b""), e.kind
        assert headers.get("api-version") == seen[-1][2]["api-version"], e.kind
    assert seen[1] == seen[0]


@pytest.mark.parametrize("method,path,body", [
    ("GET", "/v1.99/version", None),
    ("GET", "/v1.11/version", None),
    ("GET", "/v1.41/no-such-endpoint", None),
    ("GET", "/v1.41/containers/acc-nope/json", None),
    ("DELETE", "/v1.41/containers/acc-nope", None),
    ("GET", "/v1.41/images/acc-nope:1/json", None),
    ("GET", "/v1.41/volumes/acc-nope", None),
    ("GET", "/v1.41/containers/json?filters=notjson", None),  # Go's JSON error text: status only
    ("GET", "/v1.41/containers/json?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D", None),
    ("POST", "/v1.41/containers/create", b"{not json"),  # Go's JSON error text: status only
    ("POST", "/v1.41/containers/create", b"{}"),
    ("POST", "/v1.41/containers/create?name=bad%20name", b'{"Image":"busybox"}'),
    ("POST", "/v1.41/containers/create", b'{"Image":"acc-no-such-image:1"}'),
    ("POST", "/v1.41/containers/acc-nope/start", None),
    ("POST", "/v1.41/containers/acc-nope/wait", None),
    ("POST", "/v1.41/volumes/create", b'{"Name":"bad name"}'),
    ("POST", "/v1.41/containers/create", b'{"Image":"busybox","Cmd":5}'),  # a field of the wrong type
    ("POST", "/v1.41/containers/create", b'{"Image":"busybox","HostConfig":{"Memory":"lots"}}'),
    ("POST", "/v1.41/containers/create", b'{"Image":"busybox","HostConfig":{"Binds":["relative:/x:zz"]}}'),
    ("POST", "/v1.41/containers/create", b'{"Image":"busybox","HostConfig":{"RestartPolicy":{"Name":"sometimes"}}}'),
    ("POST", "/v1.41/containers/acc-nope/kill?signal=NOPE", None),
], ids=lambda v: v if isinstance(v, str) else "")
def test_errors_on_the_wire(pair, method, path, body):
    if path in DOCUMENTED_VERSION_ANSWERS:
        return check_documented_version_answer(pair, path)
    seen = []
    for e in pair.engines:
        status, headers, payload = request(e.host, method, path, body)
        seen.append((status, headers.get("content-type"), payload.decode(errors="replace")))
    ref, got = seen
    assert ref[0] >= 400, ref  # the reference really is an error
    if "notjson" in path or body == b"{not json":  # the message is Go's parser's; the rest must match
        ref, got = ((status, ctype, "message" in json.loads(text)) for status, ctype, text in seen)
    assert got == ref, f"dockerd: {ref}\ndockyardd: {got}"


# A documented choice (docs/engine.md, API): dockyardd serves /v1.24 ... /v1.51 (the range, up to
# the current Docker API) where dockerd 20.10 serves /v1.12 ... /v1.41; both advertise 1.41, so clients
# negotiate the same version. Outside the range both answer 400 the same way, each naming its own bound.
DOCUMENTED_VERSION_ANSWERS = {
    "/v1.99/version": '{"message":"client version 1.99 is too new. Maximum supported API version is 1.51"}\n',
    "/v1.11/version": "client version 1.11 is too old. Minimum supported API version is 1.24, "
                      "please upgrade your client to a newer version\n",
}


def check_documented_version_answer(pair, path):
    ref, ours = (request(e.host, "GET", path) for e in pair.engines)
    assert ref[0] == ours[0] == 400, (ref, ours)
    assert ref[1].get("content-type") == ours[1].get("content-type"), (ref, ours)
    assert ours[2].decode() == DOCUMENTED_VERSION_ANSWERS[path]


def test_version_unversioned_and_old(pair):
    bodies = []
    for e in pair.engines:
        for path in ("/version", "/v1.24/version", "/v1.41/version"):
            status, headers, payload = request(e.host, "GET", path)
            assert (status, headers.get("content-type")) == (200, "application/json"), (e.kind, path, headers)
        bodies.append(json.loads(payload))
    assert set(bodies[1]) == set(bodies[0]), (sorted(bodies[0]), sorted(bodies[1]))
    for key in ("ApiVersion", "Os", "Arch", "KernelVersion"):
        assert bodies[1][key] == bodies[0][key], key
    assert (bodies[0]["MinAPIVersion"], bodies[1]["MinAPIVersion"]) == ("1.12", "1.24")  # documented above
