"""dockyardd (our Docker engine) vs the real dockerd 20.10 + containerd, driven by the same docker CLI.

Both engines run privately in this process's temp dirs (tests/support/dockyardd.py and dockerd.py),
at the same log level (info), each with the same busybox image (`docker import` of a static-busybox
rootfs, CMD ["sh"], as DockerDaemon.load_busybox does), and the same OCI runtime (``--runtime``,
passed explicitly to every `docker run`: runc by default, or `dockyard` = dockyard-runtime). Measured:

1. `docker run --rm busybox true`: wall time of the CLI, alternating engines run by run after 2
   untimed warm-ups each, with a pause before each run (GAP); median and p90, ratio ours/dockerd.
2. Engine idle RSS: sum of VmRSS of the engine's process tree (dockyardd; dockerd + containerd)
   right after start + image import + version/ps/images + the warm-ups, again after all runs and
   after the bursts. `docker version` is timed too: the CLI floor under any `docker run`.
3. Per-container overhead: VmRSS (and PSS) of the shim of one `sleep 1000` container:
   `python -m dockyard.supervisor.shim` vs containerd-shim-runc-v2.
4. Burst: ``--burst`` `docker run -d busybox sleep 300` CLIs started at once from a thread pool;
   wall time until every CLI returned and `docker ps` lists them all running; then `docker rm -f`.
   (sleep 300, not 60: a slow burst must not see its first containers exit before the last start.)

    python bench/engine.py [--runs 15] [--burst 50] [--burst-rounds 2] [--runtime runc|dockyard] [--record]

``--record`` appends the result to docs/benchmarks.md with the date, machine and load average.
Everything started (daemons, containers, mounts, cgroups) is removed on exit, also on failure.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import io
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable

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


def rss_kb(pid: int) -> int:
    return _kb(f"/proc/{pid}/status", "VmRSS")


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
    found, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def find_pids(match: Callable[[list[str]], bool]) -> list[int]:
    return [pid for pid in all_pids() if pid != os.getpid() and match(cmdline(pid))]


def _is_daemon(name: str, base: str) -> Callable[[list[str]], bool]:
    """Matches ``name`` (as argv[0], or argv[1] after an interpreter) with ``base`` in its arguments."""
    def match(argv: list[str]) -> bool:
        return any(os.path.basename(a) == name for a in argv[:2]) and any(base in a for a in argv)
    return match


def engine_pids(who: str, daemon: Daemon) -> dict[str, int]:
    """The engine's daemon processes by name (found by command line: the daemon's own base dir)."""
    names = ("dockyardd",) if who == "dockyardd" else ("dockerd", "containerd")
    found = {}
    for name in names:
        pids = find_pids(_is_daemon(name, daemon.base))
        if len(pids) != 1:
            raise RuntimeError(f"{who}: expected one {name} process, found {pids}")
        found[name] = pids[0]
    return found


def shim_pid(who: str, daemon: Daemon, cid: str) -> int:
    """The shim process of container ``cid``: ours (dockyard.supervisor.shim) or containerd-shim-runc-v2."""
    def ours(argv: list[str]) -> bool:
        return any("dockyard.supervisor.shim" in a for a in argv) and any(a.endswith("/" + cid) for a in argv)

    def theirs(argv: list[str]) -> bool:
        return bool(argv) and os.path.basename(argv[0]) == "containerd-shim-runc-v2" and cid in argv \
            and any(daemon.base in a for a in argv)

    pids = find_pids(ours if who == "dockyardd" else theirs)
    if len(pids) != 1:
        raise RuntimeError(f"{who}: expected one shim for {cid[:12]}, found {pids}")
    return pids[0]


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


def time_run_true(daemon: Daemon, runtime: str) -> float:
    argv = daemon.cli_argv("run", "--rm", "--runtime", runtime, IMAGE, "true")
    start = time.perf_counter()
    proc = subprocess.run(argv, env=daemon.cli_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, timeout=120)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"docker run --rm true failed: {proc.stderr.decode().strip()}")
    return elapsed


def time_cli(daemon: Daemon, *args: str) -> float:
    """Wall time of one CLI command (the floor of any `docker run`: Go start-up + API round trips)."""
    start = time.perf_counter()
    cli(daemon, *args)
    return time.perf_counter() - start


def rss_of_engine(who: str, daemon: Daemon) -> dict[str, int]:
    """VmRSS (kB) per daemon process, children included (none when idle)."""
    return {name: sum(rss_kb(p) for p in tree([pid])) for name, pid in engine_pids(who, daemon).items()}


def shim_overhead(who: str, daemon: Daemon, runtime: str) -> dict[str, int]:
    """RSS and PSS (kB) of one `sleep 1000` container's shim, 1 s after start; the container is removed."""
    cid = cli(daemon, "run", "-d", "--runtime", runtime, IMAGE, "sleep", "1000").strip()
    try:
        time.sleep(1.0)
        pid = shim_pid(who, daemon, cid)
        return {"rss": rss_kb(pid), "pss": _kb(f"/proc/{pid}/smaps_rollup", "Pss")}
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
        for i in range(2):  # warm-ups, untimed
            for who in order(i):
                time_run_true(daemons[who], args.runtime)
        time.sleep(1.0)
        res["idle_rss"] = {who: rss_of_engine(who, d) for who, d in daemons.items()}
        times: dict[str, list[float]] = {who: [] for who in ENGINES}
        floor: dict[str, list[float]] = {who: [] for who in ENGINES}
        for i in range(args.runs):
            for who in order(i):
                time.sleep(GAP)
                times[who].append(time_run_true(daemons[who], args.runtime))
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


