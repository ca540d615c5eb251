"""Restart policies, --init, --stop-signal, resource limits, capabilities, healthchecks, log drivers."""

from __future__ import annotations

import json
import time

import pytest

from tests.acceptance.conftest import errors

pytestmark = [pytest.mark.acceptance, pytest.mark.privileged]

DEFAULT_CAPS = "00000000a80425fb"


def test_restart_on_failure_max(engine):
    name = engine.run_d("--restart", "on-failure:2", "busybox", "sh", "-c", "exit 1")
    engine.wait_for("2 restarts then exited", lambda: engine.inspect(
        name, "{{.RestartCount}} {{.State.Status}}") == "2 exited", timeout=15)
    time.sleep(1)
    assert engine.inspect(name, "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}} "
                                "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}"
                          ) == "2 exited 1 on-failure 2"
    assert engine.ok("logs", name) == ""


def test_restart_always_restarts_after_exit(engine):
    name = engine.run_d("--restart", "always", "busybox", "sh", "-c", "echo run; sleep 0.3")
    engine.wait_for("a restart", lambda: int(engine.inspect(name, "{{.RestartCount}}")) >= 1, timeout=15)
    engine.wait_for("two runs logged", lambda: engine.ok("logs", name).count("run\n") >= 2)
    engine.ok("stop", "-t", "1", name)
    count = engine.inspect(name, "{{.RestartCount}}")
    time.sleep(1.5)
    assert engine.inspect(name, "{{.State.Status}} {{.RestartCount}}") == f"exited {count}"


def test_unless_stopped_stays_stopped(engine):
    name = engine.run_d("--restart", "unless-stopped", "busybox", "sleep", "60")
    engine.ok("stop", "-t", "1", name)
    time.sleep(1.5)
    assert engine.inspect(name, "{{.State.Status}} {{.RestartCount}}") == "exited 0"
    engine.ok("start", name)
    assert engine.inspect(name, "{{.State.Status}}") == "running"


def test_init_is_pid1_and_reaps_zombies(engine):
    out = engine.ok("run", "--rm", "--init", "busybox", "sh", "-c",
                    "tr '\\0' ' ' < /proc/1/cmdline; echo; sh -c 'sleep 0.2 & exit 0'; sleep 1; "
                    "ps -o stat,comm | grep -c '^Z' || true")
    first, zombies = out.splitlines()
    assert first.split()[:3] == ["/sbin/docker-init", "--", "sh"], out
    assert zombies == "0", out


def test_stop_signal(engine):
    name = engine.run_d("--stop-signal", "USR1", "busybox", "sh", "-c",
                        "trap 'echo got-usr1; exit 0' USR1; echo ready; while true; do sleep 0.1; done")
    engine.wait_log(name, "ready")
    assert engine.inspect(name, "{{.Config.StopSignal}}") == "USR1"
    started = time.monotonic()
    engine.ok("stop", name)
    assert time.monotonic() - started < 8
    assert engine.ok("logs", name) == "ready\ngot-usr1\n"
    assert engine.inspect(name, "{{.State.ExitCode}}") == "0"


def test_stop_timeout_kills(engine):
    name = engine.run_d("busybox", "sh", "-c", "trap '' TERM; echo ready; while true; do sleep 0.1; done")
    engine.wait_log(name, "ready")
    started = time.monotonic()
    engine.ok("stop", "-t", "1", name)
    assert 0.8 < time.monotonic() - started < 8
    assert engine.inspect(name, "{{.State.ExitCode}}") == "137"


def test_memory_and_pids_limits(engine):
    name = engine.new_name()
    out = engine.ok("run", "--name", name, "--memory", "64m", "--pids-limit", "10", "busybox", "sh", "-c",
                    "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max")
    assert out == "67108864\n10\n", out
    assert engine.inspect(name, "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}") == "67108864 10"
    r = engine.docker("run", "--rm", "--pids-limit", "5", "busybox", "sh", "-c",
                      "for i in 1 2 3 4 5 6 7 8; do sleep 2 & done; wait")
    assert "can't fork" in r.stderr or "Resource temporarily unavailable" in r.stderr, r


