"""Lifecycle and config.json behaviour, run against runc and dockyard-runtime alike."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

pytestmark = pytest.mark.privileged


def unquoted(stderr: str) -> str:
    """A logrus text line's message with Go's quoting undone."""
    return stderr.replace('\\"', '"')


def test_run_echo(rt):
    r = rt.run(["echo", "hello", "world"])
    assert (r.returncode, r.stdout) == (0, "hello world\n"), r.stderr


def test_exit_status_and_signal_death(rt):
    import subprocess

    assert rt.run(["sh", "-c", "exit 7"]).returncode == 7
    cid = rt.new_id()
    proc = subprocess.Popen(rt.argv + ["run", "--bundle", rt.bundle(["sleep", "60"]), cid])
    deadline = time.monotonic() + 5
    while rt("state", cid).returncode != 0 or rt.state(cid)["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert rt("kill", cid, "KILL").returncode == 0
    assert proc.wait(timeout=10) == 137


def test_lifecycle_create_start_kill_delete(rt):
    bundle = rt.bundle(["sleep", "60"])
    cid = rt.new_id()
    pidfile = os.path.join(rt.tmp, f"{cid}.pid")
    r = rt("create", "--bundle", bundle, "--pid-file", pidfile, cid)
    assert r.returncode == 0, r.stderr
    state = rt.state(cid)
    assert state["status"] == "created"
    assert state["pid"] == int(open(pidfile).read())
    assert state["bundle"] == bundle and state["id"] == cid
    # create runs nothing of the user's: the init is not sleep yet
    assert "sleep" not in open(f"/proc/{state['pid']}/cmdline").read()
    assert rt("start", cid).returncode == 0
    assert rt.state(cid)["status"] == "running"
    assert open(f"/proc/{state['pid']}/cmdline").read().startswith("sleep")
    listed = json.loads(rt("list", "--format", "json").stdout)
    assert [c["id"] for c in listed] == [cid]
    assert rt("list", "-q").stdout == cid + "\n"
    r = rt("start", cid)
    assert r.returncode == 1 and "cannot start an already running container" in r.stderr
    r = rt("delete", cid)
    assert r.returncode == 1 and "that is not stopped: running" in r.stderr
    assert rt("kill", cid, "KILL").returncode == 0
    _wait_stopped(rt, cid)
    r = rt("kill", cid)
    assert r.returncode == 1 and "container not running" in r.stderr
    assert rt("delete", cid).returncode == 0
    r = rt("state", cid)
    assert r.returncode == 1 and "container does not exist" in r.stderr
    assert not os.path.exists(os.path.join(rt.root, cid))


def _wait_stopped(rt, cid, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if rt.state(cid)["status"] == "stopped":
            return
        time.sleep(0.05)
    raise AssertionError("container did not stop")


def test_delete_force_running(rt):
    cid = rt.new_id()
    assert rt("run", "-d", "--bundle", rt.bundle(["sleep", "60"]), cid).returncode == 0
    pid = rt.state(cid)["pid"]
    assert rt("delete", "--force", cid).returncode == 0
    assert rt("state", cid).returncode == 1
    time.sleep(0.1)
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"


def test_delete_created_container_kills_init(rt):
    cid = rt.new_id()
    assert rt("create", "--bundle", rt.bundle(["true"]), cid).returncode == 0
    assert rt("delete", cid).returncode == 0
    assert rt("state", cid).returncode == 1


def test_kill_delivers_signal_to_trapping_init(rt):
    cid = rt.new_id()
    script = 'trap "echo got TERM > /tmp/out; exit 3" TERM; while true; do sleep 0.05; done'
    bundle = rt.bundle(["sh", "-c", script])
    assert rt("run", "-d", "--bundle", bundle, cid).returncode == 0
    time.sleep(0.3)
    assert rt("kill", cid, "TERM").returncode == 0
    _wait_stopped(rt, cid)
    assert open(os.path.join(bundle, "rootfs", "tmp", "out")).read() == "got TERM\n"


def test_duplicate_id_and_unknown(rt):
    cid = rt.new_id()
    bundle = rt.bundle(["sleep", "60"])
    assert rt("create", "--bundle", bundle, cid).returncode == 0
    r = rt("create", "--bundle", bundle, cid)
    assert r.returncode == 1 and "container with given ID already exists" in r.stderr
    assert rt.state(cid)["status"] == "created"  # the failed create touched nothing
    for cmd in (["start", "nope"], ["kill", "nope"], ["delete", "nope"], ["state", "nope"]):
        r = rt(*cmd)
        assert r.returncode == 1 and "container does not exist" in r.stderr, (cmd, r.stderr)


def test_bad_signal(rt):
    cid = rt.new_id()
    assert rt("create", "--bundle", rt.bundle(["sleep", "60"]), cid).returncode == 0
    r = rt("kill", cid, "NOTASIGNAL")
    assert r.returncode == 1 and 'unknown signal "NOTASIGNAL"' in unquoted(r.stderr)


def test_missing_executable_is_a_create_error(rt):
    cid = rt.new_id()
    r = rt("create", "--bundle", rt.bundle(["no-such-binary"]), cid)
    assert r.returncode == 1
    assert 'exec: "no-such-binary": executable file not found in $PATH' in unquoted(r.stderr)
    assert not os.path.exists(os.path.join(rt.root, cid))


def test_process_settings(rt):
    def edit(spec):
        spec["hostname"] = "box"
        spec["process"]["env"].append("GREETING=hi")
        spec["process"]["cwd"] = "/work/dir"
        spec["process"]["user"] = {"uid": 65534, "gid": 65534, "additionalGids": [5]}
        spec["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654}]

    r = rt.run(["sh", "-c", 'echo $(hostname) $GREETING $(pwd) $(id -u):$(id -g):$(id -G) $(ulimit -n) $(ulimit -Hn) $HOME'],
               edit=edit)
    assert r.stdout.split() == ["box", "hi", "/work/dir", "65534:65534:65534", "5", "321", "654", "/home"], r.stderr


def test_capabilities(rt):
    def edit(spec):
        caps = ["CAP_CHOWN", "CAP_KILL"]
        spec["process"]["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps}

    r = rt.run(["sh", "-c", "grep ^Cap /proc/self/status"], edit=edit)
    fields = dict(line.split(":\t") for line in r.stdout.strip().splitlines())
    assert fields["CapBnd"] == fields["CapEff"] == fields["CapPrm"] == "0000000000000021", r.stderr
    assert fields["CapAmb"] == "0000000000000000"


def test_readonly_root_masked_and_readonly_paths(rt):
    def edit(spec):
        spec["root"]["readonly"] = True

    r = rt.run(["sh", "-c", "touch /x; echo $?; cat /proc/kcore | wc -c; echo 1 > /proc/sys/kernel/ostype; echo $?; "
                "ls /sys/firmware | wc -l"], edit=edit)
    lines = r.stdout.split()
    assert lines == ["1", "0", "1", "0"], (r.stdout, r.stderr)


def test_mounts_tmpfs_bind_and_options(rt, tmp_path):
    host_dir = tmp_path / "shared"
    host_dir.mkdir()
    (host_dir / "f").write_text("from host")

    def edit(spec):
        spec["mounts"] += [
            {"destination": "/data", "type": "bind", "source": str(host_dir), "options": ["rbind", "ro"]},
            {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "noexec"]},
        ]

    r = rt.run(["sh", "-c", "cat /data/f; echo; touch /data/g; echo $?; grep -E ' /(data|scratch) ' /proc/mounts"],
               edit=edit)
    out = r.stdout.splitlines()
    assert out[0] == "from host" and out[1] == "1", r.stderr
    data = next(line for line in out if " /data " in line)
    scratch = next(line for line in out if " /scratch " in line)
    assert " ro," in data
    assert "noexec" in scratch and "size=1024k" in scratch


def test_dev_is_populated(rt):
    r = rt.run(["sh", "-c", "ls /dev | sort | tr '\\n' ' '; readlink /dev/ptmx; readlink /dev/fd"])
    names = r.stdout.split()
    for name in ("null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue", "ptmx", "fd"):
        assert name in names, (name, r.stdout)
    assert "pts/ptmx" in r.stdout and "/proc/self/fd" in r.stdout


def test_pid_and_uts_namespaces(rt):
    r = rt.run(["sh", "-c", "echo $$; ps | wc -l"])
    assert r.stdout.split()[0] == "1"


def test_exec_into_running(rt):
    cid = rt.new_id()
    assert rt("run", "-d", "--bundle", rt.bundle(["sleep", "60"]), cid).returncode == 0
    r = rt("exec", "--env", "X=42", "--cwd", "/tmp", "--user", "65534:65534", cid, "sh", "-c", "echo $X $(pwd) $(id -u)")
    assert (r.returncode, r.stdout) == (0, "42 /tmp 65534\n"), r.stderr
    assert rt("exec", cid, "sh", "-c", "exit 9").returncode == 9
    r = rt("exec", cid, "nope")
    assert r.returncode == 255 and "executable file not found" in r.stderr
    pidfile = os.path.join(rt.tmp, "exec.pid")
    assert rt("exec", "-d", "--pid-file", pidfile, cid, "sleep", "30").returncode == 0
    pid = int(open(pidfile).read())
    r = rt("ps", "--format", "json", cid)
    assert pid in json.loads(r.stdout)
    proc = json.loads(json.dumps({"args": ["sh", "-c", "echo from json $A"], "cwd": "/", "env": ["A=b", "PATH=/bin"],
                                  "user": {"uid": 0, "gid": 0}}))
    path = os.path.join(rt.tmp, "proc.json")
    with open(path, "w") as f:
        json.dump(proc, f)
    r = rt("exec", "--process", path, cid)
    assert r.stdout == "from json b\n", r.stderr


def test_pause_resume(rt):
    cid = rt.new_id()
    assert rt("run", "-d", "--bundle", rt.bundle(["sleep", "60"]), cid).returncode == 0
    assert rt("pause", cid).returncode == 0
    assert rt.state(cid)["status"] == "paused"
    r = rt("exec", cid, "true")
    assert r.returncode != 0 and "paused" in r.stderr
    r = rt("pause", cid)
    assert r.returncode == 1
    assert rt("resume", cid).returncode == 0
    assert rt.state(cid)["status"] == "running"
    r = rt("resume", cid)
    assert r.returncode == 1 and "container not paused" in r.stderr


def test_resources_and_update(rt):
    def edit(spec):
        spec["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 30},
                                      "cpu": {"shares": 512}}

    cid = rt.new_id()
    bundle = rt.bundle(["sleep", "60"], edit=edit)
    assert rt("run", "-d", "--bundle", bundle, cid).returncode == 0
    r = rt("exec", cid, "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max "
                                    "/sys/fs/cgroup/cpu/cpu.shares")
    assert r.stdout.split() == [str(64 << 20), "30", "512"], r.stderr
    assert rt("update", "--memory", "32m", "--pids-limit", "40", cid).returncode == 0
    r = rt("exec", cid, "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max")
    assert r.stdout.split() == [str(32 << 20), "40"], r.stderr
    stats = json.loads(rt("events", "--stats", cid).stdout)
    assert stats["type"] == "stats" and stats["id"] == cid
    assert stats["data"]["pids"]["current"] >= 1
    assert stats["data"]["memory"]["usage"]["limit"] == 32 << 20


def test_hooks_get_state_and_run_in_order(rt, tmp_path):
    log = tmp_path / "hooks.log"
    script = tmp_path / "hook.sh"
    script.write_text(f"#!/bin/sh\nread state\necho \"$1 $state\" >> {log}\n")
    script.chmod(0o755)

    def edit(spec):
        spec["hooks"] = {name: [{"path": str(script), "args": ["hook", name]}]
                         for name in ("prestart", "createRuntime", "poststart", "poststop")}

    r = rt.run(["true"], edit=edit)
    assert r.returncode == 0, r.stderr
    entries = [line.split(" ", 1) for line in log.read_text().splitlines()]
    assert [e[0] for e in entries] == ["prestart", "createRuntime", "poststart", "poststop"]
    states = [json.loads(e[1]) for e in entries]
    assert states[0]["status"] == "creating" and states[0]["pid"] > 0
    assert states[2]["status"] in ("created", "running")  # runc 1.1 says created; the process runs
    assert states[3]["status"] == "stopped"


def test_failing_hook_fails_create_and_leaves_nothing(rt, tmp_path):
    def edit(spec):
        spec["hooks"] = {"createRuntime": [{"path": "/bin/false"}]}

    cid = rt.new_id()
    r = rt("create", "--bundle", rt.bundle(["true"], edit=edit), cid)
    assert r.returncode != 0
    assert rt("state", cid).returncode == 1
    assert not os.path.exists(os.path.join(rt.root, cid))


def test_hook_timeout(rt, tmp_path):
    def edit(spec):
        spec["hooks"] = {"prestart": [{"path": "/bin/sleep", "args": ["sleep", "10"], "timeout": 1}]}

    cid = rt.new_id()
    start = time.monotonic()
    r = rt("create", "--bundle", rt.bundle(["true"], edit=edit), cid)
    assert r.returncode != 0 and time.monotonic() - start < 8
    assert rt("state", cid).returncode == 1


@pytest.mark.parametrize("mutate,message", [
    (lambda s: s.update(ociVersion="9.0.0"), "unsupported ociVersion"),
    (lambda s: s["root"].update(path="/nonexistent-rootfs"), "does not exist"),
    (lambda s: s["linux"]["namespaces"].append({"type": "pid"}), "duplicated ns"),
    (lambda s: s["linux"].update(seccomp={"defaultAction": "SCMP_ACT_BOGUS"}), "not a valid action"),
    (lambda s: s["mounts"].append({"destination": "/x", "type": "bind", "source": "/nonexistent", "options": ["bind"]}),
     "does not exist"),
])
def test_bad_config_leaves_nothing(ours, mutate, message):
    """Invalid input: a clear error, and no state dir, cgroup or process left behind."""
    def edit(spec):
        spec["linux"]["cgroupsPath"] = "/dockyard-test-badconfig"
        mutate(spec)

    cid = ours.new_id()
    before = set(os.listdir("/proc"))
    r = ours("create", "--bundle", ours.bundle(["sleep", "60"], edit=edit), cid)
    assert r.returncode == 1 and message in unquoted(r.stderr), r.stderr
    assert not os.path.exists(os.path.join(ours.root, cid))
    for controller in ("memory", "pids", "devices"):
        assert not os.path.exists(f"/sys/fs/cgroup/{controller}/dockyard-test-badconfig")
    leftover = [p for p in set(os.listdir("/proc")) - before if p.isdigit() and _cmdline(p).startswith("sleep")]
    assert leftover == []


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline") as f:
            return f.read()
    except OSError:
        return ""
