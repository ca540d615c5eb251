"""dockyardd's command line and daemon.json: dockerd's flag forms, merge rules and messages."""

from __future__ import annotations

import json
import os

import pytest

from dockyard.engine import config as cfgmod
from dockyard.engine.config import DaemonConfig, parse_args, parse_size, reload
from dockyard.engine.listeners import parse_host
from dockyard.errors import InvalidArgument


@pytest.fixture(autouse=True)
def no_system_config(tmp_path, monkeypatch):
    """Never read the host's /etc/dockyard/daemon.json: the default file is a missing temp path."""
    monkeypatch.setattr(cfgmod, "DEFAULT_CONFIG_FILE", str(tmp_path / "absent" / "daemon.json"))
    monkeypatch.delenv("DOCKYARD_CERT_PATH", raising=False)


def write(tmp_path, data, name="daemon.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def test_defaults_without_flags_or_file():
    cfg = parse_args([])
    assert cfg.hosts == ("unix:///var/run/dockyard.sock",)
    assert (cfg.data_root, cfg.exec_root, cfg.pidfile) == ("/var/lib/dockyard", "/run/dockyard",
                                                           "/var/run/dockyard.pid")
    assert cfg.live_restore is True and cfg.debug is False and cfg.tls is False
    assert cfg.default_runtime == "runc" and set(cfg.runtimes) == {"runc", "dockyard"}
    assert cfg.runtimes["dockyard"].endswith("dockyard-runtime")
    assert cfg.storage_driver == "overlay2" and cfg.group == "docker"
    assert cfg.default_shm_size == 64 * 1024 * 1024 and cfg.shutdown_timeout == 15
    assert cfg.tlscacert == "/etc/dockyard/ca.pem" and cfg.tlskey == "/etc/dockyard/key.pem"
    assert cfg.cgroup_parent == "/dockyard" and cfg.effective_log_level == "info"


def test_pflag_forms_and_repeats():
    cfg = parse_args(["-H", "unix:///tmp/a.sock", "--host=tcp://127.0.0.1:2376", "-Hfd://",
                      "-H=unix://", "--live-restore=false", "-D", "--label", "a=1", "--label=b=2",
                      "--data-root", "/srv/dy", "-p=/tmp/dy.pid", "-svfs"])
    assert cfg.hosts == ("unix:///tmp/a.sock", "tcp://127.0.0.1:2376", "fd://",
                         "unix:///var/run/dockyard.sock")
    assert cfg.live_restore is False and cfg.debug is True and cfg.effective_log_level == "debug"
    assert cfg.labels == ("a=1", "b=2") and cfg.data_root == "/srv/dy"
    assert cfg.pidfile == "/tmp/dy.pid" and cfg.storage_driver == "vfs"


def test_combined_short_bools_then_value():
    cfg = parse_args(["-Dl", "warn", "--debug=0"])
    assert cfg.debug is False and cfg.log_level == "warn"


@pytest.mark.parametrize("value, expected", [
    ("unix:///run/x.sock", "unix:///run/x.sock"),
    ("unix://", "unix:///var/run/dockyard.sock"),
    ("", "unix:///var/run/dockyard.sock"),
    ("tcp://:2375", "tcp://localhost:2375"),
    ("tcp://", "tcp://localhost:2375"),
    ("tcp://0.0.0.0", "tcp://0.0.0.0:2375"),
    ("0.0.0.0:2376", "tcp://0.0.0.0:2376"),
    ("tcp://[::1]:2376", "tcp://[::1]:2376"),
    ("fd://", "fd://"),
    ("fd://3", "fd://3"),
])
def test_parse_host(value, expected):
    assert parse_host(value) == expected


@pytest.mark.parametrize("value, message", [
    ("ssh://me@host", "unsupported proto 'ssh'"),
    ("/var/run/x.sock", "should not contain a path element"),
    ("tcp://host:2375/path", "should not contain a path element"),
    ("tcp://host:http", "invalid port"),
    ("fd://abc", "fd:// takes a file descriptor number"),
])
def test_parse_host_rejects(value, message):
    with pytest.raises(InvalidArgument, match=message):
        parse_host(value)


@pytest.mark.parametrize("argv, message", [
    (["--frobnicate"], "unknown flag: --frobnicate"),
    (["-X"], "unknown shorthand flag: 'X' in -X"),
    (["--data-root"], "flag needs an argument: --data-root"),
    (["-H"], "flag needs an argument: 'H' in -H"),
    (["--live-restore=maybe"], 'invalid argument "maybe" for "--live-restore" flag'),
    (["--shutdown-timeout", "soon"], 'invalid argument "soon" for "--shutdown-timeout" flag'),
    (["serve"], '"dockyardd" accepts no arguments'),
    (["--log-level", "loud"], "unable to parse logging level: loud"),
    (["-s", "btrfs"], "driver not supported: btrfs"),
    (["--label", "novalue"], "bad attribute format: novalue"),
    (["--default-runtime", "crun"], "specified default runtime 'crun' does not exist"),
    (["--add-runtime", "runc=/opt/runc"], "runtime name 'runc' is reserved"),
    (["--add-runtime", "crun"], "invalid runtime: crun"),
    (["--default-ulimit", "nofiles=1:2"], "invalid ulimit type: nofiles"),
    (["--default-ulimit", "nofile=4:2"], "soft limit must be less than or equal to hard limit: 4 > 2"),
    (["--default-shm-size", "lots"], "invalid size: 'lots'"),
])
def test_bad_flags(argv, message):
    with pytest.raises(InvalidArgument) as err:
        parse_args(argv)
    assert message in err.value.message


def test_runtimes_ulimits_sizes_from_flags():
    cfg = parse_args(["--add-runtime", "crun=/usr/bin/crun", "--default-runtime=crun",
                      "--default-ulimit", "nofile=1024:2048", "--default-ulimit=nproc=512",
                      "--default-shm-size", "128m", "--log-opt", "max-size=10m"])
    assert cfg.runtimes["crun"] == "/usr/bin/crun" and "runc" in cfg.runtimes
    assert cfg.default_runtime == "crun"
    assert dict(cfg.default_ulimits) == {"nofile": (1024, 2048), "nproc": (512, 512)}
    assert cfg.default_shm_size == 128 << 20 and cfg.log_opts == {"max-size": "10m"}


@pytest.mark.parametrize("text, size", [("1024", 1024), ("64m", 64 << 20), ("64MB", 64 << 20),
                                        ("64MiB", 64 << 20), ("1.5g", 3 << 29), ("2k", 2048)])
def test_parse_size(text, size):
    assert parse_size(text) == size


def test_tlsverify_implies_tls_and_cert_path_env(monkeypatch):
    monkeypatch.setenv("DOCKYARD_CERT_PATH", "/srv/certs")
    cfg = parse_args(["--tlsverify"])
    assert cfg.tls is True and cfg.tlsverify is True
    assert (cfg.tlscacert, cfg.tlscert, cfg.tlskey) == ("/srv/certs/ca.pem", "/srv/certs/cert.pem",
                                                        "/srv/certs/key.pem")
    assert parse_args(["--tlscert=/x/c.pem"]).tlscert == "/x/c.pem"


def test_file_values(tmp_path):
    path = write(tmp_path, {
        "hosts": ["unix:///tmp/dy.sock", "tcp://127.0.0.1:2376"], "data-root": "/srv/dy",
        "debug": True, "live-restore": False, "labels": ["env=test"], "tlsverify": True,
        "runtimes": {"crun": {"path": "/usr/bin/crun", "runtimeArgs": ["--debug"]}},
        "default-runtime": "crun", "storage-driver": "vfs", "shutdown-timeout": 30,
        "default-ulimits": {"nofile": {"Name": "nofile", "Soft": 1024, "Hard": 4096}},
        "default-shm-size": "1g", "cgroup-parent": "/custom", "group": "wheel",
        "log-level": "warn", "exec-root": "/run/dy", "pidfile": "/run/dy.pid",
        "experimental": True, "userns-remap": "default",
    })
    cfg = parse_args(["--config-file", path, "--insecure-tcp"])
    assert cfg.config_file == path
    assert cfg.hosts == ("unix:///tmp/dy.sock", "tcp://127.0.0.1:2376")
    assert cfg.data_root == "/srv/dy" and cfg.debug and not cfg.live_restore
    assert cfg.labels == ("env=test",)
    assert cfg.tls and cfg.tlsverify and cfg.insecure_tcp
    assert cfg.runtimes["crun"] == "/usr/bin/crun" and cfg.runtime_args["crun"] == ("--debug",)
    assert cfg.default_runtime == "crun" and cfg.storage_driver == "vfs"
    assert cfg.shutdown_timeout == 30 and cfg.default_ulimits["nofile"] == (1024, 4096)
    assert cfg.default_shm_size == 1 << 30 and cfg.cgroup_parent == "/custom"
    assert cfg.group == "wheel" and cfg.log_level == "warn"
    assert dict(cfg.extra) == {"experimental": True, "userns-remap": "default"}


def test_flag_and_file_conflict_is_dockerds_message(tmp_path):
    path = write(tmp_path, {"hosts": ["tcp://127.0.0.1:2376"], "debug": True})
    with pytest.raises(InvalidArgument) as err:
        parse_args(["--config-file", path, "-H", "unix:///tmp/a.sock", "-H", "fd://", "-D"])
    assert err.value.message == (
        f"unable to configure the Dockyard daemon with file {path}: the following directives are "
        "specified both as a flag and in the configuration file: hosts: (from flag: "
        "[unix:///tmp/a.sock fd://], from file: [tcp://127.0.0.1:2376]), debug: (from flag: true, "
        "from file: true)")


def test_unknown_keys_are_an_error(tmp_path):
    path = write(tmp_path, {"foo": 1, "debug": True, "bar": "x"})
    with pytest.raises(InvalidArgument) as err:
        parse_args(["--config-file", path])
    assert err.value.message.endswith(
        "the following directives don't match any configuration option: bar, foo")


def test_missing_explicit_file_is_an_error_missing_default_is_fine(tmp_path):
    missing = str(tmp_path / "nope.json")
    with pytest.raises(InvalidArgument, match="no such file or directory"):
        parse_args(["--config-file", missing])
    assert parse_args([]).config_file == cfgmod.DEFAULT_CONFIG_FILE


@pytest.mark.parametrize("content, message", [
    ("{not json", "invalid JSON"),
    ("[1, 2]", "must hold a JSON object"),
    ('{"data-root": 5}', "cannot unmarshal number into Go struct field Config.data-root of type string"),
    ('{"debug": "yes"}', "cannot unmarshal string into Go struct field Config.debug of type bool"),
    ('{"hosts": "unix://"}', "Config.hosts of type []string"),
    ('{"runtimes": {"crun": {}}}', 'runtime crun: a non-empty "path" is required'),
    ('{"default-ulimits": {"nofile": {"Soft": 1}}}', 'needs integer "Soft" and "Hard"'),
])
def test_bad_file_contents(tmp_path, content, message):
    path = write(tmp_path, content)
    with pytest.raises(InvalidArgument) as err:
        parse_args(["--config-file", path])
    assert message in err.value.message and path in err.value.message


def test_empty_file_is_fine(tmp_path):
    assert parse_args(["--config-file", write(tmp_path, "")]).hosts == DaemonConfig().hosts


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as done:
        parse_args(["-v"])
    assert done.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("Dockyard version 0.1.0, build ")
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    out = capsys.readouterr().out
    assert out.startswith("Usage:\tdockyardd [OPTIONS]")
    assert "-H, --host list" in out and "--live-restore" in out and "--add-runtime" in out


def test_reload_changes_only_reloadable_keys(tmp_path):
    path = write(tmp_path, {"debug": False, "data-root": "/srv/a", "labels": ["a=1"]})
    cfg = parse_args(["--config-file", path, "--log-level", "warn"])
    write(tmp_path, {"debug": True, "data-root": "/srv/b", "live-restore": False,
                     "runtimes": {"crun": {"path": "/usr/bin/crun", "runtimeArgs": ["-x"]}},
                     "default-runtime": "crun"})
    new = reload(cfg)
    assert new.debug is True and new.live_restore is False
    assert new.default_runtime == "crun" and new.runtime_args["crun"] == ("-x",)
    assert new.labels == ()                      # removed from the file: back to the default
    assert new.data_root == "/srv/a"             # not reloadable: unchanged
    assert new.log_level == "warn"               # still the flag's value
    assert cfg.debug is False                    # the old config is untouched (frozen)


def test_reload_rejects_a_key_also_given_as_flag(tmp_path):
    path = write(tmp_path, {})
    cfg = parse_args(["--config-file", path, "-D"])
    write(tmp_path, {"debug": False})
    with pytest.raises(InvalidArgument, match="specified both as a flag and in the configuration file"):
        reload(cfg)


def test_config_is_frozen():
    cfg = parse_args([])
    with pytest.raises(AttributeError):
        cfg.debug = True  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.runtimes["x"] = "/bin/x"  # type: ignore[index]


def test_dockyard_runtime_found_next_to_python(tmp_path, monkeypatch):
    fake = tmp_path / "bin"
    fake.mkdir()
    exe = fake / "dockyard-runtime"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    monkeypatch.setattr(cfgmod.sys, "executable", str(fake / "python"))
    assert cfgmod.builtin_runtimes()["dockyard"] == str(exe)
    assert os.path.basename(cfgmod.builtin_runtimes()["runc"]) == "runc"
