"""dockyardd (our Docker engine) vs the real dockerd 20.10 + containerd, driven by the same docker CLI 28.

Both engines run privately in temp dirs (tests/support/dockyardd.py, dockerd.py) at log level info, each
with busybox from `docker import` of a static-busybox rootfs (as DockerDaemon.load_busybox) and the same
OCI runtime, passed to every `docker run` (``--runtime``: runc, or dockyard = dockyard-runtime). Measured:
1. `docker run --rm busybox true`: CLI wall time, engines alternating run by run after 2 untimed warm-ups,
   a pause (GAP) before each run; median, p90, ratio ours/dockerd; `docker version` as the CLI floor.
2. Engine RSS: VmRSS of the engine's process tree (dockyardd; dockerd + containerd) after start + import
   + 4 queries + the warm-ups, again after all runs and after the bursts.
3. Per-container overhead: VmRSS (and PSS) of one `sleep 1000` container's shim: our
   dockyard.supervisor.shim vs containerd-shim-runc-v2.
4. Burst: ``--burst`` CLIs `docker run -d busybox sleep 300` at once (thread pool): seconds until all
   returned and `docker ps` lists them running (sleep 300, not 60, so a slow burst never sees its first
   containers exit); then one `docker rm -f` of them all, timed, failures counted and retried.

    python bench/engine.py [--runs 15] [--burst 50] [--burst-rounds 2] [--runtime runc|dockyard] [--record]

--record appends the result to docs/benchmarks.md (date, machine, load average). Daemons, containers,
mounts and cgroups are removed on exit, also on failure.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import io
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "scripts"))

from tests.support import hostclean  # noqa: E402
from tests.support.dockerd import DockerDaemon, _owned_by_root, find_runtime_binary  # noqa: E402
from tests.support.dockyardd import DockyardDaemon  # noqa: E402

GAP = 0.2  # pause before each timed run: no run inherits the previous one's warm state (see runtime_start.py)
IMAGE = "busybox:latest"
ENGINES = ("dockyardd", "dockerd")
Daemon = DockerDaemon | DockyardDaemon


class QuietDockyardDaemon(DockyardDaemon):
    """DockyardDaemon at log level info, like dockerd without --debug: no debug logging cost in the timings."""

    def argv(self) -> list[str]:
        argv = super().argv()
        i = argv.index("--log-level")
        return argv[:i + 1] + ["info"] + argv[i + 2:]


# -- processes -----------------------------------------------------------------------------------
def _kb(path: str, field: str) -> int:
    """A ``kB`` line of a /proc file (status: VmRSS, VmHWM; smaps_rollup: Pss); 0 if the process is gone."""
    try:
        with open(path) as f:
            return next((int(line.split()[1]) for line in f if line.startswith(field + ":")), 0)
    except OSError:
        return 0


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def all_pids() -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit()]


def ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rpartition(")")[2].split()[1])
    except (OSError, IndexError):
        return 0


def tree(roots: list[int]) -> list[int]:
    """``roots`` and all their descendants (shims reparent to init, so they are not counted)."""
    children: dict[int, list[int]] = {}
    for pid in all_pids():
        children.setdefault(ppid(pid), []).append(pid)
    found = list(roots)
    for pid in found:  # grows while walked: breadth first
        found.extend(children.get(pid, []))
    return found


def find_pids(match: Callable[[list[str]], bool]) -> list[int]:
    return [pid for pid in all_pids() if pid != os.getpid() and match(cmdline(pid))]


def engine_pids(who: str, daemon: Daemon) -> dict[str, int]:
    """The engine's daemon processes by name: ``name`` as argv[0] (or argv[1], after python) + its base dir."""
    found = {}
    for name in ("dockyardd",) if who == "dockyardd" else ("dockerd", "containerd"):
        pids = find_pids(lambda argv: any(os.path.basename(a) == name for a in argv[:2])  # noqa: B023
                         and any(daemon.base in a for a in argv))
        if len(pids) != 1:
            raise RuntimeError(f"{who}: expected one {name} process, found {pids}")
        found[name] = pids[0]
    if who == "dockyardd":  # the shim dockyardd keeps started ahead is part of its idle cost
        warm = [p for p in find_pids(lambda argv: "--wait-for-bundle" in argv and any(daemon.base in a for a in argv))
                if not tree([p])[1:]]
        if warm:
            found["warm shim"] = warm[0]
    return found


