//! The one startup sequence of both servers (see [`crate::frontend`]):
//! everything a server binary does around its loop, in one order, so the
//! binaries differ only in the [`Frontend`] they pass.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use engine::Engine;

use crate::frontend::{shutdown_on_signals, Config, Frontend, Listener};
use crate::{engine_options, init_logging, Flags, FrontendInfo, Service, ServiceConfig};

/// Why a server could not start, or did not stop cleanly. Each message
/// names what failed and carries its cause.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// SIGINT/SIGTERM handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] io::Error),
    /// The engine could not open its data directory.
    #[error("cannot open the data directory {}: {source}", dir.display())]
    Open {
        dir: PathBuf,
        #[source]
        source: engine::OpenError,
    },
    /// The listening socket(s) could not be bound.
    #[error("{0}")]
    Listen(#[source] io::Error),
    /// The loop stopped abnormally (the engine was still closed).
    #[error("{0}")]
    Run(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The engine did not close cleanly: the active file may lack its
    /// footer; the next start recovers it by scanning.
    #[error("closing the engine: {0}")]
    Close(#[source] engine::WriteError),
}

/// A server binary's `main` after parsing its flags: logging, then
/// [`serve`]; exit 0 once the engine is closed after SIGINT/SIGTERM, 1 with
/// the reason on stderr otherwise. `name` prefixes that reason.
pub fn main<F: Frontend>(name: &str, frontend: &F, flags: &Flags) -> ExitCode {
    init_logging(flags);
    match serve(frontend, flags) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            // Plain stderr too: the reason must show whatever --log-level says.
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `frontend` as the flags say, until SIGINT/SIGTERM:
///
/// 1. signal handlers first, so a SIGTERM while the engine recovers still
///    means a clean stop rather than the default abrupt exit;
/// 2. the service's and the loop's settings from the flags, with the
///    front-end's [`Defaults`](crate::frontend::Defaults) where flags are
///    not given; the open-file limit raised for `--max-connections`;
/// 3. the engine opened, the listener bound, and the startup line printed
///    on stdout: `listening on ADDR, data dir DIR, model MODEL, N THREADS`
///    (scripts and tests read ADDR, the real port when `--listen` has port
///    0, up to the first comma);
/// 4. [`Frontend::run`]; then the engine closed, whatever the loop returned.
pub fn serve<F: Frontend>(frontend: &F, flags: &Flags) -> Result<(), ServeError> {
    let shutdown = shutdown_on_signals().map_err(ServeError::Signals)?;

    let defaults = frontend.defaults();
    let mut service_config = ServiceConfig::from_flags(flags, defaults.idle_timeout_s);
    let config = Config::new(
        &service_config,
        flags.threads_or(defaults.threads),
        flags.pin_or(defaults.pin),
    );
    let threads = u64::try_from(config.threads).unwrap_or(u64::MAX);
    crate::prepare_open_file_limit(
        flags.max_connections,
        defaults.fds_per_thread.saturating_mul(threads),
    );

    let engine = Arc::new(
        Engine::open(&flags.data_dir, engine_options(flags)).map_err(|source| {
            ServeError::Open {
                dir: flags.data_dir.clone(),
                source,
            }
        })?,
    );
    let listener = frontend
        .bind(flags.listen, &config)
        .map_err(ServeError::Listen)?;
    let addr = listener.local_addr().map_err(ServeError::Listen)?;
    // `stats settings` reports the port really listened on.
    service_config.listen = addr;
    let frontend_info = FrontendInfo {
        model: F::MODEL,
        threads: config.threads,
    };
    let service = Arc::new(Service::new(
        Arc::clone(&engine),
        service_config,
        frontend_info,
    ));

    println!(
        "listening on {addr}, data dir {}, model {}, {} {}",
        flags.data_dir.display(),
        F::MODEL,
        config.threads,
        defaults.thread_noun
    );
    let _ = io::stdout().flush();
    tracing::info!(
        %addr,
        model = F::MODEL,
        data_dir = %flags.data_dir.display(),
        threads = config.threads,
        pin = config.pin,
        durability = %flags.durability,
        max_connections = config.max_connections,
        idle_timeout_s = config.idle_timeout.map_or(0, |d| d.as_secs()),
        write_timeout_s = config.write_timeout.map_or(0, |d| d.as_secs()),
        "started"
    );

    let served = frontend.run(listener, service, &config, &shutdown);
    // Close the engine even after a failure: it seals the active file so
    // the next start needs no recovery scan.
    let closed = engine.close();
    served.map_err(|e| ServeError::Run(Box::new(e)))?;
    closed.map_err(ServeError::Close)?;
    tracing::info!("stopped cleanly");
    Ok(())
}
