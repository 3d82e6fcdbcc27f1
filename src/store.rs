//! The store: every key's log and committed offset, in a lock-sharded map.
//!
//! It does no I/O and knows nothing about JSON: a message is opaque text, which the
//! protocol layer fills with the raw JSON text of `msg` so it goes back out byte for byte.
//!
//! The map is a `DashMap`: a fixed array of shards, each a cache-padded `RwLock` around a hash
//! table. Finding a key's log takes that shard's lock in *read* mode, which many threads hold at
//! once; only the first sight of a key takes it in write mode, to insert. The append itself
//! happens inside the key's [`Log`] and takes no lock.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use compact_str::CompactString;
use crossbeam_channel::{Receiver, Sender, unbounded};
use dashmap::DashMap;
use dashmap::mapref::one::Ref;

use crate::log::{Class, Log, LogFull};

/// A message as stored: opaque text (in practice the raw JSON text of the `msg` field).
///
/// A `CompactString` keeps up to 24 bytes inline, so a typical message (Maelstrom sends small
/// integers) costs no allocation of its own.
pub type Msg = compact_str::CompactString;

/// Largest offset the protocol accepts: Maelstrom's clients hold offsets in JVM longs.
pub const MAX_OFFSET: u64 = i64::MAX as u64;

/// One key: its log and the highest offset committed for it.
#[derive(Debug, Default)]
pub(crate) struct KeyLog {
    pub(crate) log: Log<Msg>,
    /// Highest committed offset plus one; 0 means nothing committed yet.
    pub(crate) committed: AtomicU64,
    /// On several nodes: set when a local send or commit changed this key, and the key is
    /// queued in `Logs::changed`; the replication tick clears it when it takes the key.
    pub(crate) dirty: AtomicBool,
}

/// Every key's log and committed offset.
///
/// Keys are hashed with foldhash, a fast hash for short keys (the default SipHash showed in the
/// flamegraph), still seeded per process.
#[derive(Debug)]
pub struct Logs {
    keys: DashMap<Box<str>, Box<KeyLog>, foldhash::fast::RandomState>,
    /// Which offsets this node hands out; unset means a node alone (every offset).
    class: OnceLock<Class>,
    /// On several nodes, the keys local sends and commits changed since the replication last
    /// looked (each queued once until then, see `KeyLog::dirty`). An unbounded crossbeam channel:
    /// a lock-free queue, so the append path still takes no lock of its own.
    changed: (Sender<CompactString>, Receiver<CompactString>),
}

impl Default for Logs {
    fn default() -> Self {
        Self {
            keys: DashMap::default(),
            class: OnceLock::new(),
            changed: unbounded(),
        }
    }
}

impl Logs {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets which offsets this node hands out (once, at `init`; later calls change nothing).
    pub(crate) fn set_class(&self, class: Class) {
        let _ = self.class.set(class);
    }

    /// The class of offsets this node hands out.
    pub fn class(&self) -> Class {
        self.class.get().copied().unwrap_or(Class::SOLE)
    }

    /// Queues `key` for the replication, unless it is queued already. Called after the change
    /// is made, so the replication, which clears the flag before it looks, sees the change.
    fn touch(&self, key: &str, key_log: &KeyLog) {
        // Release: the replication's Acquire swap that clears the flag then sees the message
        // stored (or the commit made) before this.
        if !key_log.dirty.swap(true, Ordering::Release) {
            // The receiver lives as long as the store, so the send cannot fail.
            let _ = self.changed.0.send(key.into());
        }
    }

