"""dockerd-style command-line flags (Go's pflag conventions): parsing, Go-like value text, usage.

The daemon's options table lives in config.py; this module knows how flags are written:
`--flag value`, `--flag=value`, `-H x`, combined short booleans, repeatable lists, sizes and ulimits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from dockyard.errors import InvalidArgument

_GO_TYPES = {"str": "string", "bool": "bool", "int": "int", "size": "string", "list": "[]string",
             "runtimes": "map[string]Runtime", "ulimits": "map[string]*Ulimit", "kv": "map[string]string"}
_ULIMITS = frozenset({"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
                      "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack"})
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def go_repr(value: Any) -> str:
    """Format a value the way Go's %v prints decoded JSON (dockerd's conflict message)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_repr(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{go_repr(value[k])}" for k in sorted(value)) + "]"
    return "<nil>" if value is None else str(value)


def _parse_bool(text: str, flag: str) -> bool:
    if text in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if text in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise InvalidArgument(f'invalid argument "{text}" for "--{flag}" flag: '
                          f'strconv.ParseBool: parsing "{text}": invalid syntax')


def parse_size(text: str) -> int:
    """Binary sizes like docker's RAMInBytes: 64m, 64MB, 64MiB, 1.5g, 1024."""
    low = text.strip().lower().replace(" ", "")
    for suffix in ("ib", "b", "i"):
        if low.endswith(suffix) and len(low) > len(suffix):
            low = low[: -len(suffix)]
            break
    unit = low[-1:] if low[-1:] in _SIZE_UNITS else ""
    try:
        number = float(low[: len(low) - len(unit)])
    except ValueError:
        raise InvalidArgument(f"invalid size: '{text}'") from None
    if number < 0:
        raise InvalidArgument(f"invalid size: '{text}'")
    return int(number * _SIZE_UNITS[unit])


def parse_ulimit(text: str) -> tuple[str, tuple[int, int]]:
    """``nofile=1024:2048`` or ``nofile=1024`` (soft = hard)."""
    name, eq, limits = text.partition("=")
    if not eq:
        raise InvalidArgument(f"invalid ulimit argument: {text}")
    if name not in _ULIMITS:
        raise InvalidArgument(f"invalid ulimit type: {name}")
    soft_text, _, hard_text = limits.partition(":")
    try:
        soft, hard = int(soft_text), int(hard_text or soft_text)
    except ValueError:
        raise InvalidArgument(f"invalid ulimit argument: {text}") from None
    return name, _check_ulimit(soft, hard)


def _check_ulimit(soft: int, hard: int) -> tuple[int, int]:
    if soft > hard and hard != -1:
        raise InvalidArgument(f"ulimit soft limit must be less than or equal to hard limit: "
                              f"{soft} > {hard}")
    return soft, hard


def _split_kv(text: str, what: str) -> tuple[str, str]:
    name, eq, value = text.partition("=")
    if not eq or not name or not value:
        raise InvalidArgument(f"invalid {what}: {text} (expected name=value)")
    return name, value


def _type_error(key: str, kind: str, value: Any) -> InvalidArgument:
    json_type = {bool: "bool", str: "string", int: "number", float: "number", list: "array",
                 dict: "object"}.get(type(value), "null")
    return InvalidArgument(f"json: cannot unmarshal {json_type} into Go struct field "
                           f"Config.{key} of type {_GO_TYPES[kind]}")


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


@dataclass(frozen=True)
class Opt:
    """One flag and its daemon.json key ("" = flag only); kind drives both parsers."""

    key: str
    kind: str
    long: str
    short: str = ""
    help: str = ""
    default: str = ""

    @property
    def repeatable(self) -> bool:
        return self.kind in ("list", "runtimes", "ulimits", "kv")

    def from_flag(self, raws: list[str]) -> Any:
        last = raws[-1]
        if self.kind == "bool":
            return _parse_bool(last, self.long)
        if self.kind == "int":
            try:
                return int(last)
            except ValueError:
                raise InvalidArgument(f'invalid argument "{last}" for "--{self.long}" flag: '
                                      f'strconv.ParseInt: parsing "{last}": invalid syntax') from None
        if self.kind == "size":
            return parse_size(last)
        if self.kind == "list":
            return tuple(raws)
        if self.kind == "ulimits":
            return dict(parse_ulimit(r) for r in raws)
        if self.kind == "kv":
            return dict(_split_kv(r, self.long) for r in raws)
        if self.kind == "runtimes":
            return {n: (p, ()) for n, p in (_split_kv(r, "runtime") for r in raws)}
        return last

    def from_file(self, value: Any) -> Any:
        kind, ok = self.kind, False
        if kind == "str":
            ok = isinstance(value, str)
        elif kind == "bool":
            ok = isinstance(value, bool)
        elif kind in ("int", "size"):
            ok = isinstance(value, int) and not isinstance(value, bool)
            if kind == "size" and isinstance(value, str):
                return parse_size(value)
        elif kind == "list":
            ok = _str_list(value)
            value = tuple(value) if ok else value
        elif kind == "kv":
            ok = isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
        elif kind in ("runtimes", "ulimits") and isinstance(value, dict):
            conv = _file_runtime if kind == "runtimes" else _file_ulimit
            return {name: conv(name, spec) for name, spec in value.items()}
        if not ok:
            raise _type_error(self.key, kind, value)
        return value


