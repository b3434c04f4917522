//! Cluster cells (`make bench-cluster`) and their part of the report.
//!
//! A cluster front-end is `N` `server-eventloop`s (one event loop each), each
//! on its own loopback address as a simulated host (127.0.0.11, .12, ...),
//! driven either directly by `loadgen --distribution ketama` over all of
//! them (`cluster-direct-N`) or through nutcracker with `hash: md5` and
//! `distribution: ketama` on 127.0.0.10 (`cluster-proxy-N`). Both place every
//! key on the same backend, so the pair at the same `N` differs by the proxy
//! alone: its added latency and its CPU per request.
//!
//! A cell is measured like any other ([`crate::runner`]): fresh data
//! directories, a preload of every key (directly, with ketama), the measured
//! `loadgen` run, every process stopped by PID. The backends and the proxy
//! run on the server cores; the cell's server CPU is theirs together, and
//! the proxy's alone is kept in `proxy-usage.json`.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::Duration;

use crate::data::{Figure, RunData};
use crate::matrix::{Cell, Frontend, FrontendKind, Point, Workload};
use crate::model::{CellRecord, ServerUsage};
use crate::process::{fetch_stats, sample, spawn_pinned, usage_between, wait_ready, Managed};
use crate::runner::{
    find_in_path, measured_run_args, preload, run_loadgen, server_argv, write, CellContext,
    START_LIMIT, STOP_GRACE,
};
use crate::{write_json, Error};

/// The proxy's file of CPU time in a cell directory.
pub const PROXY_USAGE: &str = "proxy-usage.json";

/// The loopback address of backend `i` (a simulated host of its own).
fn backend_ip(i: usize) -> String {
    format!("127.0.0.{}", 11 + i)
}

/// The proxy's loopback address.
const PROXY_IP: &str = "127.0.0.10";

fn free_port_on(ip: &str) -> Result<u16, Error> {
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::Process(format!("no free port on {ip}: {e}")))
}

/// The threads line of a cluster front-end for the report.
pub fn describe(f: &Frontend) -> String {
    match f.cluster {
        Some(c) => format!(
            "{} server-eventloop backend(s), one event loop each, {}; backends{} share the \
             server cores",
            c.backends,
            if c.proxy {
                "behind nutcracker (ketama, md5)"
            } else {
                "driven directly with ketama placement"
            },
            if c.proxy { " and proxy" } else { "" }
        ),
        None => "a cluster without a shape".into(),
    }
}

/// nutcracker's configuration for the backends.
fn nutcracker_conf(listen: SocketAddr, backends: &[SocketAddr]) -> String {
    let mut s = format!(
        "cluster:\n  listen: {listen}\n  hash: md5\n  distribution: ketama\n  \
         auto_eject_hosts: false\n  timeout: 5000\n  servers:\n"
    );
    for b in backends {
        let _ = writeln!(s, "    - {b}:1");
    }
    s
}

