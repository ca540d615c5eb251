"""Install a lean launcher for ``dockyard-runtime`` in place of the generic console script.

The runtime is exec'd for every container operation and its start time is
benchmarked against runc's. A console script starts the interpreter with
``site``, which scans site-packages and runs .pth hooks before our code does
anything; this launcher runs the same ``main`` with ``-IS`` and puts only the
directory holding the ``dockyard`` package on sys.path. Before importing the
command line it starts the cgroup warm-up (see ``warmup``), which needs only
builtin modules.

    python -m dockyard.runtime.launcher [BIN_DIR]
"""

from __future__ import annotations

import os
import sys

TEMPLATE = """#!{python} -IS
# dockyard-runtime: lean launcher (see dockyard/runtime/launcher.py)
import sys
sys.path[:0] = [{path!r}]
from dockyard.runtime.warmup import early
early(sys.argv[1:])
from dockyard.runtime.cli import main
main()
"""


def install(bin_dir: str) -> str:
    import dockyard

    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(dockyard.__file__)))
    bin_dir = os.path.abspath(bin_dir)
    python = os.path.join(bin_dir, "python3")
    if not os.path.exists(python):
        python = sys.executable
    target = os.path.join(bin_dir, "dockyard-runtime")
    tmp = target + ".tmp"
    with open(tmp, "w") as f:
        f.write(TEMPLATE.format(python=python, path=package_parent))
    os.chmod(tmp, 0o755)
    os.rename(tmp, target)
    return target


if __name__ == "__main__":
    print(install(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(sys.executable)))
