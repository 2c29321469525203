//! Synthetic data: a seeded random source, class prototypes, and the two data sets. Features
//! are class prototypes (random unit directions, scaled) plus N(0, 1) noise in every dimension,
//! so a linear model fits them and the difficulty comes from the noise and the class counts.

use crate::model::DIM;

/// xorshift64* with a Box-Muller normal: reproducible without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform().max(1e-300), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, (self.uniform() * (i + 1) as f64) as usize);
        }
    }
}

/// `classes` random unit vectors of `DIM` dimensions, `[classes, DIM]`.
pub fn prototypes(rng: &mut Rng, classes: usize) -> Vec<f32> {
    let mut p = vec![0f32; classes * DIM];
    for row in p.chunks_exact_mut(DIM) {
        let v: Vec<f64> = (0..DIM).map(|_| rng.normal()).collect();
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        for (d, s) in row.iter_mut().zip(v) {
            *d = (s / norm) as f32;
        }
    }
    p
}

/// A feature row: N(0, 1) noise in every dimension.
fn noise(rng: &mut Rng, row: &mut [f32]) {
    for v in row {
        *v = rng.normal() as f32;
    }
}

/// `row += signal * prototype of class`.
fn add_prototype(row: &mut [f32], prototypes: &[f32], class: usize, signal: f32) {
    for (v, p) in row
        .iter_mut()
        .zip(&prototypes[class * DIM..(class + 1) * DIM])
    {
        *v += signal * p;
    }
}

/// Multi-label examples as rows: features `[n, DIM]`, labels `[n, C]` (0 or 1).
pub struct MultiLabel {
    pub x: Vec<f32>,
    pub y: Vec<u8>,
    pub n: usize,
}

/// Multi-label prototype length (against N(0, 1) noise per dimension).
const MULTI_SIGNAL: f32 = 4.0;

/// `n` examples; class `c` is present with probability `prior[c]`, independently of the
/// others; the features are the sum of the present classes' prototypes plus noise.
pub fn multi_label(rng: &mut Rng, prototypes: &[f32], prior: &[f64], n: usize) -> MultiLabel {
    let c = prior.len();
    let mut x = vec![0f32; n * DIM];
    let mut y = vec![0u8; n * c];
    for (row, labels) in x.chunks_exact_mut(DIM).zip(y.chunks_exact_mut(c)) {
        noise(rng, row);
        for (k, label) in labels.iter_mut().enumerate() {
            if rng.uniform() < prior[k] {
                *label = 1;
                add_prototype(row, prototypes, k, MULTI_SIGNAL);
            }
        }
    }
    MultiLabel { x, y, n }
}

/// Single-label examples: features `[n, DIM]`, one class index per row.
pub struct SingleLabel {
    pub x: Vec<f32>,
    pub y: Vec<u32>,
}

/// Single-label prototype length: the classes overlap enough that a balanced test set has
/// about 30% errors even for the most frequent classes (see the output).
const SINGLE_SIGNAL: f32 = 3.0;

/// `counts[c]` examples of class `c`: its prototype plus noise (in class order; the training
/// loop shuffles).
pub fn single_label(rng: &mut Rng, prototypes: &[f32], counts: &[u64]) -> SingleLabel {
    let y: Vec<u32> = (0..counts.len())
        .flat_map(|c| std::iter::repeat_n(c as u32, counts[c] as usize))
        .collect();
    let mut x = vec![0f32; y.len() * DIM];
    for (row, &c) in x.chunks_exact_mut(DIM).zip(&y) {
        noise(rng, row);
        add_prototype(row, prototypes, c as usize, SINGLE_SIGNAL);
    }
    SingleLabel { x, y }
}
