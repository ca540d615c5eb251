"""Side by side, from inside: a default container must look the same on dockyardd as on dockerd.

The same script runs in a `docker run --rm busybox` on both engines; outputs are
compared after the container's own id/hostname is replaced by <id>.
"""

from __future__ import annotations

import re

import pytest


pytestmark = [pytest.mark.acceptance, pytest.mark.privileged]

SCRIPTS = {
    "mounts": "awk '{print $2, $3, $4}' /proc/self/mounts | sed -E 's/,(lowerdir|upperdir|workdir)=.*//' | sort",
    "devices": "ls -l /dev | awk '{print $1, $3, $4, $5, $6, $NF}' | sort",
    "env": "env | sort",
    "identity": "id; hostname | wc -c; cat /etc/hostname | wc -c; pwd; umask",
    "process": "grep -E '^(Seccomp|NoNewPrivs|Cap[A-Za-z]+):' /proc/self/status; cat /proc/self/oom_score_adj",
    "limits": "ulimit -a | sort",
    "etc-files": "cat /etc/hosts /etc/resolv.conf | grep -v '^#' | sed -E 's/[0-9a-f]{12}/<id>/'",
    "masked": "for p in /proc/kcore /proc/keys /proc/timer_list /proc/acpi /sys/firmware /proc/scsi; do "
              "ls -ld $p 2>&1 | awk '{print $1, $NF}'; done; cat /proc/kcore | wc -c; "
              "echo 1 > /proc/sys/kernel/domainname 2>&1 | sed 's/.*: //'",
    "shm": "df -k /dev/shm | tail -1 | awk '{print $2}'; stat -c '%a %U' /dev/shm /tmp /",
    "pid1": "tr '\\0' ' ' < /proc/1/cmdline; echo; ls /proc > /tmp/p; grep -cE '^[0-9]+$' /tmp/p; cat /proc/1/cgroup | wc -l",
}


def _normalize(text: str, ident: str) -> str:
    return re.sub(r"\b[0-9a-f]{12}\b", "<id>", text.replace(ident, "<id>"))


@pytest.mark.parametrize("what", sorted(SCRIPTS))
def test_inside_a_default_container(pair, what):
    outputs = []
    for e in pair.engines:
        name = e.new_name()
        r = e.docker("run", "--name", name, "busybox", "sh", "-c", SCRIPTS[what])
        ident = e.inspect(name, "{{.Id}}")[:12]
        outputs.append((r.rc, _normalize(r.stdout, ident)))
    ref, got = outputs
    if ref != got:
        ref_lines, got_lines = set(ref[1].splitlines()), set(got[1].splitlines())
        raise AssertionError(f"{what}: rc {ref[0]} vs {got[0]}\n"
                             f"  only on dockerd:   {sorted(ref_lines - got_lines)}\n"
                             f"  only on dockyardd: {sorted(got_lines - ref_lines)}")
