//! Model test: random sequences of operations, restarts and crashes, checked
//! against a `BTreeMap` of what was acknowledged.
//!
//! A crash abandons the engine without sealing or syncing and cuts the last
//! HSTable at a random byte. Everything before the last durable point (open,
//! sync, restart) must survive; of what came after, recovery must keep a
//! prefix of the acknowledged writes, in order, and nothing else. So after a
//! crash the engine's contents must equal the model's state after some
//! prefix of the writes since the durable point.
//!
//! Cases: 48 by default, `PROPTEST_CASES` for more.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use engine::{Condition, Durability, Engine, Meta, Options, PutOutcome, Update};
use proptest::prelude::*;

const KEYS: u8 = 8;

#[derive(Debug, Clone)]
enum Cond {
    Always,
    IfAbsent,
    IfPresent,
    IfSeqCurrent,
    IfSeqWrong,
}

#[derive(Debug, Clone)]
enum Op {
    Put {
        key: u8,
        value: Vec<u8>,
        flags: u32,
        cond: Cond,
    },
    Delete(u8),
    Get(u8),
    Append(u8, Vec<u8>),
    Clear,
    Sync,
    Restart,
    /// Crash and cut the last file at this fraction of its written bytes.
    Crash(u16),
    /// Full compaction (contents unchanged).
    Compact,
    /// A streaming write in chunks of `chunk` bytes; abandoned (dropped
    /// half way) when the flag says so.
    Stream {
        key: u8,
        value: Vec<u8>,
        chunk: usize,
        abandon: bool,
    },
    /// Take a snapshot (kept with the model state at that moment).
    Snapshot,
    /// Check the oldest live snapshot by get and by iteration, and drop it
    /// if the flag says so.
    CheckSnapshot(bool),
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..KEYS;
    let value = prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..40),
        1 => proptest::collection::vec(any::<u8>(), 200..1500),
    ];
    let cond = prop_oneof![
        4 => Just(Cond::Always),
        1 => Just(Cond::IfAbsent),
        1 => Just(Cond::IfPresent),
        1 => Just(Cond::IfSeqCurrent),
        1 => Just(Cond::IfSeqWrong),
    ];
    prop_oneof![
        10 => (key.clone(), value, any::<u32>(), cond).prop_map(|(key, value, flags, cond)| Op::Put { key, value, flags, cond }),
        3 => key.clone().prop_map(Op::Delete),
        3 => key.clone().prop_map(Op::Get),
        2 => (key, proptest::collection::vec(any::<u8>(), 0..10)).prop_map(|(k, v)| Op::Append(k, v)),
        1 => Just(Op::Clear),
        1 => Just(Op::Sync),
        2 => Just(Op::Restart),
        2 => (0u16..=1000).prop_map(Op::Crash),
        2 => Just(Op::Compact),
        2 => (0..KEYS, prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..40),
                proptest::collection::vec(any::<u8>(), 300..3000),
            ], 1usize..700, any::<bool>())
            .prop_map(|(key, value, chunk, abandon)| Op::Stream { key, value, chunk, abandon }),
        1 => Just(Op::Snapshot),
        2 => any::<bool>().prop_map(Op::CheckSnapshot),
    ]
}

type State = BTreeMap<u8, (Vec<u8>, u32, u64)>;

fn key(k: u8) -> Vec<u8> {
    format!("key-{k}").into_bytes()
}

fn options() -> Options {
    Options {
        durability: Durability::None,
        max_file_size: 4096,
        background_compaction: false,
        compaction_rate: 0,
        // Longer streamed values get files of their own.
        stream_buffer_limit: 256,
        ..Options::default()
    }
}

/// A snapshot's contents by iteration; fails on a key yielded twice.
fn iterate(s: &engine::Snapshot) -> Result<State, TestCaseError> {
    let mut st = State::new();
    for entry in s.iter() {
        let entry = entry.expect("entry");
        let name = String::from_utf8(entry.key.to_vec()).expect("utf8");
        let k: u8 = name
            .strip_prefix("key-")
            .and_then(|n| n.parse().ok())
            .expect("a model key");
        let i = entry.item;
        prop_assert!(
            st.insert(k, (i.value.to_vec(), i.flags, i.seq)).is_none(),
            "key {} yielded twice",
            k
        );
    }
    Ok(st)
}

