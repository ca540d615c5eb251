"""A detached container's life: logs, logs -f, exec, stop, rm, inspect, stats, top, wait, rename, pause, events."""

from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest

from tests.acceptance.conftest import errors

pytestmark = [pytest.mark.acceptance, pytest.mark.privileged]


def test_detached_logs_exec_stop_rm(engine):
    name = engine.new_name()
    cid = engine.ok("run", "-d", "--name", name, "busybox", "sh", "-c",
                    "echo out-line; echo err-line >&2; trap 'exit 0' TERM; while true; do sleep 0.1; done").strip()
    assert len(cid) == 64 and int(cid, 16) >= 0, cid
    engine.wait_log(name, "out-line")
    r = engine.docker("logs", name)
    assert (r.stdout, errors(r.stderr)) == ("out-line\n", "err-line\n"), r
    assert engine.ok("exec", name, "sh", "-c", "echo exec-$((1+1)); id -u") == "exec-2\n0\n"
    r = engine.docker("exec", name, "sh", "-c", "exit 4")
    assert r.rc == 4, r
    r = engine.docker("exec", "-u", "65534", "-w", "/tmp", "-e", "V=1", name, "sh", "-c", 'id -u; pwd; echo $V')
    assert r.stdout == "65534\n/tmp\n1\n", r
    started = time.monotonic()
    assert engine.ok("stop", name).strip() == name
    assert time.monotonic() - started < 8  # the TERM trap exits: no 10 s kill timeout
    assert engine.inspect(name, "{{.State.Status}} {{.State.ExitCode}}") == "exited 0"
    assert engine.ok("rm", name).strip() == name
    assert engine.docker("inspect", name).rc == 1


def test_logs_follow_until_exit(engine):
    name = engine.run_d("busybox", "sh", "-c", "for i in 1 2 3 4 5; do echo line$i; sleep 0.2; done")
    r = engine.docker("logs", "-f", name, timeout=20)
    assert (r.rc, r.stdout) == (0, "".join(f"line{i}\n" for i in range(1, 6))), r


def test_logs_options(engine):
    name = engine.new_name()
    engine.ok("run", "--name", name, "busybox", "sh", "-c", "for i in 1 2 3 4; do echo n$i; done")
    assert engine.ok("logs", "--tail", "2", name) == "n3\nn4\n"
    stamped = engine.ok("logs", "-t", name).splitlines()
    assert len(stamped) == 4 and stamped[0].endswith("Z n1") and stamped[0][:4].isdigit(), stamped


def test_exec_it_through_a_pty(engine):
    name = engine.run_d("busybox", "sleep", "60")
    with engine.pty("exec", "-it", name, "sh") as p:
        p.expect(rb"# ")
        p.send("tty; echo $((6*7)); exit 6\r")
        p.expect(rb"42")
        rc, out = p.finish()
    assert rc == 6, out
    assert "/dev/pts/" in out, out


def test_inspect_fields(engine, tmp_path):
    (tmp_path / "f").write_text("x")
    name = engine.run_d("-v", f"{tmp_path}:/mnt:ro", "busybox", "sleep", "60")
    data = json.loads(engine.ok("inspect", name))[0]
    assert data["Name"] == f"/{name}"
    assert data["Config"]["Cmd"] == ["sleep", "60"] and data["Config"]["Image"] == "busybox"
    state = data["State"]
    assert (state["Status"], state["Running"], state["Paused"], state["ExitCode"]) == ("running", True, False, 0)
    assert state["Pid"] > 0 and state["StartedAt"].endswith("Z")
    assert data["Image"].startswith("sha256:") and data["Id"].startswith(data["Id"][:12])
    mounts = data["Mounts"]
    assert mounts == [{"Type": "bind", "Source": str(tmp_path), "Destination": "/mnt", "Mode": "ro",
                       "RW": False, "Propagation": "rprivate"}], mounts
    assert data["HostConfig"]["Binds"] == [f"{tmp_path}:/mnt:ro"]
    ids = engine.ok("inspect", "-f", "{{.Id}}", name[:-1] + name[-1]).strip()
    assert ids == data["Id"]


def test_stats_no_stream(engine):
    name = engine.run_d("busybox", "sleep", "60")
    r = engine.docker("stats", "--no-stream", name)
    assert r.rc == 0, r
    header, row = r.stdout.splitlines()
    assert header.split() == ["CONTAINER", "ID", "NAME", "CPU", "%", "MEM", "USAGE", "/", "LIMIT", "MEM", "%",
                              "NET", "I/O", "BLOCK", "I/O", "PIDS"], header
    assert row.split()[1] == name and row.split()[-1] == "1", row
    mem = engine.ok("stats", "--no-stream", "--format", "{{.MemUsage}}|{{.PIDs}}", name).strip()
    assert mem.split("|")[1] == "1" and " / " in mem and not mem.startswith("0B"), mem


def test_top(engine):
    name = engine.run_d("busybox", "sleep", "61")
    out = engine.ok("top", name)
    header, *rows = out.splitlines()
    assert header.split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], out
    assert len(rows) == 1 and rows[0].split()[0] == "root" and rows[0].endswith("sleep 61"), out
    assert engine.ok("top", name, "-o", "pid,comm").splitlines()[1].split()[1] == "sleep"


