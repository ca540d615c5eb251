"""dockyardd only: SIGKILL the daemon while `docker run -d -p` on a user network is in flight.

After each restart the network state matches the containers: every running container has its own
address and its veth, its published port has exactly one DNAT rule and answers; nothing else is
left (no veth, namespace file or rule of a container that is not running); addresses are unique.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.acceptance.conftest import BrokenEngine
from tests.acceptance.network.conftest import NetEngine, _engine_for
from tests.support.dockyardd import DockyardDaemon

pytestmark = [pytest.mark.acceptance, pytest.mark.privileged]
ROUNDS = 4
BASE_PORT = 18300


@pytest.fixture
def dy(request: pytest.FixtureRequest) -> Iterator[NetEngine | BrokenEngine]:
    yield from _engine_for(request.getfixturevalue("net_dockyardd"), request)


def test_kill9_during_networked_runs(dy: NetEngine) -> None:
    daemon = dy.daemon
    assert isinstance(daemon, DockyardDaemon)
    net = dy.new_network()
    dy.ok("network", "create", net)
    rng = random.Random(20261128)
    port = BASE_PORT
    for round in range(ROUNDS):
        runs = []
        for _ in range(3):
            runs.append(subprocess.Popen(
                daemon.cli_argv("run", "-d", "--name", dy.new_name(), "--network", net, "-p", f"{port}:80",
                                "busybox", "sh", "-c", "mkdir /w; echo up > /w/f; exec httpd -f -p 80 -h /w"),
                env=daemon.cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            port += 1
        time.sleep(rng.uniform(0.0, 0.4))
        daemon.kill9()
        for p in runs:
            p.wait(timeout=30)
        daemon.restart()
        _check_consistent(dy, round)


def _check_consistent(dy: NetEngine, round: int) -> None:
    ids = dy.ok("ps", "-q", "--no-trunc").split()
    docs = json.loads(dy.ok("inspect", *ids)) if ids else []
    addresses = [ep["IPAddress"] for d in docs for ep in d["NetworkSettings"]["Networks"].values()]
    assert len(addresses) == len(set(addresses)) == len(docs), (round, addresses)
    table = dy.ns.run("nft", "list", "table", "ip", "dockyard").stdout
    rules = [ln.strip() for ln in table.splitlines() if " dnat to " in ln]
    assert len(rules) == len(docs), (round, rules, len(docs))
    for d in docs:
        (ep,) = d["NetworkSettings"]["Networks"].values()
        (binding,) = [b for b in d["NetworkSettings"]["Ports"]["80/tcp"] if b["HostIp"] == "0.0.0.0"]
        assert f"tcp dport {binding['HostPort']} dnat to {ep['IPAddress']}:80" in rules, (round, rules)
        for host in ("127.0.0.1", "[::1]"):  # the kernel's DNAT, and the userland proxy restored
            assert dy.wait_http(f"http://{host}:{binding['HostPort']}/f", expect="up").strip() == "up"
    netns_dir = dy.daemon.path("exec", "netns")
    assert len(os.listdir(netns_dir)) == len(docs), (round, os.listdir(netns_dir))
    deadline = time.monotonic() + 5  # veths of namespaces just removed go in the background
    while len([v for v in dy.links("veth") if v.startswith("vd")]) != len(docs) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len([v for v in dy.links("veth") if v.startswith("vd")]) == len(docs), (round, dy.links("veth"))