fn snapshot(e: &Engine) -> State {
    let mut s = State::new();
    for k in 0..KEYS {
        if let Some(item) = e.get(&key(k)).expect("get") {
            s.insert(k, (item.value.to_vec(), item.flags, item.seq));
        }
    }
    s
}

/// The active HSTable (compaction outputs can have higher ids).
fn active_file(dir: &Path, e: &Engine) -> PathBuf {
    dir.join(format!("{:08}.hst", e.stats().active_file_id))
}

/// Where the durable bytes end: the active file and its used bytes.
type DurablePoint = (Option<PathBuf>, u64);

fn durable_point(dir: &Path, e: &Engine) -> DurablePoint {
    (Some(active_file(dir, e)), e.stats().active_file_bytes)
}

/// Cuts the newest HSTable at `frac` (per mille) of its bytes written after
/// the durable point (up to its last non-zero byte): a torn tail can only
/// affect what was not synced.
fn cut_last_file(last: PathBuf, durable: &DurablePoint, frac: u16) {
    if !last.exists() {
        return;
    }
    let lo = if durable.0.as_ref() == Some(&last) {
        durable.1 as usize
    } else {
        0
    };
    let bytes = std::fs::read(&last).expect("read");
    let written = bytes
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |p| p + 1)
        .max(lo);
    let cut = lo + (written - lo) * usize::from(frac) / 1000;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .expect("open");
    f.set_len(cut as u64).expect("truncate");
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut engine = Some(Engine::open(dir.path(), options()).expect("open"));
    let mut durable = durable_point(dir.path(), engine.as_ref().expect("engine"));
    // history[0]: state at the last durable point; then one entry per
    // acknowledged mutation.
    let mut history: Vec<State> = vec![State::new()];
    let mut snapshots: Vec<(engine::Snapshot, State)> = Vec::new();
    for op in ops {
        let e = engine.as_ref().expect("open engine");
        let mut model = history.last().cloned().expect("history");
        let mut changed = false;
        match op {
            Op::Put {
                key: k,
                value,
                flags,
                cond,
            } => {
                let current = model.get(&k).cloned();
                let c = match cond {
                    Cond::Always => Condition::Always,
                    Cond::IfAbsent => Condition::IfAbsent,
                    Cond::IfPresent => Condition::IfPresent,
                    Cond::IfSeqCurrent => Condition::IfSeq(current.as_ref().map_or(1, |c| c.2)),
                    Cond::IfSeqWrong => Condition::IfSeq(current.as_ref().map_or(1, |c| c.2 + 1)),
                };
                let out = e
                    .put(&key(k), &value, Meta { flags, expiry: 0 }, c)
                    .expect("put")
                    .result;
                let expected_store = match (&cond, &current) {
                    (Cond::Always, _) => true,
                    (Cond::IfAbsent, cur) => cur.is_none(),
                    (Cond::IfPresent | Cond::IfSeqCurrent, cur) => cur.is_some(),
                    (Cond::IfSeqWrong, _) => false,
                };
                match out {
                    PutOutcome::Stored { seq } => {
                        prop_assert!(expected_store, "{cond:?} stored over {current:?}");
                        model.insert(k, (value, flags, seq));
                        changed = true;
                    }
                    PutOutcome::NotStored => {
                        prop_assert!(
                            !expected_store && matches!(cond, Cond::IfAbsent | Cond::IfPresent)
                        );
                    }
                    PutOutcome::Exists => prop_assert!(current.is_some() && !expected_store),
                    PutOutcome::NotFound => prop_assert!(current.is_none()),
                }
            }
            Op::Delete(k) => {
                let found = e.delete(&key(k)).expect("delete").result;
                prop_assert_eq!(found, model.remove(&k).is_some());
                changed = found;
            }
            Op::Get(k) => {
                let got = e
                    .get(&key(k))
                    .expect("get")
                    .map(|i| (i.value.to_vec(), i.flags, i.seq));
                prop_assert_eq!(got.as_ref(), model.get(&k));
            }
            Op::Append(k, suffix) => {
                let w = e
                    .update(&key(k), |cur| match cur {
                        None => (Update::Keep, false),
                        Some(item) => {
                            let mut v = item.value.to_vec();
                            v.extend_from_slice(&suffix);
                            let meta = Meta {
                                flags: item.flags,
                                expiry: 0,
                            };
                            (Update::Put { value: v, meta }, true)
                        }
                    })
                    .expect("update");
                prop_assert_eq!(w.result, model.contains_key(&k));
                if w.result {
                    let entry = model.get_mut(&k).expect("present");
                    entry.0.extend_from_slice(&suffix);
                    entry.2 = w.ticket.seq();
                    changed = true;
                }
            }
            Op::Clear => {
                e.clear().expect("clear");
                model.clear();
                changed = true;
            }
            Op::Sync => {
                e.sync().expect("sync");
                durable = durable_point(dir.path(), e);
                history = vec![model.clone()];
            }
            Op::Compact => {
                let r = e.compact().expect("compact");
                prop_assert_eq!(&snapshot(e), &model, "after compaction");
                if r.files_in > 0 {
                    // A compaction that dropped records synced the active
                    // file first (the replacing records must be durable).
                    durable = durable_point(dir.path(), e);
                    history = vec![model.clone()];
                }
            }
            Op::Stream {
                key: k,
                value,
                chunk,
                abandon,
            } => {
                let mut w = e
                    .put_stream(
                        &key(k),
                        value.len(),
                        Meta {
                            flags: 77,
                            expiry: 0,
                        },
                    )
                    .expect("begin stream");
                let chunks: Vec<&[u8]> = value.chunks(chunk).collect();
                let n = if abandon {
                    chunks.len() / 2
                } else {
                    chunks.len()
                };
                for c in &chunks[..n] {
                    w.write(c).expect("stream chunk");
                }
                if abandon {
                    drop(w);
                } else {
                    let seq = match w.commit(Condition::Always).expect("commit").result {
                        PutOutcome::Stored { seq } => seq,
                        other => return Err(TestCaseError::fail(format!("{other:?}"))),
                    };
                    let own_file = value.len() > 256;
                    model.insert(k, (value, 77, seq));
                    changed = true;
                    if own_file {
                        // Committing a value in a file of its own syncs
                        // everything before it: a durable point.
                        durable = durable_point(dir.path(), e);
                        history = vec![model.clone()];
                        changed = false;
                    }
                }
            }
            Op::Snapshot => snapshots.push((e.snapshot(), model.clone())),
            Op::CheckSnapshot(drop_it) => {
                if let Some((snap, state)) = snapshots.first() {
                    for k in 0..KEYS {
                        let got = snap
                            .get(&key(k))
                            .expect("snapshot get")
                            .map(|i| (i.value.to_vec(), i.flags, i.seq));
                        prop_assert_eq!(got.as_ref(), state.get(&k), "snapshot get {}", k);
                    }
                    prop_assert_eq!(&iterate(snap)?, state, "snapshot iteration");
                    if drop_it {
                        snapshots.remove(0);
                    }
                }
            }
            Op::Restart => {
                snapshots.clear();
                engine.take().expect("engine").close().expect("close");
                let e = Engine::open(dir.path(), options()).expect("reopen");
                prop_assert_eq!(&snapshot(&e), &model, "after restart");
                prop_assert_eq!(e.stats().keys as usize, model.len());
                durable = durable_point(dir.path(), &e);
                engine = Some(e);
                history = vec![model.clone()];
            }
            Op::Crash(frac) => {
                snapshots.clear();
                let active = active_file(dir.path(), e);
                engine.take().expect("engine").crash_for_tests();
                cut_last_file(active, &durable, frac);
                let e = Engine::open(dir.path(), options()).expect("reopen after crash");
                let got = snapshot(&e);
                let matched = history.iter().rposition(|s| *s == got);
                prop_assert!(
                    matched.is_some(),
                    "recovered state {got:?} is no prefix of the acknowledged history {history:?}"
                );
                prop_assert_eq!(e.stats().keys as usize, got.len());
                model = got;
                durable = durable_point(dir.path(), &e);
                engine = Some(e);
                history = vec![model.clone()];
            }
        }
        if changed {
            history.push(model);
        }
    }
    let e = engine.take().expect("engine");
    prop_assert_eq!(&snapshot(&e), history.last().expect("history"));
    for (snap, state) in &snapshots {
        prop_assert_eq!(&iterate(snap)?, state, "snapshot iteration at the end");
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]
    #[test]
    fn engine_matches_model(ops in proptest::collection::vec(op(), 1..80)) {
        run(ops)?;
    }
}
