//! The `.hgrm` percentile distribution: the text that HdrHistogram's Java
//! `outputPercentileDistribution(out, 5, scale)` prints, which HdrHistogram's
//! plotter and many scripts read.
//!
//! Columns: `Value` (here milliseconds, with 3 decimals = microsecond
//! resolution), `Percentile` (a fraction), `TotalCount` (samples at or below
//! the value), `1/(1-Percentile)`; 5 ticks per half distance to 100 %; a footer
//! with mean, standard deviation, max, total count, bucket and sub-bucket counts.

use std::io::{self, Write};

use hdrhistogram::Histogram;

/// Histograms hold microseconds; `.hgrm` files show milliseconds like wrk2's.
pub const HGRM_SCALE: f64 = 1000.0;

/// Percentile reporting ticks per half distance, as in HdrHistogram's default.
const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// Writes `h` as an HdrHistogram percentile distribution, values divided by
/// `scale`. When `censored` holds censored samples of `h` (requests that got
/// no reply, see `record`), a footer line counts them and names the first
/// percentile from which the values are lower bounds.
pub fn write_percentile_distribution(
    h: &Histogram<u64>,
    censored: Option<&Histogram<u64>>,
    scale: f64,
    out: &mut impl Write,
) -> io::Result<()> {
    let d = usize::from(h.sigfig());
    write!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    )?;
    let mut total = 0u64;
    let mut quantiles = Vec::new();
    for v in h.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
        total += v.count_since_last_iteration();
        let value = v.value_iterated_to() as f64 / scale;
        let q = v.quantile_iterated_to();
        quantiles.push(q);
        if q < 1.0 {
            writeln!(
                out,
                "{value:>12.d$} {q:>2.12} {total:>10} {:>14.2}",
                1.0 / (1.0 - q)
            )?;
        } else {
            writeln!(out, "{value:>12.d$} {q:>2.12} {total:>10}")?;
        }
    }
    let (mean, stdev) = if h.is_empty() {
        (0.0, 0.0)
    } else {
        (h.mean() / scale, h.stdev() / scale)
    };
    writeln!(
        out,
        "#[Mean    = {mean:>12.d$}, StdDeviation   = {stdev:>12.d$}]"
    )?;
    writeln!(
        out,
        "#[Max     = {:>12.d$}, Total count    = {:>12}]",
        h.max() as f64 / scale,
        h.len()
    )?;
    writeln!(
        out,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        sub_bucket_count(h.sigfig())
    )?;
    if let Some(c) = censored.filter(|c| !c.is_empty()) {
        let from = crate::summary::lower_bound_from(h, c, &quantiles).unwrap_or(1.0);
        writeln!(
            out,
            "#[Censored = {:>12}, LowerBoundFrom = {from:>12.6}]",
            c.len()
        )?;
    }
    Ok(())
}

/// HdrHistogram's sub-bucket count: the power of two that holds 2 * 10^sigfig.
fn sub_bucket_count(sigfig: u8) -> u64 {
    let largest_single_unit = 2 * 10u64.pow(u32::from(sigfig));
    largest_single_unit.next_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::new_histogram;

    #[test]
    fn matches_hdrhistogram_text_format() {
        let mut h = new_histogram();
        for v in 1..=100u64 {
            h.record(v * 10).unwrap();
        }
        let mut out = Vec::new();
        write_percentile_distribution(&h, None, HGRM_SCALE, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "       Value     Percentile TotalCount 1/(1-Percentile)"
        );
        assert_eq!(lines[1], "");
        assert_eq!(
            lines[2],
            "       0.010 0.000000000000          1           1.00"
        );
        // The median row: 50 values at or below 0.5 ms.
        assert!(
            lines.contains(&"       0.500 0.500000000000         50           2.00"),
            "{text}"
        );
        // The last row reaches 100 % and has no 1/(1-p) column.
        let last = lines[lines.len() - 4];
        assert_eq!(last, "       1.000 1.000000000000        100");
        assert_eq!(
            lines[lines.len() - 3],
            "#[Mean    =        0.505, StdDeviation   =        0.289]"
        );
        assert_eq!(
            lines[lines.len() - 2],
            "#[Max     =        1.000, Total count    =          100]"
        );
        assert_eq!(
            lines[lines.len() - 1],
            format!(
                "#[Buckets = {:>12}, SubBuckets     =         2048]",
                h.buckets()
            )
        );
        // Percentiles never decrease and total counts climb to the total.
        let rows: Vec<(f64, u64)> = lines[2..lines.len() - 3]
            .iter()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f[1].parse().unwrap(), f[2].parse().unwrap())
            })
            .collect();
        assert!(rows
            .windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
    }

    #[test]
    fn empty_histogram_has_header_and_footer() {
        let h = new_histogram();
        let mut out = Vec::new();
        write_percentile_distribution(&h, None, HGRM_SCALE, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 5);
        assert!(text.contains("Total count    =            0]"));
    }

    #[test]
    fn sub_buckets() {
        assert_eq!(sub_bucket_count(3), 2048);
        assert_eq!(sub_bucket_count(2), 256);
    }
}
