//! The store: every key's log and committed offset, in a lock-sharded map.
//!
//! It does no I/O and knows nothing about JSON: a message is opaque text, which the
//! protocol layer fills with the raw JSON text of `msg` so it goes back out byte for byte.
//!
//! The map is a `DashMap`: a fixed array of shards, each a cache-padded `RwLock` around a hash
//! table. Finding a key's log takes that shard's lock in *read* mode, which many threads hold at
//! once; only the first sight of a key takes it in write mode, to insert. The append itself
//! happens inside the key's [`Log`] and takes no lock.

use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use dashmap::mapref::one::Ref;

use crate::log::{Log, LogFull};

/// A message as stored: opaque text (in practice the raw JSON text of the `msg` field).
///
/// A `CompactString` keeps up to 24 bytes inline, so a typical message (Maelstrom sends small
/// integers) costs no allocation of its own.
pub type Msg = compact_str::CompactString;

/// Largest offset the protocol accepts: Maelstrom's clients hold offsets in JVM longs.
pub const MAX_OFFSET: u64 = i64::MAX as u64;

/// One key: its log and the highest offset committed for it.
#[derive(Debug, Default)]
struct Topic {
    log: Log<Msg>,
    /// Highest committed offset plus one; 0 means nothing committed yet.
    committed: AtomicU64,
}

/// Every key's log and committed offset.
///
/// Keys are hashed with foldhash, a fast hash for short keys (the default SipHash showed in the
/// flamegraph), still seeded per process.
#[derive(Debug, Default)]
pub struct Logs {
    topics: DashMap<Box<str>, Box<Topic>, foldhash::fast::RandomState>,
}

impl Logs {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `msg` to `key`'s log, creating the log on first use, and returns its offset.
    ///
    /// **Locking behaviour:** takes `key`'s shard lock in read mode (write mode, briefly, when
    /// the key is new) and holds it while appending; the append itself takes no lock.
    /// Never call while holding a reference into the map.
    pub fn append(&self, key: &str, msg: Msg) -> Result<u64, LogFull> {
        self.topic(key).log.append(msg)
    }

    /// Calls `f(offset, msg)` for `key`'s messages from offset `from`, ascending, contiguous, at
    /// most `max`; returns how many. An unknown key has none.
    ///
    /// **Locking behaviour:** takes `key`'s shard lock in read mode while reading, so `f` must
    /// not call back into the store.
    pub fn poll(&self, key: &str, from: u64, max: usize, f: impl FnMut(u64, &Msg)) -> usize {
        match self.topics.get(key) {
            Some(topic) => topic.log.read_from(from, max, f),
            None => 0,
        }
    }

    /// Records that `key` is committed up to `offset`. A commit never moves the offset back.
    ///
    /// **Locking behaviour:** as [`Logs::append`].
    pub fn commit(&self, key: &str, offset: u64) {
        let value = offset.min(MAX_OFFSET) + 1;
        // Relaxed: the committed offset is a value in its own right; nothing else is read on the
        // strength of it, and `fetch_max` keeps it monotonic under any interleaving.
        self.topic(key)
            .committed
            .fetch_max(value, Ordering::Relaxed);
    }

    /// The highest offset committed for `key`, if any.
    ///
    /// **Locking behaviour:** takes `key`'s shard lock in read mode.
    pub fn committed(&self, key: &str) -> Option<u64> {
        let topic = self.topics.get(key)?;
        // Relaxed: see `commit`.
        topic.committed.load(Ordering::Relaxed).checked_sub(1)
    }

    /// `key`'s topic, created on first use, behind its shard's read lock.
    ///
    /// **Locking behaviour:** a read lock when the key exists (the common case, shared with
    /// every other reader of the shard); otherwise the write lock, briefly, to insert it.
    fn topic(&self, key: &str) -> Ref<'_, Box<str>, Box<Topic>> {
        if let Some(topic) = self.topics.get(key) {
            return topic;
        }
        // Another thread may insert the key between the two lookups; `entry` settles it, and
        // downgrading keeps the shard open to readers while the caller uses the topic.
        self.topics.entry(key.into()).or_default().downgrade()
    }

    /// How many offsets `key`'s log has handed out, counting appends still in flight (0 for an
    /// unknown key; never more than the log's capacity).
    ///
    /// **Locking behaviour:** takes `key`'s shard lock in read mode.
    pub fn reserved_offsets(&self, key: &str) -> u64 {
        self.topics.get(key).map_or(0, |topic| topic.log.reserved())
    }

    /// How many keys the store knows.
    ///
    /// **Locking behaviour:** takes every shard's lock in read mode, one after another, so the
    /// count may miss keys inserted meanwhile.
    pub fn key_count(&self) -> usize {
        self.topics.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(s: &str) -> Msg {
        s.into()
    }

    #[test]
    fn keys_have_independent_dense_offsets() {
        let logs = Logs::new();
        assert_eq!(logs.append("a", msg("1")), Ok(0));
        assert_eq!(logs.append("b", msg("1")), Ok(0));
        assert_eq!(logs.append("a", msg("2")), Ok(1));
        let mut got = Vec::new();
        logs.poll("a", 0, 10, |o, m| got.push((o, m.clone())));
        assert_eq!(got, vec![(0, msg("1")), (1, msg("2"))]);
        assert_eq!(logs.poll("missing", 0, 10, |_, _| ()), 0);
        assert_eq!(logs.reserved_offsets("a"), 2);
        assert_eq!(logs.key_count(), 2);
    }

    #[test]
    fn commits_only_move_forward() {
        let logs = Logs::new();
        assert_eq!(logs.committed("k"), None);
        logs.commit("k", 5);
        logs.commit("k", 3);
        assert_eq!(logs.committed("k"), Some(5));
        logs.commit("k", 0);
        logs.commit("j", 0);
        assert_eq!(logs.committed("j"), Some(0));
        logs.commit("k", u64::MAX);
        assert_eq!(logs.committed("k"), Some(MAX_OFFSET));
    }
}
