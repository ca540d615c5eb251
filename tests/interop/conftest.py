"""Interop fixtures: one real dockerd for the whole session; each case runs with runc and dockyard.

dockerd gets our runtime as ``--add-runtime dockyard=<.venv/bin/dockyard-runtime>``;
``runtime`` parametrizes every case over ("runc", "dockyard"), runc first, so
the runc run is the reference a dockyard failure is measured against. Cases
are skipped (not failed) where the real daemon cannot run: not root, or
dockerd/containerd/runc/busybox missing. A missing or broken dockyard-runtime
is not a reason to skip: those cases fail, with dockerd's error in the message.
DOCKYARD_INTEROP_SPY=1 wraps dockyard-runtime in tests/support/runtime_spy.py:
every call dockerd's shim makes is then logged next to dockerd's log.
The registry fixtures (``servers``, ``registry``, ``client``) serve tests/interop/test_registry_*.py.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import hostclean
from tests.support.dockerd import DockerDaemon, find_runtime_binary, missing_prerequisites
from tests.support.dockerruns import DockerRuns, RuncReference
from tests.support.registries import start_all, KINDS, RegistryClient, RegistryProcess
from tests.support.runtime_spy import write_spy

RUNTIMES = ("runc", "dockyard")
HERE = Path(__file__).resolve().parent
_log_dirs: list[Path] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reasons: list[str] | None = None
    for item in items:
        if HERE not in Path(str(item.fspath)).resolve().parents:
            continue
        if reasons is None:
            reasons = missing_prerequisites()
        if reasons:
            item.add_marker(pytest.mark.skip(reason="real dockerd cannot run here: " + ", ".join(reasons)))


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    for d in _log_dirs:
        terminalreporter.write_line(f"interop: dockerd and containerd logs in {d}")


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerDaemon]:
    """ONE dockerd (plus containerd) for the session, with busybox:latest loaded."""
    hostclean.sweep_stale()
    log_dir = tmp_path_factory.mktemp("dockerd-logs")
    _log_dirs.append(log_dir)
    ours = find_runtime_binary()
    if os.environ.get("DOCKYARD_INTEROP_SPY") == "1":  # log every runtime call (runtime-calls.log)
        ours = write_spy(ours, str(log_dir))
    daemon = DockerDaemon(runtimes={"dockyard": ours}, log_dir=str(log_dir))
    # A CI timeout usually sends SIGTERM first: turn it into an interrupt so teardown still runs.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        daemon.start()
        daemon.load_busybox()
        yield daemon
    finally:
        signal.signal(signal.SIGTERM, previous)
        daemon.stop()


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def runs(dockerd: DockerDaemon, runtime: str, request: pytest.FixtureRequest) -> Iterator[DockerRuns]:
    """docker commands with ``--runtime <runtime>``; the containers they name are removed afterwards."""
    helper = DockerRuns(dockerd, runtime, request.node.originalname)
    yield helper
    helper.cleanup()


@pytest.fixture(scope="session")
def reference() -> RuncReference:
    return RuncReference()


# -- registries (test_registry_*.py) -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RegistryProcess | str]]:
    """Both registries, started once; a kind that would not start maps to the reason instead."""
    yield from start_all(lambda kind: str(tmp_path_factory.mktemp(f"registry-{kind}")))


@pytest.fixture(params=KINDS)
def registry(request: pytest.FixtureRequest, servers: dict[str, RegistryProcess | str]) -> RegistryProcess:
    reg = servers[request.param]
    if isinstance(reg, str):
        pytest.fail(reg, pytrace=False)
    return reg


@pytest.fixture
def client(registry: RegistryProcess) -> RegistryClient:
    return RegistryClient(registry.host_port)
