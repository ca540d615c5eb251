"""dockyard-registry vs distribution 2.8 (Debian's docker-registry): push and pull of a >= 1 GiB image by dockerd.

Both registries run at once on their own loopback port and root (tests/support/registries.py), both
filesystem-backed; one real dockerd 20.10 (tests/support/dockerd.py, no host networking,
--insecure-registry for both) pushes and pulls. The image: busybox + 256 MiB of random data from
`docker import`, then 3 `docker run` + `docker commit` adding 256 MiB each: 4 layers, incompressible
(so gzip cannot shrink them); it is kept as a `docker save` tar under .cache/bench-registry/ between runs.
Each round, registries alternating:
1. the registry is restarted on the same port with an empty root (every layer really uploaded);
   `docker push` is timed; the output must name 4 pushed layers and a digest;
2. every local tag of the image is removed (`docker rmi`: its layers go too, checked), then
   `docker pull` is timed; the output must say "Pull complete" 4 times.
The registry's CPU seconds (utime + stime from /proc) are taken around each push and pull.
3. after the rounds, ``--pulls`` more alternating `docker pull`s from both (pull times vary a lot
   from one pull to the next: dockerd's unpacking dominates them);
4. then `curl -o /dev/null` of one 256 MiB layer blob from each registry, 1 warm-up
   (page cache warm) then ``--gets`` timed GETs alternating.

    python bench/registry.py [--rounds 3] [--pulls 4] [--gets 5] [--record]

--record appends the result to docs/benchmarks.md. Daemons and registries are stopped and their
directories removed on exit, also on failure.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "scripts"))

from engine import _machine, _pct, cli, run_bench

from tests.support.dockerd import DockerDaemon, _owned_by_root
from tests.support.registries import (
    DISTRIBUTION_BINARY,
    RegistryClient,
    RegistryProcess,
)

KINDS = ("dockyard", "distribution")
LABEL = {"dockyard": "dockyard-registry", "distribution": "distribution 2.8"}
LOCAL = "bench/registry-big:latest"
REPO_PATH = "bench/big"
LAYERS = 4
LAYER_BYTES = 256 << 20
CACHE = os.path.join(REPO, ".cache", "bench-registry")
SCHEMA2 = "application/vnd.docker.distribution.manifest.v2+json"


class BenchRegistry(RegistryProcess):
    """A RegistryProcess that can come back empty on the port it had (dockerd trusts that host:port)."""

    def restart_empty(self) -> None:
        self.stop()
        shutil.rmtree(self.storage, ignore_errors=True)
        os.makedirs(self.storage)
        if not self._launch(last=True):
            raise RuntimeError(f"{self.kind}: could not restart on {self.host_port}")

    def cpu_seconds(self) -> float:
        """utime + stime of the server process (dockyard: the Python process; distribution: the Go binary)."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the image -----------------------------------------------------------------------------------
def _random_file(path: str, size: int) -> None:
    with open("/dev/urandom", "rb") as src, open(path, "wb") as dst:
        left = size
        while left:
            chunk = src.read(min(left, 1 << 20))
            dst.write(chunk)
            left -= len(chunk)


def _first_layer(work: str) -> str:
    """A tar of the static-busybox rootfs plus /data/r0 (256 MiB random), root-owned."""
    from busybox_bundle import make_rootfs

    rootfs = os.path.join(work, "rootfs")
    make_rootfs(rootfs)
    os.makedirs(os.path.join(rootfs, "data"), exist_ok=True)
    _random_file(os.path.join(rootfs, "data", "r0"), LAYER_BYTES)
    path = os.path.join(work, "layer0.tar")
    with tarfile.open(path, "w") as tar:
        tar.add(rootfs, arcname=".", filter=_owned_by_root)
    shutil.rmtree(rootfs)
    return path


