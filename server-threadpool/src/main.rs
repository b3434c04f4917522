//! `server-threadpool`: the store served by one accept thread and a fixed
//! pool of blocking workers (KingServer's model). Parses the shared flags,
//! opens the engine, binds, runs until SIGINT/SIGTERM, exits 0 once the
//! engine is closed.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use engine::Engine;
use server_threadpool::{bind, run, Options, MODEL};
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
    // Signals first, as both front-ends do.
    let shutdown =
        service::frontend::shutdown_on_signals().context("cannot install signal handlers")?;

    let options = Options::from_flags(flags);
    let config = ServiceConfig::from_flags(flags, server_threadpool::IDLE_TIMEOUT_DEFAULT_S);
    // Each connection a worker serves holds a second descriptor, kept so that
    // shutdown can interrupt its read.
    service::prepare_open_file_limit(flags.max_connections, options.workers as u64);
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
        idle_timeout_s = service.config().idle_timeout.map_or(0, |d| d.as_secs()),
        write_timeout_s = service.config().write_timeout.map_or(0, |d| d.as_secs()),
        "server-threadpool started"
    );

    run(listener, service, &options, &shutdown)?;
    tracing::info!("stopped cleanly");
    Ok(())
}
