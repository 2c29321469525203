//! What both tasks print and plot: per-class scores of each loss, averaged over groups of
//! classes.

use std::ops::Range;

/// One trained model: its per-class test score and the loss kernel's speed.
pub struct Run {
    pub loss: String,
    pub per_class: Vec<f64>,
    pub ns_per_logit: f64,
}

/// A task's results: the training count of each class and one `Run` per loss.
pub struct Task {
    pub title: &'static str,
    /// What `per_class` holds: "AP", "top-1 accuracy".
    pub metric: &'static str,
    pub counts: Vec<u64>,
    pub runs: Vec<Run>,
}

/// A named range of classes (classes are numbered from the most frequent).
pub struct Group {
    pub name: &'static str,
    pub classes: Range<usize>,
}

/// Mean of the finite values (NaN when there are none).
pub fn mean(v: &[f64]) -> f64 {
    let finite: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    finite.iter().sum::<f64>() / finite.len() as f64
}

/// One line per group: its classes and their training counts.
pub fn print_groups(groups: &[Group], counts: &[u64]) {
    for g in groups {
        let range = format!("{}..{}", g.classes.start, g.classes.end);
        let c = &counts[g.classes.clone()];
        match (c.iter().max(), c.iter().min()) {
            (Some(hi), Some(lo)) => println!(
                "   {:<7} classes {range:<7} {hi} to {lo} training examples",
                g.name
            ),
            _ => println!("   {:<7} no classes", g.name),
        }
    }
}

/// The table: one row per loss, the mean score over all classes and over each group, and the
/// kernel's ns per logit.
pub fn table(task: &Task, groups: &[Group]) {
    let header = format!("mean test {}", task.metric);
    let width = task
        .runs
        .iter()
        .map(|r| r.loss.len())
        .chain([header.len()])
        .max()
        .unwrap_or(0);
    print!("   {header:<width$} {:>7}", "all");
    for g in groups {
        print!(" {:>7}", g.name);
    }
    println!(" {:>9}", "ns/logit");
    for run in &task.runs {
        print!("   {:<width$} {:>7.3}", run.loss, mean(&run.per_class));
        for g in groups {
            print!(" {:>7.3}", mean(&run.per_class[g.classes.clone()]));
        }
        println!(" {:>9.2}", run.ns_per_logit);
    }
}
