"""The runtime's command line: Go-flag parsing, argument counts, runc-shaped errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dockyard.runtime import cli


def run_cli(*argv: str, root: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dockyard.runtime", "--root", root, *argv],
                          capture_output=True, text=True)


def test_flags_before_positionals_forms():
    flags = {"bundle": (True, False), "detach": (False, False), "env": (True, True)}
    opts, args = cli.parse_flags(["-b", "/x", "--detach", "--env=A=1", "-env", "B=2", "id", "--later"],
                                 flags, {"b": "bundle"})
    assert opts == {"bundle": "/x", "detach": True, "env": ["A=1", "B=2"]}
    assert args == ["id", "--later"]


def test_double_dash_ends_flags():
    opts, args = cli.parse_flags(["--", "-d"], {"detach": (False, False)}, {})
    assert opts == {} and args == ["-d"]


def test_unknown_flag_is_a_usage_error():
    with pytest.raises(cli.UsageError, match="flag provided but not defined: -bogus"):
        cli.parse_flags(["--bogus", "id"], {}, {})


def test_value_flag_without_value():
    with pytest.raises(cli.UsageError, match="flag needs an argument"):
        cli.parse_flags(["--bundle"], {"bundle": (True, False)}, {})


def test_argument_count_messages():
    assert cli._check_args("start", 0, 1, 1) == 'dockyard-runtime: "start" requires exactly 1 argument(s)'
    assert cli._check_args("exec", 0, 1, None) == 'dockyard-runtime: "exec" requires a minimum of 1 argument(s)'
    assert cli._check_args("kill", 3, 1, 2) == 'dockyard-runtime: "kill" requires a maximum of 2 argument(s)'
    assert cli._check_args("kill", 2, 1, 2) == ""


def test_state_of_unknown_container(tmp_path):
    r = run_cli("state", "nope", root=str(tmp_path))
    assert r.returncode == 1
    assert 'level=error msg="container does not exist"' in r.stderr


def test_json_log_goes_to_file_and_message_to_stderr(tmp_path):
    log = tmp_path / "log.json"
    r = subprocess.run([sys.executable, "-m", "dockyard.runtime", "--root", str(tmp_path), "--log", str(log),
                        "--log-format", "json", "state", "nope"], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr == "container does not exist\n"
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error" and entry["msg"] == "container does not exist" and entry["time"]


def test_invalid_id(tmp_path):
    r = run_cli("state", "../x", root=str(tmp_path))
    assert r.returncode == 1 and "invalid container ID format" in r.stderr


def test_list_empty(tmp_path):
    assert run_cli("list", "-f", "json", root=str(tmp_path)).stdout == "null\n"
    table = run_cli("list", root=str(tmp_path)).stdout
    assert table.split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]


def test_version_and_usage(tmp_path):
    r = run_cli("--version", root=str(tmp_path))
    assert r.returncode == 0 and "dockyard-runtime version" in r.stdout and "spec: 1.2.1" in r.stdout
    r = run_cli("start", root=str(tmp_path))
    assert r.returncode == 1 and "Incorrect Usage." in r.stdout
    assert 'requires exactly 1 argument(s)' in r.stderr


def test_systemd_cgroup_is_a_clear_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "dockyard.runtime", "--root", str(tmp_path), "--systemd-cgroup",
                        "create", "x"], capture_output=True, text=True)
    assert r.returncode == 1 and "systemd cgroup driver is not supported" in r.stderr


def test_spec_writes_default_config_and_refuses_overwrite(tmp_path):
    r = run_cli("spec", "-b", str(tmp_path), root=str(tmp_path / "root"))
    assert r.returncode == 0
    spec = json.loads((tmp_path / "config.json").read_text())
    assert spec["process"]["args"] == ["sh"] and spec["root"] == {"path": "rootfs", "readonly": True}
    r = run_cli("spec", "-b", str(tmp_path), root=str(tmp_path / "root"))
    assert r.returncode == 1 and "config.json exists" in r.stderr


def test_features_json(tmp_path):
    r = run_cli("features", root=str(tmp_path))
    features = json.loads(r.stdout)
    assert features["ociVersionMax"] == "1.2.1"
    assert "CAP_SYS_ADMIN" in features["linux"]["capabilities"]
    assert "rbind" in features["mountOptions"]


def test_unsupported_checkpoint(tmp_path):
    r = run_cli("checkpoint", "x", root=str(tmp_path))
    assert r.returncode == 1 and "not supported" in r.stderr
