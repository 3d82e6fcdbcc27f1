//! One Jepsen worker and its current Maelstrom client, as a state machine with Maelstrom's
//! quirks (see `docs/protocol.md` §3 and §5.1): one request outstanding at a time;
//! a client that ends an op indeterminately is replaced (new process, new `c<N>`, msg ids
//! from 1 again, offsets forgotten); a poll advances the read offsets before its commit is
//! even sent; an `assign` never learns committed offsets (Maelstrom's client looks for
//! them in the wrong place), so newly assigned keys start at 0; `assign` is idempotent, so
//! it fails rather than going indeterminate.
//!
//! The runner owns the I/O, the history and the timing; this module only decides.

use std::sync::Arc;

use crate::generator::Stagger;
use crate::history::{KeyId, KeyRead, Keys, MsgId, OpType, OpValue, PollResult, reads};
use crate::protocol::{self, Reply};

/// The request a client waits on.
#[derive(Debug)]
pub enum Pending {
    Idle,
    Send {
        key: KeyId,
        msg: MsgId,
        msg_id: u64,
    },
    Poll {
        msg_id: u64,
    },
    /// The poll succeeded; its `commit_offsets` is outstanding.
    Commit {
        msg_id: u64,
        msgs: PollResult,
    },
    Assign {
        keys: Keys,
        msg_id: u64,
    },
}

impl Pending {
    pub fn msg_id(&self) -> Option<u64> {
        match self {
            Pending::Idle => None,
            Pending::Send { msg_id, .. }
            | Pending::Poll { msg_id }
            | Pending::Commit { msg_id, .. }
            | Pending::Assign { msg_id, .. } => Some(*msg_id),
        }
    }
}

/// Where a worker is in the final phase.
#[derive(Debug)]
pub enum FinalState {
    NotStarted,
    /// Polling until every key reached its target offset. The targets are the same for
    /// every worker, so they are shared; each worker keeps which keys it has reached (a
    /// bit a key) and how many are left.
    Polling {
        targets: Arc<Targets>,
        reached: Vec<u64>,
        left: usize,
        stagger: Stagger,
    },
    Done,
}

impl FinalState {
    /// Polling towards `targets`, none reached yet; done at once if there are none.
    pub fn polling(targets: Arc<Targets>, stagger: Stagger) -> FinalState {
        if targets.is_empty() {
            return FinalState::Done;
        }
        FinalState::Polling {
            left: targets.len(),
            targets,
            reached: Vec::new(),
            stagger,
        }
    }
}

/// The final phase's target of each key: the highest offset any operation learned of, which
/// every worker must poll up to. Indexed by key id rather than a map: every key of every
/// final-phase poll is looked up here, and key ids are dense from 0.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Targets {
    by_key: Vec<Option<i64>>,
    len: usize,
}

impl Targets {
    pub fn get(&self, k: KeyId) -> Option<i64> {
        self.by_key.get(k.0 as usize).copied().flatten()
    }

    /// How many keys have a target.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl FromIterator<(KeyId, i64)> for Targets {
    /// A key given twice keeps its last target.
    fn from_iter<I: IntoIterator<Item = (KeyId, i64)>>(it: I) -> Targets {
        let mut t = Targets::default();
        for (k, target) in it {
            let i = k.0 as usize;
            if t.by_key.len() <= i {
                t.by_key.resize(i + 1, None);
            }
            t.len += usize::from(t.by_key[i].is_none());
            t.by_key[i] = Some(target);
        }
        t
    }
}

/// A client's assigned keys, in key order, and the next offset to poll each from.
///
/// The keys are shared: in the final phase every client is assigned every key (175,000
/// after a minute at 100k ops/s), all the same list, so each of the 64 clients keeps its
/// offsets alone, 4 bytes a key (the private `Next`), where a map per client cost about
/// 40. And only once it has read something: the keys past the end of `next` are at offset
/// 0, so a final-phase client holds no offsets until its first poll is answered (the 64
/// first polls wait for the node one after another, and a client that caught up forgets
/// them, see [`Worker::final_progress`]).
#[derive(Debug, Default, Clone)]
pub struct Offsets {
    /// Sorted, no repeats.
    keys: Keys,
    /// `next[i]` is the next offset to poll `keys[i]` from; 0 for `i` past its end.
    next: Next,
}

