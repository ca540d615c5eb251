"""A Docker-format seccomp profile -> OCI linux.seccomp for this host.

Docker profiles carry conditions the OCI form does not: ``archMap`` (pick
the native architecture and its sub-architectures) and per-rule
``includes`` / ``excludes`` on capabilities, architectures and a minimum
kernel. They are resolved here against the container's bounding set and the
host, as dockerd's setupSeccomp does.
"""

from __future__ import annotations

import json
import os
import platform

from ....errors import InvalidArgument

# uname machine -> (Docker/libseccomp arch word used in includes/excludes, OCI arch)
_NATIVE = {
    "x86_64": ("amd64", "SCMP_ARCH_X86_64"),
    "i386": ("x86", "SCMP_ARCH_X86"),
    "i686": ("x86", "SCMP_ARCH_X86"),
    "aarch64": ("arm64", "SCMP_ARCH_AARCH64"),
    "armv7l": ("arm", "SCMP_ARCH_ARM"),
    "ppc64le": ("ppc64le", "SCMP_ARCH_PPC64LE"),
    "s390x": ("s390x", "SCMP_ARCH_S390X"),
    "mips64": ("mips64", "SCMP_ARCH_MIPS64"),
}


def native_arch() -> tuple[str, str]:
    """(Docker arch word, OCI arch) of this host."""
    return _NATIVE.get(platform.machine(), (platform.machine(), ""))


def kernel_version() -> tuple[int, int]:
    """(major, minor) of the running kernel; suffixes ignored."""
    release = os.uname().release
    nums = []
    for part in release.split(".")[:2]:
        digits = "".join(ch for ch in part if ch.isdigit()) if part else ""
        nums.append(int(digits.split()[0]) if digits else 0)
    return (nums + [0, 0])[0], (nums + [0, 0])[1]


def _parse_min_kernel(text: object) -> tuple[int, int] | None:
    if text in (None, ""):
        return None
    parts = str(text).split(".")
    bad = f'invalid kernel version: "{text}", expected "<kernel>.<major>"'
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise InvalidArgument(bad)
    version = (int(parts[0]), int(parts[1]))
    if version == (0, 0):
        raise InvalidArgument(bad + ": version cannot be 0.0")
    return version


def load_profile(text: str) -> dict:
    """The JSON of ``seccomp=<profile>`` as a dict (Docker's decoding error text)."""
    try:
        profile = json.loads(text)
    except ValueError as e:
        raise InvalidArgument(f"Decoding seccomp profile failed: {e}") from None
    if not isinstance(profile, dict):
        raise InvalidArgument("Decoding seccomp profile failed: the profile must be a JSON object")
    return profile


def _filter_applies(call: dict, bounding: list[str], arch: str, kernel: tuple[int, int]) -> bool:
    """Whether a rule survives its excludes / includes conditions."""
    excludes = call.get("excludes") or {}
    includes = call.get("includes") or {}
    if arch in (excludes.get("arches") or []):
        return False
    if any(c in bounding for c in excludes.get("caps") or []):
        return False
    ex_kernel = _parse_min_kernel(excludes.get("minKernel"))
    if ex_kernel and kernel >= ex_kernel:
        return False
    if includes.get("arches") and arch not in includes["arches"]:
        return False
    if not all(c in bounding for c in includes.get("caps") or []):
        return False
    in_kernel = _parse_min_kernel(includes.get("minKernel"))
    return not (in_kernel and kernel < in_kernel)


def _architectures(profile: dict, oci_arch: str) -> list[str]:
    arches = profile.get("architectures") or []
    arch_map = profile.get("archMap") or []
    if arches and arch_map:
        raise InvalidArgument(
            "'architectures' and 'archMap' were specified in the seccomp profile, use either 'architectures' or 'archMap'")
    out = list(arches)
    for entry in arch_map:
        if entry.get("architecture") == oci_arch:
            out += [entry["architecture"], *(entry.get("subArchitectures") or [])]
            break
    return out


def _convert_call(call: dict) -> dict:
    if call.get("name") and call.get("names"):
        raise InvalidArgument("'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'")
    out: dict = {"names": [call["name"]] if call.get("name") else list(call.get("names") or []),
                 "action": call.get("action", "")}
    if call.get("errnoRet") is not None:
        out["errnoRet"] = call["errnoRet"]
    if call.get("args"):
        out["args"] = [dict(a) for a in call["args"]]
    return out


def to_oci(profile: dict, bounding: list[str], *, arch: str | None = None,
           kernel: tuple[int, int] | None = None) -> dict | None:
    """OCI linux.seccomp for ``profile`` given the container's bounding set (None: no seccomp)."""
    if not profile.get("defaultAction") and not profile.get("syscalls"):
        return None
    word, oci_arch = native_arch()
    if arch is not None:
        word, oci_arch = arch, next((o for w, o in _NATIVE.values() if w == arch), "")
    kernel = kernel or kernel_version()
    out: dict = {"defaultAction": profile.get("defaultAction", "")}
    if profile.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    arches = _architectures(profile, oci_arch)
    if arches:
        out["architectures"] = arches
    for key in ("flags", "listenerPath", "listenerMetadata"):
        if profile.get(key):
            out[key] = profile[key]
    calls = profile.get("syscalls") or []
    if not isinstance(calls, list):
        raise InvalidArgument("Decoding seccomp profile failed: syscalls must be a list")
    out["syscalls"] = [_convert_call(c) for c in calls if _filter_applies(c, bounding, word, kernel)]
    return out
