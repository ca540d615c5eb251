"""Binds / Mounts / Tmpfs / Volumes parsing and the spec's mounts array."""

from __future__ import annotations

import os

import pytest

from dockyard.engine.daemon.spec import MountPoint, parse_bind, parse_mounts, prepare_bind_sources
from dockyard.engine.daemon.spec.specmounts import (MountContext, merge_tmpfs_options, rootfs_propagation,
                                                    spec_mounts)
from dockyard.errors import InvalidArgument

SHM = 64 << 20


def test_bind_with_options():
    mp = parse_bind("/src/:/data/:ro,z,rshared")
    assert mp == MountPoint("bind", "/src", "/data", rw=False, propagation="rshared", mode="ro,z,rshared",
                            create_source=True)


def test_bind_default_propagation_and_rw():
    mp = parse_bind("/src:/data")
    assert (mp.type, mp.rw, mp.propagation, mp.mode) == ("bind", True, "rprivate", "")


def test_named_and_anonymous_volumes():
    named = parse_bind("cache:/var/cache:nocopy")
    assert (named.type, named.name, named.driver, named.copy_data, named.mode) == (
        "volume", "cache", "local", False, "nocopy")
    assert parse_bind("cache:/c").mode == "z"  # dockerd's default mode for local volumes
    anon = parse_bind("/data")
    assert (anon.type, anon.name, anon.destination) == ("volume", "", "/data")
    assert parse_bind("v1:/x", volume_driver="nfs").driver == "nfs"


@pytest.mark.parametrize("raw, message", [
    ("x", "invalid volume specification: 'x': invalid mount config for type \"volume\": "
          "invalid mount path: 'x' mount path must be absolute"),
    ("/a:/b:/c:/d", "invalid volume specification: '/a:/b:/c:/d'"),
    (":/b", "invalid volume specification: ':/b'"),
    ("/foo:rw", "invalid volume specification: '/foo:rw'"),
    ("/a:/b:bogus", "invalid mode: bogus"),
    ("/a:/b:ro,rw", "invalid mode: ro,rw"),
    ("/a:/", "invalid volume specification: '/a:/': invalid mount config for type \"bind\": "
             "invalid specification: destination can't be '/'"),
    ("/a:rel", "invalid volume specification: '/a:rel': invalid mount config for type \"bind\": "
               "invalid mount path: 'rel' mount path must be absolute"),
    ("/a:/b:nocopy", "invalid volume specification: '/a:/b:nocopy': invalid mount config for type \"bind\": "
                     "field VolumeOptions must not be specified"),
    ("vol:/b:rshared", "invalid volume specification: 'vol:/b:rshared': invalid mount config for type "
                       "\"volume\": field BindOptions must not be specified"),
    ("./rel:/b", 'create ./rel: "./rel" includes invalid characters for a local volume name'),
    ("a:/b", "create a: volume name is too short"),
])
def test_bind_errors(raw, message):
    with pytest.raises(InvalidArgument) as e:
        parse_bind(raw)
    assert str(e.value).startswith(message)


def test_mount_specs(tmp_path):
    hc = {"Mounts": [
        {"Type": "bind", "Source": str(tmp_path), "Target": "/b", "ReadOnly": True,
         "BindOptions": {"Propagation": "rslave", "NonRecursive": True}},
        {"Type": "volume", "Source": "data", "Target": "/v", "VolumeOptions": {"NoCopy": True}},
        {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 64 << 20, "Mode": 0o1777}},
    ]}
    b, v, t = parse_mounts({}, hc)
    assert b == MountPoint("bind", str(tmp_path), "/b", rw=False, propagation="rslave", non_recursive=True)
    assert (v.name, v.copy_data, v.mode, v.driver) == ("data", False, "z", "local")
    assert (t.type, t.tmpfs_options) == ("tmpfs", ("mode=1777", "size=64m"))


