"""docker ps: human durations/sizes, list summaries, every list filter, event filters."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.engine.daemon import listing as L
from dockyard.engine.daemon.human import bytes_size, human_duration, human_size
from dockyard.engine.daemon.timefmt import ZERO_TIME, rfc3339_nano
from dockyard.errors import InvalidArgument, NotFound

S = 10**9
NOW = 1_795_816_215 * S
MIN, HOUR, DAY = 60 * S, 3600 * S, 86400 * S


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "Less than a second"), (S - 1, "Less than a second"), (-5 * S, "Less than a second"),
        (S, "1 second"), (59 * S + S // 2, "59 seconds"), (60 * S, "About a minute"),
        (119 * S, "About a minute"), (120 * S, "2 minutes"), (59 * MIN, "59 minutes"),
        (60 * MIN, "About an hour"), (89 * MIN, "About an hour"), (90 * MIN, "2 hours"),
        (47 * HOUR, "47 hours"), (48 * HOUR, "2 days"), (13 * DAY, "13 days"),
        (14 * DAY, "2 weeks"), (59 * DAY, "8 weeks"), (60 * DAY, "2 months"),
        (729 * DAY, "24 months"), (730 * DAY, "2 years"), (1100 * DAY, "3 years"),
    ],
)
def test_human_duration(ns: int, text: str) -> None:
    assert human_duration(ns) == text


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0B"), (999, "999B"), (1000, "1kB"), (1234, "1.234kB"), (1_234_567, "1.235MB"),
     (10_000_000, "10MB"), (999_960, "1000kB"), (3.5e12, "3.5TB")],
)
def test_human_size(size: float, text: str) -> None:
    assert human_size(size) == text


def test_bytes_size() -> None:
    assert bytes_size(1024) == "1KiB" and bytes_size(1536 * 1024) == "1.5MiB"


def _ts(ns: int | None) -> str:
    return ZERO_TIME if ns is None else rfc3339_nano(ns)


def ctr(cid: str, name: str, created: int, *, status: str = "running", exit_code: int = 0,
        started: int | None = None, finished: int | None = None, health: str | None = None,
        labels: dict[str, str] | None = None, image: str = "busybox", image_id: str = "sha256:" + "a" * 64,
        args: list[str] | None = None, ports: dict[str, Any] | None = None,
        networks: dict[str, Any] | None = None, mounts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An inspect document as GET /containers/{id}/json returns it."""
    running = status in ("running", "paused", "restarting")
    if started is None and status != "created":
        started = created + S
    state: dict[str, Any] = {
        "Status": status, "Running": running, "Paused": status == "paused",
        "Restarting": status == "restarting", "OOMKilled": False, "Dead": status == "dead",
        "Pid": 42 if running else 0, "ExitCode": exit_code, "Error": "",
        "StartedAt": _ts(started), "FinishedAt": _ts(finished),
    }
    if health is not None:
        state["Health"] = {"Status": health, "FailingStreak": 0, "Log": []}
    return {
        "Id": cid, "Created": rfc3339_nano(created), "Path": "sh", "Args": args if args is not None else ["-c", "sleep 1000"],
        "State": state, "Image": image_id, "Name": "/" + name,
        "Config": {"Image": image, "Labels": labels or {}, "Cmd": ["sh"], "Entrypoint": None, "ExposedPorts": None},
        "HostConfig": {"NetworkMode": "default", "PortBindings": {}},
        "Mounts": mounts or [],
        "NetworkSettings": {"Networks": networks if networks is not None else {"bridge": {"NetworkID": "n" * 64, "EndpointID": "e1", "Gateway": "172.17.0.1", "IPAddress": "172.17.0.2", "IPPrefixLen": 16, "MacAddress": "02:42:ac:11:00:02", "Aliases": ["x"]}},
                            "Ports": ports or {}},
    }


