"""Shim wire helpers: the _json-based codec, frames, times, exit codes, launch argv."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys

import pytest

from dockyard.errors import NotFound
from dockyard.supervisor.shim import protocol
from dockyard.supervisor.shim.client import ShimClient, ShimError, demux, error_for, shim_argv, spawn_shim


@pytest.mark.parametrize("obj", [
    {"op": "attach", "stdin": True, "stdout": False},
    {"a": [1, -2.5, None, True, False, "é\n\"\\"], "b": {}, "c": [], "n": 10**20},
    "plain", 0, [],
])
def test_codec_round_trips_like_json(obj):
    text = protocol.dumps(obj)
    assert protocol.loads(text) == obj == json.loads(text)
    assert protocol.loads(text.encode() + b"\n") == obj


def test_dumps_is_compact_and_keeps_unicode():
    assert protocol.dumps({"a": [1, "é"]}) == '{"a":[1,"é"]}'
    assert protocol.encode_line({"ok": True}) == b'{"ok":true}\n'


@pytest.mark.parametrize("bad", ["", "{", '{"a":1} x', "[1,]", "nope", '{"a":"\\x"}'])
def test_loads_rejects_malformed(bad):
    with pytest.raises(ValueError):
        protocol.loads(bad)


def test_frames_and_demux():
    data = protocol.frame(1, b"out") + protocol.frame(2, b"err") + protocol.frame(1, b"")
    assert data[:8] == bytes([1, 0, 0, 0, 0, 0, 0, 3])
    frames, rest = demux(data + b"\x01\x00\x00")
    assert frames == [(1, b"out"), (2, b"err"), (1, b"")] and rest == b"\x01\x00\x00"


def test_time_format():
    assert protocol.format_time(1_795_816_215_000_000_007) == "2026-11-27T21:50:15.000000007Z"
    assert protocol.now().endswith("Z") and len(protocol.now()) == 30


def test_exit_code_from_wait_status():
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    assert protocol.exit_code(os.waitpid(pid, 0)[1]) == 7
    pid = os.fork()
    if pid == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    assert protocol.exit_code(os.waitpid(pid, 0)[1]) == 137


def test_error_categories():
    assert isinstance(error_for('exec: "x": executable file not found in $PATH'), NotFound)
    err = error_for("boom")
    assert isinstance(err, ShimError) and not isinstance(err, NotFound) and str(err) == "boom"


def test_shim_argv_imports_without_site_and_stays_light():
    argv = shim_argv()
    assert argv[1:3] == ["-I", "-S"]
    probe = argv[-1].replace("from dockyard.supervisor.shim.main import main; sys.exit(main())",
                             "import dockyard.supervisor.shim.main; print(' '.join(sorted(sys.modules)))")
    out = subprocess.run([*argv[:-1], probe], capture_output=True, text=True, check=True, cwd="/").stdout
    modules = set(out.split())
    assert "dockyard.supervisor.shim.main" in modules
    for heavy in ("re", "json", "typing", "enum", "asyncio", "subprocess", "ctypes", "socket", "selectors"):
        assert heavy not in modules, heavy


# -- the whole shim, without root: a fake OCI runtime that runs plain processes ------------------

FAKE_RUNTIME = r'''
import json, os, signal, socket, sys
args = sys.argv[1:]
opts = {}
while args[0].startswith("--"):
    opts[args[0]] = args[1]
    args = args[2:]
cmd, args, cid = args[0], args[1:-1], args[-1]
flags = {}
while args:
    if args[0] == "--detach":
        args = args[1:]
    else:
        flags[args[0]] = args[1]
        args = args[2:]
state = os.path.join(opts["--root"], cid)
os.makedirs(opts["--root"], exist_ok=True)

def fail(msg):
    with open(opts["--log"], "a") as f:
        f.write(json.dumps({"level": "error", "msg": msg, "time": "now"}) + "\n")
    sys.exit(1)

def launch(process, gate=None):
    argv = process["args"]
    if not any(os.access(os.path.join(d, argv[0]), os.X_OK) for d in ("/bin", "/usr/bin")):
        fail('exec: "%s": executable file not found in $PATH' % argv[0])
    master = slave = None
    if process.get("terminal"):
        master, slave = os.openpty()
    pid = os.fork()
    if pid == 0:
        if slave is not None:
            os.login_tty(slave)
        if gate:
            os.read(os.open(gate, os.O_RDONLY), 1)
        os.execvp(argv[0], argv)
    if master is not None:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(flags["--console-socket"])
            socket.send_fds(s, [b"pty"], [master])
    with open(flags["--pid-file"], "w") as f:
        f.write(str(pid))
    return pid

if cmd == "create":
    process = json.load(open(os.path.join(flags["--bundle"], "config.json")))["process"]
    os.mkfifo(state + ".fifo")
    pid = launch(process, state + ".fifo")
    open(state + ".pid", "w").write(str(pid))
elif cmd == "start":
    os.write(os.open(state + ".fifo", os.O_WRONLY | os.O_NONBLOCK), b"x")
elif cmd == "exec":
    launch(json.load(open(flags["--process"])))
elif cmd == "delete":
    try:
        os.kill(int(open(state + ".pid").read()), signal.SIGKILL)
    except (OSError, ValueError):
        pass
    for suffix in (".pid", ".fifo"):
        if os.path.exists(state + suffix):
            os.unlink(state + suffix)
'''


def fake_bundle(tmp_path, args, **cfg):
    bundle = tmp_path / "b"
    bundle.mkdir()
    runtime = tmp_path / "fake-runtime"
    runtime.write_text(f"#!{sys.executable}\n{FAKE_RUNTIME}")
    runtime.chmod(0o755)
    (bundle / "config.json").write_text(json.dumps({"process": {"args": args, "terminal": cfg.get("tty", False)}}))
    config = {"id": "c1", "runtime": str(runtime),
              "runtime_args": ["--root", str(tmp_path / "state"), "--log", str(bundle / "log.json"),
                               "--log-format", "json"],
              "socket": str(tmp_path / "s.sock"), "tty": False, "open_stdin": False, "stdin_once": False,
              "log": {"driver": "json-file", "path": str(bundle / "ctr.log"), "max_size": 0, "max_file": 1},
              "exit_file": str(bundle / "exit.json"), "console_size": None, **cfg}
    (bundle / "shim.json").write_text(json.dumps(config))
    return str(bundle), config


def arun(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def read_all(stream) -> bytes:
    data = b""
    while chunk := await stream.read():
        data += chunk
    return data


def test_fake_runtime_attach_start_wait_and_log(tmp_path):
    bundle, config = fake_bundle(tmp_path, ["sh", "-c", "echo out; echo err >&2; exit 4"])

    async def go():
        info = await spawn_shim(bundle)
        client = ShimClient(config["socket"], config["exit_file"])
        assert (await client.state())["status"] == "created"
        stream = await client.attach(stdout=True, stderr=True)
        waiter = asyncio.ensure_future(client.wait())
        await client.start()
        return info, await read_all(stream), await waiter

    info, data, result = arun(go())
    frames, rest = demux(data)
    assert sorted(frames) == [(1, b"out\n"), (2, b"err\n")] and rest == b""
    assert result["exit_code"] == 4 and info.pid > 0
    assert json.load(open(config["exit_file"]))["exit_code"] == 4
    logged = [json.loads(line) for line in open(config["log"]["path"])]
    assert sorted((e["stream"], e["log"]) for e in logged) == [("stderr", "err\n"), ("stdout", "out\n")]


def test_fake_runtime_stdin_once_exec_and_tty(tmp_path):
    bundle, config = fake_bundle(tmp_path, ["cat"], open_stdin=True, stdin_once=True)

    async def go():
        await spawn_shim(bundle)
        client = ShimClient(config["socket"], config["exit_file"])
        stream = await client.attach(stdin=True, stdout=True)
        await client.start()
        _, ex = await client.exec("e1", {"args": ["sh", "-c", "echo exec; exit 3"]})
        exec_out = await read_all(ex)
        code = await client.exec_wait("e1")
        _, tty = await client.exec("e2", {"args": ["sh", "-c", "test -t 0 && echo tty"], "terminal": True})
        tty_out = await read_all(tty)
        with pytest.raises(NotFound):
            await client.exec("e3", {"args": ["no-such-binary"]})
        await stream.write(b"hello\n")
        stream.close_stdin()
        return exec_out, code, tty_out, await read_all(stream), await client.wait()

    exec_out, code, tty_out, out, result = arun(go())
    assert demux(exec_out)[0] == [(1, b"exec\n")] and code == 3
    assert tty_out == b"tty\r\n"
    assert demux(out)[0] == [(1, b"hello\n")] and result["exit_code"] == 0
    assert "exec" not in open(config["log"]["path"]).read()


def test_fake_runtime_create_failure(tmp_path):
    bundle, config = fake_bundle(tmp_path, ["no-such-binary"])
    with pytest.raises(NotFound, match="no-such-binary"):
        arun(spawn_shim(bundle))
    assert not os.path.exists(config["socket"])


def test_fake_runtime_second_shim_refused_first_untouched(tmp_path):
    bundle, config = fake_bundle(tmp_path, ["sleep", "30"])

    async def go():
        first = await spawn_shim(bundle)
        with pytest.raises(ShimError, match="another shim"):
            await spawn_shim(bundle)
        client = ShimClient(config["socket"], config["exit_file"])
        await client.start()
        state = await client.state()
        assert state["status"] == "running" and state["pid"] == first.pid
        os.kill(first.pid, signal.SIGKILL)
        return await client.wait()

    assert arun(go())["exit_code"] == 137


def test_missing_runtime_is_reported(tmp_path):
    bundle, config = fake_bundle(tmp_path, ["true"], runtime=str(tmp_path / "nope"))
    with pytest.raises(ShimError, match="cannot run the OCI runtime"):
        arun(spawn_shim(bundle))
    assert not os.path.exists(config["socket"])