@pytest.mark.parametrize("mount, message", [
    ({"Type": "bind", "Source": "/nope/really", "Target": "/x"},
     'invalid mount config for type "bind": bind source path does not exist: /nope/really'),
    ({"Type": "bind", "Target": "/x"}, 'invalid mount config for type "bind": field Source must not be empty'),
    ({"Type": "bind", "Source": "/", "Target": ""}, 'invalid mount config for type "bind": field Target must not be empty'),
    ({"Type": "bind", "Source": "/", "Target": "/x", "BindOptions": {"Propagation": "up"}},
     'invalid mount config for type "bind": invalid propagation mode: up'),
    ({"Type": "volume", "Target": "/x", "ReadOnly": True},
     'invalid mount config for type "volume": must not set ReadOnly mode when using anonymous volumes'),
    ({"Type": "volume", "Source": "/abs", "Target": "/x"}, 'create /abs: "/abs" includes invalid characters'),
    ({"Type": "tmpfs", "Source": "x", "Target": "/x"}, 'invalid mount config for type "tmpfs": field Source must not be specified'),
    ({"Type": "npipe", "Source": "x", "Target": "/x"}, 'invalid mount config for type "npipe": mount type unknown'),
])
def test_mount_errors(mount, message):
    with pytest.raises(InvalidArgument) as e:
        parse_mounts({}, {"Mounts": [mount]})
    assert str(e.value).startswith(message)


def test_duplicates_and_order(tmp_path):
    with pytest.raises(InvalidArgument, match="^Duplicate mount point: /data$"):
        parse_mounts({}, {"Binds": ["/a:/data", "/b:/data/"]})
    with pytest.raises(InvalidArgument, match="^Duplicate mount point: /run$"):
        parse_mounts({}, {"Binds": ["/a:/run"], "Tmpfs": {"/run": ""}})
    with pytest.raises(InvalidArgument, match="^Duplicate mount point: /data/$"):
        parse_mounts({}, {"Binds": ["/a:/data"], "Mounts": [{"Type": "bind", "Source": str(tmp_path), "Target": "/data/"}]})
    got = parse_mounts({"Volumes": {"/data": {}, "/logs": {}}}, {"Binds": ["/a:/data"], "Tmpfs": {"/run": "size=1m"}})
    assert [(m.type, m.destination) for m in got] == [("bind", "/data"), ("tmpfs", "/run"), ("volume", "/logs")]
    assert got[1].tmpfs_options == ("size=1m",) and got[2].name == ""
    assert [m.listed for m in got] == [True, False, True]  # inspect does not list HostConfig.Tmpfs


def test_prepare_bind_sources_creates_only_v_binds(tmp_path):
    made = tmp_path / "made" / "deep"
    mounts = [parse_bind(f"{made}:/x"), MountPoint("bind", str(tmp_path / "strict"), "/y")]
    prepare_bind_sources(mounts)
    assert made.is_dir() and oct(made.stat().st_mode & 0o777) == "0o755"
    assert not (tmp_path / "strict").exists()


def test_merge_tmpfs_options():
    assert merge_tmpfs_options(["noexec", "nosuid", "nodev", "rprivate", "exec", "size=1m", "size=2m", "ro"]) == \
        ["nosuid", "nodev", "rprivate", "exec", "size=2m", "ro"]
    with pytest.raises(InvalidArgument, match=r'^Invalid tmpfs option \["bogus"\]$'):
        merge_tmpfs_options(["bogus"])


def _net_files(tmp_path):
    out = []
    for name, dest in (("resolv.conf", "/etc/resolv.conf"), ("hostname", "/etc/hostname"), ("hosts", "/etc/hosts")):
        (tmp_path / name).write_text("x")
        out.append((str(tmp_path / name), dest))
    return tuple(out)


