//! SVG charts of a run, drawn with plotters into `<run>/charts/`:
//!
//! * `throughput-<workload>.svg`: ops/s vs connections (log scale), one line
//!   per front-end through the medians over the rounds, each point's
//!   min-max as a whisker;
//! * `spectrum-<workload>.svg`: the latency percentile spectrum of the
//!   workload's dominant operation at one connection count (every request,
//!   from the round with the median p99), HdrHistogram style: x is 1/(1-p)
//!   on a log scale, labelled as percentiles;
//! * `load-<workload>.svg`: p99 latency vs offered load, from open-loop
//!   cells, medians with min-max whiskers.
//!
//! A front-end keeps its colour in every chart (its position in the matrix).

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::data::{Figure, RunData};
use crate::report::thousands;
use crate::Error;

const SIZE: (u32, u32) = (900, 540);

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// The colour of the i-th front-end of the matrix.
fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// One line of a chart.
struct Series {
    name: String,
    colour: RGBColor,
    points: Vec<(f64, f64)>,
    /// (x, low, high): each point's min-max over the rounds.
    whiskers: Vec<(f64, f64, f64)>,
}

/// A point of a chart: x, the median y, and its min-max.
type Whiskered = (f64, f64, f64, f64);

/// One series per front-end (in matrix order, so colours stay put), its
/// points from `points_of` sorted by x; front-ends without points are left
/// out.
fn per_frontend(
    names: &[String],
    mut points_of: impl FnMut(&String) -> Vec<Whiskered>,
) -> Vec<Series> {
    names
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut pts = points_of(f);
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series {
                name: f.clone(),
                colour: colour(i),
                points: pts.iter().map(|p| (p.0, p.1)).collect(),
                whiskers: pts.iter().map(|p| (p.0, p.2, p.3)).collect(),
            }
        })
        .filter(|s| !s.points.is_empty())
        .collect()
}

/// Draws every chart of the run; returns their paths relative to the run directory.
pub fn draw_all(d: &RunData) -> Result<Vec<PathBuf>, Error> {
    let dir = d.dir.join("charts");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let names = d.frontend_names();
    let mut drawn = Vec::new();
    for w in &d.info.matrix.workloads {
        // Throughput vs connections: medians, min-max whiskers.
        let points = d.points(&w.name, false);
        let series = per_frontend(&names, |f| {
            points
                .iter()
                .filter_map(|p| {
                    let m = d.figure(p, f, Figure::Throughput)?.spread;
                    Some((p.connections as f64, m.median, m.min, m.max))
                })
                .collect()
        });
        if !series.is_empty() {
            let name = format!("throughput-{}.svg", w.name);
            throughput_chart(&dir.join(&name), &w.name, &series)?;
            drawn.push(Path::new("charts").join(name));
        }

        // Latency spectrum at one connection count, from the median round.
        let spectrum_conns = d.spectrum_connections(&w.name);
        let spectrum_point = points.iter().find(|p| p.connections == spectrum_conns);
        let series: Vec<Series> = names
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let c = d.median_round(spectrum_point?, f, Figure::P99)?;
                let points: Vec<(f64, f64)> = c
                    .spectrum
                    .iter()
                    .filter(|r| r.percentile < 1.0 && r.value_ms > 0.0)
                    .map(|r| (1.0 / (1.0 - r.percentile), r.value_ms))
                    .collect();
                let name = match d.starved(f, spectrum_conns) {
                    Some(w) => format!("{f} (serves {w} of {spectrum_conns} at a time)"),
                    None => f.clone(),
                };
                (!points.is_empty()).then(|| Series {
                    name,
                    colour: colour(i),
                    points,
                    whiskers: Vec::new(),
                })
            })
            .collect();
        if !series.is_empty() {
            let name = format!("spectrum-{}.svg", w.name);
            let title = format!(
                "{}: {} latency by percentile, {} connections (median round)",
                w.name,
                w.dominant_op(),
                spectrum_conns
            );
            spectrum_chart(&dir.join(&name), &title, &series)?;
            drawn.push(Path::new("charts").join(name));
        }

        // Latency vs offered load: medians, min-max whiskers.
        let open = d.points(&w.name, true);
        let series = per_frontend(&names, |f| {
            open.iter()
                .filter_map(|p| {
                    let m = d.figure(p, f, Figure::P99)?.spread;
                    let rates: Vec<f64> = d
                        .rounds_of(p, f)
                        .iter()
                        .filter_map(|c| c.record.as_ref()?.rate)
                        .collect();
                    let rate = crate::stats::Spread::of(&rates)?.median;
                    let y = |v: f64| (v / 1000.0).max(0.001);
                    Some((rate, y(m.median), y(m.min), y(m.max)))
                })
                .collect()
        });
        if !series.is_empty() {
            let name = format!("load-{}.svg", w.name);
            load_chart(&dir.join(&name), &w.name, &series)?;
            drawn.push(Path::new("charts").join(name));
        }
    }
    Ok(drawn)
}

