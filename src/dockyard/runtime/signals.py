"""Signal names and numbers as runc parses them (``KILL``, ``SIGKILL``, ``9``)."""

from __future__ import annotations

from ..errors import InvalidArgument

NUMBERS = {
    "SIGHUP": 1, "SIGINT": 2, "SIGQUIT": 3, "SIGILL": 4, "SIGTRAP": 5, "SIGABRT": 6, "SIGIOT": 6,
    "SIGBUS": 7, "SIGFPE": 8, "SIGKILL": 9, "SIGUSR1": 10, "SIGSEGV": 11, "SIGUSR2": 12, "SIGPIPE": 13,
    "SIGALRM": 14, "SIGTERM": 15, "SIGSTKFLT": 16, "SIGCHLD": 17, "SIGCLD": 17, "SIGCONT": 18,
    "SIGSTOP": 19, "SIGTSTP": 20, "SIGTTIN": 21, "SIGTTOU": 22, "SIGURG": 23, "SIGXCPU": 24,
    "SIGXFSZ": 25, "SIGVTALRM": 26, "SIGPROF": 27, "SIGWINCH": 28, "SIGIO": 29, "SIGPOLL": 29,
    "SIGPWR": 30, "SIGSYS": 31, "SIGUNUSED": 31,
}


def parse(raw: str) -> int:
    """A signal number from a name (with or without SIG) or a number."""
    if raw.lstrip("-").isdigit():
        return int(raw)
    name = raw.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if name in NUMBERS:
        return NUMBERS[name]
    if name.startswith("SIGRTMIN") or name.startswith("SIGRTMAX"):
        base = 34 if name.startswith("SIGRTMIN") else 64
        rest = name[8:]
        try:
            offset = int(rest) if rest else 0
        except ValueError:
            offset = None
        if offset is not None and 34 <= base + offset <= 64:
            return base + offset
    raise InvalidArgument(f'unknown signal "{raw}"')
