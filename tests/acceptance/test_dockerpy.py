"""docker-py 7 against the engine: containers, logs streams, wait, exec_run, images, volumes, errors."""

from __future__ import annotations

import docker
import pytest

pytestmark = [pytest.mark.acceptance, pytest.mark.privileged]


def test_ping_and_version(engine):
    c = engine.client()
    assert c.ping() is True
    v = c.version()
    assert v["Os"] == "linux" and v["ApiVersion"] and "Components" in v, v
    assert c.info()["Images"] >= 1


def test_containers_run_returns_output(engine):
    c = engine.client()
    name = engine.new_name()
    assert c.containers.run("busybox", ["echo", "hello", "world"], name=name) == b"hello world\n"
    assert c.containers.run("busybox", "echo removed", remove=True) == b"removed\n"


def test_containers_run_error(engine):
    import docker

    c = engine.client()
    name = engine.new_name()
    with pytest.raises(docker.errors.ContainerError) as info:
        c.containers.run("busybox", ["sh", "-c", "echo oops >&2; exit 2"], name=name)
    assert info.value.exit_status == 2 and b"oops" in info.value.stderr
    with pytest.raises(docker.errors.ImageNotFound):
        c.containers.create("acc-no-such-image:1")
    with pytest.raises(docker.errors.NotFound):
        c.containers.get("acc-not-there")


def test_detach_logs_stream_wait(engine):
    c = engine.client()
    ctr = c.containers.run("busybox", ["sh", "-c", "for i in 1 2 3; do echo tick$i; sleep 0.2; done; exit 4"],
                           detach=True, name=engine.new_name())
    assert ctr.status == "created" or ctr.status == "running"
    lines = list(ctr.logs(stream=True, follow=True))
    assert b"".join(lines) == b"tick1\ntick2\ntick3\n", lines
    assert ctr.wait(timeout=20) == {"StatusCode": 4, "Error": None}
    ctr.reload()
    assert (ctr.status, ctr.attrs["State"]["ExitCode"], ctr.name) == ("exited", 4, engine.names[-1])


def test_exec_run_and_lifecycle(engine):
    c = engine.client()
    ctr = c.containers.run("busybox", ["sleep", "60"], detach=True, name=engine.new_name())
    res = ctr.exec_run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert res.exit_code == 3 and sorted(res.output.splitlines()) == [b"err", b"out"], res
    res = ctr.exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True)
    assert res.output == (b"out\n", b"err\n"), res
    res = ctr.exec_run("id -u", user="65534", environment={"A": "1"})
    assert res.output == b"65534\n"
    assert [p[-1] for p in ctr.top()["Processes"]] == ["sleep 60"]
    stats = ctr.stats(stream=False)
    assert stats["pids_stats"]["current"] == 1 and "memory_stats" in stats, stats.keys()
    ctr.pause()
    ctr.reload()
    assert ctr.status == "paused"
    ctr.unpause()
    ctr.stop(timeout=1)
    ctr.reload()
    assert ctr.status == "exited" and ctr.attrs["State"]["ExitCode"] == 137
    ctr.remove()
    assert all(x.name != engine.names[-1] for x in c.containers.list(all=True))


def test_containers_list_and_filters(engine):
    c = engine.client()
    up = c.containers.run("busybox", ["sleep", "60"], detach=True, name=engine.new_name(), labels={"acc": "yes"})
    names = [x.name for x in c.containers.list(filters={"label": "acc=yes"})]
    assert names == [up.name], names
    assert c.containers.get(up.id[:12]).id == up.id


def test_images_list(engine):
    c = engine.client()
    tags = [t for image in c.images.list() for t in image.tags]
    assert "busybox:latest" in tags, tags
    image = c.images.get("busybox")
    assert image.id.startswith("sha256:") and image.attrs["Config"]["Cmd"] == ["sh"]
    tag = engine.new_image()
    assert image.tag(tag.split(":")[0], "latest") is True
    assert c.images.get(tag).id == image.id
    c.images.remove(tag)


def test_volumes(engine):
    c = engine.client()
    name = engine.new_volume()
    vol = c.volumes.create(name, labels={"acc": "py"})
    assert vol.name == name and vol.attrs["Driver"] == "local"
    assert name in [v.name for v in c.volumes.list()]
    out = c.containers.run("busybox", ["sh", "-c", "echo py > /v/f; cat /v/f"], remove=True,
                           volumes={name: {"bind": "/v", "mode": "rw"}})
    assert out == b"py\n"
    c.volumes.get(name).remove()
    assert name not in [v.name for v in c.volumes.list()]


def test_not_a_swarm_node(engine):
    """docker-py's own network tests leave a swarm after each case and accept only dockerd's 503s."""
    client = engine.client()
    with pytest.raises(docker.errors.APIError) as info:
        client.api.inspect_swarm()
    assert info.value.status_code == 503
    assert 'This node is not a swarm manager. Use "docker swarm init"' in str(info.value)
    assert client.api.leave_swarm(force=True) is True  # 503 "not part of a swarm" counts as done
    with pytest.raises(docker.errors.APIError) as info:
        client.api.remove_node("x")
    assert info.value.status_code == 503
