#!/usr/bin/env python3
"""Fit the polynomials of src/math.rs and check the committed coefficients.

Usage: python3 tools/fit_polynomials.py [--iterations N] [--grid N] [--check N]

Needs Python 3 and numpy only; runs in a few seconds. For each fitted polynomial of
src/math.rs (`exp`'s P and `ln_1p_unit`'s R) it

  1. fits the coefficients by weighted least squares with Lawson iterations (the weights are
     multiplied by the absolute residual after every solve, which drives the fit toward the
     minimax one) on a uniform grid of the domain, minimising the RELATIVE error of the
     function's result (not of the polynomial alone);
  2. rounds them to the nearest f32;
  3. prints the f64 and f32 coefficients with the f32 bits, the maximum relative error over a
     dense grid of the domain of the f64 fit, of its f32 rounding and of the coefficients
     committed in src/math.rs (read from the source), and whether the committed ones are
     reproduced bit for bit (if not: the bit difference of each, in f32 ULPs, and the Lawson
     iterate closest to them);
  4. for comparison only (nothing in src/math.rs uses them), f32 coefficients from a
     sequential rounding: round the lowest coefficient to f32, refit the higher ones with it
     fixed, and so on, with their bits and error.

For `ln`, whose R is the truncated series 2/(2j+1) and not a fit, it prints the f32 bits, the
truncation bound and the measured error. All errors are of the polynomial with the given
coefficients evaluated in f64 (truncation error); the f32 evaluation error is what the unit
tests of src/math.rs assert (`cargo test --release --lib math`).
"""

import argparse
import os
import re
import sys
import time

# One BLAS thread: the solves are small, and threads only cost on a busy machine.
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

LN2 = float(np.log(2.0))
SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "math.rs")


def f32_bits(values):
    """The IEEE binary32 encodings of the nearest f32 of each value."""
    return np.asarray(values, dtype=np.float64).astype(np.float32).view(np.uint32)


def hex_bits(b):
    """`0x3eff_fffe`, as the doc comments of src/math.rs write them."""
    return f"0x{int(b) >> 16:04x}_{int(b) & 0xFFFF:04x}"


def horner(coeffs, x):
    acc = np.full_like(x, coeffs[-1])
    for c in coeffs[-2::-1]:
        acc = acc * x + c
    return acc


def committed(name, count):
    """The decimal literals of `const NAME: [f32; count] = [...]` in src/math.rs, as f32."""
    with open(SRC, encoding="utf-8") as f:
        src = f.read()
    m = re.search(r"const %s: \[f32; %d\] = \[(.*?)\];" % (name, count), src, re.S)
    if m is None:
        sys.exit(f"fit_polynomials: const {name}: [f32; {count}] not found in {SRC}")
    body = re.sub(r"//[^\n]*", "", m.group(1))
    lits = [t.strip().replace("_", "") for t in body.split(",") if t.strip()]
    if len(lits) != count:
        sys.exit(f"fit_polynomials: {name} has {len(lits)} literals, expected {count}")
    return np.array(lits, dtype=np.float64).astype(np.float32).astype(np.float64)


def lawson(A, b, iterations):
    """Weighted least squares with Lawson's reweighting: returns every iterate's solution."""
    w = np.full(len(b), 1.0 / len(b))
    out = []
    for _ in range(iterations):
        sw = np.sqrt(w)
        c = np.linalg.lstsq(A * sw[:, None], b * sw, rcond=None)[0]
        out.append(c)
        r = np.abs(A @ c - b)
        w = w * r
        w /= w.sum()
    return out