/// The next offsets of a client's keys, by position: as `u32` while every one fits (a
/// node's offsets count its messages, far below 4 billion in any run), as `i64` from the
/// first that does not. In the final phase each of the 64 clients holds one for every
/// key, so this halves what the phase's clients hold, 45 MB after a minute at 100k ops/s.
#[derive(Debug, Clone)]
enum Next {
    Narrow(Vec<u32>),
    Wide(Vec<i64>),
}

impl Default for Next {
    fn default() -> Next {
        Next::Narrow(Vec::new())
    }
}

impl Next {
    fn len(&self) -> usize {
        match self {
            Next::Narrow(v) => v.len(),
            Next::Wide(v) => v.len(),
        }
    }

    #[cfg(test)]
    fn capacity(&self) -> usize {
        match self {
            Next::Narrow(v) => v.capacity(),
            Next::Wide(v) => v.capacity(),
        }
    }

    fn get(&self, i: usize) -> Option<i64> {
        match self {
            Next::Narrow(v) => v.get(i).map(|o| i64::from(*o)),
            Next::Wide(v) => v.get(i).copied(),
        }
    }

    /// Sets position `i`, which must be below `len`, widening every offset first if `o`
    /// does not fit in `u32`.
    fn set(&mut self, i: usize, o: i64) {
        if let Next::Narrow(v) = self {
            match u32::try_from(o) {
                Ok(o) => {
                    v[i] = o;
                    return;
                }
                Err(_) => *self = Next::Wide(v.iter().map(|o| i64::from(*o)).collect()),
            }
        }
        if let Next::Wide(v) = self {
            v[i] = o;
        }
    }

    /// A 0 at position `i`, at most `len`, moving those after it along.
    fn insert_zero(&mut self, i: usize) {
        match self {
            Next::Narrow(v) => v.insert(i, 0),
            Next::Wide(v) => v.insert(i, 0),
        }
    }

    /// Zeros up to `len`, if it is longer.
    fn extend_to(&mut self, len: usize) {
        match self {
            Next::Narrow(v) if v.len() < len => v.resize(len, 0),
            Next::Wide(v) if v.len() < len => v.resize(len, 0),
            _ => {}
        }
    }
}

impl FromIterator<i64> for Next {
    fn from_iter<I: IntoIterator<Item = i64>>(it: I) -> Next {
        let it = it.into_iter();
        let mut next = Next::Narrow(Vec::with_capacity(it.size_hint().0));
        for (i, o) in it.enumerate() {
            next.extend_to(i + 1);
            next.set(i, o);
        }
        next
    }
}

impl Offsets {
    /// Every key of `keys` (sorted, no repeats) from offset 0, sharing the list.
    pub fn from_sorted(keys: Keys) -> Offsets {
        debug_assert!(keys.windows(2).all(|w| w[0] < w[1]));
        Offsets {
            next: Next::default(),
            keys,
        }
    }

    pub fn get(&self, k: KeyId) -> Option<i64> {
        let i = self.position(k).ok()?;
        Some(self.next.get(i).unwrap_or(0))
    }

    /// Where `k` is in `keys`, or where it would go. Key ids are dense from 0, so in the
    /// final phase, where every key is assigned, key `k` sits at index `k` and is found
    /// without a search (every key of every final-phase poll is looked up here).
    fn position(&self, k: KeyId) -> Result<usize, usize> {
        let i = k.0 as usize;
        if self.keys.get(i) == Some(&k) {
            return Ok(i);
        }
        self.keys.binary_search(&k)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn clear(&mut self) {
        *self = Offsets::default();
    }

    /// Keys and next offsets, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (KeyId, i64)> + '_ {
        let next = (0..).map(|i| self.next.get(i).unwrap_or(0));
        self.keys.iter().copied().zip(next)
    }