/// Measures one cluster cell; the processes are stopped by PID whatever
/// happens (their guards drop).
#[allow(clippy::too_many_arguments)]
pub(crate) fn measure_in(
    ctx: &CellContext<'_>,
    cell: &Cell,
    f: &Frontend,
    w: &Workload,
    bin: &Path,
    out: &Path,
    data_dir: &Path,
    record: &mut CellRecord,
) -> Result<(), Error> {
    let m = ctx.matrix;
    let shape = f
        .cluster
        .ok_or_else(|| Error::Config(format!("{} is not a cluster", f.name)))?;
    let nutcracker = if shape.proxy {
        Some(find_in_path("nutcracker").ok_or_else(|| {
            Error::Config("nutcracker is not installed (apt-get install nutcracker)".into())
        })?)
    } else {
        None
    };
    let mut commands = String::new();
    let mut procs: Vec<(String, Managed)> = Vec::new();
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for i in 0..shape.backends {
        let ip = backend_ip(i);
        let port = free_port_on(&ip)?;
        let addr: SocketAddr = format!("{ip}:{port}")
            .parse()
            .map_err(|e| Error::Config(format!("{ip}:{port}: {e}")))?;
        let dir = data_dir.join(format!("backend-{i}"));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut argv = server_argv(f, bin, port, &dir, w, 1);
        if let Some(at) = argv.iter().position(|a| a == "--listen") {
            argv[at + 1] = addr.to_string();
        }
        let _ = writeln!(
            commands,
            "# backend {i}\n{}",
            crate::process::shell_quote(&argv)
        );
        if i == 0 {
            record.commands.server = argv.clone();
        }
        let child = spawn_pinned(
            &argv,
            &ctx.split.server,
            &out.join(format!("server-{i}.log")),
        )?;
        let mut p = Managed::new(child, format!("backend {i}"));
        wait_ready(addr, &mut p, START_LIMIT)?;
        procs.push((format!("backend {i}"), p));
        addrs.push(addr);
    }
    let targets: Vec<String> = match &nutcracker {
        Some(nc) => {
            let listen: SocketAddr = format!("{PROXY_IP}:{}", free_port_on(PROXY_IP)?)
                .parse()
                .map_err(|e| Error::Config(format!("proxy address: {e}")))?;
            let conf = out.join("nutcracker.yml");
            write(out, "nutcracker.yml", &nutcracker_conf(listen, &addrs))?;
            let argv = vec![
                nc.display().to_string(),
                "-c".into(),
                conf.display().to_string(),
                "-s".into(),
                free_port_on(PROXY_IP)?.to_string(),
                "-a".into(),
                PROXY_IP.into(),
                "-p".into(),
                data_dir.join("nutcracker.pid").display().to_string(),
                "-o".into(),
                out.join("nutcracker.log").display().to_string(),
            ];
            let _ = writeln!(commands, "# proxy\n{}", crate::process::shell_quote(&argv));
            let child = spawn_pinned(&argv, &ctx.split.server, &out.join("nutcracker.out"))?;
            let mut p = Managed::new(child, "nutcracker");
            wait_ready(listen, &mut p, START_LIMIT)?;
            procs.push(("nutcracker".into(), p));
            vec![listen.to_string()]
        }
        None => addrs.iter().map(ToString::to_string).collect(),
    };
    let direct: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    let server_args = |servers: &[String]| -> Vec<String> {
        let mut a = Vec::new();
        for s in servers {
            a.push("--server".to_string());
            a.push(s.clone());
        }
        a.push("--distribution".into());
        a.push("ketama".into());
        a
    };

    let outcome = (|| {
        // Preload every key once, directly: ketama puts each where the proxy would.
        preload(ctx, cell, w, &server_args(&direct), out, record)?;
        let loadgen = ctx.loadgen.display().to_string();
        let pids: Vec<u32> = procs.iter().filter_map(|(_, p)| p.pid()).collect();
        let before = pids
            .iter()
            .map(|&p| sample(p))
            .collect::<Result<Vec<_>, _>>()?;

        // The measured run: the same flags as a single server's cell.
        let warmup = m.warmup_for(cell.connections);
        let mut run = vec![loadgen, "run".into()];
        run.extend(server_args(&targets));
        run.extend(measured_run_args(ctx, cell, w, m.pipeline, out));
        record.commands.loadgen = run.clone();
        let limit = Duration::from_secs_f64(warmup + m.duration_s + 60.0);
        let lg = run_loadgen(&run, ctx, &out.join("loadgen.log"), limit);

        for (name, p) in procs.iter_mut() {
            if let Some(s) = p.try_wait() {
                return Err(Error::Process(format!("{name} ended during the run ({s})")));
            }
        }
        let after = pids
            .iter()
            .map(|&p| sample(p))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, a) in addrs.iter().enumerate() {
            let stats = fetch_stats(*a).unwrap_or_else(|e| format!("# {e}\n"));
            write(out, &format!("stats-after-{i}.txt"), &stats)?;
        }
        let summary = crate::model::read_summary(&out.join("summary.json"));
        let requests = summary
            .as_ref()
            .map_or(0, |s| s.total.counters.completed + s.warmup_completed);
        let cores = ctx.split.server.len();
        let usages: Vec<ServerUsage> = before
            .iter()
            .zip(&after)
            .map(|(b, a)| usage_between(b, a, cores))
            .collect();
        let mut total = usages[0];
        for u in &usages[1..] {
            total.cpu_user_s += u.cpu_user_s;
            total.cpu_system_s += u.cpu_system_s;
            total.peak_rss_bytes += u.peak_rss_bytes;
            total.threads += u.threads;
            total.disk_write_bytes += u.disk_write_bytes;
        }
        record.server = Some(ServerUsage { requests, ..total });
        if shape.proxy {
            if let Some(p) = usages.last() {
                write_json(&out.join(PROXY_USAGE), &ServerUsage { requests, ..*p })?;
            }
        }
        lg?;
        match summary {
            Ok(s) if s.total.counters.completed == 0 => Err(Error::Stalled(format!(
                "no request completed in the measured span ({} requests sent)",
                s.total.counters.requests
            ))),
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    })();
    let _ = std::fs::write(out.join("cluster-commands.txt"), commands);
    let mut exits = Vec::new();
    // The proxy first, then the backends.
    for (name, mut p) in procs.into_iter().rev() {
        exits.push(format!("{name}: {}", p.stop(STOP_GRACE)));
    }
    record.server_exit = Some(exits.join("; "));
    outcome
}

