//! The findings of a report, each computed from the rounds by one function
//! and phrased by the same rule ([`crate::stats`]): a lead is claimed only
//! when every round agrees and the range clears the A/A noise floor;
//! otherwise the finding says there is no clear difference and gives the
//! range.

use std::fmt::Write as _;

use crate::data::{Figure, Measured, RunData};
use crate::matrix::{FrontendKind, Point, Workload};
use crate::stats::{Comparison, Verdict};

/// Thousands separators: 1234567 -> "1,234,567".
pub fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Latency in microseconds as milliseconds, with as many decimals as are useful.
pub fn ms(us: f64) -> String {
    let v = us / 1000.0;
    if v < 10.0 {
        format!("{v:.3}")
    } else if v < 100.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1}")
    }
}

/// A figure over rounds as "median (min-max)", with "≥" on the median
/// when a round's value is only a lower bound.
pub fn measured_text(m: &Measured, fig: Figure) -> String {
    let f = |v: f64| match fig {
        Figure::Throughput => thousands(v),
        _ => ms(v),
    };
    let ge = if m.lower_bounds > 0 { "\u{2265}" } else { "" };
    if m.spread.n < 2 {
        format!("{ge}{}", f(m.spread.median))
    } else {
        format!(
            "{ge}{} ({}-{})",
            f(m.spread.median),
            f(m.spread.min),
            f(m.spread.max)
        )
    }
}

fn rounds(n: usize) -> String {
    if n == 1 {
        "1 round".into()
    } else {
        format!("{n} rounds")
    }
}

fn pct(floor: f64) -> String {
    format!("{:.0}%", (floor * 100.0).max(1.0))
}

/// `a` against `b` on one figure at one point, in words.
pub fn versus(d: &RunData, p: &Point, a: &str, b: &str, fig: Figure) -> Option<String> {
    let c = d.compare(p, a, b, fig)?;
    let (ma, mb) = (d.mark(a, p.connections), d.mark(b, p.connections));
    Some(phrase(&c, &ma, &mb, fig, || d.compare(p, b, a, fig)))
}

/// Phrases a comparison of a with b; `flipped` gives b against a, for
/// naming the leader first.
pub fn phrase(
    c: &Comparison,
    a: &str,
    b: &str,
    fig: Figure,
    flipped: impl FnOnce() -> Option<Comparison>,
) -> String {
    let detail = |c: &Comparison, x: &str, y: &str| {
        format!("{x}/{y} {} over {}", c.ratio_text(), rounds(c.rounds.len()))
    };
    match (c.verdict, fig) {
        (Verdict::TooFewRounds, _) => format!("{}: too few rounds for a verdict", detail(c, a, b)),
        (Verdict::NoClearDifference, _) => format!(
            "no clear difference in {} between {a} and {b} ({}, noise floor {})",
            fig.name(),
            detail(c, a, b),
            pct(c.floor)
        ),
        (Verdict::Higher, Figure::Throughput) => {
            format!("{a} leads {b} in throughput by {}", detail(c, a, b))
        }
        (Verdict::Lower, Figure::Throughput) => {
            let f = flipped().unwrap_or_else(|| c.clone());
            format!("{b} leads {a} in throughput by {}", detail(&f, b, a))
        }
        (Verdict::Higher, _) => {
            let f = flipped().unwrap_or_else(|| c.clone());
            format!("{b} has the lower {} ({})", fig.name(), detail(&f, b, a))
        }
        (Verdict::Lower, _) => format!("{a} has the lower {} ({})", fig.name(), detail(c, a, b)),
    }
}

fn conns_label(c: usize) -> String {
    if c == 1 {
        "1 connection".into()
    } else {
        format!("{c} connections")
    }
}

