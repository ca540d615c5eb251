"""Freezing a container (pause/resume).

v1: write FROZEN to freezer.state and read it back until it says FROZEN
rather than FREEZING. The kernel cannot always freeze a v1 cgroup while
processes keep appearing, so, like runc, retry up to 1000 times, thawing
and sleeping 10 ms every 50 tries (and thaw for good if it never settles).
"Frozen" means this cgroup froze itself (freezer.self_freezing), not that
an ancestor is frozen.

v2: write 1 to cgroup.freeze, then wait (10 ms steps, 10 s at most) for
"frozen 1" in cgroup.events.
"""

from __future__ import annotations

import time

from ...errors import DockyardError, Unavailable
from . import files


def freeze_v1(path: str) -> None:
    try:
        for i in range(1000):
            if i % 50 == 49:
                files.write(path, "freezer.state", "THAWED")
                time.sleep(0.01)
            files.write(path, "freezer.state", "FROZEN")
            if i % 25 == 24:
                time.sleep(0.00001)
            state = files.read(path, "freezer.state").strip()
            if state == "FROZEN":
                return
            if state != "FREEZING":
                raise DockyardError(f"unexpected freezer state {state!r} while freezing {path}", path=path)
        raise DockyardError(f"unable to freeze {path}: still FREEZING after 1000 tries", path=path)
    except BaseException:
        try:
            files.write(path, "freezer.state", "THAWED")
        except DockyardError:
            pass
        raise


def thaw_v1(path: str) -> None:
    files.write(path, "freezer.state", "THAWED")


def frozen_v1(path: str) -> bool:
    while True:
        state = files.read_opt(path, "freezer.state")
        if state is None:
            return False
        state = state.strip()
        if state == "THAWED":
            return False
        if state == "FREEZING":
            time.sleep(0.001)
            continue
        if state != "FROZEN":
            raise DockyardError(f"unknown freezer.state {state!r} in {path}", path=path)
        self_freezing = files.read_opt(path, "freezer.self_freezing")
        if self_freezing is None:
            return True
        if self_freezing not in ("0\n", "1\n"):
            raise DockyardError(f"unknown freezer.self_freezing {self_freezing!r} in {path}", path=path)
        return self_freezing == "1\n"


def _wait_frozen_v2(path: str) -> None:
    for _ in range(1000):
        for line in files.read(path, "cgroup.events").splitlines():
            if line.startswith("frozen "):
                if line[7:8] == "1":
                    return
                break
        else:
            raise DockyardError(f"no frozen line in {path}/cgroup.events", path=path)
        time.sleep(0.01)
    raise DockyardError(f"timeout (10s) waiting for {path} to freeze", path=path)


def _set_v2(path: str, value: str) -> None:
    if not files.exists(files.join(path, "cgroup.freeze")):
        if value == "0":
            return  # nothing can be frozen without the freezer
        raise Unavailable(f"freezer not supported: {path}/cgroup.freeze does not exist (kernel < 5.2?)", path=path)
    files.write(path, "cgroup.freeze", value)
    state = files.read(path, "cgroup.freeze")
    if state not in ("0\n", "1\n"):
        raise DockyardError(f"unknown cgroup.freeze state {state!r} in {path}", path=path)
    if state[0] != value:
        raise DockyardError(f"{path}/cgroup.freeze is {state[0]} after writing {value}", path=path)
    if value == "1":
        _wait_frozen_v2(path)


def freeze_v2(path: str) -> None:
    _set_v2(path, "1")


def thaw_v2(path: str) -> None:
    _set_v2(path, "0")


def frozen_v2(path: str) -> bool:
    state = files.read_opt(path, "cgroup.freeze")
    if state is None or state == "0\n":
        return False
    if state != "1\n":
        raise DockyardError(f"unknown cgroup.freeze state {state!r} in {path}", path=path)
    _wait_frozen_v2(path)
    return True
