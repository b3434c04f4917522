//! `.hlog` interval logs: HdrHistogram's V2 log format (the Java
//! `HistogramLogWriter`'s), one interval per second, written and read with the
//! `hdrhistogram` crate's `interval_log`.
//!
//! Each interval is written once per operation kind in the mix and per measure,
//! with a tag: `<op>` (e.g. `get`) holds the corrected latency of every
//! request (censored samples included), `<op>-answered` that of the answered
//! ones, `<op>-service` the service time, `<op>-censored` the censored
//! samples alone (see `record`). Histograms are compressed V2 (`V2DeflateSerializer`),
//! values in microseconds. The log carries `StartTime` and `BaseTime` (both the
//! start of measurement, as Unix seconds) and interval timestamps are seconds
//! since `BaseTime`. The max column is in milliseconds (`MaxValueDivisor` 1000).

use std::io::Write;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriter, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

use crate::config::OpKind;
use crate::record::{Histograms, Measure};
use crate::Error;

/// The log writer the run uses (file or sink behind one type).
pub type LogWriter<'a, 'b> = IntervalLogWriter<'a, 'b, Box<dyn Write>, V2DeflateSerializer>;

/// The tag of an operation's measure in the log: `get`, `get-answered`,
/// `get-service`, `get-censored`.
pub fn tag_of(kind: OpKind, measure: Measure) -> String {
    format!("{}{}", kind.name(), measure.suffix())
}

/// The inverse of [`tag_of`].
pub fn parse_tag(tag: &str) -> Option<(OpKind, Measure)> {
    Measure::ALL.into_iter().find_map(|m| {
        let op = if m.suffix().is_empty() {
            tag
        } else {
            tag.strip_suffix(m.suffix())?
        };
        OpKind::from_name(op).map(|k| (k, m))
    })
}

/// Starts a log on `out`: header comments, StartTime and BaseTime.
pub fn begin<'a, 'b, W: Write>(
    out: &'a mut W,
    serializer: &'b mut V2DeflateSerializer,
    start: SystemTime,
) -> Result<IntervalLogWriter<'a, 'b, W, V2DeflateSerializer>, Error> {
    IntervalLogWriterBuilder::new()
        .add_comment(&format!(
            "[Logged with loadgen {}; values in microseconds]",
            env!("CARGO_PKG_VERSION")
        ))
        .add_comment("[Histogram log format version 1.3]")
        .with_start_time(start)
        .with_base_time(start)
        .with_max_value_divisor(1000.0)
        .begin_log_with(out, serializer)
        .map_err(|e| Error::Output(format!("interval log: {e}")))
}

/// Writes one interval: every operation kind in `kinds`, both measures.
pub fn write_interval<W: Write>(
    log: &mut IntervalLogWriter<'_, '_, W, V2DeflateSerializer>,
    hists: &Histograms,
    kinds: &[OpKind],
    offset: Duration,
    length: Duration,
) -> Result<(), Error> {
    for &kind in kinds {
        let h = &hists.ops[kind as usize];
        for measure in Measure::ALL {
            let tag = tag_of(kind, measure);
            log.write_histogram(h.get(measure), offset, length, Tag::new(&tag))
                .map_err(|e| Error::Output(format!("interval log: {e}")))?;
        }
    }
    Ok(())
}

/// One interval read back from a log.
#[derive(Debug, Clone)]
pub struct Interval {
    /// The tag, if the line had one.
    pub tag: Option<String>,
    /// Start of the interval, Unix seconds.
    pub start_unix: f64,
    /// Length of the interval, seconds.
    pub length: f64,
    /// The decoded histogram.
    pub histogram: Histogram<u64>,
}

/// Seconds in a year: Java's `HistogramLogReader` heuristic for telling
/// delta timestamps from absolute ones when only StartTime is present.
const YEAR_S: f64 = 365.25 * 24.0 * 3600.0;

