"""JSON for the runtime's start path, straight from the C accelerator.

``import json`` pulls in ``re`` and ``enum`` (some 10 ms before any work on a
2-core VM); the runtime is exec'd per container operation and measured
against runc, so config.json and state files go through ``_json`` directly.
The results are the same as json.loads / json.dumps(separators=(",", ":")).
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False  # typing costs an import on the start path; mypy reads the block below
if TYPE_CHECKING:
    from typing import Any


class _DecodeContext:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


_scan = _json.make_scanner(_DecodeContext())  # type: ignore[arg-type]
_encode = _json.make_encoder(None, None, _json.encode_basestring_ascii, None, ":", ",", False, False, True)  # type: ignore[arg-type]  # noqa: E501
_WS = " \t\n\r"


class JSONError(ValueError):
    """The text is not one JSON document."""


def loads(data: str | bytes) -> Any:
    if isinstance(data, (bytes, bytearray)):
        # utf-8 with an optional BOM, without loading the utf-8-sig codec (an import on the start path)
        text = (data[3:] if data[:3] == b"\xef\xbb\xbf" else data).decode("utf-8")
    else:
        text = data
    start = len(text) - len(text.lstrip(_WS))
    try:
        value, end = _scan(text, start)
    except StopIteration as e:
        raise JSONError(f"Expecting value: char {e.value}") from None
    except ValueError as e:
        raise JSONError(str(e)) from None
    if text[end:].strip(_WS):
        raise JSONError(f"Extra data: char {end}")
    return value


def dumps(value: object) -> str:
    return "".join(_encode(value, 0))


def dumps_indent(value: object, indent: int = 2, _level: int = 0) -> str:
    """Like json.dumps(value, indent=indent): nested objects and arrays on their own lines."""
    pad = " " * (indent * (_level + 1))
    end = " " * (indent * _level)
    if isinstance(value, dict) and value:
        items = [f"{pad}{dumps(str(k))}: {dumps_indent(v, indent, _level + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + end + "}"
    if isinstance(value, list) and value:
        items = [pad + dumps_indent(v, indent, _level + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + end + "]"
    return dumps(value)
