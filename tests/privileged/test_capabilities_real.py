"""Capabilities applied for real, in forked children, in runc's order around the uid switch."""

from __future__ import annotations

import os

import pytest

from dockyard.errors import InvalidArgument
from dockyard.runtime import capabilities
from tests.support.forked import fork_and_collect

pytestmark = [
    pytest.mark.privileged,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]

NOBODY = 65534
KINDS = {"CapInh": "inheritable", "CapPrm": "permitted", "CapEff": "effective", "CapBnd": "bounding", "CapAmb": "ambient"}
DOCKER_DEFAULT_MASK = 0xA80425FB


def mask(*names: str) -> int:
    return sum(1 << capabilities.CAP_NAMES[n] for n in names)


def parse_status(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in KINDS:
            out[key] = int(value.strip(), 16)
    return out


def become(sets: capabilities.CapSets, uid: int | None) -> None:
    """What the container's init does, in runc's order."""
    capabilities.drop_bounding(sets)
    capabilities.set_keepcaps(True)
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    capabilities.set_keepcaps(False)
    capabilities.apply(sets)


def run_child(sets: capabilities.CapSets, uid: int | None, *, exec_grep: bool) -> tuple[int, str]:
    """Child becomes (sets, uid) then prints its Cap* lines (itself, or grep after execve)."""

    def child(w: int) -> None:
        try:
            become(sets, uid)
            if exec_grep:
                os.dup2(w, 1)
                os.execv("/bin/grep", ["grep", "Cap", "/proc/self/status"])
            with open("/proc/self/status") as f:
                os.write(w, f.read().encode())
            os._exit(0)
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            os.write(w, f"ERROR {type(e).__name__}: {e}".encode())
            os._exit(1)

    status, data = fork_and_collect(child)
    return status, data.decode()


BOUNDING = ["CAP_CHOWN", "CAP_KILL", "CAP_SETUID", "CAP_SETGID", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"]
KEPT = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
SPEC = {
    "bounding": BOUNDING,
    "effective": KEPT,
    "permitted": KEPT,
    "inheritable": KEPT,
    "ambient": ["CAP_NET_BIND_SERVICE"],
}


def test_non_root_user_gets_exactly_the_sets_asked_for():
    status, text = run_child(capabilities.parse(SPEC), NOBODY, exec_grep=False)
    assert status == 0, text
    assert parse_status(text) == {
        "CapInh": mask(*KEPT),
        "CapPrm": mask(*KEPT),
        "CapEff": mask(*KEPT),
        "CapBnd": mask(*BOUNDING),
        "CapAmb": mask("CAP_NET_BIND_SERVICE"),
    }


def test_after_execve_a_non_root_user_keeps_the_ambient_caps():
    status, text = run_child(capabilities.parse(SPEC), NOBODY, exec_grep=True)
    assert status == 0, text
    ambient = mask("CAP_NET_BIND_SERVICE")
    assert parse_status(text) == {
        "CapInh": mask(*KEPT),
        "CapPrm": ambient,
        "CapEff": ambient,
        "CapBnd": mask(*BOUNDING),
        "CapAmb": ambient,
    }


def test_empty_capabilities_leave_a_non_root_user_with_nothing():
    status, text = run_child(capabilities.parse(None), NOBODY, exec_grep=True)
    assert status == 0, text
    assert parse_status(text) == {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": 0, "CapAmb": 0}


def test_root_with_docker_defaults_gets_the_bounding_set_after_execve():
    names = [n for n, v in capabilities.CAP_NAMES.items() if DOCKER_DEFAULT_MASK >> v & 1]
    sets = capabilities.parse({k: names for k in ("bounding", "effective", "permitted")})
    status, text = run_child(sets, None, exec_grep=True)
    assert status == 0, text
    caps = parse_status(text)
    assert (caps["CapEff"], caps["CapPrm"], caps["CapBnd"], caps["CapAmb"]) == (DOCKER_DEFAULT_MASK,) * 3 + (0,)


def test_ambient_cap_not_inheritable_is_skipped_like_runc():
    spec = dict(SPEC, inheritable=[])
    status, text = run_child(capabilities.parse(spec), NOBODY, exec_grep=False)
    assert status == 0, text
    assert parse_status(text)["CapAmb"] == 0


def test_effective_beyond_permitted_is_an_error():
    sets = capabilities.parse({"effective": ["CAP_SYS_ADMIN"], "bounding": ["CAP_SYS_ADMIN"]})
    status, text = run_child(sets, None, exec_grep=False)
    assert status != 0
    assert f"ERROR {InvalidArgument.__name__}: unable to apply caps: Operation not permitted" in text


def test_bounding_set_is_left_alone_without_cap_setpcap():
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            before = open("/proc/self/status").read()
            no_setpcap = capabilities.parse({k: ["CAP_CHOWN"] for k in ("effective", "permitted")})
            capabilities.apply(no_setpcap)
            capabilities.drop_bounding(capabilities.CapSets())
            after = open("/proc/self/status").read()
            os.write(w, f"{parse_status(before)['CapBnd']} {parse_status(after)['CapBnd']}".encode())
        finally:
            os._exit(0)
    os.close(w)
    out = os.read(r, 100).decode()
    os.waitpid(pid, 0)
    before, after = out.split()
    assert before == after and int(before) != 0
