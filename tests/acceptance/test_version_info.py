"""`docker version`, `docker info`, `docker ps`: the CLI sees a Docker engine and negotiates its API."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.acceptance, pytest.mark.privileged]

CLIENT_MAX_API = {"28": "1.50", "20.10": "1.41"}


def _api(v: str) -> tuple[int, int]:
    major, minor = v.split(".")
    return int(major), int(minor)


@pytest.mark.parametrize("cli", ["28", "20.10"])
def test_version_has_server_and_negotiates_api(engine, cli):
    r = engine.docker("version", cli=cli)
    assert r.rc == 0, r
    assert "Server:" in r.stdout and "Engine:" in r.stdout, r.stdout
    server_line = [ln for ln in r.stdout.split("Server:", 1)[1].splitlines() if "API version:" in ln]
    assert server_line and "minimum version" in server_line[0], r.stdout
    fields = engine.ok("version", "--format", "{{.Client.APIVersion}} {{.Server.APIVersion}} "
                       "{{.Server.MinAPIVersion}} {{.Server.Os}} {{.Server.Arch}}", cli=cli).split()
    client_api, server_api, min_api, os_, arch = fields
    assert client_api == min(server_api, CLIENT_MAX_API[cli], key=_api), fields
    assert _api(min_api) <= _api("1.24") and _api(server_api) >= _api("1.41"), fields
    assert (os_, arch) == ("linux", "amd64")


def test_info_key_lines(engine):
    r = engine.docker("info")
    assert r.rc == 0, r
    for key in ("Server Version:", "Storage Driver:", "Logging Driver: json-file", "Cgroup Driver:",
                "Containers:", "Running:", "Paused:", "Stopped:", "Images:", "Kernel Version:",
                "Operating System:", "OSType: linux", "Architecture: x86_64", "CPUs:", "Total Memory:",
                f"Docker Root Dir: {engine.daemon.path('data')}", "Default Runtime:"):
        assert key in r.stdout, f"{key!r} missing from docker info:\n{r.stdout}"
    assert "ERROR" not in r.stdout + r.stderr, r
    counts = engine.ok("info", "--format", "{{.Containers}} {{.Images}} {{.NCPU}} {{.OSType}}").split()
    assert counts[0].isdigit() and int(counts[1]) >= 1 and counts[3] == "linux", counts


@pytest.mark.parametrize("cli", ["28", "20.10"])
def test_ps_format_names_and_status(engine, cli):
    up = engine.run_d("busybox", "sleep", "30")
    done = engine.new_name()
    assert engine.docker("run", "--name", done, "busybox", "sh", "-c", "exit 3").rc == 3
    out = engine.ok("ps", "-a", "--format", "{{.Names}} {{.Status}}", cli=cli)
    lines = dict(line.split(" ", 1) for line in out.splitlines())
    assert lines[up].startswith("Up "), out
    assert lines[done].startswith("Exited (3) "), out
    running = engine.ok("ps", "--format", "{{.Names}}", cli=cli).split()
    assert up in running and done not in running
    quiet = engine.ok("ps", "-aq", "--filter", f"name={done}").split()
    assert len(quiet) == 1 and len(quiet[0]) == 12
