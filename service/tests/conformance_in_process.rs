//! The whole stack without a real front-end: a minimal blocking TCP loop (a
//! thread per connection) feeds bytes to `Session::process`, and the
//! conformance suite runs against it. Every case must pass, as against
//! memcached.

use std::io::{ErrorKind, Read};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use engine::{Durability, Engine, Options};
use service::{FrontendInfo, Service, ServiceConfig, Step};

/// Serves one connection: read, process every complete request, wait for
/// durability, write, until the client leaves or the session says close.
fn serve(mut stream: TcpStream, service: Arc<Service>) {
    let engine = Arc::clone(service.engine());
    let mut session = service.session();
    let limits = service.limits();
    // Big enough for the longest line plus a value the decoder hands over whole.
    let mut input = vec![0u8; (limits.max_line_len + limits.chunk_threshold + 2).max(64 * 1024)];
    let (mut start, mut end) = (0, 0);
    let mut out = service::Output::new();
    service.stats().connection_opened();
    loop {
        let mut close = false;
        while start < end {
            let progress = session.process(&input[start..end], &mut out, 64);
            start += progress.consumed;
            if let Some(ticket) = progress.hold {
                if engine.wait_durable(ticket).is_err() {
                    out.clear();
                    close = true;
                    break;
                }
            }
            if progress.step == Step::Close {
                close = true;
                break;
            }
            if progress.step == Step::OutputFull {
                // A blocking writer: send what is pending, then go on.
                if out.flush_to(&mut stream).is_err() {
                    return;
                }
                continue;
            }
            if progress.consumed == 0 {
                break;
            }
        }
        if !out.is_empty() && out.flush_to(&mut stream).is_err() {
            break;
        }
        if close {
            break;
        }
        if start == end {
            (start, end) = (0, 0);
        } else if start > 0 {
            input.copy_within(start..end, 0);
            (start, end) = (0, end - start);
        }
        assert!(
            end < input.len(),
            "a partial request filled the whole input buffer"
        );
        match stream.read(&mut input[end..]) {
            Ok(0) => break,
            Ok(n) => end += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    service.stats().connection_closed();
}

fn run_suite(durability: Durability) {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = Options {
        durability,
        ..Options::default()
    };
    let engine = Arc::new(Engine::open(dir.path(), options).expect("engine opens"));
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let config = ServiceConfig {
        listen: addr,
        ..ServiceConfig::default()
    };
    let service = Arc::new(Service::new(
        Arc::clone(&engine),
        config,
        FrontendInfo {
            model: "test",
            threads: 1,
        },
    ));
    let accept_service = Arc::clone(&service);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
            let service = Arc::clone(&accept_service);
            std::thread::spawn(move || serve(stream, service));
        }
    });
    let report = testkit::conformance::run(addr).expect("suite runs");
    println!("{report}");
    assert!(
        report.ok(),
        "conformance failures against the in-process service:\n{report}"
    );
    engine.close().expect("engine closes cleanly");
}

#[test]
fn conformance_suite_passes_in_process() {
    run_suite(Durability::None);
}

#[test]
fn conformance_suite_passes_with_always_durability() {
    run_suite(Durability::Always);
}
