//! `server-threadpool`: the store served by one accept thread and a fixed
//! pool of blocking workers (KingServer's model). Parses the shared flags,
//! opens the engine, binds, runs until SIGINT/SIGTERM, exits 0 once the
//! engine is closed.

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use engine::Engine;
use server_threadpool::{bind, install_signal_handlers, run, Options, Shutdown, MODEL};
use service::{engine_options, init_logging, Flags, Service, ServiceConfig};

#[derive(Parser, Debug)]
#[command(
    name = "server-threadpool",
    version,
    about = "memcached-protocol store served by an accept thread and a pool of blocking workers (KingServer's model)"
)]
struct Cli {
    #[command(flatten)]
    flags: Flags,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.flags);
    match serve(&cli.flags) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("server-threadpool: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(flags: &Flags) -> anyhow::Result<()> {
    // Signals first: a SIGTERM while the engine recovers must still mean a
    // clean stop, not the default abrupt exit.
    let shutdown = Shutdown::new();
    install_signal_handlers(shutdown.clone()).context("cannot install signal handlers")?;

    let options = Options::from_flags(flags);
    let config = ServiceConfig::from_flags(flags);
    raise_open_file_limit(flags.max_connections, options.workers);
    let engine = Arc::new(
        Engine::open(&flags.data_dir, engine_options(flags)).with_context(|| {
            format!(
                "cannot open the data directory {}",
                flags.data_dir.display()
            )
        })?,
    );
    let listener =
        bind(flags.listen).with_context(|| format!("cannot listen on {}", flags.listen))?;
    let addr = listener.local_addr().context("bound address")?;
    let service = Arc::new(Service::new(engine, config, options.frontend()));

    // Scripts and tests read the bound address (port 0 picks one) here.
    println!(
        "listening on {addr}, data dir {}, model {MODEL}, {} workers",
        flags.data_dir.display(),
        options.workers
    );
    let _ = std::io::stdout().flush();
    tracing::info!(
        %addr,
        data_dir = %flags.data_dir.display(),
        workers = options.workers,
        pin = options.pin,
        durability = %flags.durability,
        max_connections = flags.max_connections,
        idle_timeout_s = flags.idle_timeout,
        "server-threadpool started"
    );

    run(listener, service, &options, &shutdown)?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Descriptors the process needs besides its connections: listener, engine
/// files, logging, signal pipe.
const RESERVED_FDS: u64 = 256;

/// Raises the soft open-file limit towards what `--max-connections` needs
/// (each connection a worker serves holds a second descriptor, kept so that
/// shutdown can interrupt its read), up to the hard limit, and warns when that
/// is not enough. Without it, a default soft limit of 1024 would turn
/// connections away with EMFILE long before `--max-connections`.
fn raise_open_file_limit(max_connections: usize, workers: usize) {
    let needed = if max_connections == 0 {
        u64::MAX
    } else {
        (max_connections as u64)
            .saturating_add(workers as u64)
            .saturating_add(RESERVED_FDS)
    };
    match set_soft_file_limit(needed) {
        Ok((soft, _)) if soft >= needed => {}
        Ok((soft, hard)) if max_connections != 0 => tracing::warn!(
            soft,
            hard,
            needed,
            "the open-file limit is below what --max-connections {max_connections} needs; \
             raise the hard limit (ulimit -Hn) or lower --max-connections"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read or raise the open-file limit"),
    }
}

/// Sets the soft RLIMIT_NOFILE to `min(needed, hard)` if it is lower;
/// returns the resulting (soft, hard).
#[allow(unsafe_code)]
fn set_soft_file_limit(needed: u64) -> io::Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only the struct passed, which is valid and
    // aligned for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let target = needed.min(limit.rlim_max);
    if limit.rlim_cur >= target {
        return Ok((limit.rlim_cur, limit.rlim_max));
    }
    let wanted = libc::rlimit {
        rlim_cur: target,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit only reads the struct passed.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((target, limit.rlim_max))
}
