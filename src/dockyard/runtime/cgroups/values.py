"""Typed access to the fields of an OCI ``linux.resources`` object.

config.json is user input: a field of the wrong type is an InvalidArgument
naming the field (``memory.limit``), never a crash or a value written to the
kernel unchecked.
"""

from __future__ import annotations

from ...errors import InvalidArgument


def section(resources: dict, key: str) -> dict:
    """``resources[key]`` as a dict ({} when absent or null)."""
    value = resources.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"resources.{key} must be an object")
    return value


def items(resources: dict, key: str) -> list:
    """``resources[key]`` as a list ([] when absent or null)."""
    value = resources.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidArgument(f"resources.{key} must be an array")
    return value


def integer(obj: dict, key: str, where: str, default: int = 0) -> int:
    """An integer field; ``default`` when absent or null (runc's "unset" 0)."""
    value = obj.get(key)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument(f"{where}.{key} must be an integer, not {value!r}")
    return value


def optional(obj: dict, key: str, where: str) -> int | None:
    """An integer field that distinguishes absent (None) from 0."""
    if obj.get(key) is None:
        return None
    return integer(obj, key, where)


def string(obj: dict, key: str, where: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidArgument(f"{where}.{key} must be a string, not {value!r}")
    return value


def uint64(value: int) -> int:
    """``value`` wrapped to an unsigned 64-bit number, as Go's uint64 math does."""
    return value & ((1 << 64) - 1)
