"""A throw-away network namespace that plays "the host" for an engine, plus an optional "remote host".

    host = NetnsHost(remote=True)       # netns "host" (lo up) + netns "remote", veth 10.250.0.1/30 <-> .2
    daemon = DockerDaemon(netns=host.path)   # the engine's bridges, firewall rules, ip_forward live there
    host.run("curl", "-s", "http://127.0.0.1:8080/")          # a command inside the host netns
    host.run_remote("curl", "-s", f"http://{host.address}:8080/")  # ... or from the remote host
    host.remove()                       # after the daemon has stopped

Why: networking tests need bridges, nftables/iptables rules and net.ipv4.ip_forward, and none of that
may touch the CI machine's own network namespace. Each namespace is a file bind-mounted in a
``dockyard-interop-<pid>-net…`` directory under /tmp, so hostclean.sweep_stale removes the leftovers
of a killed run. Commands run through ``nsenter --net=FILE`` (iproute2 also takes the file as a netns).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator

from dockyard.kernel import netns
from tests.support import hostclean
from tests.support.daemonbase import Result

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class NetnsHost:
    """A "host" netns (and optionally a "remote" one linked to it by a veth pair), removed by remove()."""

    def __init__(self, *, remote: bool = True, subnet_octet: int = 0, tmp_parent: str = "/tmp") -> None:
        self.base = tempfile.mkdtemp(prefix=f"{hostclean.PREFIX}{os.getpid()}-net", dir=tmp_parent)
        self.path = os.path.join(self.base, "host")
        self.remote_path: str | None = None
        self.address = f"10.250.{subnet_octet}.1"         # the host's address on the veth
        self.remote_address = f"10.250.{subnet_octet}.2"  # the remote host's
        try:
            netns.create(self.path)
            self._check(self.run("ip", "link", "set", "lo", "up"))
            if remote:
                self._add_remote()
        except BaseException:
            self.remove()
            raise

    def _add_remote(self) -> None:
        self.remote_path = os.path.join(self.base, "remote")
        netns.create(self.remote_path)
        self._check(self.run_remote("ip", "link", "set", "lo", "up"))
        self._check(self.run("ip", "link", "add", "rhost0", "type", "veth", "peer", "name", "rhost1",
                             "netns", self.remote_path))
        self._check(self.run("ip", "addr", "add", f"{self.address}/30", "dev", "rhost0"))
        self._check(self.run("ip", "link", "set", "rhost0", "up"))
        self._check(self.run_remote("ip", "addr", "add", f"{self.remote_address}/30", "dev", "rhost1"))
        self._check(self.run_remote("ip", "link", "set", "rhost1", "up"))

    @staticmethod
    def _check(r: Result) -> None:
        if r.rc != 0:
            raise RuntimeError(f"netns setup failed: {r}")

    # -- commands ----------------------------------------------------------------------------
    def argv(self, *args: str) -> list[str]:
        """``args`` run inside the host netns (prefix for Popen)."""
        return ["nsenter", f"--net={self.path}", "--", *args]

    def run(self, *args: str, timeout: float = 30.0, input: bytes | None = None) -> Result:
        """Run a command inside the host netns; (rc, stdout, stderr)."""
        return _run(self.argv(*args), timeout, input)

    def run_remote(self, *args: str, timeout: float = 30.0) -> Result:
        """Run a command inside the remote-host netns."""
        if self.remote_path is None:
            raise RuntimeError("this NetnsHost has no remote host")
        return _run(["nsenter", f"--net={self.remote_path}", "--", *args], timeout, None)

    def curl(self, url: str, *, remote: bool = False, timeout: float = 5.0) -> Result:
        """GET url with curl from the host netns (or the remote one): body on stdout."""
        argv = ("curl", "-sS", "--noproxy", "*", "--max-time", str(timeout), url)
        return self.run_remote(*argv, timeout=timeout + 5) if remote else self.run(*argv, timeout=timeout + 5)

    @contextlib.contextmanager
    def serve_remote(self, port: int, body: str) -> Iterator[None]:
        """A busybox httpd on the remote host's address serving /file (= body) while the block runs.

        It logs each client to remote_log() (the source address shows whether traffic was masqueraded).
        """
        if self.remote_path is None:
            raise RuntimeError("this NetnsHost has no remote host")
        www = os.path.join(self.base, "www")
        os.makedirs(www, exist_ok=True)
        with open(os.path.join(www, "file"), "w") as f:
            f.write(body + "\n")
        log = open(os.path.join(self.base, "remote-httpd.log"), "wb")
        proc = subprocess.Popen(["nsenter", f"--net={self.remote_path}", "--", "/bin/busybox", "httpd", "-f",
                                 "-vv", "-p", f"{self.remote_address}:{port}", "-h", www],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            time.sleep(0.2)
            yield
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            log.close()

    def remote_log(self) -> str:
        """What serve_remote's httpd logged (one line per request, with the client address)."""
        try:
            with open(os.path.join(self.base, "remote-httpd.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # -- cleanup -----------------------------------------------------------------------------
    def remove(self) -> None:
        """Drop both namespaces (their links go with them) and the directory. Idempotent."""
        for p in (self.path, self.remote_path):
            if p is not None:
                netns.remove(p)
        hostclean.remove_tree(self.base)

    def __enter__(self) -> NetnsHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def _run(argv: list[str], timeout: float, input: bytes | None) -> Result:
    env = {"PATH": SYSTEM_PATH, "LANG": "C.UTF-8"}
    try:
        proc = subprocess.run(argv, input=input, capture_output=True, env=env, timeout=timeout,
                              stdin=subprocess.DEVNULL if input is None else None)
    except subprocess.TimeoutExpired as e:
        return Result(124, (e.stdout or b"").decode(errors="replace"), f"timed out after {timeout}s")
    return Result(proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))