def build_image(daemon: DockerDaemon, work: str) -> None:
    """LOCAL: loaded from the cached `docker save` tar, else built (import + 3 commits) and cached."""
    cached = os.path.join(CACHE, "image.tar")
    if os.path.exists(cached):
        cli(daemon, "load", "-i", cached, timeout=600)
        if len(inspect(daemon, LOCAL)["RootFS"]["Layers"]) == LAYERS:
            return
    layer0 = _first_layer(work)
    names = ["bench/reg-0:latest"]
    with open(layer0, "rb") as f:
        cli(daemon, "import", "--change", 'CMD ["sh"]', "-", names[0], input=f.read(), timeout=600)
    os.unlink(layer0)
    for i in range(1, LAYERS):
        container = f"bench-reg-c{i}"
        cli(daemon, "run", "--name", container, "--network", "none", names[-1], "sh", "-c",
            f"head -c {LAYER_BYTES} /dev/urandom > /data/r{i}", timeout=600)
        names.append(LOCAL if i == LAYERS - 1 else f"bench/reg-{i}:latest")
        cli(daemon, "commit", container, names[-1], timeout=600)
        cli(daemon, "rm", container)
    cli(daemon, "rmi", *names[:-1])  # untag only: they are the parents of LOCAL
    os.makedirs(CACHE, exist_ok=True)
    cli(daemon, "save", "-o", cached + ".part", LOCAL, timeout=600)
    os.replace(cached + ".part", cached)


def inspect(daemon: DockerDaemon, ref: str) -> dict:
    return json.loads(cli(daemon, "image", "inspect", ref))[0]


# -- one round -----------------------------------------------------------------------------------
def timed(daemon: DockerDaemon, reg: BenchRegistry, *args: str) -> tuple[float, float, str]:
    """(wall seconds, registry CPU seconds, stdout) of one docker CLI command."""
    cpu0, t0 = reg.cpu_seconds(), time.perf_counter()
    out = cli(daemon, *args, timeout=1800)
    return time.perf_counter() - t0, reg.cpu_seconds() - cpu0, out


def round_trip(daemon: DockerDaemon, reg: BenchRegistry, image_id: str) -> dict[str, float]:
    """Push LOCAL to the emptied registry, forget it, pull it back (then LOCAL again names it)."""
    reg.restart_empty()
    ref = f"{reg.host_port}/{REPO_PATH}:latest"
    cli(daemon, "tag", LOCAL, ref)
    push_s, push_cpu, out = timed(daemon, reg, "push", ref)
    if out.count("Pushed") != LAYERS or not re.search(r"digest: sha256:[0-9a-f]{64}", out):
        raise RuntimeError(f"{reg.kind}: push did not upload {LAYERS} layers:\n{out}")
    cli(daemon, "rmi", LOCAL, ref)
    if subprocess.run(daemon.cli_argv("image", "inspect", image_id), capture_output=True, check=False,
                      env=daemon.cli_env()).returncode == 0:
        raise RuntimeError(f"{reg.kind}: image {image_id[:19]} still present after rmi")
    pull_s, pull_cpu, out = timed(daemon, reg, "pull", ref)
    if out.count("Pull complete") != LAYERS:
        raise RuntimeError(f"{reg.kind}: pull did not download {LAYERS} layers:\n{out}")
    if inspect(daemon, ref)["Id"] != image_id:
        raise RuntimeError(f"{reg.kind}: pulled image has another id")
    cli(daemon, "tag", ref, LOCAL)
    cli(daemon, "rmi", ref)
    return {"push": push_s, "push_cpu": push_cpu, "pull": pull_s, "pull_cpu": pull_cpu}


def extra_pulls(daemon: DockerDaemon, regs: dict[str, BenchRegistry], image_id: str, n: int) -> dict[str, list[float]]:
    """``n`` more alternating `docker pull`s from each registry as the rounds left it (pull noise is high)."""
    times: dict[str, list[float]] = {k: [] for k in KINDS}
    cli(daemon, "rmi", LOCAL)
    for i in range(n):
        for kind in order(i):
            ref = f"{regs[kind].host_port}/{REPO_PATH}:latest"
            t0 = time.perf_counter()
            out = cli(daemon, "pull", ref, timeout=1800)
            times[kind].append(time.perf_counter() - t0)
            if out.count("Pull complete") != LAYERS or inspect(daemon, ref)["Id"] != image_id:
                raise RuntimeError(f"{kind}: extra pull did not download the image:\n{out}")
            cli(daemon, "rmi", ref)
            print(f"pull {i + 1} {kind}: {times[kind][-1]:.2f} s", flush=True)
    return times