def _file_runtime(name: str, spec: Any) -> tuple[str, tuple[str, ...]]:
    """``{"path": "/usr/bin/crun", "runtimeArgs": ["--debug"]}``."""
    if not isinstance(spec, dict) or not isinstance(spec.get("path"), str) or not spec["path"]:
        raise InvalidArgument(f"runtime {name}: a non-empty \"path\" is required")
    args = spec.get("runtimeArgs", [])
    if not _str_list(args):
        raise _type_error("runtimes", "list", args)
    return spec["path"], tuple(args)


def _file_ulimit(name: str, spec: Any) -> tuple[int, int]:
    """``{"Name": "nofile", "Soft": 1024, "Hard": 2048}``."""
    if name not in _ULIMITS:
        raise InvalidArgument(f"invalid ulimit type: {name}")
    if not isinstance(spec, dict) or not all(
            isinstance(spec.get(k), int) and not isinstance(spec.get(k), bool) for k in ("Soft", "Hard")):
        raise InvalidArgument(f"default-ulimits: {name} needs integer \"Soft\" and \"Hard\"")
    return _check_ulimit(spec["Soft"], spec["Hard"])


def parse_flags(argv: list[str], options: tuple[Opt, ...]) -> tuple[dict[str, Any], dict[str, str]]:
    """pflag-style scan: ``--f v``, ``--f=v``, ``-f v``, ``-fv``, ``-f=v``, ``--bool=false``.

    Returns (name -> value, name -> display) for the flags given; name is the
    daemon.json key, or the long name for flag-only options.
    """
    by_long = {o.long: o for o in options}
    by_short = {o.short: o for o in options if o.short}
    raws: dict[str, list[str]] = {}
    i = 0
    while i < len(argv):
        arg, i = argv[i], i + 1
        if arg == "--" or not arg.startswith("-") or arg == "-":
            rest = argv[i:] if arg == "--" else argv[i - 1:]
            if rest:
                raise InvalidArgument(f'"dockyardd" accepts no arguments, got {rest[0]!r}')
            break
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            opt = by_long.get(name)
            if opt is None:
                raise InvalidArgument(f"unknown flag: --{name}")
            if not eq and opt.kind != "bool":
                if i >= len(argv):
                    raise InvalidArgument(f"flag needs an argument: --{name}")
                value, i = argv[i], i + 1
            raws.setdefault(opt.long, []).append(value if eq or opt.kind != "bool" else "true")
            continue
        for j, letter in enumerate(arg[1:], start=2):
            opt = by_short.get(letter)
            if opt is None:
                raise InvalidArgument(f"unknown shorthand flag: '{letter}' in {arg}")
            tail = arg[j:]
            if tail.startswith("="):
                raws.setdefault(opt.long, []).append(tail[1:])
                break
            if opt.kind == "bool":
                raws.setdefault(opt.long, []).append("true")
                continue
            if not tail:
                if i >= len(argv):
                    raise InvalidArgument(f"flag needs an argument: '{letter}' in {arg}")
                tail, i = argv[i], i + 1
            raws.setdefault(opt.long, []).append(tail)
            break
    given, displays = {}, {}
    for long, values in raws.items():
        opt = by_long[long]
        name = opt.key or opt.long
        given[name] = opt.from_flag(values)
        displays[name] = "[" + " ".join(values) + "]" if opt.repeatable else values[-1]
    return given, displays


def usage_text(prog: str, summary: str, options: tuple[Opt, ...]) -> str:
    """dockerd-like help: one line per flag, with its value type and default."""
    lines = [f"Usage:\t{prog} [OPTIONS]", "", summary, "", "Options:"]
    names = {"str": " string", "int": " int", "size": " bytes", "bool": ""}
    for o in options:
        left = f"  {'-' + o.short + ',' if o.short else '   '} --{o.long}{names.get(o.kind, ' list')}"
        default = "" if not o.default else (
            f' (default "{o.default}")' if o.kind == "str" else f" (default {o.default})")
        lines.append(f"{left:<40} {o.help}{default}")
    return "\n".join(lines)