/// Who leads at each closed-loop point, by median throughput, and how
/// every other front-end compares with the leader.
pub fn leaders(d: &RunData, w: &Workload) -> Vec<String> {
    let mut out = Vec::new();
    for p in d.points(&w.name, false) {
        let mut measured: Vec<(&str, Measured)> = d
            .compared()
            .into_iter()
            .filter_map(|f| Some((f.name.as_str(), d.figure(&p, &f.name, Figure::Throughput)?)))
            .collect();
        if measured.is_empty() {
            continue;
        }
        measured.sort_by(|a, b| b.1.spread.median.total_cmp(&a.1.spread.median));
        let (lead, lm) = measured[0];
        let mut line = format!(
            "**{}**: highest median throughput {} ops/s, {}",
            conns_label(p.connections),
            measured_text(&lm, Figure::Throughput),
            d.mark(lead, p.connections)
        );
        if let Some(wk) = d.starved(lead, p.connections) {
            let _ = write!(
                line,
                " (serving only {wk} of the {} at a time)",
                p.connections
            );
        }
        let others: Vec<String> = measured[1..]
            .iter()
            .filter_map(|(f, _)| versus(d, &p, lead, f, Figure::Throughput))
            .collect();
        if others.is_empty() {
            line.push_str("; the only front-end measured.");
        } else {
            let _ = write!(line, "; {}.", others.join("; "));
        }
        out.push(line);
    }
    out
}

/// Where each thread pool's queueing starts: connections above its workers.
pub fn queueing(d: &RunData, w: &Workload) -> Vec<String> {
    let mut out = Vec::new();
    let points = d.points(&w.name, false);
    for f in d.compared() {
        let Some(workers) = f.pool_workers() else {
            continue;
        };
        let has = |p: &&Point| d.figure(p, &f.name, Figure::Throughput).is_some();
        let below = points
            .iter()
            .rev()
            .find(|p| p.connections <= workers && has(p));
        let above = points.iter().find(|p| p.connections > workers && has(p));
        match (below, above) {
            (Some(b), Some(a)) => {
                let fig = |p: &Point, x: Figure| {
                    d.figure(p, &f.name, x)
                        .map_or_else(|| "-".into(), |m| measured_text(&m, x))
                };
                let timeouts = |p: &Point| -> u64 {
                    d.measured_rounds(p, &f.name)
                        .values()
                        .map(|s| s.errors.timeouts)
                        .max()
                        .unwrap_or(0)
                };
                let mut line = format!(
                    "`{}` queueing: {workers} workers, so from {} on {} wait in the accept \
                     queue, unanswered, while the workers serve the others (marked \u{2020}); \
                     their requests count in the latency, as lower bounds (\u{2265}) where no \
                     reply came. From {} to {}: throughput {} -> {} ops/s, p99 {} -> {} ms, \
                     timeouts (most in a round) {} -> {}.",
                    f.name,
                    conns_label(a.connections),
                    a.connections - workers,
                    b.connections,
                    a.connections,
                    fig(b, Figure::Throughput),
                    fig(a, Figure::Throughput),
                    fig(b, Figure::P99),
                    fig(a, Figure::P99),
                    timeouts(b),
                    timeouts(a)
                );
                let waited = d
                    .rounds_of(a, &f.name)
                    .iter()
                    .filter_map(|c| c.stats_after.get("max_queue_wait_us")?.parse::<u64>().ok())
                    .max();
                if let Some(us) = waited {
                    let _ = write!(
                        line,
                        " The longest wait of a connection in its accept queue at {} \
                         connections was {} ms (server `stats`: `max_queue_wait_us`).",
                        a.connections,
                        ms(us as f64)
                    );
                }
                out.push(line);
            }
            (_, None) => out.push(format!(
                "`{}` queueing: no connection count above its {workers} workers was measured, \
                 so the queue never formed.",
                f.name
            )),
            (None, Some(a)) => out.push(format!(
                "`{}` queueing: every measured connection count exceeds its {workers} workers \
                 (queueing from the first, {}).",
                f.name, a.connections
            )),
        }
    }
    out
}

/// Several front-ends of one kind against each other (pool sizes, accept
/// modes), pairwise at each point.
pub fn same_kind(d: &RunData, w: &Workload, kind: FrontendKind, what: &str) -> Vec<String> {
    let fs: Vec<&str> = d
        .compared()
        .into_iter()
        .filter(|f| f.kind == kind)
        .map(|f| f.name.as_str())
        .collect();
    if fs.len() < 2 {
        return Vec::new();
    }
    let mut parts = Vec::new();
    for p in d.points(&w.name, false) {
        for (i, a) in fs.iter().enumerate() {
            for b in &fs[i + 1..] {
                if let Some(t) = versus(d, &p, a, b, Figure::Throughput) {
                    parts.push(format!("{}: {t}", p.connections));
                }
            }
        }
    }
    if parts.is_empty() {
        return Vec::new();
    }
    vec![format!("{what}, by connections: {}.", parts.join("; "))]
}

