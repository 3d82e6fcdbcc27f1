//! Unit tests of the lock-free log's internals (see the note at the top of `log.rs`).

use crate::log::{CAPACITY, FIRST_LEN, Log, SEGMENTS, locate};
use crate::sync::atomic::Ordering;

#[test]
fn locate_walks_segments_in_order() {
    let mut expected = (0usize, 0usize);
    for offset in 0..10_000u64 {
        assert_eq!(locate(offset), expected, "offset {offset}");
        expected.1 += 1;
        if expected.1 as u64 == FIRST_LEN << expected.0 {
            expected = (expected.0 + 1, 0);
        }
    }
    assert_eq!(locate(CAPACITY - 1).0, SEGMENTS - 1);
}

#[test]
fn reads_what_was_appended_across_segments() {
    let log = Log::new();
    for i in 0..1000u64 {
        assert_eq!(log.append(i * 10), Ok(i));
    }
    let mut seen = Vec::new();
    assert_eq!(
        log.read_from(0, usize::MAX, |o, v| seen.push((o, *v))),
        1000
    );
    assert_eq!(seen, (0..1000).map(|i| (i, i * 10)).collect::<Vec<_>>());
    let mut tail = Vec::new();
    log.read_from(995, 3, |o, _| tail.push(o));
    assert_eq!(tail, vec![995, 996, 997]);
    assert_eq!(log.read_from(1000, 10, |_, _| ()), 0);
    assert_eq!(log.read_from(u64::MAX, 10, |_, _| ()), 0);
}

#[test]
fn a_reserved_but_unstored_offset_hides_everything_after_it() {
    let log: Log<u64> = Log::new();
    log.append(0).unwrap();
    // Simulate an appender that reserved offset 1 and has not stored yet.
    let hole = log.reserved.fetch_add(1, Ordering::Relaxed);
    let (seg, idx) = locate(hole + 1);
    log.segment_or_create(seg)[idx].set(Some(2)).unwrap();
    let mut seen = Vec::new();
    log.read_from(0, 10, |o, _| seen.push(o));
    assert_eq!(
        seen,
        vec![0],
        "offset 2 must stay hidden behind the hole at 1"
    );
    assert_eq!(log.watermark(), 1, "the watermark stops at the hole");
    assert!(log.is_stored(2) && !log.is_stored(1));
    log.segment_or_create(locate(hole).0)[locate(hole).1]
        .set(Some(1))
        .unwrap();
    seen.clear();
    log.read_from(0, 10, |o, _| seen.push(o));
    assert_eq!(
        seen,
        vec![0, 1, 2],
        "a reader repairs the lagging watermark"
    );
}

mod classes {
    //! Several nodes: one log seen from node `i` of `n`, under any sequence of its own appends,
    //! raises (a peer's offset seen), a peer's messages and a peer's promised holes, against a
    //! model that is a plain map of set slots.

    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use crate::log::{Class, Log};

    #[derive(Debug, Clone)]
    enum Op {
        /// A local send.
        Append,
        /// A peer's offset seen: our next offset must pass it.
        Raise(u64),
        /// A peer's message: peer index (never ours) and its round.
        Insert(u64, u64),
        /// A peer's promise: every unset offset of its class below `round·n + peer` is a hole.
        Promise(u64, u64),
    }

    fn op(n: u64) -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => Just(Op::Append),
            1 => (0..40 * n).prop_map(Op::Raise),
            2 => (0..n, 0..40u64).prop_map(|(j, r)| Op::Insert(j, r)),
            1 => (0..n, 0..40u64).prop_map(|(j, r)| Op::Promise(j, r)),
        ]
    }

    fn case() -> impl Strategy<Value = (u64, u64, Vec<Op>)> {
        (1..5u64).prop_flat_map(|n| (Just(n), 0..n, prop::collection::vec(op(n), 0..80)))
    }

    proptest! {
        #[test]
        fn visible_prefix_is_every_set_slot_below_the_first_unset_one((n, i, ops) in case()) {
            let class = Class { n, i };
            let log = Log::new();
            // offset → Some(value) for a message, None for a hole.
            let mut model: BTreeMap<u64, Option<u64>> = BTreeMap::new();
            let mut round = 0;
            let mut value = 0;
            for op in ops {
                value += 1;
                match op {
                    Op::Append => {
                        let offset = log.append_in(class, value).unwrap();
                        prop_assert_eq!(offset, round * n + i, "offsets of our class, in order");
                        prop_assert!(model.insert(offset, Some(value)).is_none(), "fresh slot");
                        round += 1;
                    }
                    Op::Raise(seen) => {
                        let target = class.round_above(seen);
                        prop_assert!(target * n + i > seen);
                        let skipped = log.raise(class, seen);
                        prop_assert_eq!(skipped, target > round);
                        while round < target {
                            prop_assert!(model.insert(round * n + i, None).is_none());
                            round += 1;
                        }
                    }
                    Op::Insert(j, r) if j != i => {
                        let offset = r * n + j;
                        let expected = match model.get(&offset) {
                            None => {
                                model.insert(offset, Some(value));
                                Ok(())
                            }
                            Some(_) => Err(crate::log::Occupied),
                        };
                        prop_assert_eq!(log.insert(offset, value), expected);
                    }
                    Op::Promise(j, r) if j != i => {
                        let to = r * n + j;
                        log.fill_holes(j, to, n);
                        for offset in (j..to).step_by(n as usize) {
                            model.entry(offset).or_insert(None);
                        }
                    }
                    Op::Insert(..) | Op::Promise(..) => {}
                }
                // What a poll sees: every message below the first unset slot, holes left out.
                let mut expected = Vec::new();
                let mut offset = 0;
                while let Some(slot) = model.get(&offset) {
                    if let Some(v) = slot {
                        expected.push((offset, *v));
                    }
                    offset += 1;
                }
                let mut seen = Vec::new();
                log.read_from(0, usize::MAX, |o, v| seen.push((o, *v)));
                prop_assert_eq!(&seen, &expected);
                // Our promise: the first unset slot of our class.
                let mut promise = i;
                while model.contains_key(&promise) {
                    promise += n;
                }
                prop_assert_eq!(log.first_unset(i, n), promise);
            }
        }
    }
}