/// The proxy's CPU microseconds per request in one cell, if it was measured.
fn proxy_us_per_request(d: &RunData, c: &crate::data::CellData) -> Option<f64> {
    let text = std::fs::read_to_string(d.dir.join(&c.cell.id).join(PROXY_USAGE)).ok()?;
    let u: ServerUsage = serde_json::from_str(&text).ok()?;
    (u.requests > 0).then(|| (u.cpu_user_s + u.cpu_system_s) * 1e6 / u.requests as f64)
}

/// The cluster front-ends of a run as (backends, direct, proxy) names.
fn pairs(d: &RunData) -> Vec<(usize, Option<String>, Option<String>)> {
    let mut out: Vec<(usize, Option<String>, Option<String>)> = Vec::new();
    for f in d.compared() {
        let Some(c) = f.cluster.filter(|_| f.kind == FrontendKind::Cluster) else {
            continue;
        };
        let i = match out.iter().position(|(n, _, _)| *n == c.backends) {
            Some(i) => i,
            None => {
                out.push((c.backends, None, None));
                out.len() - 1
            }
        };
        if c.proxy {
            out[i].2 = Some(f.name.clone());
        } else {
            out[i].1 = Some(f.name.clone());
        }
    }
    out.sort_by_key(|p| p.0);
    out
}

/// Whether the run has cluster front-ends.
pub fn in_run(d: &RunData) -> bool {
    d.info
        .matrix
        .frontends
        .iter()
        .any(|f| f.kind == FrontendKind::Cluster)
}

/// The headline of a cluster run: the proxy against direct access at each
/// cluster size, by the report's rule.
pub fn headline(d: &RunData) -> Vec<String> {
    let mut out = Vec::new();
    for w in &d.info.matrix.workloads {
        for p in d.points(&w.name, false) {
            for (n, direct, proxy) in pairs(d) {
                let (Some(direct), Some(proxy)) = (direct, proxy) else {
                    continue;
                };
                for fig in [Figure::Throughput, Figure::P99] {
                    if let Some(t) = crate::findings::versus(d, &p, &proxy, &direct, fig) {
                        out.push(format!(
                            "{} at {} connections, {n} backend(s), {}: {t}.",
                            w.name,
                            p.connections,
                            fig.name()
                        ));
                    }
                }
            }
        }
    }
    out.push(scope(d));
    out
}

/// What a run of this machine can and cannot show.
fn scope(d: &RunData) -> String {
    let cores = &d.info.cores;
    format!(
        "All backends (and the proxy) ran on the same {} server core(s) and the load \
         generator on {} core(s) of one machine: more backends divide the same cores, so \
         throughput across cluster sizes shows no scale-out, and a proxied cell's \
         throughput is lower also because the proxy takes the backends' cores. What \
         carries over to real hosts is the CPU the proxy spends on one request (give or \
         take the speed of the CPU) and that keys land where ketama says; the latency it \
         adds here includes waiting for cores it shares with the backends, so it is an \
         upper bound of what a proxy on a host of its own adds. Across hosts, run the \
         backends and nutcracker on their own machines (README: Past one machine).",
        cores.server.len(),
        cores.loadgen.len()
    )
}

