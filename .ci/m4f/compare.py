#!/usr/bin/env python3
"""The comparison of .ci/m4f.sh: the firmware's lines (Cortex-M4F under QEMU) against the host's.

    compare.py lines HOST FIRMWARE   exit 1 on a missing or extra line or a value out of bounds
    compare.py flash ELF BASELINE    the .text + .rodata bytes of both and their difference

A line is `TAG NAME HEX...` (the f32 bits of each result), `#` lines are comments. By tag:

- `scalar`: `Backend::Scalar` on both sides, which must give the same bits (the same IEEE
  operations in the same order, `libm` in Rust on both).
- `portable`: `Backend::Portable`, `wide`'s SSE2 on the host; compiled out on the M4 (no
  vector registers: the firmware says so in a `#` line and has no such lines). On a target
  that has it, the same bits when neither side fuses its multiply-adds (both say so in a `#`
  line), else held to the `auto` bounds. (Before it was compiled out there, the M4's
  lane-by-lane `Portable` matched the host's SSE2 one bit for bit.)
- `auto`: `Backend::Auto`, AVX-512 or AVX2 (fused multiply-adds) on the host, `Scalar` on
  the M4: other roundings, so the distance in ULP is reported per line and
  bounded by twice the crate's per-result tolerance (each side is within it of the exact
  value, tests/common/mod.rs and tests/common/softmax.rs):
  - hard targets and class indices: the tables give 8 ULP + 1 per unit of gamma (softmax,
    gamma <= 4.94 here) + 2 with weights: 15 at most, so BOUND_HARD = 32;
  - soft targets and distributions (`.soft.` / `.dense.` in the name): the sigmoid table is
    8 (1 + kappa) + 2 gamma + 2, with kappa the condition number of the result in x and t
    (e.g. grad[12] of sig.vidhoi.posw.smooth.soft.grad.mean, x = -6.99, t = 0.70: kappa_x
    14.4 + kappa_t 31.6, and 81 ULP between AVX-512 and Portable, 69 and 12 from the exact
    value): BOUND_SOFT = 1024 is 2 (8 (1 + kappa) + 2 * 2.5 + 2) at kappa = 62.
  The distance is counted in representable f32 between the two values (0 for equal bits).
"""
import re
import struct
import sys

BOUND_HARD = 32
BOUND_SOFT = 1024
SOFT = re.compile(r"\.(soft|dense)\.")


def read(path):
    lines, comments = {}, []
    with open(path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not line.strip():
                continue
            if line.startswith("#"):
                comments.append(line)
                continue
            tag, name, *vals = line.split()
            lines[(tag, name)] = [int(v, 16) for v in vals]
    return lines, comments


def ordered(bits):
    """The f32 with these bits as an integer in the order of the floats (-0 = +0 = 0)."""
    return bits if bits < 0x8000_0000 else 0x8000_0000 - bits


def ulps(a, b):
    if a == b:
        return 0
    nan = lambda v: (v & 0x7F80_0000) == 0x7F80_0000 and (v & 0x007F_FFFF) != 0
    if nan(a) or nan(b):
        return float("inf")
    return abs(ordered(a) - ordered(b))


def f32(bits):
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def lines(host_path, fw_path):
    host, hc = read(host_path)
    fw, fc = read(fw_path)
    unfused = all(
        any(c == "# Backend::Portable fuses mul_add: no" for c in cs) for cs in (hc, fc)
    )
    bad = []
    # Portable is compiled out where `wide` has no vector registers (the M4): its lines are
    # then absent from the firmware's output, and must be.
    fw_portable = "# Backend::Portable available: yes" in fc
    if "# Backend::Portable available: no" not in fc and not fw_portable:
        bad.append("the firmware does not say whether Backend::Portable is available")
    if not fw_portable:
        host = {k: v for k, v in host.items() if k[0] != "portable"}
        print("portable: unavailable on the firmware (compiled out there), not compared")
    for key in sorted(set(fw) - set(host)):
        bad.append(f"{key[0]} {key[1]}: on the firmware only")
    print(f"{'line':<52} {'max ULP':>8} {'bound':>6}  at [position in the line]")
    for (tag, name), want in host.items():
        got = fw.get((tag, name))
        if got is None:
            bad.append(f"{tag} {name}: missing from the firmware's output")
            continue
        if len(got) != len(want):
            bad.append(f"{tag} {name}: {len(got)} values, the host has {len(want)}")
            continue
        d = [ulps(a, b) for a, b in zip(want, got)]
        i = max(range(len(d)), key=d.__getitem__)
        exact = tag == "scalar" or (tag == "portable" and unfused)
        bound = 0 if exact else BOUND_SOFT if SOFT.search(name) else BOUND_HARD
        at = f"[{i}] host {f32(want[i])!r} m4f {f32(got[i])!r}" if d[i] else ""
        print(f"{tag + ' ' + name:<52} {d[i]:>8} {bound:>6}  {at}")
        if d[i] > bound:
            for j, (a, b) in enumerate(zip(want, got)):
                if ulps(a, b) > bound:
                    bad.append(
                        f"{tag} {name}[{j}]: host {a:08x} ({f32(a)!r}), "
                        f"m4f {b:08x} ({f32(b)!r}), {ulps(a, b)} ULP > {bound}"
                    )
    if fw_portable:
        print(f"portable compared {'bit for bit' if unfused else 'with the auto bounds (a side fuses)'}")
    for b in bad:
        print("MISMATCH " + b, file=sys.stderr)
    if bad:
        sys.exit(1)
    print(f"ok: {len(host)} lines, scalar bit for bit, auto within {BOUND_HARD}/{BOUND_SOFT} ULP")


def flash(path):
    """The bytes of .text + .rodata of an ELF32 little-endian file."""
    with open(path, "rb") as f:
        elf = f.read()
    assert elf[:4] == b"\x7fELF" and elf[4] == 1 and elf[5] == 1, f"{path}: not ELF32 LE"
    shoff, = struct.unpack_from("<I", elf, 0x20)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x2E)
    sec = [struct.unpack_from("<10I", elf, shoff + i * shentsize) for i in range(shnum)]
    strtab = sec[shstrndx][4]
    name = lambda s: elf[strtab + s[0] : elf.index(b"\0", strtab + s[0])].decode()
    return sum(s[5] for s in sec if name(s) in (".text", ".rodata"))


if __name__ == "__main__":
    if sys.argv[1:2] == ["lines"] and len(sys.argv) == 4:
        lines(sys.argv[2], sys.argv[3])
    elif sys.argv[1:2] == ["flash"] and len(sys.argv) == 4:
        a, b = flash(sys.argv[2]), flash(sys.argv[3])
        print(f"flash: firmware {a} bytes, without the crate {b} bytes, crate adds {a - b} bytes"
              " (.text + .rodata)")
    else:
        sys.exit(__doc__)
