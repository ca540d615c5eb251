"""Logging as runc does it: logrus text or JSON lines, to stderr or ``--log``.

containerd reads the JSON log of a failed runtime call to report the error,
so the shape matters: ``{"level":"error","msg":"...","time":"..."}``.
"""

from __future__ import annotations

import os
import sys
import time

_LEVELS = {"debug": 0, "info": 1, "warning": 2, "error": 3}


class Logger:
    """Writes runc-shaped log lines to a file descriptor."""

    def __init__(self, path: str | None = None, fmt: str = "text", debug: bool = False) -> None:
        self.path = path
        self.fmt = fmt
        self.min_level = 0 if debug else 1
        self._fd: int | None = None
        if path and path != "/dev/stderr":
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)

    @property
    def to_stderr(self) -> bool:
        return self._fd is None

    def log(self, level: str, msg: str) -> None:
        if _LEVELS[level] < self.min_level:
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if self.fmt == "json":
            from ..oci import jsonio

            line = jsonio.dumps({"level": level, "msg": msg, "time": stamp})
        else:
            line = f"time={_quote(stamp)} level={level} msg={_quote(msg)}"
        data = (line + "\n").encode()
        if self._fd is None:
            sys.stderr.flush()
            os.write(2, data)
        else:
            os.write(self._fd, data)

    def debug(self, msg: str) -> None:
        self.log("debug", msg)

    def info(self, msg: str) -> None:
        self.log("info", msg)

    def warning(self, msg: str) -> None:
        self.log("warning", msg)

    def error(self, msg: str) -> None:
        self.log("error", msg)


def _quote(value: str) -> str:
    """logrus text quoting: bare when safe, else a Go-style quoted string."""
    if value and all(c.isalnum() or c in "-._/@^+" for c in value):
        return value
    out = ['"']
    for c in value:
        if c == '"' or c == "\\":
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif c == "\r":
            out.append("\\r")
        elif ord(c) < 0x20:
            out.append("\\x%02x" % ord(c))
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


_logger: Logger | None = None


def setup(path: str | None, fmt: str, debug: bool) -> Logger:
    global _logger
    _logger = Logger(path, fmt, debug)
    return _logger


def get() -> Logger:
    global _logger
    if _logger is None:
        _logger = Logger()
    return _logger
