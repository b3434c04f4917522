//! Writing an output directory: `summary.json` and one `.hgrm` per operation
//! kind and measure (`record::Measure`) (the `.hlog` is written as the run goes, by `run`).

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::config::OpKind;
use crate::hgrm::{write_percentile_distribution, HGRM_SCALE};
use crate::record::{Histograms, Measure};
use crate::summary::Summary;
use crate::Error;

/// Fills in `files` (the `.hgrm` per kind and measure, and the log) and returns the summary.
pub fn summary_with_files<'a>(s: &'a mut Summary, kinds: &[OpKind], hlog: bool) -> &'a Summary {
    s.files.clear();
    for k in kinds {
        for m in Measure::ALL {
            s.files.push(hgrm_name(*k, m));
        }
    }
    if hlog {
        s.files.push("latency.hlog".into());
    }
    s
}

/// Writes `summary.json` and one `.hgrm` per operation kind and measure.
pub fn write_outputs(
    dir: &Path,
    summary: &Summary,
    hists: &Histograms,
    kinds: &[OpKind],
) -> Result<(), Error> {
    for &k in kinds {
        let h = &hists.ops[k as usize];
        for m in Measure::ALL {
            let p = dir.join(hgrm_name(k, m));
            let mut f = BufWriter::new(File::create(&p).map_err(|e| io_err(&p, e))?);
            // The distribution of every request says where its censored
            // samples make the percentiles lower bounds.
            let censored = (m == Measure::Latency).then_some(&h.censored);
            write_percentile_distribution(h.get(m), censored, HGRM_SCALE, &mut f)
                .and_then(|()| f.flush())
                .map_err(|e| io_err(&p, e))?;
        }
    }
    let p = dir.join("summary.json");
    let mut text = serde_json::to_string_pretty(summary)
        .map_err(|e| Error::Output(format!("summary.json: {e}")))?;
    text.push('\n');
    fs::write(&p, text).map_err(|e| io_err(&p, e))
}

/// `get.hgrm`, `get-answered.hgrm`, `get-service.hgrm`, `get-censored.hgrm`.
pub fn hgrm_name(kind: OpKind, m: Measure) -> String {
    format!("{}{}.hgrm", kind.name(), m.suffix())
}

fn io_err(p: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: p.display().to_string(),
        source,
    }
}
