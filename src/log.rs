//! One key's append-only log: offsets reserved from an atomic counter, stored without a lock,
//! and published through a watermark so that a reader never sees a gap.
//!
//! # The protocol
//!
//! An append does three things:
//!
//! 1. **Reserve.** `reserved.fetch_add(1)` hands the caller a unique offset `o`.
//! 2. **Store.** The message goes into slot `o`, a write-once cell.
//!    Slots live in segments of doubling size (16, 32, 64, …), created on first touch, so a
//!    slot never moves once written and no append ever copies another's message.
//! 3. **Publish.** The caller advances `published` over every slot that is stored, starting from
//!    the current watermark, and stops at the first empty one.
//!
//! Reservations finish out of order: offset 7 may be stored before offset 6.
//! The watermark is the answer to that. A reader returns only offsets below it, and the
//! watermark only ever passes slots that are stored, so a reader sees a contiguous prefix:
//! never a gap over an offset that exists, never a half-written message.
//!
//! The watermark is a *cache* of "how long is the stored prefix", not the truth; the slots are.
//! Two appenders can race so that each stops at the other's slot before it is visible, and the
//! watermark lags.
//! Every reader therefore runs the same advance loop before it reads (see [`Log::read_from`]),
//! so a lagging watermark costs one short scan and never hides a stored message for long.
//! No one waits for anyone on this path: there is no lock and no spin. The one wait in a log
//! is at a segment's creation: appenders racing into a segment that does not exist yet wait
//! for the one allocating it (the directory's `OnceLock`), once per segment.
//!
//! # Several nodes: offset classes, holes
//!
//! On a cluster of `n` nodes, node `i` hands out only offsets `r·n + i` ([`Class`]): the counter
//! then counts *rounds* `r`, and the log holds every node's messages at their own offsets.
//! A slot can also hold a **hole**: an offset that is known to stay empty forever. Holes come
//! from two places, both outside this file's concern: [`Log::raise`] skips this node's rounds
//! when a peer's offsets have gone past them (each skipped round becomes a hole), and
//! [`Log::fill_holes`] marks a peer's offsets that the peer has promised never to use.
//! The watermark walks over holes like over messages, and reads skip them, so "every slot below
//! the watermark is set" still means "a reader has seen every message that will ever exist
//! there". With one node (`n = 1`) there are no holes and nothing changes.
//!
//! # Memory
//!
//! A log costs two counters, the first segment (16 slots, enough for a whole Maelstrom key) and
//! one lazily created directory for the larger segments.
//! Segment `k` holds `16 << k` slots, so 32 segments cover far more offsets than memory holds.

//! Unit tests live in `log_tests.rs`, not here: `tests/loom_log.rs` compiles this file a second
//! time against loom's primitives, and tests inside it would be compiled (and fail) there too.

use super::sync::OnceLock;
use super::sync::atomic::{AtomicU64, Ordering};

/// Slots in segment 0. A power of two, so that locating a slot is a few bit operations.
pub(crate) const FIRST_LEN: u64 = 16;
/// `log2(FIRST_LEN)`.
const FIRST_SHIFT: u32 = FIRST_LEN.trailing_zeros();
/// Segments in a log, including the first.
pub(crate) const SEGMENTS: usize = 32;
/// Offsets a log can hold: `FIRST_LEN * (2^SEGMENTS - 1)`.
pub const CAPACITY: u64 = FIRST_LEN * ((1 << SEGMENTS) - 1);

/// A slot: unset, a message (`Some`), or a hole (`None`): an offset that will never hold one.
type Slot<T> = OnceLock<Option<T>>;
type Segment<T> = Box<[Slot<T>]>;

/// Which offsets this node hands out: `round · n + i`, for node `i` of a cluster of `n`.
///
/// With one node that is every offset, dense from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Class {
    /// Nodes in the cluster, at least 1.
    pub n: u64,
    /// This node's index, below `n`.
    pub i: u64,
}

impl Class {
    /// A cluster of one: every offset.
    pub const SOLE: Self = Self { n: 1, i: 0 };