def test_status_texts() -> None:
    t = NOW - 5 * S
    assert L.status_text(ctr("1", "a", t, started=t)["State"], NOW) == "Up 5 seconds"
    assert L.status_text(ctr("1", "a", t, started=t, status="paused")["State"], NOW) == "Up 5 seconds (Paused)"
    assert L.status_text(ctr("1", "a", t, started=t - 115 * S, health="healthy")["State"], NOW) == "Up 2 minutes (healthy)"
    assert L.status_text(ctr("1", "a", t, started=t, health="starting")["State"], NOW) == "Up 5 seconds (health: starting)"
    assert L.status_text(ctr("1", "a", t, status="restarting", exit_code=1, finished=NOW - 3 * S)["State"], NOW) == "Restarting (1) 3 seconds ago"
    assert L.status_text(ctr("1", "a", t, status="exited", finished=NOW - 2 * S)["State"], NOW) == "Exited (0) 2 seconds ago"
    assert L.status_text(ctr("1", "a", t, status="exited", exit_code=137, finished=NOW - HOUR)["State"], NOW) == "Exited (137) About an hour ago"
    assert L.status_text(ctr("1", "a", t, status="created")["State"], NOW) == "Created"
    assert L.status_text(ctr("1", "a", t, status="dead", finished=NOW)["State"], NOW) == "Dead"
    assert L.status_text(ctr("1", "a", t, status="removing", finished=NOW)["State"], NOW) == "Removal In Progress"
    assert L.state_string(ctr("1", "a", t, status="created")["State"]) == "created"
    assert L.state_string(ctr("1", "a", t, status="removing")["State"]) == "removing"