/// Each compared front-end against memcached: throughput and p99 at every point.
pub fn versus_memcached(d: &RunData, w: &Workload) -> Vec<String> {
    let mc = d
        .info
        .frontends
        .iter()
        .find(|f| f.frontend.kind == FrontendKind::Memcached && f.frontend.twin_of.is_none());
    let m = match mc {
        None => return vec!["memcached was not part of this matrix: no comparison.".into()],
        Some(m) if !m.available => {
            return vec![format!(
                "memcached was not available ({}): no comparison.",
                m.missing_reason.as_deref().unwrap_or("not installed")
            )]
        }
        Some(_) if !w.fits_memcached() => {
            return vec![
                "memcached has no durability setting and did not run this workload.".into(),
            ]
        }
        Some(m) => &m.frontend.name,
    };
    let mut out = Vec::new();
    for f in d.compared().into_iter().filter(|f| &f.name != m) {
        let mut parts = Vec::new();
        let (mut meets, mut clear) = (0, 0);
        for p in d.points(&w.name, false) {
            let t = d.compare(&p, &f.name, m, Figure::Throughput);
            let l = d.compare(&p, &f.name, m, Figure::P99);
            let (Some(t), Some(l)) = (t, l) else { continue };
            let ok_t = !matches!(t.verdict, Verdict::Lower | Verdict::TooFewRounds);
            let ok_l = !matches!(l.verdict, Verdict::Higher | Verdict::TooFewRounds);
            if t.verdict != Verdict::TooFewRounds {
                clear += 1;
                if ok_t && ok_l {
                    meets += 1;
                }
            }
            parts.push(format!(
                "{}: throughput {} ({}), p99 {} ({})",
                if d.starved(&f.name, p.connections).is_some() {
                    format!("{}\u{2020}", p.connections)
                } else {
                    p.connections.to_string()
                },
                t.ratio_text(),
                word(t.verdict, true),
                l.ratio_text(),
                word(l.verdict, false)
            ));
        }
        if parts.is_empty() {
            continue;
        }
        out.push(format!(
            "`{}` vs memcached, ratios {0}/memcached by connections: {}. At least equal \
             throughput and no worse p99 (no round-agreed deficit) at {meets} of {clear} \
             connection counts.",
            f.name,
            parts.join("; ")
        ));
    }
    out
}

/// One word for a verdict of a/b: for throughput higher is better, for
/// latency lower is.
pub fn word(v: Verdict, higher_is_better: bool) -> &'static str {
    match (v, higher_is_better) {
        (Verdict::Higher, true) | (Verdict::Lower, false) => "better",
        (Verdict::Higher, false) | (Verdict::Lower, true) => "worse",
        (Verdict::NoClearDifference, _) => "no clear difference",
        (Verdict::TooFewRounds, _) => "too few rounds",
    }
}

/// Open loop: how p99 grows with offered load.
pub fn open_loop(d: &RunData, w: &Workload) -> Vec<String> {
    let mut out = Vec::new();
    let points = d.points(&w.name, true);
    for f in d.compared() {
        let parts: Vec<String> = points
            .iter()
            .filter_map(|p| {
                let m = d.figure(p, &f.name, Figure::P99)?;
                let rates: Vec<f64> = d
                    .rounds_of(p, &f.name)
                    .iter()
                    .filter_map(|c| c.record.as_ref()?.rate)
                    .collect();
                let rate = crate::stats::Spread::of(&rates)?.median;
                Some(format!(
                    "{}% ({} ops/s): {} ms",
                    p.load_pct?,
                    thousands(rate),
                    measured_text(&m, Figure::P99)
                ))
            })
            .collect();
        if !parts.is_empty() {
            out.push(format!(
                "`{}` p99 vs offered load (median over rounds): {}.",
                f.name,
                parts.join(", ")
            ));
        }
    }
    out
}

