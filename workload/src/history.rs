//! The history: every operation's invocation and completion, in order, as the checker sees it.
//!
//! Keys and message values are interned to small integers. Final-phase polls name every key
//! from offset 0, so at high rates a history holds tens of millions of `[offset, msg]`
//! pairs, kept at 4 bytes a pair when their offsets are consecutive (see [`Pairs`]).

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::sync::Arc;

use crate::polled::{KeyPairs, Polled};
use crate::protocol::RawMsg;

/// An interned key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub u32);

/// An interned message value. Compared by identity, which is JSON equality of the values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MsgId(pub u32);

/// An interned error text (an op's `error`): a run's errors are a few texts (`timeout`,
/// a node's error bodies) repeated over many ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrId(std::num::NonZeroU32);

/// Small non-negative integers are their own id; this bit marks an interned other value.
const OTHER_BIT: u32 = 1 << 31;

impl MsgId {
    /// The id of the integer value `v` if it is its own id (below 2^31, no table needed).
    pub fn small(v: u64) -> Option<MsgId> {
        u32::try_from(v).ok().filter(|v| *v < OTHER_BIT).map(MsgId)
    }
}

/// Interners for keys and values.
#[derive(Debug, Default)]
pub struct Tables {
    /// Every key's text, one after another: a key costs its bytes and an end, not an
    /// allocation of its own, and the keys a commit names are read from one place.
    key_text: String,
    /// Where each key's text ends in `key_text`, by id.
    key_ends: Vec<usize>,
    /// The ids, found by the hash of their text; the text is compared in `key_text`. A
    /// table of ids rather than a map from owned text, so a key is hashed once per lookup
    /// and a new one is not copied twice.
    key_ids: hashbrown::HashTable<KeyId>,
    others: Vec<RawMsg>,
    other_ids: HashMap<RawMsg, MsgId, FxBuild>,
    errors: Vec<Box<str>>,
    error_ids: HashMap<Box<str>, ErrId, FxBuild>,
    /// Every run of values kept so far, each once (see [`Tables::share`]).
    runs: HashSet<Arc<[MsgId]>, FxBuild>,
    /// Every key's read kept so far whose pairs are a run, by key, first offset and the
    /// address of its shared values (see [`Tables::read`]).
    reads: HashMap<(KeyId, i64, usize), KeyRead, FxBuild>,
    /// By key id: the latest of those reads of that key, looked up before `reads`.
    latest: Vec<Option<LastRead>>,
    /// Every key's read kept so far whose pairs are not a run, by its key and pairs (see
    /// [`Tables::read`]).
    explicit_reads: HashSet<KeyRead, FxBuild>,
}

/// A key's latest read that was a run: its first offset and the address of its shared
/// values beside the read, so a lookup compares two words without following the read.
#[derive(Debug)]
struct LastRead {
    first: i64,
    values: usize,
    read: KeyRead,
}

/// The Fx hash (rustc's): interning hashes every key of every poll reply, and SipHash's
/// DoS resistance buys nothing against strings from the node under test.
#[derive(Debug, Default, Clone, Copy)]
pub struct FxBuild;

/// A map hashed with [`FxBuild`]: for the generator's and the checker's maps keyed by
/// interned ids, looked up once per pair of every poll (tens of millions in a high-rate
/// run), where SipHash was most of the cost of a lookup.
pub type FxHashMap<K, V> = HashMap<K, V, FxBuild>;

/// A set hashed with [`FxBuild`] (see [`FxHashMap`]).
pub type FxHashSet<K> = HashSet<K, FxBuild>;

impl BuildHasher for FxBuild {
    type Hasher = FxHasher;
    fn build_hasher(&self) -> FxHasher {
        FxHasher(0)
    }
}

#[derive(Debug)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(K);
        }
    }

    fn write_u8(&mut self, b: u8) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    // Whole integers at once: sharing runs hashes one value per pair.
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Key `k`'s text in the arena `text` whose keys end at `ends`.
fn key_name<'t>(text: &'t str, ends: &[usize], k: KeyId) -> &'t str {
    let i = k.0 as usize;
    let start = i.checked_sub(1).map_or(0, |j| ends[j]);
    &text[start..ends[i]]
}

impl Tables {
    pub fn key(&mut self, k: &str) -> KeyId {
        let hash = FxBuild.hash_one(k);
        let Tables {
            key_text,
            key_ends,
            key_ids,
            ..
        } = self;
        let name = |id: KeyId| key_name(key_text, key_ends, id);
        match key_ids.entry(hash, |id| name(*id) == k, |id| FxBuild.hash_one(name(*id))) {
            hashbrown::hash_table::Entry::Occupied(e) => *e.get(),
            hashbrown::hash_table::Entry::Vacant(e) => {
                let id = KeyId(u32::try_from(key_ends.len()).expect("fewer than 2^32 keys"));
                key_text.push_str(k);
                key_ends.push(key_text.len());
                e.insert(id);
                id
            }
        }
    }

    /// How many keys are interned: every id is below it.
    pub fn keys(&self) -> usize {
        self.key_ends.len()
    }

    pub fn key_name(&self, k: KeyId) -> &str {
        key_name(&self.key_text, &self.key_ends, k)
    }

    pub fn error(&mut self, e: &str) -> ErrId {
        if let Some(&id) = self.error_ids.get(e) {
            return id;
        }
        let n = u32::try_from(self.errors.len() + 1).expect("fewer than 2^32 error texts");
        let id = ErrId(std::num::NonZeroU32::MIN.saturating_add(n - 1));
        self.errors.push(e.into());
        self.error_ids.insert(e.into(), id);
        id
    }

    pub fn error_text(&self, e: ErrId) -> &str {
        &self.errors[e.0.get() as usize - 1]
    }

    pub fn msg(&mut self, m: &RawMsg) -> MsgId {
        if let RawMsg::Int(i) = m
            && let Some(small) = u64::try_from(*i).ok().and_then(MsgId::small)
        {
            return small;
        }
        if let Some(&id) = self.other_ids.get(m) {
            return id;
        }
        // Below 2^31 - 2: the checker keeps the two ids above that as markers of its own.
        let n = u32::try_from(self.others.len())
            .ok()
            .filter(|n| *n < OTHER_BIT - 2)
            .expect("fewer than 2^31 - 2 distinct values");
        let id = MsgId(OTHER_BIT | n);
        self.others.push(m.clone());
        self.other_ids.insert(m.clone(), id);
        id
    }

    /// `pairs`, with a run's values shared with an equal run already kept. Maelstrom's values
    /// are 1…16 on every key, so a poll's runs are nearly all slices of that one sequence:
    /// the final phase's polls (every key from offset 0, hundreds of times over) and the
    /// main phase's share a few hundred allocations instead of one per key per poll.
    pub fn share(&mut self, pairs: Pairs) -> Pairs {
        match pairs {
            Pairs::Run { first, msgs } => {
                let msgs = match self.runs.get(&*msgs) {
                    Some(kept) => Arc::clone(kept),
                    None => {
                        self.runs.insert(Arc::clone(&msgs));
                        msgs
                    }
                };
                Pairs::Run { first, msgs }
            }
            explicit => explicit,
        }
    }

    /// [`Tables::read`] of a run given as its first offset and its values: the values are
    /// looked up as they are, and copied only when no equal run is kept yet.
    pub fn read_run(&mut self, key: KeyId, first: i64, values: &[MsgId]) -> KeyRead {
        let msgs = match self.runs.get(values) {
            Some(kept) => Arc::clone(kept),
            None => {
                let msgs: Arc<[MsgId]> = values.into();
                self.runs.insert(Arc::clone(&msgs));
                msgs
            }
        };
        self.keep_read(key, Pairs::Run { first, msgs })
    }

    /// One key's pairs as a poll keeps them: the values shared ([`Tables::share`]) and the
    /// whole entry shared with an equal one already kept. Runs are looked up by the address
    /// of their shared values, not by walking them; the address is stable and never reused
    /// while the entry is kept, because the entry itself holds those values. Other pairs
    /// (gaps, repeats, disorder) are looked up by their key and every pair: a cluster's
    /// offsets have gaps, so in a 3-node run most reads are of this kind, and the same
    /// read of a key comes back in poll after poll (every final-phase poll reads every key
    /// from offset 0), each a copy of 16 bytes a pair had it not been shared.
    ///
    /// A run is first compared with the key's latest run read, in a slot per key, and only
    /// then looked up among all: the final phase's 64 clients each read every key from
    /// offset 0 alike, and the lookup in the map of every read kept missed the cache once
    /// per key of every poll, where the slots of consecutive keys sit side by side.
    pub fn read(&mut self, key: KeyId, pairs: Pairs) -> KeyRead {
        let pairs = self.share(pairs);
        self.keep_read(key, pairs)
    }

