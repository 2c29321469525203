//! The command line: every flag takes a value; `--help` prints the list.

use std::path::PathBuf;

/// What to run, and on which data.
pub struct Args {
    /// Seed of the data, the initial weights and the shuffles (both tasks).
    pub seed: u64,
    /// Focusing parameter of every focal row (both tasks).
    pub gamma: f32,
    /// Run the multi-label task.
    pub multi: bool,
    /// Run the single-label task.
    pub single: bool,
    /// Multi-label: classes.
    pub classes: usize,
    /// Multi-label: training examples.
    pub examples: usize,
    /// Multi-label: epochs.
    pub epochs: usize,
    /// Single-label: classes.
    pub single_classes: usize,
    /// Single-label: training examples of class 0, the most frequent.
    pub single_max: usize,
    /// Single-label: the largest class count over the smallest.
    pub imbalance: f64,
    /// Single-label: epochs.
    pub single_epochs: usize,
    /// Where the SVG goes.
    pub plot: PathBuf,
}

const USAGE: &str = "usage: train [flags]
  --seed S            data, initial weights and shuffles (default 7)
  --gamma G           gamma of every focal row, both tasks (default 2)
  --only multi|single run one task (default: both)
  --classes C         multi-label: classes (default 50)
  --examples N        multi-label: training examples (default 110000)
  --epochs E          multi-label: epochs (default 6)
  --single-classes C  single-label: classes (default 100)
  --single-max N      single-label: examples of class 0, the largest (default 500)
  --imbalance F       single-label: largest / smallest class count (default 100)
  --single-epochs E   single-label: epochs (default 30)
  --plot PATH         the SVG (default target/train/per_class.svg in the crate)";

pub fn parse() -> Args {
    let mut a = Args {
        seed: 7,
        gamma: 2.0,
        multi: true,
        single: true,
        classes: 50,
        examples: 110_000,
        epochs: 6,
        single_classes: 100,
        single_max: 500,
        imbalance: 100.0,
        single_epochs: 30,
        plot: PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/target/train/per_class.svg"
        )),
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.iter().any(|f| f == "-h" || f == "--help") {
        println!("{USAGE}");
        std::process::exit(0);
    }
    for pair in argv.chunks(2) {
        let flag = pair[0].as_str();
        let Some(value) = pair.get(1) else {
            usage(&format!("{flag} needs a value"))
        };
        let number = || -> f64 {
            value
                .parse()
                .unwrap_or_else(|_| usage(&format!("{flag} needs a number, not {value}")))
        };
        match flag {
            "--seed" => {
                a.seed = value
                    .parse()
                    .unwrap_or_else(|_| usage("--seed needs an unsigned integer"))
            }
            "--gamma" => a.gamma = number() as f32,
            "--only" => match value.as_str() {
                "multi" => a.single = false,
                "single" => a.multi = false,
                _ => usage("--only takes multi or single"),
            },
            "--classes" => a.classes = number() as usize,
            "--examples" => a.examples = number() as usize,
            "--epochs" => a.epochs = number() as usize,
            "--single-classes" => a.single_classes = number() as usize,
            "--single-max" => a.single_max = number() as usize,
            "--imbalance" => a.imbalance = number(),
            "--single-epochs" => a.single_epochs = number() as usize,
            "--plot" => a.plot = PathBuf::from(value),
            _ => usage(&format!("unknown flag {flag}")),
        }
    }
    if a.classes < 5 || a.examples < 1000 || a.epochs == 0 {
        usage("need --classes >= 5, --examples >= 1000, --epochs >= 1");
    }
    if a.single_classes < 3 || a.single_max < 1 || a.imbalance < 1.0 || a.single_epochs == 0 {
        usage(
            "need --single-classes >= 3, --single-max >= 1, --imbalance >= 1, --single-epochs >= 1",
        );
    }
    if !(a.gamma >= 0.0 && a.gamma.is_finite()) {
        usage("--gamma must be finite and >= 0");
    }
    a
}

fn usage(msg: &str) -> ! {
    eprintln!("error: {msg}\n{USAGE}");
    std::process::exit(2)
}
