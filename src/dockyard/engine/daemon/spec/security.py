"""Privileged mode, CapAdd/CapDrop and HostConfig.SecurityOpt.

SecurityOpt words accepted (dockerd 20.10): ``no-new-privileges`` and
``no-new-privileges=true|false`` (also with ``:``), ``seccomp=unconfined``,
``seccomp=<profile JSON>`` (the CLI sends the file's content), and
``apparmor=...`` / ``label=...`` / ``disable``. This host has neither
AppArmor nor SELinux enforcement in Dockyard, so apparmor and label values
are accepted, kept, and have no effect on the spec (dockerd on a host without
AppArmor behaves the same for apparmor=).
"""

from __future__ import annotations

from dataclasses import dataclass

from ....errors import InvalidArgument
from .defaults import DEFAULT_CAPS, all_capabilities

_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


@dataclass(frozen=True)
class SecurityOptions:
    """The parsed SecurityOpt list."""

    no_new_privileges: bool = False
    seccomp: str = ""  # "" = daemon default profile, "unconfined", or a profile's JSON text
    apparmor: str = ""
    labels: tuple[str, ...] = ()


def parse_security_opts(opts: list[str] | None, default_no_new_privileges: bool = False) -> SecurityOptions:
    """HostConfig.SecurityOpt -> SecurityOptions; Docker's ``invalid --security-opt`` errors."""
    nnp, seccomp, apparmor, labels = default_no_new_privileges, "", "", []
    for opt in opts or []:
        if opt == "no-new-privileges":
            nnp = True
            continue
        if opt == "disable":
            labels.append("disable")
            continue
        sep = "=" if "=" in opt else ":" if ":" in opt else ""
        if not sep:
            raise InvalidArgument(f'invalid --security-opt 1: "{opt}"')
        key, value = opt.split(sep, 1)
        if key == "label":
            labels.append(value)
        elif key == "apparmor":
            apparmor = value
        elif key == "seccomp":
            seccomp = value
        elif key == "no-new-privileges" and value in _TRUE + _FALSE:
            nnp = value in _TRUE
        else:
            raise InvalidArgument(f'invalid --security-opt 2: "{opt}"')
    return SecurityOptions(nnp, seccomp, apparmor, tuple(labels))


def normalize_capabilities(caps: list[str] | None) -> list[str]:
    """Upper-case and CAP_-prefix CapAdd/CapDrop names ("ALL" kept); unknown ones are an error."""
    valid = all_capabilities()
    out = []
    for cap in caps or []:
        cap = cap.upper()
        if cap != "ALL":
            if not cap.startswith("CAP_"):
                cap = "CAP_" + cap
            if cap not in valid:
                raise InvalidArgument(f'unknown capability: "{cap}"')
        out.append(cap)
    return out


def container_capabilities(cap_add: list[str] | None, cap_drop: list[str] | None, privileged: bool) -> list[str]:
    """The capability list of a container (Docker's TweakCapabilities)."""
    if privileged:
        return all_capabilities()
    if not cap_add and not cap_drop:
        return list(DEFAULT_CAPS)
    drops = normalize_capabilities(cap_drop)
    adds = normalize_capabilities(cap_add)
    if "ALL" in adds:
        return [c for c in all_capabilities() if c not in drops]
    if "ALL" in drops:
        return adds
    return [c for c in DEFAULT_CAPS if c not in drops] + adds


def capabilities_for(caps: list[str], uid: int) -> dict:
    """process.capabilities: root gets bounding/effective/permitted, others bounding only.

    (Docker 20.10.18+: no inheritable set, and nothing effective for a
    non-root user, matching what execve would give that user.)
    """
    if uid == 0:
        return {"bounding": list(caps), "effective": list(caps), "permitted": list(caps)}
    return {"bounding": list(caps)}