    /// [`Tables::read`] of pairs whose values are shared already.
    fn keep_read(&mut self, key: KeyId, pairs: Pairs) -> KeyRead {
        let Pairs::Run { first, msgs } = &pairs else {
            let read = (key, pairs);
            if let Some(kept) = self.explicit_reads.get(&read) {
                return kept.clone();
            }
            let read = KeyRead::from(read);
            self.explicit_reads.insert(read.clone());
            return read;
        };
        let (first, values) = (*first, Arc::as_ptr(msgs).cast::<MsgId>() as usize);
        let i = key.0 as usize;
        if self.latest.len() <= i {
            self.latest.resize_with(i + 1, || None);
        }
        if let Some(last) = &self.latest[i]
            && last.first == first
            && last.values == values
        {
            return last.read.clone();
        }
        let read = self
            .reads
            .entry((key, first, values))
            .or_insert_with(|| KeyRead::new(key, pairs))
            .clone();
        self.latest[i] = Some(LastRead {
            first,
            values,
            read: read.clone(),
        });
        read
    }

    /// The value as JSON text.
    pub fn msg_json(&self, m: MsgId) -> String {
        let mut out = String::new();
        self.push_msg_json(&mut out, m);
        out
    }

    /// Appends the value as JSON text, without a string of its own: `history.jsonl` writes
    /// every pair of every poll, tens of millions in a high-rate run.
    pub fn push_msg_json(&self, out: &mut String, m: MsgId) {
        if m.0 & OTHER_BIT == 0 {
            push_int(out, m.0);
            return;
        }
        match &self.others[(m.0 & !OTHER_BIT) as usize] {
            RawMsg::Int(i) => push_int(out, *i),
            RawMsg::Other(s) => out.push_str(s),
        }
    }