    /// The offset of round `r`, or `None` past the log's capacity.
    pub fn offset(self, round: u64) -> Option<u64> {
        round
            .checked_mul(self.n)
            .and_then(|o| o.checked_add(self.i))
            .filter(|&o| o < CAPACITY)
    }

    /// The first round whose offset is above `seen`.
    pub fn round_above(self, seen: u64) -> u64 {
        // r·n + i > seen  ⇔  r > (seen − i) / n  ⇔  r ≥ (seen + n − i) / n (integer division).
        (seen + self.n - self.i) / self.n
    }

    /// Whether `offset` is one of this class's.
    pub fn owns(self, offset: u64) -> bool {
        offset % self.n == self.i
    }
}

/// The slot at an offset already holds something else: a different message, or a hole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occupied;

/// The log is full: its offsets ran past [`CAPACITY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogFull;

impl std::fmt::Display for LogFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the log is full: it holds {CAPACITY} offsets")
    }
}

impl std::error::Error for LogFull {}

/// An append-only log of `T`: dense offsets from 0 on one node; on several, each node's own
/// class of offsets, with holes where a node skipped.
#[derive(Debug)]
pub struct Log<T> {
    /// The next round to hand out (with one node, the next offset).
    pub(crate) reserved: AtomicU64,
    /// Every offset below this one is stored. It may lag behind the truth; never ahead of it.
    published: AtomicU64,
    /// Segment 0, allocated with the log.
    head: Segment<T>,
    /// Segments 1.., created on first touch; the directory itself too.
    tail: OnceLock<Box<[OnceLock<Segment<T>>]>>,
}

impl<T> Default for Log<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Log<T> {
    /// An empty log.
    pub fn new() -> Self {
        Self {
            reserved: AtomicU64::new(0),
            published: AtomicU64::new(0),
            head: new_segment(FIRST_LEN),
            tail: OnceLock::new(),
        }
    }

    /// Appends `value` and returns its offset (one node: dense offsets from 0).
    ///
    /// When this returns, the value is stored and every reader that starts afterwards returns it
    /// once all lower offsets are stored too.
    ///
    /// **Locking behaviour:** takes no lock. The first append into a new segment allocates it;
    /// appenders racing for the same new segment wait for the one that allocates.
    pub fn append(&self, value: T) -> Result<u64, LogFull> {
        self.append_in(Class::SOLE, value)
    }

    /// Appends `value` at the next offset of `class` and returns that offset.
    ///
    /// **Locking behaviour:** as [`Log::append`].
    pub fn append_in(&self, class: Class, value: T) -> Result<u64, LogFull> {
        // Relaxed: the counter only hands out distinct rounds. Uniqueness comes from the
        // atomicity of the read-modify-write (shared with `raise`'s fetch_max), and nothing is
        // published through the counter: the slot's own write-once cell carries the message.
        let round = self.reserved.fetch_add(1, Ordering::Relaxed);
        let Some(offset) = class.offset(round) else {
            return Err(LogFull);
        };
        let (seg, idx) = locate(offset);
        let stored = self.segment_or_create(seg)[idx].set(Some(value));
        // A slot of our class is set only by the holder of its round, and rounds are handed out
        // once (by this fetch_add, or as holes by `raise`'s fetch_max).
        debug_assert!(stored.is_ok(), "offset {offset} stored twice");
        self.advance();
        Ok(offset)
    }

    /// Makes sure that `class`'s next offset is above `seen` (an offset a peer used), and marks
    /// every round skipped that way as a hole. Returns whether any round was skipped.
    ///
    /// **Locking behaviour:** as [`Log::append`].
    pub fn raise(&self, class: Class, seen: u64) -> bool {
        self.raise_to(class, class.round_above(seen.min(CAPACITY)))
    }

    /// Makes sure that `class`'s next round is at least `target`, and marks every round skipped
    /// that way as a hole. Returns whether any round was skipped.
    ///
    /// **Locking behaviour:** as [`Log::append`].
    pub fn raise_to(&self, class: Class, target: u64) -> bool {
        !self.skip_to(class, target).is_empty()
    }

