"""dockyard-runtime's command line: runc's flags, commands, messages and exit codes.

Parsing follows Go's flag package as runc uses it: global flags, a command,
its flags (``--x v``, ``--x=v``, ``-x v``), then positional arguments; the
first positional argument ends flag parsing. Each command lives in its own
module, imported only when that command runs.
"""

from __future__ import annotations

import os
import sys

from .warmup import GLOBAL_VALUE_FLAGS

VERSION = "0.1.0"
SPEC_VERSION = "1.2.1"
DEFAULT_ROOT = "/run/dockyard-runtime"

# flag name -> (takes a value, repeatable); aliases map to the canonical name.
_V, _B, _L = (True, False), (False, False), (True, True)

GLOBAL_FLAGS = {**{name: _V for name in GLOBAL_VALUE_FLAGS},
                "debug": _B, "systemd-cgroup": _B, "help": _B, "version": _B}
GLOBAL_ALIASES = {"h": "help", "v": "version"}

_CREATE = {"bundle": _V, "console-socket": _V, "pid-file": _V, "no-pivot": _B,
           "no-new-keyring": _B, "preserve-fds": _V}
_UPDATE = {name: _V for name in (
    "resources", "blkio-weight", "cpu-period", "cpu-quota", "cpu-burst", "cpu-share", "cpu-rt-period",
    "cpu-rt-runtime", "cpuset-cpus", "cpuset-mems", "kernel-memory", "kernel-memory-tcp", "memory",
    "memory-reservation", "memory-swap", "pids-limit", "l3-cache-schema", "mem-bw-schema")}

# command -> (module, flags, aliases, (min args, max args or None), usage)
COMMANDS: dict[str, tuple[str, dict, dict, tuple[int, int | None], str]] = {
    "create": ("create", _CREATE, {"b": "bundle"}, (1, 1), "<container-id>"),
    "run": ("run", {**_CREATE, "detach": _B, "keep": _B, "no-subreaper": _B},
            {"b": "bundle", "d": "detach"}, (1, 1), "<container-id>"),
    "start": ("start", {}, {}, (1, 1), "<container-id>"),
    "state": ("status", {}, {}, (1, 1), "<container-id>"),
    "list": ("listing", {"format": _V, "quiet": _B}, {"f": "format", "q": "quiet"}, (0, 0), ""),
    "kill": ("kill", {"all": _B}, {"a": "all"}, (1, 2), "<container-id> [signal]"),
    "delete": ("delete", {"force": _B}, {"f": "force"}, (1, 1), "<container-id>"),
    "exec": ("execute", {"console-socket": _V, "pidfd-socket": _V, "cwd": _V, "env": _L, "tty": _B,
                         "user": _V, "additional-gids": _L, "process": _V, "detach": _B, "pid-file": _V,
                         "process-label": _V, "apparmor": _V, "no-new-privs": _B, "cap": _L,
                         "preserve-fds": _V, "cgroup": _L, "ignore-paused": _B},
             {"e": "env", "t": "tty", "u": "user", "g": "additional-gids", "p": "process",
              "d": "detach", "c": "cap"}, (1, None), "<container-id> <command> [command options]"),
    "pause": ("pause", {}, {}, (1, 1), "<container-id>"),
    "resume": ("pause", {}, {}, (1, 1), "<container-id>"),
    "ps": ("ps", {"format": _V}, {"f": "format"}, (1, None), "<container-id> [ps options]"),
    "events": ("events", {"interval": _V, "stats": _B}, {}, (1, 1), "<container-id>"),
    "update": ("update", _UPDATE, {"r": "resources"}, (1, 1), "<container-id>"),
    "spec": ("spec", {"bundle": _V, "rootless": _B}, {"b": "bundle"}, (0, 0), ""),
    "features": ("features", {}, {}, (0, 0), ""),
    "checkpoint": ("", {}, {}, (1, 1), "<container-id>"),
    "restore": ("", {}, {}, (1, 1), "<container-id>"),
}

_SUMMARY = """NAME:
   dockyard-runtime - Open Container Initiative runtime (runc-compatible)

USAGE:
   dockyard-runtime [global options] command [command options] [arguments...]

COMMANDS:
   create, start, run, state, list, kill, delete, exec, pause, resume, ps,
   events, update, spec, features

GLOBAL OPTIONS:
   --debug             enable debug logging
   --log value         set the log file to write runtime logs to (default is '/dev/stderr')
   --log-format value  set the log format ('text' (default), or 'json')
   --root value        root directory for storage of container state (default: "/run/dockyard-runtime")
   --systemd-cgroup    enable systemd cgroup support (not supported: a clear error)
   --help, -h          show help
   --version, -v       print the version
"""


class UsageError(Exception):
    """Bad command line: printed with 'Incorrect Usage.' and exit status 1."""


class Options(dict):
    """Parsed flags: ``opts.get('bundle')``; repeatable flags are lists."""

    def flag(self, name: str) -> bool:
        value = self.get(name, False)
        return value if isinstance(value, bool) else value.lower() in ("1", "true", "t")


