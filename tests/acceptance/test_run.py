"""`docker run`: output, exit codes, a terminal, and the options users rely on."""

from __future__ import annotations

import re

import pytest

from tests.acceptance.conftest import errors

pytestmark = [pytest.mark.acceptance, pytest.mark.privileged]


@pytest.mark.parametrize("cli", ["28", "20.10"])
def test_run_rm_echo(engine, cli):
    r = engine.docker("run", "--rm", "busybox", "echo", "hello", "world", cli=cli)
    assert (r.rc, r.stdout) == (0, "hello world\n"), r
    assert errors(r.stderr) == "", r


def test_run_exit_code(engine):
    r = engine.docker("run", "--rm", "busybox", "sh", "-c", "exit 3")
    assert (r.rc, r.stdout) == (3, ""), r


def test_run_unknown_command_is_127(engine):
    r = engine.docker("run", "--rm", "busybox", "no-such-command")
    assert r.rc == 127, r
    assert 'exec: "no-such-command": executable file not found in $PATH' in r.stderr, r
    assert r.stderr.startswith(("docker: Error response from daemon: ", "WARNING")), r


def test_run_not_executable_is_126(engine):
    r = engine.docker("run", "--rm", "busybox", "/etc/passwd")
    assert r.rc == 126, r
    assert 'exec: "/etc/passwd": permission denied' in r.stderr, r


def test_run_it_through_a_pty(engine):
    with engine.pty("run", "-it", "--rm", "busybox", "sh") as p:
        p.expect(rb"# ")
        p.send("echo $((6*7)); exit 5\r")
        p.expect(rb"42")
        rc, out = p.finish()
    assert rc == 5, out
    assert "\r\n42\r\n" in out, out


def test_run_env_user_workdir_hostname(engine):
    r = engine.docker("run", "--rm", "-e", "FOO=bar baz", "--user", "65534", "--workdir", "/tmp/w",
                      "--hostname", "acc-host", "busybox", "sh", "-c",
                      'echo "$FOO"; id -u; id -g; pwd; hostname; cat /etc/hostname')
    assert r.rc == 0, r
    assert r.stdout == "bar baz\n65534\n65534\n/tmp/w\nacc-host\nacc-host\n", r


def test_run_default_env_and_user(engine):
    out = engine.ok("run", "--rm", "busybox", "sh", "-c", 'echo "$PATH"; id -u; pwd; echo "$HOME"')
    assert out == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n0\n/\n/root\n", out


def test_run_entrypoint(engine):
    out = engine.ok("run", "--rm", "--entrypoint", "echo", "busybox", "from", "entrypoint")
    assert out == "from entrypoint\n"
    name = engine.new_name()
    engine.ok("run", "--name", name, "--entrypoint", "/bin/echo", "busybox", "x")
    assert engine.inspect(name, "{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{.Path}}") == \
        '["/bin/echo"] ["x"] /bin/echo'


def test_run_read_only_and_tmpfs(engine):
    r = engine.docker("run", "--rm", "--read-only", "--tmpfs", "/scratch", "busybox", "sh", "-c",
                      "touch /scratch/ok && echo tmpfs-ok; touch /nope; echo rc=$?; grep ' /scratch ' /proc/mounts")
    assert r.rc == 0, r
    lines = r.stdout.splitlines()
    assert lines[0] == "tmpfs-ok" and lines[1] == "rc=1", r
    assert lines[2].startswith("tmpfs /scratch tmpfs rw,"), r
    assert "Read-only file system" in r.stdout + r.stderr, r


def test_run_rm_removes_container(engine):
    name = engine.new_name()
    engine.ok("run", "--rm", "--name", name, "busybox", "true")
    r = engine.docker("inspect", name)
    assert r.rc == 1 and f"No such object: {name}" in r.stderr, r


def test_name_conflict(engine):
    name = engine.run_d("busybox", "sleep", "30")
    cid = engine.inspect(name, "{{.Id}}")
    r = engine.docker("run", "-d", "--name", name, "busybox", "true")
    assert r.rc == 125, r
    assert (f'docker: Error response from daemon: Conflict. The container name "/{name}" is already in use by '
            f'container "{cid}". You have to remove (or rename) that container to be able to reuse that name.\n'
            ) in r.stderr, r
    r = engine.docker("create", "--name", name, "busybox")
    assert r.rc == 1 and 'Conflict. The container name "/' + name in r.stderr, r


@pytest.mark.parametrize("bad", ["a b", "x", "-lead", "sl/ash", "ünï"])
def test_invalid_names(engine, bad):
    r = engine.docker("create", "--name", bad, "busybox")
    assert r.rc == 1, r
    assert (f"Error response from daemon: Invalid container name ({bad}), only [a-zA-Z0-9][a-zA-Z0-9_.-] "
            "are allowed") in r.stderr, r


def test_rm_running_without_force(engine):
    name = engine.run_d("busybox", "sleep", "30")
    cid = engine.inspect(name, "{{.Id}}")
    r = engine.docker("rm", name)
    assert r.rc == 1, r
    assert errors(r.stderr) == (f"Error response from daemon: You cannot remove a running container {cid}. "
                                "Stop the container before attempting removal or force remove\n"), r
    assert engine.inspect(name, "{{.State.Running}}") == "true"
    assert engine.ok("rm", "-f", name).strip() == name


def test_no_such_container_and_image(engine):
    r = engine.docker("rm", "acc-never-existed")
    assert (r.rc, errors(r.stderr)) == (1, "Error response from daemon: No such container: acc-never-existed\n"), r
    r = engine.docker("run", "--rm", "--pull", "never", "acc-no-such-image:9")
    assert r.rc == 125 and re.search(r"No such image: acc-no-such-image:9", r.stderr), r
