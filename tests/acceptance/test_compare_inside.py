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


OPTIONS = {
    "network-none": (["--network", "none"], "ls /sys/class/net | sort; cat /etc/hosts | grep -v '^#'"),
    "network-host": (["--network", "host"], "ls /sys/class/net | sort | head -3; hostname | wc -c"),
    "pid-host": (["--pid", "host"], "tr '\\0' ' ' < /proc/1/cmdline | cut -c1-40"),
    "hosts-dns": (["--add-host", "foo:1.2.3.4", "--dns", "9.9.9.9", "--dns-search", "example.com",
                   "--dns-option", "ndots:2"], "cat /etc/hosts /etc/resolv.conf | grep -v '^#'"),
    "hostname-domain": (["--hostname", "h1", "--domainname", "example.org"],
                        "hostname; cat /etc/hostname /proc/sys/kernel/domainname; grep -c h1 /etc/hosts || true"),
    "ulimit": (["--ulimit", "nofile=100:200", "--ulimit", "nproc=50"], "ulimit -n; ulimit -Hn; ulimit -u"),
    "shm-size": (["--shm-size", "16m"], "df -k /dev/shm | tail -1 | awk '{print $2}'"),
    "no-new-privileges": (["--security-opt", "no-new-privileges"], "grep NoNewPrivs /proc/self/status"),
    "user-groups": (["--user", "65534:65534", "--group-add", "5"], "id; touch /x 2>&1 | sed 's/.*: //'"),
    "cpu": (["--cpus", "0.5", "--cpu-shares", "512"],
            "cd /sys/fs/cgroup/cpu && cat cpu.cfs_quota_us cpu.cfs_period_us cpu.shares"),
    "device": (["--device", "/dev/null:/dev/mynull"], "ls -l /dev/mynull | awk '{print $1, $5, $6}'"),
    "oom-score-adj": (["--oom-score-adj", "500"], "cat /proc/self/oom_score_adj"),
    "new-workdir": (["-w", "/new/dir"], "pwd; ls -ld /new/dir | awk '{print $1, $3}'"),
    "tmpfs-options": (["--tmpfs", "/run:rw,noexec,nosuid,size=65536k"], "grep ' /run ' /proc/mounts"),
    "cap-add": (["--cap-add", "SYS_ADMIN", "--cap-drop", "NET_RAW"], "grep CapEff /proc/self/status"),
    "env": (["-e", "PATH=/bin", "-e", "EMPTY=", "-e", "HOME=/tmp"], "env | sort"),
    "read-only-mounts": (["--read-only", "-v", "/data"],
                         "awk '$2 == \"/\" || $2 == \"/data\" {print $2, $4}' /proc/self/mounts | "
                         "sed -E 's/,(lowerdir|upperdir|workdir)=.*//'"),
}


@pytest.mark.parametrize("what", sorted(OPTIONS))
def test_inside_with_options(pair, what):
    options, script = OPTIONS[what]
    outputs = []
    for e in pair.engines:
        name = e.new_name()
        r = e.docker("run", "--name", name, *options, "busybox", "sh", "-c", script)
        ident = e.inspect(name, "{{.Id}}")[:12]
        outputs.append((r.rc, _normalize(r.stdout, ident), e.kind))
    (ref_rc, ref, _), (got_rc, got, _) = outputs
    assert ref_rc == 0, f"the reference run failed: {outputs[0]}"
    assert (got_rc, got) == (ref_rc, ref), f"{what}:\n--- dockerd:\n{ref}--- dockyardd (rc {got_rc}):\n{got}"
