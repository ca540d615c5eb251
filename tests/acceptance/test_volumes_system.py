"""Volumes (named, anonymous, bind, tmpfs) and `system df` / `system prune`."""

from __future__ import annotations

import json

import pytest

from tests.acceptance.conftest import errors

pytestmark = [pytest.mark.acceptance, pytest.mark.privileged]


def _prune_all(engine) -> list[str]:
    """`volume prune` removes named volumes too: by default up to API 1.41, with -a after."""
    api = engine.ok("version", "--format", "{{.Server.APIVersion}}").strip()
    return ["-a"] if tuple(map(int, api.split("."))) >= (1, 42) else []


def test_volume_create_ls_inspect_rm(engine):
    vol = engine.new_volume()
    assert engine.ok("volume", "create", "--label", "acc=1", vol) == f"{vol}\n"
    assert engine.ok("volume", "create", vol) == f"{vol}\n"  # idempotent
    listed = engine.ok("volume", "ls", "--format", "{{.Driver}} {{.Name}}").splitlines()
    assert f"local {vol}" in listed, listed
    assert engine.ok("volume", "ls", "-q", "--filter", "label=acc=1").split() == [vol]
    info = json.loads(engine.ok("volume", "inspect", vol))[0]
    assert (info["Name"], info["Driver"], info["Labels"], info["Scope"]) == (vol, "local", {"acc": "1"}, "local")
    assert info["Mountpoint"] == engine.daemon.path("data", "volumes", vol, "_data")
    assert info["CreatedAt"].endswith("Z")
    assert engine.ok("volume", "rm", vol) == f"{vol}\n"
    r = engine.docker("volume", "inspect", vol)
    assert r.rc == 1 and errors(r.stderr) == f"Error response from daemon: get {vol}: no such volume\n", r


def test_volume_in_use_and_prune(engine):
    used, unused = engine.new_volume(), engine.new_volume()
    for v in (used, unused):
        engine.ok("volume", "create", "--label", f"accprune={engine.label}", v)
    name = engine.run_d("-v", f"{used}:/x", "busybox", "sleep", "60")
    cid = engine.inspect(name, "{{.Id}}")
    r = engine.docker("volume", "rm", used)
    assert r.rc == 1 and errors(r.stderr) == f"Error response from daemon: remove {used}: volume is in use - [{cid}]\n", r
    r = engine.docker("volume", "prune", "-f", *_prune_all(engine), "--filter", f"label=accprune={engine.label}")
    assert r.rc == 0, r
    assert r.stdout.startswith(f"Deleted Volumes:\n{unused}\n") and "Total reclaimed space:" in r.stdout, r
    assert engine.ok("volume", "ls", "-q", "--filter", f"label=accprune={engine.label}").split() == [used]


def test_named_volume_persists_across_containers(engine):
    vol = engine.new_volume()
    engine.ok("run", "--rm", "-v", f"{vol}:/data", "busybox", "sh", "-c", "echo persisted > /data/f")
    assert engine.ok("run", "--rm", "-v", f"{vol}:/other:ro", "busybox", "cat", "/other/f") == "persisted\n"
    r = engine.docker("run", "--rm", "-v", f"{vol}:/other:ro", "busybox", "touch", "/other/g")
    assert r.rc == 1 and "Read-only file system" in r.stderr, r
    assert engine.ok("volume", "ls", "-q", "--filter", f"name={vol}").split() == [vol]


def test_anonymous_volume_copy_up(engine):
    name = engine.new_name()
    engine.ok("run", "--name", name, "-v", "/etc", "busybox", "sh", "-c", "echo new > /etc/added")
    mounts = json.loads(engine.inspect(name, "{{json .Mounts}}"))
    assert len(mounts) == 1 and mounts[0]["Type"] == "volume" and mounts[0]["Destination"] == "/etc", mounts
    vol = mounts[0]["Name"]
    assert len(vol) == 64 and mounts[0]["Driver"] == "local" and mounts[0]["RW"] is True, mounts
    out = engine.ok("run", "--rm", "-v", f"{vol}:/v", "busybox", "sh", "-c", "head -1 /v/passwd; cat /v/added")
    assert out == "root:x:0:0:root:/root:/bin/sh\nnew\n", out
    engine.ok("rm", "-v", name)
    r = engine.docker("volume", "inspect", vol)
    assert r.rc == 1, r  # rm -v removes the anonymous volume


def test_bind_mount(engine, tmp_path):
    (tmp_path / "in").write_text("from host\n")
    out = engine.ok("run", "--rm", "-v", f"{tmp_path}:/mnt", "busybox", "sh", "-c",
                    "cat /mnt/in; echo from container > /mnt/out")
    assert out == "from host\n"
    assert (tmp_path / "out").read_text() == "from container\n"
    r = engine.docker("run", "--rm", "-v", f"{tmp_path}/missing-dir:/mnt", "busybox", "true")
    assert r.rc == 0 and (tmp_path / "missing-dir").is_dir(), r  # -v creates a missing host dir
    r = engine.docker("run", "--rm", "--mount", f"type=bind,src={tmp_path}/absent,dst=/mnt", "busybox", "true")
    assert r.rc == 125 and f"bind source path does not exist: {tmp_path}/absent" in r.stderr, r


def test_tmpfs_options(engine):
    out = engine.ok("run", "--rm", "--tmpfs", "/t:size=1m,mode=1770", "busybox", "sh", "-c",
                    "stat -c %a /t; df -k /t | tail -1")
    lines = out.splitlines()
    assert lines[0] == "1770" and lines[1].split()[1] == "1024", out


def test_system_df(engine):
    name = engine.run_d("busybox", "sleep", "60")
    out = engine.ok("system", "df")
    rows = {line.split("  ")[0]: line.split() for line in out.splitlines()[1:]}
    assert out.splitlines()[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], out
    assert set(rows) == {"Images", "Containers", "Local Volumes", "Build Cache"}, out
    assert int(rows["Images"][1]) >= 1 and int(rows["Images"][2]) >= 1, out
    assert int(rows["Containers"][1]) >= 1 and int(rows["Containers"][2]) >= 1, out
    verbose = engine.ok("system", "df", "-v")
    assert name in verbose and "busybox" in verbose, verbose


def test_system_prune(engine):
    stopped = engine.new_name()
    engine.ok("run", "--name", stopped, "busybox", "true")
    running = engine.run_d("busybox", "sleep", "60")
    stopped_id = engine.inspect(stopped, "{{.Id}}")
    r = engine.docker("system", "prune", "-f")
    assert r.rc == 0, r
    assert f"Deleted Containers:\n{stopped_id}\n" in r.stdout and "Total reclaimed space:" in r.stdout, r
    assert engine.docker("inspect", stopped).rc == 1
    assert engine.inspect(running, "{{.State.Running}}") == "true"
    assert engine.ok("image", "inspect", "-f", "{{.Id}}", "busybox").startswith("sha256:")
