//! `server-eventloop`: the store served by one pinned mio event loop per
//! core. Parses the shared flags, raises the open-file limit, opens the
//! engine, binds, runs the loops until SIGINT/SIGTERM, closes the engine.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use engine::Engine;
use server_eventloop::{run, settings_from_flags, AcceptMode, Listeners, MODEL};
use service::{engine_options, init_logging, Flags, FrontendInfo, Service, ServiceConfig};

#[derive(Parser, Debug)]
#[command(
    name = "server-eventloop",
    version,
    about = "memcached-protocol store served by one pinned event loop per core (nginx's model)"
)]
struct Cli {
    #[command(flatten)]
    flags: Flags,

    /// How connections reach the loops: reuseport (one SO_REUSEPORT socket
    /// per loop, the kernel spreads connections; nginx's model) or dispatch
    /// (one acceptor thread deals them round robin; memcached's model).
    #[arg(long, value_enum, default_value_t = AcceptMode::ReusePort)]
    accept: AcceptMode,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.flags);
    match serve(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Plain stderr rather than the log: the reason must show whatever
            // --log-level says.
            eprintln!("server-eventloop: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(cli: &Cli) -> anyhow::Result<()> {
    let flags = &cli.flags;
    // Signals first, as both front-ends do: a SIGTERM while the engine
    // recovers must still mean a clean stop.
    let shutdown =
        service::frontend::shutdown_on_signals().context("cannot install signal handlers")?;
    service::prepare_open_file_limit(flags.max_connections, 0);

    // Idle connections cost the event loop a few bytes each: like
    // memcached, it never closes them unless told to.
    let config = ServiceConfig::from_flags(flags, 0);
    let settings = settings_from_flags(flags, &config.limits());
    let engine = Arc::new(
        Engine::open(&flags.data_dir, engine_options(flags)).with_context(|| {
            format!(
                "cannot open the data directory {}",
                flags.data_dir.display()
            )
        })?,
    );
    let listeners = Listeners::bind(flags.listen, cli.accept, settings.loops)?;
    let frontend = FrontendInfo {
        model: MODEL,
        threads: settings.loops,
    };
    let service = Arc::new(Service::new(Arc::clone(&engine), config, frontend));

    // Scripts and tests read the bound address (port 0 picks one) here.
    let addr = listeners.local_addr();
    println!("listening on {addr}");
    let _ = std::io::stdout().flush();
    tracing::info!(
        %addr,
        loops = settings.loops,
        accept = %cli.accept,
        pin = settings.pin,
        durability = %flags.durability,
        max_connections = settings.max_connections,
        "server-eventloop started"
    );

    let served = run(service, &settings, listeners, &shutdown);
    // Close the engine even after a failure: it seals the active file so the
    // next start needs no recovery scan.
    let closed = engine.close();
    served.context("event loops stopped")?;
    closed.context("closing the engine")?;
    tracing::info!("stopped cleanly");
    Ok(())
}
