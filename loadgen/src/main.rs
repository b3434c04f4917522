//! `loadgen` command line (the run and merge commands follow).

fn main() {
    eprintln!("loadgen: not wired up yet");
    std::process::exit(1);
}
