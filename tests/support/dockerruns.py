"""Per-test helpers for driving containers through a DockerDaemon with one chosen OCI runtime.

``DockerRuns`` runs ``docker run --runtime <runtime> ...`` (no network: ``--network
none``), names and later removes the containers it starts. ``RuncReference``
holds what runc did, so a case can compare dockyard-runtime with runc where the
exact output is not known in advance.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TypeVar

from tests.support.dockerd import DockerDaemon, Result
from tests.support.ptyproc import PtyProcess

T = TypeVar("T")


class DockerRuns:
    """The docker commands of one test case, all with ``--runtime <runtime>``."""

    def __init__(self, daemon: DockerDaemon, runtime: str, label: str) -> None:
        self.daemon = daemon
        self.runtime = runtime
        self.label = re.sub(r"[^a-zA-Z0-9_.-]+", "-", label).strip("-.")[:40]
        self.names: list[str] = []

    def with_runtime(self, runtime: str) -> DockerRuns:
        """The same helper for another runtime; its containers are cleaned up with ours."""
        other = DockerRuns(self.daemon, runtime, self.label)
        other.names = self.names
        return other

    def docker(self, *args: str, input: str | bytes | None = None, timeout: float = 60.0) -> Result:
        return self.daemon.docker(*args, input=input, timeout=timeout)

    def new_name(self) -> str:
        name = f"dy-{self.label}-{self.runtime}-{len(self.names)}"
        self.names.append(name)
        return name

    def run(self, *args: str, timeout: float = 60.0) -> Result:
        """``docker run --rm --network none --runtime R ARGS`` (ARGS: options, image, command)."""
        return self.docker("run", "--rm", "--network", "none", "--runtime", self.runtime, *args,
                           timeout=timeout)

    def run_kept(self, *args: str, timeout: float = 60.0) -> tuple[str, Result]:
        """Like run() but named and not removed at exit, to inspect it; returns (name, result)."""
        name = self.new_name()
        r = self.docker("run", "--name", name, "--network", "none", "--runtime", self.runtime, *args,
                        timeout=timeout)
        return name, r

    def start(self, *args: str) -> str:
        """``docker run -d`` a named container; returns its name (asserts it started)."""
        name = self.new_name()
        r = self.docker("run", "-d", "--name", name, "--network", "none", "--runtime", self.runtime, *args)
        assert r.rc == 0, f"docker run -d {' '.join(args)} with {self.runtime}: {r}"
        return name

    def inspect(self, name: str, template: str) -> str:
        r = self.docker("inspect", "-f", template, name)
        assert r.rc == 0, f"docker inspect {name}: {r}"
        return r.stdout.strip()

    def wait_for_log(self, name: str, text: str, timeout: float = 15.0) -> str:
        """Poll ``docker logs`` until it contains ``text``; return the logs."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.docker("logs", name)
            if text in r.stdout:
                return r.stdout
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} not in logs of {name} after {timeout}s: {r}")
            time.sleep(0.05)

    def interactive(self, *args: str) -> PtyProcess:
        """Run ``docker ARGS`` on a fresh pty (for -it)."""
        return PtyProcess(self.daemon.cli_argv(*args), env=self.daemon.cli_env())

    def cleanup(self) -> None:
        if self.names:
            self.docker("rm", "-f", *self.names, timeout=60)


class RuncReference:
    """What runc observed, per case, computed once per session, to compare other runtimes with."""

    def __init__(self) -> None:
        self._seen: dict[str, object] = {}

    def compare(self, key: str, runs: DockerRuns, observe: Callable[[DockerRuns], T]) -> tuple[T, T]:
        """Return (observe(runs), what it gave with runc for ``key``), running runc's side if needed."""
        got = observe(runs)
        if runs.runtime == "runc":
            self._seen[key] = got
        elif key not in self._seen:
            self._seen[key] = observe(runs.with_runtime("runc"))
        return got, self._seen[key]  # type: ignore[return-value]
