"""Docker-shaped image operations over a real ImageService in a temp dir (no root, native snapshots)."""

from __future__ import annotations

import io
import tarfile
import os
import re
from collections.abc import Iterator

import pytest

from dockyard.engine.daemon import images as ops
from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.oci.image import chain_ids
from dockyard.supervisor.images import ImageService
from tests.support.images import docker_archive, layer_tar, tar_members

BASE = layer_tar({"bin": None, "bin/sh": b"#!sh"})
TOP = layer_tar({"data": None, "data/a": b"a"})


@pytest.fixture
def svc(tmp_path) -> Iterator[ImageService]:
    s = ImageService(os.path.join(str(tmp_path), "images"))
    yield s
    s.close()


def imported(svc: ImageService, ref: str | None, files: dict[str, bytes | None], changes: list[str] | None = None
             ) -> str:
    return svc.import_rootfs(io.BytesIO(layer_tar(files)), ref, changes or [])


def content_size(layer: bytes) -> int:
    """What dockerd reports for a layer: file bytes plus symlink target lengths (no tar headers)."""
    with tarfile.open(fileobj=io.BytesIO(layer)) as tf:
        return sum(m.size if m.isreg() else len(m.linkname) if m.issym() else 0 for m in tf.getmembers())


def no_users(image_id: str) -> list[tuple[str, bool]]:
    return []


def test_list_shape_and_untagged(svc: ImageService) -> None:
    tagged = imported(svc, "busybox:latest", {"a": b"1"}, ['LABEL team=a'])
    untagged = imported(svc, None, {"b": b"22"})
    rows = {r["Id"]: r for r in ops.list_images(svc, {})}
    assert rows[tagged] == {"Containers": -1, "Created": rows[tagged]["Created"], "Id": tagged,
                            "Labels": {"team": "a"}, "ParentId": "", "RepoDigests": None,
                            "RepoTags": ["busybox:latest"], "SharedSize": -1, "Size": rows[tagged]["Size"],
                            "VirtualSize": rows[tagged]["Size"]}
    assert rows[tagged]["Size"] > 0 and rows[tagged]["Created"] > 1_700_000_000
    assert rows[untagged]["RepoTags"] == ["<none>:<none>"]
    assert rows[untagged]["RepoDigests"] == ["<none>@<none>"]
    assert rows[untagged]["Labels"] is None
    counted = ops.list_images(svc, {}, containers=lambda i: 3)
    assert {r["Containers"] for r in counted} == {3}


def test_list_filters(svc: ImageService) -> None:
    first = imported(svc, "app/one:1", {"a": b"1"}, ["LABEL tier=web"])
    second = imported(svc, "other:2", {"b": b"2"})
    svc.tag("other:2", "app/two:x")
    dangling = imported(svc, None, {"c": b"3"})

    def ids(filters: dict[str, list[str]]) -> list[str]:
        return [r["Id"] for r in ops.list_images(svc, filters)]

    assert ids({}) == [dangling, second, first]  # newest first
    assert ids({"dangling": ["true"]}) == [dangling]
    assert ids({"dangling": ["false"]}) == [second, first]
    assert ids({"label": ["tier=web"]}) == [first]
    assert ids({"before": ["other:2"]}) == [first]
    assert ids({"since": ["app/one:1"]}) == [dangling, second]
    narrowed = ops.list_images(svc, {"reference": ["app/*"]})
    assert [(r["Id"], r["RepoTags"]) for r in narrowed] == [(second, ["app/two:x"]), (first, ["app/one:1"])]
    assert [r["Id"] for r in ops.list_images(svc, {"reference": ["other:2"]})] == [second]
    star = ops.list_images(svc, {"reference": ["*"]})  # '*' does not cross '/': only "other" matches
    assert [(r["Id"], r["RepoTags"]) for r in star] == [(second, ["other:2"])]
    with pytest.raises(InvalidArgument) as e:
        ops.list_images(svc, {"bogus": ["x"]})
    assert e.value.message == "Invalid filter 'bogus'"


def test_go_path_match() -> None:
    assert ops.go_path_match("busy*", "busybox")
    assert not ops.go_path_match("*", "app/one")
    assert ops.go_path_match("app/*", "app/one")
    assert ops.go_path_match("b?sybox:[lx]atest", "busybox:latest")
    assert not ops.go_path_match("[", "x")


