"""The container shim against real runtimes (runc and dockyard-runtime): create, attach, exec, exit."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from busybox_bundle import make_bundle
from dockyard.errors import DockyardError, NotFound
from dockyard.supervisor.shim.client import ShimClient, ShimError, demux, spawn_shim
from tests.support.runtimes import runtime_argv

pytestmark = pytest.mark.privileged


def run(coro, timeout: float = 60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class Box:
    """One bundle + shim.json + a private runtime --root, cleaned up afterwards."""

    def __init__(self, runtime: str, tmp: str) -> None:
        self.argv = runtime_argv(runtime)
        self.tmp = tmp
        self.root = os.path.join(tmp, "root")
        self.shims: list[tuple[str, str]] = []

    def bundle(self, args: list[str], *, tty: bool = False, open_stdin: bool = False, stdin_once: bool = False,
               log: dict | None = None) -> tuple[str, dict]:
        cid = f"s-{uuid.uuid4().hex[:8]}"
        bundle = make_bundle(os.path.join(self.tmp, cid), args)
        if tty:
            path = os.path.join(bundle, "config.json")
            spec = json.load(open(path))
            spec["process"]["terminal"] = True
            json.dump(spec, open(path, "w"))
        config = {
            "id": cid, "runtime": self.argv[0],
            "runtime_args": [*self.argv[1:], "--root", self.root, "--log", os.path.join(bundle, "log.json"),
                             "--log-format", "json"],
            "socket": os.path.join(self.tmp, f"{cid}.sock"), "tty": tty, "open_stdin": open_stdin,
            "stdin_once": stdin_once,
            "log": log or {"driver": "json-file", "path": os.path.join(bundle, "ctr.log"), "max_size": 0,
                           "max_file": 1},
            "exit_file": os.path.join(bundle, "exit.json"), "console_size": [30, 100] if tty else None,
        }
        json.dump(config, open(os.path.join(bundle, "shim.json"), "w"))
        self.shims.append((cid, bundle))
        return bundle, config

    def cleanup(self) -> None:
        for cid, bundle in self.shims:
            subprocess.run([*self.argv, "--root", self.root, "delete", "--force", cid], capture_output=True)
            for pid in shim_pids(bundle):
                os.kill(pid, signal.SIGKILL)


def shim_pids(bundle: str) -> list[int]:
    """Processes whose command line names this bundle (the shim)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                cmd = open(f"/proc/{name}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if bundle.encode() in cmd and b"-S" in cmd:
                found.append(int(name))
    return found


def rss_kb(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


@pytest.fixture(params=["runc", "dockyard"])
def box(request, tmp_path):
    import shutil

    if request.param == "runc" and not shutil.which("runc"):
        pytest.skip("runc is not installed")
    b = Box(request.param, str(tmp_path))
    yield b
    b.cleanup()


async def collect(stream, tty: bool = False) -> tuple[bytes, bytes]:
    data = b""
    while chunk := await stream.read():
        data += chunk
    if tty:
        return data, b""
    frames, rest = demux(data)
    assert rest == b""
    return (b"".join(p for s, p in frames if s == 1), b"".join(p for s, p in frames if s == 2))


async def attach_run(config: dict, **attach) -> tuple[bytes, bytes, dict]:
    await spawn_shim(os.path.dirname(config["exit_file"]))
    client = ShimClient(config["socket"], config["exit_file"])
    stream = await client.attach(**attach)
    waiter = asyncio.ensure_future(client.wait())
    await client.start()
    out, err = await collect(stream, config["tty"])
    return out, err, await waiter


def test_output_framing_log_and_exit_code(box):
    bundle, config = box.bundle(["sh", "-c", "echo out; echo err >&2; echo -n part; exit 3"])
    out, err, result = run(attach_run(config, stdout=True, stderr=True))
    assert out == b"out\npart" and err == b"err\n"
    assert result["exit_code"] == 3 and result["exited_at"].endswith("Z")
    lines = [json.loads(x) for x in open(config["log"]["path"])]
    assert {(e["log"], e["stream"]) for e in lines} == {("out\n", "stdout"), ("err\n", "stderr"), ("part", "stdout")}
    assert all(e["time"].endswith("Z") for e in lines)
    record = json.load(open(config["exit_file"]))
    assert record["exit_code"] == 3
    time.sleep(0.3)
    assert not shim_pids(bundle), "shim exits after the container"
    assert not os.path.exists(config["socket"])
    assert not os.listdir(box.root) if os.path.isdir(box.root) else True


def test_signal_exit_code_and_state(box):
    bundle, config = box.bundle(["sleep", "30"])

    async def go():
        info = await spawn_shim(bundle)
        client = ShimClient(config["socket"], config["exit_file"])
        assert (await client.state())["status"] == "created"
        await client.start()
        state = await client.state()
        assert state["status"] == "running" and state["pid"] == info.pid and state["exit_code"] is None
        os.kill(info.pid, signal.SIGKILL)  # pid 1 of its namespace: only SIGKILL is sure to land
        return await client.wait()

    assert run(go())["exit_code"] == 128 + signal.SIGKILL


def test_stdin_once_cat(box):
    bundle, config = box.bundle(["cat"], open_stdin=True, stdin_once=True)

    async def go():
        await spawn_shim(bundle)
        client = ShimClient(config["socket"], config["exit_file"])
        stream = await client.attach(stdin=True, stdout=True, stderr=True)
        await client.start()
        await stream.write(b"hello\n")
        await asyncio.sleep(0.2)
        await stream.write(b"world\n")
        stream.close_stdin()
        out, _ = await collect(stream)
        return out, await client.wait()

    out, result = run(go())
    assert out == b"hello\nworld\n" and result["exit_code"] == 0


def test_tty_raw_output_and_resize(box):
    bundle, config = box.bundle(["sh", "-c", "stty size; sleep 1; stty size"], tty=True)

    async def go():
        await spawn_shim(bundle)
        client = ShimClient(config["socket"], config["exit_file"])
        stream = await client.attach(stdout=True)
        await client.start()
        await asyncio.sleep(0.5)
        await client.resize(40, 120)
        out, _ = await collect(stream, tty=True)
        return out, await client.wait()

    out, result = run(go())
    assert out.replace(b"\r\n", b"\n") == b"30 100\n40 120\n"
    assert result["exit_code"] == 0


def test_exec_with_and_without_tty_and_survives_daemon(box):
    bundle, config = box.bundle(["sleep", "30"])

    async def go():
        info = await spawn_shim(bundle)
        client = ShimClient(config["socket"], config["exit_file"])
        await client.start()
        shim_pid = shim_pids(bundle)[0]
        assert os.getppid() != shim_pid and open(f"/proc/{shim_pid}/stat").read().split()[3] != str(os.getpid())
        rss = rss_kb(shim_pid)
        proc = {"args": ["sh", "-c", "echo hi; echo oops >&2; exit 5"], "cwd": "/", "env": ["PATH=/bin"],
                "user": {"uid": 0, "gid": 0}, "terminal": False}
        pid, stream = await client.exec("e1", proc)
        assert pid > 0
        out, err = await collect(stream)
        assert (out, err) == (b"hi\n", b"oops\n")
        assert await client.exec_wait("e1") == 5
        tty_proc = dict(proc, args=["sh", "-c", "tty >/dev/null && echo tty"], terminal=True)
        _, stream = await client.exec("e2", tty_proc)
        with pytest.raises(ShimError):
            await client.resize(10, 10)  # the init has no terminal
        out, _ = await collect(stream, tty=True)
        assert out == b"tty\r\n"
        assert await client.exec_wait("e2") == 0
        with pytest.raises(NotFound):
            await client.exec("e3", dict(proc, args=["no-such-binary"]))
        os.kill(info.pid, signal.SIGKILL)
        result = await client.wait()
        assert result["exit_code"] == 137
        return rss

    rss = run(go())
    print(f"shim VmRSS while running: {rss} kB")
    assert rss < 16 * 1024
    log = open(config["log"]["path"]).read()
    assert "hi" not in log


def test_shim_survives_parent_kill(box):
    bundle, config = box.bundle(["sleep", "30"])
    script = ("import asyncio, sys; from dockyard.supervisor.shim.client import spawn_shim; "
              f"print(asyncio.run(spawn_shim({bundle!r})).pid, flush=True); import time; time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    init_pid = int(parent.stdout.readline())
    parent.kill()
    parent.wait()

    async def go():
        client = ShimClient(config["socket"], config["exit_file"])
        assert (await client.state())["status"] == "created"
        shim_pid = shim_pids(bundle)[0]
        assert open(f"/proc/{shim_pid}/stat").read().split(")")[1].split()[1] == "1", "reparented to init"
        os.kill(shim_pid, signal.SIGTERM)  # ignored: only the daemon stops containers, via the runtime
        await asyncio.sleep(0.2)
        await client.start()
        assert (await client.state())["status"] == "running"
        os.kill(init_pid, signal.SIGKILL)
        return await client.wait()

    assert run(go())["exit_code"] == 137


def test_create_failure_reports_and_cleans(box):
    bundle, config = box.bundle(["no-such-binary"])
    with pytest.raises(DockyardError) as info:
        run(spawn_shim(bundle))
    assert "no-such-binary" in str(info.value)
    assert isinstance(info.value, NotFound), str(info.value)
    time.sleep(0.3)
    assert not shim_pids(bundle)
    r = subprocess.run([*box.argv, "--root", box.root, "list", "-q"], capture_output=True, text=True)
    assert config["id"] not in r.stdout


def test_several_attachers_stdin_kept_open_without_stdin_once(box):
    bundle, config = box.bundle(["sh", "-c", "read a; echo got $a; read b; echo got $b >&2"], open_stdin=True)

    async def go():
        await spawn_shim(bundle)
        client = ShimClient(config["socket"], config["exit_file"])
        first = await client.attach(stdin=True, stdout=True, stderr=True)
        watcher = await client.attach(stdout=True, stderr=False)
        with pytest.raises(ShimError):
            await client.shutdown()  # refused while the container runs
        await client.start()
        await first.write(b"x\n")
        first.close_stdin()  # no stdin_once: the container's stdin stays open
        await asyncio.sleep(0.3)
        second = await client.attach(stdin=True, stdout=False, stderr=True)
        await second.write(b"y\n")
        return await collect(first), await collect(watcher), await collect(second), await client.wait()

    first, watcher, second, result = run(go())
    assert first == (b"got x\n", b"got y\n")
    assert watcher == (b"got x\n", b"")
    assert second == (b"", b"got y\n")
    assert result["exit_code"] == 0


def test_exec_stdin_and_large_output_with_slow_reader(box):
    bundle, config = box.bundle(["sh", "-c", "seq 1 100000; sleep 30"])

    async def go():
        await spawn_shim(bundle)
        client = ShimClient(config["socket"], config["exit_file"])
        stream = await client.attach(stdout=True)
        await client.start()
        data = b""
        while data.count(b"\n") < 100000 and (chunk := await stream.read(4096)):
            data += chunk
            await asyncio.sleep(0)
        frames, _ = demux(data)
        proc = {"args": ["cat"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}}
        _, ex = await client.exec("cat1", proc, stdin=True)
        await ex.write(b"ping\n")
        ex.close_stdin()
        echoed = await collect(ex)
        code = await client.exec_wait("cat1")
        state = await client.state()
        info_pid = state["pid"]
        os.kill(info_pid, signal.SIGKILL)
        await client.wait()
        return b"".join(p for _, p in frames), echoed, code

    out, echoed, code = run(go())
    assert out == b"".join(b"%d\n" % i for i in range(1, 100001))
    assert echoed == (b"ping\n", b"") and code == 0
    with open(config["log"]["path"]) as f:
        assert sum(1 for _ in f) == 100000
    assert not any(n.startswith("exec-") for n in os.listdir(bundle))


def test_slow_attacher_applies_backpressure(box):
    bundle, config = box.bundle(["sh", "-c", "dd if=/dev/zero bs=65536 count=256 2>/dev/null | tr '\\0' x"],
                                log={"driver": "none"})

    async def go():
        await spawn_shim(bundle)
        client = ShimClient(config["socket"], config["exit_file"])
        stream = await client.attach(stdout=True)
        await client.start()
        await asyncio.sleep(1.5)  # not reading: the shim must stop reading the container too
        shim_pid = shim_pids(bundle)[0]
        rss = rss_kb(shim_pid)
        out, _ = await collect(stream)
        return rss, out, await client.wait()

    rss, out, result = run(go())
    print(f"shim VmRSS with a stalled attacher: {rss} kB")
    assert out == b"x" * (16 * 1024 * 1024) and result["exit_code"] == 0
    assert rss < 16 * 1024
    assert not os.path.exists(os.path.join(bundle, "ctr.log"))
