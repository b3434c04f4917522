//! The report generator over a small recorded run (`fixtures/run-small`: a
//! real run of `threadpool-4`, `eventloop` and memcached at 1 and 8
//! connections plus open-loop cells, trimmed to `cell.json`, `summary.json`,
//! `get.hgrm`, `set.hgrm`, `stats-after.txt` and `commands.txt`): the tables,
//! findings and charts carry the numbers of the raw files.

use std::fs;
use std::path::{Path, PathBuf};

use bench::model::{CellRecord, CellStatus, LoadSummary, RunInfo};
use bench::report::{ms, render, thousands};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run-small")
}

/// Copies the fixture into a temp dir, so rendering never writes into the tree.
fn copy_fixture() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), tmp.path());
    tmp
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            fs::copy(e.path(), target).unwrap();
        }
    }
}

fn summary(dir: &Path, cell: &str) -> LoadSummary {
    LoadSummary::read(&dir.join(cell).join("summary.json")).unwrap()
}

#[test]
fn tables_carry_the_numbers_of_every_cell() {
    let tmp = copy_fixture();
    let report = fs::read_to_string(render(tmp.path()).unwrap()).unwrap();
    let info: RunInfo = bench::read_json(&tmp.path().join("run.json")).unwrap();
    assert_eq!(info.cells.len(), 12);
    for cell in info.cells.iter().filter(|c| c.load_pct.is_none()) {
        let s = summary(tmp.path(), &cell.id);
        let l = &s.total.latency_us;
        // 8 connections exceed threadpool-4's workers: marked with a dagger.
        let mark = if cell.frontend == "threadpool-4" && cell.connections > 4 {
            "\u{2020}"
        } else {
            ""
        };
        let row = format!(
            "| `{}` | {}{mark} | {} | {} | {} | {} | {} | {} | {} |",
            cell.frontend,
            cell.connections,
            thousands(s.throughput_ops_per_s),
            ms(l.p50),
            ms(l.p99),
            ms(l.p99_9),
            ms(l.max),
            s.errors_total,
            s.errors.timeouts
        );
        assert!(report.contains(&row), "row {row} missing from\n{report}");
        // Server CPU per million requests, from cell.json.
        let rec: CellRecord =
            bench::read_json(&tmp.path().join(&cell.id).join("cell.json")).unwrap();
        let cpu = rec.server.unwrap().cpu_s_per_million().unwrap();
        let line = report.lines().find(|l| l.starts_with(&row)).unwrap();
        assert!(line.contains(&format!("| {cpu:.2} |")), "{line}");
    }
    // Open-loop rows: offered rate from cell.json, achieved from summary.json.
    for cell in info.cells.iter().filter(|c| c.load_pct.is_some()) {
        let s = summary(tmp.path(), &cell.id);
        let rec: CellRecord =
            bench::read_json(&tmp.path().join(&cell.id).join("cell.json")).unwrap();
        if s.total.completed == 0 {
            // Recorded: one open-loop cell whose requests all stayed unsent.
            let row = format!(
                "| `{}` | {}% | {} | **no request completed** |",
                cell.frontend,
                cell.load_pct.unwrap(),
                thousands(rec.rate.unwrap())
            );
            assert!(report.contains(&row), "{row} missing");
            continue;
        }
        let row = format!(
            "| `{}` | {}% | {} | {} | {} | {} |",
            cell.frontend,
            cell.load_pct.unwrap(),
            thousands(rec.rate.unwrap()),
            thousands(s.throughput_ops_per_s),
            ms(s.total.latency_us.p50),
            ms(s.total.latency_us.p99)
        );
        assert!(report.contains(&row), "open-loop row {row} missing");
    }
    // The machine and the core split.
    assert!(report.contains(&format!("| CPU | {} |", info.machine.cpu_model)));
    assert!(report.contains(&info.cores.describe()));
    assert!(report.contains("Do not edit by hand"));
}

