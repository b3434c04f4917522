//! How both front-ends answer SIGINT and SIGTERM: the first asks for a
//! graceful stop (stop accepting, finish the requests in hand, close the
//! engine), a second ends the process at once (an operator who presses Ctrl-C
//! twice means it). Each front-end says what "stop" means for its own threads.

use std::io;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Exit status when a second signal cuts a graceful shutdown short.
pub const FORCED_EXIT_CODE: i32 = 1;

/// Routes SIGINT and SIGTERM from a dedicated thread: the first calls `stop`,
/// the second exits the process with [`FORCED_EXIT_CODE`] without waiting for
/// anything.
pub fn install_signal_handlers(stop: impl Fn() + Send + 'static) -> io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut seen = 0u32;
            for signal in signals.forever() {
                seen += 1;
                if seen == 1 {
                    tracing::info!(
                        signal,
                        "signal received: stopping (send it again to exit at once)"
                    );
                    stop();
                } else {
                    tracing::warn!(signal, "second signal: exiting at once");
                    std::process::exit(FORCED_EXIT_CODE);
                }
            }
        })?;
    Ok(())
}