fn chart_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Chart {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// (min, max) of an axis over every point (and whisker end), by `pick`.
fn bounds(series: &[Series], pick: impl Fn(&(f64, f64)) -> f64) -> (f64, f64) {
    series
        .iter()
        .flat_map(|s| {
            s.points
                .iter()
                .copied()
                .chain(s.whiskers.iter().flat_map(|w| [(w.0, w.1), (w.0, w.2)]))
        })
        .map(|p| pick(&p))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        })
}

fn draw_lines<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    series: &[Series],
    path: &Path,
    legend: SeriesLabelPosition,
) -> Result<(), Error>
where
    DB: DrawingBackend + 'a,
    CT: plotters::coord::CoordTranslate<From = (f64, f64)>,
{
    for s in series {
        let colour = s.colour;
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                colour.stroke_width(2),
            ))
            .map_err(|e| chart_err(path, e))?
            // Trailing no-break spaces widen the legend box, whose size plotters
            // estimates from character counts.
            .label(format!("{}\u{a0}\u{a0}\u{a0}", s.name))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        chart
            .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, colour.filled())))
            .map_err(|e| chart_err(path, e))?;
        // Min-max over the rounds: a vertical whisker with caps.
        chart
            .draw_series(s.whiskers.iter().filter(|w| w.2 > w.1).map(|&(x, lo, hi)| {
                PathElement::new(vec![(x, lo), (x, hi)], colour.stroke_width(1))
            }))
            .map_err(|e| chart_err(path, e))?;
        chart
            .draw_series(
                s.whiskers
                    .iter()
                    .filter(|w| w.2 > w.1)
                    .flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)])
                    .map(|p| {
                        EmptyElement::at(p)
                            + PathElement::new(vec![(-5, 0), (5, 0)], colour.stroke_width(1))
                    }),
            )
            .map_err(|e| chart_err(path, e))?;
    }
    chart
        .configure_series_labels()
        .position(legend)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        // plotters estimates text width without font metrics; room to spare.
        .legend_area_size(40)
        .margin(12)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(|e| chart_err(path, e))
}

fn throughput_chart(path: &Path, workload: &str, series: &[Series]) -> Result<(), Error> {
    let (xmin, xmax) = bounds(series, |p| p.0);
    let (_, ymax) = bounds(series, |p| p.1);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| chart_err(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{workload}: throughput vs connections"),
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(90)
        .build_cartesian_2d(
            ((xmin / 1.6).max(0.5)..xmax * 1.6).log_scale(),
            0f64..(ymax * 1.15).max(1.0),
        )
        .map_err(|e| chart_err(path, e))?;
    chart
        .configure_mesh()
        .x_desc("connections")
        .y_desc("ops/s")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| thousands(*v))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| chart_err(path, e))?;
    draw_lines(&mut chart, series, path, SeriesLabelPosition::LowerRight)?;
    root.present().map_err(|e| chart_err(path, e))
}

/// "99.9%" for x = 1/(1-p) = 1000.
pub fn percentile_label(x: f64) -> String {
    if x <= 1.0 {
        return "0%".into();
    }
    let p = (1.0 - 1.0 / x) * 100.0;
    let s = format!("{p:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

fn spectrum_chart(path: &Path, title: &str, series: &[Series]) -> Result<(), Error> {
    let (_, xmax) = bounds(series, |p| p.0);
    let (ymin, ymax) = bounds(series, |p| p.1);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| chart_err(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(
            (1f64..(xmax * 1.5).max(100.0)).log_scale(),
            ((ymin / 1.5).max(0.0005)..(ymax * 1.5).max(0.01)).log_scale(),
        )
        .map_err(|e| chart_err(path, e))?;
    chart
        .configure_mesh()
        .x_desc("percentile (log scale of 1/(1-p))")
        .y_desc("latency, ms")
        .x_label_formatter(&|v| percentile_label(*v))
        .y_label_formatter(&|v| format!("{v}"))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| chart_err(path, e))?;
    draw_lines(&mut chart, series, path, SeriesLabelPosition::UpperLeft)?;
    root.present().map_err(|e| chart_err(path, e))
}

fn load_chart(path: &Path, workload: &str, series: &[Series]) -> Result<(), Error> {
    let (_, xmax) = bounds(series, |p| p.0);
    let (ymin, ymax) = bounds(series, |p| p.1);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| chart_err(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{workload}: p99 latency vs offered load (open loop)"),
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(
            0f64..(xmax * 1.08).max(1.0),
            ((ymin / 1.5).max(0.0005)..(ymax * 1.5).max(0.01)).log_scale(),
        )
        .map_err(|e| chart_err(path, e))?;
    chart
        .configure_mesh()
        .x_desc("offered load, ops/s")
        .y_desc("p99 latency, ms")
        .x_label_formatter(&|v| thousands(*v))
        .y_label_formatter(&|v| format!("{v}"))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| chart_err(path, e))?;
    draw_lines(&mut chart, series, path, SeriesLabelPosition::UpperLeft)?;
    root.present().map_err(|e| chart_err(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_labels() {
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(2.0), "50%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(100.0), "99%");
        assert_eq!(percentile_label(1000.0), "99.9%");
        assert_eq!(percentile_label(100_000.0), "99.999%");
    }
}
