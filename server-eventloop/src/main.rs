//! `server-eventloop`: the store served by one pinned mio event loop per
//! core. Everything around the loops (signals, engine, listeners, startup
//! line, shutdown) is the shared startup of `service::frontend`.

use std::process::ExitCode;

use clap::Parser;
use server_eventloop::{AcceptMode, EventLoop};
use service::Flags;

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
    let frontend = EventLoop { accept: cli.accept };
    service::frontend::main("server-eventloop", &frontend, &cli.flags)
}
