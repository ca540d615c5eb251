"""What the test harnesses of dockerd and dockyardd share: paths, the CLI, ping, cgroup tracking."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
from collections.abc import Iterator
from typing import NamedTuple, Self

from tests.support import hostclean


class Result(NamedTuple):
    """What a docker CLI command did."""

    rc: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"rc={self.rc}\n--- stdout:\n{self.stdout}--- stderr:\n{self.stderr}"


class DaemonBase:
    """An engine in a throw-away directory ``base`` (named ``name``), driven by the docker CLI ``cli``."""

    base: str
    name: str
    cli: str

    @property
    def socket_path(self) -> str:
        raise NotImplementedError

    def path(self, *parts: str) -> str:
        return os.path.join(self.base, *parts)

    @property
    def host(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def cgroup_parent(self) -> str:
        return f"/{self.name}"

    def __enter__(self) -> DaemonBase:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def running(self) -> Iterator[Self]:
        """Started for the ``with`` block, stopped after it (also when starting fails halfway)."""
        try:
            self.start()
            yield self
        finally:
            self.stop()

    def stop(self) -> None:
        raise NotImplementedError

    def _tracking_cgroup(self) -> str:
        """cgroup.procs of ``/<name>/daemon`` (so a sweep by name finds the daemons), or /dev/null."""
        hierarchy = hostclean.tracking_hierarchy()
        if hierarchy is None:
            return "/dev/null"
        tracking = os.path.join(hierarchy, self.name, "daemon")
        try:
            os.makedirs(tracking, exist_ok=True)
        except OSError:  # a read-only cgroupfs: rely on the mount namespace and command lines
            return "/dev/null"
        return os.path.join(tracking, "cgroup.procs")

    def ping(self) -> bool:
        """True when the Engine API answers GET /_ping with 200 OK."""
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(self.socket_path)
                s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
        except OSError:
            return False
        return data.startswith(b"HTTP/1.") and b" 200 " in data.split(b"\r\n", 1)[0] and data.endswith(b"OK")

    def docker(self, *args: str, input: str | bytes | None = None, timeout: float = 60.0) -> Result:
        """Run the docker CLI against this daemon; returns (rc, stdout, stderr)."""
        data = input.encode() if isinstance(input, str) else input
        proc = subprocess.run(self.cli_argv(*args), input=data, capture_output=True,
                              stdin=subprocess.DEVNULL if data is None else None, env=self.cli_env(),
                              timeout=timeout)
        return Result(proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the daemon's log (subclasses know where it is)."""
        raise NotImplementedError

    def docker_ok(self, *args: str, input: str | bytes | None = None, timeout: float = 180.0) -> str:
        """``docker(*args)`` that must succeed (else an assertion with the result and the log tail)."""
        r = self.docker(*args, input=input, timeout=timeout)
        assert r.rc == 0, f"docker {' '.join(args)}: {r}\n{self.log_tail()}"
        return r.stdout

    def cli_argv(self, *args: str) -> list[str]:
        """The docker CLI command line for ``args`` against this daemon (run it with cli_env())."""
        return [self.cli, "-H", self.host, *args]

    def cli_env(self) -> dict[str, str]:
        """The CLI's environment: no DOCKER_* from the host, a private DOCKER_CONFIG."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env["DOCKER_CONFIG"] = self.path("cli")
        return env
