"""Side by side: the same scenario on dockerd and on dockyardd must give JSON of the same shape.

Shape = the keys of every object and the JSON type of every value, recursively
(lists by their first element), so a client reading a field or a Go template
walking a path finds it on both engines. Values are compared where they are
deterministic. Maps keyed by data (labels, env) hold the same data on both.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from tests.acceptance.conftest import Engine, errors

pytestmark = [pytest.mark.acceptance, pytest.mark.privileged]

# Paths whose content depends on the storage driver / host, not on the API (documented as free-form).
FREE_FORM = {"GraphDriver.Data"}
# Artifacts of how the reference dockerd runs here (--bridge=none): not something to copy.
REFERENCE_ONLY = {"$.Config.NetworkDisabled"}


def shape(value: Any, path: str = "") -> Any:
    if path in FREE_FORM:
        return "free-form"
    if isinstance(value, dict):
        return {k: shape(v, f"{path}.{k}" if path else k) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0], path + "[]")] if value else []
    return type(value).__name__


def differences(ref: Any, got: Any, path: str = "$") -> list[str]:
    """Where ``got`` (dockyardd) differs in shape from ``ref`` (dockerd)."""
    if isinstance(ref, dict) and isinstance(got, dict):
        out = [f"{path}.{k}: missing" for k in ref if k not in got]
        out += [f"{path}.{k}: extra" for k in got if k not in ref]
        for k in ref.keys() & got.keys():
            out += differences(ref[k], got[k], f"{path}.{k}")
        return out
    if isinstance(ref, list) and isinstance(got, list):
        if ref and got:
            return differences(ref[0], got[0], path + "[]")
        return [] if bool(ref) == bool(got) else [f"{path}: {'empty' if not got else 'non-empty'} list"]
    return [] if ref == got else [f"{path}: {got} instead of {ref}"]


def same_shape(per_engine: list[Any]) -> None:
    ref, got = (shape(v) for v in per_engine)
    diff = [d for d in differences(ref, got) if d.split(":")[0] not in REFERENCE_ONLY]
    assert not diff, "dockyardd differs from dockerd:\n" + "\n".join(sorted(diff))


def _json(engine: Engine, *args: str) -> Any:
    return json.loads(engine.ok(*args))


def test_container_inspect_shape(pair, tmp_path):
    names = []
    for e in pair.engines:
        vol = e.new_volume()
        names.append(e.run_d("-e", "A=1", "-l", "k=v", "-v", f"{vol}:/data", "-v", f"{tmp_path}:/mnt", "-w", "/tmp",
                             "--health-cmd", "true", "--health-interval", "1s", "busybox", "sleep", "60"))
    time.sleep(2.5)  # a health probe or two on both (no template wait: it would stop at a missing field)
    found = []
    for e, name in zip(pair.engines, names):
        data = _json(e, "inspect", name)[0]
        data["Mounts"].sort(key=lambda m: m["Destination"])  # the order is not part of the API
        found.append(data)
    same_shape(found)
    assert [m["Type"] for m in found[1]["Mounts"]] == ["volume", "bind"]
    for key in ("Path", "Args"):
        assert found[0][key] == found[1][key], key
    for key in ("Cmd", "Env", "Labels", "WorkingDir", "Image", "Entrypoint", "Volumes", "Healthcheck"):
        assert found[0]["Config"][key] == found[1]["Config"][key], key


def test_stopped_container_inspect_shape(pair):
    found = []
    for e in pair.engines:
        name = e.new_name()
        e.docker("run", "--name", name, "busybox", "sh", "-c", "exit 3")
        found.append(_json(e, "inspect", name)[0])
    same_shape(found)
    assert [f["State"]["ExitCode"] for f in found] == [3, 3]


def test_image_inspect_and_history(pair):
    images = [_json(e, "image", "inspect", "busybox")[0] for e in pair.engines]
    same_shape(images)
    for key in ("Id", "RepoTags", "Config", "Architecture", "Os", "RootFS", "Size"):
        assert images[0][key] == images[1][key], key
    same_shape([[json.loads(line) for line in e.ok("history", "--format", "{{json .}}", "busybox").splitlines()]
                for e in pair.engines])
    same_shape([[json.loads(line) for line in e.ok("images", "--format", "{{json .}}").splitlines()]
                for e in pair.engines])


def test_volume_inspect_shape(pair):
    found = []
    for e in pair.engines:
        vol = e.new_volume()
        e.ok("volume", "create", "--label", "a=b", vol)
        found.append(_json(e, "volume", "inspect", vol)[0])
    same_shape(found)


def test_ps_and_stats_json_shape(pair):
    rows, stats = [], []
    for e in pair.engines:
        name = e.run_d("busybox", "sleep", "60")
        rows.append(json.loads(e.ok("ps", "--filter", f"name={name}", "--format", "{{json .}}")))
        stats.append(json.loads(e.ok("stats", "--no-stream", "--format", "{{json .}}", name)))
    same_shape(rows)
    same_shape(stats)


def test_api_stats_shape(pair):
    found = []
    for e in pair.engines:
        name = e.run_d("busybox", "sleep", "60")
        found.append(e.client().api.stats(name, stream=False))
    diff = differences(shape(found[0]), shape(found[1]))
    diff = [d for d in diff if not d.startswith("$.memory_stats.stats.")]  # v1 counters: kernel dependent
    assert not diff, "dockyardd differs from dockerd:\n" + "\n".join(sorted(diff))


def test_info_and_version_shape(pair):
    infos = [_json(e, "info", "--format", "{{json .}}") for e in pair.engines]
    diff = differences(shape(infos[0]), shape(infos[1]))
    assert not [d for d in diff if d.count(".") == 1], "top-level docker info fields:\n" + "\n".join(diff)
    versions = [_json(e, "version", "--format", "{{json .Server}}") for e in pair.engines]
    assert versions[1]["Os"] == "linux" and versions[1]["ApiVersion"] == versions[0]["ApiVersion"], versions[1]
    assert [c["Name"] for c in versions[1]["Components"]][0] == "Engine", versions[1]


def test_event_and_exec_inspect_shape(pair):
    events, execs = [], []
    for e in pair.engines:
        since = str(int(time.time()) - 1)
        name = e.new_name()
        e.ok("run", "--name", name, "busybox", "true")
        until = str(int(time.time()) + 1)
        lines = e.ok("events", "--since", since, "--until", until, "--filter", f"container={name}",
                     "--filter", "event=die", "--format", "{{json .}}").splitlines()
        assert len(lines) == 1, (e.kind, lines)
        events.append(json.loads(lines[0]))
        up = e.run_d("busybox", "sleep", "60")
        api = e.client().api
        exec_id = api.exec_create(up, ["true"])["Id"]
        api.exec_start(exec_id)
        execs.append(api.exec_inspect(exec_id))
    same_shape(events)
    same_shape(execs)
    assert [x["ExitCode"] for x in execs] == [0, 0] and [x["Running"] for x in execs] == [False, False]


@pytest.mark.parametrize("args", [
    ("inspect", "acc-none-such"), ("logs", "acc-none-such"), ("start", "acc-none-such"),
    ("stop", "acc-none-such"), ("rm", "acc-none-such"), ("volume", "rm", "acc-none-such"),
    ("image", "inspect", "acc-none-such"), ("rmi", "acc-none-such"), ("top", "acc-none-such"),
    ("create", "--name", "acc-bad name", "busybox"), ("run", "--rm", "busybox", "no-such-cmd"),
    ("exec", "acc-none-such", "true"), ("pause", "acc-none-such"), ("wait", "acc-none-such"),
], ids=lambda a: "-".join(a)[:40])
def test_error_output_identical(pair, args):
    """Errors users see: same exit code, same stderr (minus dockerd's IPv4-forwarding warning)."""
    results = [e.docker(*args) for e in pair.engines]
    ref, got = results
    assert got.rc == ref.rc, (ref, got)
    if args[-1] == "no-such-cmd":  # the OCI runtime's own words differ; Docker's part must not
        for r in results:
            assert 'exec: "no-such-cmd": executable file not found in $PATH: unknown' in r.stderr, r
        return
    assert errors(got.stderr) == errors(ref.stderr) and got.stdout == ref.stdout, (ref, got)


STATE_ERRORS = [
    ("pause", "{paused}"), ("unpause", "{up}"), ("exec", "{paused}", "true"), ("pause", "{done}"),
    ("exec", "{done}", "true"), ("rename", "{done}", "{up}"), ("kill", "-s", "BOGUS", "{up}"), ("kill", "{done}"),
    ("rm", "{up}"), ("start", "acc-nx1", "acc-nx2"), ("rm", "-f", "acc-nx3"), ("volume", "create", "bad name"),
    ("run", "--rm", "--memory", "1k", "busybox", "true"), ("run", "--rm", "--cpus", "99", "busybox", "true"),
    ("run", "--rm", "--user", "nosuchuser", "busybox", "true"),
    ("run", "--rm", "--workdir", "relative", "busybox", "true"),
    ("run", "--rm", "-v", "bad name:/x", "busybox", "true"),
    ("run", "--rm", "--restart", "bogus", "busybox", "true"),
    ("create", "--name", "{up}", "busybox"),
]


def _normalize(text: str, names: dict[str, str]) -> str:
    text = errors(text)
    for placeholder, name in names.items():
        text = text.replace(name, f"<{placeholder}>")
    return re.sub(r"\b[0-9a-f]{64}\b|\b[0-9a-f]{12}\b", "<id>", text)


def test_errors_in_each_state_identical(pair):
    """Daemon-side refusals (wrong state, bad option) read the same, ids and names aside."""
    seen: list[list[tuple[int, str, str]]] = []
    for e in pair.engines:
        names = {"up": e.run_d("busybox", "sleep", "60"), "paused": e.run_d("busybox", "sleep", "60"),
                 "done": e.new_name()}
        e.ok("run", "--name", names["done"], "busybox", "true")
        e.ok("pause", names["paused"])
        results = []
        for cmd in STATE_ERRORS:
            r = e.docker(*(arg.format(**names) for arg in cmd))
            results.append((r.rc, _normalize(r.stdout, names), _normalize(r.stderr, names)))
        e.ok("unpause", names["paused"])
        seen.append(results)
    diffs = [f"docker {' '.join(cmd)}:\n  dockerd:   {ref}\n  dockyardd: {got}"
             for cmd, ref, got in zip(STATE_ERRORS, *seen) if ref != got]
    assert not diffs, f"{len(diffs)} of {len(STATE_ERRORS)} differ:\n" + "\n".join(diffs)


def test_event_sequence_identical(pair):
    """One scenario (volume, container, image tag) yields the same event stream on both engines."""
    sequences = []
    for e in pair.engines:
        since = str(int(time.time()) - 1)
        vol, name, image = e.new_volume(), e.new_name(), e.new_image()
        e.ok("volume", "create", vol)
        e.ok("run", "--name", name, "-v", f"{vol}:/v", "busybox", "true")
        cid = e.inspect(name, "{{.Id}}")
        e.ok("tag", "busybox", image)
        e.ok("rmi", image)
        e.ok("rm", name)
        e.ok("volume", "rm", vol)
        time.sleep(1.1)
        until = str(int(time.time()) + 1)
        out = e.ok("events", "--since", since, "--until", until, "--format",
                   "{{.Type}} {{.Action}} {{.Actor.ID}} {{json .Actor.Attributes}}")
        ours = [line for line in out.splitlines() if any(x in line for x in (cid, vol, image))]  # not other cases'
        sequences.append([" ".join(line.split()[:2]) for line in ours])
    assert sequences[1] == sequences[0], f"dockerd:   {sequences[0]}\ndockyardd: {sequences[1]}"