def report_fit(title, domain, target, method, coeffs_of, rel_err, fit_grid, check_grid,
               committed_c, iterations):
    """Fit, round, measure, compare; prints one block and returns the measured bounds."""
    print(f"== {title}")
    print(f"   domain:  {domain}")
    print(f"   target:  {target}")
    print(f"   method:  {method}")
    A, b = coeffs_of(fit_grid)
    iterates = lawson(A, b, iterations)
    seq = []
    for k in range(A.shape[1]):
        rhs = b - A[:, :k] @ np.array(seq) if seq else b
        seq.append(float(np.float32(lawson(A[:, k:], rhs, iterations)[-1][0])))
    seq = np.array(seq)
    c64 = iterates[-1]
    c32 = np.float32(c64).astype(np.float64)
    bits_fit = f32_bits(c32)
    bits_com = f32_bits(committed_c)
    err = lambda c: float(np.abs(rel_err(c, check_grid)).max())  # noqa: E731
    e64, e32, ecom, eseq = err(c64), err(c32), err(committed_c), err(seq)
    print("   k  fit (f64)                 fit (f32)         bits         committed (f32)   bits")
    for k in range(len(c64)):
        print(f"   {k}  {c64[k]: .17e}  {c32[k]: .9e}  {hex_bits(bits_fit[k])}  "
              f"{committed_c[k]: .9e}  {hex_bits(bits_com[k])}")
    ulp = 2.0**-24
    print(f"   max relative error over {len(check_grid)} points (f64 evaluation):")
    print(f"     fit, f64 coefficients:        {e64:.4e}  ({e64 / ulp:.3f} x 2^-24)")
    print(f"     fit, rounded to f32:          {e32:.4e}  ({e32 / ulp:.3f} x 2^-24)")
    print(f"     committed (src/math.rs):      {ecom:.4e}  ({ecom / ulp:.3f} x 2^-24)")
    print(f"     sequential f32 rounding:      {eseq:.4e}  ({eseq / ulp:.3f} x 2^-24), bits "
          + " ".join(hex_bits(v) for v in f32_bits(seq)))
    diff = bits_fit.astype(np.int64) - bits_com.astype(np.int64)
    if not diff.any():
        same = [i + 1 for i, c in enumerate(iterates)
                if not (f32_bits(c).astype(np.int64) - bits_com.astype(np.int64)).any()]
        print(f"   committed coefficients REPRODUCED bit for bit (Lawson iterates "
              f"{same[0]}..{same[-1]} of {iterations} round to them)")
    else:
        dists = [np.abs(f32_bits(c).astype(np.int64) - bits_com.astype(np.int64))
                 for c in iterates]
        best = min(range(len(dists)), key=lambda i: (dists[i].sum(), i))
        closest = f32_bits(iterates[best]).astype(np.int64) - bits_com.astype(np.int64)
        print("   committed coefficients NOT reproduced: fit minus committed, in f32 ULPs: "
              f"{diff.tolist()}")
        print(f"     (closest Lawson iterate: {best + 1}, {closest.tolist()}; the procedure "
              "that produced the committed bits is not known)")
    print()
    return e64, e32, ecom, eseq


def exp_fit(args, title, name, degree, divisor):
    """`e^r = 1 + r + r^2 C(r)` with `C` of `degree` on `|r| <= 1.002 ln2 / divisor`."""
    # Relative error (1 + r + r^2 C - e^r) / e^r, linear in C: rows r^(k+2) e^-r, right-hand
    # side (e^r - 1 - r) e^-r (from expm1: no cancellation).
    rmax = 1.002 * LN2 / divisor

    def system(r):
        A = np.stack([r ** (k + 2) * np.exp(-r) for k in range(degree + 1)], axis=1)
        return A, (np.expm1(r) - r) * np.exp(-r)

    def rel_err(c, r):
        return (r + r * r * horner(c, r) - np.expm1(r)) * np.exp(-r)

    fit = np.linspace(-rmax, rmax, args.grid)
    check = np.linspace(-rmax, rmax, args.check)
    return report_fit(
        f"{title}: {name}, degree {degree}, e^r = 1 + r + r^2 {name}(r)",
        f"|r| <= 1.002 ln2/{divisor} = {rmax:.9f}",
        f"{name}(r) ~ (e^r - 1 - r)/r^2, minimising the relative error of "
        f"1 + r + r^2 {name}(r) (weight r^2 e^-r)",
        f"Lawson-weighted least squares, {args.iterations} iterations, "
        f"{args.grid} uniform points",
        system, rel_err, fit, check, committed(name, degree + 1), args.iterations)


def exp_problem(args):
    return exp_fit(args, "exp", "P", 4, 2)


def exp_table_problem(args):
    # The table form's much smaller domain: r = x - k ln 2 with k a multiple of 1/16.
    return exp_fit(args, "exp_table", "Q", 1, 32)


