"""Networking: dockyardd vs the real dockerd 20.10, each inside its own "host" network namespace.

Each engine runs with its default networking (dockerd: docker0, iptables, userland proxy; dockyardd:
dockyard0, nftables with kernel DNAT for loopback too, no proxy process) inside a NetnsHost (tests/support/netns_host.py) whose veth leads to
a "remote host" namespace, so nothing touches this machine's own network namespace. Same docker CLI
28, same busybox image (`docker load` of tests/support/dockyardd.busybox_archive). Engines alternate:
1. start time on the default bridge: `docker run --rm busybox true`, 2 warm-ups, then --runs each
   (a pause, GAP, before each run); median and p90.
2. connection latency through a published port: busybox httpd on `-p P:80` serving a small file; a
   client in the engine's host netns makes --connects short TCP connections (connect, GET, read to
   close) to 127.0.0.1:P, and another from the remote host to the veth address; median and p90 ms.
3. throughput through the published port: `curl -o /dev/null` of a --size-mib file from the same
   httpd, --transfers times each, from 127.0.0.1 and from the remote host; median MB/s.

    python bench/network.py [--runs 20] [--connects 200] [--transfers 5] [--size-mib 64] [--record]

--record appends the result to docs/benchmarks.md. Daemons, namespaces, containers, mounts and
cgroups are removed on exit, also on failure. An engine that fails a measure shows "failed".
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
sys.path.insert(0, HERE)

from engine import GAP, QuietDockyardDaemon, _machine, _pct, cli, run_bench  # noqa: E402

from tests.support import hostclean  # noqa: E402
from tests.support.dockerd import DockerDaemon  # noqa: E402
from tests.support.dockyardd import load_busybox_via_cli  # noqa: E402
from tests.support.netns_host import NetnsHost  # noqa: E402

ENGINES = ("dockyardd", "dockerd")
PORT = 18500
Daemon = DockerDaemon | QuietDockyardDaemon
# A latency client run inside a netns: N x (connect, GET, read to EOF); prints the times in ms (JSON).
_CLIENT = """
import json, socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
req = b"GET /small HTTP/1.0\\r\\nHost: bench\\r\\n\\r\\n"
out = []
for _ in range(n):
    t = time.perf_counter()
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(req)
        body = b""
        while chunk := s.recv(65536):
            body += chunk
    out.append((time.perf_counter() - t) * 1e3)
    assert body.startswith(b"HTTP/1.") and b" 200 " in body.split(b"\\r\\n", 1)[0], body[:80]
