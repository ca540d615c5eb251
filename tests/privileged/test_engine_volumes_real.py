"""Local volumes with device options really mounted (root): tmpfs and bind, refcounted by container.

Each test runs in a forked child with its own mount namespace (private propagation), so
nothing it mounts can leak onto the host even if an assertion fails half-way.
"""

from __future__ import annotations

import json
import os
import traceback
from collections.abc import Callable
from typing import Any

import pytest

from dockyard.engine.daemon.volumes import VolumeService
from dockyard.kernel import consts as c
from dockyard.kernel import libc
from tests.support.forked import fork_and_collect

pytestmark = [pytest.mark.privileged, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


def fstype(path: str) -> str:
    """The filesystem type mounted exactly on ``path`` ("" when none)."""
    found = ""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == path:
                found = line.split(" - ", 1)[1].split()[0]
    return found


def in_private_namespace(body: Callable[[], Any]) -> Any:
    """Run ``body()`` in a child with a private mount namespace; returns what it returned (a dict)."""
    def child(w: int) -> None:
        try:
            libc.unshare(c.CLONE_NEWNS)
            libc.mount(None, "/", None, c.MS_REC | c.MS_PRIVATE)
            out = {"ok": True, "result": body()}
        except BaseException:
            out = {"ok": False, "error": traceback.format_exc()}
        os.write(w, json.dumps(out).encode())
        os._exit(0)

    status, data = fork_and_collect(child)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    out = json.loads(data)
    assert out["ok"], out.get("error")
    return out["result"]


def test_tmpfs_volume_mounted_for_its_users(tmp_path) -> None:
    root = str(tmp_path / "volumes")
    image_dir = tmp_path / "image"
    (image_dir / "etc").mkdir(parents=True)
    (image_dir / "etc" / "conf").write_text("v=1")
    os.chown(image_dir / "etc" / "conf", 1234, 5678)

    def body() -> dict[str, Any]:
        svc = VolumeService(root)
        svc.create("tv", driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "size=10m,mode=0755"})
        path = svc.mount("tv", "c1")
        steps: dict[str, Any] = {"first": fstype(path)}
        copied = svc.copy_up("tv", str(image_dir))
        st = os.stat(os.path.join(path, "etc", "conf"))
        steps.update(copied=copied, owner=[st.st_uid, st.st_gid], data=open(os.path.join(path, "etc", "conf")).read())
        svc.mount("tv", "c2")
        svc.unmount("tv", "c1")
        steps["after_one"] = fstype(path)
        svc.unmount("tv", "c2")
        steps["after_all"] = fstype(path)
        steps["left_on_disk"] = os.listdir(path)  # tmpfs content went with the mount
        svc.mount("tv", "c3")
        svc.remove("tv")  # nobody is registered as a user here: remove unmounts first
        steps["removed"] = os.path.exists(os.path.dirname(path))
        return steps

    steps = in_private_namespace(body)
    assert steps == {"first": "tmpfs", "copied": True, "owner": [1234, 5678], "data": "v=1",
                     "after_one": "tmpfs", "after_all": "", "left_on_disk": [], "removed": False}


def test_bind_volume(tmp_path) -> None:
    root = str(tmp_path / "volumes")
    host_dir = tmp_path / "host"
    host_dir.mkdir()
    (host_dir / "seen").write_text("host")

    def body() -> dict[str, Any]:
        svc = VolumeService(root)
        svc.create("bv", driver_opts={"type": "none", "device": str(host_dir), "o": "bind"})
        path = svc.mount("bv", "c1")
        seen = open(os.path.join(path, "seen")).read()
        with open(os.path.join(path, "written"), "w") as f:
            f.write("container")
        svc.unmount("bv", "c1")
        return {"seen": seen, "mounted_after": fstype(path)}

    assert in_private_namespace(body) == {"seen": "host", "mounted_after": ""}
    assert (host_dir / "written").read_text() == "container"


def test_bad_device_options_are_an_error(tmp_path) -> None:
    root = str(tmp_path / "volumes")

    def body() -> str:
        svc = VolumeService(root)
        svc.create("xv", driver_opts={"type": "nosuchfs", "device": "nothing"})
        try:
            svc.mount("xv", "c1")
        except Exception as e:  # noqa: BLE001 - the message is what we check
            return str(e)
        return "mounted?"

    message = in_private_namespace(body)
    assert message.startswith("error while mounting volume '") and "failed to mount local volume" in message
