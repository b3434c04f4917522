//! The report generator over a recorded run (`fixtures/run-rounds`: a real
//! run of `threadpool-4`, `eventloop`, its A/A twin `eventloop-twin` and
//! memcached at 1 and 8 connections plus open-loop cells at 50 %, three
//! rounds, trimmed to `cell.json`, `summary.json`, `get.hgrm`,
//! `stats-after.txt` and `commands.txt`). Tests edit copies of it to make
//! rounds agree or disagree, or a cell disk-bound, and check what the report
//! and `compare` conclude.

use std::fs;
use std::path::{Path, PathBuf};

use bench::data::{Figure, RunData};
use bench::findings::measured_text;
use bench::matrix::Point;
use bench::model::{read_summary, CellRecord, CellStatus, RunInfo};
use bench::report::render;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run-rounds")
}

/// Copies the fixture into a temp dir, so rendering never writes into the tree.
fn copy_fixture() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), &tmp.path().join("run-rounds"));
    tmp
}

fn run_dir(tmp: &tempfile::TempDir) -> PathBuf {
    tmp.path().join("run-rounds")
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

fn report(dir: &Path) -> String {
    fs::read_to_string(render(dir).unwrap()).unwrap()
}

/// Sets the throughput of a front-end's read-heavy cell at `conns` in each
/// round (1-based in the id) to the given values.
fn set_throughput(dir: &Path, frontend: &str, conns: usize, values: &[f64]) {
    for (i, v) in values.iter().enumerate() {
        let p = dir.join(format!("read-heavy_{frontend}_c{conns}_r{}", i + 1));
        let mut s: serde_json::Value = bench::read_json(&p.join("summary.json")).unwrap();
        s["throughput_ops_per_s"] = (*v).into();
        bench::write_json(&p.join("summary.json"), &s).unwrap();
    }
}

/// The findings line of read-heavy at `conns` connections.
fn leader_line(report: &str, conns: usize) -> String {
    let head = if conns == 1 {
        "* **1 connection**".to_string()
    } else {
        format!("* **{conns} connections**")
    };
    report
        .lines()
        .find(|l| l.starts_with(&head))
        .unwrap_or_else(|| panic!("no line {head} in\n{report}"))
        .to_string()
}

#[test]
fn tables_show_the_median_and_range_of_every_point() {
    let tmp = copy_fixture();
    let dir = run_dir(&tmp);
    let text = report(&dir);
    let d = RunData::load(&dir).unwrap();
    let info: RunInfo = bench::read_json(&dir.join("run.json")).unwrap();
    assert_eq!(info.matrix.rounds, 3);
    for f in ["threadpool-4", "eventloop", "eventloop-twin", "memcached"] {
        for conns in [1usize, 8] {
            let values: Vec<f64> = (1..=3)
                .map(|r| {
                    read_summary(&dir.join(format!("read-heavy_{f}_c{conns}_r{r}/summary.json")))
                        .unwrap()
                        .throughput_ops_per_s
                })
                .collect();
            let s = bench::stats::Spread::of(&values).unwrap();
            let want = format!(
                "{} ({}-{})",
                bench::report::thousands(s.median),
                bench::report::thousands(s.min),
                bench::report::thousands(s.max)
            );
            let mark = if f == "threadpool-4" && conns > 4 {
                "\u{2020}"
            } else {
                ""
            };
            let row = format!("| `{f}` | {conns}{mark} | 3/3 | {want} |");
            assert!(text.contains(&row), "row {row} missing from\n{text}");
            // p99 from the same files, through the same formatting.
            let p = Point {
                workload: "read-heavy".into(),
                connections: conns,
                load_pct: None,
            };
            let p99 = measured_text(&d.figure(&p, f, Figure::P99).unwrap(), Figure::P99);
            let line = text.lines().find(|l| l.starts_with(&row)).unwrap();
            assert!(line.contains(&format!("| {p99} |")), "{p99} not in {line}");
        }
    }
    assert!(text.contains(&format!("| CPU | {} |", info.machine.cpu_model)));
    assert!(text.contains("| Disk write bandwidth |"));
    assert!(text.contains(&info.cores.describe()));
    assert!(text.contains("Do not edit by hand"));
    assert!(text.contains("## The answer"));
    assert!(text.contains("| `read-heavy` |"), "noise floor table");
}

#[test]
fn rounds_that_disagree_render_no_clear_difference() {
    let tmp = copy_fixture();
    let dir = run_dir(&tmp);
    // The event loop ahead in two rounds, behind in one: no verdict.
    set_throughput(&dir, "threadpool-4", 1, &[10_000.0, 10_000.0, 10_000.0]);
    set_throughput(&dir, "eventloop", 1, &[15_000.0, 7_000.0, 15_000.0]);
    set_throughput(&dir, "eventloop-twin", 1, &[15_100.0, 7_050.0, 14_900.0]);
    let text = report(&dir);
    let line = leader_line(&text, 1);
    assert!(
        line.contains(
            "no clear difference in throughput between `eventloop` and `threadpool-4` \
             (`eventloop`/`threadpool-4` 1.5x (0.7-1.5) over 3 rounds"
        ),
        "{line}"
    );
    assert!(!line.contains("`eventloop` leads `threadpool-4`"), "{line}");
}

#[test]
fn rounds_that_agree_render_a_lead_with_its_range() {
    let tmp = copy_fixture();
    let dir = run_dir(&tmp);
    set_throughput(&dir, "threadpool-4", 1, &[10_000.0, 10_000.0, 10_000.0]);
    set_throughput(&dir, "eventloop", 1, &[19_000.0, 20_000.0, 21_000.0]);
    // The twin within 1 % of the original: a tight noise floor.
    set_throughput(&dir, "eventloop-twin", 1, &[19_100.0, 19_900.0, 21_050.0]);
    set_throughput(&dir, "eventloop", 8, &[100_000.0, 100_000.0, 100_000.0]);
    set_throughput(&dir, "eventloop-twin", 8, &[100_500.0, 99_600.0, 100_200.0]);
    let text = report(&dir);
    let line = leader_line(&text, 1);
    assert!(
        line.contains(
            "`eventloop` leads `threadpool-4` in throughput by `eventloop`/`threadpool-4` \
             2.0x (1.9-2.1) over 3 rounds"
        ),
        "{line}"
    );
    // And the headline names it as a point where the thread pool falls behind.
    let behind = text
        .lines()
        .find(|l| l.starts_with("* The thread pool falls behind"))
        .unwrap_or_else(|| panic!("no falls-behind line in\n{text}"));
    assert!(
        behind.contains("read-heavy at 1 connection: throughput threadpool-4/eventloop 0.50x"),
        "{behind}"
    );
}

#[test]
fn a_disk_bound_cell_names_the_disk() {
    let tmp = copy_fixture();
    let dir = run_dir(&tmp);
    let info: RunInfo = bench::read_json(&dir.join("run.json")).unwrap();
    let bw = info
        .disk
        .expect("the fixture measured its disk")
        .bytes_per_s();
    for r in 1..=3 {
        let p = dir.join(format!("read-heavy_eventloop_c1_r{r}/cell.json"));
        let mut rec: CellRecord = bench::read_json(&p).unwrap();
        let u = rec.server.as_mut().unwrap();
        // Writing at 95 % of the measured bandwidth.
        u.disk_write_bytes = (0.95 * bw * u.wall_s) as u64;
        bench::write_json(&p, &rec).unwrap();
    }
    let text = report(&dir);
    let row = text
        .lines()
        .find(|l| l.starts_with("| `eventloop` | 1 |"))
        .unwrap();
    assert!(row.ends_with("| disk (3/3) |"), "{row}");
    let bounds = text
        .lines()
        .find(|l| l.starts_with("* What bounded the cells"))
        .unwrap();
    assert!(bounds.contains("`eventloop` 1: disk (3/3)"), "{bounds}");
    assert!(
        text.contains("disk 1"),
        "headline counts the disk-bound point"
    );
}

#[test]
fn a_lower_bound_latency_is_marked_and_never_the_lower_one() {
    let tmp = copy_fixture();
    let dir = run_dir(&tmp);
    let text = report(&dir);
    // threadpool-4 at 16 connections in the open loop leaves 12 of them
    // unserved: its latency is made of lower bounds.
    let row = text
        .lines()
        .find(|l| l.starts_with("| `threadpool-4` | 50% |"))
        .unwrap();
    assert!(row.contains("| \u{2265}"), "{row}");
    assert!(!text.contains("`threadpool-4` has the lower p99"), "{text}");
}

#[test]
fn charts_have_whiskers_and_are_linked() {
    let tmp = copy_fixture();
    let dir = run_dir(&tmp);
    let text = report(&dir);
    for name in [
        "throughput-read-heavy.svg",
        "spectrum-read-heavy.svg",
        "load-read-heavy.svg",
    ] {
        let svg = fs::read_to_string(dir.join("charts").join(name)).unwrap();
        assert!(svg.starts_with("<svg"), "{name} is not an SVG");
        for f in ["threadpool-4", "eventloop", "memcached"] {
            assert!(svg.contains(f), "{name} has no series {f}");
        }
        assert!(svg.contains("<polyline"), "{name} draws no line");
        assert!(
            text.contains(&format!("(charts/{name})")),
            "{name} not linked"
        );
    }
    // Whiskers: one vertical segment per point with a range, two caps each.
    let t = fs::read_to_string(dir.join("charts/throughput-read-heavy.svg")).unwrap();
    let lines = t.matches("<polyline").count();
    assert!(lines >= 4 + 3 * 8, "{lines} polylines: no whiskers?");
    let spectrum = fs::read_to_string(dir.join("charts/spectrum-read-heavy.svg")).unwrap();
    assert!(spectrum.contains("99.9%"), "percentile axis labels");
}

#[test]
fn rendering_twice_gives_the_same_report() {
    let tmp = copy_fixture();
    let dir = run_dir(&tmp);
    assert_eq!(report(&dir), report(&dir));
}

#[test]
fn a_failed_cell_is_reported_as_failed() {
    let tmp = copy_fixture();
    let dir = run_dir(&tmp);
    let cell = dir.join("read-heavy_eventloop_c8_r2");
    let mut rec: CellRecord = bench::read_json(&cell.join("cell.json")).unwrap();
    rec.status = CellStatus::Failed;
    rec.error = Some("server ended during the run (signal: 9)".into());
    bench::write_json(&cell.join("cell.json"), &rec).unwrap();
    fs::remove_file(cell.join("summary.json")).unwrap();
    let text = report(&dir);
    assert!(text.contains("| `eventloop` | 8 | 2/3 |"), "{text}");
    assert!(text.contains(
        "* `read-heavy_eventloop_c8_r2`: failed: server ended during the run (signal: 9)"
    ));
    assert!(text.contains("1 cell(s) of this workload failed"));
}

#[test]
fn a_summary_of_another_schema_is_an_error_not_a_zero() {
    let tmp = copy_fixture();
    let dir = run_dir(&tmp);
    let p = dir.join("read-heavy_eventloop_c8_r2/summary.json");
    let mut s: serde_json::Value = bench::read_json(&p).unwrap();
    s.as_object_mut().unwrap().remove("throughput_ops_per_s");
    bench::write_json(&p, &s).unwrap();
    let e = render(&dir).unwrap_err().to_string();
    assert!(e.contains("throughput_ops_per_s"), "{e}");
}

#[test]
fn compare_of_a_run_with_itself_finds_no_difference() {
    let tmp = copy_fixture();
    let dir = run_dir(&tmp);
    let out = tmp.path().join("same.md");
    let path = bench::compare::write(&dir, &dir, Some(out.clone())).unwrap();
    let text = fs::read_to_string(path).unwrap();
    assert!(text.contains("B is better in 0, worse in 0"), "{text}");
    let rows = text
        .lines()
        .filter(|l| l.starts_with("| `read-heavy`"))
        .count();
    // 4 front-ends minus the twin, 3 points, 4 figures.
    assert_eq!(rows, 3 * 3 * 4, "{text}");
    assert!(!text.contains("| better |") && !text.contains("| worse |"));
}

#[test]
fn compare_finds_a_change_that_every_round_shows() {
    let tmp = copy_fixture();
    let a = run_dir(&tmp);
    let b = tmp.path().join("run-after");
    copy_dir(&a, &b);
    // B: the event loop (and its twin, the same binary) twice as fast at 8
    // connections in every round.
    for f in ["eventloop", "eventloop-twin"] {
        let values: Vec<f64> = (1..=3)
            .map(|r| {
                read_summary(&a.join(format!("read-heavy_{f}_c8_r{r}/summary.json")))
                    .unwrap()
                    .throughput_ops_per_s
                    * 2.0
            })
            .collect();
        set_throughput(&b, f, 8, &values);
    }
    let text = fs::read_to_string(bench::compare::write(&a, &b, None).unwrap()).unwrap();
    let row = text
        .lines()
        .find(|l| l.starts_with("| `read-heavy` | `eventloop` | 8 | throughput |"))
        .unwrap();
    assert!(row.ends_with("| better |"), "{row}");
    assert!(text.contains("B is better in 1, worse in 0"), "{text}");
    // The twin is not a front-end of its own in a comparison.
    assert!(!text.contains("`eventloop-twin`"));
}