print(json.dumps(out))
"""


class Setup:
    """One engine in its own host netns, with busybox loaded."""

    def __init__(self, who: str, octet: int) -> None:
        self.who = who
        self.ns = NetnsHost(remote=True, subnet_octet=octet)
        self.daemon: Daemon = (QuietDockyardDaemon(netns=self.ns.path) if who == "dockyardd"
                               else DockerDaemon(debug=False, netns=self.ns.path))

    def start(self) -> None:
        self.daemon.start()
        load_busybox_via_cli(self.daemon.docker, self.daemon.base)

    def stop(self) -> list[str]:
        errors = []
        try:
            if self.daemon.ping():
                ids = cli(self.daemon, "ps", "-aq").split()
                if ids:
                    cli(self.daemon, "rm", "-f", *ids)
        except Exception as e:  # noqa: BLE001 - stop the daemon anyway
            errors.append(f"{self.who}: rm -f: {e}")
        try:
            self.daemon.stop()
        except Exception as e:  # noqa: BLE001
            errors.append(f"{self.who}: {str(e)[:300]}")
            hostclean.kill_everything(self.daemon.name, None, needle=self.daemon.base)
            hostclean.remove_tree(self.daemon.base)
            hostclean.remove_cgroups(self.daemon.name)
        self.ns.remove()
        return errors


# -- measures ------------------------------------------------------------------------------------
def start_times(setups: dict[str, Setup], runs: int) -> dict[str, list[float]]:
    """`docker run --rm busybox true` wall times (s), engines alternating, after 2 warm-ups each."""
    times: dict[str, list[float]] = {w: [] for w in setups}
    for i in range(runs + 2):
        for who in _order(i, setups):
            time.sleep(GAP)
            t = time.perf_counter()
            cli(setups[who].daemon, "run", "--rm", "busybox", "true")
            if i >= 2:
                times[who].append(time.perf_counter() - t)
    return times


def start_server(s: Setup, size_mib: int) -> None:
    """busybox httpd on -p PORT:80 with /small (13 bytes) and /big (size_mib MiB); waits until it answers."""
    script = (f"mkdir -p /www && echo hello-bench > /www/small && dd if=/dev/zero of=/www/big bs=1M "
              f"count={size_mib} 2>/dev/null && exec httpd -f -p 80 -h /www")
    cli(s.daemon, "run", "-d", "--name", "bench-httpd", "-p", f"{PORT}:80", "busybox", "sh", "-c", script)
    deadline = time.monotonic() + 30
    while s.ns.curl(f"http://127.0.0.1:{PORT}/small").stdout.strip() != "hello-bench":
        if time.monotonic() > deadline:
            raise RuntimeError(f"{s.who}: httpd on {PORT} does not answer")
        time.sleep(0.2)


def _in_ns(s: Setup, remote: bool) -> list[str]:
    path = s.ns.remote_path if remote else s.ns.path
    return ["nsenter", f"--net={path}", "--"]


def latencies(s: Setup, n: int, remote: bool) -> list[float]:
    """n short connections (ms each) from the host netns to 127.0.0.1, or from the remote host."""
    target = s.ns.address if remote else "127.0.0.1"
    proc = subprocess.run([*_in_ns(s, remote), sys.executable, "-c", _CLIENT, target, str(PORT), str(n)],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"{s.who}: latency client failed: {proc.stderr.strip()[-300:]}")
    return json.loads(proc.stdout)


def throughput(s: Setup, remote: bool) -> float:
    """MB/s of one curl download of /big through the published port."""
    target = s.ns.address if remote else "127.0.0.1"
    proc = subprocess.run([*_in_ns(s, remote), "curl", "-sS", "--noproxy", "*", "-o", "/dev/null", "-w",
                           "%{size_download} %{time_total}", f"http://{target}:{PORT}/big"],
                          capture_output=True, text=True, timeout=300)
    size, total = proc.stdout.split() if proc.returncode == 0 else ("0", "0")
    if proc.returncode != 0 or float(total) <= 0:
        raise RuntimeError(f"{s.who}: curl failed: {proc.stderr.strip()}")
    return float(size) / float(total) / 1e6


def _order(i: int, setups: dict[str, Setup]) -> list[str]:
    names = [w for w in ENGINES if w in setups]
    return names if i % 2 == 0 else names[::-1]


def _each(setups: dict[str, Setup], rounds: int, fn: Callable[[Setup], list[float]],
          failed: dict[str, str], what: str) -> dict[str, list[float]]:
    """fn per engine, ``rounds`` alternating rounds; an engine that raises is dropped for this measure."""
    out: dict[str, list[float]] = {w: [] for w in setups}
    for i in range(rounds):
        for who in _order(i, setups):
            if f"{who}:{what}" in failed:
                continue
            try:
                out[who] += fn(setups[who])
            except Exception as e:  # noqa: BLE001 - report it, keep measuring the other engine
                failed[f"{who}:{what}"] = str(e)[:300]
                out[who] = []
    return out


def measure(args: argparse.Namespace) -> dict:
    setups: dict[str, Setup] = {}
    res: dict = {"load_before": os.getloadavg(), "failed": {}}
    try:
        for octet, who in enumerate(ENGINES, start=1):
            setups[who] = Setup(who, octet)
        for who, s in list(setups.items()):
            try:
                s.start()
            except Exception as e:  # noqa: BLE001
                res["failed"][f"{who}:start"] = str(e)[:500]
        live = {w: s for w, s in setups.items() if f"{w}:start" not in res["failed"]}
        res["versions"] = {w: cli(s.daemon, "version", "-f", "{{.Server.Version}}").strip() for w, s in live.items()}
        try:
            res["start"] = start_times(live, args.runs)
        except Exception:  # noqa: BLE001 - one engine cannot: measure each alone, and say which
            res["start"] = _each(live, 1, lambda s: start_times({s.who: s}, args.runs)[s.who], res["failed"],
                                 "start-run")

        def serve(s: Setup) -> list[float]:
            start_server(s, args.size_mib)
            return [0.0]
        servers = _each(live, 1, serve, res["failed"], "server")
        up = {w: live[w] for w in live if servers[w]}
        per = max(1, args.connects // 4)
        res["lat_local"] = _each(up, 4, lambda s: latencies(s, per, False), res["failed"], "latency")
        res["lat_remote"] = _each(up, 4, lambda s: latencies(s, per, True), res["failed"], "latency-remote")
        res["tput_local"] = _each(up, args.transfers, lambda s: [throughput(s, False)], res["failed"], "tput")
        res["tput_remote"] = _each(up, args.transfers, lambda s: [throughput(s, True)], res["failed"], "tput-remote")
        res["load_after"] = os.getloadavg()
    finally:
        errors = [e for s in setups.values() for e in s.stop()]
    if errors:
        raise RuntimeError("cleanup: " + "; ".join(errors))
    return res


# -- report --------------------------------------------------------------------------------------
def _cell(values: list[float], stat: Callable[[list[float]], float], fmt: str) -> str:
    return fmt.format(stat(values)) if values else "failed"


def _line(label: str, data: dict[str, list[float]], stat: Callable[[list[float]], float], fmt: str,
          bold: bool = False, note: str = "") -> str:
    ours, theirs = data.get("dockyardd", []), data.get("dockerd", [])
    ratio = f"{stat(ours) / stat(theirs):.2f}x" if ours and theirs and stat(theirs) else ""
    ratio = f"**{ratio}**" if bold and ratio else ratio
    return f"| {label} | {_cell(ours, stat, fmt)} | {_cell(theirs, stat, fmt)} | {ratio} | {note} |"


def report(res: dict, args: argparse.Namespace) -> str:
    med = statistics.median
    p90 = lambda v: _pct(v, 90)  # noqa: E731
    ms = {w: [x * 1e3 for x in v] for w, v in res.get("start", {}).items()}
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    la0, la1 = res["load_before"], res.get("load_after", res["load_before"])
    v = res.get("versions", {})
    lines = [
        f"### Network: dockyardd vs dockerd, each in its own host netns ({when})", "",
        f"Machine: {_machine()}; load average {la0[0]:.2f}/{la0[1]:.2f}/{la0[2]:.2f} before, "
        f"{la1[0]:.2f}/{la1[1]:.2f}/{la1[2]:.2f} after (CPU shared with other jobs).",
        f"dockyardd {v.get('dockyardd', '?')} vs dockerd {v.get('dockerd', '?')} (docker0, iptables-nft, "
        f"userland proxy), docker CLI 28, busybox httpd behind `-p {PORT}:80`. {args.runs} alternating "
        f"starts each after 2 warm-ups; {args.connects} connections and {args.transfers} x {args.size_mib} MiB "
        "downloads per engine and path, alternating.", "",
        "| measure | dockyardd | dockerd | ours / dockerd | note |", "|---|---|---|---|---|",
        _line("`docker run --rm busybox true` (default bridge), median", ms, med, "{:.0f} ms", bold=True),
        _line("same, p90", ms, p90, "{:.0f} ms"),
        _line("connect + GET + close via 127.0.0.1:P, median", res.get("lat_local", {}), med, "{:.2f} ms",
              bold=True, note="dockerd: docker-proxy; dockyardd: kernel DNAT"),
        _line("same, p90", res.get("lat_local", {}), p90, "{:.2f} ms"),
        _line("connect + GET + close from the remote host, median", res.get("lat_remote", {}), med, "{:.2f} ms",
              note="DNAT path"),
        _line(f"{args.size_mib} MiB download via 127.0.0.1:P, median", res.get("tput_local", {}), med,
              "{:.0f} MB/s", bold=True, note="higher is better"),
        _line(f"{args.size_mib} MiB download from the remote host, median", res.get("tput_remote", {}), med,
              "{:.0f} MB/s", note="higher is better"),
    ]
    for what, err in res["failed"].items():
        lines.append(f"| failed: {what} | {err.splitlines()[0] if err else ''} | | | |")
    return "\n".join(lines + [""])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--connects", type=int, default=200)
    parser.add_argument("--transfers", type=int, default=5)
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--record", action="store_true", help="append the result to docs/benchmarks.md")
    run_bench(parser, "network", measure, report)


if __name__ == "__main__":
    main()