def test_oom_kill(engine):
    name = engine.new_name()
    r = engine.docker("run", "--name", name, "--memory", "16m", "--memory-swap", "16m", "busybox", "sh", "-c",
                      "x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo survived")
    assert r.rc == 137 and "survived" not in r.stdout, r
    assert engine.inspect(name, "{{.State.OOMKilled}} {{.State.ExitCode}}") == "true 137"


def test_capabilities(engine):
    assert engine.ok("run", "--rm", "busybox", "sh", "-c", "grep CapEff /proc/self/status").split()[1] == DEFAULT_CAPS
    r = engine.docker("run", "--rm", "--cap-drop", "ALL", "busybox", "sh", "-c",
                      "grep CapEff /proc/self/status; chown 65534 /tmp")
    assert r.stdout.split()[1] == "0000000000000000" and r.rc == 1, r
    assert "Operation not permitted" in r.stderr, r
    out = engine.ok("run", "--rm", "--cap-drop", "ALL", "--cap-add", "CHOWN", "busybox", "sh", "-c",
                    "grep CapEff /proc/self/status; chown 65534 /tmp && echo chowned")
    assert out.split()[1:] == ["0000000000000001", "chowned"], out


def _host_has_every_cap() -> bool:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    with open("/proc/self/status") as f:
        bnd = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    return bnd == (1 << (last + 1)) - 1


@pytest.mark.skipif(not _host_has_every_cap(), reason="this host's bounding set lacks capabilities: "
                    "runc (so dockerd) cannot start --privileged containers here")
def test_privileged(engine):
    r = engine.docker("run", "--rm", "busybox", "mount", "-t", "tmpfs", "none", "/mnt")
    assert r.rc != 0, r
    out = engine.ok("run", "--rm", "--privileged", "busybox", "sh", "-c",
                    "grep CapEff /proc/self/status; mount -t tmpfs none /mnt && echo mounted; ls /dev | wc -l")
    with open("/proc/self/status") as f:
        host_bnd = next(line.split()[1] for line in f if line.startswith("CapBnd:"))
    cap, mounted, devices = out.split()[1:]
    assert (cap, mounted) == (host_bnd, "mounted") and int(devices) > 20, out


def test_healthcheck(engine):
    good = engine.run_d("--health-cmd", "true", "--health-interval", "1s", "busybox", "sleep", "60")
    bad = engine.run_d("--health-cmd", "false", "--health-interval", "1s", "--health-retries", "1",
                       "busybox", "sleep", "60")
    engine.wait_for("healthy", lambda: engine.inspect(good, "{{.State.Health.Status}}") == "healthy", timeout=10)
    engine.wait_for("unhealthy", lambda: engine.inspect(bad, "{{.State.Health.Status}}") == "unhealthy", timeout=10)
    health = json.loads(engine.inspect(good, "{{json .State.Health}}"))
    assert health["FailingStreak"] == 0 and health["Log"][0]["ExitCode"] == 0, health
    status = engine.ok("ps", "--filter", f"name={good}", "--format", "{{.Status}}").strip()
    assert status.endswith("(healthy)"), status
    assert json.loads(engine.inspect(bad, "{{json .State.Health}}"))["Log"][-1]["ExitCode"] == 1


def test_log_driver_json_file_max_size(engine):
    name = engine.new_name()
    engine.ok("run", "--name", name, "--log-driver", "json-file", "--log-opt", "max-size=1k",
              "--log-opt", "max-file=2", "busybox", "sh", "-c", "for i in $(seq 1 400); do echo line-$i; done")
    assert engine.inspect(name, "{{.HostConfig.LogConfig.Type}} {{json .HostConfig.LogConfig.Config}}") == \
        'json-file {"max-file":"2","max-size":"1k"}'
    lines = engine.ok("logs", name).splitlines()
    assert lines and lines[-1] == "line-400" and len(lines) < 100, lines[:3]
    assert lines == [f"line-{i}" for i in range(400 - len(lines) + 1, 401)]


def test_log_driver_none(engine):
    name = engine.new_name()
    r = engine.docker("run", "--name", name, "--log-driver", "none", "busybox", "echo", "hi")
    assert (r.rc, r.stdout) == (0, "hi\n"), r  # attached output still flows
    r = engine.docker("logs", name)
    assert (r.rc, errors(r.stderr)) == (1, "Error response from daemon: configured logging driver does not "
                                            "support reading\n"), r
