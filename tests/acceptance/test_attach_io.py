"""Streams: stdin (-i), a tty without stdin (-t), start -a, attach, kill, restart, diff, both CLIs on a pty."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from tests.acceptance.conftest import errors

pytestmark = [pytest.mark.acceptance, pytest.mark.privileged]


@pytest.mark.parametrize("cli", ["28", "20.10"])
def test_run_i_pipes_stdin(engine, cli):
    r = engine.docker("run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo done", cli=cli, input="abc\ndef\n")
    assert (r.rc, r.stdout) == (0, "abc\ndef\ndone\n"), r


def test_run_i_large_stdin(engine):
    data = "".join(f"{i:08d}\n" for i in range(60000))  # 540 kB, through the hijacked connection
    r = engine.docker("run", "-i", "--rm", "busybox", "sh", "-c", "wc -c; echo end", input=data, timeout=60)
    assert r.stdout == f"{len(data)}\nend\n", r


def test_run_t_without_i_uses_crlf(engine):
    r = engine.docker("run", "-t", "--rm", "busybox", "sh", "-c", "echo hi; tty")
    assert r.rc == 0 and r.stdout.startswith("hi\r\n/dev/pts/"), r


@pytest.mark.parametrize("cli", ["28", "20.10"])
def test_run_it_both_clis(engine, cli):
    with engine.pty("run", "-it", "--rm", "busybox", "sh", cli=cli) as p:
        p.expect(rb"# ")
        p.send("tty; echo $((6*7)); exit 5\r")
        p.expect(rb"42")
        rc, out = p.finish()
    assert rc == 5, out
    assert "\r\n/dev/pts/0\r\n42\r\n" in out, out


def test_create_then_start_attached(engine):
    name = engine.new_name()
    cid = engine.ok("create", "--name", name, "busybox", "sh", "-c", "echo started; exit 2").strip()
    assert len(cid) == 64
    assert engine.inspect(name, "{{.State.Status}}") == "created"
    r = engine.docker("start", "-a", name)
    assert (r.rc, r.stdout) == (2, "started\n"), r
    r = engine.docker("start", "-ai", name, input="")
    assert (r.rc, r.stdout) == (2, "started\n"), r
    assert engine.inspect(name, "{{.RestartCount}}") == "0"


def test_attach_to_running(engine):
    name = engine.run_d("busybox", "sh", "-c", "while true; do echo tick; sleep 0.2; done")
    proc = engine.popen("attach", "--no-stdin", "--sig-proxy=false", name, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True)
    lines: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if len(lines) >= 3:
                return

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    t.join(10)
    proc.kill()
    proc.wait()
    assert lines == ["tick\n"] * 3
    assert engine.inspect(name, "{{.State.Running}}") == "true"


def test_attach_stdin_of_running(engine):
    name = engine.run_d("-i", "busybox", "sh", "-c", "read line; echo got-$line")
    proc = engine.popen("attach", name, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        text=True)
    assert proc.stdin is not None and proc.stdout is not None
    time.sleep(0.5)  # stdin must stay open until the answer is back: the CLI stops at stdin's EOF
    proc.stdin.write("hello\n")
    proc.stdin.flush()
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.readline() if proc.stdout else ""), daemon=True)
    reader.start()
    reader.join(15)
    proc.stdin.close()
    try:
        rc = proc.wait(timeout=15)
    finally:
        proc.kill()
    assert (rc, out) == (0, ["got-hello\n"]), proc.stderr.read() if proc.stderr else ""


def test_kill_and_restart(engine):
    name = engine.run_d("busybox", "sleep", "60")
    pid = engine.inspect(name, "{{.State.Pid}}")
    assert engine.ok("restart", "-t", "1", name).strip() == name
    assert engine.inspect(name, "{{.State.Running}}") == "true" and engine.inspect(name, "{{.State.Pid}}") != pid
    assert engine.ok("kill", "-s", "KILL", name).strip() == name
    engine.wait_status(name, "exited")
    assert engine.inspect(name, "{{.State.ExitCode}}") == "137"
    cid = engine.inspect(name, "{{.Id}}")
    r = engine.docker("kill", name)
    assert r.rc == 1 and errors(r.stderr) == (f"Error response from daemon: Cannot kill container: {name}: "
                                              f"Container {cid} is not running\n"), r
    r = engine.docker("kill", "acc-nope-nope")
    assert errors(r.stderr) == ("Error response from daemon: Cannot kill container: acc-nope-nope: "
                                "No such container: acc-nope-nope\n"), r


def test_kill_with_signal_reaches_process(engine):
    name = engine.run_d("busybox", "sh", "-c", "trap 'echo hup; exit 3' HUP; echo ready; "
                                               "while true; do sleep 0.1; done")
    engine.wait_log(name, "ready")
    engine.ok("kill", "-s", "HUP", name)
    engine.wait_status(name, "exited")
    assert engine.inspect(name, "{{.State.ExitCode}}") == "3"
    assert engine.ok("logs", name) == "ready\nhup\n"


def test_diff(engine):
    name = engine.new_name()
    engine.ok("run", "--name", name, "busybox", "sh", "-c", "echo x > /tmp/n; rm /etc/group; mkdir /root/d")
    assert sorted(engine.ok("diff", name).splitlines()) == [
        "A /root/d", "A /tmp/n", "C /etc", "C /root", "C /tmp", "D /etc/group"]


def test_ps_filters(engine):
    up = engine.run_d("--label", f"accps={engine.label}", "busybox", "sleep", "60")
    down = engine.new_name()
    engine.docker("run", "--name", down, "--label", f"accps={engine.label}", "busybox", "sh", "-c", "exit 1")
    base = ["ps", "-a", "--filter", f"label=accps={engine.label}", "--format", "{{.Names}}"]
    assert sorted(engine.ok(*base).split()) == sorted([up, down])
    assert engine.ok(*base, "--filter", "status=exited").split() == [down]
    assert engine.ok(*base, "--filter", "exited=1").split() == [down]
    assert engine.ok(*base, "--filter", "status=running").split() == [up]
    assert engine.ok("ps", "-a", "--filter", f"name={up}", "--format",
                     "{{.Image}}|{{.Command}}|{{.Labels}}").strip() == f'busybox|"sleep 60"|accps={engine.label}'


def test_run_attach_only_stderr(engine):
    r = engine.docker("run", "--rm", "-a", "stderr", "busybox", "sh", "-c", "echo to-out; echo to-err >&2")
    assert (r.rc, r.stdout, errors(r.stderr)) == (0, "", "to-err\n"), r


def test_sig_proxy_forwards_to_container(engine):
    name = engine.new_name()
    proc = engine.popen("run", "--name", name, "busybox", "sh", "-c",
                        "trap 'echo got-term; exit 4' TERM; echo ready; while true; do sleep 0.1; done",
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline() == "ready\n"
        proc.terminate()  # the CLI passes SIGTERM on to the container (--sig-proxy defaults to true)
        out, _ = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert (proc.returncode, out) == (4, "got-term\n")
    assert engine.inspect(name, "{{.State.ExitCode}}") == "4"