    /// The value as a JSON value, for results.
    pub fn msg_value(&self, m: MsgId) -> serde_json::Value {
        serde_json::from_str(&self.msg_json(m)).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpType {
    Invoke,
    Ok,
    Fail,
    Info,
}

impl OpType {
    pub fn name(self) -> &'static str {
        match self {
            OpType::Invoke => "invoke",
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            OpType::Info => "info",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum F {
    Assign,
    Crash,
    Poll,
    Send,
}

impl F {
    pub const ALL: [F; 4] = [F::Assign, F::Crash, F::Poll, F::Send];

    pub fn name(self) -> &'static str {
        match self {
            F::Assign => "assign",
            F::Crash => "crash",
            F::Poll => "poll",
            F::Send => "send",
        }
    }
}

/// A shared list of keys (see [`OpValue::Assign`]).
pub type Keys = Arc<Vec<KeyId>>;

/// What one poll returned: for each key in the reply, its `[offset, msg]` pairs in order.
pub type PollResult = Box<[KeyRead]>;

/// One key's pairs in one poll reply, shared between polls that read the same pairs of the
/// same key ([`Tables::read`]): the final phase's 64 clients each read every key
/// from offset 0, often more than once, and an entry costs 8 bytes a poll instead of 40.
///
/// Equal and hashed as its key and pairs, so that a set of reads can be looked up by a
/// `(KeyId, Pairs)` not yet allocated ([`Tables::read`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyRead(Arc<(KeyId, Pairs)>);

impl std::borrow::Borrow<(KeyId, Pairs)> for KeyRead {
    fn borrow(&self) -> &(KeyId, Pairs) {
        &self.0
    }
}

impl KeyRead {
    pub fn new(key: KeyId, pairs: Pairs) -> KeyRead {
        KeyRead(Arc::new((key, pairs)))
    }
}

impl std::ops::Deref for KeyRead {
    type Target = (KeyId, Pairs);
    fn deref(&self) -> &(KeyId, Pairs) {
        &self.0
    }
}

impl From<(KeyId, Pairs)> for KeyRead {
    fn from((key, pairs): (KeyId, Pairs)) -> KeyRead {
        KeyRead::new(key, pairs)
    }
}

/// A poll result of these reads, none shared (for tests and fixtures).
pub fn poll_result(reads: Vec<(KeyId, Pairs)>) -> PollResult {
    reads.into_iter().map(KeyRead::from).collect()
}

/// A poll's reads as `(key, pairs)`, in the order the node returned them.
pub fn reads(r: &[KeyRead]) -> impl Iterator<Item = &(KeyId, Pairs)> {
    r.iter().map(|r| &**r)
}

/// One key's `[offset, msg]` pairs, in the order the node returned them.
///
/// A poll returns a contiguous run per key, and a final-phase poll returns every key from
/// offset 0, so a high-rate history holds tens of millions of pairs, nearly all in runs of
/// consecutive offsets: those keep the first offset and the values alone, 4 bytes a pair
/// instead of 16. Anything else (gaps, repeats, disorder: what the checker looks for) keeps
/// each pair as returned. Either way `iter` yields exactly the pairs the node sent.
/// A run's values may be shared with other runs of the same values ([`Tables::share`]).
///
/// Pairs that are not a run are kept as [`Pairs::Near`] whenever their offsets lie within
/// `u32` of the least, as [`Pairs::Explicit`] otherwise, so equal pairs are always kept
/// alike (reads are shared by equality, [`Tables::read`]): make them with
/// [`Pairs::explicit`] or `collect`, never by naming a variant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Pairs {
    /// Offsets `first`, `first + 1`, ... in order.
    Run {
        first: i64,
        msgs: Arc<[MsgId]>,
    },
    /// Each pair's offset as its distance from `base`, the least of them: 8 bytes a pair
    /// where [`Pairs::Explicit`] takes 16. A cluster hands out each key's offsets from
    /// counters shared with other keys, so on three nodes most reads have gaps (seven in
    /// ten of a 20 s run's, two in five of its main phase's), and the distinct ones are
    /// kept to the end.
    Near {
        base: i64,
        pairs: Box<[(u32, MsgId)]>,
    },
    Explicit(Box<[(i64, MsgId)]>),
}

impl Pairs {
    /// Pairs that are not a run (any pairs, in fact: they are kept as given, in order), as
    /// [`Pairs::Near`] when their offsets fit, else as [`Pairs::Explicit`].
    pub fn explicit(pairs: Vec<(i64, MsgId)>) -> Pairs {
        let Some(base) = pairs.iter().map(|p| p.0).min() else {
            return Pairs::Explicit(pairs.into());
        };
        let mut near = Vec::with_capacity(pairs.len());
        for &(o, m) in &pairs {
            match u32::try_from(i128::from(o) - i128::from(base)) {
                Ok(d) => near.push((d, m)),
                Err(_) => return Pairs::Explicit(pairs.into()),
            }
        }
        Pairs::Near {
            base,
            pairs: near.into(),
        }
    }

    pub fn iter(&self) -> PairsIter<'_> {
        match self {
            Pairs::Run { first, msgs } => PairsIter::Run {
                next: *first,
                msgs: msgs.iter(),
            },
            Pairs::Near { base, pairs } => PairsIter::Near {
                base: *base,
                pairs: pairs.iter(),
            },
            Pairs::Explicit(ps) => PairsIter::Explicit(ps.iter()),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Pairs::Run { msgs, .. } => msgs.len(),
            Pairs::Near { pairs, .. } => pairs.len(),
            Pairs::Explicit(ps) => ps.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The highest offset, without walking a run (whose last offset is its highest).
    pub fn max_offset(&self) -> Option<i64> {
        match self {
            Pairs::Run { .. } => self.last().map(|p| p.0),
            Pairs::Near { base, pairs } => pairs.iter().map(|p| base + i64::from(p.0)).max(),
            Pairs::Explicit(ps) => ps.iter().map(|p| p.0).max(),
        }
    }

    /// The least offset, without walking a run (whose first offset is its least) or a
    /// [`Pairs::Near`] (whose base is).
    pub fn min_offset(&self) -> Option<i64> {
        match self {
            Pairs::Run { .. } => self.first().map(|p| p.0),
            Pairs::Near { base, pairs } => (!pairs.is_empty()).then_some(*base),
            Pairs::Explicit(ps) => ps.iter().map(|p| p.0).min(),
        }
    }

    pub fn first(&self) -> Option<(i64, MsgId)> {
        self.iter().next()
    }

    pub fn last(&self) -> Option<(i64, MsgId)> {
        match self {
            Pairs::Run { first, msgs } => {
                let n = msgs.len().checked_sub(1)?;
                Some((first + n as i64, msgs[n]))
            }
            Pairs::Near { base, pairs } => pairs.last().map(|&(d, m)| (base + i64::from(d), m)),
            Pairs::Explicit(ps) => ps.last().copied(),
        }
    }
}

/// The pairs of a [`Pairs`], in order: a plain iterator rather than adapters, because the
/// checker walks every pair of the history several times.
#[derive(Debug, Clone)]
pub enum PairsIter<'a> {
    Run {
        next: i64,
        msgs: std::slice::Iter<'a, MsgId>,
    },
    Near {
        base: i64,
        pairs: std::slice::Iter<'a, (u32, MsgId)>,
    },
    Explicit(std::slice::Iter<'a, (i64, MsgId)>),
}

impl Iterator for PairsIter<'_> {
    type Item = (i64, MsgId);

    fn next(&mut self) -> Option<(i64, MsgId)> {
        match self {
            PairsIter::Run { next, msgs } => {
                let m = *msgs.next()?;
                let o = *next;
                // Wraps only past the run's last pair (`from_iter` builds no run that
                // overflows), where the value is never read.
                *next = o.wrapping_add(1);
                Some((o, m))
            }
            PairsIter::Near { base, pairs } => {
                let &(d, m) = pairs.next()?;
                // `base` is the least offset and `base + d` one of the offsets as given,
                // so it does not overflow.
                Some((*base + i64::from(d), m))
            }
            PairsIter::Explicit(ps) => ps.next().copied(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            PairsIter::Run { msgs, .. } => msgs.size_hint(),
            PairsIter::Near { pairs, .. } => pairs.size_hint(),
            PairsIter::Explicit(ps) => ps.size_hint(),
        }
    }
}

impl ExactSizeIterator for PairsIter<'_> {}

impl FromIterator<(i64, MsgId)> for Pairs {
    /// A run while the offsets go up by one; the first pair that breaks it turns what was
    /// gathered so far into explicit pairs.
    fn from_iter<I: IntoIterator<Item = (i64, MsgId)>>(pairs: I) -> Pairs {
        let mut pairs = pairs.into_iter();
        let Some((first, m)) = pairs.next() else {
            return Pairs::Run {
                first: 0,
                msgs: Arc::default(),
            };
        };
        let mut msgs = Vec::with_capacity(pairs.size_hint().0.saturating_add(1));
        msgs.push(m);
        let mut next = first.checked_add(1);
        for (o, m) in pairs.by_ref() {
            if next == Some(o) {
                msgs.push(m);
                next = o.checked_add(1);
                continue;
            }
            let mut explicit: Vec<(i64, MsgId)> = Vec::with_capacity(msgs.len() + 1);
            explicit.extend(msgs.iter().enumerate().map(|(i, m)| (first + i as i64, *m)));
            explicit.push((o, m));
            explicit.extend(pairs);
            return Pairs::explicit(explicit);
        }
        Pairs::Run {
            first,
            msgs: msgs.into(),
        }
    }
}

impl From<Vec<(i64, MsgId)>> for Pairs {
    fn from(pairs: Vec<(i64, MsgId)>) -> Pairs {
        pairs.into_iter().collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum OpValue {
    /// `[:send k v]`; `offset` is known only on an `:ok` completion.
    Send {
        key: KeyId,
        offset: Option<i64>,
        msg: MsgId,
    },
    /// `[:poll]`, and on `:ok` `[:poll {k pairs}]`. Failed and indeterminate polls carry no
    /// data, as in Maelstrom.
    Poll(Option<PollResult>),
    /// The keys are shared: the final phase's 64 assigns (each recorded twice) name every
    /// key, and all name the same ones. A thin pointer, so that an `OpValue` is 24 bytes.
    Assign {
        keys: Keys,
        seek_to_beginning: bool,
    },
    Crash,
}

impl OpValue {
    pub fn f(&self) -> F {
        match self {
            OpValue::Send { .. } => F::Send,
            OpValue::Poll(_) => F::Poll,
            OpValue::Assign { .. } => F::Assign,
            OpValue::Crash => F::Crash,
        }
    }

    /// The invocation a completion with this value answers, as the runner records it: a
    /// send without its offset, a poll without its reads, an assign or a crash as it is.
    fn invocation(&self) -> OpValue {
        match self {
            OpValue::Send { key, msg, .. } => OpValue::Send {
                key: *key,
                offset: None,
                msg: *msg,
            },
            OpValue::Poll(_) => OpValue::Poll(None),
            other => other.clone(),
        }
    }

    /// Whether `inv` is exactly [`OpValue::invocation`] of this completion's value (an
    /// assign's keys, shared by the final phase's every client, compare by address first:
    /// `Arc`'s equality does that for `Eq` contents).
    fn answers(&self, inv: &OpValue) -> bool {
        *inv == self.invocation()
    }
}

/// `Op::wait` when the wait does not fit: the invocation's time is then in
/// `History::long_waits`.
const LONG_WAIT: u32 = u32::MAX;

/// `Op::invoked_before` when the distance does not fit: it is then in
/// `History::far_invocations`.
const FAR: u16 = u16::MAX;

/// `Op::error` when the error's id does not fit: it is then in `History::many_errors`.
const MANY_ERRORS: u8 = u8::MAX;

/// One operation: its completion, with its invocation's position and time beside it. A run
/// keeps one for every operation, so its size is the runner's memory per operation: 48
/// bytes, where an invocation and a completion were two records of 48. What the
/// invocation said is what the completion implies ([`History::invocation`]); the rare one
/// that says more (a foreign history's) is kept beside the history, as is a wait beyond
/// `u32` nanoseconds (4.3 s), an invocation more than 65,534 lines before its completion
/// (a third of a second at 100k ops/s: a timeout, not a run's ordinary op) and an error
/// text past a run's first 254 (a run has a handful: `timeout`, a node's error bodies).
///
/// An op that was invoked and never completed (the run stopped, or a stored history ends
/// so, or its process invoked again first) is its invocation: `kind` is
/// [`OpType::Invoke`] and the fields are the invocation's. Those are kept apart from
/// [`History::ops`] ([`History::unfinished`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    /// Nanoseconds since the main phase began: when it completed.
    pub time: u64,
    /// The completion's position in the history, invocations and completions numbered
    /// together (`history.jsonl`'s `index`, which the checker's reports cite).
    pub index: u32,
    pub process: u32,
    /// The completion's value.
    pub value: OpValue,
    pub kind: OpType,
    /// Why a `:fail` or `:info` op ended so, e.g. `timeout` or the error body
    /// ([`History::error`] gives the text, [`History::error_id`] its id): 0 for none, else
    /// the error's id; [`MANY_ERRORS`] when the id does not fit.
    error: u8,
    /// `index` less the invocation's index; 0 when no invocation preceded the completion,
    /// [`FAR`] when it does not fit.
    invoked_before: u16,
    /// `time` less the invocation's time, in ns; [`LONG_WAIT`] when it does not fit.
    wait: u32,
}

const _: () = assert!(std::mem::size_of::<Op>() == 48);

impl Op {
    pub fn f(&self) -> F {
        self.value.f()
    }
}

/// An op's invocation, as `history.jsonl` writes it ([`History::invocation`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation<'h> {
    pub time: u64,
    pub index: u32,
    pub process: u32,
    pub value: Cow<'h, OpValue>,
    pub error: Option<ErrId>,
}

/// One line of the history, an invocation or a completion, as `history.jsonl` writes it
/// ([`History::lines`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Line<'h> {
    pub time: u64,
    pub index: u32,
    pub process: u32,
    pub kind: OpType,
    pub value: Cow<'h, OpValue>,
    pub error: Option<ErrId>,
}

impl Line<'_> {
    pub fn f(&self) -> F {
        self.value.f()
    }
}

/// One line of the history in its order ([`History::events`]): an op's invocation or its
/// completion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event<'h> {
    Invoked(&'h Op),
    Completed(&'h Op),
}

/// A nemesis operation: Jepsen records each as an `:info` invocation and an `:info`
/// completion by the `nemesis` process. They sit beside the client ops, which the
/// checker reads alone, and are merged into `history.jsonl` by time.
#[derive(Debug, Clone, PartialEq)]
pub struct NemesisOp {
    pub time: u64,
    /// `start-partition` or `stop-partition`.
    pub f: &'static str,
    pub value: serde_json::Value,
}

/// How many records a chunk of [`Ops`] holds: a power of two, so that a position splits
/// into a chunk and a place in it by a shift and a mask. 2^17 records of 48 bytes are 6 MiB,
/// whole 2 MiB pages: most of the runner's memory sits in transparent huge pages (130 of the
/// 177 MiB `check` held at its height), resident whole once touched, and chunks that were
/// not whole pages held more than one vector: 2^15 records of 56 bytes (1.75 MiB), `check`
/// of a 10 s history peaked at 181 to 185 MiB with them, 171 to 177 with one vector. Why, in
/// the allocator, was not found. Of 48-byte records, 6 MiB chunks peaked at 136 to 140 MiB,
/// 1.5 MiB chunks at 142 to 143 (one vector of 56-byte records: 141 to 144). A 10-minute
/// run at 100k ops/s fills about 460 chunks; the last one's unwritten part is never touched.
const CHUNK_SHIFT: u32 = 17;
const CHUNK: usize = 1 << CHUNK_SHIFT;

// A chunk stays whole 2 MiB pages if a record changes size.
const _: () = assert!((CHUNK * std::mem::size_of::<Op>()).is_multiple_of(2 << 20));

/// The completed operations in the order of their completions, kept in chunks of 2^17
/// records rather than one vector. A vector that doubles as it grows is allocated up to
/// twice what it holds (a 60 s run's 5.9M records, then of 56 bytes, sat in 8.4M slots:
/// 470 MB for 330 written), though the part never written is never resident; and each time
/// it grows it copies every record into a block twice the size, the old block and the new
/// resident at once (at 4.2M records, 235 MB and 470 MB). A chunk is allocated at its full
/// size and never grows, except the first, which doubles up to it so that a short history
/// stays small; every chunk but the last is full, so position `i` is record `i % 2^17` of
/// chunk `i / 2^17`.
#[derive(Debug, Default)]
pub struct Ops {
    chunks: Vec<Vec<Op>>,
    len: usize,
}

impl Ops {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, i: usize) -> Option<&Op> {
        self.chunks
            .get(i >> CHUNK_SHIFT)
            .and_then(|c| c.get(i & (CHUNK - 1)))
    }

    pub fn last(&self) -> Option<&Op> {
        self.chunks.last().and_then(|c| c.last())
    }

    /// The records in order.
    pub fn iter(&self) -> OpsIter<'_> {
        self.range(0, self.len)
    }

