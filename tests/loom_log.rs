//! Loom model test of the append/publish protocol: `src/log.rs` itself, compiled against loom's
//! model-checked atomics, with every interleaving (up to a preemption bound) explored.
//!
//! What is checked, in every explored execution:
//! - the watermark never covers an offset whose value is not visible to the thread reading it;
//! - a reader running beside the appenders sees a gap-free prefix from 0, each value at the
//!   offset its appender was given;
//! - once the appenders are done, a reader sees every value, even when the appenders raced so
//!   that neither moved the watermark past the other's slot.

// The log's API is broader than what the model exercises.
#![allow(dead_code, unreachable_pub)]

/// The names `log.rs` imports, mapped onto loom.
mod sync {
    use loom::sync::atomic::{AtomicBool, Ordering};

    pub mod atomic {
        pub use loom::sync::atomic::{AtomicU64, Ordering};
    }

    /// A model of `std::sync::OnceLock`'s guarantees: `set` publishes the value with a Release
    /// store of a loom-visible flag, and `get` sees it only after an Acquire load of that flag.
    /// The value itself sits in a real `OnceLock`, which loom's one-thread-at-a-time scheduler
    /// runs to completion in a single step.
    #[derive(Debug)]
    pub struct OnceLock<T> {
        ready: AtomicBool,
        cell: std::sync::OnceLock<T>,
    }

    impl<T> OnceLock<T> {
        pub fn new() -> Self {
            Self {
                ready: AtomicBool::new(false),
                cell: std::sync::OnceLock::new(),
            }
        }

        pub fn get(&self) -> Option<&T> {
            if self.ready.load(Ordering::Acquire) {
                self.cell.get()
            } else {
                None
            }
        }

        pub fn set(&self, value: T) -> Result<(), T> {
            self.cell.set(value)?;
            self.ready.store(true, Ordering::Release);
            Ok(())
        }

        pub fn get_or_init(&self, f: impl FnOnce() -> T) -> &T {
            let value = self.cell.get_or_init(f);
            self.ready.store(true, Ordering::Release);
            value
        }
    }
}

#[path = "../src/log.rs"]
mod log;

use loom::sync::Arc;
use loom::thread;

use log::{Class, FIRST_LEN, Log};

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    // Bounded preemptions keep the run short; most concurrency bugs need very few.
    builder.preemption_bound = Some(3);
    builder.check(f);
}

/// Checks, from the calling thread, that the watermark covers only visible values at and after
/// `from` (those before it were stored before the threads started).
fn assert_watermark_sound(log: &Log<u64>, from: u64) {
    let watermark = log.watermark();
    for offset in from..watermark {
        assert!(
            log.is_stored(offset),
            "watermark {watermark} covers unstored offset {offset}"
        );
    }
}

/// Two appenders and a reader on a log that already holds `prefill` values.
fn two_appenders_and_a_reader(prefill: u64) {
    model(move || {
        let log = Arc::new(Log::new());
        for i in 0..prefill {
            log.append(1000 + i).unwrap();
        }
        let appenders: Vec<_> = [1u64, 2]
            .into_iter()
            .map(|value| {
                let log = Arc::clone(&log);
                thread::spawn(move || (log.append(value).unwrap(), value))
            })
            .collect();
        let reader = {
            let log = Arc::clone(&log);
            thread::spawn(move || {
                assert_watermark_sound(&log, prefill);
                let mut seen = Vec::new();
                log.read_from(prefill, usize::MAX, |offset, value| {
                    seen.push((offset, *value))
                });
                assert_watermark_sound(&log, prefill);
                seen
            })
        };
        let mut expected: Vec<(u64, u64)> = (0..prefill).map(|i| (i, 1000 + i)).collect();
        expected.extend(appenders.into_iter().map(|h| h.join().unwrap()));
        expected.sort_unstable();
        let offsets: Vec<u64> = expected.iter().map(|(o, _)| *o).collect();
        assert_eq!(
            offsets,
            (0..prefill + 2).collect::<Vec<_>>(),
            "offsets unique and dense"
        );

        let seen = reader.join().unwrap();
        let new = &expected[prefill as usize..];
        assert_eq!(
            seen[..],
            new[..seen.len()],
            "the reader saw a prefix, values in place"
        );

        let mut after = Vec::new();
        log.read_from(0, usize::MAX, |offset, value| after.push((offset, *value)));
        assert_eq!(
            after, expected,
            "after the appenders finish, everything is visible"
        );
        assert_watermark_sound(&log, prefill);
    });
}

#[test]
fn loom_two_appenders_and_a_reader_on_an_empty_log() {
    two_appenders_and_a_reader(0);
}

#[test]
fn loom_two_appenders_racing_into_a_new_segment() {
    // Offsets FIRST_LEN - 1 and FIRST_LEN straddle segments 0 and 1, so the appenders may race to
    // create the segment directory and segment 1.
    two_appenders_and_a_reader(FIRST_LEN - 1);
}

/// Several nodes: a local append races the replication's `raise` (a peer's offset seen), with a
/// reader beside them. Node 0 of 2; the peer's offsets 1 and 3 are stored and promised first, so
/// only our own slots decide what is visible.
#[test]
fn loom_an_append_racing_a_raise() {
    model(|| {
        let class = Class { n: 2, i: 0 };
        let log = Arc::new(Log::new());
        log.insert(1, 101).unwrap();
        log.insert(3, 103).unwrap();
        log.fill_holes(5, 7, 2);
        let appender = {
            let log = Arc::clone(&log);
            thread::spawn(move || log.append_in(class, 7).unwrap())
        };
        let raiser = {
            let log = Arc::clone(&log);
            // Offset 3 seen: our next offset must be 4 or more, so rounds below 2 are skipped.
            thread::spawn(move || log.skip_to(class, class.round_above(3)))
        };
        let reader = {
            let log = Arc::clone(&log);
            thread::spawn(move || {
                assert_watermark_sound(&log, 0);
                let mut seen = Vec::new();
                log.read_from(0, usize::MAX, |offset, value| seen.push((offset, *value)));
                seen
            })
        };
        let offset = appender.join().unwrap();
        let skipped = raiser.join().unwrap();
        assert!(
            !skipped.contains(&(offset / 2)),
            "round {} both appended to and skipped ({skipped:?})",
            offset / 2
        );
        // The append got round 0 (then the raise skipped round 1) or round 2 (after the raise
        // skipped rounds 0 and 1): either way a fresh offset of our class, past 3 if it came
        // after the raise.
        assert!(offset == 0 || offset == 4, "offset {offset}");
        let expected: Vec<(u64, u64)> = [(offset, 7), (1, 101), (3, 103)]
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let seen = reader.join().unwrap();
        assert_eq!(seen[..], expected[..seen.len()], "a prefix, holes left out");
        let mut after = Vec::new();
        log.read_from(0, usize::MAX, |offset, value| after.push((offset, *value)));
        assert_eq!(after, expected, "every message, each once");
        // Our promise: past every round handed out or skipped (round 2 is skipped by nobody
        // when the append took round 0).
        let promise = if offset == 0 { 4 } else { 6 };
        assert_eq!(log.first_unset(0, 2), promise);
        assert_watermark_sound(&log, 0);
    });
}
