//! The SVG: one panel per task, each class's test score against its training count (log
//! scale), one colour per loss: a dot per class and a line through the running mean of
//! neighbouring classes (per-class scores are noisy: 100 to 1000 test positives a class).
//! Text is written as SVG `<text>`, so no font is needed here; the viewer renders it.

use std::error::Error;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::report::Task;

/// Okabe and Ito's colour-blind-safe palette, one colour per loss.
const COLORS: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(213, 94, 0),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
];

/// Writes the tasks' panels side by side to `path`, creating its directory.
pub fn write(path: &Path, tasks: &[&Task]) -> Result<(), Box<dyn Error>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let root = SVGBackend::new(path, (720 * tasks.len() as u32, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    for (area, task) in root.split_evenly((1, tasks.len())).iter().zip(tasks) {
        panel(area, task)?;
    }
    root.present()?;
    Ok(())
}

fn panel(area: &DrawingArea<SVGBackend<'_>, Shift>, task: &Task) -> Result<(), Box<dyn Error>> {
    // A class without training examples (possible in the multi-label tail) is drawn at 1.
    let x: Vec<f64> = task.counts.iter().map(|&n| n.max(1) as f64).collect();
    let hi = x.iter().fold(1f64, |m, &v| m.max(v));
    let lo = x.iter().fold(hi, |m, &v| m.min(v));
    let mut chart = ChartBuilder::on(area)
        .caption(task.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d((lo * 0.8..hi * 1.25).log_scale(), 0f64..1f64)?;
    chart
        .configure_mesh()
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .x_desc("training examples of the class (log scale)")
        .y_desc(format!("test {}", task.metric))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.1}"))
        .draw()?;
    // Classes in order of increasing count, for the running mean.
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let half = x.len() / 20;
    for (i, run) in task.runs.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        // A curve that later ones coincide with (the multi-label class-balanced rows) is drawn
        // wider than them, so that each stays visible as a band of its colour.
        let covered = task.runs[i + 1..]
            .iter()
            .filter(|r| {
                r.per_class
                    .iter()
                    .zip(&run.per_class)
                    .all(|(a, b)| (a - b).abs() < 0.005)
            })
            .count() as u32;
        let line = color.stroke_width(2 + 2 * covered);
        chart.draw_series(
            order
                .iter()
                .map(|&k| Circle::new((x[k], run.per_class[k]), 2, color.mix(0.5).filled())),
        )?;
        let smooth = (0..order.len()).map(|j| {
            let window = &order[j.saturating_sub(half)..(j + half + 1).min(order.len())];
            let mean = window.iter().map(|&k| run.per_class[k]).sum::<f64>() / window.len() as f64;
            (x[order[j]], mean)
        });
        chart
            .draw_series(LineSeries::new(smooth, line))?
            .label(&run.loss)
            .legend(move |(lx, ly)| PathElement::new([(lx, ly), (lx + 20, ly)], line));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