    /// The records at positions `start..end`, in order (both at most [`Ops::len`]).
    pub fn range(&self, start: usize, end: usize) -> OpsIter<'_> {
        assert!(
            start <= end && end <= self.len,
            "{start}..{end} of {}",
            self.len
        );
        let split = |i: usize| (i >> CHUNK_SHIFT, i & (CHUNK - 1));
        let ((sc, so), (ec, eo)) = (split(start), split(end));
        let empty: &[Op] = &[];
        let (front, middle, back) = if sc == ec {
            // Within one chunk (or at the very end, where `sc` may be past the last one).
            let front = self.chunks.get(sc).map_or(empty, |c| &c[so..eo]);
            (front, &self.chunks[..0], empty)
        } else {
            let back = self.chunks.get(ec).map_or(empty, |c| &c[..eo]);
            (&self.chunks[sc][so..], &self.chunks[sc + 1..ec], back)
        };
        OpsIter {
            front: front.iter(),
            middle: middle.iter(),
            back: back.iter(),
            len: end - start,
        }
    }

    fn push(&mut self, op: Op) {
        match self.chunks.last_mut() {
            Some(c) if c.len() < CHUNK => c.push(op),
            _ => {
                // The first chunk starts small and doubles (to exactly `CHUNK`, a power of
                // two); the others are allocated whole.
                let mut c = if self.chunks.is_empty() {
                    Vec::new()
                } else {
                    Vec::with_capacity(CHUNK)
                };
                c.push(op);
                self.chunks.push(c);
            }
        }
        self.len += 1;
    }
}

impl std::ops::Index<usize> for Ops {
    type Output = Op;

    fn index(&self, i: usize) -> &Op {
        match self.get(i) {
            Some(op) => op,
            None => panic!("record {i} of {}", self.len),
        }
    }
}

impl<'h> IntoIterator for &'h Ops {
    type Item = &'h Op;
    type IntoIter = OpsIter<'h>;

    fn into_iter(self) -> OpsIter<'h> {
        self.iter()
    }
}

/// Records of [`Ops`] in order, from either end: the part of the first chunk left, the
/// whole chunks between, the part of the last.
#[derive(Debug, Clone)]
pub struct OpsIter<'h> {
    front: std::slice::Iter<'h, Op>,
    middle: std::slice::Iter<'h, Vec<Op>>,
    back: std::slice::Iter<'h, Op>,
    len: usize,
}

impl<'h> Iterator for OpsIter<'h> {
    type Item = &'h Op;

    fn next(&mut self) -> Option<&'h Op> {
        loop {
            if let Some(op) = self.front.next() {
                self.len -= 1;
                return Some(op);
            }
            match self.middle.next() {
                Some(c) => self.front = c.iter(),
                None => break,
            }
        }
        let op = self.back.next()?;
        self.len -= 1;
        Some(op)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len, Some(self.len))
    }

    /// Slice by slice: the checker's passes walk every record, and a fold over each
    /// chunk's slice is the plain loop a vector's would be.
    fn fold<B, G: FnMut(B, &'h Op) -> B>(self, init: B, mut g: G) -> B {
        let mut acc = self.front.fold(init, &mut g);
        for c in self.middle {
            acc = c.iter().fold(acc, &mut g);
        }
        self.back.fold(acc, g)
    }
}

impl DoubleEndedIterator for OpsIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(op) = self.back.next_back() {
                self.len -= 1;
                return Some(op);
            }
            match self.middle.next_back() {
                Some(c) => self.back = c.iter(),
                None => break,
            }
        }
        let op = self.front.next_back()?;
        self.len -= 1;
        Some(op)
    }
}

impl ExactSizeIterator for OpsIter<'_> {}

impl std::iter::FusedIterator for OpsIter<'_> {}

#[derive(Debug, Default)]
pub struct History {
    /// The completed operations, in the order of their completions.
    pub ops: Ops,
    pub tables: Tables,
    pub nemesis: Vec<NemesisOp>,
    /// The invocations not completed yet, by process: a process has one op at a time, and
    /// a completion answers its process's last invocation (as Jepsen pairs them).
    open: FxHashMap<u32, Op>,
    /// Invocations never completed because their process invoked again first (never in a
    /// run of ours), in the order they were superseded.
    superseded: Vec<Op>,
    /// By the completion's index: an invocation whose value is not the one its completion
    /// implies, or that carries an error (never in a run of ours; a stored history's may).
    odd_invocations: FxHashMap<u32, (OpValue, Option<ErrId>)>,
    /// By the completion's index: the invocation's time, where the wait does not fit in
    /// [`Op`].
    long_waits: FxHashMap<u32, u64>,
    /// By the completion's index: how many lines before it the op was invoked, where that
    /// does not fit in [`Op`].
    far_invocations: FxHashMap<u32, u32>,
    /// By the record's index: its error, where the id does not fit in [`Op`].
    many_errors: FxHashMap<u32, ErrId>,
    /// Invocations and completions recorded so far: the next one's index.
    lines: u32,
}

impl History {
    /// Records an invocation or a completion. Processes and indices are kept as `u32`: a
    /// 10-minute run at 100k ops/s has 120M of these and about 2M processes. A completion
    /// is merged into its process's open invocation (into an op of its own if there is
    /// none); an invocation stays open until then.
    pub fn push(
        &mut self,
        time: u64,
        process: u64,
        kind: OpType,
        value: OpValue,
        error: Option<&str>,
    ) {
        let index = self.lines;
        self.lines = index.checked_add(1).expect("fewer than 2^32 ops");
        let process = u32::try_from(process).expect("process numbers below 2^32");
        let error = match error.map(|e| self.tables.error(e)) {
            None => 0,
            Some(e) => match u8::try_from(e.0.get()).ok().filter(|e| *e != MANY_ERRORS) {
                Some(e) => e,
                None => {
                    self.many_errors.insert(index, e);
                    MANY_ERRORS
                }
            },
        };
        let mut op = Op {
            time,
            index,
            process,
            value,
            kind,
            error,
            invoked_before: 0,
            wait: 0,
        };
        if kind == OpType::Invoke {
            if let Some(earlier) = self.open.insert(process, op) {
                self.superseded.push(earlier);
            }
            return;
        }
        if let Some(inv) = self.open.remove(&process) {
            let before = index - inv.index;
            match u16::try_from(before).ok().filter(|b| *b != FAR) {
                Some(b) => op.invoked_before = b,
                None => {
                    op.invoked_before = FAR;
                    self.far_invocations.insert(index, before);
                }
            }
            let inv_error = self.error_id(&inv);
            // The invocation is no record of its own now: what it kept aside goes with it.
            if inv.error == MANY_ERRORS {
                self.many_errors.remove(&inv.index);
            }
            match time
                .checked_sub(inv.time)
                .and_then(|w| u32::try_from(w).ok())
                .filter(|w| *w != LONG_WAIT)
            {
                Some(w) => op.wait = w,
                None => {
                    op.wait = LONG_WAIT;
                    self.long_waits.insert(index, inv.time);
                }
            }
            if inv_error.is_some() || !op.value.answers(&inv.value) {
                self.odd_invocations.insert(index, (inv.value, inv_error));
            }
        }
        self.ops.push(op);
    }

