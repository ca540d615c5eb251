"""dockyardd only: SIGKILL the daemon at random moments while `docker run -d` is in flight.

After each restart every container is in a state a user can act on: running with a live init,
or created/exited; `docker rm -f` then removes everything, and no shim, mount or cgroup is left.
"""

from __future__ import annotations

import os
import random
import subprocess
import time

import pytest

from tests.acceptance.test_kill9 import alive, daemon, ok  # noqa: F401  (the fixture)
from tests.support import hostclean

pytestmark = [pytest.mark.acceptance, pytest.mark.privileged]
ROUNDS = 6


def shims(d) -> list[int]:
    """Shim processes of this daemon (the warm one, waiting for a bundle, included)."""
    out = subprocess.run(["pgrep", "-f", f"shim.main.*{d.base}"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def shim_sockets(d) -> list[str]:
    """One socket per shim that owns a container (a shim removes its socket when it exits)."""
    return os.listdir(d.path("exec", "s"))


def test_kill9_at_random_points_of_run(daemon):  # noqa: F811
    d = daemon
    rng = random.Random(20261127)
    for round in range(ROUNDS):
        runs = [subprocess.Popen(d.cli_argv("run", "-d", "busybox", "sleep", "300"), env=d.cli_env(),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(3)]
        time.sleep(rng.uniform(0.0, 0.4))
        d.kill9()
        for p in runs:
            p.wait(timeout=30)
        d.restart()
        rows = ok(d, "ps", "-a", "--format", "{{.ID}}").split()
        running = 0
        for cid in rows:
            status, pid = ok(d, "inspect", "-f", "{{.State.Status}} {{.State.Pid}}", cid).split()
            if status == "running":
                running += 1
                assert alive(int(pid)), (round, cid, status, pid)
            else:
                assert status in ("created", "exited"), (round, cid, status)
        assert len(shim_sockets(d)) == running, (round, running, shim_sockets(d))
        assert len(shims(d)) <= running + 1, (round, running, shims(d))  # + the warm one
    ids = ok(d, "ps", "-aq").split()
    if ids:
        ok(d, "rm", "-f", *ids, timeout=120)
    assert ok(d, "ps", "-aq") == ""
    deadline = time.monotonic() + 10
    while (shim_sockets(d) or len(shims(d)) > 1) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert shim_sockets(d) == [] and len(shims(d)) <= 1
    assert [m for m, _, _ in hostclean.mountinfo() if d.base in m] == []
    assert ok(d, "run", "--rm", "busybox", "echo", "fine") == "fine\n"