def test_inspect_shape(svc: ImageService) -> None:
    image_id = imported(svc, "busybox", {"bin": None, "bin/sh": b"x"}, ['CMD ["sh"]', "ENV A=b"])
    out = ops.inspect(ops.find_image(svc, "busybox:latest"), "vfs")
    assert list(out) == ["Id", "RepoTags", "RepoDigests", "Parent", "Comment", "Created", "Container",
                         "ContainerConfig", "DockerVersion", "Author", "Config", "Architecture", "Os", "Size",
                         "VirtualSize", "GraphDriver", "RootFS", "Metadata"]
    assert out["Id"] == image_id and out["RepoTags"] == ["busybox:latest"] and out["RepoDigests"] == []
    assert out["Comment"] == "Imported from -"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", out["Created"])
    assert out["Config"]["Cmd"] == ["sh"] and out["Config"]["Env"] == ["A=b"]
    assert out["Config"]["Hostname"] == "" and out["Config"]["Labels"] is None
    assert out["ContainerConfig"]["Cmd"] is None
    assert out["GraphDriver"] == {"Data": None, "Name": "vfs"}
    assert out["RootFS"]["Type"] == "layers" and len(out["RootFS"]["Layers"]) == 1
    assert out["Metadata"]["LastTagTime"] != "0001-01-01T00:00:00Z"
    assert ops.find_image(svc, image_id[7:19]).id == image_id
    with pytest.raises(NotFound) as e:
        ops.find_image(svc, "nothere")
    assert e.value.message == "No such image: nothere:latest"  # dockerd adds the default tag
    with pytest.raises(NotFound):
        ops.find_image(svc, "Bad:Ref")


def test_history(svc: ImageService) -> None:
    svc.load(io.BytesIO(docker_archive([(["app:v1"], [BASE, TOP])])))
    info = ops.find_image(svc, "app:v1")
    rows = ops.history(info)
    assert [r["Id"] for r in rows] == [info.id, "<missing>"]
    assert rows[0]["Tags"] == ["app:v1"] and rows[1]["Tags"] is None
    assert [r["Size"] for r in rows] == [content_size(TOP), content_size(BASE)]
    assert rows[0]["Created"] == 1704067200 and set(rows[0]) == {"Comment", "Created", "CreatedBy", "Id", "Size",
                                                                 "Tags"}


@pytest.mark.parametrize("repo, tag, message", [
    ("Bad", "x", "invalid reference format: repository name must be lowercase"),
    ("x", "b@d", "invalid tag format"),
    ("x y", "", "invalid reference format"),
    ("", "", "invalid reference format"),
])
def test_tag_errors(svc: ImageService, repo: str, tag: str, message: str) -> None:
    imported(svc, "busybox", {"a": b"1"})
    with pytest.raises(InvalidArgument) as e:
        ops.tag(svc, "busybox", repo, tag)
    assert e.value.message == message


def test_tag_event_and_default_tag(svc: ImageService) -> None:
    image_id = imported(svc, "busybox", {"a": b"1"})
    assert ops.tag(svc, "busybox", "reg:5000/x/y") == [("tag", image_id, {"name": "reg:5000/x/y:latest"})]
    assert ops.tag(svc, image_id[7:19], "other", "1") == [("tag", image_id, {"name": "other:1"})]
    assert sorted(ops.find_image(svc, "busybox").repo_tags()) == ["busybox:latest", "other:1", "reg:5000/x/y:latest"]


def test_delete_by_name_conflict_with_a_container(svc: ImageService) -> None:
    image_id = imported(svc, "busybox", {"a": b"1"})
    users = lambda i: [("c" * 64, False)]  # noqa: E731
    with pytest.raises(Conflict) as e:
        ops.delete(svc, "busybox", users)
    assert e.value.message == (f'conflict: unable to remove repository reference "busybox" (must force) - '
                               f"container cccccccccccc is using its referenced image {image_id[7:19]}")
    # with another tag the untag is fine (the image keeps a name)
    svc.tag("busybox", "other:1")
    records, events = ops.delete(svc, "other:1", users)
    assert records == [{"Untagged": "other:1"}]
    assert events == [("untag", image_id, {"name": image_id})]


def test_delete_by_id_with_several_repositories(svc: ImageService) -> None:
    image_id = imported(svc, "busybox", {"a": b"1"})
    svc.tag("busybox", "other:1")
    with pytest.raises(Conflict) as e:
        ops.delete(svc, image_id[7:19], no_users)
    assert e.value.message == (f"conflict: unable to delete {image_id[7:19]} (must be forced) - "
                               "image is referenced in multiple repositories")
    records, events = ops.delete(svc, image_id[7:19], no_users, force=True)
    assert sorted(r.get("Untagged", "") for r in records if "Untagged" in r) == ["busybox:latest", "other:1"]
    assert {"Deleted": image_id} in records
    assert [e[0] for e in events][-1] == "delete"
    assert svc.list() == []