def shim_pid(who: str, daemon: Daemon, cid: str) -> int:
    """The shim of container ``cid`` (ours or containerd-shim-runc-v2): the parent of its init.

    Both shims are child subreapers, so the container's init is reparented to its shim; this also
    finds our shims that were started warm (their command line names no bundle).
    """
    pid = int(cli(daemon, "inspect", "-f", "{{.State.Pid}}", cid).strip())
    parent = _kb(f"/proc/{pid}/status", "PPid")
    argv = cmdline(parent)
    ok = any("dockyard.supervisor.shim" in a for a in argv) if who == "dockyardd" else \
        bool(argv) and os.path.basename(argv[0]) == "containerd-shim-runc-v2"
    if not ok:
        raise RuntimeError(f"{who}: the parent of {cid[:12]}'s init is not its shim: {argv}")
    return parent


# -- the docker CLI ------------------------------------------------------------------------------
def cli(daemon: Daemon, *args: str, input: bytes | None = None, timeout: float = 120.0) -> str:
    """Run the docker CLI against ``daemon``; its stdout, or RuntimeError with stderr."""
    proc = subprocess.run(daemon.cli_argv(*args), input=input, capture_output=True, env=daemon.cli_env(),
                          stdin=subprocess.DEVNULL if input is None else None, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:4])} failed ({proc.returncode}): {proc.stderr.decode().strip()}")
    return proc.stdout.decode()


def busybox_layer(work: str) -> bytes:
    """The static-busybox rootfs as a root-owned tar (what DockerDaemon.load_busybox imports)."""
    from busybox_bundle import make_rootfs

    rootfs = os.path.join(work, "busybox-rootfs")
    make_rootfs(rootfs)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(rootfs, arcname=".", filter=_owned_by_root)
    shutil.rmtree(rootfs)
    return buf.getvalue()


def time_cli(daemon: Daemon, *args: str) -> float:
    """Wall time of one CLI command (`docker version`: the floor under any `docker run`)."""
    start = time.perf_counter()
    cli(daemon, *args)
    return time.perf_counter() - start


def rss_of_engine(who: str, daemon: Daemon) -> dict[str, int]:
    """VmRSS (kB) per daemon process, children included (none when idle)."""
    return {name: sum(_kb(f"/proc/{p}/status", "VmRSS") for p in tree([pid])) for name, pid in engine_pids(who, daemon).items()}


def shim_overhead(who: str, daemon: Daemon, runtime: str) -> dict[str, int]:
    """RSS and PSS (kB) of one `sleep 1000` container's shim, 1 s after start; the container is removed."""
    cid = cli(daemon, "run", "-d", "--runtime", runtime, IMAGE, "sleep", "1000").strip()
    try:
        time.sleep(1.0)
        pid = shim_pid(who, daemon, cid)
        return {"rss": _kb(f"/proc/{pid}/status", "VmRSS"), "pss": _kb(f"/proc/{pid}/smaps_rollup", "Pss")}
    finally:
        cli(daemon, "rm", "-f", cid)


def burst(daemon: Daemon, runtime: str, n: int, tag: str) -> dict[str, float]:
    """Start ``n`` detached containers at once: seconds until all run; then `docker rm -f` of all of them."""
    label = f"dockyard-bench={tag}"

    def one(i: int) -> str:
        return cli(daemon, "run", "-d", "--label", label, "--runtime", runtime, IMAGE, "sleep", "300",
                   timeout=600).strip()

    try:
        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
            ids = list(pool.map(one, range(n)))
        while len(cli(daemon, "ps", "-q", "--filter", f"label={label}", "--filter", "status=running").split()) < n:
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
        if len(set(ids)) != n:
            raise RuntimeError(f"burst: {len(set(ids))} distinct ids for {n} runs")
    except BaseException:
        remove_all(daemon, ("--filter", f"label={label}"), strict=False)
        raise
    rm_s, rm_errors = remove_all(daemon, ("--filter", f"label={label}"))
    return {"start": elapsed, "rm": rm_s, "rm_errors": rm_errors}


def remove_all(daemon: Daemon, filters: tuple[str, ...] = (), strict: bool = True) -> tuple[float, int]:
    """`docker rm -f` of every (matching) container in one CLI, retried twice for the ones that failed.

    Returns the first attempt's seconds and how many containers it failed on; RuntimeError (if strict)
    when containers are still there after the retries.
    """
    first, errors = 0.0, 0
    for attempt in range(3):
        left = cli(daemon, "ps", "-aq", *filters).split()
        if not left:
            return first, errors
        start = time.perf_counter()
        proc = subprocess.run(daemon.cli_argv("rm", "-f", *left), capture_output=True, env=daemon.cli_env(),
                              stdin=subprocess.DEVNULL, timeout=600)
        if attempt == 0:
            first, errors = time.perf_counter() - start, proc.stderr.decode().count("Error response")
            if errors:
                print(f"docker rm -f: {errors} of {len(left)} failed: {proc.stderr.decode()[:300]}", file=sys.stderr)
        time.sleep(1.0 * attempt)
    if strict and cli(daemon, "ps", "-aq", *filters).split():
        raise RuntimeError("docker rm -f left containers after 3 attempts")
    return first, errors