    /// The keys changed by local sends and commits since the last call; each key's flag must be
    /// cleared (see [`Logs::take_changes`]) before its state is read.
    pub(crate) fn changed_keys(&self) -> impl Iterator<Item = CompactString> + '_ {
        self.changed.1.try_iter()
    }

    /// `key`'s log, if the key is known.
    ///
    /// **Locking behaviour:** holds `key`'s shard lock in read mode while the reference lives.
    pub(crate) fn get(&self, key: &str) -> Option<Ref<'_, Box<str>, Box<KeyLog>>> {
        self.keys.get(key)
    }

    /// `key`'s log, created on first use.
    ///
    /// **Locking behaviour:** as [`Logs::append`].
    pub(crate) fn get_or_create(&self, key: &str) -> Ref<'_, Box<str>, Box<KeyLog>> {
        self.key_log(key)
    }

    /// Clears `key`'s changed flag and returns the lowest offset of this node's class that it
    /// may still hand out, walking up from `promise` (an earlier answer), with the key's
    /// committed value (highest committed offset plus one, 0 for none).
    ///
    /// Every message of ours below the returned offset is stored: it is the first slot of our
    /// class not set yet, and a slot of ours is set only once its message is stored or it is
    /// skipped for good (a hole).
    pub(crate) fn take_changes(&self, key_log: &KeyLog, promise: u64) -> (u64, u64) {
        // Acquire: pairs with the Release swap in `touch`, so every send or commit that queued
        // the key before this is visible to the walk and the load below; any later one sets the
        // flag again and queues the key for the next look.
        key_log.dirty.swap(false, Ordering::Acquire);
        let promise = key_log.log.first_unset(promise, self.class().n);
        // Relaxed: ordered after the Acquire swap above; see `commit`.
        (promise, key_log.committed.load(Ordering::Relaxed))
    }

    /// Appends `msg` to `key`'s log, creating the log on first use, and returns its offset.
    ///
    /// **Locking behaviour:** takes `key`'s shard lock in read mode (write mode, briefly, when
    /// the key is new) and holds it while appending; the append itself takes no lock.
    /// Never call while holding a reference into the map.
    pub fn append(&self, key: &str, msg: Msg) -> Result<u64, LogFull> {
        let class = self.class();
        let key_log = self.key_log(key);
        let offset = key_log.log.append_in(class, msg)?;
        if class.n > 1 {
            self.touch(key, &key_log);
        }
        Ok(offset)
    }

    /// Calls `f(offset, msg)` for `key`'s messages from offset `from`, ascending, contiguous, at
    /// most `max`; returns how many. An unknown key has none.
    ///
    /// **Locking behaviour:** takes `key`'s shard lock in read mode while reading, so `f` must
    /// not call back into the store.
    pub fn poll(&self, key: &str, from: u64, max: usize, f: impl FnMut(u64, &Msg)) -> usize {
        match self.keys.get(key) {
            Some(key_log) => key_log.log.read_from(from, max, f),
            None => 0,
        }
    }

    /// Records that `key` is committed up to `offset`. A commit never moves the offset back.
    ///
    /// **Locking behaviour:** as [`Logs::append`].
    pub fn commit(&self, key: &str, offset: u64) {
        let value = offset.min(MAX_OFFSET) + 1;
        let key_log = self.key_log(key);
        // Relaxed: the committed offset is a value in its own right; nothing else is read on the
        // strength of it, and `fetch_max` keeps it monotonic under any interleaving.
        let previous = key_log.committed.fetch_max(value, Ordering::Relaxed);
        if previous < value && self.class().n > 1 {
            self.touch(key, &key_log);
        }
    }

    /// Merges a committed value (offset plus one) a peer sent: the maximum wins.
    pub(crate) fn merge_commit(key_log: &KeyLog, value: u64) {
        // Relaxed: see `commit`.
        key_log
            .committed
            .fetch_max(value.min(MAX_OFFSET + 1), Ordering::Relaxed);
    }

    /// The highest offset committed for `key`, if any.
    ///
    /// **Locking behaviour:** takes `key`'s shard lock in read mode.
    pub fn committed(&self, key: &str) -> Option<u64> {
        let key_log = self.keys.get(key)?;
        // Relaxed: see `commit`.
        key_log.committed.load(Ordering::Relaxed).checked_sub(1)
    }

    /// `key`'s log, created on first use, behind its shard's read lock.
    ///
    /// **Locking behaviour:** a read lock when the key exists (the common case, shared with
    /// every other reader of the shard); otherwise the write lock, briefly, to insert it.
    fn key_log(&self, key: &str) -> Ref<'_, Box<str>, Box<KeyLog>> {
        if let Some(key_log) = self.keys.get(key) {
            return key_log;
        }
        // Another thread may insert the key between the two lookups; `entry` settles it, and
        // downgrading keeps the shard open to readers while the caller uses the log.
        self.keys.entry(key.into()).or_default().downgrade()
    }

    /// How many offsets `key`'s log has handed out, counting appends still in flight (0 for an
    /// unknown key; never more than the log's capacity).
    ///
    /// **Locking behaviour:** takes `key`'s shard lock in read mode.
    pub fn reserved_offsets(&self, key: &str) -> u64 {
        self.keys
            .get(key)
            .map_or(0, |key_log| key_log.log.reserved())
    }

    /// How many keys the store knows.
    ///
    /// **Locking behaviour:** takes every shard's lock in read mode, one after another, so the
    /// count may miss keys inserted meanwhile.
    pub fn key_count(&self) -> usize {
        self.keys.len()
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

    #[test]
    fn the_promise_stops_at_an_append_still_in_flight() {
        // Node 0 of 2: offsets 0, 2, 4, …
        let logs = Logs::new();
        logs.set_class(Class { n: 2, i: 0 });
        logs.append("k", msg("a")).unwrap();
        let key_log = logs.get("k").unwrap();
        // A worker has reserved round 1 (offset 2) and not stored it yet; a later one has stored
        // round 2 (offset 4).
        key_log.log.reserved.fetch_add(1, Ordering::Relaxed);
        assert_eq!(key_log.log.append_in(logs.class(), msg("c")), Ok(4));
        // Promising past offset 2 would let a peer mark it a hole before its message arrives.
        assert_eq!(logs.take_changes(&key_log, 0).0, 2);
        let (seg, idx) = crate::log::locate(2);
        key_log.log.segment_or_create(seg)[idx]
            .set(Some(msg("b")))
            .unwrap();
        assert_eq!(logs.take_changes(&key_log, 2).0, 6);
    }
}