def test_summary_shape() -> None:
    c = ctr("c" * 64, "web", NOW - 10 * S, args=["-c", "echo hi there", "x"],
            ports={"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
                   "53/udp": None, "443/tcp": []},
            mounts=[{"Type": "volume", "Name": "data", "Source": "/var/lib/v/data", "Destination": "/data",
                     "Driver": "local", "Mode": "z", "RW": True, "Propagation": ""},
                    {"Type": "bind", "Source": "/etc", "Destination": "/host", "Mode": "", "RW": False,
                     "Propagation": "rprivate"}],
            labels={"a": "1"})
    s = L.summary(c, NOW)
    assert s["Id"] == "c" * 64 and s["Names"] == ["/web"]
    assert s["Image"] == "busybox" and s["ImageID"] == "sha256:" + "a" * 64
    assert s["Command"] == "sh -c 'echo hi there' x"
    assert s["Created"] == NOW // S - 10
    assert s["Ports"] == [
        {"PrivatePort": 53, "Type": "udp"},
        {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
        {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
        {"PrivatePort": 443, "Type": "tcp"},
    ]
    assert s["Labels"] == {"a": "1"} and s["State"] == "running" and s["Status"] == "Up 9 seconds"
    assert s["HostConfig"] == {"NetworkMode": "default"}
    bridge = s["NetworkSettings"]["Networks"]["bridge"]
    assert bridge["IPAddress"] == "172.17.0.2" and bridge["IPPrefixLen"] == 16
    assert bridge["Aliases"] is None and bridge["IPAMConfig"] is None and bridge["GlobalIPv6Address"] == ""
    assert s["Mounts"][0] == {"Type": "volume", "Name": "data", "Source": "/var/lib/v/data", "Destination": "/data",
                              "Driver": "local", "Mode": "z", "RW": True, "Propagation": ""}
    assert s["Mounts"][1] == {"Type": "bind", "Source": "/etc", "Destination": "/host", "Mode": "", "RW": False,
                              "Propagation": "rprivate"}
    assert L.command_text("nginx", []) == "nginx"


def test_summary_image_ref_moved() -> None:
    c = ctr("c" * 64, "web", NOW)
    assert L.summary(c, NOW, resolve_image=lambda ref: "sha256:" + "a" * 64)["Image"] == "busybox"
    assert L.summary(c, NOW, resolve_image=lambda ref: "sha256:" + "b" * 64)["Image"] == "sha256:" + "a" * 64
    assert L.summary(c, NOW, resolve_image=lambda ref: None)["Image"] == "sha256:" + "a" * 64


A, B, C, D, E = ("a1" + "0" * 62, "b2" + "0" * 62, "c3" + "0" * 62, "c4" + "0" * 62, "e5" + "0" * 62)


def fleet() -> list[dict[str, Any]]:
    """Five containers, created A (oldest) .. E (newest)."""
    return [
        ctr(A, "alpha", NOW - 50 * S, labels={"tier": "web", "env": "prod"},
            ports={"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}, health="healthy",
            mounts=[{"Type": "volume", "Name": "data", "Source": "/v/data", "Destination": "/data", "Driver": "local",
                     "Mode": "", "RW": True, "Propagation": ""}]),
        ctr(B, "beta", NOW - 40 * S, status="exited", exit_code=1, finished=NOW - 5 * S,
            labels={"tier": "db"}, image="redis:7", image_id="sha256:" + "b" * 64),
        ctr(C, "gamma", NOW - 30 * S, status="paused", networks={"mynet": {"NetworkID": "f00d" + "0" * 60}},
            ports={"53/udp": []}),
        ctr(D, "delta", NOW - 20 * S, status="created"),
        ctr(E, "epsilon", NOW - 10 * S, status="exited", exit_code=0, finished=NOW - S,
            labels={SWARM_LABEL: "t1"}, mounts=[{"Type": "bind", "Source": "/srv", "Destination": "/www",
                                               "Mode": "", "RW": True, "Propagation": "rprivate"}]),
    ]


SWARM_LABEL = L.SWARM_TASK_LABEL


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [i["Id"][:2] for i in items]


def sel(filters: dict[str, list[str]] | None = None, **kw: Any) -> list[str]:
    return ids(L.select(fleet(), filters=filters or {}, now_ns=NOW, **kw))


def test_default_all_limit() -> None:
    assert sel() == ["c3", "a1"]  # running + paused, newest first
    assert sel(all=True) == ["e5", "c4", "c3", "b2", "a1"]
    assert sel(limit=2) == ["e5", "c4"]  # limit implies all
    assert sel(all=True, limit=1) == ["e5"]


def test_status_filter_implies_all_and_validates() -> None:
    assert sel({"status": ["exited"]}) == ["e5", "b2"]
    assert sel({"status": ["created", "paused"]}) == ["c4", "c3"]
    with pytest.raises(InvalidArgument) as exc:
        sel({"status": ["sleeping"]})
    assert str(exc.value) == "Invalid filter 'status=sleeping'"


def test_invalid_key() -> None:
    with pytest.raises(InvalidArgument) as exc:
        sel({"colour": ["red"]})
    assert str(exc.value) == "Invalid filter 'colour'"


def test_name_and_id() -> None:
    assert sel({"name": ["eta"]}, all=True) == ["b2"]  # substring regex
    assert sel({"name": ["^/?a"]}, all=True) == ["a1"]
    assert sel({"name": ["alpha"]}) == ["a1"]
    assert sel({"id": ["c"]}, all=True) == []  # ambiguous prefix matches nothing
    assert sel({"id": ["c4"]}, all=True) == ["c4"]
    assert sel({"id": [A]}) == ["a1"]
    assert sel({"id": ["c3", "b2"], "name": ["gamma"]}, all=True) == ["c3"]


def test_label_exited_health() -> None:
    assert sel({"label": ["tier"]}, all=True) == ["b2", "a1"]
    assert sel({"label": ["tier=db"]}, all=True) == ["b2"]
    assert sel({"label": ["tier", "env=prod"]}, all=True) == ["a1"]
    assert sel({"exited": ["1"]}, all=True) == ["b2"]
    assert sel({"exited": ["0"]}, all=True) == ["e5"]  # created (never started) is excluded
    with pytest.raises(InvalidArgument) as exc:
        sel({"exited": ["x"]})
    assert str(exc.value) == 'strconv.Atoi: parsing "x": invalid syntax'
    assert sel({"health": ["healthy"]}, all=True) == ["a1"]
    assert sel({"health": ["none"]}, all=True) == ["e5", "c4", "c3", "b2"]
    with pytest.raises(InvalidArgument) as exc:
        sel({"health": ["great"]})
    assert str(exc.value) == "Unrecognised filter value for health: great"


def test_before_since() -> None:
    assert sel({"before": ["gamma"]}, all=True) == ["b2", "a1"]
    assert sel({"since": ["gamma"]}, all=True) == ["e5", "c4"]
    assert sel({"since": [B], "before": ["e5"]}, all=True) == ["c4", "c3"]
    with pytest.raises(NotFound):
        sel({"before": ["nope"]})


def test_volume_network_ports() -> None:
    assert sel({"volume": ["data"]}, all=True) == ["a1"]
    assert sel({"volume": ["/www"]}, all=True) == ["e5"]
    assert sel({"volume": ["/srv"]}, all=True) == ["e5"]  # bind: source counts as name
    assert sel({"network": ["mynet"]}, all=True) == ["c3"]
    assert sel({"network": ["f00d"]}, all=True) == ["c3"]
    assert sel({"network": ["bridge"]}, all=True) == ["e5", "c4", "b2", "a1"]
    assert sel({"publish": ["8080"]}, all=True) == ["a1"]
    assert sel({"publish": ["8000-9000/tcp"]}, all=True) == ["a1"]
    assert sel({"publish": ["8080/udp"]}, all=True) == []
    assert sel({"expose": ["80"]}, all=True) == ["a1"]
    assert sel({"expose": ["53/udp"]}, all=True) == ["c3"]
    with pytest.raises(InvalidArgument) as exc:
        sel({"publish": ["80:80"]})
    assert str(exc.value) == "filter for 'publish' should not contain ':': 80:80"
    with pytest.raises(InvalidArgument):
        sel({"expose": ["x/tcp"]})
    with pytest.raises(InvalidArgument):
        sel({"expose": ["90-80"]})


def test_is_task_isolation_ancestor() -> None:
    assert sel({"is-task": ["true"]}, all=True) == ["e5"]
    assert sel({"is-task": ["false"]}, all=True) == ["c4", "c3", "b2", "a1"]
    with pytest.raises(InvalidArgument) as exc:
        sel({"is-task": ["maybe"]})
    assert str(exc.value) == "Invalid filter 'is-task=[maybe]'"
    assert sel({"isolation": ["default"]}, all=True) == ["e5", "c4", "c3", "b2", "a1"]
    lookup = {"redis": {"sha256:" + "b" * 64}, "busybox": {"sha256:" + "a" * 64}}
    assert sel({"ancestor": ["redis"]}, all=True, image_ids=lambda r: lookup.get(r, set())) == ["b2"]
    assert sel({"ancestor": ["nothing"]}, all=True, image_ids=lambda r: lookup.get(r, set())) == []
    assert sel({"ancestor": ["redis:7"]}, all=True) == ["b2"]  # fallback without image_ids
    assert sel({"ancestor": ["bbbb"]}, all=True) == ["b2"]


def test_match_event() -> None:
    start = {"Type": "container", "Action": "start", "scope": "local",
             "Actor": {"ID": A, "Attributes": {"name": "alpha", "image": "docker.io/library/busybox:latest", "tier": "web"}}}
    health = dict(start, Action="health_status: healthy")
    pull = {"Type": "image", "Action": "pull", "scope": "local",
            "Actor": {"ID": "busybox:latest", "Attributes": {"name": "busybox"}}}
    vol = {"Type": "volume", "Action": "create", "scope": "local", "Actor": {"ID": "data", "Attributes": {"driver": "local"}}}
    assert L.match_event(start, {})
    assert L.match_event(start, {"container": ["alpha"]}) and L.match_event(start, {"container": ["a1"]})
    assert not L.match_event(start, {"container": ["beta"]})
    assert not L.match_event(vol, {"container": ["alpha"]})
    assert L.match_event(start, {"event": ["start", "die"]}) and not L.match_event(start, {"event": ["die"]})
    assert L.match_event(health, {"event": ["health_status"]}) and not L.match_event(health, {"event": ["start"]})
    assert L.match_event(start, {"type": ["container"]}) and not L.match_event(pull, {"type": ["container"]})
    assert L.match_event(start, {"image": ["busybox"]}) and L.match_event(pull, {"image": ["busybox"]})
    assert L.match_event(pull, {"image": ["busybox:latest"]}) and not L.match_event(start, {"image": ["redis"]})
    assert L.match_event(start, {"label": ["tier=web"]}) and not L.match_event(start, {"label": ["tier=db"]})
    assert L.match_event(vol, {"volume": ["data"]}) and L.match_event(start, {"scope": ["local"]})
    assert not L.match_event(start, {"scope": ["swarm"]})
    assert "container" in L.EVENT_FILTERS