    /// Moves the next offset of `k` (0 if `k` was not assigned) up to `to`, if it is
    /// below. Adding a key copies the list: only the main phase's small assignments ever
    /// grow.
    fn raise(&mut self, k: KeyId, to: i64) {
        let i = match self.position(k) {
            Ok(i) => i,
            Err(i) => {
                let mut keys = self.keys.to_vec();
                keys.insert(i, k);
                self.keys = keys.into();
                if i < self.next.len() {
                    self.next.insert_zero(i);
                }
                i
            }
        };
        self.next.extend_to(i + 1);
        let now = self.next.get(i).unwrap_or(0);
        if to > now {
            self.next.set(i, to);
        }
    }
}

/// One Jepsen worker thread and its current client.
#[derive(Debug)]
pub struct Worker {
    pub node: usize,
    pub process: u64,
    pub client: u64,
    pub client_name: String,
    pub next_msg_id: u64,
    /// Assigned keys and the next offset to poll from.
    pub offsets: Offsets,
    pub pending: Pending,
    /// Bumped at every request and completion, to recognise stale timeouts.
    pub seq: u64,
    /// When the outstanding request times out.
    pub deadline: u64,
    pub fin: FinalState,
    /// The worker's process ended indeterminately (`:info`): as in Maelstrom, its client
    /// stays on the network, ignoring late replies, until the worker invokes its next
    /// operation, which opens a new client (and process) first.
    pub retired: bool,
}

impl Worker {
    /// Worker `thread`, talking to `node` through client `c<client>`.
    pub fn new(thread: usize, node: usize, client: u64) -> Worker {
        Worker {
            node,
            process: thread as u64,
            client,
            client_name: format!("c{client}"),
            next_msg_id: 0,
            offsets: Offsets::default(),
            pending: Pending::Idle,
            seq: 0,
            deadline: 0,
            fin: FinalState::NotStarted,
            retired: false,
        }
    }

    /// The next request's msg_id: 1, 2, 3… per client.
    pub fn next_request(&mut self) -> u64 {
        self.next_msg_id += 1;
        self.seq += 1;
        self.next_msg_id
    }

    /// A new client for this worker, as Jepsen opens after a crash or an indeterminate op:
    /// the process number moves on by the concurrency, and the new client knows nothing.
    pub fn replace(&mut self, client: u64, concurrency: u64) {
        self.client = client;
        self.client_name = format!("c{client}");
        self.process += concurrency;
        self.next_msg_id = 0;
        self.offsets.clear();
        self.retired = false;
    }

    /// Ends the pending op without a usable reply: the completion type and value. A
    /// definite error fails it; a timeout, an indefinite error or a malformed reply leaves
    /// it indeterminate, except `assign`, which is idempotent and so always fails.
    pub fn give_up(&mut self, definite: bool) -> Option<(OpType, OpValue)> {
        let (value, is_assign) = match std::mem::replace(&mut self.pending, Pending::Idle) {
            Pending::Idle => return None,
            Pending::Send { key, msg, .. } => (
                OpValue::Send {
                    key,
                    offset: None,
                    msg,
                },
                false,
            ),
            Pending::Poll { .. } | Pending::Commit { .. } => (OpValue::Poll(None), false),
            Pending::Assign { keys, .. } => (
                OpValue::Assign {
                    keys,
                    seek_to_beginning: false,
                },
                true,
            ),
        };
        let kind = if definite || is_assign {
            OpType::Fail
        } else {
            OpType::Info
        };
        Some((kind, value))
    }

    /// A poll's result moves the read offsets on at once, before the commit is sent and
    /// whether or not it succeeds (the commit trap, `docs/protocol.md` §5.1). Returns
    /// whether there is anything to commit ([`commit_offsets`] of the same reads: a key
    /// that returned anything).
    pub fn advance(&mut self, polled: &[KeyRead]) -> bool {
        let mut any = false;
        for (key, pairs) in reads(polled) {
            let max = pairs.max_offset();
            any |= max.is_some();
            self.offsets
                .raise(*key, max.unwrap_or(-1).saturating_add(1));
        }
        any
    }

