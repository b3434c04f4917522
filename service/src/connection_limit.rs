//! What both front-ends do about the connection limit: the reply a refused
//! connection gets, and raising the process's open-file limit so that
//! `--max-connections` is not cut short by EMFILE (a default soft limit of
//! 1024 would turn connections away long before it).

use std::io;

/// The line a connection over `--max-connections` gets before it is closed.
pub use protocol::TOO_MANY_CONNECTIONS;

/// Descriptors a server needs besides its connections: listeners, epoll and
/// eventfds, the engine's files, logging, the signal pipe.
pub const RESERVED_FDS: u64 = 256;

/// The open-file limit after [`raise_open_file_limit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileLimit {
    /// The soft limit now in force.
    pub soft: u64,
    /// The hard limit (the ceiling an unprivileged process can raise to).
    pub hard: u64,
    /// What was asked for.
    pub needed: u64,
}

impl FileLimit {
    /// Whether the limit now covers what was needed.
    pub fn is_enough(&self) -> bool {
        self.soft >= self.needed
    }
}

/// Raises this process's RLIMIT_NOFILE soft limit to `needed`, or as close as
/// the hard limit allows (trying to raise the hard limit too, which works
/// with CAP_SYS_RESOURCE). Never lowers it.
#[allow(unsafe_code)]
pub fn raise_open_file_limit(needed: u64) -> io::Result<FileLimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass, which is valid and
    // properly aligned for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur >= needed {
        return Ok(FileLimit {
            soft: limit.rlim_cur,
            hard: limit.rlim_max,
            needed,
        });
    }
    if limit.rlim_max < needed {
        let wanted = libc::rlimit {
            rlim_cur: needed,
            rlim_max: needed,
        };
        // SAFETY: setrlimit only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) } == 0 {
            return Ok(FileLimit {
                soft: needed,
                hard: needed,
                needed,
            });
        }
        // Not privileged: settle for the hard limit below.
    }
    let target = needed.min(limit.rlim_max);
    let wanted = libc::rlimit {
        rlim_cur: target,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit only reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(FileLimit {
        soft: target,
        hard: limit.rlim_max,
        needed,
    })
}

/// Raises the open-file limit to what `max_connections` connections need
/// (plus `extra` descriptors the front-end holds besides one per connection,
/// and [`RESERVED_FDS`]), or says clearly at startup how many connections the
/// process can really hold. `max_connections` 0 (no limit) takes whatever the
/// hard limit allows.
pub fn prepare_open_file_limit(max_connections: usize, extra: u64) -> Option<FileLimit> {
    let needed = if max_connections == 0 {
        u64::MAX
    } else {
        u64::try_from(max_connections)
            .unwrap_or(u64::MAX)
            .saturating_add(extra)
            .saturating_add(RESERVED_FDS)
    };
    match raise_open_file_limit(needed) {
        Ok(limit) if limit.is_enough() => {
            tracing::debug!(
                soft = limit.soft,
                "open-file limit is enough for --max-connections"
            );
            Some(limit)
        }
        Ok(limit) if max_connections == 0 => {
            tracing::info!(
                soft = limit.soft,
                "open-file limit raised to the hard limit"
            );
            Some(limit)
        }
        Ok(limit) => {
            let usable = limit.soft.saturating_sub(RESERVED_FDS + extra);
            tracing::warn!(
                soft = limit.soft,
                hard = limit.hard,
                needed = limit.needed,
                "the open-file limit is too low for --max-connections {max_connections}: \
                 only about {usable} connections can be open at once (raise the hard limit, \
                 e.g. `ulimit -Hn {}`, or lower --max-connections)",
                limit.needed
            );
            Some(limit)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise the open-file limit");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_to_the_current_limit_is_a_no_op() {
        let now = raise_open_file_limit(1).expect("getrlimit");
        assert!(now.is_enough());
        assert!(now.soft >= 1);
    }

    #[test]
    fn a_modest_connection_limit_is_covered() {
        let limit = prepare_open_file_limit(100, 10).expect("getrlimit");
        assert_eq!(limit.needed, 100 + 10 + RESERVED_FDS);
        assert!(limit.is_enough(), "{limit:?}");
    }
}