/// What bounded each front-end's cells of the workload.
pub fn bounds(d: &RunData, w: &Workload) -> Vec<String> {
    let mut parts = Vec::new();
    let mut client_bound = Vec::new();
    for f in d.compared() {
        let per: Vec<String> = d
            .points(&w.name, false)
            .iter()
            .filter_map(|p| {
                let (b, k, n) = d.bound(p, &f.name)?;
                if b == crate::data::Bound::ClientCpu {
                    client_bound.push(format!("`{}` at {}", f.name, p.connections));
                }
                Some(format!("{}: {} ({k}/{n})", p.connections, b.name()))
            })
            .collect();
        if !per.is_empty() {
            parts.push(format!("`{}` {}", f.name, per.join(", ")));
        }
    }
    let mut out = Vec::new();
    if !parts.is_empty() {
        out.push(format!(
            "What bounded the cells (the most frequent bound over the rounds, by \
             connections): {}.",
            parts.join("; ")
        ));
    }
    if !client_bound.is_empty() {
        out.push(format!(
            "The load generator was the limit for {}: those cells measure the client, \
             not the server, and their comparisons say nothing about the front-ends.",
            client_bound.join(", ")
        ));
    }
    out
}

/// Failed cells of the workload.
pub fn failures(d: &RunData, w: &Workload) -> Vec<String> {
    let failed = d
        .closed(&w.name)
        .chain(d.open(&w.name))
        .filter(|c| matches!(&c.record, Some(r) if r.status == crate::model::CellStatus::Failed))
        .count();
    if failed == 0 {
        return Vec::new();
    }
    vec![format!(
        "{failed} cell(s) of this workload failed; see Failed, skipped and retried cells below."
    )]
}

/// Every finding of one workload, each a Markdown line.
pub fn of_workload(d: &RunData, w: &Workload) -> Vec<String> {
    let mut out = Vec::new();
    out.extend(leaders(d, w));
    out.extend(queueing(d, w));
    out.extend(same_kind(
        d,
        w,
        FrontendKind::Threadpool,
        "Thread-pool sizes against each other",
    ));
    out.extend(same_kind(
        d,
        w,
        FrontendKind::Eventloop,
        "Event-loop accept modes against each other",
    ));
    out.extend(versus_memcached(d, w));
    out.extend(open_loop(d, w));
    out.extend(bounds(d, w));
    out.extend(failures(d, w));
    if out.is_empty() {
        out.push("No cell of this workload was measured.".into());
    }
    out
}

/// Why a point stresses the thread pool, in words: connections beyond its
/// workers, large values, or durability `always`.
fn dimension(d: &RunData, w: &Workload, p: &Point, pool: &str) -> String {
    let mut why = Vec::new();
    if let Some(wk) = d.starved(pool, p.connections) {
        why.push(format!("more connections than its {wk} workers"));
    }
    if w.value_size >= 4096 {
        why.push(format!("{} KiB values", w.value_size / 1024));
    }
    if w.durability == "always" {
        why.push("durability `always`".into());
    }
    if why.is_empty() {
        String::new()
    } else {
        format!(" ({})", why.join(", "))
    }
}