    /// An `assign` answered: the client reads from the assigned keys only, keeping its
    /// position in keys it had, starting new ones at 0 whatever was committed.
    pub fn assigned(&mut self, keys: &[KeyId]) {
        let mut sorted = keys.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let next = sorted
            .iter()
            .map(|k| self.offsets.get(*k).unwrap_or(0))
            .collect();
        self.offsets = Offsets {
            keys: sorted.into(),
            next,
        };
    }

    /// Final phase: a poll reached these offsets; the worker is done once every key it
    /// must see has been read up to its target.
    pub fn final_progress(&mut self, polled: &[KeyRead]) {
        let FinalState::Polling {
            targets,
            reached,
            left,
            ..
        } = &mut self.fin
        else {
            return;
        };
        for (k, pairs) in reads(polled) {
            let max = pairs.max_offset().unwrap_or(-1);
            if targets.get(*k).is_some_and(|t| t <= max) {
                let (word, bit) = (k.0 as usize / 64, 1u64 << (k.0 % 64));
                if reached.len() <= word {
                    reached.resize(word + 1, 0);
                }
                if reached[word] & bit == 0 {
                    reached[word] |= bit;
                    *left -= 1;
                }
            }
        }
        if *left == 0 {
            self.fin = FinalState::Done;
            // It never polls again: its offsets (8 bytes a key) are of no more use.
            self.offsets.clear();
        }
    }
}

/// The offsets a poll's `commit_offsets` names: the highest read per key that returned
/// anything, in the poll's order. Derived from the poll's result, which the client keeps
/// until the commit is answered, so a commit that waits for its node's stdin costs no copy.
pub fn commit_offsets(polled: &[KeyRead]) -> impl Iterator<Item = (KeyId, i64)> + '_ {
    reads(polled).filter_map(|(key, pairs)| Some((*key, pairs.max_offset()?.max(0))))
}

