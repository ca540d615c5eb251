"""dockyard-registry's YAML config, REGISTRY_* overrides and command line."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

from dockyard.errors import InvalidArgument
from dockyard.registry.cli import main
from dockyard.registry.config import load, parse_addr

# distribution's stock /etc/docker/registry/config.yml
STOCK = """\
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
"""


def write(text: str) -> str:
    fd, path = tempfile.mkstemp(suffix=".yml", prefix="dockyard-reg-cfg-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def test_defaults_without_a_file() -> None:
    cfg = load(None, environ={})
    assert (cfg.storage, cfg.root_directory, cfg.host, cfg.port) == ("filesystem", "/var/lib/registry", "", 5000)
    assert cfg.log_level == "info" and cfg.delete_enabled is True


def test_distribution_stock_config_is_accepted() -> None:
    path = write(STOCK)
    try:
        cfg = load(path, environ={})
    finally:
        os.unlink(path)
    assert cfg.root_directory == "/var/lib/registry" and cfg.port == 5000
    assert cfg.headers == {"X-Content-Type-Options": "nosniff"} and cfg.source == path


def test_full_config_and_env_overrides() -> None:
    path = write("version: 0.1\nlog: {level: debug}\nstorage:\n  inmemory: {}\n  delete: {enabled: false}\n"
                 "http: {addr: '127.0.0.1:5001', host: 'https://reg.example'}\n")
    try:
        cfg = load(path, environ={})
        assert (cfg.storage, cfg.delete_enabled, cfg.log_level) == ("inmemory", False, "debug")
        assert (cfg.host, cfg.port, cfg.public_url) == ("127.0.0.1", 5001, "https://reg.example")
        cfg = load(path, environ={"REGISTRY_HTTP_ADDR": ":6000", "REGISTRY_STORAGE_DELETE_ENABLED": "true",
                                  "REGISTRY_LOG_LEVEL": "warn", "HOME": "/root"})
        assert (cfg.host, cfg.port, cfg.delete_enabled, cfg.log_level) == ("", 6000, True, "warn")
    finally:
        os.unlink(path)
    cfg = load(None, environ={"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": "/srv/reg"})
    assert cfg.storage == "filesystem" and cfg.root_directory == "/srv/reg"


@pytest.mark.parametrize("text, message", [
    ("storage:\n  filesystem: {rootdir: /x}\n", "unknown key 'storage.filesystem.rootdir'"),
    ("htttp: {addr: ':5000'}\n", "unknown key 'htttp'"),
    ("storage: {inmemory: {}, filesystem: {rootdirectory: /x}}\n", "exactly one driver"),
    ("storage: {delete: {enabled: maybe}}\n", "storage.delete.enabled must be true or false"),
    ("http: {addr: 'nohost'}\n", "http.addr 'nohost'"),
    ("version: 0.2\n", "unsupported version"),
    ("log: {level: loud}\n", "log.level 'loud'"),
    ("- a list\n", "mapping"),
])
def test_bad_configs_are_errors_with_clear_text(text: str, message: str) -> None:
    path = write(text)
    try:
        with pytest.raises(InvalidArgument, match=message.replace(".", r"\.").replace("(", r"\(")):
            load(path, environ={})
    finally:
        os.unlink(path)


def test_unknown_env_override_and_missing_file() -> None:
    with pytest.raises(InvalidArgument, match="REGISTRY_STORAGE_GCS_BUCKET"):
        load(None, environ={"REGISTRY_STORAGE_GCS_BUCKET": "b"})
    with pytest.raises(InvalidArgument, match="/nonexistent.yml"):
        load("/nonexistent.yml", environ={})


def test_parse_addr() -> None:
    assert parse_addr(":5000") == ("", 5000)
    assert parse_addr("0.0.0.0:80") == ("0.0.0.0", 80)
    assert parse_addr("[::1]:5000") == ("::1", 5000)
    for bad in ("5000", "host:", "host:99999"):
        with pytest.raises(InvalidArgument):
            parse_addr(bad)


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("dockyard-registry ")


def test_bad_config_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "/nonexistent.yml"]) == 1
    assert "/nonexistent.yml" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_answers_logs_requests_and_stops_on_signal(sig: signal.Signals) -> None:
    root = tempfile.mkdtemp(prefix="dockyard-reg-root-")
    port = _free_port()
    path = write(f"version: 0.1\nstorage: {{filesystem: {{rootdirectory: {root}}}}}\n"
                 f"http: {{addr: '127.0.0.1:{port}'}}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    proc = subprocess.Popen([sys.executable, "-m", "dockyard.registry", "serve", path], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2) as resp:
                    assert resp.status == 200
                    assert resp.headers["Docker-Distribution-API-Version"] == "registry/2.0"
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "registry did not start"
                time.sleep(0.1)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        assert 'GET /v2/\\" 200' in err and 'msg="stopped"' in err  # one escaped logfmt line per request
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.unlink(path)
        shutil.rmtree(root, ignore_errors=True)