def pushed_size(reg: BenchRegistry) -> tuple[int, str, int]:
    """(bytes of config + layers as pushed, digest and size of the largest layer) from the manifest."""
    got = RegistryClient(reg.host_port).request("GET", f"/v2/{REPO_PATH}/manifests/latest",
                                                 headers={"Accept": SCHEMA2})
    manifest = got.json()
    layers = manifest["layers"]
    biggest = max(layers, key=lambda d: d["size"])
    return manifest["config"]["size"] + sum(d["size"] for d in layers), biggest["digest"], biggest["size"]


def curl_get(reg: BenchRegistry, digest: str, size: int) -> float:
    """Seconds of one `curl -o /dev/null` GET of the blob (curl's time_total)."""
    out = subprocess.run(["curl", "-sS", "-f", "-o", "/dev/null", "-w", "%{time_total} %{size_download}",
                          f"{reg.url}/v2/{REPO_PATH}/blobs/{digest}"],
                         capture_output=True, text=True, check=True, timeout=120).stdout.split()
    if int(out[1]) != size:
        raise RuntimeError(f"{reg.kind}: GET returned {out[1]} bytes, expected {size}")
    return float(out[0])


# -- the measurement -----------------------------------------------------------------------------
def order(i: int) -> tuple[str, ...]:
    return KINDS if i % 2 == 0 else KINDS[::-1]


def measure(args: argparse.Namespace) -> dict:
    work = tempfile.mkdtemp(prefix="dockyard-bench-registry-")
    regs = {k: BenchRegistry(k, os.path.join(work, k)) for k in KINDS}
    daemon: DockerDaemon | None = None
    res: dict = {"load_before": os.getloadavg()}
    try:
        for reg in regs.values():
            reg.start()
        insecure = tuple(a for r in regs.values() for a in ("--insecure-registry", r.host_port))
        daemon = DockerDaemon(debug=False, extra_args=insecure)
        daemon.start()
        t0 = time.perf_counter()
        build_image(daemon, work)
        res["prepare_s"] = time.perf_counter() - t0
        image_id = inspect(daemon, LOCAL)["Id"]
        res["versions"] = {"dockerd": cli(daemon, "version", "--format", "{{.Server.Version}}").strip()}
        rounds: dict[str, list[dict[str, float]]] = {k: [] for k in KINDS}
        for i in range(args.rounds):
            for kind in order(i):
                rounds[kind].append(round_trip(daemon, regs[kind], image_id))
                print(f"round {i + 1} {kind}: {rounds[kind][-1]}", flush=True)
        res["rounds"] = rounds
        res["pulls"] = extra_pulls(daemon, regs, image_id, args.pulls)
        res["load_mid"] = os.getloadavg()
        sizes = {k: pushed_size(regs[k]) for k in KINDS}
        res["bytes"] = {k: s[0] for k, s in sizes.items()}
        res["blob_size"] = sizes["dockyard"][2]
        gets: dict[str, list[float]] = {k: [] for k in KINDS}
        for kind in KINDS:
            curl_get(regs[kind], sizes[kind][1], sizes[kind][2])  # warm the page cache
        for i in range(args.gets):
            for kind in order(i):
                gets[kind].append(curl_get(regs[kind], sizes[kind][1], sizes[kind][2]))
        res["gets"] = gets
        return res
    finally:
        try:
            if daemon is not None:
                daemon.stop()
        finally:
            for reg in regs.values():
                reg.stop()
            shutil.rmtree(work, ignore_errors=True)


# -- the report ----------------------------------------------------------------------------------
def _row(label: str, x: dict[str, float], fmt: str, target: str = "", bold: bool = False) -> str:
    """Both registries' values in ``fmt`` and the ratio ours / distribution."""
    r = f"{x['dockyard'] / x['distribution']:.2f}x" if x["distribution"] else ""
    r = f"**{r}**" if bold and r else r
    return f"| {label} | {fmt.format(x['dockyard'])} | {fmt.format(x['distribution'])} | {r} | {target} |"