/// Parses a whole interval log (any V2 log, compressed or not).
pub fn read(text: &[u8]) -> Result<Vec<Interval>, Error> {
    let mut start_time: Option<f64> = None;
    let mut base_time: Option<f64> = None;
    let mut out = Vec::new();
    let mut de = Deserializer::new();
    let mut raw = Vec::new();
    for entry in IntervalLogIterator::new(text) {
        let entry = entry.map_err(|e| Error::Input(format!("interval log: {e:?}")))?;
        match entry {
            LogEntry::StartTime(t) => start_time = Some(t.as_secs_f64()),
            LogEntry::BaseTime(t) => base_time = Some(t.as_secs_f64()),
            LogEntry::Interval(ilh) => {
                let ts = ilh.start_timestamp().as_secs_f64();
                let base = match (base_time, start_time) {
                    (Some(b), _) => b,
                    (None, Some(s)) if ts < s - YEAR_S => s,
                    _ => 0.0,
                };
                raw.clear();
                base64::engine::general_purpose::STANDARD
                    .decode_vec(ilh.encoded_histogram(), &mut raw)
                    .map_err(|e| Error::Input(format!("interval log: bad base64: {e}")))?;
                let histogram: Histogram<u64> = de
                    .deserialize(&mut raw.as_slice())
                    .map_err(|e| Error::Input(format!("interval log: bad histogram: {e:?}")))?;
                out.push(Interval {
                    tag: ilh.tag().map(|t| t.as_str().to_string()),
                    start_unix: base + ts,
                    length: ilh.duration().as_secs_f64(),
                    histogram,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip() {
        for kind in OpKind::ALL {
            for m in Measure::ALL {
                let t = tag_of(kind, m);
                assert!(Tag::new(&t).is_some());
                assert_eq!(parse_tag(&t), Some((kind, m)));
            }
        }
        assert_eq!(parse_tag("other"), None);
    }

    #[test]
    fn write_then_read() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut hists = Histograms::default();
        hists.record(
            OpKind::Get,
            Duration::from_micros(100),
            Duration::from_micros(90),
        );
        hists.record(
            OpKind::Get,
            Duration::from_micros(300),
            Duration::from_micros(90),
        );
        let mut buf = Vec::new();
        let mut ser = V2DeflateSerializer::new();
        {
            let mut log = begin(&mut buf, &mut ser, start).unwrap();
            let kinds = [OpKind::Get, OpKind::Set];
            write_interval(
                &mut log,
                &hists,
                &kinds,
                Duration::ZERO,
                Duration::from_secs(1),
            )
            .unwrap();
            write_interval(
                &mut log,
                &hists,
                &kinds,
                Duration::from_secs(1),
                Duration::from_millis(500),
            )
            .unwrap();
        }
        let text = String::from_utf8(buf.clone()).unwrap();
        assert!(text.contains("#[StartTime: 1700000000.000"), "{text}");
        assert!(text.contains("\nTag=get,0.000,1.000,0.300,"), "{text}");
        let intervals = read(&buf).unwrap();
        // Two intervals x two kinds x four measures.
        assert_eq!(intervals.len(), 16);
        let get: Vec<&Interval> = intervals
            .iter()
            .filter(|i| i.tag.as_deref() == Some("get"))
            .collect();
        assert_eq!(get.len(), 2);
        assert_eq!(get[1].start_unix, 1_700_000_001.0);
        assert_eq!(get[1].length, 0.5);
        assert_eq!(get[0].histogram, hists.ops[0].latency);
        let svc = intervals
            .iter()
            .find(|i| i.tag.as_deref() == Some("get-service"))
            .unwrap();
        assert_eq!(svc.histogram.len(), 2);
        assert_eq!(svc.histogram.max(), 90);
    }

    #[test]
    fn rejects_garbage() {
        assert!(read(b"Tag=get,0.0,1.0,0.1,!!!notbase64\n").is_err());
    }
}
