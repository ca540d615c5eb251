"""Immutable tags (store/immutable.py): rule parsing, glob semantics, the store's DENIED and its HTTP shape."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import pytest
from aiohttp.test_utils import TestClient, TestServer

from dockyard.errors import InvalidArgument
from dockyard.oci import digest as digests
from dockyard.oci import mediatypes as mt
from dockyard.registry.errors import RegistryError
from dockyard.registry.server import create_app, runner_options
from dockyard.registry.storage.inmemory import InMemoryDriver
from dockyard.registry.store import Registry
from dockyard.registry.store.immutable import parse_rules
from tests.support.registry_store import DRIVER_KINDS, driver_for, run

T = TypeVar("T")
RULES = [{"repository": "release/*", "tags": "v*"}, {"repository": "team/**", "tags": ["prod", "stable-?"]}]


@pytest.fixture(params=DRIVER_KINDS)
def reg(request, tmp_path) -> Registry:
    return Registry(driver_for(request.param, tmp_path), immutable=parse_rules(RULES))


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def push(reg: Registry, repo: str, tag: str, layer: bytes) -> str:
    config = b'{"os":"linux"}'
    for blob in (config, layer):
        uuid = await reg.start_upload(repo)
        await reg.finish_upload(repo, uuid, digests.from_bytes(blob), chunks(blob))
    doc = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
           "config": {"mediaType": mt.OCI_CONFIG, "digest": digests.from_bytes(config), "size": len(config)},
           "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": digests.from_bytes(layer), "size": len(layer)}]}
    d, _ = await reg.put_manifest(repo, tag, json.dumps(doc).encode(), mt.OCI_MANIFEST)
    return d


async def denied(aw: Awaitable[Any]) -> RegistryError:
    with pytest.raises(RegistryError) as e:
        await aw
    assert (e.value.code, e.value.status) == ("DENIED", 403)
    return e.value


def test_rule_matching():
    rules = parse_rules(RULES + [{"repository": "**", "tags": "frozen-[0-9]"}])
    cases = {("release/app", "v1"): True, ("release/app", "v1.2.3"): True, ("release/app", "latest"): False,
             ("release/a/b", "v1"): False, ("release", "v1"): False, ("releases/app", "v1"): False,
             ("team", "prod"): True, ("team/x/y", "prod"): True, ("team/x", "stable-1"): True,
             ("team/x", "stable-10"): False, ("teams/x", "prod"): False, ("any/where/at/all", "frozen-7"): True,
             ("x", "frozen-x"): False, ("release/app", "V1"): False}
    assert {k: rules.is_immutable(*k) for k in cases} == cases
    assert not parse_rules([]) and not parse_rules(None) and rules


@pytest.mark.parametrize("raw, text", [
    ("release/*", "immutabletags must be a list"),
    (["x"], r"immutabletags\[0\] must be a mapping"),
    ([{"repository": "a", "tags": "v*"}, {"repository": "b"}], r"immutabletags\[1\]\.tags must be a tag glob"),
    ([{"repository": "a", "tags": []}], r"immutabletags\[0\]\.tags"),
    ([{"repository": "a", "tags": ["v*", 3]}], r"immutabletags\[0\]\.tags"),
    ([{"repository": "", "tags": "v"}], r"immutabletags\[0\]\.repository"),
    ([{"repository": "a", "tags": "v", "mode": "x"}], r"immutabletags\[0\]: unknown key 'mode'"),
])
def test_parse_errors(raw, text):
    with pytest.raises(InvalidArgument, match="configuration: " + text):
        parse_rules(raw)


def test_immutable_tag_cannot_move_or_go(reg):
    async def main() -> None:
        first = await push(reg, "release/app", "v1", b"one")
        assert await push(reg, "release/app", "v1", b"one") == first  # same digest again: fine
        err = await denied(push(reg, "release/app", "v1", b"two"))
        assert err.message == "tag v1 is immutable in repository release/app"
        assert err.detail == {"tag": "v1", "digest": first}
        assert (await reg.get_manifest("release/app", "v1"))[2] == first
        await denied(reg.delete_manifest("release/app", "v1"))
        await denied(reg.delete_manifest("release/app", first))
        assert await reg.tags("release/app") == ["v1"]
        moving = await push(reg, "release/app", "latest", b"one")  # mutable tags still move
        assert moving == first and await push(reg, "release/app", "latest", b"two") != first
        await reg.delete_manifest("release/app", "latest")
        other = await push(reg, "release/app/sub", "v1", b"one")    # "*" stays within one component
        await push(reg, "release/app/sub", "v1", b"two")
        await reg.delete_manifest("release/app/sub", other)
        with pytest.raises(RegistryError) as e:
            await reg.delete_manifest("release/app", "v9")  # an absent tag is still MANIFEST_UNKNOWN
        assert e.value.code == "MANIFEST_UNKNOWN"
    run(main())


def test_http_answers_403_denied_with_the_tag_in_the_message():
    async def main() -> None:
        registry = Registry(InMemoryDriver(), immutable=parse_rules(RULES))
        await push(registry, "release/app", "v1", b"one")
        changed = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}'
        server = TestServer(create_app(registry))
        await server.start_server(**runner_options())
        async with TestClient(server) as client:
            resp = await client.put("/v2/release/app/manifests/v1", data=changed,
                                    headers={"Content-Type": mt.OCI_INDEX})
            body = await resp.json()
            assert resp.status == 403
            assert body["errors"][0]["code"] == "DENIED"
            assert body["errors"][0]["message"] == "tag v1 is immutable in repository release/app"
            resp = await client.delete("/v2/release/app/manifests/v1")
            assert resp.status == 403 and (await resp.json())["errors"][0]["code"] == "DENIED"
            resp = await client.put("/v2/release/app/manifests/v2", data=changed,
                                    headers={"Content-Type": mt.OCI_INDEX})
            assert resp.status == 201
    run(main())