    /// How many invocations and completions were recorded (two an operation).
    pub fn len(&self) -> usize {
        self.lines as usize
    }

    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }

    /// When and where in the history `op` was invoked, if it was (cheaper than
    /// [`History::invocation`]: no value).
    pub fn invoked_at(&self, op: &Op) -> Option<(u64, u32)> {
        if op.kind == OpType::Invoke {
            return Some((op.time, op.index));
        }
        if op.invoked_before == 0 {
            return None;
        }
        let time = match op.wait {
            LONG_WAIT => self.long_waits[&op.index],
            w => op.time - u64::from(w),
        };
        Some((time, op.index - self.invoked_before(op)))
    }

    /// How many lines before its completion `op` was invoked; 0 if it was not.
    fn invoked_before(&self, op: &Op) -> u32 {
        match op.invoked_before {
            FAR => self.far_invocations[&op.index],
            b => u32::from(b),
        }
    }

    /// Why `op` ended as it did, if it says, as its id.
    pub fn error_id(&self, op: &Op) -> Option<ErrId> {
        match op.error {
            0 => None,
            MANY_ERRORS => Some(self.many_errors[&op.index]),
            e => Some(ErrId(
                std::num::NonZeroU32::MIN.saturating_add(u32::from(e) - 1),
            )),
        }
    }

    /// `op`'s invocation as recorded, if it had one: an op never completed is its
    /// invocation.
    pub fn invocation<'h>(&'h self, op: &'h Op) -> Option<Invocation<'h>> {
        let (time, index) = self.invoked_at(op)?;
        let (value, error) = if op.kind == OpType::Invoke {
            (Cow::Borrowed(&op.value), self.error_id(op))
        } else {
            match self.odd_invocations.get(&op.index) {
                Some((v, e)) => (Cow::Borrowed(v), *e),
                None => (Cow::Owned(op.value.invocation()), None),
            }
        };
        Some(Invocation {
            time,
            index,
            process: op.process,
            value,
            error,
        })
    }

    /// The ops invoked and never completed, in the order of their invocations.
    pub fn unfinished(&self) -> Vec<&Op> {
        let mut out: Vec<&Op> = self.superseded.iter().chain(self.open.values()).collect();
        out.sort_unstable_by_key(|o| o.index);
        out
    }

    /// Every invocation and completion in history order, as `history.jsonl` writes them.
    pub fn events(&self) -> Events<'_> {
        Events {
            h: self,
            next: 0,
            done: 0,
            ahead: 0,
            queued: BinaryHeap::new(),
            unfinished: self.unfinished().into_iter().peekable(),
        }
    }

    /// Every invocation and completion in history order, each as its line.
    pub fn lines(&self) -> impl Iterator<Item = Line<'_>> {
        self.events().filter_map(|event| match event {
            Event::Completed(op) => Some(Line {
                time: op.time,
                index: op.index,
                process: op.process,
                kind: op.kind,
                value: Cow::Borrowed(&op.value),
                error: self.error_id(op),
            }),
            Event::Invoked(op) => self.invocation(op).map(|inv| Line {
                time: inv.time,
                index: inv.index,
                process: inv.process,
                kind: OpType::Invoke,
                value: inv.value,
                error: inv.error,
            }),
        })
    }

    /// Why `op` ended as it did, if it says.
    pub fn error(&self, op: &Op) -> Option<&str> {
        self.error_id(op).map(|e| self.tables.error_text(e))
    }

    /// A `poll_ok`'s `msgs` as the history keeps them: keys and values interned, each key's
    /// pairs compacted ([`Pairs`]) and shared with an equal read already kept. Pairs read in
    /// one pass ([`Polled::Runs`]) are their values' ids already; a run is looked up
    /// without a copy.
    pub fn intern_polled(&mut self, msgs: Polled) -> PollResult {
        match msgs {
            Polled::Runs(runs) => runs
                .iter()
                .map(|(k, pairs)| {
                    let key = self.tables.key(k);
                    match pairs {
                        KeyPairs::Run { first, values } => self.tables.read_run(key, first, values),
                        KeyPairs::Explicit { offsets, values } => {
                            let pairs = offsets.iter().copied().zip(values.iter().copied());
                            self.tables.read(key, Pairs::explicit(pairs.collect()))
                        }
                    }
                })
                .collect(),
            Polled::Raw(raw) => raw
                .into_iter()
                .map(|(k, pairs)| {
                    let key = self.tables.key(&k);
                    let pairs: Pairs = pairs
                        .iter()
                        .map(|(o, m)| (*o, self.tables.msg(m)))
                        .collect();
                    self.tables.read(key, pairs)
                })
                .collect(),
        }
    }

    pub fn push_nemesis(&mut self, time: u64, f: &'static str, value: serde_json::Value) {
        self.nemesis.push(NemesisOp { time, f, value });
    }

    /// Writes one JSON object per line, in Maelstrom's shapes: `value` is
    /// `[["send", k, v]]`, `[["send", k, [offset, v]]]`, `[["poll"]]`,
    /// `[["poll", {k: [[offset, v], ...]}]]`, a key list for `assign`, `null` for `crash`.
    pub fn write_jsonl(&self, w: &mut impl Write) -> io::Result<()> {
        let mut line = String::new();
        let mut nemesis = self.nemesis.iter().peekable();
        for Line {
            time,
            index,
            process,
            kind,
            value,
            error,
        } in self.lines()
        {
            use std::fmt::Write as _;
            while let Some(n) = nemesis.next_if(|n| n.time <= time) {
                write_nemesis(w, n)?;
            }
            line.clear();
            let _ = write!(
                line,
                "{{\"index\":{},\"time\":{},\"process\":{},\"type\":\"{}\",\"f\":\"{}\",\"value\":",
                index,
                time,
                process,
                kind.name(),
                value.f().name()
            );
            self.push_value(&mut line, &value);
            if let OpValue::Assign {
                seek_to_beginning: true,
                ..
            } = *value
            {
                line.push_str(",\"seek-to-beginning?\":true");
            }
            if let Some(e) = error {
                line.push_str(",\"error\":");
                push_json_str(&mut line, self.tables.error_text(e));
            }
            line.push_str("}\n");
            w.write_all(line.as_bytes())?;
        }
        for n in nemesis {
            write_nemesis(w, n)?;
        }
        Ok(())
    }

    /// An op's `value` as `history.jsonl` writes it (Maelstrom's shapes), for the timeline's
    /// hover text. (A final-phase assign's `seek-to-beginning?` is a key of its own there.)
    pub fn value_json(&self, value: &OpValue) -> String {
        let mut out = String::new();
        self.push_value(&mut out, value);
        out
    }

    fn push_value(&self, out: &mut String, value: &OpValue) {
        let t = &self.tables;
        match value {
            OpValue::Send { key, offset, msg } => {
                out.push_str("[[\"send\",");
                push_json_str(out, t.key_name(*key));
                match offset {
                    Some(o) => {
                        out.push_str(",[");
                        push_int(out, *o);
                        out.push(',');
                        t.push_msg_json(out, *msg);
                        out.push_str("]]]");
                    }
                    None => {
                        out.push(',');
                        t.push_msg_json(out, *msg);
                        out.push_str("]]");
                    }
                }
            }
            OpValue::Poll(None) => out.push_str("[[\"poll\"]]"),
            OpValue::Poll(Some(msgs)) => {
                out.push_str("[[\"poll\",{");
                for (i, (k, pairs)) in reads(msgs).enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_json_str(out, t.key_name(*k));
                    out.push_str(":[");
                    for (j, (o, m)) in pairs.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        out.push('[');
                        push_int(out, o);
                        out.push(',');
                        t.push_msg_json(out, m);
                        out.push(']');
                    }
                    out.push(']');
                }
                out.push_str("}]]");
            }
            OpValue::Assign { keys, .. } => {
                out.push('[');
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_json_str(out, t.key_name(*k));
                }
                out.push(']');
            }
            OpValue::Crash => out.push_str("null"),
        }
    }
}

/// The history's lines in order ([`History::events`]). The completions are the records in
/// order; an invocation is found among the records completed later, which are queued by
/// their invocations' positions as far ahead as the next one needs: as many as completed
/// between an op's invocation and its completion, a few per client, not the run.
#[derive(Debug)]
pub struct Events<'h> {
    h: &'h History,
    /// The index of the next line.
    next: u32,
    /// The first record whose completion is not yet yielded.
    done: usize,
    /// The first record not yet queued.
    ahead: usize,
    /// Queued records' (invocation index, position), least first.
    queued: BinaryHeap<Reverse<(u32, u32)>>,
    unfinished: std::iter::Peekable<std::vec::IntoIter<&'h Op>>,
}

impl<'h> Iterator for Events<'h> {
    type Item = Event<'h>;

