"""Start time of `dockyard-runtime run` vs `runc run` on the same busybox bundle running `true`.

Alternates the runtimes run by run (so load drifts hit both alike), reports
medians and the ratio ours/runc, with a pause before each run (see GAP). State
roots live under /run (a tmpfs in real use; on some machines, this VM included,
not). Peak RSS is GNU time's %M for the runtime process (measured in separate
runs: a child forked from this Python process would count its parent's pages).
crun is measured too when it works on this host, for reference.

    python bench/runtime_start.py [--runs N] [--record]

--record appends the result to docs/benchmarks.md with the date and machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "scripts"))

from busybox_bundle import make_bundle  # noqa: E402


# Pause before each run: a cgroup move is slow when no other move happened within an RCU grace
# period, fast otherwise; without a pause, each run would inherit the previous run's warm state.
GAP = 0.2


def runtimes() -> dict[str, list[str]]:
    ours = os.path.join(os.path.dirname(sys.executable), "dockyard-runtime")
    found = {"dockyard-runtime": [ours], "runc": [shutil.which("runc") or "runc"]}
    if shutil.which("crun"):
        found["crun"] = [shutil.which("crun")]
    return found


def _set_oci_version(bundle: str, version: str) -> None:
    import json

    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        spec = json.load(f)
    spec["ociVersion"] = version
    with open(path, "w") as f:
        json.dump(spec, f)


def one_run(argv: list[str], root: str, bundle: str, cid: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv + ["--root", root, "run", "--bundle", bundle, cid],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {proc.stderr.decode().strip()}")
    return elapsed


def peak_rss_kb(argv: list[str], root: str, bundle: str, cid: str) -> int:
    proc = subprocess.run(["/usr/bin/time", "-f", "%M"] + argv + ["--root", root, "run", "--bundle", bundle, cid],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return int(proc.stderr.strip().splitlines()[-1])


def measure(runs: int) -> dict[str, dict]:
    work = tempfile.mkdtemp(prefix="dockyard-bench-")
    roots = tempfile.mkdtemp(prefix="dockyard-bench-", dir="/run")
    try:
        bundle = make_bundle(os.path.join(work, "bundle"), ["true"])
        _set_oci_version(bundle, "1.0.2")  # crun 1.8 refuses newer spec versions; runc and ours take both
        found = runtimes()
        times: dict[str, list[float]] = {k: [] for k in found}
        rss: dict[str, list[int]] = {k: [] for k in found}
        for name, argv in list(found.items()):  # warm caches once each, untimed
            try:
                one_run(argv, os.path.join(roots, name), bundle, "warmup")
            except RuntimeError as e:
                if name != "crun":
                    raise
                print(f"crun left out: {e}", file=sys.stderr)  # reference only (e.g. hybrid cgroups)
                del found[name], times[name], rss[name]
        for i in range(runs):
            order = list(found.items()) if i % 2 == 0 else list(reversed(found.items()))
            for name, argv in order:
                time.sleep(GAP)
                times[name].append(one_run(argv, os.path.join(roots, name), bundle, f"b{i}"))
        for name, argv in found.items():
            rss[name] = [peak_rss_kb(argv, os.path.join(roots, name), bundle, f"rss{i}") for i in range(5)]
        return {name: {"median_ms": statistics.median(times[name]) * 1000,
                       "p10_ms": sorted(times[name])[len(times[name]) // 10] * 1000,
                       "p90_ms": sorted(times[name])[(len(times[name]) * 9) // 10] * 1000,
                       "peak_rss_kb": max(rss[name])} for name in found}
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(roots, ignore_errors=True)


def report(results: dict[str, dict], runs: int) -> str:
    ours, runc = results["dockyard-runtime"]["median_ms"], results["runc"]["median_ms"]
    lines = [
        f"### Runtime start: `run` of `true` in a busybox bundle ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        f"Machine: {platform.node()}, {os.cpu_count()} cores, {platform.machine()}, kernel {platform.release()}, "
        f"Python {platform.python_version()}; {runs} alternating runs each.",
        "",
        "| runtime | median | p10 | p90 | peak RSS (max of 5) |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(f"| {name} | {r['median_ms']:.1f} ms | {r['p10_ms']:.1f} ms | {r['p90_ms']:.1f} ms | "
                     f"{r['peak_rss_kb'] / 1024:.1f} MiB |")
    lines += ["", f"Ratio dockyard-runtime / runc (medians): **{ours / runc:.2f}x** (target <= 0.80x)", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--record", action="store_true", help="append the result to docs/benchmarks.md")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("the runtime benchmark needs root")
    text = report(measure(args.runs), args.runs)
    print(text)
    if args.record:
        with open(os.path.join(HERE, "..", "docs", "benchmarks.md"), "a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