def test_delete_last_name_deletes_image_and_reports_layers(svc: ImageService) -> None:
    svc.load(io.BytesIO(docker_archive([(["app:v1"], [BASE, TOP]), (["base:1"], [BASE])])))
    info = ops.find_image(svc, "app:v1")
    records, _ = ops.delete(svc, "app:v1", no_users)
    top_chain = chain_ids(info.diff_ids)[-1]
    assert records == [{"Untagged": "app:v1"}, {"Deleted": info.id}, {"Deleted": top_chain}]  # BASE is shared


def test_delete_with_containers(svc: ImageService) -> None:
    image_id = imported(svc, "busybox", {"a": b"1"})
    running = lambda i: [("r" * 64, True)]  # noqa: E731
    stopped = lambda i: [("s" * 64, False)]  # noqa: E731
    with pytest.raises(Conflict) as e:
        ops.delete(svc, image_id, running, force=True)
    assert e.value.message == (f"conflict: unable to delete {image_id[7:19]} (cannot be forced) - "
                               "image is being used by running container rrrrrrrrrrrr")
    with pytest.raises(Conflict) as e:
        ops.delete(svc, image_id, stopped)
    assert e.value.message == (f"conflict: unable to delete {image_id[7:19]} (must be forced) - "
                               "image is being used by stopped container ssssssssssss")
    # rmi -f busybox while a container runs: untagged, the image stays (dangling)
    records, _ = ops.delete(svc, "busybox", running, force=True)
    assert records == [{"Untagged": "busybox:latest"}]
    assert ops.find_image(svc, image_id).names == []
    # rmi -f <id> with a stopped container: deleted, no layers reported (the container holds them)
    records, _ = ops.delete(svc, image_id, stopped, force=True)
    assert records == [{"Deleted": image_id}]
    with pytest.raises(NotFound):
        ops.find_image(svc, image_id)


def test_prune(svc: ImageService) -> None:
    dangling = imported(svc, None, {"big": b"x" * 5000})
    used = imported(svc, None, {"used": b"u"})
    kept = imported(svc, "kept:1", {"k": b"k"}, ["LABEL keep=1"])
    tagged = imported(svc, "tagged:1", {"t": b"t"})
    users = lambda i: [("c1", False)] if i == used else []  # noqa: E731
    report, events = ops.prune(svc, {}, users)
    assert {"Deleted": dangling} in report["ImagesDeleted"]
    assert report["SpaceReclaimed"] > 5000
    assert ("delete", dangling, {"name": dangling}) in events
    assert {ops.find_image(svc, i).id for i in (used, kept, tagged)} == {used, kept, tagged}
    report, _ = ops.prune(svc, {"dangling": ["false"], "label!": ["keep"]}, users)
    deleted = [r for r in report["ImagesDeleted"] if "Deleted" in r]
    assert {"Untagged": "tagged:1"} in report["ImagesDeleted"] and {"Deleted": tagged} in deleted
    assert ops.find_image(svc, kept).id == kept
    assert ops.prune(svc, {"until": ["1h"]}, users)[0] == {"ImagesDeleted": None, "SpaceReclaimed": 0}
    with pytest.raises(InvalidArgument):
        ops.prune(svc, {"reference": ["x"]}, users)


def test_parse_until() -> None:
    now = 10_000 * 10**9
    assert ops.parse_until("1h", now) == now - 3600 * 10**9
    assert ops.parse_until("1m30s", now) == now - 90 * 10**9
    assert ops.parse_until("1700000000", now) == 1_700_000_000 * 10**9
    assert ops.parse_until("1700000000.5", now) == 1_700_000_000_500_000_000
    assert ops.parse_until("2023-11-14T22:13:20Z", now) == 1_700_000_000 * 10**9


