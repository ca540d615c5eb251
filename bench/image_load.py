"""Load + unpack of one `docker save` archive: Dockyard vs the real dockerd's `docker load`.

The archive: a debootstrap'd Debian bookworm (minbase + perl + python3, ~10k files) as the base layer, plus
``--random-layers`` layers of ``--random-mib`` MiB of random data each (a few files per layer).
The rootfs tarball and the archive are cached under $DOCKYARD_BENCH_CACHE (default
/var/cache/dockyard-bench): debootstrap needs deb.debian.org and takes minutes.

Each round times, alternating which goes first:
- Dockyard: ``python -m dockyard.supervisor --root <fresh root> images load -i A --unpack``
  (content store + metadata + overlayfs snapshots, each layer applied into its snapshot);
- dockerd 20.10 (private instance from tests/support/dockerd.py, overlay2): ``docker load -i A``
  after ``docker rmi`` of the previous round's image, so every layer is imported again.
Both roots live under /tmp on the same filesystem; caches are dropped (sync + drop_caches) before
each run. Prints medians and the ratio; ``--record`` appends them to docs/benchmarks.md.

    python bench/image_load.py [--rounds 5] [--random-mib 128] [--random-layers 2] [--record]
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import platform
import random
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
sys.path.insert(0, os.path.join(REPO, "src"))

from tests.support.dockerd import DockerDaemon  # noqa: E402

CACHE = os.environ.get("DOCKYARD_BENCH_CACHE", "/var/cache/dockyard-bench")
MIRROR = "http://deb.debian.org/debian"
IMAGE = "bench/debian-random:latest"


# Packages on top of minbase (~6.8k entries): perl's modules and Python's standard library bring the
# rootfs to ~10k entries, the size of a typical application base image.
EXTRA_PACKAGES = ("perl", "python3")


def debian_rootfs_tar() -> str:
    """A tar of a minbase bookworm rootfs + EXTRA_PACKAGES (numeric owners), built once with debootstrap."""
    out = os.path.join(CACHE, "debian-bookworm-minbase-" + "-".join(EXTRA_PACKAGES) + ".tar")
    if os.path.exists(out):
        return out
    os.makedirs(CACHE, exist_ok=True)
    rootfs = os.path.join(CACHE, "rootfs-" + "-".join(EXTRA_PACKAGES) + ".tmp")
    if not os.path.exists(os.path.join(rootfs, "etc", "debian_version")):
        shutil.rmtree(rootfs, ignore_errors=True)
        subprocess.run(["debootstrap", "--variant=minbase", "--include=" + ",".join(EXTRA_PACKAGES), "bookworm",
                        rootfs, MIRROR], check=True)
    subprocess.run(["tar", "--numeric-owner", "--xattrs", "-C", rootfs, "-cf", out + ".tmp", "."], check=True)
    os.replace(out + ".tmp", out)
    return out


def _random_layer(path: str, seed: int, mib: int) -> None:
    """A layer of 4 files of random data, ``mib`` MiB in all (deterministic per seed)."""
    rng = random.Random(seed)
    with tarfile.open(path, "w") as tar:
        d = tarfile.TarInfo(f"random{seed}")
        d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o755, 1_700_000_000
        tar.addfile(d)
        per_file = (mib << 20) // 4
        for i in range(4):
            info = tarfile.TarInfo(f"random{seed}/blob{i}")
            info.size, info.mode, info.mtime = per_file, 0o644, 1_700_000_000
            tar.addfile(info, io.BytesIO(rng.randbytes(per_file)))


def _sha256_file(path: str) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def build_archive(random_layers: int, random_mib: int) -> str:
    """The `docker save` archive (cached per parameters)."""
    out = os.path.join(CACHE, f"archive-{'-'.join(EXTRA_PACKAGES)}-{random_layers}x{random_mib}MiB.tar")
    if os.path.exists(out):
        return out
    layers = [debian_rootfs_tar()]
    for seed in range(1, random_layers + 1):
        path = os.path.join(CACHE, f"random-{seed}-{random_mib}MiB.tar")
        if not os.path.exists(path):
            _random_layer(path + ".tmp", seed, random_mib)
            os.replace(path + ".tmp", path)
        layers.append(path)
    diff_ids = [_sha256_file(p) for p in layers]
    config = json.dumps({"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
                         "config": {"Cmd": ["bash"]}, "rootfs": {"type": "layers", "diff_ids": diff_ids},
                         "history": [{"created": "2024-01-01T00:00:00Z"} for _ in layers]}).encode()
    config_name = _sha256bytes(config)[7:] + ".json"
    with tarfile.open(out + ".tmp", "w") as tar:
        names = []
        for i, p in enumerate(layers):
            name = f"{i:02d}{diff_ids[i][9:71]}/layer.tar"
            tar.add(p, arcname=name)
            names.append(name)
        _add_bytes(tar, config_name, config)
        _add_bytes(tar, "manifest.json", json.dumps(
            [{"Config": config_name, "RepoTags": [IMAGE], "Layers": names}]).encode())
    os.replace(out + ".tmp", out)
    return out


def _sha256bytes(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _drop_caches() -> None:
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        pass


def run_dockyard(archive: str) -> float:
    root = tempfile.mkdtemp(prefix="dockyard-bench-root-", dir="/tmp")
    try:
        _drop_caches()
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dockyard.supervisor", "--root", root, "images", "load", "-i",
                        archive, "--unpack"], check=True, stdout=subprocess.DEVNULL,
                       env={**os.environ, "PYTHONPATH": os.path.join(REPO, "src")})
        return time.perf_counter() - t0
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_docker(daemon: DockerDaemon, archive: str) -> float:
    daemon.docker("rmi", IMAGE, timeout=300)
    _drop_caches()
    t0 = time.perf_counter()
    r = daemon.docker("load", "-i", archive, timeout=1200)
    elapsed = time.perf_counter() - t0
    if r.rc != 0:
        raise RuntimeError(f"docker load failed: {r}")
    return elapsed


def _machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    return (f"{platform.node() or 'vm'}, {os.cpu_count()} cores, {platform.machine()}, {mem:.0f} GiB RAM, "
            f"kernel {platform.release()}, Python {platform.python_version()}")


def record(text: str) -> None:
    with open(os.path.join(REPO, "docs", "benchmarks.md"), "a") as f:
        f.write("\n" + text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--random-layers", type=int, default=2)
    ap.add_argument("--random-mib", type=int, default=128)
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args()
    archive = build_archive(args.random_layers, args.random_mib)
    with tarfile.open(debian_rootfs_tar()) as tar:
        entries = sum(1 for _ in tar)
    size_mib = os.path.getsize(archive) / (1 << 20)
    daemon = DockerDaemon()
    times: dict[str, list[float]] = {"dockyard": [], "dockerd": []}
    try:
        daemon.start()
        driver = daemon.storage_driver
        for i in range(args.rounds):
            order = ("dockyard", "dockerd") if i % 2 == 0 else ("dockerd", "dockyard")
            for who in order:
                t = run_dockyard(archive) if who == "dockyard" else run_docker(daemon, archive)
                times[who].append(t)
                print(f"round {i + 1} {who}: {t:.2f} s", flush=True)
    finally:
        daemon.stop()
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["dockyard"] / med["dockerd"]
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = "\n".join([
        f"### Image load + unpack: `docker save` archive ({when})", "",
        f"Machine: {_machine()}; {args.rounds} alternating rounds, caches dropped before each run.",
        f"Archive: {size_mib:.0f} MiB = debootstrap'd Debian bookworm minbase+{'+'.join(EXTRA_PACKAGES)} layer ({entries} entries) + "
        f"{args.random_layers} "
        f"random layers of {args.random_mib} MiB. dockerd 20.10 with {driver}; Dockyard with overlayfs "
        "snapshots (`python -m dockyard.supervisor images load --unpack`).", "",
        "| loader | median | min | max |", "|---|---|---|---|",
        *[f"| {k} | {med[k]:.2f} s | {min(v):.2f} s | {max(v):.2f} s |" for k, v in times.items()], "",
        f"Ratio Dockyard / dockerd (medians): **{ratio:.2f}x** (target <= 1.0x)", ""])
    print(text)
    if args.record:
        record(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