    /// As [`Log::raise_to`], returning the rounds skipped (each now a hole, and handed to no
    /// append).
    pub(crate) fn skip_to(&self, class: Class, target: u64) -> std::ops::Range<u64> {
        let target = target.min(CAPACITY);
        // Relaxed: as in `append_in`. The fetch_max makes the rounds `previous..target` ours
        // alone (no fetch_add can return them any more, and a concurrent fetch_max that also
        // passed them returns a `previous` at or above ours for the part it covers), so each
        // skipped round becomes a hole exactly once; the hole itself is published by the
        // slot's own Release.
        let previous = self.reserved.fetch_max(target, Ordering::Relaxed);
        if previous >= target {
            return target..target;
        }
        for round in previous..target {
            let Some(offset) = class.offset(round) else {
                break;
            };
            let (seg, idx) = locate(offset);
            let marked = self.segment_or_create(seg)[idx].set(None);
            debug_assert!(marked.is_ok(), "skipped offset {offset} was already set");
        }
        self.advance();
        previous..target
    }

    /// Stores `value` at `offset`, which a peer handed out. Storing the same value again is
    /// fine (peers resend); a different value, or a hole there, is [`Occupied`].
    ///
    /// **Locking behaviour:** as [`Log::append`].
    pub fn insert(&self, offset: u64, value: T) -> Result<(), Occupied>
    where
        T: PartialEq,
    {
        if offset >= CAPACITY {
            return Err(Occupied);
        }
        let (seg, idx) = locate(offset);
        match self.segment_or_create(seg)[idx].set(Some(value)) {
            Ok(()) => Ok(()),
            Err(value) => match self.slot(offset).and_then(OnceLock::get) {
                Some(existing) if *existing == value => Ok(()),
                _ => Err(Occupied),
            },
        }
    }

    /// Marks as holes the unset offsets in `from..to` that are congruent to `from` modulo
    /// `step`: a peer has promised never to hand them out, and every message it sent below `to`
    /// is already stored.
    ///
    /// **Locking behaviour:** as [`Log::append`].
    pub fn fill_holes(&self, from: u64, to: u64, step: u64) {
        let mut offset = from;
        while offset < to.min(CAPACITY) {
            let (seg, idx) = locate(offset);
            // Already set means the peer's message is there: nothing to mark.
            let _ = self.segment_or_create(seg)[idx].set(None);
            offset += step;
        }
        self.advance();
    }

    /// The first offset at or after `from`, stepping by `step`, whose slot is not set yet. With
    /// `from` in this node's class, that is the lowest offset this node may still hand out, and
    /// every message of ours below it is stored.
    ///
    /// **Locking behaviour:** takes no lock.
    pub fn first_unset(&self, from: u64, step: u64) -> u64 {
        let mut offset = from;
        // `OnceLock::get` is an Acquire load: a set slot's message is visible to us.
        while self.slot(offset).and_then(OnceLock::get).is_some() {
            offset += step;
        }
        offset
    }

    /// Calls `f(offset, value)` for the messages (not the holes) at offsets `from..to` that are
    /// congruent to `from` modulo `step`, ascending; unset slots are skipped too. Stops at the
    /// first call that returns false, and returns that call's offset.
    ///
    /// **Locking behaviour:** takes no lock.
    pub fn visit_every(
        &self,
        from: u64,
        to: u64,
        step: u64,
        mut f: impl FnMut(u64, &T) -> bool,
    ) -> Option<u64> {
        let mut offset = from;
        while offset < to {
            if let Some(Some(value)) = self.slot(offset).and_then(OnceLock::get)
                && !f(offset, value)
            {
                return Some(offset);
            }
            offset += step;
        }
        None
    }