def ln_1p_problem(args):
    # ln(1+e) = e + e^2 R(e); relative error (e + e^2 R - l) / l, l = ln(1+e): rows
    # e^(k+2) / l, right-hand side (l - e) / l. e = 0 is left out (0/0; the error is 0 there).
    def system(e):
        l = np.log1p(e)
        A = np.stack([e ** (k + 2) / l for k in range(9)], axis=1)
        return A, (l - e) / l

    def rel_err(c, e):
        l = np.log1p(e)
        return (e + e * e * horner(c, e) - l) / l

    fit = np.linspace(0.0, 1.0, args.grid)[1:]
    check = np.concatenate([np.linspace(0.0, 1.0, args.check)[1:],
                            np.logspace(-40, 0, 4001)])
    return report_fit(
        "ln_1p_unit: R, degree 8, ln(1+e) = e + e^2 R(e)",
        "e in [0, 1]",
        "R(e) ~ (ln(1+e) - e)/e^2, minimising the relative error of e + e^2 R(e) "
        "(weight e^2/ln(1+e))",
        f"Lawson-weighted least squares, {args.iterations} iterations, "
        f"{args.grid} uniform points",
        system, rel_err, fit, check, committed("R", 9), args.iterations)


def ln_series(args):
    print("== ln: R, degree 5 in z = s^2, ln(1+f) = f - f^2/2 + s (f^2/2 + R)")
    # m in [SQRT_2/2, SQRT_2) with the f32 SQRT_2 (the code halves m >= SQRT_2), f = m - 1.
    sqrt2 = float(np.float32(np.sqrt(2.0)))
    flo, fhi = sqrt2 * 0.5 - 1.0, sqrt2 - 1.0
    smax = max(abs(flo / (2 + flo)), fhi / (2 + fhi))
    print(f"   domain:  f in [{flo:.9f}, {fhi:.9f}), s = f/(2+f), |s| <= {smax:.9f}")
    print("   target:  2 atanh(s) = ln(1+f), R(z) = sum_{j=1..5} 2 z^j / (2j+1)")
    print("   method:  NOT a fit: the Taylor series of 2 atanh(s)/s - 2 in s^2, truncated "
          "after j = 5")
    exact = [2.0 / (2 * j + 1) for j in range(1, 6)]
    # The f32 constants as `L::splat(2.0 / 11.0)` rounds them: one correctly rounded
    # f32 division.
    c32 = [float(np.float32(2.0) / np.float32(2 * j + 1)) for j in range(1, 6)]
    print("   j  2/(2j+1) (f32)    bits")
    for j, c in enumerate(c32, start=1):
        print(f"   {j}  {c: .9e}  {hex_bits(f32_bits([c])[0])}")
    f = np.linspace(flo, fhi, args.check)
    f = f[f != 0.0]
    s = f / (2.0 + f)
    z = s * s
    t = np.log1p(f)

    def rel_err(coeffs):
        r = horner(coeffs, z) * z
        h = 0.5 * f * f
        return float(np.abs((f - (h - s * (h + r)) - t) / t).max())

    # tail = 2 sum_{j>=6} |s|^(2j+1)/(2j+1) <= 2|s|^13 / (13 (1 - s^2)), ln(1+f) >= 2|s|.
    bound = smax**12 / (13.0 * (1.0 - smax * smax))
    etr, e32 = rel_err(exact), rel_err(c32)
    ulp = 2.0**-24
    print(f"   truncation bound s^12 / (13 (1 - s^2)) at |s| max: {bound:.4e} relative")
    print(f"   max relative error over {len(f)} points (f64 evaluation):")
    print(f"     exact coefficients (truncation): {etr:.4e}  ({etr / ulp:.4f} x 2^-24)")
    print(f"     f32 coefficients (committed):    {e32:.4e}  ({e32 / ulp:.4f} x 2^-24)")
    print()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iterations", type=int, default=200, help="Lawson iterations (200)")
    ap.add_argument("--grid", type=int, default=20001, help="fitting points (20001)")
    ap.add_argument("--check", type=int, default=(1 << 21) + 1,
                    help="points of the dense check grid (2^21 + 1)")
    args = ap.parse_args()
    t0 = time.time()
    print(f"numpy {np.__version__}; errors are relative, 2^-24 = {2.0**-24:.4e} "
          "(half an f32 ULP at the bottom of a binade, one at its top)\n")
    exp_problem(args)
    exp_table_problem(args)
    ln_1p_problem(args)
    ln_series(args)
    print(f"done in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