/// A reply that does not answer the pending request as it should: the error recorded,
/// and whether it is definite (the op then fails rather than going indeterminate).
pub fn reply_error(reply: Reply) -> (String, bool) {
    match reply {
        Reply::Error { code, body } => (format!("error {body}"), protocol::is_definite(code)),
        Reply::Malformed { reason, body } => {
            (format!("malformed-rpc-response: {reason}: {body}"), false)
        }
        other => (
            format!("malformed-rpc-response: unexpected reply {other:?}"),
            false,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(k: KeyId, p: &[(i64, u32)]) -> KeyRead {
        KeyRead::new(k, p.iter().map(|(o, m)| (*o, MsgId(*m))).collect())
    }

    #[test]
    fn a_poll_advances_offsets_before_its_commit_and_commits_the_highest_read() {
        let mut w = Worker::new(0, 0, 1);
        let (a, b, c) = (KeyId(0), KeyId(1), KeyId(2));
        w.assigned(&[a, b, c]);
        let polled = [read(a, &[(0, 1), (3, 2)]), read(b, &[])];
        assert!(w.advance(&polled));
        assert_eq!(commit_offsets(&polled).collect::<Vec<_>>(), [(a, 3)]);
        assert!(
            !w.advance(&[read(b, &[])]),
            "nothing read, nothing to commit"
        );
        assert_eq!(
            w.offsets.get(a),
            Some(4),
            "next poll starts after the highest offset read"
        );
        assert_eq!(w.offsets.get(b), Some(0), "an empty key stays put");
        // A lower offset read later never moves the position back.
        w.advance(&[read(a, &[(1, 1)])]);
        assert_eq!(w.offsets.get(a), Some(4));
        // A key read without being assigned joins the others, in key order.
        let d = KeyId(3);
        w.advance(&[read(d, &[(2, 1)])]);
        assert_eq!(
            w.offsets.iter().collect::<Vec<_>>(),
            [(a, 4), (b, 0), (c, 0), (d, 3)]
        );
    }

    #[test]
    fn offsets_find_each_key_whether_or_not_it_sits_at_its_own_index() {
        let k = KeyId;
        // Dense from 0 (the final phase), shifted, sparse, and past the end.
        for keys in [
            vec![0, 1, 2, 3],
            vec![1, 2, 3],
            vec![2, 5, 9],
            vec![0, 1, 5],
        ] {
            let mut o = Offsets::from_sorted(Arc::new(keys.iter().map(|i| k(*i)).collect()));
            for (n, i) in keys.iter().enumerate() {
                o.raise(k(*i), 10 + n as i64);
            }
            for (n, i) in keys.iter().enumerate() {
                assert_eq!(o.get(k(*i)), Some(10 + n as i64), "{keys:?}: key {i}");
            }
            for i in [4, 6, 7, 100] {
                if !keys.contains(&i) {
                    assert_eq!(o.get(k(i)), None, "{keys:?}: key {i}");
                }
            }
            assert_eq!(o.iter().count(), keys.len(), "{keys:?}: nothing added");
        }
    }

    #[test]
    fn assign_keeps_known_positions_and_starts_new_keys_at_zero() {
        let mut w = Worker::new(0, 0, 1);
        let (a, b) = (KeyId(0), KeyId(1));
        w.assigned(&[a]);
        w.advance(&[read(a, &[(5, 1)])]);
        w.assigned(&[b, a, b]);
        assert_eq!(w.offsets.iter().collect::<Vec<_>>(), [(a, 6), (b, 0)]);
        w.assigned(&[b]);
        assert_eq!(w.offsets.get(a), None, "unassigned keys are dropped");
    }

    /// A final-phase client is assigned every key from 0: it holds no offsets until a poll
    /// reads something, then as far as the keys it read, and none once it caught up.
    #[test]
    fn final_offsets_are_held_only_between_the_first_read_and_catching_up() {
        let keys: Keys = Arc::new((0..1000).map(KeyId).collect());
        let mut w = Worker::new(0, 0, 1);
        w.offsets = Offsets::from_sorted(keys.clone());
        assert_eq!(w.offsets.next.capacity(), 0, "nothing held before a read");
        assert_eq!(w.offsets.get(KeyId(999)), Some(0));
        assert_eq!(w.offsets.iter().count(), 1000);
        assert!(w.offsets.iter().all(|(_, o)| o == 0));
        let targets: Arc<Targets> = Arc::new(keys.iter().map(|k| (*k, 0)).collect());
        w.fin = FinalState::polling(targets, Stagger::new(1.0));
        let first = [read(KeyId(3), &[(0, 1)])];
        w.advance(&first);
        w.final_progress(&first);
        assert_eq!(w.offsets.next.len(), 4, "held up to the key read");
        assert_eq!(w.offsets.get(KeyId(3)), Some(1));
        assert_eq!(w.offsets.get(KeyId(4)), Some(0));
        let all: Vec<KeyRead> = keys.iter().map(|k| read(*k, &[(0, 1)])).collect();
        w.advance(&all);
        w.final_progress(&all);
        assert!(matches!(w.fin, FinalState::Done));
        assert!(w.offsets.is_empty(), "caught up: never polls again");
    }

    /// The next offsets take 4 bytes a key while they fit in `u32`, and stay exact past
    /// it, through a poll's reads and a new assignment alike.
    #[test]
    fn next_offsets_take_four_bytes_a_key_until_one_does_not_fit() {
        let mut w = Worker::new(0, 0, 1);
        w.offsets = Offsets::from_sorted(Arc::new((0..100).map(KeyId).collect()));
        let big = i64::from(u32::MAX);
        let reads: Vec<KeyRead> = (0..100u32)
            .map(|k| {
                let top = match k {
                    7 => big - 1,
                    _ => i64::from(k) * 1000,
                };
                KeyRead::new(KeyId(k), vec![(top, MsgId(1))].into())
            })
            .collect();
        w.advance(&reads);
        assert!(matches!(w.offsets.next, Next::Narrow(_)), "u32::MAX fits");
        w.advance(&[read(KeyId(3), &[(0, 1)])]);
        w.advance(&[KeyRead::new(KeyId(8), vec![(big, MsgId(1))].into())]);
        assert!(matches!(w.offsets.next, Next::Wide(_)));
        let want: Vec<(KeyId, i64)> = (0..100u32)
            .map(|k| {
                let next = match k {
                    7 => big,
                    8 => big + 1,
                    _ => i64::from(k) * 1000 + 1,
                };
                (KeyId(k), next)
            })
            .collect();
        assert_eq!(w.offsets.iter().collect::<Vec<_>>(), want);
        w.assigned(&[KeyId(8), KeyId(200), KeyId(3)]);
        assert_eq!(
            w.offsets.iter().collect::<Vec<_>>(),
            [(KeyId(3), 3001), (KeyId(8), big + 1), (KeyId(200), 0)]
        );
    }

    #[test]
    fn a_replaced_client_starts_over_with_a_new_process() {
        let mut w = Worker::new(3, 0, 4);
        w.assigned(&[KeyId(0)]);
        assert_eq!((w.next_request(), w.next_request()), (1, 2));
        w.replace(9, 8);
        assert_eq!((w.process, w.client_name.as_str()), (11, "c9"));
        assert!(w.offsets.is_empty());
        assert_eq!(w.next_request(), 1);
    }

    #[test]
    fn giving_up_fails_definite_errors_and_assigns_and_leaves_the_rest_indeterminate() {
        let mut w = Worker::new(0, 0, 1);
        assert_eq!(w.give_up(false), None);
        let send = || Pending::Send {
            key: KeyId(0),
            msg: MsgId(1),
            msg_id: 1,
        };
        w.pending = send();
        assert!(matches!(w.give_up(false), Some((OpType::Info, _))));
        assert!(matches!(w.pending, Pending::Idle));
        w.pending = send();
        assert!(matches!(w.give_up(true), Some((OpType::Fail, _))));
        w.pending = Pending::Commit {
            msg_id: 2,
            msgs: Box::new([]),
        };
        // A poll whose commit timed out is an indeterminate poll with no data.
        assert_eq!(w.give_up(false), Some((OpType::Info, OpValue::Poll(None))));
        w.pending = Pending::Assign {
            keys: Arc::new(vec![KeyId(0)]),
            msg_id: 3,
        };
        assert!(matches!(w.give_up(false), Some((OpType::Fail, _))));
    }

    #[test]
    fn final_polling_ends_when_every_target_is_reached() {
        let mut w = Worker::new(0, 0, 1);
        // Key 64 sits in the bitset's second word.
        let (a, b) = (KeyId(0), KeyId(64));
        // A key given twice keeps its last target and counts once.
        let targets: Arc<Targets> = Arc::new([(a, 5), (b, 0), (a, 2)].into_iter().collect());
        assert_eq!((targets.len(), targets.get(a)), (2, Some(2)));
        // A key with no target is never waited for, nor one beyond the last with one.
        w.fin = FinalState::polling(Arc::clone(&targets), Stagger::new(1.0));
        w.final_progress(&[read(KeyId(1), &[(0, 1)]), read(KeyId(99), &[(0, 1)])]);
        assert!(matches!(w.fin, FinalState::Polling { left: 2, .. }));
        w.fin = FinalState::polling(targets, Stagger::new(1.0));
        w.final_progress(&[read(a, &[(0, 1), (1, 2)]), read(b, &[(0, 3)])]);
        assert!(matches!(w.fin, FinalState::Polling { left: 1, .. }));
        // Reaching a key again does not count twice.
        w.final_progress(&[read(b, &[(0, 3)])]);
        assert!(matches!(w.fin, FinalState::Polling { left: 1, .. }));
        w.final_progress(&[read(a, &[(2, 4)])]);
        assert!(matches!(w.fin, FinalState::Done));
        let none = FinalState::polling(Arc::default(), Stagger::new(1.0));
        assert!(matches!(none, FinalState::Done));
    }

    #[test]
    fn reply_errors_know_definite_codes() {
        let e = |code| Reply::Error {
            code,
            body: "{}".into(),
        };
        assert!(
            reply_error(e(Some(11))).1,
            "temporarily-unavailable is definite"
        );
        assert!(!reply_error(e(Some(13))).1, "crash is indefinite");
        assert!(!reply_error(e(None)).1);
        let (text, definite) = reply_error(Reply::InitOk);
        assert!(text.starts_with("malformed-rpc-response") && !definite);
    }
}