    fn next(&mut self) -> Option<Event<'h>> {
        let ops = &self.h.ops;
        let e = self.next;
        // Every index from 0 up is one line (`History::push` numbers them so), so the line
        // at `e` is the next completion, the next unfinished op or a queued invocation.
        let completion = ops.get(self.done).filter(|o| o.index == e);
        let unfinished = self.unfinished.peek().filter(|o| o.index == e).copied();
        if completion.is_none() && unfinished.is_none() {
            while self.ahead < ops.len() && self.queued.peek().is_none_or(|Reverse((i, _))| *i > e)
            {
                let op = &ops[self.ahead];
                if op.invoked_before > 0 {
                    // Below 2^32: `push` numbers no more lines than that.
                    let pos = u32::try_from(self.ahead).expect("fewer than 2^32 ops");
                    self.queued
                        .push(Reverse((op.index - self.h.invoked_before(op), pos)));
                }
                self.ahead += 1;
            }
        }
        // The least of the three, which is at `e` when the numbering has no gaps.
        let next_done = ops.get(self.done).map(|o| o.index);
        let next_open = self.unfinished.peek().map(|o| o.index);
        let next_inv = self.queued.peek().map(|Reverse((i, _))| *i);
        let least = [next_done, next_open, next_inv]
            .into_iter()
            .flatten()
            .min()?;
        self.next = least.saturating_add(1);
        if next_inv == Some(least) {
            let Reverse((_, pos)) = self.queued.pop()?;
            return Some(Event::Invoked(&ops[pos as usize]));
        }
        if next_open == Some(least) {
            return self.unfinished.next().map(Event::Invoked);
        }
        let op = &ops[self.done];
        self.done += 1;
        if self.ahead < self.done {
            // Completed with no invocation before it: nothing to queue.
            self.ahead = self.done;
        }
        Some(Event::Completed(op))
    }
}

/// A nemesis line: no `index` (indices number the client ops, which the checker's
/// reports cite), process `"nemesis"`, type `info`.
fn write_nemesis(w: &mut impl Write, n: &NemesisOp) -> io::Result<()> {
    let line = serde_json::json!({
        "time": n.time, "process": "nemesis", "type": "info", "f": n.f, "value": n.value,
    });
    writeln!(w, "{line}")
}

/// Appends an integer as JSON text, without `fmt`: once per offset and per value of every pair
/// `history.jsonl` writes.
fn push_int(out: &mut String, v: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(v));
}