# -- the measurement -----------------------------------------------------------------------------
def make_daemons(runtime: str) -> dict[str, Daemon]:
    extra = {"dockyard": find_runtime_binary()} if runtime == "dockyard" else {}
    return {"dockyardd": QuietDockyardDaemon(), "dockerd": DockerDaemon(runtimes=extra, debug=False)}


def stop_all(daemons: dict[str, Daemon]) -> None:
    """Remove containers, stop every daemon; sweep what a failed stop left (processes, mounts, cgroups)."""
    errors = []
    for who, daemon in daemons.items():
        try:
            if daemon.ping():
                remove_all(daemon, strict=False)
        except Exception as e:  # noqa: BLE001 - stop every daemon, then report
            errors.append(f"{who}: rm -f: {e}")
        try:
            daemon.stop()
        except Exception as e:  # noqa: BLE001
            errors.append(f"{who}: {str(e)[:300]}")
            hostclean.kill_everything(daemon.name, None, needle=daemon.base)
            hostclean.remove_tree(daemon.base)
            hostclean.remove_cgroups(daemon.name)
    if errors:
        raise RuntimeError("cleanup: " + "; ".join(errors))


def order(i: int) -> tuple[str, ...]:
    return ENGINES if i % 2 == 0 else ENGINES[::-1]


def measure(args: argparse.Namespace) -> dict:
    work = tempfile.mkdtemp(prefix="dockyard-bench-engine-")
    daemons = make_daemons(args.runtime)
    res: dict = {"load_before": os.getloadavg()}
    try:
        layer = busybox_layer(work)
        for who, daemon in daemons.items():
            daemon.start()
            cli(daemon, "import", "--change", 'CMD ["sh"]', "-", IMAGE, input=layer)
            for cmd in (("version",), ("ps", "-a"), ("images",)):
                cli(daemon, *cmd)
        res["versions"] = {who: cli(d, "version", "--format", "{{.Server.Version}}").strip()
                           for who, d in daemons.items()}
        run_true = ("run", "--rm", "--runtime", args.runtime, IMAGE, "true")
        for i in range(2):  # warm-ups, untimed
            for who in order(i):
                time_cli(daemons[who], *run_true)
        time.sleep(1.0)
        res["idle_rss"] = {who: rss_of_engine(who, d) for who, d in daemons.items()}
        times: dict[str, list[float]] = {who: [] for who in ENGINES}
        floor: dict[str, list[float]] = {who: [] for who in ENGINES}
        for i in range(args.runs):
            for who in order(i):
                time.sleep(GAP)
                times[who].append(time_cli(daemons[who], *run_true))
                time.sleep(GAP)
                floor[who].append(time_cli(daemons[who], "version"))
        res["times"], res["floor"] = times, floor
        time.sleep(1.0)
        res["after_rss"] = {who: rss_of_engine(who, d) for who, d in daemons.items()}
        res["load_mid"] = os.getloadavg()
        res["shim"] = {who: shim_overhead(who, d, args.runtime) for who, d in daemons.items()}
        bursts: dict[str, list[dict[str, float]]] = {who: [] for who in ENGINES}
        for i in range(args.burst_rounds):
            for who in order(i):
                bursts[who].append(burst(daemons[who], args.runtime, args.burst, f"r{i}"))
                print(f"burst {i + 1} {who}: {bursts[who][-1]}", flush=True)
        res["bursts"] = bursts
        time.sleep(1.0)
        res["burst_rss"] = {who: rss_of_engine(who, d) for who, d in daemons.items()}
        return res
    finally:
        try:
            stop_all(daemons)
        finally:
            shutil.rmtree(work, ignore_errors=True)