def test_spec_mounts_layout(tmp_path):
    users = [parse_bind("/src:/a/b/c:ro"), parse_bind("/top:/top"),
             MountPoint("tmpfs", "", "/run", tmpfs_options=("size=1m",)),
             MountPoint("volume", "/var/lib/vol", "/v", name="v", mode="z")]
    ctx = MountContext(shm_size=SHM, network_files=_net_files(tmp_path), init_path="/usr/bin/tini")
    got = spec_mounts(users, ctx)
    assert [m["destination"] for m in got] == [
        "/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm", "/sbin/docker-init",
        "/top", "/run", "/v", "/etc/resolv.conf", "/etc/hostname", "/etc/hosts", "/a/b/c"]  # by depth
    by = {m["destination"]: m for m in got}
    assert by["/dev/shm"]["options"][-1] == f"size={SHM}"
    assert by["/sbin/docker-init"] == {"destination": "/sbin/docker-init", "type": "bind",
                                       "source": "/usr/bin/tini", "options": ["bind", "ro"]}
    assert by["/a/b/c"]["options"] == ["rbind", "ro", "rprivate"]
    assert by["/v"] == {"destination": "/v", "type": "bind", "source": "/var/lib/vol", "options": ["rbind"]}
    assert by["/run"]["options"] == ["noexec", "nosuid", "nodev", "rprivate", "size=1m"]
    assert by["/etc/hosts"]["options"] == ["rbind", "rprivate"]


def test_user_mounts_replace_defaults(tmp_path):
    users = [parse_bind("/mydev:/dev"), parse_bind("/myhosts:/etc/hosts:ro")]
    ctx = MountContext(shm_size=SHM, network_files=_net_files(tmp_path), ipc_mode="none")
    got = spec_mounts(users, ctx)
    dests = [m["destination"] for m in got]
    assert "/dev/pts" not in dests and "/dev/shm" not in dests and dests.count("/etc/hosts") == 1
    assert [m["source"] for m in got if m["destination"] == "/etc/hosts"] == ["/myhosts"]


def test_readonly_rootfs_and_privileged(tmp_path):
    users = [parse_bind("/rw:/rw")]
    got = {m["destination"]: m for m in spec_mounts(
        users, MountContext(shm_size=SHM, readonly_rootfs=True, network_files=_net_files(tmp_path)))}
    assert "ro" not in got["/proc"]["options"] and "ro" not in got["/dev/shm"]["options"]
    assert "ro" in got["/sys"]["options"] and "ro" not in got["/rw"]["options"]
    assert got["/etc/hosts"]["options"] == ["rbind", "ro", "rprivate"]
    priv = {m["destination"]: m for m in spec_mounts([], MountContext(shm_size=SHM, privileged=True))}
    assert "ro" not in priv["/sys"]["options"] and "ro" not in priv["/sys/fs/cgroup"]["options"]


def test_rootfs_propagation(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text("22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
                    "30 22 0:5 / /priv rw - tmpfs tmpfs rw\n"
                    "31 22 0:6 / /slave rw master:3 - tmpfs tmpfs rw\n")
    assert rootfs_propagation([parse_bind("/x:/x")], str(info)) == ""
    assert rootfs_propagation([parse_bind("/data:/d:rshared")], str(info)) == "shared"
    assert rootfs_propagation([parse_bind("/slave/x:/d:rslave")], str(info)) == "rslave"
    with pytest.raises(InvalidArgument, match="^path /priv/x is mounted on /priv but it is not a shared mount$"):
        rootfs_propagation([parse_bind("/priv/x:/d:shared")], str(info))
    with pytest.raises(InvalidArgument, match="not a shared or slave mount"):
        rootfs_propagation([parse_bind("/priv/x:/d:slave")], str(info))
    assert os.path.exists("/proc/self/mountinfo")


def test_unresolved_volume_is_an_error():
    with pytest.raises(InvalidArgument, match="mount /data: the volume source was not resolved"):
        spec_mounts([parse_bind("/data")], MountContext(shm_size=SHM))