/// A JSON string. Keys are nearly always plain (Maelstrom's are decimal numbers), written
/// as they are; anything that might need escaping goes through serde_json.
fn push_json_str(out: &mut String, s: &str) {
    if crate::protocol::is_plain(s) {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(s).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_small_ints_as_themselves_and_keeps_others_distinct() {
        let mut t = Tables::default();
        assert_eq!(t.msg(&RawMsg::Int(4)), MsgId(4));
        let float = t.msg(&RawMsg::Other("4.0".into()));
        let string = t.msg(&RawMsg::Other("\"4\"".into()));
        let neg = t.msg(&RawMsg::Int(-4));
        assert_ne!(float, MsgId(4));
        assert_ne!(float, string);
        assert_eq!(t.msg(&RawMsg::Other("4.0".into())), float);
        assert_eq!(t.msg_json(float), "4.0");
        assert_eq!(t.msg_json(neg), "-4");
        assert_eq!(t.key("7"), t.key("7"));
        assert_ne!(t.key("7"), t.key("8"));
    }

    #[test]
    fn keys_are_interned_once_and_named_back_as_given() {
        let mut t = Tables::default();
        let texts: Vec<String> = ["", "7", "é\"x", "\u{2028}", "70", "07"]
            .into_iter()
            .map(str::to_owned)
            .chain((0..5_000).map(|i| i.to_string()))
            .collect();
        // Enough keys that the table grows (and rehashes from the arena) several times.
        let ids: Vec<KeyId> = texts.iter().map(|k| t.key(k)).collect();
        for (i, (k, id)) in texts.iter().zip(&ids).enumerate() {
            let first = texts.iter().position(|x| x == k).unwrap();
            assert_eq!(*id, ids[first], "{k:?}: the same text, the same id");
            assert_eq!(t.key(k), *id, "{k:?} again");
            assert_eq!(t.key_name(*id), k);
            if first == i {
                assert!(
                    ids[..i].iter().all(|j| j != id),
                    "{k:?}: a new text, a new id"
                );
            }
        }
    }

    #[test]
    fn pairs_yield_exactly_what_was_stored_and_keep_only_consecutive_runs_compact() {
        let m = MsgId;
        let cases: Vec<Vec<(i64, MsgId)>> = vec![
            vec![],
            vec![(5, m(1))],
            vec![(0, m(1)), (1, m(2)), (2, m(3))],
            vec![(0, m(1)), (1, m(2)), (3, m(3)), (4, m(4))],
            vec![(0, m(1)), (0, m(2))],
            vec![(1, m(1)), (0, m(2))],
            vec![(-1, m(1)), (0, m(2))],
            vec![(i64::MAX - 1, m(1)), (i64::MAX, m(2))],
            vec![(i64::MAX, m(1)), (i64::MIN, m(2))],
        ];
        for c in cases {
            let p: Pairs = c.clone().into();
            assert_eq!(p.iter().collect::<Vec<_>>(), c);
            assert_eq!(p.len(), c.len());
            assert_eq!(p.first(), c.first().copied());
            assert_eq!(p.last(), c.last().copied());
            assert_eq!(p.max_offset(), c.iter().map(|p| p.0).max());
            let consecutive = c.windows(2).all(|w| w[0].0.checked_add(1) == Some(w[1].0));
            assert_eq!(matches!(p, Pairs::Run { .. }), consecutive, "{c:?}");
        }
    }

    /// Pairs that are not a run keep their offsets as distances from the least when they
    /// all fit in `u32` (8 bytes a pair), as given otherwise; either way they yield exactly
    /// the pairs given, and equal pairs are kept alike however they were made.
    #[test]
    fn pairs_with_gaps_are_kept_near_their_least_offset_when_they_fit() {
        let m = MsgId;
        let far = i64::from(u32::MAX);
        let cases: Vec<(Vec<(i64, MsgId)>, bool)> = vec![
            (vec![(0, m(1)), (2, m(2)), (5, m(3))], true),
            // Disorder and repeats: the least offset is not the first.
            (vec![(9, m(1)), (3, m(2)), (3, m(3)), (12, m(4))], true),
            (vec![(-5, m(1)), (-7, m(2)), (4, m(3))], true),
            (vec![(10, m(1)), (10 + far, m(2))], true),
            (vec![(10 + far, m(1)), (10, m(2)), (11, m(3))], true),
            (vec![(10, m(1)), (11 + far, m(2))], false),
            (vec![(i64::MAX, m(1)), (i64::MIN, m(2))], false),
            (
                vec![(i64::MIN, m(1)), (i64::MIN + far, m(2)), (i64::MIN, m(3))],
                true,
            ),
            (
                vec![
                    (i64::MAX, m(1)),
                    (i64::MAX - far, m(2)),
                    (i64::MAX - 1, m(3)),
                ],
                true,
            ),
        ];
        for (c, near) in cases {
            let made = Pairs::explicit(c.clone());
            let collected: Pairs = c.iter().copied().collect();
            assert_eq!(made, collected, "{c:?}");
            assert_eq!(matches!(made, Pairs::Near { .. }), near, "{c:?}");
            assert_eq!(made.iter().collect::<Vec<_>>(), c);
            assert_eq!(made.iter().len(), c.len());
            assert_eq!(made.len(), c.len());
            assert_eq!(made.first(), c.first().copied());
            assert_eq!(made.last(), c.last().copied());
            assert_eq!(made.max_offset(), c.iter().map(|p| p.0).max(), "{c:?}");
            assert_eq!(made.min_offset(), c.iter().map(|p| p.0).min(), "{c:?}");
        }
        // The same read of a key, however it came, is kept once.
        let mut t = Tables::default();
        let c = vec![(0, m(1)), (2, m(2)), (5, m(3))];
        let a = t.read(KeyId(3), Pairs::explicit(c.clone()));
        let b = t.read(KeyId(3), c.into_iter().collect());
        assert!(Arc::ptr_eq(&a.0, &b.0));
    }

    #[test]
    fn equal_runs_share_their_values_and_still_yield_their_own_pairs() {
        let mut t = Tables::default();
        let m = MsgId;
        let a = t.share(vec![(0, m(1)), (1, m(2)), (2, m(3))].into());
        // Another key, another first offset, the same values: shared, yet its own offsets.
        let b = t.share(vec![(7, m(1)), (8, m(2)), (9, m(3))].into());
        let c = t.share(vec![(0, m(1)), (1, m(2))].into());
        let (Pairs::Run { msgs: ma, .. }, Pairs::Run { msgs: mb, .. }, Pairs::Run { msgs: mc, .. }) =
            (&a, &b, &c)
        else {
            panic!("runs expected: {a:?} {b:?} {c:?}");
        };
        assert!(Arc::ptr_eq(ma, mb));
        assert!(
            !Arc::ptr_eq(ma, mc),
            "a different run of values is not shared"
        );
        assert_eq!(
            b.iter().collect::<Vec<_>>(),
            [(7, m(1)), (8, m(2)), (9, m(3))]
        );
        assert_eq!(c.iter().collect::<Vec<_>>(), [(0, m(1)), (1, m(2))]);
        let explicit: Vec<(i64, MsgId)> = vec![(0, m(1)), (0, m(2))];
        let e = t.share(explicit.clone().into());
        assert_eq!(e.iter().collect::<Vec<_>>(), explicit);
    }

    #[test]
    fn equal_reads_of_a_key_are_one_entry_and_each_read_keeps_its_own_pairs() {
        let mut t = Tables::default();
        let (k, j, m) = (KeyId(0), KeyId(1), MsgId);
        let run = || -> Pairs { vec![(0, m(1)), (1, m(2))].into() };
        let a = t.read(k, run());
        let b = t.read(k, run());
        assert!(
            Arc::ptr_eq(&a.0, &b.0),
            "the same read of the same key is kept once"
        );
        // Another key, another first offset, other values: each its own entry.
        let other_key = t.read(j, run());
        let later = t.read(k, vec![(1, m(1)), (2, m(2))].into());
        let other_values = t.read(k, vec![(0, m(1)), (1, m(3))].into());
        for (r, want) in [
            (&other_key, (j, vec![(0, m(1)), (1, m(2))])),
            (&later, (k, vec![(1, m(1)), (2, m(2))])),
            (&other_values, (k, vec![(0, m(1)), (1, m(3))])),
        ] {
            assert!(!Arc::ptr_eq(&a.0, &r.0));
            assert_eq!((r.0.0, r.0.1.iter().collect::<Vec<_>>()), want);
        }
        // Reading another run of the key in between does not lose the first: the same
        // entry again.
        let again = t.read(k, run());
        assert!(Arc::ptr_eq(&a.0, &again.0));
        // Pairs that are not a run are kept as they came, and the same read is kept once.
        let gap: Vec<(i64, MsgId)> = vec![(0, m(1)), (2, m(2))];
        let (g1, g2) = (t.read(k, gap.clone().into()), t.read(k, gap.clone().into()));
        assert!(
            Arc::ptr_eq(&g1.0, &g2.0),
            "the same gapped read is kept once"
        );
        assert_eq!(g1.0.1.iter().collect::<Vec<_>>(), gap);
    }

    /// Sharing reads is a compaction: it must never hand a poll another read's pairs. Reads
    /// that differ in one thing only (the key, one offset, one value, one pair more, the
    /// order of two pairs, a repeat) each keep their own pairs, whichever came first.
    #[test]
    fn shared_reads_differ_in_nothing_but_their_address() {
        let m = MsgId;
        let (k, j) = (KeyId(3), KeyId(4));
        let gapped: Vec<(i64, MsgId)> = vec![(0, m(1)), (2, m(2)), (5, m(3))];
        let mut variants: Vec<(KeyId, Vec<(i64, MsgId)>)> = vec![
            (k, gapped.clone()),
            (j, gapped.clone()),
            (k, vec![(0, m(1)), (2, m(2)), (6, m(3))]),
            (k, vec![(0, m(1)), (2, m(9)), (5, m(3))]),
            (k, vec![(0, m(1)), (2, m(2)), (5, m(3)), (7, m(4))]),
            (k, vec![(0, m(1)), (5, m(3)), (2, m(2))]),
            (k, vec![(0, m(1)), (2, m(2)), (2, m(2)), (5, m(3))]),
            (k, vec![(0, m(1)), (1, m(2)), (2, m(3))]),
            (k, vec![(1, m(1)), (2, m(2)), (3, m(3))]),
            (k, vec![(0, m(1)), (1, m(2)), (2, m(4))]),
        ];
        for round in 0..2 {
            // Both orders of arrival: a loose lookup would hand the later one the earlier's.
            if round == 1 {
                variants.reverse();
            }
            let mut t = Tables::default();
            let first: Vec<KeyRead> = variants
                .iter()
                .map(|(key, ps)| t.read(*key, ps.clone().into()))
                .collect();
            for ((key, ps), r) in variants.iter().zip(&first) {
                assert_eq!(
                    (r.0.0, r.0.1.iter().collect::<Vec<_>>()),
                    (*key, ps.clone())
                );
                // Read again: the entry already kept, and still these pairs.
                let again = t.read(*key, ps.clone().into());
                assert!(Arc::ptr_eq(&again.0, &r.0), "{key:?} {ps:?}");
            }
        }
    }

    #[test]
    fn json_strings_and_values_are_written_as_serde_json_writes_them() {
        for key in [
            "5",
            "key-1_a",
            "",
            "a b",
            "q\"uote",
            "back\\slash",
            "new\nline",
            "\u{1}",
            "é",
            "\u{2028}",
            "/",
        ] {
            let mut out = String::new();
            push_json_str(&mut out, key);
            assert_eq!(out, serde_json::to_string(key).unwrap(), "{key:?}");
        }
        let mut t = Tables::default();
        for (raw, json) in [
            (RawMsg::Int(7), "7"),
            (RawMsg::Int(-7), "-7"),
            (RawMsg::Int(i64::MAX), "9223372036854775807"),
            (RawMsg::Other("4.0".into()), "4.0"),
            (RawMsg::Other("\"4\"".into()), "\"4\""),
        ] {
            let id = t.msg(&raw);
            let mut out = String::from("x");
            t.push_msg_json(&mut out, id);
            assert_eq!(out, format!("x{json}"));
            assert_eq!(t.msg_json(id), json);
        }
    }

    /// One record an operation is a compaction: the lines it gives back must be exactly the
    /// ones pushed, in their order, whatever the interleaving. Random pushes by a few
    /// processes: ops open across others' completions, completions with no invocation,
    /// a process invoking twice, ops never completed, waits past `u32` nanoseconds and
    /// times that go backwards, invocations whose value is not the one their completion
    /// implies or that carry an error.
    #[test]
    fn lines_come_back_exactly_as_pushed() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for round in 0..200 {
            let mut h = History::default();
            let keys: Keys = Arc::new(vec![h.tables.key("a"), h.tables.key("b")]);
            let other_keys: Keys = Arc::new(vec![h.tables.key("a")]);
            let mut pushed: Vec<(u64, u32, OpType, OpValue, Option<String>)> = Vec::new();
            let mut open: Vec<Option<OpValue>> = vec![None; 4];
            let mut time = 1_000u64;
            for _ in 0..(round % 40) * 3 {
                let p = next(4) as usize;
                time = match next(10) {
                    0 => time + (1 << 33),
                    1 => time.saturating_sub(500),
                    _ => time + next(1_000),
                };
                let msg = MsgId(next(3) as u32);
                let key = KeyId(next(2) as u32);
                let invoke = open[p].is_none() == (next(8) != 0);
                let (kind, value, error) = if invoke {
                    let value = match next(5) {
                        0 => OpValue::Poll(None),
                        1 => OpValue::Assign {
                            keys: keys.clone(),
                            seek_to_beginning: next(2) == 0,
                        },
                        2 => OpValue::Crash,
                        // A foreign history's odd invocation: a poll with reads.
                        3 if next(4) == 0 => {
                            OpValue::Poll(Some(poll_result(vec![(key, vec![(0, msg)].into())])))
                        }
                        _ => OpValue::Send {
                            key,
                            offset: None,
                            msg,
                        },
                    };
                    open[p] = Some(value.clone());
                    let error = (next(10) == 0).then(|| "odd".to_owned());
                    (OpType::Invoke, value, error)
                } else {
                    let kind = [OpType::Ok, OpType::Fail, OpType::Info][next(3) as usize];
                    let mut value = match open[p].take() {
                        Some(OpValue::Send { key, msg, .. }) => OpValue::Send {
                            key,
                            offset: (kind == OpType::Ok).then(|| next(5) as i64),
                            msg,
                        },
                        Some(OpValue::Poll(_)) if kind == OpType::Ok => {
                            OpValue::Poll(Some(poll_result(vec![(key, vec![(1, msg)].into())])))
                        }
                        Some(v) => v,
                        // A completion with no invocation.
                        None => OpValue::Crash,
                    };
                    if next(10) == 0 {
                        // Not what its invocation implies.
                        value = match value {
                            OpValue::Send { key, offset, msg } => OpValue::Send {
                                key,
                                offset,
                                msg: MsgId(msg.0 + 1),
                            },
                            OpValue::Assign {
                                seek_to_beginning, ..
                            } => OpValue::Assign {
                                keys: other_keys.clone(),
                                seek_to_beginning,
                            },
                            OpValue::Crash => OpValue::Poll(None),
                            poll => poll,
                        };
                    }
                    let error = (kind != OpType::Ok).then(|| format!("e{}", next(3)));
                    (kind, value, error)
                };
                h.push(time, p as u64, kind, value.clone(), error.as_deref());
                pushed.push((time, p as u32, kind, value, error));
            }
            let lines: Vec<(u64, u32, OpType, OpValue, Option<String>)> = h
                .lines()
                .map(|l| {
                    let error = l.error.map(|e| h.tables.error_text(e).to_owned());
                    (l.time, l.process, l.kind, l.value.into_owned(), error)
                })
                .collect();
            assert_eq!(lines, pushed, "round {round}");
            let indices: Vec<u32> = h.lines().map(|l| l.index).collect();
            assert_eq!(indices, (0..pushed.len() as u32).collect::<Vec<_>>());
            assert_eq!(h.len(), pushed.len());
            let completions = pushed.iter().filter(|l| l.2 != OpType::Invoke).count();
            assert_eq!(h.ops.len(), completions, "one record a completion");
        }
    }

    /// The records are kept in chunks: every position must still hold the record pushed
    /// there, through the first chunk's doubling and across every boundary, whether found by
    /// position, walked from either end, walked from a position to another, or given back
    /// as lines.
    #[test]
    fn records_keep_their_positions_across_chunk_boundaries() {
        let mut h = History::default();
        let n = 2 * CHUNK + 3;
        let mut pushed = Vec::new();
        for i in 0..n as u64 {
            let value = OpValue::Send {
                key: KeyId(i as u32 % 7),
                offset: Some(i as i64),
                msg: MsgId(i as u32),
            };
            // Every fifth op invoked first, the rest completions on their own: the lines
            // interleave invocations with the records.
            if i % 5 == 0 {
                h.push(10 * i, i, OpType::Invoke, value.invocation(), None);
            }
            h.push(10 * i + 1, i, OpType::Ok, value.clone(), None);
            pushed.push((10 * i + 1, i as u32, value));
        }
        let seen = |op: &Op| (op.time, op.process, op.value.clone());
        assert_eq!(h.ops.len(), n);
        assert_eq!(h.ops.chunks.len(), 3);
        assert!(h.ops.chunks.iter().all(|c| c.capacity() == CHUNK));
        for (i, want) in pushed.iter().enumerate() {
            assert_eq!(&seen(&h.ops[i]), want, "position {i}");
        }
        assert!(h.ops.get(n).is_none());
        assert_eq!(h.ops.last().map(seen).as_ref(), pushed.last());
        let forward: Vec<_> = h.ops.iter().map(seen).collect();
        assert_eq!(forward, pushed);
        let mut backward: Vec<_> = h.ops.iter().rev().map(seen).collect();
        backward.reverse();
        assert_eq!(backward, pushed);
        // From both ends at once, meeting in the middle chunk.
        let mut it = h.ops.iter();
        let (mut front, mut back) = (Vec::new(), Vec::new());
        while let Some(op) = it.next() {
            assert_eq!(it.len(), n - front.len() - back.len() - 1);
            front.push(seen(op));
            if let Some(op) = it.next_back() {
                back.push(seen(op));
            }
        }
        back.reverse();
        front.extend(back);
        assert_eq!(front, pushed);
        let folded = h.ops.iter().fold(Vec::new(), |mut v, op| {
            v.push(seen(op));
            v
        });
        assert_eq!(folded, pushed);
        for (start, end) in [
            (0, 0),
            (0, n),
            (CHUNK - 1, CHUNK + 1),
            (CHUNK, CHUNK),
            (CHUNK, 2 * CHUNK),
            (5, 2 * CHUNK + 1),
            (2 * CHUNK, n),
            (n, n),
        ] {
            let r: Vec<_> = h.ops.range(start, end).map(seen).collect();
            assert_eq!(r, pushed[start..end], "{start}..{end}");
            assert_eq!(h.ops.range(start, end).len(), end - start);
            let mut rev: Vec<_> = h.ops.range(start, end).rev().map(seen).collect();
            rev.reverse();
            assert_eq!(rev, pushed[start..end], "{start}..{end} backwards");
        }
        let lines = h.lines().filter(|l| l.kind != OpType::Invoke);
        let lines: Vec<_> = lines
            .map(|l| (l.time, l.process, l.value.into_owned()))
            .collect();
        assert_eq!(lines, pushed);
        assert_eq!(h.lines().count(), n + n.div_ceil(5));
        let indices: Vec<u32> = h.lines().map(|l| l.index).collect();
        assert_eq!(indices, (0..h.len() as u32).collect::<Vec<_>>());
    }

    /// What does not fit in a record is kept beside it: an invocation 65,535 lines or more
    /// before its completion (and the one just short of that), error texts past the 254th,
    /// on completions, on invocations that carry one and on an op never completed. Every
    /// line must come back as pushed.
    #[test]
    fn what_does_not_fit_in_a_record_comes_back_from_beside_it() {
        let mut h = History::default();
        let mut pushed: Vec<(u64, u32, OpType, OpValue, Option<String>)> = Vec::new();
        let mut push =
            |h: &mut History, p: u32, kind: OpType, value: OpValue, e: Option<String>| {
                let time = pushed.len() as u64 * 3;
                h.push(time, u64::from(p), kind, value.clone(), e.as_deref());
                pushed.push((time, p, kind, value, e));
            };
        let send = |i: u32| OpValue::Send {
            key: KeyId(i % 3),
            offset: None,
            msg: MsgId(i),
        };
        // Ops whose invocations are `gap` lines before their completions: the lines
        // between are completions with no invocation, one line each, by process 1.
        for gap in [1, 65_533, 65_534, 65_535, 65_536, 200_000] {
            push(&mut h, 0, OpType::Invoke, send(gap), None);
            for i in 0..gap - 1 {
                push(&mut h, 1, OpType::Fail, send(i), None);
            }
            push(
                &mut h,
                0,
                OpType::Fail,
                send(gap),
                Some(format!("gap {gap}")),
            );
        }
        // 300 error texts, each on an op's completion and every third on its invocation too.
        for i in 0..300u32 {
            let e = Some(format!("error {i}"));
            push(
                &mut h,
                2,
                OpType::Invoke,
                send(i),
                (i % 3 == 0).then(|| e.clone()).flatten(),
            );
            push(&mut h, 2, OpType::Info, send(i), e);
        }
        // Never completed, with the last error text and one past it.
        push(&mut h, 3, OpType::Invoke, send(1), Some("error 299".into()));
        push(&mut h, 4, OpType::Invoke, send(2), Some("error 300".into()));
        let lines: Vec<(u64, u32, OpType, OpValue, Option<String>)> = h
            .lines()
            .map(|l| {
                let error = l.error.map(|e| h.tables.error_text(e).to_owned());
                (l.time, l.process, l.kind, l.value.into_owned(), error)
            })
            .collect();
        assert_eq!(lines.len(), pushed.len());
        for (i, (got, want)) in lines.iter().zip(&pushed).enumerate() {
            assert_eq!(got, want, "line {i}");
        }
        assert_eq!(h.far_invocations.len(), 3, "the distances 65,535 and up");
        // Ids past 254 (the six `gap` texts come first, so `error 248` on) on 52 completions
        // and the two ops never completed; an invocation's goes with its completion's odd
        // invocation, not kept twice.
        assert_eq!(h.many_errors.len(), 54);
    }

    #[test]
    fn jsonl_uses_maelstrom_shapes() {
        let mut h = History::default();
        let k = h.tables.key("5");
        let m = h.tables.msg(&RawMsg::Int(3));
        h.push(
            1,
            0,
            OpType::Invoke,
            OpValue::Send {
                key: k,
                offset: None,
                msg: m,
            },
            None,
        );
        h.push(
            2,
            0,
            OpType::Ok,
            OpValue::Send {
                key: k,
                offset: Some(0),
                msg: m,
            },
            None,
        );
        h.push(
            3,
            0,
            OpType::Ok,
            OpValue::Poll(Some(poll_result(vec![(k, vec![(0, m)].into())]))),
            None,
        );
        let mut out = Vec::new();
        h.write_jsonl(&mut out).unwrap();
        let lines: Vec<serde_json::Value> = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines[0]["value"], serde_json::json!([["send", "5", 3]]));
        assert_eq!(
            lines[1]["value"],
            serde_json::json!([["send", "5", [0, 3]]])
        );
        assert_eq!(
            lines[2]["value"],
            serde_json::json!([["poll", {"5": [[0, 3]]}]])
        );
        assert_eq!(lines[2]["index"], 2);
    }
}
