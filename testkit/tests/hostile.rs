//! A short run of the hostile-client suite against both front-ends: every
//! attack, one second each. `make hostile` runs the long version with
//! memcached beside them.

use testkit::hostile::{self, ATTACKS};
use testkit::Frontend;

fn suite(f: Frontend) {
    let mut failed = Vec::new();
    for attack in ATTACKS {
        let o = hostile::run(f, attack, 1.0).expect("our servers always start");
        println!("{}", o.line());
        if !o.passed() {
            failed.push(o.line());
        }
    }
    assert!(failed.is_empty(), "failed:\n{}", failed.join("\n"));
}

#[test]
fn the_thread_pool_survives_every_attack() {
    suite(Frontend::Threadpool);
}

#[test]
fn the_event_loop_survives_every_attack() {
    suite(Frontend::EventloopReuseport);
}

#[test]
fn the_amplification_attack_stays_within_64_mib_on_both() {
    // The figure, on its own: a 1 MB value named 3,000 times in one
    // request whose reply is never read.
    for f in [Frontend::Threadpool, Frontend::EventloopDispatch] {
        let o = hostile::run(f, "amplification", 1.5).expect("starts");
        println!("{}", o.line());
        assert!(o.growth() <= hostile::RSS_BOUND, "{}", o.line());
        assert!(o.passed(), "{}", o.line());
    }
}
