"""Capabilities, SecurityOpt, and Docker seccomp profiles rendered for the runtime."""

from __future__ import annotations

import json

import pytest

from dockyard.engine.daemon.spec import container_capabilities, default_profile, parse_security_opts
from dockyard.engine.daemon.spec.defaults import DEFAULT_CAPS, all_capabilities
from dockyard.engine.daemon.spec.security import SecurityOptions
from dockyard.engine.daemon.spec.seccomp_profile import load_profile, to_oci
from dockyard.errors import InvalidArgument
from dockyard.runtime import seccomp
from tests.unit.test_seccomp import DOCKER_NAMES, NR, RET_ALLOW, libseccomp, ret_errno, run_bpf  # noqa: F401

X86 = dict(arch="amd64", kernel=(6, 1))


def test_capabilities():
    assert container_capabilities(None, None, False) == list(DEFAULT_CAPS)
    assert container_capabilities(None, None, True) == all_capabilities()
    got = container_capabilities(["net_admin", "CAP_SYS_TIME"], ["mknod", "CAP_NET_RAW"], False)
    assert got == [c for c in DEFAULT_CAPS if c not in ("CAP_MKNOD", "CAP_NET_RAW")] + ["CAP_NET_ADMIN", "CAP_SYS_TIME"]
    assert container_capabilities(["ALL"], ["sys_admin"], False) == [c for c in all_capabilities() if c != "CAP_SYS_ADMIN"]
    assert container_capabilities(["chown"], ["all"], False) == ["CAP_CHOWN"]
    with pytest.raises(InvalidArgument, match='^unknown capability: "CAP_FLY"$'):
        container_capabilities(["fly"], None, False)


def test_all_capabilities_stop_at_audit_read():
    caps = all_capabilities()
    assert caps[0] == "CAP_CHOWN" and "CAP_SYS_ADMIN" in caps and "CAP_BPF" not in caps
    assert caps[-1] in ("CAP_AUDIT_READ", "CAP_BLOCK_SUSPEND")


def test_security_opts():
    assert parse_security_opts(None) == SecurityOptions()
    got = parse_security_opts(["no-new-privileges", "apparmor=unconfined", "label=disable", "seccomp=unconfined"])
    assert got == SecurityOptions(True, "unconfined", "unconfined", ("disable",))
    assert parse_security_opts(["no-new-privileges:false"], default_no_new_privileges=True).no_new_privileges is False
    assert parse_security_opts(["no-new-privileges=true"]).no_new_privileges is True
    profile = json.dumps({"defaultAction": "SCMP_ACT_ALLOW"})
    assert parse_security_opts(["seccomp=" + profile]).seccomp == profile


@pytest.mark.parametrize("opt, message", [
    ("bogus", 'invalid --security-opt 1: "bogus"'),
    ("foo=bar", 'invalid --security-opt 2: "foo=bar"'),
    ("no-new-privileges=maybe", 'invalid --security-opt 2: "no-new-privileges=maybe"'),
])
def test_security_opt_errors(opt, message):
    with pytest.raises(InvalidArgument) as e:
        parse_security_opts([opt])
    assert str(e.value) == message


def _names(oci: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for call in oci["syscalls"]:
        for name in call["names"]:
            out.setdefault(name, []).append(call)
    return out


def test_default_profile_for_default_caps():
    oci = to_oci(default_profile(), list(DEFAULT_CAPS), **X86)
    assert oci["defaultAction"] == "SCMP_ACT_ERRNO" and "defaultErrnoRet" not in oci  # EPERM
    assert oci["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    names = _names(oci)
    assert set(DOCKER_NAMES) - set(names) == {"name_to_handle_at", "pkey_alloc", "pkey_free", "pkey_mprotect"}
    for allowed in ("chroot", "arch_prctl", "modify_ldt", "ptrace", "socket"):
        assert allowed in names
    for denied in ("mount", "unshare", "setns", "reboot", "acct", "bpf", "init_module", "cacheflush"):
        assert denied not in names
    assert names["clone"] == [{"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                               "args": [{"index": 0, "value": 0x7E020000, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]
    assert names["clone3"] == [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
    seccomp.validate(oci)


def test_default_profile_with_more_caps_and_old_kernel():
    caps = list(DEFAULT_CAPS) + ["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"]
    names = _names(to_oci(default_profile(), caps, arch="amd64", kernel=(4, 4)))
    assert names["clone"] == [{"names": names["clone"][0]["names"], "action": "SCMP_ACT_ALLOW"}]
    assert "clone3" in names["clone"][0]["names"] and "mount" in names and "process_vm_readv" in names
    assert all(c["action"] == "SCMP_ACT_ALLOW" for c in names["clone3"])
    assert len(names["ptrace"]) == 1  # only via CAP_SYS_PTRACE: the 4.8 rule does not apply on 4.4
    arm = to_oci(default_profile(), list(DEFAULT_CAPS), arch="arm64", kernel=(6, 1))
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"] and "cacheflush" in _names(arm)


def test_custom_profile_conversion():
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            {"name": "mkdir", "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "args": []},
            {"names": ["chmod"], "action": "SCMP_ACT_KILL", "excludes": {"caps": ["CAP_FOWNER"]}},
            {"names": ["kexec_load"], "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "3.12"}},
        ],
    }
    oci = to_oci(load_profile(json.dumps(profile)), ["CAP_CHOWN"], **X86)
    assert oci == {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        {"names": ["chmod"], "action": "SCMP_ACT_KILL"},
        {"names": ["kexec_load"], "action": "SCMP_ACT_ERRNO"}]}
    assert to_oci({"syscalls": []}, []) is None


@pytest.mark.parametrize("profile, message", [
    ("{nope", "Decoding seccomp profile failed"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "archMap": [{}]}',
     "'architectures' and 'archMap' were specified"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ALLOW"}]}',
     "'name' and 'names' were specified"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["b"], "includes": {"minKernel": "4"}}]}',
     'invalid kernel version: "4"'),
])
def test_custom_profile_errors(profile, message):
    with pytest.raises(InvalidArgument, match=message):
        to_oci(load_profile(profile), [], **X86)


def test_default_profile_compiles_with_the_runtime(libseccomp):  # noqa: F811
    prog = seccomp.build(to_oci(default_profile(), list(DEFAULT_CAPS), **X86)).bpf
    assert run_bpf(prog, NR["read"]) == RET_ALLOW
    assert run_bpf(prog, NR["acct"]) == ret_errno(1)
    assert run_bpf(prog, NR["clone3"]) == ret_errno(38)
    assert run_bpf(prog, NR["clone"], (17,)) == RET_ALLOW
    assert run_bpf(prog, NR["clone"], (0x10000000 | 17,)) == ret_errno(1)
    assert run_bpf(prog, NR["personality"], (0xFFFFFFFF,)) == RET_ALLOW
    assert run_bpf(prog, NR["personality"], (5,)) == ret_errno(1)
    admin = seccomp.build(to_oci(default_profile(), list(DEFAULT_CAPS) + ["CAP_SYS_ADMIN"], **X86)).bpf
    assert run_bpf(admin, NR["clone"], (0x10000000 | 17,)) == RET_ALLOW
    assert run_bpf(admin, NR["clone3"]) == RET_ALLOW
