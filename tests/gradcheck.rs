//! The oracle's analytic gradients (the formulas of `docs/numerics.md`) against f64 finite differences
//! of the oracle's loss, and the crate's gradients against the same differences.

mod common;

use common::{Opts, loss_grad};
use focal_loss::{Backend, Focal, Modulator, Reduction};

/// Richardson-extrapolated central difference: error O(h^4), h relative to |x|.
fn fd(x: f64, t: f64, o: &Opts) -> f64 {
    let h = 1e-4 * x.abs().max(1.0);
    let d = |h: f64| (loss_grad(x + h, t, o).0 - loss_grad(x - h, t, o).0) / (2.0 * h);
    (4.0 * d(h / 2.0) - d(h)) / 3.0
}

fn cases() -> Vec<(f64, f64, Opts)> {
    let mut v = Vec::new();
    let xs = [
        -30.0, -17.5, -8.0, -3.3, -1.0, -0.2, 0.0, 0.3, 1.7, 4.0, 9.5, 16.0, 25.0,
    ];
    let ts = [0.0, 1.0, 0.05, 0.3, 0.5, 0.8, 0.97];
    for m in [
        Modulator::Linear,
        Modulator::Geometric,
        Modulator::Separable,
    ] {
        for gamma in [0.0, 0.25, 0.5, 1.0, 2.0, 2.5, 4.0] {
            for (k, &x) in xs.iter().enumerate() {
                for (j, &t) in ts.iter().enumerate() {
                    let o = Opts {
                        gamma,
                        alpha: if (k + j) % 3 == 0 {
                            None
                        } else {
                            Some(0.1 + 0.1 * (j as f64))
                        },
                        pos_weight: [1.0, 2.5, 0.5][(k + 2 * j) % 3],
                        weight: [1.0, 0.7, 3.0][(2 * k + j) % 3],
                        eps: if j % 4 == 1 { 0.1 } else { 0.0 },
                        modulator: m,
                    };
                    v.push((x, t, o));
                }
            }
        }
    }
    v
}

#[test]
fn oracle_gradient_matches_finite_differences() {
    let mut worst = 0f64;
    for (x, t, o) in cases() {
        let (l, g) = loss_grad(x, t, &o);
        let d = fd(x, t, &o);
        // Finite differences are accurate to ~1e-9 of the loss scale here.
        let err = (g - d).abs();
        let tol = 1e-7 * g.abs() + 1e-10 * l.abs().max(1e-300) + 1e-300;
        worst = worst.max(err / (g.abs() + 1e-300));
        assert!(err <= tol, "x={x} t={t} {o:?}: analytic {g:e} vs fd {d:e}");
    }
    println!("worst relative difference: {worst:e}");
}

#[test]
fn crate_gradient_matches_finite_differences() {
    for backend in Backend::available() {
        for (x, t, o) in cases() {
            if o.eps != 0.0 || o.pos_weight != 1.0 || o.weight != 1.0 {
                continue;
            }
            let mut f = Focal::new(o.gamma as f32)
                .modulator(o.modulator)
                .backend(backend);
            if let Some(a) = o.alpha {
                f = f.alpha(a as f32);
            }
            let (xf, tf) = ([x as f32], [t as f32]);
            let mut g = [0f32];
            f.loss_and_grad(&xf, &tf, &mut g, Reduction::Sum).unwrap();
            let (l, _) = loss_grad(xf[0] as f64, tf[0] as f64, &o);
            let d = fd(xf[0] as f64, tf[0] as f64, &o);
            let tol = 2e-5 * d.abs() + 1e-9 * l + 1e-37;
            assert!(
                ((g[0] as f64) - d).abs() <= tol,
                "{backend:?} x={x} t={t} {o:?}: {} vs fd {d:e}",
                g[0]
            );
        }
    }
}