/// The report's cluster section: per workload and connection count, direct
/// and proxied throughput and p99 at each size, the proxy's cost per
/// request, and what bounded each.
pub fn section(o: &mut String, d: &RunData) {
    if !in_run(d) {
        return;
    }
    let _ = writeln!(
        o,
        "## Past one machine: direct (ketama) and through nutcracker\n"
    );
    let _ = writeln!(o, "{}\n", scope(d));
    let _ = writeln!(
        o,
        "Proxy CPU per request: nutcracker's CPU time (user and system) over the \
         measured run and its warm-up, divided by the requests completed in them; \
         the server CPU columns of the tables above hold the backends' and the proxy's \
         together. A cluster cell's directory also holds `server-<i>.log` and \
         `stats-after-<i>.txt` per backend, `nutcracker.yml`, `nutcracker.log` and \
         `proxy-usage.json` (proxied cells), and `cluster-commands.txt` (every command \
         line).\n"
    );
    for w in &d.info.matrix.workloads {
        for p in d.points(&w.name, false) {
            let _ = writeln!(o, "### {} at {} connections\n", w.name, p.connections);
            let _ = writeln!(
                o,
                "| backends | direct ops/s | proxy ops/s | proxy/direct ops/s | direct p99 ms | \
                 proxy p99 ms | proxy/direct p99 | proxy CPU us/request | bound by (direct, proxy) |"
            );
            let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|");
            for (n, direct, proxy) in pairs(d) {
                row(o, d, &p, n, direct.as_deref(), proxy.as_deref());
            }
            o.push('\n');
        }
    }
}

fn row(o: &mut String, d: &RunData, p: &Point, n: usize, a: Option<&str>, b: Option<&str>) {
    let fig = |f: Option<&str>, fig| {
        f.and_then(|f| d.figure(p, f, fig))
            .map_or_else(|| "-".into(), |m| crate::findings::measured_text(&m, fig))
    };
    let ratio = |fig| match (b, a) {
        (Some(b), Some(a)) => d
            .compare(p, b, a, fig)
            .map_or_else(|| "-".into(), |c| c.ratio_text()),
        _ => "-".into(),
    };
    let cost: Vec<f64> = b
        .map(|b| {
            d.rounds_of(p, b)
                .into_iter()
                .filter_map(|c| proxy_us_per_request(d, c))
                .collect()
        })
        .unwrap_or_default();
    let cost = crate::stats::Spread::of(&cost).map_or_else(
        || "-".into(),
        |s| {
            if s.n < 2 {
                format!("{:.1}", s.median)
            } else {
                format!("{:.1} ({:.1}-{:.1})", s.median, s.min, s.max)
            }
        },
    );
    let bound = |f: Option<&str>| {
        f.and_then(|f| d.bound(p, f))
            .map_or_else(|| "-".into(), |(b, k, of)| format!("{} {k}/{of}", b.name()))
    };
    let _ = writeln!(
        o,
        "| {n} | {} | {} | {} | {} | {} | {} | {cost} | {}, {} |",
        fig(a, Figure::Throughput),
        fig(b, Figure::Throughput),
        ratio(Figure::Throughput),
        fig(a, Figure::P99),
        fig(b, Figure::P99),
        ratio(Figure::P99),
        bound(a),
        bound(b)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names_parse_to_shapes() {
        let f: Frontend = "cluster-proxy-3".parse().unwrap();
        assert_eq!(f.kind, FrontendKind::Cluster);
        let c = f.cluster.unwrap();
        assert_eq!((c.backends, c.proxy), (3, true));
        let t: Frontend = "cluster-direct-2-twin".parse().unwrap();
        assert_eq!(t.twin_of.as_deref(), Some("cluster-direct-2"));
        assert!(!t.cluster.unwrap().proxy);
        assert!("cluster-proxy-0".parse::<Frontend>().is_err());
        assert!(describe(&f).contains("nutcracker"));
    }

    #[test]
    fn nutcracker_config_lists_every_backend_with_ketama() {
        let b: Vec<SocketAddr> = vec![
            "127.0.0.11:5000".parse().unwrap(),
            "127.0.0.12:5001".parse().unwrap(),
        ];
        let c = nutcracker_conf("127.0.0.10:6000".parse().unwrap(), &b);
        assert!(c.contains("listen: 127.0.0.10:6000"));
        assert!(c.contains("distribution: ketama") && c.contains("hash: md5"));
        assert!(c.contains("    - 127.0.0.11:5000:1\n    - 127.0.0.12:5001:1\n"));
    }
}
