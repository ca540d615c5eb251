"""Real dockerd drives an OCI runtime: every case runs with runc and with dockyard-runtime.

The same `docker` commands, the same assertions; where the exact output is not
known in advance (ids, /proc/self/status), runc's run is the reference. A
dockyard failure here is a difference from runc as docker users see it.
Containers have no network (``--network none``): dockerd still hands the
runtime libnetwork's prestart hook, as for any container.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable

import pytest

from tests.support.dockerd import Result
from tests.support.dockerruns import DockerRuns, RuncReference

pytestmark = [pytest.mark.interop, pytest.mark.privileged]

IMAGE = "busybox"
TYPED = "echo $((6*7)); tty; exit 5\r"  # Enter on a raw terminal is CR
PROMPT = rb"# "
MEMORY_LIMIT = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max"


def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def assert_typed_session(rc: int, output: str) -> None:
    """What TYPED produces: 42, a /dev/pts/N terminal, exit status 5."""
    assert re.search(r"^42\r?$", output, re.M), output
    assert re.search(r"^/dev/pts/\d+\r?$", output, re.M), output
    assert rc == 5, output


# -- docker run ----------------------------------------------------------------------------------

def test_run_echo_hello_world(runs: DockerRuns) -> None:
    r = runs.run(IMAGE, "echo", "hello", "world")
    assert (r.rc, r.stdout, r.stderr) == (0, "hello world\n", ""), str(r)


def test_run_exit_code_propagates(runs: DockerRuns) -> None:
    r = runs.run(IMAGE, "sh", "-c", "exit 7")
    assert (r.rc, r.stdout) == (7, ""), str(r)


def test_run_interactive_tty(runs: DockerRuns) -> None:
    with runs.interactive("run", "-it", "--rm", "--network", "none", "--runtime", runs.runtime, IMAGE, "sh") as p:
        p.expect(PROMPT)
        p.send(TYPED)
        rc, output = p.finish()
    assert_typed_session(rc, output)


def _start_error(r: Result) -> tuple[int, str]:
    """Exit status and the runtime's error as docker shows it, minus the runtime's own name."""
    text = (r.stderr + r.stdout).strip().splitlines()
    message = text[0] if text else ""
    return r.rc, re.sub(r"OCI runtime (\w+) failed: \S+ (\w+) failed:", r"OCI runtime \1 failed: RUNTIME \2 failed:",
                        message)


@pytest.mark.parametrize("command", ["nonexistent", "/nonexistent", "/etc/passwd"])
def test_run_command_cannot_start(runs: DockerRuns, reference: RuncReference, command: str) -> None:
    # docker maps the runtime's message to the exit status: not found 127, permission denied 126.
    got, want = reference.compare(f"run-cannot-start-{command}", runs, lambda rr: _start_error(rr.run(IMAGE, command)))
    assert got[0] in (126, 127), got
    assert got == want


def test_run_hostname_env_workdir_pid1(runs: DockerRuns, reference: RuncReference) -> None:
    probe = 'hostname; echo "$FOO"; pwd; echo $$; env | sort'
    got, want = reference.compare("hostname-env-workdir", runs, lambda rr: rr.run(
        "--hostname", "box", "-e", "FOO=bar baz", "-w", "/tmp", IMAGE, "sh", "-c", probe))
    assert got.rc == 0, str(got)
    assert got.stdout.splitlines()[:4] == ["box", "bar baz", "/tmp", "1"], str(got)
    assert got == want


def test_run_default_hostname_is_short_id(runs: DockerRuns) -> None:
    name, r = runs.run_kept(IMAGE, "hostname")
    assert r.rc == 0, str(r)
    assert r.stdout == runs.inspect(name, "{{.Id}}")[:12] + "\n"


def test_run_rm_leaves_nothing(runs: DockerRuns, tmp_path) -> None:
    cidfile = tmp_path / "cid"
    r = runs.run("--cidfile", str(cidfile), IMAGE, "true")
    assert r.rc == 0, str(r)
    cid = cidfile.read_text().strip()
    daemon = runs.daemon
    assert runs.docker("ps", "-aq", "--no-trunc", "--filter", f"id={cid}").stdout == ""
    assert eventually(lambda: not os.path.exists(os.path.join(daemon.runtime_root, cid))), \
        f"runtime state {daemon.runtime_root}/{cid} left after delete: {os.listdir(daemon.runtime_root)}"
    assert eventually(lambda: daemon.container_cgroups(cid) == []), daemon.container_cgroups(cid)
    assert eventually(lambda: not os.path.exists(daemon.bundle_dir(cid))), daemon.bundle_dir(cid)


# -- docker exec ---------------------------------------------------------------------------------

def test_exec_runs_in_the_container(runs: DockerRuns) -> None:
    name = runs.start(IMAGE, "sleep", "1000")
    r = runs.docker("exec", name, "echo", "hello", "from", "exec")
    assert (r.rc, r.stdout) == (0, "hello from exec\n"), str(r)
    r = runs.docker("exec", name, "cat", "/proc/1/cmdline")
    assert (r.rc, r.stdout) == (0, "sleep\x001000\x00"), r  # same PID namespace as the container


def test_exec_exit_code_propagates(runs: DockerRuns) -> None:
    name = runs.start(IMAGE, "sleep", "1000")
    r = runs.docker("exec", name, "sh", "-c", "exit 9")
    assert r.rc == 9, str(r)


def test_exec_command_cannot_start(runs: DockerRuns, reference: RuncReference) -> None:
    def observe(rr: DockerRuns):
        name = rr.start(IMAGE, "sleep", "1000")
        return [_start_error(rr.docker("exec", name, command)) for command in ("nonexistent", "/etc/passwd")]

    got, want = reference.compare("exec-cannot-start", runs, observe)
    assert [rc for rc, _ in got] == [126, 126], got
    assert got == want


def test_exec_user(runs: DockerRuns, reference: RuncReference) -> None:
    def observe(rr: DockerRuns):
        return rr.docker("exec", "-u", "65534", rr.start(IMAGE, "sleep", "1000"), "id")

    got, want = reference.compare("exec-user-65534", runs, observe)
    assert got.rc == 0, str(got)
    assert got.stdout.startswith("uid=65534(nobody) gid=65534(nogroup)"), str(got)
    assert got == want


def test_exec_interactive_tty(runs: DockerRuns) -> None:
    name = runs.start(IMAGE, "sleep", "1000")
    with runs.interactive("exec", "-it", name, "sh") as p:
        p.expect(PROMPT)
        p.send(TYPED)
        rc, output = p.finish()
    assert_typed_session(rc, output)


# -- signals: docker stop / kill -----------------------------------------------------------------

def test_stop_reaches_pid1_term_handler(runs: DockerRuns) -> None:
    # PID 1 of a PID namespace gets only the signals it handles: this one traps TERM.
    name = runs.start(IMAGE, "sh", "-c", 'trap "echo got TERM; exit 3" TERM; echo ready; '
                                         "while true; do sleep 0.1; done")
    runs.wait_for_log(name, "ready")  # the trap is set
    started = time.monotonic()
    r = runs.docker("stop", name)
    elapsed = time.monotonic() - started
    assert r.rc == 0, str(r)
    assert elapsed < 5, f"docker stop took {elapsed:.1f}s: SIGTERM never reached the handler"
    assert runs.inspect(name, "{{.State.ExitCode}}") == "3"
    assert "got TERM" in runs.docker("logs", name).stdout


def test_stop_kills_pid1_ignoring_term(runs: DockerRuns) -> None:
    # sleep has no TERM handler; as PID 1 of its namespace the signal is dropped, so stop must KILL.
    name = runs.start(IMAGE, "sleep", "1000")
    assert runs.docker("kill", "-s", "TERM", name).rc == 0
    time.sleep(0.3)
    assert runs.inspect(name, "{{.State.Status}}") == "running", "TERM killed PID 1: not a PID namespace init?"
    started = time.monotonic()
    r = runs.docker("stop", "-t", "1", name)
    elapsed = time.monotonic() - started
    assert r.rc == 0, str(r)
    assert 0.9 < elapsed < 8, f"docker stop -t 1 took {elapsed:.1f}s"
    assert runs.inspect(name, "{{.State.ExitCode}}") == "137"


# -- resources -----------------------------------------------------------------------------------

def test_memory_limit_visible_inside(runs: DockerRuns) -> None:
    r = runs.run("--memory", "64m", IMAGE, "sh", "-c", MEMORY_LIMIT)
    assert (r.rc, r.stdout) == (0, "67108864\n"), str(r)


def test_memory_limit_oom_kills(runs: DockerRuns) -> None:
    # The shell (PID 1) reads 200 MB into a variable: the cgroup's OOM killer must take it.
    name, r = runs.run_kept("--memory", "64m", IMAGE, "sh", "-c",
                            'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived ${#x}')
    assert r.rc == 137 and "survived" not in r.stdout, str(r)
    assert runs.inspect(name, "{{.State.ExitCode}} {{.State.OOMKilled}}") == "137 true"


def test_pids_limit(runs: DockerRuns, reference: RuncReference) -> None:
    # A subshell forks 40 sleeps until fork fails; then builtins (no fork) read the pids cgroup.
    probe = ("f=/sys/fs/cgroup/pids; [ -d $f ] || f=/sys/fs/cgroup; "
             "(for i in $(seq 40); do sleep 10 & done); "
             "read n < $f/pids.current; read m < $f/pids.max; echo $n $m")
    got, want = reference.compare("pids-limit", runs, lambda rr: rr.run("--pids-limit", "20", IMAGE, "sh", "-c", probe))
    assert got.rc == 0, str(got)
    current, limit = got.stdout.split()
    assert limit == "20" and int(current) < 20, str(got)
    assert "can't fork" in got.stderr, str(got)
    assert got == want


def test_top_pause_unpause_update_kill(runs: DockerRuns) -> None:
    name = runs.start(IMAGE, "sleep", "1000")
    r = runs.docker("top", name)
    assert r.rc == 0 and "sleep 1000" in r.stdout, str(r)
    r = runs.docker("pause", name)
    assert r.rc == 0 and runs.inspect(name, "{{.State.Status}}") == "paused", str(r)
    r = runs.docker("unpause", name)
    assert r.rc == 0 and runs.inspect(name, "{{.State.Status}}") == "running", str(r)
    r = runs.docker("update", "--memory", "128m", "--memory-swap", "256m", name)
    assert r.rc == 0, str(r)
    r = runs.docker("exec", name, "sh", "-c", MEMORY_LIMIT)
    assert (r.rc, r.stdout) == (0, "134217728\n"), str(r)
    r = runs.docker("kill", name)
    assert r.rc == 0, str(r)
    r = runs.docker("wait", name)
    assert (r.rc, r.stdout) == (0, "137\n"), str(r)


# -- security ------------------------------------------------------------------------------------

def test_read_only_rootfs(runs: DockerRuns, reference: RuncReference) -> None:
    r = runs.run("--read-only", IMAGE, "touch", "/x")
    assert (r.rc, r.stderr) == (1, "touch: /x: Read-only file system\n"), str(r)
    probe = 'for f in /x /tmp/x /dev/shm/x; do touch $f && echo "$f ok" || echo "$f failed"; done'
    got, want = reference.compare("read-only", runs, lambda rr: rr.run("--read-only", IMAGE, "sh", "-c", probe))
    assert got.stdout == "/x failed\n/tmp/x failed\n/dev/shm/x ok\n", got  # no tmpfs on /tmp by default
    assert got == want


def test_cap_drop_all(runs: DockerRuns, reference: RuncReference) -> None:
    probe = "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb):' /proc/self/status; chown 65534 /tmp; echo chown=$?"
    got, want = reference.compare("cap-drop-all", runs, lambda rr: rr.run("--cap-drop", "ALL", IMAGE, "sh", "-c", probe))
    assert "CapEff:\t0000000000000000" in got.stdout and "CapBnd:\t0000000000000000" in got.stdout, str(got)
    assert "chown=1" in got.stdout and "Operation not permitted" in got.stderr, str(got)
    assert got == want


def test_default_security_profile(runs: DockerRuns, reference: RuncReference) -> None:
    # Docker's default capability set, its seccomp profile (filter mode 2), no no_new_privs.
    probe = "grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status"
    got, want = reference.compare("default-security", runs, lambda rr: rr.run(IMAGE, "sh", "-c", probe))
    assert "Seccomp:\t2" in got.stdout, str(got)
    assert got == want


def test_user_nobody(runs: DockerRuns, reference: RuncReference) -> None:
    got, want = reference.compare("user-65534", runs, lambda rr: rr.run("--user", "65534", IMAGE, "id"))
    assert got.rc == 0 and got.stdout.startswith("uid=65534(nobody) gid=65534(nogroup)"), str(got)
    assert got == want
