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
