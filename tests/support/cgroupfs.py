"""A cgroup filesystem imitated in a temp dir: what both cgroup drivers' unit tests build on.

Every write through ``dockyard.runtime.cgroups.files.write_raw`` is recorded (path relative to
the fake root, value), may be rewritten by a per-file hook (imitating the kernel), and then lands
in the regular file, so reads see it. The cgroups package's mount/own-cgroup caches are reset.
"""

from __future__ import annotations

import os

import pytest

from dockyard.runtime.cgroups import files, paths


class RecordingCgroupfs:
    """Base of the v1 and v2 fakes: ``writes``, ``hooks`` and the /proc/self/cgroup file."""

    def __init__(self, tmp: str, monkeypatch: pytest.MonkeyPatch, proc_cgroup: str) -> None:
        self.root = os.path.join(tmp, "cgroup")
        self.writes: list[tuple[str, str]] = []
        self.hooks: dict[str, object] = {}
        os.makedirs(self.root)
        proc = os.path.join(tmp, "proc_cgroup")
        with open(proc, "w") as f:
            f.write(proc_cgroup)
        monkeypatch.setattr(paths, "PROC_CGROUP", proc)
        # fresh caches for this test; the real ones come back afterwards
        monkeypatch.setattr(paths, "_mounts_cache", None)
        monkeypatch.setattr(paths, "_own_cache", None)
        orig = files.write_raw

        def write_raw(dirpath: str, name: str, data: str) -> None:
            self.writes.append((os.path.relpath(os.path.join(dirpath, name), self.root), data))
            hook = self.hooks.get(name)
            if hook is not None:
                data = hook(dirpath, data)  # type: ignore[operator]
            orig(dirpath, name, data)
            self.after_write(dirpath, name, data)

        monkeypatch.setattr(files, "write_raw", write_raw)

    def after_write(self, dirpath: str, name: str, data: str) -> None:
        """What the kernel does after a write lands (devices lists, ...): nothing by default."""