#[test]
fn findings_name_the_leader_and_the_queueing() {
    let tmp = copy_fixture();
    let report = fs::read_to_string(render(tmp.path()).unwrap()).unwrap();
    let frontends = ["threadpool-4", "eventloop", "memcached"];
    for conns in [1usize, 8] {
        let mut m: Vec<(&str, LoadSummary)> = frontends
            .iter()
            .map(|f| (*f, summary(tmp.path(), &format!("read-heavy_{f}_c{conns}"))))
            .collect();
        m.sort_by(|a, b| {
            b.1.throughput_ops_per_s
                .total_cmp(&a.1.throughput_ops_per_s)
        });
        let (lead, ls) = &m[0];
        let (second, ss) = &m[1];
        let dagger = if *lead == "threadpool-4" && conns > 4 {
            "\u{2020}"
        } else {
            ""
        };
        let expect = format!(
            "connection{}**: `{lead}`{dagger} leads with {} ops/s",
            if conns == 1 { "" } else { "s" },
            thousands(ls.throughput_ops_per_s)
        );
        assert!(report.contains(&expect), "{expect} missing");
        let mark = if *second == "threadpool-4" && conns > 4 {
            "\u{2020}"
        } else {
            ""
        };
        let by = format!(
            "{:.2}x `{second}`{mark}",
            ls.throughput_ops_per_s / ss.throughput_ops_per_s
        );
        assert!(report.contains(&by), "{by} missing");
    }
    // 8 connections exceed the 4 workers: the finding says so with the numbers.
    let (s1, s8) = (
        summary(tmp.path(), "read-heavy_threadpool-4_c1"),
        summary(tmp.path(), "read-heavy_threadpool-4_c8"),
    );
    let q = format!(
        "`threadpool-4` queueing: 4 workers, so from 8 connections on 4 wait in the accept \
         queue, unanswered, while the workers serve the others; its figures there describe \
         the served connections only (marked \u{2020}). From 1 to 8 connections throughput \
         goes {} -> {} ops/s",
        thousands(s1.throughput_ops_per_s),
        thousands(s8.throughput_ops_per_s)
    );
    assert!(report.contains(&q), "{q} missing");
    assert!(report.contains("`max_queue_wait_us`"));
    assert!(report.contains("\u{2020} More connections than the thread pool has workers"));
    // Each front-end against memcached.
    let (e8, m8) = (
        summary(tmp.path(), "read-heavy_eventloop_c8"),
        summary(tmp.path(), "read-heavy_memcached_c8"),
    );
    let vs = format!(
        "8: {:.2}x",
        e8.throughput_ops_per_s / m8.throughput_ops_per_s
    );
    let line = report
        .lines()
        .find(|l| l.starts_with("* `eventloop` vs memcached"))
        .expect("eventloop vs memcached finding");
    assert!(line.contains(&vs), "{vs} not in {line}");
    assert!(report.contains("* `eventloop` p99 vs offered load: 50% ("));
}

#[test]
fn charts_exist_and_are_linked() {
    let tmp = copy_fixture();
    let report = fs::read_to_string(render(tmp.path()).unwrap()).unwrap();
    for name in [
        "throughput-read-heavy.svg",
        "spectrum-read-heavy.svg",
        "load-read-heavy.svg",
    ] {
        let path = tmp.path().join("charts").join(name);
        let svg = fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{name} is not an SVG");
        for f in ["threadpool-4", "eventloop", "memcached"] {
            assert!(svg.contains(f), "{name} has no series {f}");
        }
        assert!(svg.contains("<polyline"), "{name} draws no line");
        assert!(
            report.contains(&format!("(charts/{name})")),
            "{name} not linked"
        );
    }
    let spectrum = fs::read_to_string(tmp.path().join("charts/spectrum-read-heavy.svg")).unwrap();
    assert!(spectrum.contains("99.9%"), "percentile axis labels");
    assert!(spectrum.contains("8 connections"));
}

#[test]
fn rendering_twice_gives_the_same_report() {
    let tmp = copy_fixture();
    let a = fs::read_to_string(render(tmp.path()).unwrap()).unwrap();
    let b = fs::read_to_string(render(tmp.path()).unwrap()).unwrap();
    assert_eq!(a, b);
}

#[test]
fn a_failed_cell_is_reported_as_failed() {
    let tmp = copy_fixture();
    let cell = tmp.path().join("read-heavy_eventloop_c8");
    let mut rec: CellRecord = bench::read_json(&cell.join("cell.json")).unwrap();
    rec.status = CellStatus::Failed;
    rec.error = Some("server ended during the run (signal: 9)".into());
    bench::write_json(&cell.join("cell.json"), &rec).unwrap();
    fs::remove_file(cell.join("summary.json")).unwrap();
    let report = fs::read_to_string(render(tmp.path()).unwrap()).unwrap();
    assert!(report.contains("| `eventloop` | 8 | **failed** |"));
    assert!(report
        .contains("* `read-heavy_eventloop_c8`: failed: server ended during the run (signal: 9)"));
    assert!(report.contains("1 cell(s) of this workload failed"));
}
