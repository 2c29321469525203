//! The f64 oracle of the softmax family, written from the formulas of `docs/numerics.md`
//! ("The softmax family"), and its tolerance table.

use super::ulp;

/// One row's loss and gradient in f64 (unreduced, factor 1), with the magnitude of the terms
/// each gradient element is a difference of.
#[derive(Clone, Debug)]
pub struct RowOut {
    pub loss: f64,
    pub grad: Vec<f64>,
    /// `|p_j G_{-j}| + |K_j g_j q_j|`: the scale of the subtraction that forms `grad[j]`.
    pub scale: Vec<f64>,
}

/// `z_c - m` in f64 (exact for f32 inputs within 2^29 of each other), or rounded to f32 as
/// the crate computes it; `0` for the top classes; the limits at infinities.
fn diffs(z: &[f32], round: bool) -> Vec<f64> {
    let m = z.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    z.iter()
        .map(|&v| {
            if v == m {
                0.0
            } else if round {
                (v - m) as f64
            } else {
                v as f64 - m as f64
            }
        })
        .collect()
}

/// The row of logits `z` with class weights `k_c = s alpha w_c y'_c` at exponent `gamma`:
/// `l = sum_c k_c q_c^gamma (-ln p_c)`, `dl/dz_j = p_j G_{-j} - k_j g_j q_j` with
/// `g = q^gamma (1 + gamma p (-ln p) / q)` and `G_{-j} = sum_{c != j} k_c g_c`.
/// With `round`, `z_c - m` is first rounded to f32 (the perturbation the crate's inputs
/// force; the difference between the two is the conditioning of the tolerance).
pub fn row(z: &[f32], k: &[f64], gamma: f64, round: bool) -> RowOut {
    let d = diffs(z, round);
    let n = z.len();
    let top: Vec<bool> = d.iter().map(|&v| v == 0.0).collect();
    let ties = top.iter().filter(|&&t| t).count() as f64;
    let t: f64 = d
        .iter()
        .zip(&top)
        .filter(|(_, t)| !**t)
        .map(|(v, _)| v.exp())
        .sum::<f64>()
        + (ties - 1.0);
    let s = 1.0 + t;
    let ln_s = t.ln_1p();
    let mut lsum = 0.0;
    let mut kg = vec![0.0; n];
    let mut qs = vec![0.0; n];
    let mut ps = vec![0.0; n];
    for c in 0..n {
        let (p, q, l, rl) = if top[c] {
            let rl = if t > 0.0 { ln_s / t } else { 1.0 };
            (1.0 / s, t / s, ln_s, rl)
        } else {
            let e = d[c].exp();
            let p = e / s;
            let q = 1.0 - p;
            let l = ln_s - d[c];
            let rl = if p == 0.0 { 0.0 } else { p / q * l };
            (p, q, l, rl)
        };
        let m = if gamma == 0.0 { 1.0 } else { q.powf(gamma) };
        let g = m * (1.0 + gamma * rl);
        if k[c] != 0.0 {
            lsum += k[c] * m * l;
        }
        kg[c] = k[c] * g;
        qs[c] = q;
        ps[c] = p;
    }
    let big_g: f64 = kg.iter().sum();
    let mut grad = vec![0.0; n];
    let mut scale = vec![0.0; n];
    for j in 0..n {
        // G_{-j} summed directly (no cancellation).
        let rest: f64 = (0..n).filter(|&c| c != j).map(|c| kg[c]).sum();
        let rest = if n > 64 { big_g - kg[j] } else { rest };
        let a = ps[j] * rest;
        let b = kg[j] * qs[j];
        grad[j] = a - b;
        scale[j] = a.abs() + b.abs();
    }
    RowOut {
        loss: lsum,
        grad,
        scale,
    }
}

/// The tolerance table of the softmax family, in ULP of the scale of a result:
/// `SM_ULP + SM_GAMMA_ULP gamma` (+ `SM_WEIGHT_ULP` when weights, alpha or smoothing multiply
/// in f32), plus twice the change the f32 rounding of `z_c - m` alone causes (the
/// conditioning), plus a subnormal allowance of `SM_SUB_ABS` units of `2^-149` times the
/// largest weight and the number of classes: where the row's `T` is below `2^-126`, each
/// `e^(z_k - m)` it sums is a subnormal f32, rounded to a multiple of `2^-149` (an absolute
/// error of `2^-150` per class, which no relative bound can cover; only results near or
/// below `2^-126` are affected).
pub const SM_ULP: f64 = 8.0;
pub const SM_GAMMA_ULP: f64 = 1.0;
pub const SM_WEIGHT_ULP: f64 = 2.0;
pub const SM_SUB_ABS: f64 = 8.0;

/// The error of `got` against `exact` in ULP of `scale`, after the allowance for the
/// conditioning `forced = |exact - rounded|`: `(|got - exact| - 2 forced) / ulp(scale)`.
pub fn excess_ulps(
    got: f32,
    exact: f64,
    rounded: f64,
    scale: f64,
    kmax: f64,
    classes: usize,
) -> f64 {
    if got.is_nan() {
        return f64::INFINITY;
    }
    if exact.is_infinite() || got.is_infinite() {
        return if got as f64 == exact {
            0.0
        } else {
            f64::INFINITY
        };
    }
    let forced = (exact - rounded).abs();
    let err = ((got as f64) - exact).abs() - 2.0 * forced;
    if err <= SM_SUB_ABS * kmax.max(1.0) * classes as f64 * (2f64).powi(-149) {
        return 0.0;
    }
    err.max(0.0) / ulp(scale.abs().max(f32::MIN_POSITIVE as f64))
}

/// The allowed ULP at `gamma`, weighted or not.
pub fn allowed(gamma: f64, weighted: bool) -> f64 {
    SM_ULP + SM_GAMMA_ULP * gamma + if weighted { SM_WEIGHT_ULP } else { 0.0 }
}

/// xorshift64*: deterministic inputs without a dependency.
pub struct Rng(pub u64);
impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn range(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.unit()
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}
