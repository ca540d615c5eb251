"""A logging wrapper around an OCI runtime binary, to see exactly how dockerd's shim calls it.

    wrapper = write_spy(real="/path/to/dockyard-runtime", directory=log_dir)
    DockerDaemon(runtimes={"dockyard": wrapper})

Each call appends to ``<directory>/runtime-calls.log``: time, pid, parent, cwd,
every argument, where fds 0-9 point (pipe, socket, /dev/null, pty) and the
exit status; on failure, the runtime's own ``--log`` file too. ``create``
keeps a copy of the bundle's config.json as ``config-<pid>.json``. The
wrapper runs the runtime as a child and returns its exit status; it holds no
fd the runtime does not, so the shim sees the same pipes close.
The interop conftest installs it for dockyard when DOCKYARD_INTEROP_SPY=1.
"""

from __future__ import annotations

import os
import shlex

_SCRIPT = """#!/bin/sh
# OCI runtime spy (tests/support/runtime_spy.py): log the call, run the runtime, log its status.
real={real}
dir={directory}
calls="$dir/runtime-calls.log"
fds=$(for fd in 0 1 2 3 4 5 6 7 8 9; do
  [ -e /proc/$$/fd/$fd ] && printf '  fd%s -> %s\\n' $fd "$(readlink /proc/$$/fd/$fd)"; done)
runtime_log=; prev=
for a in "$@"; do [ "$prev" = --log ] && runtime_log=$a; prev=$a; done
{{
  printf '=== %s pid=%s ppid=%s\\n  cwd %s\\n' "$(date +%s.%N)" $$ $PPID "$PWD"
  for a in "$@"; do printf '  arg %s\\n' "$a"; done
  printf '%s\\n' "$fds"
}} >> "$calls"
case " $* " in *" create "*) [ -f config.json ] && cp config.json "$dir/config-$$.json";; esac
"$real" "$@"
rc=$?
{{
  printf '  exit %s (pid %s)\\n' $rc $$
  if [ $rc -ne 0 ] && [ -n "$runtime_log" ] && [ -f "$runtime_log" ]; then
    sed 's/^/  log: /' "$runtime_log" | tail -n 20
  fi
}} >> "$calls"
exit $rc
"""


def write_spy(real: str, directory: str, name: str = "runtime-spy") -> str:
    """Write an executable wrapper around ``real`` logging into ``directory``; return its path."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(_SCRIPT.format(real=shlex.quote(os.path.abspath(real)),
                               directory=shlex.quote(os.path.abspath(directory))))
    os.chmod(path, 0o755)
    return path