def test_wait_prints_exit_code(engine):
    name = engine.run_d("busybox", "sh", "-c", "sleep 0.5; exit 9")
    r = engine.docker("wait", name, timeout=20)
    assert (r.rc, r.stdout) == (0, "9\n"), r
    assert engine.ok("wait", name) == "9\n"  # already exited


def test_rename(engine):
    old = engine.run_d("busybox", "sleep", "60")
    new = engine.new_name()
    r = engine.docker("rename", old, new)
    assert (r.rc, r.stdout) == (0, ""), r
    assert engine.inspect(new, "{{.Name}}") == f"/{new}"
    r = engine.docker("inspect", old)
    assert r.rc == 1, r
    assert engine.ok("ps", "--filter", f"name={new}", "--format", "{{.Names}}").strip() == new


def test_pause_unpause(engine):
    name = engine.run_d("busybox", "sh", "-c", "while true; do date +%s%N > /tmp/t; sleep 0.05; done")
    assert engine.ok("pause", name).strip() == name
    assert engine.inspect(name, "{{.State.Status}} {{.State.Paused}}") == "paused true"
    status = engine.ok("ps", "--filter", f"name={name}", "--format", "{{.Status}}").strip()
    assert status.startswith("Up ") and status.endswith("(Paused)"), status
    r = engine.docker("exec", name, "true")
    assert r.rc != 0 and "is paused" in r.stderr, r
    assert engine.ok("unpause", name).strip() == name
    assert engine.inspect(name, "{{.State.Status}} {{.State.Paused}}") == "running false"
    first = engine.ok("exec", name, "cat", "/tmp/t")
    engine.wait_for("the loop to run again", lambda: engine.ok("exec", name, "cat", "/tmp/t") != first)


def test_events_window(engine):
    since = str(int(time.time()) - 1)
    name = engine.new_name()
    engine.ok("run", "--name", name, "busybox", "true")
    time.sleep(1.1)
    until = str(int(time.time()) + 1)
    r = engine.docker("events", "--since", since, "--until", until, "--filter", f"container={name}",
                      "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}", timeout=15)
    assert r.rc == 0, r
    actions = [line.split()[1] for line in r.stdout.splitlines()]
    assert all(line.split()[0] == "container" and line.split()[2] == name for line in r.stdout.splitlines()), r
    for wanted in ("create", "start", "die"):
        assert wanted in actions, r.stdout
    assert actions.index("create") < actions.index("start") < actions.index("die"), actions
    js = engine.ok("events", "--since", since, "--until", until, "--filter", f"container={name}",
                   "--filter", "event=die", "--format", "{{json .}}").splitlines()
    assert len(js) == 1, js
    ev = json.loads(js[0])
    assert ev["status"] == "die" and ev["Actor"]["Attributes"]["exitCode"] == "0" and ev["from"] == "busybox", ev


def test_events_stream_live(engine):
    name = engine.new_name()
    proc = engine.popen("events", "--filter", f"container={name}", "--format", "{{.Action}}",
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(line.strip() for line in proc.stdout), daemon=True)
    reader.start()
    try:
        time.sleep(0.5)
        engine.ok("run", "--name", name, "busybox", "true")
        engine.ok("rm", name)
        engine.wait_for("destroy event", lambda: "destroy" in seen, timeout=10)
    finally:
        proc.kill()
        proc.wait()
    assert [a for a in seen if a in ("create", "start", "die", "destroy")] == ["create", "start", "die", "destroy"], seen


def test_exec_errors(engine):
    name = engine.new_name()
    engine.ok("run", "--name", name, "busybox", "true")
    cid = engine.inspect(name, "{{.Id}}")
    r = engine.docker("exec", name, "true")
    assert (r.rc, errors(r.stderr)) == (1, f"Error response from daemon: Container {cid} is not running\n"), r
    r = engine.docker("exec", "acc-no-such-ctr", "true")
    assert (r.rc, errors(r.stderr)) == (1, "Error response from daemon: No such container: acc-no-such-ctr\n"), r
    running = engine.run_d("busybox", "sleep", "60")
    r = engine.docker("exec", running, "no-such-binary")
    assert r.rc == 126, r  # dockerd 20.10: 126 for exec (127 is only for run)
    assert 'exec: "no-such-binary": executable file not found in $PATH' in r.stdout + r.stderr, r


def test_detached_rm_removes_after_exit(engine):
    name = engine.new_name()
    engine.ok("run", "-d", "--rm", "--name", name, "busybox", "sleep", "0.3")
    engine.wait_for("auto-removal", lambda: engine.docker("inspect", name).rc == 1, timeout=15)
    assert engine.ok("ps", "-aq", "--filter", f"name={name}") == ""


def test_start_stop_idempotent_and_container_prune(engine):
    name = engine.new_name()
    engine.ok("run", "--name", name, "--label", f"accprune={engine.label}", "busybox", "true")
    assert engine.ok("stop", name).strip() == name  # already stopped: fine
    up = engine.run_d("busybox", "sleep", "60")
    assert engine.ok("start", up).strip() == up  # already running: fine
    cid = engine.inspect(name, "{{.Id}}")
    r = engine.docker("container", "prune", "-f", "--filter", f"label=accprune={engine.label}")
    assert (r.rc, r.stdout.startswith(f"Deleted Containers:\n{cid}\n")) == (0, True), r
    assert engine.docker("inspect", name).rc == 1 and engine.inspect(up, "{{.State.Running}}") == "true"
