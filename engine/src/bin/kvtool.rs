//! `kvtool`: offline tool over an engine data directory that no process has
//! open (it takes the directory lock like the engine does).
//!
//! ```text
//! kvtool verify  <dir>            checksums of every record, every index and footer;
//!                                 exit 1 on corruption
//! kvtool stats   <dir>            files, keys, live and dead bytes, space amplification
//! kvtool compact <dir>            full compaction
//! kvtool dump    <dir> [--values] keys (and flags, expiry, CAS, values), escaped:
//!                                 printable ASCII as is, `\\`, `\t`, `\n`, else `\xNN`
//! ```
//!
//! Exit status: 0 fine, 1 corruption found (verify) or a corrupt record met
//! (dump), 2 the command could not run (missing or locked directory,
//! unknown format version, I/O error, usage).
//!
//! `verify` reads the files without changing them. `stats`, `compact` and
//! `dump` open the directory as the engine does, which recovers it after a
//! crash (scans and seals unsealed files, cuts torn tails).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use engine::{inspect, Durability, Engine, OpenError, Options};

const USAGE: &str = "usage: kvtool <verify|stats|compact|dump> <data-dir> [--values]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, dir, rest) = match args.as_slice() {
        [cmd, dir, rest @ ..] => (cmd.as_str(), PathBuf::from(dir), rest),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let values = match rest {
        [] => false,
        [v] if v == "--values" && cmd == "dump" => true,
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if !dir.is_dir() {
        eprintln!(
            "kvtool: no data directory at {}: check the path",
            dir.display()
        );
        return ExitCode::from(2);
    }
    let result = match cmd {
        "verify" => verify(&dir),
        "stats" => stats(&dir),
        "compact" => compact(&dir),
        "dump" => dump(&dir, values),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kvtool: {e}");
            ExitCode::from(2)
        }
    }
}

fn open(dir: &Path) -> Result<Engine, OpenError> {
    Engine::open(
        dir,
        Options {
            durability: Durability::Always,
            background_compaction: false,
            compaction_rate: 0,
            ..Options::default()
        },
    )
}

fn verify(dir: &Path) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let report = inspect::verify_dir(dir)?;
    let sealed = report.files.iter().filter(|f| f.sealed).count();
    println!(
        "files: {} ({} sealed)\nrecords: {}",
        report.files.len(),
        sealed,
        report.records()
    );
    for n in &report.notes {
        println!(
            "note: {} at offset {}: {}",
            n.file.display(),
            n.offset,
            n.what
        );
    }
    for p in &report.problems {
        println!(
            "CORRUPT: {} at offset {}: {}",
            p.file.display(),
            p.offset,
            p.what
        );
    }
    if report.is_clean() {
        println!("ok");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{} problem(s) found", report.problems.len());
        Ok(ExitCode::from(1))
    }
}

fn dir_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_name().to_string_lossy().ends_with(".hst") {
            total += e.metadata()?.len();
        }
    }
    Ok(total)
}

fn stats(dir: &Path) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let e = open(dir)?;
    let s = e.stats();
    // Close first: the empty active file the open created goes away.
    e.close()?;
    let disk = dir_bytes(dir)?;
    println!("files: {}", s.files.saturating_sub(1));
    println!("keys: {}", s.keys);
    println!("live bytes: {}", s.live_bytes);
    println!("dead bytes: {}", s.dead_bytes);
    println!("disk bytes: {disk}");
    if s.live_bytes > 0 {
        println!(
            "space amplification: {:.2} (disk / live)",
            disk as f64 / s.live_bytes as f64
        );
    } else {
        println!("space amplification: - (no live data)");
    }
    println!("bad records: {}", s.bad_records);
    Ok(ExitCode::SUCCESS)
}

fn compact(dir: &Path) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let before = dir_bytes(dir)?;
    let e = open(dir)?;
    let start = std::time::Instant::now();
    let r = e.compact()?;
    let secs = start.elapsed().as_secs_f64();
    e.close()?;
    let after = dir_bytes(dir)?;
    println!(
        "compacted {} file(s) into {}: {} record bytes in, {} out, {} records moved, {} dropped, {:.2} s",
        r.files_in, r.files_out, r.bytes_in, r.bytes_out, r.records_moved, r.records_dropped, secs
    );
    println!("disk bytes: {before} -> {after}");
    Ok(ExitCode::SUCCESS)
}

fn escape(b: &[u8], out: &mut Vec<u8>) {
    for &c in b {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x20..=0x7e => out.push(c),
            _ => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
        }
    }
}

fn dump(dir: &Path, values: bool) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let e = open(dir)?;
    let snap = e.snapshot();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut line = Vec::new();
    let mut bad = 0u64;
    for entry in snap.iter() {
        let entry = match entry {
            Ok(x) => x,
            Err(err) => {
                eprintln!("kvtool: {err}");
                bad += 1;
                continue;
            }
        };
        line.clear();
        escape(&entry.key, &mut line);
        if values {
            let i = &entry.item;
            line.extend_from_slice(format!("\t{}\t{}\t{}\t", i.flags, i.expiry, i.seq).as_bytes());
            escape(&i.value, &mut line);
        }
        line.push(b'\n');
        if let Err(e) = out.write_all(&line) {
            // The reader went away (`kvtool dump dir | head`): not an error.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(ExitCode::SUCCESS);
            }
            return Err(e.into());
        }
    }
    if let Err(e) = out.flush() {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(e.into());
        }
    }
    drop(snap);
    e.close()?;
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