/// The headline: the KingServer-vs-nginx question answered in a few
/// sentences from the verdicts: where the thread pool holds its own against
/// the event loop, where it falls behind, and how both compare with memcached.
pub fn headline(d: &RunData) -> Vec<String> {
    if crate::cluster::in_run(d) {
        return crate::cluster::headline(d);
    }
    let mut out = Vec::new();
    let (Some(tp), Some(el)) = (
        d.primary(FrontendKind::Threadpool),
        d.primary(FrontendKind::Eventloop),
    ) else {
        out.push(
            "This run has no thread pool and event loop to compare: see the findings below.".into(),
        );
        return out;
    };
    let (tpn, eln) = (tp.name.as_str(), el.name.as_str());
    let mut holds = Vec::new();
    let mut behind = Vec::new();
    let mut ahead = Vec::new();
    let mut undecided = Vec::new();
    for w in &d.info.matrix.workloads {
        for p in d.points(&w.name, false) {
            let (Some(t), Some(l)) = (
                d.compare(&p, tpn, eln, Figure::Throughput),
                d.compare(&p, tpn, eln, Figure::P99),
            ) else {
                continue;
            };
            let at = format!(
                "{} at {}{}",
                w.name,
                conns_label(p.connections),
                dimension(d, w, &p, tpn)
            );
            let figures = format!(
                "throughput {}/{} {}, p99 {}",
                tpn,
                eln,
                t.ratio_text(),
                l.ratio_text()
            );
            if t.verdict == Verdict::TooFewRounds {
                undecided.push(format!("{at}: {figures}"));
            } else if t.verdict == Verdict::Lower || l.verdict == Verdict::Higher {
                behind.push(format!(
                    "{at}: {figures} ({} in throughput, {} in p99)",
                    word(t.verdict, true),
                    word(l.verdict, false)
                ));
            } else if t.verdict == Verdict::Higher || l.verdict == Verdict::Lower {
                ahead.push(format!(
                    "{at}: {figures} ({} in throughput, {} in p99)",
                    word(t.verdict, true),
                    word(l.verdict, false)
                ));
            } else {
                holds.push(format!("{at}: {figures}"));
            }
        }
    }
    let list = |v: &[String]| v.join("; ");
    out.push(format!(
        "The question: where does a blocking thread pool (`{tpn}`, KingServer's model) hold \
         its own against an event loop (`{eln}`, nginx's model), and where does it break? \
         Ratios are {tpn}/{eln}, median and range over the rounds; a difference is called \
         only when every round agrees and the range clears the A/A noise floor."
    ));
    if !holds.is_empty() {
        out.push(format!(
            "The thread pool holds its own (no clear difference in throughput or p99) at: {}.",
            list(&holds)
        ));
    }
    if !ahead.is_empty() {
        out.push(format!(
            "The thread pool is ahead of the event loop at: {}.",
            list(&ahead)
        ));
    }
    if !behind.is_empty() {
        out.push(format!(
            "The thread pool falls behind (it breaks) at: {}.",
            list(&behind)
        ));
    }
    if !undecided.is_empty() {
        out.push(format!(
            "Too few rounds for a verdict at: {}.",
            list(&undecided)
        ));
    }
    if holds.is_empty() && ahead.is_empty() && behind.is_empty() && undecided.is_empty() {
        out.push("No point of the matrix measured both.".into());
    }

    // Both against memcached.
    let mc = d.primary(FrontendKind::Memcached);
    match mc {
        Some(m)
            if d.info
                .frontends
                .iter()
                .any(|s| s.frontend.name == m.name && s.available) =>
        {
            for f in [tpn, eln] {
                let mut better = Vec::new();
                let mut worse = Vec::new();
                let mut even = Vec::new();
                for w in d
                    .info
                    .matrix
                    .workloads
                    .iter()
                    .filter(|w| w.fits_memcached())
                {
                    for p in d.points(&w.name, false) {
                        let Some(t) = d.compare(&p, f, &m.name, Figure::Throughput) else {
                            continue;
                        };
                        let at = format!("{} at {} ({})", w.name, p.connections, t.ratio_text());
                        match t.verdict {
                            Verdict::Higher => better.push(at),
                            Verdict::Lower => worse.push(at),
                            _ => even.push(at),
                        }
                    }
                }
                let mut parts = Vec::new();
                if !better.is_empty() {
                    parts.push(format!(
                        "more throughput than memcached at {}",
                        list(&better)
                    ));
                }
                if !worse.is_empty() {
                    parts.push(format!("less at {}", list(&worse)));
                }
                if !even.is_empty() {
                    parts.push(format!("no clear difference at {}", list(&even)));
                }
                if !parts.is_empty() {
                    out.push(format!(
                        "`{f}` against memcached ({f}/memcached): {}.",
                        parts.join("; ")
                    ));
                }
            }
        }
        Some(_) => out.push("memcached was not installed: no comparison with it.".into()),
        None => {}
    }

    // What bounded the run.
    let mut bounds: std::collections::BTreeMap<&'static str, usize> = Default::default();
    let mut total = 0;
    for w in &d.info.matrix.workloads {
        for p in d.points(&w.name, false) {
            for f in d.compared() {
                if let Some((b, _, _)) = d.bound(&p, &f.name) {
                    *bounds.entry(b.name()).or_default() += 1;
                    total += 1;
                }
            }
        }
    }
    if total > 0 {
        let parts: Vec<String> = bounds.iter().map(|(b, n)| format!("{b} {n}")).collect();
        out.push(format!(
            "What bounded the {total} front-end x point combinations: {} (the tables name \
             each; a disk-bound cell measures the disk, a client-bound one the load generator).",
            parts.join(", ")
        ));
    }
    out
}
