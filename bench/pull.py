"""Pull + unpack of a >= 1 GiB image from the same registry: dockyardd vs the real dockerd.

One dockyard-registry (tests/support/registries.py, filesystem-backed, loopback) holds the image of
bench/registry.py (4 layers of 256 MiB random data each, on static busybox; built once by dockerd and
cached as a `docker save` tar under .cache/bench-registry/), pushed there once by dockerd. Then, engines
alternating each round:
1. the image is absent from the engine (`docker rmi`, checked: its layers go with it);
2. `docker pull <registry>/bench/big:latest` through that engine is timed (wall time of the CLI
   command: download, verification, decompression and unpacking into the engine's snapshotter: overlay2
   for dockerd, dockyardd's own); the output must say "Pull complete" 4 times, and the pulled image must
   have the image ID dockerd built.
The engine's CPU seconds (utime + stime of the daemon's process tree from /proc) are taken around the
pull: dockerd + containerd (dockerd unpacks itself with the graphdriver), dockyardd + its children.

    python bench/pull.py [--rounds 3] [--record]

--record appends the result to docs/benchmarks.md. Daemons and the registry are stopped and their
directories removed on exit, also on failure.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "scripts"))

from engine import _machine, cli, run_bench
from registry import LAYERS, LOCAL, REPO_PATH, build_image, inspect

from tests.support.dockerd import DockerDaemon
from tests.support.dockyardd import DockyardDaemon
from tests.support.registries import RegistryProcess

ENGINES = ("dockyardd", "dockerd")
Engine = DockerDaemon | DockyardDaemon


def tree_cpu(pid: int) -> float:
    """utime + stime (seconds) of ``pid`` and its live descendants, plus what waited-for children used."""
    total = 0.0
    tck = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15]) / tck  # utime stime cutime cstime
        todo.extend(children.get(p, []))
    return total


def engine_pids(engine: Engine) -> list[int]:
    """The roots of the engine's process trees: dockyardd; containerd and dockerd."""
    if isinstance(engine, DockerDaemon):
        return [p.pid for p in engine._procs.values()]
    assert engine.pid is not None
    return [engine.pid]


def absent(engine: Engine, ref: str) -> bool:
    return subprocess.run(engine.cli_argv("image", "inspect", ref), capture_output=True, check=False,
                          env=engine.cli_env()).returncode != 0


def pull_once(engine: Engine, ref: str, image_id: str) -> dict[str, float]:
    """Time one `docker pull` of ``ref`` into an engine that does not have it; leave it absent again."""
    if not absent(engine, image_id):
        raise RuntimeError(f"{type(engine).__name__}: image still present before the pull")
    roots = engine_pids(engine)
    cpu0, t0 = sum(map(tree_cpu, roots)), time.perf_counter()
    out = cli(engine, "pull", ref, timeout=1800)
    wall, cpu = time.perf_counter() - t0, sum(map(tree_cpu, roots)) - cpu0
    if out.count("Pull complete") != LAYERS:
        raise RuntimeError(f"{type(engine).__name__}: pull did not unpack {LAYERS} layers:\n{out}")
    got = inspect(engine, ref)["Id"]  # type: ignore[arg-type]
    if got != image_id:
        raise RuntimeError(f"{type(engine).__name__}: pulled image id {got} != {image_id}")
    cli(engine, "rmi", ref)
    if not absent(engine, image_id):
        raise RuntimeError(f"{type(engine).__name__}: image still present after rmi")
    return {"pull": wall, "cpu": cpu}


def measure(args: argparse.Namespace) -> dict:
    work = tempfile.mkdtemp(prefix="dockyard-bench-pull-")
    reg = RegistryProcess("dockyard", os.path.join(work, "registry"))
    engines: dict[str, Engine] = {}
    res: dict = {"load_before": os.getloadavg()}
    try:
        reg.start()
        insecure = ("--insecure-registry", reg.host_port)
        dockerd = DockerDaemon(debug=False, extra_args=insecure)
        engines["dockerd"] = dockerd
        dockerd.start()
        engines["dockyardd"] = DockyardDaemon(extra_args=(*insecure, "--log-level", "info"))
        engines["dockyardd"].start()
        build_image(dockerd, work)
        image_id = inspect(dockerd, LOCAL)["Id"]
        ref = f"{reg.host_port}/{REPO_PATH}:latest"
        cli(dockerd, "tag", LOCAL, ref)
        cli(dockerd, "push", ref, timeout=1800)
        cli(dockerd, "rmi", LOCAL, ref)
        res["versions"] = {"dockerd": cli(dockerd, "version", "--format", "{{.Server.Version}}").strip()}
        rounds: dict[str, list[dict[str, float]]] = {k: [] for k in ENGINES}
        for i in range(args.rounds):
            for name in (ENGINES if i % 2 == 0 else ENGINES[::-1]):
                rounds[name].append(pull_once(engines[name], ref, image_id))
                print(f"round {i + 1} {name}: {rounds[name][-1]}", flush=True)
        res["rounds"] = rounds
        res["load_after"] = os.getloadavg()
        return res
    finally:
        try:
            for engine in engines.values():
                engine.stop()
        finally:
            reg.stop()
            shutil.rmtree(work, ignore_errors=True)


def report(res: dict, args: argparse.Namespace) -> str:
    med = statistics.median
    pull = {k: [r["pull"] for r in res["rounds"][k]] for k in ENGINES}
    cpu = {k: [r["cpu"] for r in res["rounds"][k]] for k in ENGINES}
    ratio = med(pull["dockyardd"]) / med(pull["dockerd"])
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    la0, la1 = res["load_before"], res["load_after"]
    each = " | ".join(", ".join(f"{v:.1f}" for v in pull[k]) + " s" for k in ENGINES)
    size_mb = LAYERS * 256 * 1.048576
    return "\n".join([
        f"### Pull + unpack: dockyardd vs dockerd {res['versions']['dockerd']} from dockyard-registry ({when})", "",
        (f"Machine: {_machine()}; load average {la0[0]:.2f}/{la0[1]:.2f}/{la0[2]:.2f} before, "
         f"{la1[0]:.2f}/{la1[1]:.2f}/{la1[2]:.2f} after."),
        (f"`docker pull` (CLI 28) of a {LAYERS}-layer image of about {size_mb:.0f} MB (random data, gzip "
         f"layers as dockerd pushed them) from one dockyard-registry on loopback; the engine has no copy "
         f"before each pull; {args.rounds} alternating rounds. Engine CPU = utime + stime of the daemon's "
         f"process tree during the pull."), "",
        "| measure | dockyardd | dockerd | ours / dockerd | target |",
        "|---|---|---|---|---|",
        f"| `docker pull`, median | {med(pull['dockyardd']):.1f} s | {med(pull['dockerd']):.1f} s | "
        f"**{ratio:.2f}x** | <= 0.7x |",
        f"| same, each round | {each} | | |",
        f"| engine CPU during the pull, median | {med(cpu['dockyardd']):.1f} s | {med(cpu['dockerd']):.1f} s | "
        f"{med(cpu['dockyardd']) / med(cpu['dockerd']):.2f}x | |",
        ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--record", action="store_true", help="append the result to docs/benchmarks.md")
    run_bench(parser, "pull", measure, report)


if __name__ == "__main__":
    main()
