"""VolumeService (local driver) in a temp dir: layout, shapes and messages of dockerd 20.10, no root."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator

import pytest

from dockyard.engine.daemon.volumes import VolumeService, rfc3339_seconds
from dockyard.errors import Conflict, InvalidArgument, NotFound


class Users:
    """Which containers use which volume, as the container service would answer."""

    def __init__(self) -> None:
        self.by_volume: dict[str, list[str]] = {}

    def __call__(self, name: str) -> list[str]:
        return self.by_volume.get(name, [])


@pytest.fixture
def users() -> Users:
    return Users()


@pytest.fixture
def events() -> list[tuple[str, str, dict[str, str]]]:
    return []


@pytest.fixture
def svc(tmp_path, users: Users, events: list) -> Iterator[VolumeService]:
    yield VolumeService(str(tmp_path / "volumes"), users=users, emit=lambda *e: events.append(e))


def test_create_layout_and_shape(svc: VolumeService, events: list) -> None:
    v = svc.create("data", labels={"a": "b"})
    assert v == {"CreatedAt": v["CreatedAt"], "Driver": "local", "Labels": {"a": "b"},
                 "Mountpoint": os.path.join(svc.root, "data", "_data"), "Name": "data", "Options": None,
                 "Scope": "local"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", v["CreatedAt"])
    assert os.path.isdir(v["Mountpoint"])
    assert events == [("create", "data", {"driver": "local"})]
    assert svc.create("data", labels={"other": "x"}) == v  # an existing name is returned as is
    assert svc.inspect("data") == v


def test_created_at_is_go_rfc3339() -> None:
    os.environ["TZ"] = "UTC"
    try:
        import time
        time.tzset()
        assert rfc3339_seconds(0) == "1970-01-01T00:00:00Z"
    finally:
        del os.environ["TZ"]
        time.tzset()


def test_anonymous_volume(svc: VolumeService) -> None:
    v = svc.create_anonymous()
    assert re.fullmatch(r"[0-9a-f]{64}", v["Name"]) and v["Labels"] is None


@pytest.mark.parametrize("name, message", [
    ("/bad", 'create /bad: "/bad" includes invalid characters for a local volume name, only '
             '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path'),
    ("a", "create a: volume name is too short, names should be at least two alphanumeric characters"),
])
def test_bad_names(svc: VolumeService, name: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        svc.create(name)
    assert e.value.message == message


def test_unknown_driver_and_option(svc: VolumeService) -> None:
    with pytest.raises(NotFound) as e:
        svc.create("v2", driver="nope")
    assert e.value.message == 'create v2: error looking up volume plugin nope: plugin "nope" not found'
    with pytest.raises(InvalidArgument) as e2:
        svc.create("v3", driver_opts={"bogus": "1"})
    assert e2.value.message == 'create v3: invalid option key: "bogus"'
    with pytest.raises(InvalidArgument) as e3:
        svc.create("v4", driver_opts={"size": "1"})
    assert e3.value.message == "create v4: quota size requested but no quota support"


def test_options_are_kept(svc: VolumeService) -> None:
    opts = {"type": "tmpfs", "device": "tmpfs", "o": "size=10m"}
    assert svc.create("vt", driver_opts=opts)["Options"] == opts
    assert svc.inspect("vt")["Options"] == opts


def test_missing_volume_messages(svc: VolumeService) -> None:
    with pytest.raises(NotFound) as e:
        svc.inspect("nope")
    assert e.value.message == "get nope: no such volume"
    with pytest.raises(NotFound):
        svc.remove("nope")
    svc.remove("nope", force=True)  # force: missing is fine


def test_remove_in_use_and_remove(svc: VolumeService, users: Users, events: list) -> None:
    svc.create("v1")
    users.by_volume["v1"] = ["c" * 64, "d" * 64]
    with pytest.raises(Conflict) as e:
        svc.remove("v1", force=True)
    assert e.value.message == f"remove v1: volume is in use - [{'c' * 64} {'d' * 64}]"
    users.by_volume.clear()
    svc.remove("v1")
    assert not os.path.exists(os.path.join(svc.root, "v1"))
    assert events[-1] == ("destroy", "v1", {"driver": "local"})


def test_list_filters(svc: VolumeService, users: Users) -> None:
    svc.create("alpha", labels={"team": "a"})
    svc.create("beta", labels={"team": "b", "x": ""})
    svc.create("gamma", driver_opts={"type": "tmpfs", "device": "tmpfs"})
    users.by_volume["alpha"] = ["c1"]

    def names(filters: dict[str, list[str]]) -> list[str]:
        out = svc.list(filters)
        assert out["Warnings"] is None
        return sorted(v["Name"] for v in out["Volumes"])

    assert names({}) == ["alpha", "beta", "gamma"]
    assert names({"dangling": ["true"]}) == ["beta", "gamma"]
    assert names({"dangling": ["false"]}) == ["alpha"]
    assert names({"label": ["team"]}) == ["alpha", "beta"]
    assert names({"label": ["team=b"]}) == ["beta"]
    assert names({"name": ["^al"]}) == ["alpha"]
    assert names({"name": ["mm"]}) == ["gamma"]
    assert names({"driver": ["local"]}) == ["alpha", "beta", "gamma"]
    assert names({"driver": ["nfs"]}) == []
    with pytest.raises(InvalidArgument) as e:
        svc.list({"bogus": ["1"]})
    assert e.value.message == "Invalid filter 'bogus'"


def test_prune_removes_every_unused_volume(svc: VolumeService, users: Users, events: list) -> None:
    svc.create("used")
    svc.create("named")
    anon = svc.create_anonymous()["Name"]
    svc.create("kept", labels={"keep": "1"})
    with open(os.path.join(svc.path("named"), "f"), "wb") as f:
        f.write(b"x" * 1000)
    users.by_volume["used"] = ["c1"]
    out = svc.prune({"label!": ["keep"]})
    assert sorted(out["VolumesDeleted"]) == sorted(["named", anon])
    assert out["SpaceReclaimed"] == 1000
    assert svc.names() == ["kept", "used"]
    assert events[-1] == ("prune", "", {"reclaimed": "1000"})
    assert svc.prune({"label": ["nothing"]}) == {"VolumesDeleted": [], "SpaceReclaimed": 0}


def test_metadata_survives_restart_and_crash_leftovers(tmp_path, users: Users) -> None:
    root = str(tmp_path / "volumes")
    svc = VolumeService(root, users=users)
    svc.create("keep", labels={"k": "v"}, driver_opts={"type": "none", "device": "/x", "o": "bind"})
    before = svc.inspect("keep")
    os.makedirs(os.path.join(root, ".new-deadbeef", "_data"))  # a create killed before its rename
    os.makedirs(os.path.join(root, ".rm-deadbeef", "_data"))  # a remove killed during rmtree
    os.makedirs(os.path.join(root, "legacy", "_data"))  # dockerd's own volume dir, no metadata of ours
    again = VolumeService(root, users=users)
    assert again.inspect("keep") == before
    assert again.names() == ["keep", "legacy"]
    assert not os.path.exists(os.path.join(root, ".new-deadbeef"))
    assert again.inspect("legacy")["Driver"] == "local"
    with open(os.path.join(root, "keep", "volume.json")) as f:
        assert json.load(f)["Labels"] == {"k": "v"}


def test_mount_refcount_events_and_plain_volume(svc: VolumeService, events: list) -> None:
    svc.create("plain")
    events.clear()
    assert svc.mount("plain", "c1", destination="/data") == svc.path("plain")
    svc.mount("plain", "c2")
    svc.unmount("plain", "c1")
    svc.unmount("plain", "c1")  # twice is harmless
    svc.unmount("plain", "c2")
    assert [e[0] for e in events] == ["mount", "mount", "unmount", "unmount"]
    assert events[0][2] == {"driver": "local", "container": "c1", "destination": "/data",
                            "read/write": "true", "propagation": ""}


def test_copy_up_only_into_an_empty_volume(svc: VolumeService, tmp_path) -> None:
    src = tmp_path / "image-dir"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f").write_bytes(b"data")
    os.chmod(src / "sub" / "f", 0o640)
    os.chmod(src, 0o750)
    svc.create("vv")
    assert svc.copy_up("vv", str(src)) is True
    target = svc.path("vv")
    assert open(os.path.join(target, "sub", "f"), "rb").read() == b"data"
    assert os.stat(os.path.join(target, "sub", "f")).st_mode & 0o777 == 0o640
    assert os.stat(target).st_mode & 0o777 == 0o750
    (src / "other").write_bytes(b"late")
    assert svc.copy_up("vv", str(src)) is False  # not empty any more: left alone
    assert not os.path.exists(os.path.join(target, "other"))


def test_usage(svc: VolumeService, users: Users) -> None:
    svc.create("vv")
    with open(os.path.join(svc.path("vv"), "f"), "wb") as f:
        f.write(b"y" * 10)
    os.link(os.path.join(svc.path("vv"), "f"), os.path.join(svc.path("vv"), "g"))
    users.by_volume["vv"] = ["a", "b"]
    (entry,) = svc.usage()
    assert entry["UsageData"] == {"RefCount": 2, "Size": 10}


def test_volume_routes(tmp_path) -> None:
    from tests.unit.test_engine_images import FakeDaemon, serve

    daemon = FakeDaemon(str(tmp_path))

    async def scenario(client) -> None:  # type: ignore[no-untyped-def]
        r = await client.post("/v1.41/volumes/create", json={"Name": "v1", "Labels": {"a": "b"}})
        assert r.status == 201
        created = await r.json()
        assert created["Mountpoint"] == os.path.join(daemon.config.data_root, "volumes", "v1", "_data")
        r = await client.post("/v1.41/volumes/create", json={})
        anon = (await r.json())["Name"]
        assert re.fullmatch(r"[0-9a-f]{64}", anon)
        r = await client.post("/v1.41/volumes/create", json={"Name": "/bad"})
        assert r.status == 400 and "includes invalid characters" in (await r.json())["message"]
        r = await client.post("/v1.41/volumes/create", json={"Name": "v2", "Driver": "nope"})
        assert r.status == 404
        r = await client.get("/v1.41/volumes/v1")
        assert await r.json() == created and created["Options"] is None
        r = await client.post("/v1.41/volumes/create", json={"Name": "vl", "Labels": {}, "DriverOpts": {}})
        assert {k: v for k, v in (await r.json()).items() if k in ("Labels", "Options")} == {"Labels": {},
                                                                                              "Options": {}}
        r = await client.get("/v1.41/volumes/nope")
        assert r.status == 404 and await r.json() == {"message": "get nope: no such volume"}
        r = await client.get('/v1.41/volumes?filters={"label":{"a=b":true}}')
        assert [v["Name"] for v in (await r.json())["Volumes"]] == ["v1"]
        daemon.containers.by_volume["v1"] = ["c" * 64]
        r = await client.delete("/v1.41/volumes/v1")
        assert r.status == 409
        assert (await r.json())["message"] == f"remove v1: volume is in use - [{'c' * 64}]"
        r = await client.post("/v1.41/volumes/prune")
        assert await r.json() == {"VolumesDeleted": [anon, "vl"], "SpaceReclaimed": 0}
        daemon.containers.by_volume.clear()
        r = await client.delete("/v1.41/volumes/v1")
        assert r.status == 204
        r = await client.delete("/v1.41/volumes/v1?force=1")
        assert r.status == 204
        r = await client.delete("/v1.41/volumes/v1")
        assert r.status == 404

    try:
        serve(daemon, scenario)
    finally:
        daemon.close()
    actions = [(e["Actor"]["ID"], e["Action"]) for e in daemon.events.backlog if e["Type"] == "volume"]
    assert actions[0] == ("v1", "create") and actions[-1] == ("v1", "destroy")
    assert ("", "prune") in actions


def test_events_from_the_store_thread_reach_the_bus_on_the_loop(tmp_path) -> None:
    import asyncio
    import threading

    from tests.unit.test_engine_images import FakeDaemon

    async def main() -> list[str]:
        daemon = FakeDaemon(str(tmp_path))  # built on the loop: the volume service remembers it
        threads: list[str] = []
        emit = daemon.events.emit

        def recording(*args, **kwargs):  # type: ignore[no-untyped-def]
            threads.append(threading.current_thread().name)
            return emit(*args, **kwargs)

        daemon.events.emit = recording  # type: ignore[method-assign]
        try:
            await daemon.run_blocking(daemon.volumes.create, "ev", "local", {}, None)
            await asyncio.sleep(0.05)
        finally:
            daemon.close()
        return threads

    assert asyncio.run(main()) == [threading.main_thread().name]