def test_import_load_save(svc: ImageService) -> None:
    image_id, events = ops.import_image(svc, io.BytesIO(layer_tar({"f": b"1"})), repo="imp", tag_="v1",
                                        message="hello", changes=["CMD [\"x\"]"])
    assert events == [("tag", image_id, {"name": "imp:v1"}), ("import", image_id, {"name": image_id})]
    assert ops.inspect(ops.find_image(svc, "imp:v1"), "vfs")["Comment"] == "hello"
    with pytest.raises(InvalidArgument):
        ops.import_image(svc, io.BytesIO(layer_tar({"f": b"1"})), repo="Bad")
    lines, events = ops.load(svc, io.BytesIO(docker_archive([(["app:v1"], [BASE]), ([], [TOP])])))
    assert lines[0] == "Loaded image: app:v1" and lines[1].startswith("Loaded image ID: sha256:")
    assert [e[0] for e in events] == ["load", "load"]
    assert ops.check_save(svc, ["app:v1"]) == [("save", ops.find_image(svc, "app:v1").id, {"name": "app:v1"})]
    with pytest.raises(NotFound):
        ops.check_save(svc, ["app:v1", "missing"])
    out = io.BytesIO()
    ops.save(svc, ["app:v1", "imp:v1"], out)
    assert "manifest.json" in tar_members(out.getvalue())


def test_commit_image(svc: ImageService) -> None:
    svc.load(io.BytesIO(docker_archive([(["base:1"], [BASE])])))
    base_id = ops.find_image(svc, "base:1").id
    top = svc.unpack("base:1", snapshotter="native")
    sn = svc.snapshotter("native")
    sn.prepare("ctr-1", top)
    with open(os.path.join(sn.upper_dir("ctr-1"), "new"), "w") as f:
        f.write("new")

    class Daemon:
        images = svc
        snapshotter_name = "native"

    new_id = ops.commit_image(Daemon(), snapshot_key="ctr-1", container_config={"Cmd": ["sh"]},
                              container_id="c" * 64, repo="committed", tag="v2", comment="msg", author="me",
                              changes=["ENV X=1"], base_image_id=base_id)
    out = ops.inspect(ops.find_image(svc, "committed:v2"), "vfs")
    assert out["Id"] == new_id and out["Comment"] == "msg" and out["Author"] == "me"
    assert "X=1" in out["Config"]["Env"]
    assert len(out["RootFS"]["Layers"]) == 2
    with pytest.raises(InvalidArgument):
        ops.commit_image(Daemon(), snapshot_key="ctr-1", container_config={}, container_id="c", repo="x",
                         tag="", comment="", author="", changes=["BOGUS x"], base_image_id=base_id)


# -- the routes, over HTTP, with a stand-in daemon ----------------------------------------------


class FakeContainers:
    """The container service's answers the image, volume and info routes use."""

    def __init__(self) -> None:
        self.by_image: dict[str, list[str]] = {}
        self.by_volume: dict[str, list[str]] = {}

    def image_users(self, image_id: str) -> list[str]:
        return self.by_image.get(image_id, [])

    def volume_users(self, name: str) -> list[str]:
        return self.by_volume.get(name, [])

    def counts(self) -> tuple[int, int, int, int]:
        return (3, 1, 0, 2)


