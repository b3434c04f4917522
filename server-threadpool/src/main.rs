//! `server-threadpool`: the store served by one accept thread and a fixed
//! pool of blocking workers (KingServer's model). Everything around the
//! loop (signals, engine, listener, startup line, shutdown) is the shared
//! startup of `service::frontend`.

use std::process::ExitCode;

use clap::Parser;
use server_threadpool::ThreadPool;
use service::Flags;

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
    service::frontend::main("server-threadpool", &ThreadPool, &cli.flags)
}