    /// Calls `f(offset, value)` for the stored values at offsets `from..`, ascending and without
    /// gaps, at most `max` of them, and returns how many it visited. Holes are passed over.
    ///
    /// It stops at the first offset that is not set yet: an append in flight is not yet
    /// acknowledged (or, on several nodes, a peer's offset is not known yet), so leaving it out is
    /// correct, and going past it would be a gap.
    /// Costs O(returned + holes) plus the set slots that no one has published yet.
    ///
    /// **Locking behaviour:** takes no lock.
    pub fn read_from(&self, from: u64, max: usize, mut f: impl FnMut(u64, &T)) -> usize {
        let end = self.advance();
        let mut visited = 0;
        let mut offset = from;
        while offset < end && visited < max {
            // Below the watermark every slot is set and visible (see `advance`).
            match self.slot(offset).and_then(OnceLock::get) {
                Some(Some(value)) => {
                    f(offset, value);
                    visited += 1;
                }
                // A hole: no message will ever be there.
                Some(None) => {}
                None => {
                    debug_assert!(false, "offset {offset} below the watermark is empty");
                    break;
                }
            }
            offset += 1;
        }
        visited
    }

    /// How many rounds have been handed out or skipped, stored or not (with one node, offsets).
    pub fn reserved(&self) -> u64 {
        // Relaxed: a statistic; no data is read on the strength of it.
        self.reserved.load(Ordering::Relaxed).min(CAPACITY)
    }

    /// The watermark as it stands, without moving it: every offset below it is stored.
    #[cfg(test)]
    pub(crate) fn watermark(&self) -> u64 {
        // Acquire: as in `advance`, so the caller may read the slots below it.
        self.published.load(Ordering::Acquire)
    }

    /// Whether the value at `offset` is stored and visible to this thread.
    #[cfg(test)]
    pub(crate) fn is_stored(&self, offset: u64) -> bool {
        self.slot(offset).and_then(OnceLock::get).is_some()
    }

    /// Moves the watermark over every stored slot at and after it, and returns the new value.
    ///
    /// Every offset below the returned value is stored, and its value is visible to this thread.
    fn advance(&self) -> u64 {
        // Acquire: pairs with the AcqRel `fetch_max` below, in whichever thread last moved the
        // watermark. That thread saw every slot below it stored, so after this load we see
        // those values too (happens-before is transitive through the two Release/Acquire pairs).
        let start = self.published.load(Ordering::Acquire);
        let mut end = start;
        // `OnceLock::get` is an Acquire load of the slot's state, pairing with the Release in
        // `set`: when it returns Some, the value is visible.
        while self.slot(end).and_then(OnceLock::get).is_some() {
            end += 1;
        }
        if end == start {
            return start;
        }
        // AcqRel. Release: publishes the stored slots we just walked over to whoever loads the
        // watermark next. Acquire: if another thread already moved it further, we take its
        // value, and need to see the slots it walked over.
        let previous = self.published.fetch_max(end, Ordering::AcqRel);
        previous.max(end)
    }

    /// The slot for `offset`, if its segment exists.
    fn slot(&self, offset: u64) -> Option<&Slot<T>> {
        if offset >= CAPACITY {
            return None;
        }
        let (seg, idx) = locate(offset);
        let segment = if seg == 0 {
            &self.head
        } else {
            self.tail.get()?[seg - 1].get()?
        };
        segment.get(idx)
    }

    /// Segment `seg`, created if it does not exist yet.
    pub(crate) fn segment_or_create(&self, seg: usize) -> &[Slot<T>] {
        if seg == 0 {
            return &self.head;
        }
        let directory = self
            .tail
            .get_or_init(|| (1..SEGMENTS).map(|_| OnceLock::new()).collect());
        directory[seg - 1].get_or_init(|| new_segment(FIRST_LEN << seg))
    }
}

/// Maps an offset to (segment, index in segment).
///
/// Segment `k` starts at offset `FIRST_LEN * (2^k - 1)`, so `offset + FIRST_LEN` has its highest
/// bit at position `k + FIRST_SHIFT`.
pub(crate) fn locate(offset: u64) -> (usize, usize) {
    let n = offset + FIRST_LEN;
    let seg = 63 - n.leading_zeros() - FIRST_SHIFT;
    let idx = n - (FIRST_LEN << seg);
    (seg as usize, idx as usize)
}

fn new_segment<T>(len: u64) -> Segment<T> {
    (0..len).map(|_| OnceLock::new()).collect()
}