# -- the report ----------------------------------------------------------------------------------
def _pct(values: list[float], q: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, (len(ordered) * q) // 100)]


def _mib(kb: float) -> str:
    return f"{kb / 1024:.1f} MiB"


def _machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    return (f"{platform.node() or 'vm'}, {os.cpu_count()} cores, {platform.machine()}, {mem:.0f} GiB RAM, "
            f"kernel {platform.release()}, Python {platform.python_version()}")


def _rss_cell(parts: dict[str, int]) -> str:
    total = _mib(sum(parts.values()))
    return total if len(parts) == 1 else f"{total} ({' + '.join(f'{k} {_mib(v)}' for k, v in parts.items())})"


def _row(label: str, x: dict[str, float], fmt: str, target: str = "", ratio: bool = True, bold: bool = False) -> str:
    """One table row: both engines' values in ``fmt`` and the ratio ours/dockerd."""
    r = f"{x['dockyardd'] / x['dockerd']:.2f}x" if ratio and x["dockerd"] else ""
    r = f"**{r}**" if bold and r else r
    return f"| {label} | {fmt.format(x['dockyardd'])} | {fmt.format(x['dockerd'])} | {r} | {target} |"


def report(res: dict, args: argparse.Namespace) -> str:
    def col(key: str, field: str) -> dict[str, list[float]]:
        return {w: [r[field] for r in res[key][w]] for w in ENGINES}

    def rss(key: str) -> str:
        return " | ".join(_rss_cell(res[key][w]) for w in ENGINES)

    med = statistics.median
    ms = "{:.0f} ms"
    starts, rms, errs = col("bursts", "start"), col("bursts", "rm"), col("bursts", "rm_errors")
    idle = {w: sum(res["idle_rss"][w].values()) for w in ENGINES}
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    runtime = "runc" if args.runtime == "runc" else "dockyard-runtime"
    la0, la1, v = res["load_before"], res["load_mid"], res["versions"]
    return "\n".join([
        f"### Engine: dockyardd vs dockerd, docker CLI 28, runtime {runtime} ({when})", "",
        f"Machine: {_machine()}; load average {la0[0]:.2f}/{la0[1]:.2f}/{la0[2]:.2f} before, "
        f"{la1[0]:.2f}/{la1[1]:.2f}/{la1[2]:.2f} after the runs (CPU shared with other jobs).",
        f"dockyardd {v['dockyardd']} vs dockerd {v['dockerd']} + containerd (overlay2, no bridge/iptables); both at "
        f"log level info, `--runtime {args.runtime}` on every run, busybox from `docker import` on each. "
        f"{args.runs} alternating runs each after 2 warm-ups; {args.burst_rounds} alternating burst rounds.", "",
        "| measure | dockyardd | dockerd | ours / dockerd | target |", "|---|---|---|---|---|",
        _row("`docker run --rm busybox true` median", {w: med(res["times"][w]) * 1e3 for w in ENGINES}, ms,
             "<= 0.33x", bold=True),
        _row("same, p90", {w: _pct(res["times"][w], 90) * 1e3 for w in ENGINES}, ms),
        _row("`docker version` median (CLI floor)", {w: med(res["floor"][w]) * 1e3 for w in ENGINES}, ms),
        _row("engine RSS after start, import, 4 queries, 2 runs", {w: idle[w] / 1024 for w in ENGINES},
             "{:.1f} MiB", "<= 60 MiB"),
        f"| same, per process | {rss('idle_rss')} | | |",
        f"| engine RSS after all {args.runs + 2} runs | {rss('after_rss')} | | |",
        f"| engine RSS after the bursts | {rss('burst_rss')} | | |",
        _row("shim RSS, one `sleep 1000` container", {w: res["shim"][w]["rss"] / 1024 for w in ENGINES},
             "{:.1f} MiB", "<= 10 MiB"),
        _row("same, PSS", {w: res["shim"][w]["pss"] / 1024 for w in ENGINES}, "{:.1f} MiB"),
        _row(f"{args.burst} concurrent `docker run -d busybox sleep 300` until all running, median",
             {w: med(starts[w]) for w in ENGINES}, "{:.2f} s", bold=True),
        f"| same, each round | {' | '.join(', '.join(f'{x:.2f}' for x in starts[w]) + ' s' for w in ENGINES)} | | |",
        _row(f"then one `docker rm -f` of all {args.burst}, median", {w: med(rms[w]) for w in ENGINES}, "{:.2f} s"),
        _row("containers `rm -f` failed on (retried), all rounds", {w: sum(errs[w]) for w in ENGINES}, "{:.0f}",
             "0", ratio=False),
        ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--burst-rounds", type=int, default=2)
    parser.add_argument("--runtime", choices=("runc", "dockyard"), default="runc")
    parser.add_argument("--record", action="store_true", help="append the result to docs/benchmarks.md")
    run_bench(parser, "engine", measure, report)


def run_bench(parser: argparse.ArgumentParser, what: str, measure: Callable[[argparse.Namespace], Any],
              report: Callable[[Any, argparse.Namespace], str]) -> None:
    """Parse, measure, print; with --record append the report to docs/benchmarks.md."""
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit(f"the {what} benchmark needs root")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: the finally blocks stop the daemons
    text = report(measure(args), args)
    print(text)
    if args.record:
        with open(os.path.join(REPO, "docs", "benchmarks.md"), "a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
