"""docker top: parsing canned ps output, and one real ps run on our own process."""

from __future__ import annotations

import asyncio
import os

import pytest

from dockyard.engine.daemon import top
from dockyard.errors import DockyardError

EF = b"""UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 21:00 ?        00:00:01 /sbin/init splash
root         120       1  0 21:01 ?        00:00:00 sleep 1000
root         121     120  0 21:01 ?        00:00:00 sh -c echo  two   spaces
"""

THREADS = b"""USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND
root         120  0.0  0.0   2000   500 ?        -    21:01   0:00 app --x
root           -  0.0    -      -     - -        Sl   21:01   0:00 -
root         200  0.0  0.0   2000   500 ?        -    21:01   0:00 other
root           -  0.0    -      -     - -        Sl   21:01   0:00 -
"""


def test_filters_by_pid_and_joins_command() -> None:
    got = top.parse_ps_output(EF, [120, 121])
    assert got["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert got["Processes"] == [
        ["root", "120", "1", "0", "21:01", "?", "00:00:00", "sleep 1000"],
        ["root", "121", "120", "0", "21:01", "?", "00:00:00", "sh -c echo  two   spaces"],
    ]


def test_thread_rows_follow_their_process() -> None:
    got = top.parse_ps_output(THREADS, [120])
    assert [row[1] for row in got["Processes"]] == ["120", "-"]
    assert got["Processes"][1][-1] == "-"


def test_no_pid_column() -> None:
    with pytest.raises(DockyardError, match="Couldn't find PID field in ps output"):
        top.parse_ps_output(b"USER COMMAND\nroot x\n", [1])


def test_bad_pid_value() -> None:
    with pytest.raises(DockyardError, match="Unexpected pid 'abc'"):
        top.parse_ps_output(b"PID CMD\nabc x\n", [1])


CMD_FIRST = b"""CMD                          PPID   PID WCHAN          COMMAND
/bin/bash /st 28808             1 15468 wait           /bin/bash /st 28808
redis-server *:28808        15468 15497 ep_poll        redis-server *:28808
sleep 100000                    1 29383 hrtimer_nanosl sleep 100000
"""


def test_columns_with_spaces_before_pid() -> None:
    # "28808" inside the command must not be taken for a pid: columns are cut by position
    got = top.parse_ps_output(CMD_FIRST, [15468, 15497])
    assert got["Titles"] == ["CMD", "PPID", "PID", "WCHAN", "COMMAND"]
    assert got["Processes"] == [
        ["/bin/bash /st 28808", "1", "15468", "wait", "/bin/bash /st 28808"],
        ["redis-server *:28808", "15468", "15497", "ep_poll", "redis-server *:28808"],
    ]


def test_no_headers_refused() -> None:
    with pytest.raises(DockyardError, match="^option --no-headers is not allowed$"):
        asyncio.run(top.top([os.getpid()], "-ef --no-headers"))


def test_renamed_pid_column_refused() -> None:
    with pytest.raises(DockyardError, match='specifying "user=PID" is not allowed'):
        top.validate_ps_args("-o user=PID")
    top.validate_ps_args("-o pid=PID")  # renaming pid itself is fine


def test_pids_arg() -> None:
    assert top.pids_arg([1, 22, 333]) == "-q1,22,333"


def test_real_ps_default_args() -> None:
    got = asyncio.run(top.top([os.getpid()], ""))
    assert "PID" in got["Titles"] and "CMD" in got["Titles"]
    idx = got["Titles"].index("PID")
    assert [row[idx] for row in got["Processes"]] == [str(os.getpid())]


def test_real_ps_retry_without_q_and_error() -> None:
    # "f" (forest) refuses -q: retried plain, still filtered
    got = asyncio.run(top.top([os.getpid()], "axf"))
    idx = got["Titles"].index("PID")
    assert [row[idx] for row in got["Processes"]] == [str(os.getpid())]
    with pytest.raises(DockyardError, match=r"^ps: "):
        asyncio.run(top.top([os.getpid()], "--no-such-option"))
