"""Driving an OCI runtime binary (ours or runc) the way a supervisor does, for tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid

from busybox_bundle import make_bundle

RUNTIME_BIN = os.path.join(os.path.dirname(sys.executable), "dockyard-runtime")


def runtime_argv(name: str) -> list[str]:
    if name == "dockyard":
        if os.path.exists(RUNTIME_BIN):
            return [RUNTIME_BIN]
        return [sys.executable, "-m", "dockyard.runtime"]
    return [shutil.which(name) or name]


class Runtime:
    """One runtime binary with its own --root, plus helpers to make bundles."""

    def __init__(self, name: str, tmp: str) -> None:
        self.name = name
        self.tmp = tmp
        self.root = os.path.join(tmp, f"root-{name}")
        self.argv = runtime_argv(name) + ["--root", self.root]
        self.created: list[str] = []

    def __call__(self, *args: str, input: str | None = None, timeout: float = 30, **kw) -> subprocess.CompletedProcess:
        """Run the runtime; output goes through files, not pipes, because a detached
        container inherits the runtime's stdio and would hold pipes open."""
        import tempfile

        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            r = subprocess.run(self.argv + list(args), input=input.encode() if input is not None else None,
                               stdin=None if input is not None else subprocess.DEVNULL,
                               stdout=out, stderr=err, timeout=timeout, **kw)
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(r.args, r.returncode, out.read().decode(errors="replace"),
                                               err.read().decode(errors="replace"))

    def bundle(self, args: list[str], edit=None, name: str | None = None) -> str:
        path = os.path.join(self.tmp, name or f"bundle-{uuid.uuid4().hex[:8]}")
        make_bundle(path, args)
        if edit is not None:
            cfg_path = os.path.join(path, "config.json")
            with open(cfg_path) as f:
                spec = json.load(f)
            edit(spec)
            with open(cfg_path, "w") as f:
                json.dump(spec, f)
        return path

    def new_id(self) -> str:
        cid = f"t-{uuid.uuid4().hex[:10]}"
        self.created.append(cid)
        return cid

    def run(self, args: list[str], edit=None, **kw) -> subprocess.CompletedProcess:
        bundle = self.bundle(args, edit)
        return self("run", "--bundle", bundle, self.new_id(), **kw)

    def state(self, cid: str) -> dict:
        r = self("state", cid)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def cleanup(self) -> None:
        for cid in self.created:
            self("delete", "--force", cid)
