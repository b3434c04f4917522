//! `bench`: runs the benchmark matrix (front-end x connections x workload)
//! and renders its report.
//!
//! Two commands share this crate: `bench run` starts each server on a fresh
//! data directory and a free port, preloads it, drives it with `loadgen`, and
//! records every raw output under `results/<run-id>/`; `bench report` turns
//! such a directory into `REPORT.md` and SVG charts. The report is rendered
//! only from the files on disk, so it can be re-rendered at any time (and the
//! runner itself calls the same code at the end of a run).
//!
//! # Why a crate of its own
//!
//! `loadgen` is the program a user copies to load-generating hosts; the
//! charting library (plotters) and the matrix logic have no business there.
//! This crate reads `loadgen`'s documented output files (`summary.json`,
//! `.hgrm`), so a report can be rendered from runs made elsewhere; it links
//! `loadgen`'s library only for the `Summary` type, so that the fields it
//! reads are loadgen's own and a renamed one breaks the build, not the
//! report.
//!
//! # Modules
//!
//! * [`matrix`]: front-ends, workloads, the default and full matrices, cells.
//! * [`machine`]: what the machine is, and how its cores are split between
//!   server and load generator.
//! * [`process`]: starting a server or `loadgen` pinned to its cores,
//!   stopping it by PID, and reading its CPU time and peak RSS from `/proc`.
//! * [`runner`]: runs a matrix cell by cell with a progress display.
//! * [`cluster`]: cluster cells (several backends, directly with ketama or
//!   behind nutcracker) and their section of the report.
//! * [`model`]: the files of a run directory, as written and as read back.
//! * [`stats`]: medians, ranges, and the verdict rule over rounds.
//! * [`data`]: a run directory loaded: figures per point and front-end over
//!   the rounds, paired comparisons, the noise floor, what bounded a cell.
//! * [`findings`]: the headline and the findings, one function each.
//! * [`report`]: `REPORT.md`: tables and findings of a run directory.
//! * [`charts`]: the SVG charts, with each point's min-max as whiskers.
//! * [`compare`]: two runs cell by cell (`bench compare`).

pub mod charts;
pub mod cluster;
pub mod compare;
pub mod data;
pub mod findings;
pub mod machine;
pub mod matrix;
pub mod model;
pub mod process;
pub mod report;
pub mod runner;
pub mod stats;

use std::path::{Path, PathBuf};

/// Everything that can stop a run or a report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A JSON file does not parse.
    #[error("{}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// Flags or matrix settings that do not fit together.
    #[error("configuration: {0}")]
    Config(String),
    /// A process could not be started, reached or stopped.
    #[error("process: {0}")]
    Process(String),
    /// The load generator completed no request in the measured span.
    #[error("stalled: {0}")]
    Stalled(String),
    /// A run directory is not what a report needs.
    #[error("input: {0}")]
    Input(String),
    /// A chart could not be drawn.
    #[error("chart {}: {message}", path.display())]
    Chart {
        /// The SVG file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
}

/// Reads and parses a JSON file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, Error> {
    let text = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_slice(&text).map_err(|e| Error::Json {
        path: path.to_path_buf(),
        source: e,
    })
}

/// Writes `value` as pretty JSON with a trailing newline.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), Error> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| Error::Json {
        path: path.to_path_buf(),
        source: e,
    })?;
    text.push('\n');
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}
