"""``features``: what this runtime implements (runtime-spec features.md shape)."""

from __future__ import annotations

import json

from . import mountopts


def main(ctx, command, opts, args) -> int:
    from ..kernel.consts import NAMESPACE_FLAGS
    from .capabilities import CAP_NAMES

    from .hooks import run_hooks  # noqa: F401  (hooks are supported)
    from ..oci.runtime_spec import HOOK_NAMES

    features = {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.1",
        "hooks": list(HOOK_NAMES),
        "mountOptions": sorted(set(mountopts.FLAGS) | set(mountopts.PROPAGATION) | set(mountopts.RECURSIVE)
                               | {"tmpcopyup"}),
        "linux": {
            "namespaces": sorted(NAMESPACE_FLAGS),
            "capabilities": sorted(CAP_NAMES, key=CAP_NAMES.__getitem__),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False, "rdma": False},
            "seccomp": _seccomp(),
            "apparmor": {"enabled": True},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": False}},
        },
        "annotations": {"org.opencontainers.runc.version": "dockyard-runtime", "io.dockyard.runtime.version": "0.1.0"},
    }
    print(json.dumps(features, indent=4))
    return 0


def _seccomp() -> dict:
    return {
        "enabled": True,
        "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
        "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                      "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
        "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG"],
        "supportedFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG"],
    }
