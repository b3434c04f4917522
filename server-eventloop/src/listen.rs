//! Listening sockets for the two accept modes.
//!
//! * [`AcceptMode::ReusePort`] (nginx's `reuseport`): one listening socket per
//!   loop, all bound to the same address with SO_REUSEPORT; the kernel hashes
//!   each new connection to one of them, so loops accept without sharing
//!   anything.
//! * [`AcceptMode::Dispatch`] (memcached's model): one listening socket; one
//!   acceptor thread hands connections to the loops round robin.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::str::FromStr;

use socket2::{Domain, Protocol, Socket, Type};

/// How connections reach the loops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AcceptMode {
    /// Every loop accepts on its own SO_REUSEPORT socket.
    #[default]
    #[value(name = "reuseport")]
    ReusePort,
    /// One acceptor thread deals connections to loops round robin.
    #[value(name = "dispatch")]
    Dispatch,
}

impl fmt::Display for AcceptMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AcceptMode::ReusePort => "reuseport",
            AcceptMode::Dispatch => "dispatch",
        })
    }
}

impl FromStr for AcceptMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "reuseport" => Ok(AcceptMode::ReusePort),
            "dispatch" => Ok(AcceptMode::Dispatch),
            other => Err(format!(
                "unknown accept mode {other:?}: expected \"reuseport\" or \"dispatch\""
            )),
        }
    }
}

/// The bound listening sockets, ready to hand to `Frontend::run`.
#[derive(Debug)]
pub struct Listeners {
    pub(crate) mode: AcceptMode,
    /// One per loop (reuseport) or exactly one (dispatch).
    pub(crate) sockets: Vec<TcpListener>,
    local_addr: SocketAddr,
}

impl Listeners {
    /// Binds `addr` for `loops` event loops in `mode`. With port 0 the first
    /// socket picks a free port and the others (reuseport) join it.
    pub fn bind(addr: SocketAddr, mode: AcceptMode, loops: usize) -> io::Result<Self> {
        let count = match mode {
            AcceptMode::ReusePort => loops.max(1),
            AcceptMode::Dispatch => 1,
        };
        let reuse_port = mode == AcceptMode::ReusePort;
        if reuse_port && addr.port() != 0 {
            // SO_REUSEPORT would let us share the port with another server
            // of the same user already listening there, silently splitting
            // its clients; a plain bind first turns that into an error.
            probe(addr)?;
        }
        let first = bind_one(addr, reuse_port)?;
        let local_addr = first.local_addr()?;
        let mut sockets = vec![first];
        for _ in 1..count {
            sockets.push(bind_one(local_addr, reuse_port)?);
        }
        Ok(Self {
            mode,
            sockets,
            local_addr,
        })
    }

    /// Uses an already-bound listener in [`AcceptMode::Dispatch`] (one socket
    /// cannot be spread over loops without SO_REUSEPORT).
    pub fn from_listener(listener: TcpListener) -> io::Result<Self> {
        let local_addr = listener.local_addr()?;
        Ok(Self {
            mode: AcceptMode::Dispatch,
            sockets: vec![listener],
            local_addr,
        })
    }

    /// The address clients connect to (with the real port when bound to 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The accept mode these sockets were bound for.
    pub fn mode(&self) -> AcceptMode {
        self.mode
    }
}

impl service::frontend::Listener for Listeners {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local_addr)
    }
}

fn bind_one(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = service::frontend::listen_socket(addr, reuse_port)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Binds (without listening) and releases `addr` without SO_REUSEPORT.
fn probe(addr: SocketAddr) -> io::Result<()> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket
        .bind(&addr.into())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    #[test]
    fn reuseport_binds_one_socket_per_loop_on_one_port() {
        let l = Listeners::bind(
            "127.0.0.1:0".parse().expect("addr"),
            AcceptMode::ReusePort,
            3,
        )
        .expect("bind");
        assert_eq!(l.sockets.len(), 3);
        assert_ne!(l.local_addr().port(), 0);
        for s in &l.sockets {
            assert_eq!(s.local_addr().expect("addr"), l.local_addr());
        }
        TcpStream::connect(l.local_addr()).expect("connect");
    }

    #[test]
    fn dispatch_binds_one_socket() {
        let l = Listeners::bind(
            "127.0.0.1:0".parse().expect("addr"),
            AcceptMode::Dispatch,
            4,
        )
        .expect("bind");
        assert_eq!(l.sockets.len(), 1);
    }

    #[test]
    fn binding_a_taken_port_names_the_address() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr");
        let err = Listeners::bind(addr, AcceptMode::Dispatch, 1).expect_err("port is taken");
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
    }

    #[test]
    fn reuseport_does_not_share_a_port_someone_listens_on() {
        let taken = Listeners::bind(
            "127.0.0.1:0".parse().expect("addr"),
            AcceptMode::ReusePort,
            1,
        )
        .expect("bind");
        let err = Listeners::bind(taken.local_addr(), AcceptMode::ReusePort, 2)
            .expect_err("port is taken");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
    }

    #[test]
    fn accept_mode_parses_and_displays() {
        for mode in [AcceptMode::ReusePort, AcceptMode::Dispatch] {
            assert_eq!(mode.to_string().parse::<AcceptMode>(), Ok(mode));
        }
        assert!("both".parse::<AcceptMode>().is_err());
    }
}