def report(res: dict, args: argparse.Namespace) -> str:
    med = statistics.median

    def col(field: str) -> dict[str, list[float]]:
        return {k: [r[field] for r in res["rounds"][k]] for k in KINDS}

    def each(values: dict[str, list[float]]) -> str:
        return " | ".join(", ".join(f"{v:.1f}" for v in values[k]) + " s" for k in KINDS)

    push, pull, gets, xp = col("push"), col("pull"), res["gets"], res["pulls"]
    mb = {k: res["bytes"][k] / 1e6 for k in KINDS}
    blob_mb = res["blob_size"] / 1e6
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    la0, la1 = res["load_before"], res["load_mid"]
    dist = subprocess.run([DISTRIBUTION_BINARY, "--version"], capture_output=True, text=True,
                          check=False).stdout.split()[-1]
    return "\n".join([
        f"### Registry: dockyard-registry vs distribution {dist}, pushed and pulled by dockerd ({when})", "",
        (f"Machine: {_machine()}; load average {la0[0]:.2f}/{la0[1]:.2f}/{la0[2]:.2f} before, "
         f"{la1[0]:.2f}/{la1[1]:.2f}/{la1[2]:.2f} after the rounds (CPU shared with other jobs)."),
        (f"dockerd {res['versions']['dockerd']} (overlay2, no host networking, --insecure-registry) pushes "
         f"and pulls a {LAYERS}-layer image of {mb['dockyard']:.0f} MB (random data: gzip cannot shrink it) "
         f"over loopback; both registries filesystem-backed, each emptied and restarted before its push. "
         f"{args.rounds} alternating rounds; MB/s = pushed bytes / wall time of the CLI command. "
         f"Registry CPU = utime + stime of the server process during the command."), "",
        "| measure | dockyard-registry | distribution 2.8 | ours / distribution | target |",
        "|---|---|---|---|---|",
        _row("`docker push`, median", {k: med(push[k]) for k in KINDS}, "{:.1f} s"),
        _row("same, throughput", {k: mb[k] / med(push[k]) for k in KINDS}, "{:.0f} MB/s", ">= 1.0x", bold=True),
        f"| same, each round | {each(push)} | | |",
        _row("registry CPU during the push, median", {k: med(col("push_cpu")[k]) for k in KINDS}, "{:.1f} s"),
        _row("`docker pull` (after `docker rmi`), median", {k: med(pull[k]) for k in KINDS}, "{:.1f} s"),
        _row("same, throughput", {k: mb[k] / med(pull[k]) for k in KINDS}, "{:.0f} MB/s", ">= 1.0x", bold=True),
        f"| same, each round | {each(pull)} | | |",
        _row("registry CPU during the pull, median", {k: med(col("pull_cpu")[k]) for k in KINDS}, "{:.1f} s"),
        *([_row(f"`docker pull`, {args.pulls} more alternating pulls, median", {k: med(xp[k]) for k in KINDS},
                "{:.1f} s"),
           _row("same, throughput", {k: mb[k] / med(xp[k]) for k in KINDS}, "{:.0f} MB/s", ">= 1.0x", bold=True),
           f"| same, each pull | {each(xp)} | | |"] if args.pulls else []),
        _row(f"curl GET of a {blob_mb:.0f} MB blob, page cache warm, median of {args.gets}",
             {k: med(gets[k]) * 1e3 for k in KINDS}, "{:.0f} ms"),
        _row("same, p90", {k: _pct(gets[k], 90) * 1e3 for k in KINDS}, "{:.0f} ms"),
        _row("same, throughput", {k: blob_mb / med(gets[k]) for k in KINDS}, "{:.0f} MB/s", ">= 1.0x"),
        ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--gets", type=int, default=5)
    parser.add_argument("--pulls", type=int, default=4, help="extra pull-only rounds after the round trips")
    parser.add_argument("--record", action="store_true", help="append the result to docs/benchmarks.md")
    run_bench(parser, "registry", measure, report)


if __name__ == "__main__":
    main()
