//! Nothing: the package exists for its bench, `loss.rs` (`cargo bench -p focal-loss-benches`).
