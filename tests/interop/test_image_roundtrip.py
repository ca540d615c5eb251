"""Images through the real dockerd and skopeo: docker save -> Dockyard -> docker load; skopeo copies.

A module-scoped dockerd (its own roots, like the session one of conftest) builds ``roundtrip:v1``
FROM busybox by committing two containers run with runc: the first adds files (a directory tree,
a symlink, a hardlink, a setuid file, a file owned by 1000:1000), the second changes one file,
deletes a file and replaces a directory (a whiteout and an opaque directory in its layer).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator

import pytest

from dockyard.supervisor.images import ID_LABEL, ImageService
from tests.support import hostclean
from tests.support.dockerd import DockerDaemon

pytestmark = [pytest.mark.interop, pytest.mark.privileged]

STEP1 = ("mkdir -p /data/sub /data/keep && echo one > /data/a && echo two > /data/sub/b && ln -s a /data/link"
         " && ln /data/a /data/hard && echo x > /etc/motd && cp /bin/busybox /data/suid && chmod 4755 /data/suid"
         " && echo owned > /data/keep/owned && chown 1000:1000 /data/keep/owned && chmod 0600 /data/keep/owned")
STEP2 = ("echo changed > /data/a && rm -rf /data/sub && mkdir /data/sub && echo new > /data/sub/c"
         " && rm /etc/motd && mkdir /data/empty")
# what the image's files look like from inside a container (names, modes, owners, sizes, checksums)
LISTING = ("find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path /etc/hostname -o -path /etc/hosts"
           " -o -path /etc/resolv.conf \\) -prune -o -print | sort | xargs stat -c '%n %a %u:%g %s %F %N'"
           " && find /data /bin -type f | sort | xargs md5sum")
IMAGE = "roundtrip:v1"
# per-container files docker creates; not part of the image
_RUNTIME_FILES = {".dockerenv", "etc/hostname", "etc/hosts", "etc/resolv.conf", "etc/mtab", "dev", "proc", "sys"}
_INIT_LAYER_DIRS = {"etc"}  # docker's init layer creates files in them: their mtime is the container's


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerDaemon]:
    hostclean.sweep_stale()
    d = DockerDaemon(log_dir=str(tmp_path_factory.mktemp("image-dockerd-logs")))
    try:
        d.start()
        d.load_busybox()
        yield d
    finally:
        d.stop()



def _listing(d: DockerDaemon, image: str) -> str:
    return d.docker_ok("run", "--rm", "--network", "none", "--runtime", "runc", image, "sh", "-c", LISTING)


@pytest.fixture(scope="module")
def built(daemon: DockerDaemon) -> dict[str, str]:
    """Build the image; return its ID and file listing."""
    for name, base, script, tag in (("rt-step1", "busybox", STEP1, "roundtrip-step1:latest"),
                                    ("rt-step2", "roundtrip-step1", STEP2, IMAGE)):
        daemon.docker_ok("run", "--name", name, "--network", "none", "--runtime", "runc", base, "sh", "-c", script)
        daemon.docker_ok("commit", "--change", "ENV STEP=" + name, name, tag)
        daemon.docker_ok("rm", name)
    return {"id": daemon.docker_ok("image", "inspect", "-f", "{{.Id}}", IMAGE).strip(),
            "listing": _listing(daemon, IMAGE)}


def _tree(tar_bytes: bytes) -> dict[str, tuple[object, ...]]:
    """name -> (type, mode, uid, gid, size, link, sha256, mtime) of every entry of a filesystem tar."""
    out: dict[str, tuple[object, ...]] = {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        for m in tar:
            name = m.name.removeprefix("./").removeprefix("/").rstrip("/")
            if not name or name.split("/")[0] in _RUNTIME_FILES or name in _RUNTIME_FILES:
                continue
            f = tar.extractfile(m) if m.isfile() else None
            digest = hashlib.sha256(f.read()).hexdigest() if f else ""
            out[name] = (m.type, m.mode & 0o7777, m.uid, m.gid, m.size if m.isfile() else 0, m.linkname, digest,
                         0 if name in _INIT_LAYER_DIRS else int(m.mtime))
    return out


def _docker_export(d: DockerDaemon, image: str) -> bytes:
    cid = d.docker_ok("create", "--network", "none", "--runtime", "runc", image).strip()
    try:
        r = subprocess.run(d.cli_argv("export", cid), capture_output=True, env=d.cli_env(), timeout=120)
        assert r.returncode == 0, r.stderr
        return r.stdout
    finally:
        d.docker_ok("rm", cid)


def test_dockyard_unpack_matches_docker_export(daemon: DockerDaemon, built: dict[str, str], tmp_path: str) -> None:
    tmp = str(tmp_path)
    saved = os.path.join(tmp, "docker-saved.tar")
    daemon.docker_ok("save", "-o", saved, IMAGE)
    with ImageService(os.path.join(tmp, "root")) as svc:
        with open(saved, "rb") as f:
            svc.load(f)
        top = svc.unpack(IMAGE)
        svc.snapshotter().prepare("ctr", top)
        out = io.BytesIO()
        svc.export("ctr", out)
        svc.snapshotter().remove("ctr")
    ours, theirs = _tree(out.getvalue()), _tree(_docker_export(daemon, IMAGE))
    assert "data/sub/c" in ours and "data/sub/b" not in ours and "etc/motd" not in ours
    assert ours["data/keep/owned"][1:4] == (0o600, 1000, 1000) and ours["data/suid"][1] == 0o4755
    diff = {k: (ours.get(k), theirs.get(k)) for k in sorted(set(ours) | set(theirs)) if ours.get(k) != theirs.get(k)}
    assert not diff, list(diff.items())[:8]


def test_docker_save_dockyard_load_save_docker_load(daemon: DockerDaemon, built: dict[str, str],
                                                    tmp_path: str) -> None:
    tmp = str(tmp_path)
    saved = os.path.join(tmp, "docker-saved.tar")
    daemon.docker_ok("save", "-o", saved, IMAGE, "busybox:latest")
    with ImageService(os.path.join(tmp, "root")) as svc:
        with open(saved, "rb") as f:
            assert sorted(svc.load(f)) == ["docker.io/library/busybox:latest", f"docker.io/library/{IMAGE}"]
        assert svc.get(IMAGE).labels[ID_LABEL] == built["id"]
        ours = os.path.join(tmp, "dockyard-saved.tar")
        with open(ours, "wb") as f:
            svc.save([IMAGE, "busybox"], f)
    daemon.docker_ok("rmi", IMAGE, "roundtrip-step1:latest")
    assert daemon.docker("image", "inspect", built["id"]).rc != 0, "the image is still in dockerd"
    out = daemon.docker_ok("load", "-i", ours)
    assert f"Loaded image: {IMAGE}" in out
    assert daemon.docker_ok("image", "inspect", "-f", "{{.Id}}", IMAGE).strip() == built["id"]
    assert _listing(daemon, IMAGE) == built["listing"]
    history = json.loads(daemon.docker_ok("image", "inspect", IMAGE))[0]
    assert "STEP=rt-step2" in history["Config"]["Env"]


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo not installed (apt-get install skopeo)")
def test_skopeo_copies_between_oci_layout_and_docker_archive(daemon: DockerDaemon, built: dict[str, str],
                                                             tmp_path: str) -> None:
    tmp = str(tmp_path)
    saved = os.path.join(tmp, "docker-saved.tar")
    daemon.docker_ok("save", "-o", saved, IMAGE)
    layout = os.path.join(tmp, "layout")
    with ImageService(os.path.join(tmp, "root")) as svc:
        with open(saved, "rb") as f:
            svc.load(f)
        svc.save([IMAGE], layout, format="oci")
    archive = os.path.join(tmp, "skopeo-archive.tar")
    _skopeo("copy", f"oci:{layout}:v1", f"docker-archive:{archive}:{IMAGE}")
    back = os.path.join(tmp, "layout-back")
    _skopeo("copy", f"docker-archive:{archive}", f"oci:{back}:v1")
    with ImageService(os.path.join(tmp, "root2")) as svc:
        with open(archive, "rb") as f:
            assert svc.load(f) == [f"docker.io/library/{IMAGE}"]
        assert svc.get(IMAGE).labels[ID_LABEL] == built["id"]
        diff_ids = json.loads(svc.content.read(built["id"]))["rootfs"]["diff_ids"]
        assert svc.load(back, base_name="from-skopeo") == ["docker.io/library/from-skopeo:v1"]
        # skopeo rewrites a Docker config into OCI form when it converts to an OCI manifest, so the ID
        # changes on that leg; the layers must not
        back_id = svc.get("from-skopeo:v1").labels[ID_LABEL]
        assert json.loads(svc.content.read(back_id))["rootfs"]["diff_ids"] == diff_ids
    # and dockerd takes what skopeo made of our layout
    daemon.docker_ok("load", "-i", archive)
    assert daemon.docker_ok("image", "inspect", "-f", "{{.Id}}", IMAGE).strip() == built["id"]


def _skopeo(*args: str) -> None:
    r = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"skopeo {' '.join(args)}: rc={r.returncode}\n{r.stdout}\n{r.stderr}"
    assert "error" not in r.stderr.lower() and "warn" not in r.stderr.lower(), r.stderr


def test_dockyard_import_runs_in_dockerd(daemon: DockerDaemon, tmp_path: str) -> None:
    """`docker export` of busybox -> Dockyard import with --change -> save -> docker load -> docker run."""
    tmp = str(tmp_path)
    rootfs = _docker_export(daemon, "busybox:latest")
    with ImageService(os.path.join(tmp, "root")) as svc:
        image_id = svc.import_rootfs(io.BytesIO(rootfs), "imported:v1",
                                     ['CMD ["sh", "-c", "echo $GREETING from $(pwd)"]', "ENV GREETING=hello",
                                      "WORKDIR /tmp", "LABEL origin=dockyard"])
        archive = os.path.join(tmp, "imported.tar")
        with open(archive, "wb") as f:
            svc.save(["imported:v1"], f)
    daemon.docker_ok("load", "-i", archive)
    assert daemon.docker_ok("image", "inspect", "-f", "{{.Id}}", "imported:v1").strip() == image_id
    out = daemon.docker_ok("run", "--rm", "--network", "none", "--runtime", "runc", "imported:v1")
    assert out == "hello from /tmp\n"
    labels = json.loads(daemon.docker_ok("image", "inspect", "-f", "{{json .Config.Labels}}", "imported:v1"))
    assert labels == {"origin": "dockyard"}
    daemon.docker_ok("rmi", "imported:v1")
