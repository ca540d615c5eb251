"""The cgroup v2 device filter: device rules compiled to an eBPF program.

cgroup v2 has no devices files; access is decided by a
BPF_PROG_TYPE_CGROUP_DEVICE program attached to the cgroup. The program
generated here has the shape of runc's (itself from crun):

    r2 = ctx->access_type & 0xffff      device type (1 block, 2 char)
    r3 = ctx->access_type >> 16         requested access (1 mknod, 2 read, 4 write)
    r4 = ctx->major; r5 = ctx->minor
    for each rule (clean list from the emulator, no "a" rules):
        if r2 != type goto next
        if access is not rwm:
            allow rule: if (r3 & access) != r3 goto next   (all of it allowed)
            deny rule:  if (r3 & access) == 0 goto next    (any of it denied)
        if major != *: if r4 != major goto next
        if minor != *: if r5 != minor goto next
        return allow
    next: ...
    return default (1 for an allow-all list, 0 for an allow-list)

The deny-rule test is where this differs from runc, whose filter only
denies a request entirely inside the rule's access (so a "w" deny lets an
O_RDWR open through); v1's kernel check, which the emulator models,
denies on any overlap, and so does this filter.

Instructions are encoded by hand (8 bytes each: opcode, dst|src<<4, off,
imm, little-endian); :mod:`dockyard.kernel.bpf` loads and attaches them.
"""

from __future__ import annotations

from ...errors import InvalidArgument
from .devices import Rule, cgroup_string, from_rules

LICENSE = "Apache"

# struct bpf_cgroup_dev_ctx (uapi/linux/bpf.h)
DEV_BLOCK = 1
DEV_CHAR = 2
ACC_MKNOD = 1
ACC_READ = 2
ACC_WRITE = 4

# opcodes
LDX_MEM_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W
ALU32_AND_K = 0x54  # BPF_ALU | BPF_AND | BPF_K
ALU32_RSH_K = 0x74  # BPF_ALU | BPF_RSH | BPF_K
ALU32_MOV_K = 0xB4  # BPF_ALU | BPF_MOV | BPF_K
ALU32_MOV_X = 0xBC  # BPF_ALU | BPF_MOV | BPF_X
JNE_K = 0x55  # BPF_JMP | BPF_JNE | BPF_K
JNE_X = 0x5D  # BPF_JMP | BPF_JNE | BPF_X
JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
EXIT = 0x95  # BPF_JMP | BPF_EXIT

_ACCESS = {"r": ACC_READ, "w": ACC_WRITE, "m": ACC_MKNOD}

# An instruction before encoding: (opcode, dst, src, off, imm); a jump to
# the next rule block carries off=None until the block's length is known.
Insn = tuple


def encode(insns: list[Insn]) -> bytes:
    """The kernel's byte form of a list of (opcode, dst, src, off, imm)."""
    out = bytearray()
    for code, dst, src, off, imm in insns:
        out.append(code)
        out.append((dst & 0x0F) | ((src & 0x0F) << 4))
        out += int(off).to_bytes(2, "little", signed=True)
        out += int(imm).to_bytes(4, "little", signed=True)
    return bytes(out)


def _prologue() -> list[Insn]:
    return [
        (LDX_MEM_W, 2, 1, 0, 0),
        (ALU32_AND_K, 2, 0, 0, 0xFFFF),
        (LDX_MEM_W, 3, 1, 0, 0),
        (ALU32_RSH_K, 3, 0, 0, 16),
        (LDX_MEM_W, 4, 1, 4, 0),
        (LDX_MEM_W, 5, 1, 8, 0),
    ]


def _int32(value: int, what: str) -> int:
    if value > 0xFFFFFFFF:
        raise InvalidArgument(f"invalid device {what} {value}")
    # runc passes the number as a signed 32-bit immediate
    return value - (1 << 32) if value >= 1 << 31 else value


def _block(rule: Rule) -> list[Insn]:
    typ, major, minor, perms, allow = rule
    if typ == "c":
        bpf_type = DEV_CHAR
    elif typ == "b":
        bpf_type = DEV_BLOCK
    else:
        raise InvalidArgument(f"invalid device type {typ!r} in the eBPF device filter")
    access = 0
    for ch in perms:
        if ch not in _ACCESS:
            raise InvalidArgument(f"unknown device access {ch!r}")
        access |= _ACCESS[ch]
    body: list[Insn] = [(JNE_K, 2, 0, None, bpf_type)]
    if access != ACC_READ | ACC_WRITE | ACC_MKNOD:
        body += [(ALU32_MOV_X, 1, 3, 0, 0), (ALU32_AND_K, 1, 0, 0, access)]
        if allow:  # every requested access must be allowed
            body.append((JNE_X, 1, 3, None, 0))
        else:  # any requested access that is denied denies
            body.append((JEQ_K, 1, 0, None, 0))
    if major >= 0:
        body.append((JNE_K, 4, 0, None, _int32(major, "major")))
    if minor >= 0:
        body.append((JNE_K, 5, 0, None, _int32(minor, "minor")))
    body += [(ALU32_MOV_K, 0, 0, 0, 1 if allow else 0), (EXIT, 0, 0, 0, 0)]
    # every "goto next" lands just past this block
    n = len(body)
    return [(c, d, s, (n - i - 1) if off is None else off, imm) for i, (c, d, s, off, imm) in enumerate(body)]


def program(rules: list[Rule]) -> list[Insn]:
    """The filter for parsed rules (see :mod:`.devices`)."""
    emu = from_rules(rules)
    insns = _prologue()
    for idx, rule in enumerate(emu.clean_rules()):
        if rule[0] == "a":
            if idx != 0 or rule[4] != emu.default_allow:
                raise InvalidArgument(f"internal error: misplaced wildcard device rule {cgroup_string(rule)}")
            continue
        if rule[4] == emu.default_allow:
            raise InvalidArgument(f"internal error: no-op device rule {cgroup_string(rule)}")
        insns += _block(rule)
    insns += [(ALU32_MOV_K, 0, 0, 0, 1 if emu.default_allow else 0), (EXIT, 0, 0, 0, 0)]
    return insns


def run(insns: list[Insn], dev_type: int, access: int, major: int, minor: int) -> int:
    """Interpret a generated program on one device access (for tests).

    Only the instructions this module emits are supported.
    """
    regs = [0] * 11
    ctx = [(access << 16) | dev_type, major, minor]
    pc = 0
    while True:
        code, dst, src, off, imm = insns[pc]
        pc += 1
        if code == LDX_MEM_W:
            regs[dst] = ctx[off // 4]
        elif code == ALU32_AND_K:
            regs[dst] = (regs[dst] & imm) & 0xFFFFFFFF
        elif code == ALU32_RSH_K:
            regs[dst] = (regs[dst] & 0xFFFFFFFF) >> imm
        elif code == ALU32_MOV_K:
            regs[dst] = imm & 0xFFFFFFFF
        elif code == ALU32_MOV_X:
            regs[dst] = regs[src] & 0xFFFFFFFF
        elif code == JNE_K:
            if regs[dst] != imm & ((1 << 64) - 1):
                pc += off
        elif code == JNE_X:
            if regs[dst] != regs[src]:
                pc += off
        elif code == JEQ_K:
            if regs[dst] == imm & ((1 << 64) - 1):
                pc += off
        elif code == EXIT:
            return regs[0]
        else:
            raise ValueError(f"unsupported opcode {code:#x}")
