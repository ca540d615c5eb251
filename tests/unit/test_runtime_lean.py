"""The runtime's start path stays lean: no heavy standard-library packages on it.

dockyard-runtime is exec'd for every container operation and benchmarked
against runc; ``json`` (re, enum), ``subprocess``, ``shutil``, ``dataclasses``
(inspect) and friends each cost milliseconds to import.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("re", "json", "enum", "subprocess", "shutil", "dataclasses", "inspect", "typing", "argparse", "logging",
         "pathlib", "socket", "threading", "asyncio")

# The modules each hot command runs through.
COMMANDS = {
    "create/run": ["dockyard.runtime.cli", "dockyard.runtime.run", "dockyard.runtime.create", "dockyard.runtime.start",
                   "dockyard.runtime.delete", "dockyard.runtime.init", "dockyard.runtime.namespaces",
                   "dockyard.runtime.rootfs", "dockyard.runtime.process", "dockyard.runtime.capabilities",
                   "dockyard.runtime.cgroups", "dockyard.runtime.cgroups.v1", "dockyard.runtime.cgroups.v2",
                   "dockyard.oci.runtime_spec", "dockyard.kernel.libc", "dockyard.kernel.loopback"],
    "state": ["dockyard.runtime.cli", "dockyard.runtime.status"],
    "kill": ["dockyard.runtime.cli", "dockyard.runtime.kill"],
    "list": ["dockyard.runtime.cli", "dockyard.runtime.listing"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_no_heavy_imports(command):
    code = ("import sys\n" + "".join(f"import {m}\n" for m in COMMANDS[command]) +
            f"print(' '.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-IS", "-c", f"import sys; sys.path[:0] = {sys.path!r}\n" + code],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == [], f"{command} imports {out}"
