"""Image-config merge, env, args, users, rlimits and exec processes."""

from __future__ import annotations

import os

import pytest

from dockyard.engine.daemon.spec import exec_process, merge_image_config, process_spec, resolve_user
from dockyard.engine.daemon.spec.defaults import DEFAULT_CAPS, DEFAULT_PATH_ENV
from dockyard.engine.daemon.spec.process import replace_or_append_env, rlimits
from dockyard.errors import InvalidArgument

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:2:2:daemon:/sbin:/sbin/nologin
app:x:1000:1000::/home/app:/bin/sh
nobody:x:65534:65534:nobody:/:/sbin/nologin
"""
GROUP = """root:x:0:root
bin:x:1:root,bin,daemon
daemon:x:2:root,bin,daemon
wheel:x:10:root,app
app:x:1000:
audio:x:29:
"""


@pytest.fixture
def rootfs(tmp_path):
    etc = tmp_path / "rootfs" / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text(PASSWD)
    (etc / "group").write_text(GROUP)
    return str(tmp_path / "rootfs")


IMAGE = {
    "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C"], "Entrypoint": ["/entry.sh"], "Cmd": ["serve"],
    "User": "app", "WorkingDir": "/srv", "Labels": {"a": "image", "b": "image"},
    "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/data": {}}, "StopSignal": "SIGQUIT",
    "Healthcheck": {"Test": ["CMD", "true"], "Interval": 5, "Retries": 3}, "Shell": ["/bin/bash", "-c"],
}


def test_merge_takes_image_defaults():
    got = merge_image_config({"Image": "x"}, IMAGE)
    assert got["Entrypoint"] == ["/entry.sh"] and got["Cmd"] == ["serve"]
    assert got["Env"] == IMAGE["Env"] and got["User"] == "app" and got["WorkingDir"] == "/srv"
    assert got["ExposedPorts"] == {"80/tcp": {}} and got["Volumes"] == {"/data": {}}
    assert got["StopSignal"] == "SIGQUIT" and got["Healthcheck"] == IMAGE["Healthcheck"]
    assert "Shell" not in got  # dockerd does not merge Shell / OnBuild


def test_merge_request_overrides():
    req = {"Env": ["LANG=fr", "X=1"], "Cmd": ["other"], "User": "root", "Labels": {"b": "mine"},
           "ExposedPorts": {"443/tcp": {}}, "Volumes": {"/logs": {}}, "Healthcheck": {"Interval": 9}}
    got = merge_image_config(req, IMAGE)
    assert got["Env"] == ["LANG=fr", "X=1", "PATH=/usr/local/bin:/usr/bin:/bin"]
    assert (got["Entrypoint"], got["Cmd"]) == (["/entry.sh"], ["other"])
    assert got["Labels"] == {"a": "image", "b": "mine"} and got["User"] == "root"
    assert got["ExposedPorts"] == {"443/tcp": {}, "80/tcp": {}} and got["Volumes"] == {"/logs": {}, "/data": {}}
    assert got["Healthcheck"] == {"Interval": 9, "Test": ["CMD", "true"], "Timeout": 0, "StartPeriod": 0, "Retries": 3}
    assert req["Env"] == ["LANG=fr", "X=1"]  # the input is not modified


def test_merge_entrypoint_rules():
    assert merge_image_config({"Entrypoint": ["/bin/echo"]}, IMAGE)["Cmd"] is None
    got = merge_image_config({"Entrypoint": [], "Cmd": ["ls"]}, IMAGE)  # [] is given: keeps image entrypoint out
    assert (got["Entrypoint"], got["Cmd"]) == ([], ["ls"])
    got = merge_image_config({"Entrypoint": [""], "Cmd": ["ls"]}, IMAGE)
    assert (got["Entrypoint"], got["Cmd"]) == (None, ["ls"])
    with pytest.raises(InvalidArgument, match="^No command specified$"):
        merge_image_config({"Entrypoint": [""]}, IMAGE)
    with pytest.raises(InvalidArgument, match="^No command specified$"):
        merge_image_config({}, {})


def test_replace_or_append_env():
    assert replace_or_append_env(["A=1", "B=2", "C=3"], ["B=x", "C", "D=4", "NOPE"]) == ["A=1", "B=x", "D=4"]


@pytest.mark.parametrize("user, group_add, expected", [
    ("", None, {"uid": 0, "gid": 0, "additionalGids": [0, 0, 1, 2, 10]}),
    ("app", None, {"uid": 1000, "gid": 1000, "additionalGids": [1000, 10]}),
    ("1000", None, {"uid": 1000, "gid": 1000, "additionalGids": [1000, 10]}),
    ("app:audio", None, {"uid": 1000, "gid": 29, "additionalGids": [29]}),
    ("4242", None, {"uid": 4242, "gid": 0, "additionalGids": [0]}),
    ("4242:4343", None, {"uid": 4242, "gid": 4343, "additionalGids": [4343]}),
    ("nobody", ["audio", "777", "wheel"], {"uid": 65534, "gid": 65534, "additionalGids": [65534, 29, 777, 10]}),
])
def test_resolve_user(rootfs, user, group_add, expected):
    assert resolve_user(rootfs, user, group_add) == expected


@pytest.mark.parametrize("user, group_add, message", [
    ("ghost", None, "unable to find user ghost: no matching entries in passwd file"),
    ("app:ghosts", None, "unable to find group ghosts: no matching entries in group file"),
    ("app", ["ghosts"], "Unable to find group ghosts"),
    ("-1", None, "uids and gids must be in range 0-2147483647"),
])
def test_resolve_user_errors(rootfs, user, group_add, message):
    with pytest.raises(InvalidArgument) as e:
        resolve_user(rootfs, user, group_add)
    assert str(e.value) == message


def test_resolve_user_follows_symlinks_inside_rootfs(tmp_path):
    root = tmp_path / "r"
    (root / "real").mkdir(parents=True)
    (root / "real" / "passwd").write_text("svc:x:123:456::/:/bin/sh\n")
    os.symlink("/real", root / "etc")  # absolute: must resolve inside the rootfs
    assert resolve_user(str(root), "svc")["uid"] == 123
    assert resolve_user(str(tmp_path / "missing"), "") == {"uid": 0, "gid": 0, "additionalGids": [0]}


def test_rlimits():
    got = rlimits([{"Name": "nofile", "Soft": 100, "Hard": 200}], {"nofile": (1, 1), "nproc": (5, 6)})
    assert got == [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}, {"type": "RLIMIT_NPROC", "soft": 5, "hard": 6}]
    assert rlimits([{"Name": "core", "Soft": -1, "Hard": -1}], None)[0]["soft"] == 2**64 - 1
    with pytest.raises(InvalidArgument, match="invalid ulimit type: bogus"):
        rlimits([{"Name": "bogus", "Soft": 1, "Hard": 1}], None)
    with pytest.raises(InvalidArgument, match="soft limit must be less than or equal to hard limit: 3 > 2"):
        rlimits([{"Name": "nofile", "Soft": 3, "Hard": 2}], None)


def test_process_spec(rootfs):
    config = {"Hostname": "box", "Tty": True, "Entrypoint": ["/e"], "Cmd": ["a"], "Env": ["PATH=/bin", "K=V"],
              "WorkingDir": "/w", "User": ""}
    proc = process_spec(config, {"OomScoreAdj": 500}, rootfs, no_new_privileges=True, with_init=True,
                        default_ulimits={"nofile": (1024, 4096)})
    assert proc == {
        "terminal": True,
        "user": {"uid": 0, "gid": 0, "additionalGids": [0, 0, 1, 2, 10]},
        "args": ["/sbin/docker-init", "--", "/e", "a"],
        "env": ["PATH=/bin", "HOSTNAME=box", "TERM=xterm", "K=V"],
        "cwd": "/w",
        "capabilities": {k: list(DEFAULT_CAPS) for k in ("bounding", "effective", "permitted")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096}],
        "oomScoreAdj": 500,
        "noNewPrivileges": True,
    }


def test_process_spec_non_root_and_errors(rootfs):
    proc = process_spec({"Cmd": ["x"], "User": "app"}, {"CapAdd": ["net_admin"]}, rootfs)
    assert proc["capabilities"] == {"bounding": list(DEFAULT_CAPS) + ["CAP_NET_ADMIN"]}
    assert proc["env"] == ["PATH=" + DEFAULT_PATH_ENV, "HOSTNAME="] and proc["cwd"] == "/"
    with pytest.raises(InvalidArgument, match="^No command specified$"):
        process_spec({}, {}, rootfs)
    with pytest.raises(InvalidArgument, match="the working directory 'rel' is invalid, it needs to be an absolute path"):
        process_spec({"Cmd": ["x"], "WorkingDir": "rel"}, {}, rootfs)


def test_exec_process(rootfs):
    config = {"Hostname": "box", "Tty": True, "Cmd": ["sh"], "Env": ["A=1"], "WorkingDir": "/w"}
    container = {"process": process_spec(config, {}, rootfs, no_new_privileges=True)}
    container["process"]["apparmorProfile"] = "docker-default"
    got = exec_process(container, {"Cmd": ["ls", "-l"], "Env": ["B=2"], "User": "app"}, rootfs,
                       container_config=config)
    assert got["args"] == ["ls", "-l"] and "terminal" not in got
    assert got["env"] == ["PATH=" + DEFAULT_PATH_ENV, "HOSTNAME=box", "A=1", "B=2"]
    assert got["cwd"] == "/w" and got["user"]["uid"] == 1000
    assert got["noNewPrivileges"] is True and got["apparmorProfile"] == "docker-default"
    assert got["capabilities"] == container["process"]["capabilities"]
    priv = exec_process(container, {"Cmd": ["id"], "Privileged": True, "Tty": True, "WorkingDir": "/tmp"}, rootfs)
    assert "CAP_SYS_ADMIN" in priv["capabilities"]["effective"] and priv["cwd"] == "/tmp"
    assert priv["env"][-1] == "TERM=xterm" and priv["user"] == container["process"]["user"]
    with pytest.raises(InvalidArgument, match="No exec command specified"):
        exec_process(container, {"Cmd": []}, rootfs)


def test_prepare_working_dir(rootfs):
    from dockyard.engine.daemon.spec import prepare_working_dir

    prepare_working_dir(rootfs, "/srv/app")
    assert os.path.isdir(os.path.join(rootfs, "srv", "app"))
    prepare_working_dir(rootfs, "")
    with pytest.raises(InvalidArgument, match="Cannot mkdir: /etc/passwd is not a directory"):
        prepare_working_dir(rootfs, "/etc/passwd")
