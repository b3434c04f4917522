//! `loadgen merge`: combines the `.hlog` files of several runs (processes or
//! machines driving the same servers at once) into one `summary.json` and one
//! `.hgrm` per operation and measure.
//!
//! Histograms add exactly, bucket by bucket, so the merged percentiles are those
//! of the combined samples, not an average of percentiles. The measured window
//! is from the earliest interval start to the latest interval end over all
//! logs (absolute time, from each log's BaseTime), and throughput is the total
//! count over that window. Counters that a log does not carry (requests,
//! errors, timeouts) are taken from a `summary.json` beside each log when there
//! is one of kind "run"; otherwise only the histogram-derived fields are filled.

use std::path::{Path, PathBuf};

use crate::config::OpKind;
use crate::hlog;
use crate::output::{summary_with_files, write_outputs};
use crate::record::{Counters, Histograms};
use crate::summary::{Measured, Summary};
use crate::Error;

/// Merges `inputs` and writes the result into `out`; returns the summary.
pub fn merge(out: &Path, inputs: &[PathBuf]) -> Result<Summary, Error> {
    if inputs.is_empty() {
        return Err(Error::Config("merge needs at least one .hlog file".into()));
    }
    let mut hists = Histograms::default();
    let mut counters = Counters::default();
    let mut from_summaries = 0usize;
    let mut first = f64::INFINITY;
    let mut last = f64::NEG_INFINITY;
    let mut seen = [false; 4];
    let mut failures = Vec::new();
    let mut warmup_completed = 0;
    for input in inputs {
        let text = std::fs::read(input).map_err(|e| Error::Io {
            path: input.display().to_string(),
            source: e,
        })?;
        let intervals =
            hlog::read(&text).map_err(|e| Error::Input(format!("{}: {e}", input.display())))?;
        for i in intervals {
            let Some((kind, measure)) = i.tag.as_deref().and_then(hlog::parse_tag) else {
                tracing::warn!(file = %input.display(), tag = ?i.tag, "interval with an unknown tag skipped");
                continue;
            };
            seen[kind as usize] = true;
            first = first.min(i.start_unix);
            last = last.max(i.start_unix + i.length);
            let h = &mut hists.ops[kind as usize];
            h.get_mut(measure).add(&i.histogram).map_err(|e| {
                Error::Input(format!(
                    "{}: histogram outside 1 us .. 60 s: {e:?}",
                    input.display()
                ))
            })?;
        }
        let beside = input.with_file_name("summary.json");
        if let Ok(text) = std::fs::read_to_string(&beside) {
            match serde_json::from_str::<Summary>(&text) {
                Ok(s) if s.kind == "run" => {
                    from_summaries += 1;
                    add_summary_counters(&mut counters, &s);
                    warmup_completed += s.warmup_completed;
                    failures.extend(s.verify_failures);
                }
                _ => {
                    tracing::warn!(file = %beside.display(), "not a run summary; counters not merged")
                }
            }
        }
    }
    if from_summaries < inputs.len() {
        // Without every run's summary the counters would be partial: keep only
        // what the histograms themselves say.
        counters = Counters::default();
        for k in OpKind::ALL {
            let n = hists.ops[k as usize].answered.len();
            counters.ops[k as usize].completed = n;
        }
        failures.clear();
        warmup_completed = 0;
    }
    let duration_s = if last > first { last - first } else { 0.0 };
    let kinds: Vec<OpKind> = OpKind::ALL
        .into_iter()
        .filter(|k| seen[*k as usize])
        .collect();
    let mut summary = Summary::measured(Measured {
        kind: "merge",
        mode: "merged",
        started_at_unix_s: if first.is_finite() { first } else { 0.0 },
        duration_s,
        hists: &hists,
        counters: &counters,
        verify_failures: failures,
        warmup_completed,
    });
    summary.inputs = inputs.iter().map(|p| p.display().to_string()).collect();
    std::fs::create_dir_all(out).map_err(|e| Error::Io {
        path: out.display().to_string(),
        source: e,
    })?;
    summary_with_files(&mut summary, &kinds, false);
    write_outputs(out, &summary, &hists, &kinds)?;
    Ok(summary)
}

fn add_summary_counters(c: &mut Counters, s: &Summary) {
    let mut other = Counters {
        errors: s.errors,
        unsent: s.unsent,
        connections_never_answered: s.connections_never_answered,
        ..Counters::default()
    };
    for k in OpKind::ALL {
        if let Some(o) = s.operations.get(k.name()) {
            other.ops[k as usize] = o.counters;
        }
    }
    c.add(&other);
}
