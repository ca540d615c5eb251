"""``GET /containers/{id}/top``: the host's ``ps``, limited to a container's processes.

As Docker 20.10 does it: ``ps <ps_args split on " "> -q<pid,pid,...>``
first; if that fails (some options, e.g. ``f``, refuse ``-q``), plain
``ps <ps_args>``; then the header's ``PID`` column selects the rows of the
container's pids. Thread rows (``-`` in the PID column, with ``m``) follow
their process. Rows are cut into columns at offsets found from the header
and all rows (values may hold spaces). ``--no-headers`` and its spellings
are refused. This module is an adapter: the parsing is the pure
:func:`parse_ps_output`.
"""

from __future__ import annotations

import asyncio
import re

from ...errors import DockyardError

PS = "ps"
_FIELD_ARG = re.compile(r"\s+([^\s]*)=\s*(PID[^\s]*)")


def validate_ps_args(ps_args: str) -> None:
    """Refuse renaming the PID column (``-o user=PID`` would fool the filter)."""
    for key, value in _FIELD_ARG.findall(ps_args):
        if key != "pid":
            raise DockyardError(f'specifying "{key}={value}" is not allowed')


_SPACE = b" \t\n\v\f\r\x85\xa0"  # what Go's unicode.IsSpace says of a single byte
_NO_HEADER = frozenset(
    f"--{a}{b}{c}" for a in ("no-", "no") for b in ("header", "heading") for c in ("", "s")
)


def _columns(lines: list[bytes]) -> list[int]:
    """Start offsets of the columns: each title's start, moved left over the
    values that stick out beyond it (right-aligned numbers, commands with
    spaces), up to the end of the previous title."""
    spans = [(m.start(), m.end()) for m in re.finditer(rb"\S+", lines[0])]
    starts = [0] + [start for start, _ in spans[1:]]
    for i in range(1, len(spans)):
        pos = spans[i][0] - 1
        while pos >= spans[i - 1][1]:
            if all(len(line) <= pos or line[pos] in _SPACE for line in lines[1:]):
                starts[i] = pos
                break
            pos -= 1
    return starts


def _split_row(line: bytes, starts: list[int]) -> list[str]:
    ends = starts[1:] + [len(line)]
    return [line[a:b].strip().decode(errors="replace") for a, b in zip(starts, ends)]


def parse_ps_output(output: bytes, pids: list[int]) -> dict:
    """{"Titles": [...], "Processes": [[...], ...]} of the rows whose PID is in ``pids``.

    Titles split on ASCII whitespace; rows are cut at the column offsets
    found from the whole output, so values with spaces stay whole.
    """
    lines = output.split(b"\n")
    titles = [t for t in re.split(r"[\t\n\f\r ]+", lines[0].decode(errors="replace")) if t]
    if "PID" not in titles:
        raise DockyardError("Couldn't find PID field in ps output")
    index = titles.index("PID")
    starts = _columns(lines)
    wanted = set(pids)
    processes: list[list[str]] = []
    keep_threads = False
    for line in lines[1:]:
        if not line:
            continue
        fields = _split_row(line, starts)
        if fields[index] == "-":
            if keep_threads:
                processes.append(fields)
            continue
        try:
            pid = int(fields[index])
        except ValueError:
            raise DockyardError(f"Unexpected pid '{fields[index]}': invalid syntax") from None
        keep_threads = pid in wanted
        if keep_threads:
            processes.append(fields)
    return {"Titles": titles, "Processes": processes}


def pids_arg(pids: list[int]) -> str:
    """``-q1,2,3``: ps's quick pid selection."""
    return "-q" + ",".join(str(p) for p in pids)


async def _run_ps(args: list[str]) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        PS, *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    return proc.returncode or 0, out, err


async def top(pids: list[int], ps_args: str) -> dict:
    """The ``top`` answer for a container whose processes are ``pids``.

    Errors (500 in Docker): a renamed PID column, ``ps: <its first stderr
    line>`` when ps fails, an output without a PID column.
    """
    ps_args = ps_args or "-ef"
    validate_ps_args(ps_args)
    args = ps_args.split(" ")
    for arg in args:
        if arg in _NO_HEADER:
            raise DockyardError(f"option {arg} is not allowed")  # the PID column needs the header
    code, out, err = await _run_ps([*args, pids_arg(pids)])
    if code != 0:
        code, out, err = await _run_ps(args)
        if code != 0:
            first = err.split(b"\n", 1)[0].decode(errors="replace")
            raise DockyardError(f"ps: {first or f'exit status {code}'}")
    return parse_ps_output(out, pids)