def report(res: dict, args: argparse.Namespace) -> str:
    t, shim = res["times"], res["shim"]
    b = {w: [r["start"] for r in res["bursts"][w]] for w in ENGINES}
    rm = {w: [r["rm"] for r in res["bursts"][w]] for w in ENGINES}
    rm_err = {w: int(sum(r["rm_errors"] for r in res["bursts"][w])) for w in ENGINES}
    med = {w: statistics.median(t[w]) * 1000 for w in ENGINES}
    p90 = {w: _pct(t[w], 90) * 1000 for w in ENGINES}
    bmed = {w: statistics.median(b[w]) for w in ENGINES}
    idle = {w: sum(res["idle_rss"][w].values()) for w in ENGINES}
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    runtime = "runc" if args.runtime == "runc" else "dockyard-runtime"
    la0, la1 = res["load_before"], res["load_mid"]
    fmed = {w: statistics.median(res["floor"][w]) * 1000 for w in ENGINES}
    v = res["versions"]

    def ratio(ours: float, theirs: float) -> str:
        return f"{ours / theirs:.2f}x" if theirs else "-"

    return "\n".join([
        f"### Engine: dockyardd vs dockerd, docker CLI 28, runtime {runtime} ({when})", "",
        f"Machine: {_machine()}; load average {la0[0]:.2f}/{la0[1]:.2f}/{la0[2]:.2f} before, "
        f"{la1[0]:.2f}/{la1[1]:.2f}/{la1[2]:.2f} after the runs (CPU shared with other jobs).",
        f"dockyardd {v['dockyardd']} vs dockerd {v['dockerd']} + containerd (overlay2, no bridge/iptables); both at "
        f"log level info, `--runtime {args.runtime}` on every run, busybox from `docker import` on each. "
        f"{args.runs} alternating runs each after 2 warm-ups; {args.burst_rounds} alternating burst rounds.", "",
        "| measure | dockyardd | dockerd | ours / dockerd | target |", "|---|---|---|---|---|",
        f"| `docker run --rm busybox true` median | {med['dockyardd']:.0f} ms | {med['dockerd']:.0f} ms | "
        f"**{ratio(med['dockyardd'], med['dockerd'])}** | <= 0.33x |",
        f"| same, p90 | {p90['dockyardd']:.0f} ms | {p90['dockerd']:.0f} ms | "
        f"{ratio(p90['dockyardd'], p90['dockerd'])} | |",
        f"| `docker version` median (CLI floor) | {fmed['dockyardd']:.0f} ms | {fmed['dockerd']:.0f} ms | "
        f"{ratio(fmed['dockyardd'], fmed['dockerd'])} | |",
        f"| engine RSS after start, import, 4 queries, 2 runs | {_rss_cell(res['idle_rss']['dockyardd'])} | "
        f"{_rss_cell(res['idle_rss']['dockerd'])} | {ratio(idle['dockyardd'], idle['dockerd'])} | <= 60 MiB |",
        f"| engine RSS after all {args.runs + 2} runs | {_rss_cell(res['after_rss']['dockyardd'])} | "
        f"{_rss_cell(res['after_rss']['dockerd'])} | | |",
        f"| engine RSS after the bursts | {_rss_cell(res['burst_rss']['dockyardd'])} | "
        f"{_rss_cell(res['burst_rss']['dockerd'])} | | |",
        f"| shim RSS, one `sleep 1000` container | {_mib(shim['dockyardd']['rss'])} | {_mib(shim['dockerd']['rss'])} | "
        f"{ratio(shim['dockyardd']['rss'], shim['dockerd']['rss'])} | <= 10 MiB |",
        f"| same, PSS | {_mib(shim['dockyardd']['pss'])} | {_mib(shim['dockerd']['pss'])} | "
        f"{ratio(shim['dockyardd']['pss'], shim['dockerd']['pss'])} | |",
        f"| {args.burst} concurrent `docker run -d busybox sleep 300` until all running, median | "
        f"{bmed['dockyardd']:.2f} s | {bmed['dockerd']:.2f} s | **{ratio(bmed['dockyardd'], bmed['dockerd'])}** | |",
        f"| same, each round | {', '.join(f'{x:.2f}' for x in b['dockyardd'])} s | "
        f"{', '.join(f'{x:.2f}' for x in b['dockerd'])} s | | |",
        f"| then one `docker rm -f` of all {args.burst}, median | {statistics.median(rm['dockyardd']):.2f} s | "
        f"{statistics.median(rm['dockerd']):.2f} s | "
        f"{ratio(statistics.median(rm['dockyardd']), statistics.median(rm['dockerd']))} | |",
        f"| containers `rm -f` failed on (retried), all rounds | {rm_err['dockyardd']} | {rm_err['dockerd']} | | 0 |",
        ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--burst-rounds", type=int, default=2)
    parser.add_argument("--runtime", choices=("runc", "dockyard"), default="runc")
    parser.add_argument("--record", action="store_true", help="append the result to docs/benchmarks.md")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("the engine benchmark needs root")
    text = report(measure(args), args)
    print(text)
    if args.record:
        with open(os.path.join(REPO, "docs", "benchmarks.md"), "a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