class FakeDaemon:
    """What dockyard.engine.daemon.daemon.Daemon offers the routes, over real stores in ``root``."""

    def __init__(self, root: str) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from dockyard.engine.config import DaemonConfig
        from dockyard.engine.daemon.events import EventBus
        from dockyard.engine.daemon.volumes import VolumeService

        self.config = DaemonConfig(data_root=os.path.join(root, "data"), exec_root=os.path.join(root, "exec"),
                                   storage_driver="vfs", labels=("a=b",))
        self.images = ImageService(os.path.join(self.config.data_root, "images"))
        self.snapshotter_name = "native"
        self.events = EventBus()
        self.containers = FakeContainers()
        self.volumes = VolumeService(self)
        self.id = "ENGINE-ID"
        self._pool = ThreadPoolExecutor(max_workers=1)

    async def run_blocking(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        import asyncio
        import functools

        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        self._pool.shutdown()
        self.images.close()


def serve(daemon: FakeDaemon, scenario) -> None:  # type: ignore[no-untyped-def]
    """Run ``await scenario(client)`` against an app with the image, volume and info routes."""
    import asyncio

    from aiohttp.test_utils import TestClient, TestServer

    from dockyard.engine.routers import images as image_routes
    from dockyard.engine.routers import info as info_routes
    from dockyard.engine.routers import volumes as volume_routes
    from dockyard.engine.server.app import create_app
    from dockyard.engine.server.router import Router

    router = Router()
    for module in (image_routes, volume_routes, info_routes):
        module.add_routes(router)

    async def main() -> None:
        async with TestClient(TestServer(create_app(daemon, [router]))) as client:  # type: ignore[arg-type]
            await scenario(client)

    asyncio.run(main())


@pytest.fixture
def daemon(tmp_path) -> Iterator[FakeDaemon]:
    d = FakeDaemon(str(tmp_path))
    yield d
    d.close()


def _events(daemon: FakeDaemon) -> list[tuple[str, str]]:
    return [(e["Type"], e["Action"]) for e in daemon.events.backlog]


def test_routes_import_list_inspect_tag_delete(daemon: FakeDaemon) -> None:
    async def scenario(client) -> None:  # type: ignore[no-untyped-def]
        r = await client.post("/v1.41/images/create?fromSrc=-&repo=busybox&tag=latest&changes=CMD%20%5B%22sh%22%5D",
                              data=layer_tar({"bin": None, "bin/sh": b"x"}))
        assert r.status == 200 and r.content_type == "application/json"
        (msg,) = [__import__("json").loads(line) for line in (await r.text()).splitlines()]
        image_id = msg["status"]
        assert image_id.startswith("sha256:")
        r = await client.get("/v1.41/images/json")
        assert [i["RepoTags"] for i in await r.json()] == [["busybox:latest"]]
        r = await client.get("/images/busybox/json")
        body = await r.json()
        assert body["Id"] == image_id and body["Config"]["Cmd"] == ["sh"] and body["GraphDriver"]["Name"] == "vfs"
        r = await client.get("/v1.41/images/busybox:latest/history")
        assert (await r.json())[0]["Id"] == image_id
        r = await client.post("/v1.41/images/busybox/tag?repo=reg.example:5000/team/app&tag=1")
        assert r.status == 201
        r = await client.get("/v1.41/images/reg.example:5000/team/app:1/json")
        assert r.status == 200
        r = await client.post("/v1.41/images/busybox/tag?repo=Bad")
        assert r.status == 400
        assert await r.json() == {"message": "invalid reference format: repository name must be lowercase"}
        r = await client.get("/v1.41/images/nothere/json")
        assert r.status == 404 and await r.json() == {"message": "no such image: nothere: No such image: nothere:latest"}
        daemon.containers.by_image[image_id] = ["c" * 64]
        r = await client.delete(f"/v1.41/images/{image_id[7:19]}")
        assert r.status == 409
        r = await client.delete("/v1.41/images/reg.example:5000/team/app:1")
        assert await r.json() == [{"Untagged": "reg.example:5000/team/app:1"}]
        daemon.containers.by_image.clear()
        r = await client.delete("/v1.41/images/busybox")
        records = await r.json()
        assert records[:2] == [{"Untagged": "busybox:latest"}, {"Deleted": image_id}]
        assert (await (await client.get("/images/json")).json()) == []
    serve(daemon, scenario)
    assert _events(daemon) == [("image", "tag"), ("image", "import"), ("image", "tag"), ("image", "untag"),
                               ("image", "untag"), ("image", "delete")]


def test_routes_load_save_prune_pull(daemon: FakeDaemon) -> None:
    import json

    async def scenario(client) -> None:  # type: ignore[no-untyped-def]
        r = await client.post("/v1.41/images/load?quiet=1", data=docker_archive([(["app:v1"], [BASE, TOP])]))
        assert [json.loads(x) for x in (await r.text()).splitlines()] == [{"stream": "Loaded image: app:v1\n"}]
        r = await client.post("/v1.41/images/load", data=b"not a tar at all" * 100)
        assert r.status == 200
        (err,) = [json.loads(x) for x in (await r.text()).splitlines()]
        assert err["error"] == err["errorDetail"]["message"] and err["error"]
        r = await client.get("/v1.41/images/app:v1/get")
        assert r.status == 200 and r.content_type == "application/x-tar"
        members = tar_members(await r.read())
        assert "manifest.json" in members and "repositories" in members
        r = await client.get("/v1.41/images/get?names=app:v1&names=nothere")
        assert r.status == 404
        r = await client.post("/v1.41/images/create?fromImage=127.0.0.1:9/nothere&tag=v1")  # nothing listens
        message = (await r.json())["message"]
        assert r.status in (500, 503) and "127.0.0.1:9" in message, (r.status, message)
        r = await client.delete("/v1.41/images/app:v1")
        assert r.status == 200
        r = await client.post("/v1.41/images/load", data=docker_archive([([], [BASE])]))
        line = json.loads(await r.text())
        assert line["stream"].startswith("Loaded image ID: sha256:")
        r = await client.post("/v1.41/images/prune")
        report = await r.json()
        assert len([x for x in report["ImagesDeleted"] if "Deleted" in x]) >= 1 and report["SpaceReclaimed"] > 0
        r = await client.post('/v1.41/images/prune?filters={"bogus":{"x":true}}')
        assert r.status == 400
    serve(daemon, scenario)
    assert ("image", "load") in _events(daemon) and ("image", "save") in _events(daemon)
    assert ("image", "prune") in _events(daemon)


INFO_KEYS = {  # dockerd 20.10's /info on this VM
    "ID", "Containers", "ContainersRunning", "ContainersPaused", "ContainersStopped", "Images", "Driver",
    "DriverStatus", "Plugins", "MemoryLimit", "SwapLimit", "KernelMemory", "KernelMemoryTCP", "CpuCfsPeriod",
    "CpuCfsQuota", "CPUShares", "CPUSet", "PidsLimit", "IPv4Forwarding", "BridgeNfIptables", "BridgeNfIp6tables",
    "Debug", "NFd", "OomKillDisable", "NGoroutines", "SystemTime", "LoggingDriver", "CgroupDriver",
    "CgroupVersion", "NEventsListener", "KernelVersion", "OperatingSystem", "OSVersion", "OSType",
    "Architecture", "IndexServerAddress", "RegistryConfig", "NCPU", "MemTotal", "GenericResources",
    "DockerRootDir", "HttpProxy", "HttpsProxy", "NoProxy", "Name", "Labels", "ExperimentalBuild",
    "ServerVersion", "Runtimes", "DefaultRuntime", "Swarm", "LiveRestoreEnabled", "Isolation", "InitBinary",
    "ContainerdCommit", "RuncCommit", "InitCommit", "SecurityOptions", "Warnings"}


def test_info(daemon: FakeDaemon) -> None:
    imported(daemon.images, "busybox", {"a": b"1"})
    imported(daemon.images, None, {"b": b"1"})

    async def scenario(client) -> None:  # type: ignore[no-untyped-def]
        r = await client.get("/v1.41/info")
        info = await r.json()
        assert set(info) == INFO_KEYS
        assert (info["Containers"], info["ContainersRunning"], info["ContainersPaused"],
                info["ContainersStopped"]) == (3, 1, 0, 2)
        assert info["Images"] == 2 and info["Driver"] == "vfs" and info["DriverStatus"] == []
        assert info["ID"] == "ENGINE-ID" and info["DockerRootDir"] == daemon.config.data_root
        assert info["CgroupVersion"] in ("1", "2") and info["NCPU"] == os.cpu_count()
        assert info["MemTotal"] > 0 and info["OSType"] == "linux" and info["Labels"] == ["a=b"]
        assert info["Runtimes"]["runc"] == {"path": daemon.config.runtimes["runc"]}
        assert info["Swarm"]["LocalNodeState"] == "inactive"
        assert info["RegistryConfig"]["IndexConfigs"]["docker.io"]["Official"] is True
        assert "name=seccomp,profile=default" in info["SecurityOptions"]
    serve(daemon, scenario)


def test_backing_fs_and_registry_config() -> None:
    from dockyard.engine.routers import info

    assert info.backing_fs("/proc/self") == "proc"
    cfg = info.registry_config(("10.0.0.0/8", "myreg:5000"), ("https://mirror",))
    assert cfg["InsecureRegistryCIDRs"] == ["127.0.0.0/8", "10.0.0.0/8"]
    assert cfg["IndexConfigs"]["myreg:5000"]["Secure"] is False
    assert cfg["IndexConfigs"]["docker.io"]["Mirrors"] == ["https://mirror"]


def test_df_entries(daemon: FakeDaemon) -> None:
    svc = daemon.images
    svc.load(io.BytesIO(docker_archive([(["app:v1"], [BASE, TOP]), (["base:1"], [BASE])])))
    app_id = ops.find_image(svc, "app:v1").id
    daemon.containers.by_image[app_id] = ["c1", "c2"]
    rows = {r["RepoTags"][0]: r for r in ops.df_entries(daemon)}
    assert rows["app:v1"]["Containers"] == 2 and rows["base:1"]["Containers"] == 0
    assert rows["app:v1"]["SharedSize"] == content_size(BASE) == rows["base:1"]["SharedSize"]
    assert rows["app:v1"]["Size"] == content_size(BASE) + content_size(TOP)