def parse_flags(argv: list[str], flags: dict, aliases: dict) -> tuple[Options, list[str]]:
    """Go-flag-style parsing: returns (options, positional args)."""
    opts = Options()
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        name = arg.lstrip("-")
        value: str | None = None
        if "=" in name:
            name, value = name.split("=", 1)
        name = aliases.get(name, name)
        if name not in flags:
            raise UsageError(f"flag provided but not defined: -{name}")
        takes_value, repeatable = flags[name]
        if takes_value:
            if value is None:
                i += 1
                if i >= len(argv):
                    raise UsageError(f"flag needs an argument: -{name}")
                value = argv[i]
            if repeatable:
                opts.setdefault(name, []).append(value)
            else:
                opts[name] = value
        else:
            opts[name] = True if value is None else value.lower() in ("1", "t", "true")
        i += 1
    return opts, argv[i:]


class Context:
    """What every command gets: the global options and the logger."""

    def __init__(self, gopts: Options, log) -> None:
        self.root = os.path.abspath(gopts.get("root") or DEFAULT_ROOT)
        self.systemd_cgroup = gopts.flag("systemd-cgroup")
        self.debug = gopts.flag("debug")
        self.log = log


def main(argv: list[str] | None = None) -> None:
    import gc

    # A short-lived process: cyclic garbage collection would only cost time, and in the
    # cloned init it would touch (and so copy) every page it shares with the runtime.
    gc.disable()
    argv = sys.argv[1:] if argv is None else argv
    code = _main(argv)
    # Skip the interpreter's teardown (a few ms of freeing what the kernel frees anyway at
    # exit); what it would do that matters is flushing stdout and stderr.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _main(argv: list[str]) -> int:
    from . import log as logmod
    from . import warmup

    warmup.early(argv)  # done already when the lean launcher runs us

    try:
        gopts, rest = parse_flags(argv, GLOBAL_FLAGS, GLOBAL_ALIASES)
    except UsageError as e:
        print(f"Incorrect Usage: {e}\n\n{_SUMMARY}", file=sys.stderr)
        return 1
    if gopts.flag("version"):
        print(f"dockyard-runtime version {VERSION}\ncommit: dockyard-{VERSION}\nspec: {SPEC_VERSION}\n"
              f"python: {sys.version.split()[0]}")
        return 0
    if gopts.flag("help") or not rest:
        print(_SUMMARY)
        return 0
    fmt = gopts.get("log-format") or "text"
    if fmt not in ("text", "json"):
        print(f'invalid log-format: {fmt}', file=sys.stderr)
        return 1
    logger = logmod.setup(gopts.get("log"), fmt, gopts.flag("debug"))
    command, cargv = rest[0], rest[1:]
    if command not in COMMANDS:
        return _fatal(logger, f"No help topic for '{command}'", 3)
    modname, flags, aliases, (lo, hi), usage = COMMANDS[command]
    try:
        opts, args = parse_flags(cargv, {**flags, "help": _B}, {**aliases, "h": "help"})
    except UsageError as e:
        print(f"Incorrect Usage: {e}\n\nUSAGE:\n   dockyard-runtime {command} [command options] {usage}",
              file=sys.stderr)
        return 1
    if opts.flag("help"):
        print(f"USAGE:\n   dockyard-runtime {command} [command options] {usage}")
        return 0
    count_error = _check_args(command, len(args), lo, hi)
    if count_error:
        print(f"Incorrect Usage.\n\nUSAGE:\n   dockyard-runtime {command} [command options] {usage}")
        return _fatal(logger, count_error, 1)
    if gopts.flag("systemd-cgroup") and command not in ("spec", "features", "list", "state"):
        return _fatal(logger, "systemd cgroup driver is not supported by dockyard-runtime; "
                      "use the cgroupfs driver (cgroupsPath as a path, not slice:prefix:name)", 1)
    if not modname:
        return _fatal(logger, f"{command} is not supported by dockyard-runtime (no CRIU support)", 1)
    ctx = Context(gopts, logger)
    return run_command(ctx, command, modname, opts, args)


def run_command(ctx: Context, command: str, modname: str, opts: Options, args: list[str]) -> int:
    """Import the command's module, run it, and turn errors into runc's exits."""
    from ..errors import DockyardError

    module = __import__(f"dockyard.runtime.{modname}", fromlist=["main"])
    try:
        return module.main(ctx, command, opts, args)
    except CommandError as e:
        return _fatal(ctx.log, str(e), e.code)
    except (DockyardError, OSError) as e:
        prefix = {"create": "runc create failed: ", "run": "runc run failed: "}.get(command, "")
        code = 255 if command == "exec" else 1
        if command == "exec":
            prefix = "exec failed: "
        return _fatal(ctx.log, prefix.replace("runc", "dockyard-runtime") + _describe(e), code)
    except Exception as e:  # a bug: still report it the way callers parse errors
        import traceback

        ctx.log.debug(traceback.format_exc())
        return _fatal(ctx.log, f"internal error: {type(e).__name__}: {e}", 255 if command == "exec" else 1)


class CommandError(Exception):
    """An error whose exit code the command chose itself."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _describe(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror and e.filename and str(e.filename) not in e.strerror:
        return f"{e.strerror}: {e.filename}"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e)


def _check_args(command: str, n: int, lo: int, hi: int | None) -> str:
    if lo == hi and n != lo:
        return f'dockyard-runtime: "{command}" requires exactly {lo} argument(s)'
    if n < lo:
        return f'dockyard-runtime: "{command}" requires a minimum of {lo} argument(s)'
    if hi is not None and n > hi:
        return f'dockyard-runtime: "{command}" requires a maximum of {hi} argument(s)'
    return ""


def _fatal(logger, message: str, code: int) -> int:
    logger.error(message)
    if not logger.to_stderr:
        print(message, file=sys.stderr)
    return code
