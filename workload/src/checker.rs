//! The kafka checker: finds the anomalies of Jepsen's `jepsen.tests.kafka` in a history.
//!
//! Each check mirrors one of Jepsen's (`docs/protocol.md` §6.2) and keeps its quirks, because a node that
//! passes here should pass under Maelstrom and vice versa:
//! * the version order of a key is built from `:ok` sends (and `:info` sends some `:ok` poll
//!   read) plus every poll pair, and offsets are compressed to dense *indices*;
//! * poll and send monotonicity compare *indices of values*, not raw offsets, and a value
//!   missing from the version order counts as a step of exactly one (no error);
//! * the per-process poll checks track the last value each process read per key, reset by
//!   `assign` to the keys still assigned, and an empty read resets that key's tracking;
//! * where Jepsen's analysis throws, the verdict is unknown whatever else was found, since
//!   a checker that throws reports no anomalies at all: a read value that nobody ever sent
//!   (`no-writer-of-value`), and a key that `:ok` polls returned only as empty lists
//!   (`unread-polled-key`, an out-of-bounds index in its lost-write search);
//! * where Jepsen could not judge the offsets at all, the verdict is unknown too
//!   (`unjudgeable-offset`): see [`UNJUDGEABLE_SLOTS`]. This checker keeps offsets sparse
//!   and runs every check anyway, so the anomalies it finds are still listed.
//!
//! Elle's cycle search is in `checker/cycles.rs`: under Maelstrom's options the cycles it
//! can find are exactly the *future reads* (`G1c-realtime`), and that module proves it.

use std::collections::BTreeMap;

use serde_json::{Value, json};

// Every map here is keyed by interned ids and most are looked up once per pair of every
// poll: Fx-hashed (see `FxHashMap`), not SipHash.
use crate::history::{
    F, FxHashMap as HashMap, FxHashSet as HashSet, History, KeyId, KeyRead, MsgId, Op, OpType,
    OpValue, OpsIter, Pairs, reads,
};

mod cycles;
mod index;

use index::{FAILED, NONE, OK_READ, OrderBuilder, Orders, Values};

/// How many examples of each anomaly results keep.
const EXAMPLES: usize = 8;

/// The most slots Jepsen's dense per-key logs may hold in all, summed over keys (each key's
/// largest offset plus one); past it the verdict is unknown (`unjudgeable-offset`).
///
/// Jepsen's checker turns each key's offsets into a vector indexed by offset, from 0 to the
/// key's largest offset (its version-order log, and again its realtime-lag table). A
/// Clojure vector is indexed by a Java `int`, so one key past `2^31 - 2` can never be
/// built, whatever the heap. Summed over keys the same bound is a memory one: each slot
/// costs at least 4.5 bytes (a compressed reference in a 32-way trie leaf), twice, so 2^31
/// slots need more than 19 GiB of heap, and Maelstrom starts its JVM with the default heap,
/// a quarter of RAM. A run past it ends in an exception or an out-of-memory error under
/// Maelstrom, with no verdict; here it is judged unknown with the reason. (A negative
/// offset is unknown too: Jepsen's logs start at offset 0 and drop what lies below, so
/// its verdict would not be about what the node wrote.)
pub const UNJUDGEABLE_SLOTS: u64 = i32::MAX as u64;

/// A checker's verdict. Merging follows Jepsen: `False` beats `Unknown` beats `True`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Validity {
    True,
    Unknown,
    False,
}

impl Validity {
    pub fn merge(self, other: Validity) -> Validity {
        self.max(other)
    }

    pub fn to_json(self) -> Value {
        match self {
            Validity::True => json!(true),
            Validity::False => json!(false),
            Validity::Unknown => json!("unknown"),
        }
    }
}

/// All cases of one anomaly type: how many, and the first few in detail.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Anomaly {
    pub count: usize,
    pub examples: Vec<Value>,
}

/// The kafka workload checker's result.
#[derive(Debug, Clone)]
pub struct WorkloadResult {
    pub valid: Validity,
    /// Anomaly name (Jepsen's error key) to its cases.
    pub errors: BTreeMap<&'static str, Anomaly>,
}

impl WorkloadResult {
    pub fn to_json(&self) -> Value {
        let errors: serde_json::Map<String, Value> = self
            .errors
            .iter()
            .map(|(k, a)| {
                (
                    (*k).to_owned(),
                    json!({"count": a.count, "examples": a.examples}),
                )
            })
            .collect();
        json!({
            "valid": self.valid.to_json(),
            "anomaly-types": self.errors.keys().collect::<Vec<_>>(),
            "errors": errors,
        })
    }
}

/// One process's last read of each key it read: the last value read there (`None` for a
/// read of no messages). A map while the process has read few keys (a main-phase client
/// reads a handful); a slot per key id, 4 bytes a key with no hash table's slack, once it
/// has read more than a quarter of them: a final-phase client reads every key, and 64 of
/// them at once are the checker's height (64 processes × 175,000 keys in a 60 s run). The op
/// that read it is not kept: a report looks it up ([`Checker::last_read_op`]).
#[derive(Debug)]
enum LastReads {
    Few(HashMap<KeyId, Option<MsgId>>),
    /// By key id: [`LastReads::UNREAD`], [`LastReads::EMPTY`], or the value's id
    /// (`Tables::msg` hands out no id that high).
    Many(Vec<u32>),
}

impl Default for LastReads {
    fn default() -> Self {
        LastReads::Few(HashMap::default())
    }
}

impl LastReads {
    const UNREAD: u32 = u32::MAX;
    const EMPTY: u32 = u32::MAX - 1;

    /// The last value read of `k`, if `k` was read.
    fn get(&self, k: KeyId) -> Option<Option<MsgId>> {
        match self {
            LastReads::Few(m) => m.get(&k).copied(),
            LastReads::Many(v) => match v.get(k.0 as usize).copied() {
                None | Some(Self::UNREAD) => None,
                Some(Self::EMPTY) => Some(None),
                Some(m) => Some(Some(MsgId(m))),
            },
        }
    }

    /// Records a read of `k`; `keys` is how many keys the history has (every id below it).
    fn insert(&mut self, k: KeyId, last: Option<MsgId>, keys: usize) {
        if let LastReads::Few(m) = self
            && m.len() >= 16
            && m.len() * 4 > keys
        {
            let mut slots = vec![Self::UNREAD; keys];
            for (k, last) in m.drain() {
                slots[k.0 as usize] = Self::slot(last);
            }
            *self = LastReads::Many(slots);
        }
        match self {
            LastReads::Few(m) => {
                m.insert(k, last);
            }
            LastReads::Many(v) => {
                let i = k.0 as usize;
                if v.len() <= i {
                    v.resize(i + 1, Self::UNREAD);
                }
                v[i] = Self::slot(last);
            }
        }
    }

    fn slot(last: Option<MsgId>) -> u32 {
        last.map_or(Self::EMPTY, |m| m.0)
    }

    /// Forgets every key not kept (an assign's).
    fn retain(&mut self, keep: impl Fn(KeyId) -> bool) {
        match self {
            LastReads::Few(m) => m.retain(|k, _| keep(*k)),
            LastReads::Many(v) => {
                for (i, slot) in v.iter_mut().enumerate() {
                    // Below 2^32: key ids are `u32`.
                    if *slot != Self::UNREAD && !keep(KeyId(i as u32)) {
                        *slot = Self::UNREAD;
                    }
                }
            }
        }
    }
}

/// The read of each key a pass walked last, by its address: a read is kept once and shared by
/// every poll that returned the same pairs (`Tables::read`; the final phase's 64 clients each
/// read every key from offset 0), and a pass that only records what it saw learns nothing from
/// walking it a second time.
struct Walked(Vec<usize>);

impl Walked {
    fn new(keys: usize) -> Walked {
        Walked(vec![0; keys])
    }

    /// Whether `read` is the one last walked for its key; it is from now on. An address
    /// names one read while the history lives: each is its own allocation, never freed
    /// before the history.
    fn again(&mut self, read: &(KeyId, Pairs)) -> bool {
        let at = std::ptr::from_ref(read) as usize;
        std::mem::replace(&mut self.0[read.0.0 as usize], at) == at
    }
}

struct Checker<'h> {
    h: &'h History,
    /// Every (key, value) the history names, with its writer, its index and what was done
    /// with it ([`Values`]).
    values: Values,
    orders: Orders,
    /// By key id: whether some `:ok` poll named the key (with messages or none).
    ok_polled: Vec<bool>,
    /// Whether some send failed (else no `:ok` read can be an aborted one).
    any_failed: bool,
    errors: BTreeMap<&'static str, Anomaly>,
    unknown: bool,
}

/// Runs every check over `h`.
pub fn check(h: &History) -> WorkloadResult {
    let mut c = Checker {
        h,
        values: Values::of_sends(h),
        orders: Orders::default(),
        ok_polled: Vec::new(),
        any_failed: false,
        errors: BTreeMap::new(),
        unknown: false,
    };
    c.index_writes_and_reads();
    c.judgeable_offsets();
    c.version_orders();
    c.g1a();
    c.g1c_realtime();
    c.lost_write();
    c.poll_skip_and_nonmonotonic();
    c.nonmonotonic_send();
    c.int_poll();
    c.duplicate();
    c.unseen();
    c.no_writer();
    c.empty_transaction_graph();
    // The anomalies are still reported when Jepsen would have thrown, to help diagnosis, but
    // they cannot make the verdict false: Jepsen never gets to them.
    let valid = if c.unknown {
        Validity::Unknown
    } else if !c.errors.is_empty() {
        Validity::False
    } else {
        Validity::True
    };
    WorkloadResult {
        valid,
        errors: c.errors,
    }
}

fn send_of(op: &Op) -> Option<(KeyId, Option<i64>, MsgId)> {
    match &op.value {
        OpValue::Send { key, offset, msg } => Some((*key, *offset, *msg)),
        _ => None,
    }
}

fn reads_of(op: &Op) -> impl Iterator<Item = &(KeyId, Pairs)> {
    let r: &[KeyRead] = match &op.value {
        OpValue::Poll(Some(r)) => r,
        _ => &[],
    };
    reads(r)
}

impl<'h> Checker<'h> {
    /// The completions, in history order: the history's records, one an operation (an op
    /// never completed is kept apart and judged by none of the passes, as Jepsen judges
    /// completions).
    fn ops(&self) -> OpsIter<'h> {
        self.h.ops.iter()
    }

    fn report(&mut self, name: &'static str, example: impl FnOnce(&Self) -> Value) {
        let n = self.errors.get(name).map_or(0, |a| a.count);
        let ex = (n < EXAMPLES).then(|| example(self));
        let a = self.errors.entry(name).or_default();
        a.count += 1;
        a.examples.extend(ex);
    }

    fn key(&self, k: KeyId) -> Value {
        json!(self.h.tables.key_name(k))
    }

    fn msg(&self, m: MsgId) -> Value {
        self.h.tables.msg_value(m)
    }

    fn msgs(&self, ms: impl IntoIterator<Item = MsgId>) -> Value {
        Value::Array(ms.into_iter().map(|m| self.msg(m)).collect())
    }

    /// A compact description of an op; polls show only the pairs of key `k`.
    fn op(&self, op: &Op, k: Option<KeyId>) -> Value {
        let value = match (&op.value, k) {
            (OpValue::Poll(Some(r)), Some(k)) => {
                let pairs: Vec<Value> = reads(r)
                    .filter(|(rk, _)| *rk == k)
                    .flat_map(|(_, ps)| ps.iter().map(|(o, m)| json!([o, self.msg(m)])))
                    .collect();
                json!({"key": self.key(k), "msgs": pairs})
            }
            (OpValue::Send { key, offset, msg }, _) => {
                json!({"key": self.key(*key), "offset": offset, "msg": self.msg(*msg)})
            }
            _ => Value::Null,
        };
        json!({"index": op.index, "process": op.process, "type": op.kind.name(),
               "f": op.f().name(), "time": op.time, "value": value})
    }

    fn must_have_committed(&self, op: &Op) -> bool {
        must_have_committed(&self.values, op)
    }

    /// Whether entry `(k, v)` has `flag`.
    fn has(&self, k: KeyId, v: MsgId, flag: u8) -> bool {
        self.values
            .entry(k, v)
            .is_some_and(|e| self.values.flags[e as usize] & flag != 0)
    }

    /// The last send of entry `(k, v)` (Jepsen's `writer-of`).
    fn writer_of(&self, k: KeyId, v: MsgId) -> Option<&'h Op> {
        let w = self.values.writer[self.values.entry(k, v)? as usize];
        (w != NONE).then(|| &self.h.ops[w as usize])
    }

    /// The index of `v` in key `k`'s version order (the last, for a value at several).
    fn index(&self, k: KeyId, v: Option<MsgId>) -> Option<u32> {
        let i = self.values.index[self.values.entry(k, v?)? as usize];
        (i != NONE).then_some(i)
    }

    /// The first index of entry `e` in its key's order.
    fn first_index(&self, e: u32) -> u32 {
        match self.orders.spread.get(&e) {
            Some(s) => s.first,
            None => self.values.index[e as usize],
        }
    }

    /// Marks the failed sends, and what `:ok` polls read (entries made for values no send
    /// named).
    fn index_writes_and_reads(&mut self) {
        let h = self.h;
        self.ok_polled = vec![false; h.tables.keys()];
        let mut walked = Walked::new(h.tables.keys());
        for op in &h.ops {
            if op.kind == OpType::Fail
                && let Some((k, _, v)) = send_of(op)
                && let Some(e) = self.values.entry(k, v)
            {
                self.values.flags[e as usize] |= FAILED;
                self.any_failed = true;
            }
            if op.kind == OpType::Ok {
                for read @ (k, pairs) in reads_of(op) {
                    if walked.again(read) {
                        continue;
                    }
                    self.ok_polled[k.0 as usize] = true;
                    for (_, v) in pairs.iter() {
                        let e = self.values.entry_or_insert(*k, v);
                        self.values.flags[e as usize] |= OK_READ;
                    }
                }
            }
        }
    }

    /// `unjudgeable-offset`: offsets that Jepsen's checker could not judge, which make the
    /// verdict unknown ([`UNJUDGEABLE_SLOTS`]). Every offset in the history counts: Jepsen
    /// reads them all, in its version orders or its realtime lag.
    fn judgeable_offsets(&mut self) {
        // By key id: its largest offset, if it has one.
        let mut max: Vec<Option<i64>> = vec![None; self.h.tables.keys()];
        let mut negative: Option<(KeyId, i64, &Op)> = None;
        let mut walked = Walked::new(max.len());
        for op in self.ops() {
            let mut see = |k: KeyId, o: i64| {
                if o < 0 {
                    negative.get_or_insert((k, o, op));
                }
                let m = &mut max[k.0 as usize];
                *m = Some(m.map_or(o, |m| m.max(o)));
            };
            if let Some((k, Some(o), _)) = send_of(op) {
                see(k, o);
            }
            for read @ (k, pairs) in reads_of(op) {
                if walked.again(read) {
                    continue;
                }
                // The least and the largest offset of the reply, without walking a run.
                if let (Some(least), Some(top)) = (pairs.min_offset(), pairs.max_offset()) {
                    see(*k, least);
                    see(*k, top);
                }
            }
        }
        if let Some((k, o, op)) = negative {
            self.unknown = true;
            self.report("unjudgeable-offset", |c| {
                json!({"reason": "negative offset: Jepsen's logs start at offset 0",
                       "key": c.key(k), "offset": o, "op": c.op(op, Some(k))})
            });
        }
        // Saturating: a sum past u64 is past the bound all the same.
        let slots = max.iter().flatten().fold(0u64, |n, &m| {
            n.saturating_add(u64::try_from(m).map_or(0, |m| m + 1))
        });
        if slots > UNJUDGEABLE_SLOTS {
            let (k, o) = max
                .iter()
                .enumerate()
                .filter_map(|(k, o)| Some((k, (*o)?)))
                .max_by_key(|(_, o)| *o)
                // Below 2^32: key ids are.
                .map(|(k, o)| (KeyId(k as u32), o))
                .unwrap_or((KeyId(0), 0));
            self.unknown = true;
            self.report("unjudgeable-offset", |c| {
                json!({"reason": format!(
                    "offsets too large: Jepsen's dense per-key logs would need {slots} slots \
                     in all (largest offset {o}, key {}), past {UNJUDGEABLE_SLOTS}",
                    c.h.tables.key_name(k)),
                       "key": c.key(k), "offset": o, "slots": slots})
            });
        }
    }

    /// The version order of every key: from `:ok` sends (and `:info` ones some `:ok` poll
    /// read) with their offsets, and every poll's pairs, whatever the poll's outcome:
    /// pollers must never see unsafe data.
    fn version_orders(&mut self) {
        let h = self.h;
        let mut b = OrderBuilder::new(self.values.len());
        let mut walked = Walked::new(h.tables.keys());
        for op in &h.ops {
            if let Some((k, Some(o), v)) = send_of(op)
                && must_have_committed(&self.values, op)
            {
                let e = self.values.entry_or_insert(k, v);
                b.add(&mut self.values, k, o, e);
            }
            for read @ (k, pairs) in reads_of(op) {
                if walked.again(read) {
                    continue;
                }
                for (o, v) in pairs.iter() {
                    let e = self.values.entry_or_insert(*k, v);
                    b.add(&mut self.values, *k, o, e);
                }
            }
        }
        let (orders, crowded) = b.finish(&mut self.values);
        self.orders = orders;
        for (k, offset, index) in crowded {
            self.report("inconsistent-offsets", |c| {
                json!({"key": c.key(k), "offset": offset, "index": index,
                       "values": c.msgs(c.orders.all_at(k, index).iter().copied())})
            });
        }
    }

    /// Aborted reads: an `:ok` poll saw a value whose send failed definitely.
    fn g1a(&mut self) {
        if !self.any_failed {
            return;
        }
        for op in self.ops() {
            if op.kind != OpType::Ok {
                continue;
            }
            for (k, pairs) in reads_of(op) {
                for (_, v) in pairs.iter() {
                    if self.has(*k, v, FAILED) {
                        let k = *k;
                        self.report("G1a", |c| {
                            json!({"key": c.key(k), "value": c.msg(v),
                                   "writer": c.writer_of(k, v).map(|w| c.op(w, None)),
                                   "reader": c.op(op, Some(k))})
                        });
                    }
                }
            }
        }
    }

    /// Lost writes: some `:ok` poll read the value at index i of a key, yet a committed
    /// value at a lower index was never read by any `:ok` poll.
    fn lost_write(&mut self) {
        let unsent = self.values.unsent_by_key();
        let mut must_read: Vec<(u32, MsgId, u32)> = Vec::new();
        for k in 0..self.ok_polled.len() {
            if !self.ok_polled[k] {
                continue;
            }
            // Below 2^32: key ids are.
            let k = KeyId(k as u32);
            let values = &self.values;
            let ok_read = |e: u32| values.flags[e as usize] & OK_READ != 0;
            // The highest first index of a value some `:ok` poll read.
            let Some(bound) = values
                .entries_of(k, &unsent)
                .filter(|e| ok_read(*e) && values.index[*e as usize] != NONE)
                .map(|e| self.first_index(e))
                .max()
            else {
                // Some `:ok` poll named the key, but only ever with no messages. Jepsen's bound
                // is then -1 and its lookup of the value at that index throws.
                self.unknown = true;
                self.report("unread-polled-key", |c| json!({"key": c.key(k)}));
                continue;
            };
            // Values whose last appearance is at or below the bound and that no `:ok` poll
            // read, in index order.
            must_read.clear();
            must_read.extend(
                values
                    .entries_of(k, &unsent)
                    .filter(|e| {
                        let i = values.index[*e as usize];
                        i != NONE && i <= bound && !ok_read(*e)
                    })
                    .map(|e| (values.index[e as usize], values.msg(e), e)),
            );
            must_read.sort_unstable();
            let mut lost_cases = Vec::new();
            for &(_, v, e) in &must_read {
                let Some(writer) = self.writer_of(k, v) else {
                    // Jepsen throws here; no_writer() reports it.
                    continue;
                };
                if !self.must_have_committed(writer) {
                    continue;
                }
                let max_read_value = self
                    .orders
                    .all_at(k, bound)
                    .iter()
                    .find(|x| self.has(k, **x, OK_READ))
                    .copied();
                let max_read = max_read_value.and_then(|mv| {
                    self.ops().find(|op| {
                        op.kind == OpType::Ok
                            && reads_of(op).any(|(rk, ps)| *rk == k && ps.iter().any(|p| p.1 == mv))
                    })
                });
                lost_cases.push((v, self.first_index(e), writer, max_read));
            }
            for (v, index, writer, max_read) in lost_cases {
                self.report("lost-write", |c| {
                    json!({"key": c.key(k), "value": c.msg(v), "index": index,
                           "max-read-index": bound, "writer": c.op(writer, None),
                           "max-read": max_read.map(|op| c.op(op, Some(k)))})
                });
            }
        }
    }

    /// The change in index from `v1` to `v2` in key `k`'s order; 1 (fine) if either is
    /// missing from the order, as in Jepsen.
    fn delta(&self, k: KeyId, v1: Option<MsgId>, v2: Option<MsgId>) -> (i64, Option<(u32, u32)>) {
        match (self.index(k, v1), self.index(k, v2)) {
            (Some(i1), Some(i2)) => (i64::from(i2) - i64::from(i1), Some((i1, i2))),
            _ => (1, None),
        }
    }

    fn skipped(&self, k: KeyId, i1: u32, i2: u32) -> Value {
        self.msgs((i1 + 1..i2).map(|i| self.orders.at(k, i)))
    }

    /// `poll-skip` and `nonmonotonic-poll`: successive `:ok` polls of a key by one process
    /// must continue exactly where the previous one ended.
    fn poll_skip_and_nonmonotonic(&mut self) {
        // process -> key -> the last value it read there ([`LastReads`]).
        let mut last_reads: HashMap<u32, LastReads> = HashMap::default();
        let h = self.h;
        let keys = h.tables.keys();
        for (pos, op) in h.ops.iter().enumerate() {
            match &op.value {
                OpValue::Assign { keys, .. } if matches!(op.kind, OpType::Ok | OpType::Info) => {
                    if let Some(lr) = last_reads.get_mut(&op.process) {
                        let keep: HashSet<&KeyId> = keys.iter().collect();
                        lr.retain(|k| keep.contains(&k));
                    }
                }
                OpValue::Poll(_) => {
                    // Looked up once a poll, not once a key it read (a final poll reads all).
                    let before = last_reads.get(&op.process);
                    for (k, pairs) in reads_of(op) {
                        let Some(v) = before.and_then(|lr| lr.get(*k)) else {
                            continue;
                        };
                        let k = *k;
                        let v2 = pairs.first().map(|p| p.1);
                        match self.delta(k, v, v2) {
                            (d, Some((i1, i2))) if d > 1 => self.report("poll-skip", |c| {
                                let last_op = c.last_read_op(pos, op.process, k);
                                json!({"key": c.key(k), "delta": d, "skipped": c.skipped(k, i1, i2),
                                       "ops": [last_op.map(|o| c.op(o, Some(k))), c.op(op, Some(k))]})
                            }),
                            (d, _) if d < 1 => self.report("nonmonotonic-poll", |c| {
                                let last_op = c.last_read_op(pos, op.process, k);
                                json!({"key": c.key(k), "delta": d,
                                       "values": [v.map(|v| c.msg(v)), v2.map(|v| c.msg(v))],
                                       "ops": [last_op.map(|o| c.op(o, Some(k))), c.op(op, Some(k))]})
                            }),
                            _ => {}
                        }
                    }
                    if op.kind == OpType::Ok {
                        let lr = last_reads.entry(op.process).or_default();
                        for (k, pairs) in reads_of(op) {
                            lr.insert(*k, pairs.last().map(|p| p.1), keys);
                        }
                    }
                }
                _ => {}
            }
            if op.kind == OpType::Info {
                // An indeterminate op retires its process for good; its state can go.
                last_reads.remove(&op.process);
            }
        }
    }

    /// The op a process's last read of key `k` before record `pos` came from: its latest
    /// `:ok` poll before `pos` that read `k` (poll-skip keeps the value read, not the op;
    /// only a reported example looks the op up).
    fn last_read_op(&self, pos: usize, process: u32, k: KeyId) -> Option<&'h Op> {
        self.h.ops.range(0, pos).rev().find(|o| {
            o.process == process && o.kind == OpType::Ok && reads_of(o).any(|(rk, _)| *rk == k)
        })
    }

    /// `nonmonotonic-send`: a process's later send to a key must land at a higher index.
    fn nonmonotonic_send(&mut self) {
        let mut last_sends: HashMap<u32, HashMap<KeyId, (&Op, MsgId)>> = HashMap::default();
        for op in self.ops() {
            if !matches!(op.kind, OpType::Ok | OpType::Info) {
                continue;
            }
            match &op.value {
                OpValue::Assign { keys, .. } => {
                    if let Some(ls) = last_sends.get_mut(&op.process) {
                        let keep: HashSet<&KeyId> = keys.iter().collect();
                        ls.retain(|k, _| keep.contains(k));
                    }
                }
                OpValue::Send { key, msg, .. } => {
                    let (k, v2) = (*key, *msg);
                    if let Some(&(last_op, v1)) =
                        last_sends.get(&op.process).and_then(|ls| ls.get(&k))
                    {
                        let (d, _) = self.delta(k, Some(v1), Some(v2));
                        if d < 1 {
                            self.report("nonmonotonic-send", |c| {
                                json!({"key": c.key(k), "delta": d, "values": [c.msg(v1), c.msg(v2)],
                                       "ops": [c.op(last_op, None), c.op(op, None)]})
                            });
                        }
                    }
                    last_sends
                        .entry(op.process)
                        .or_default()
                        .insert(k, (op, v2));
                }
                _ => {}
            }
            if op.kind == OpType::Info {
                // An indeterminate op retires its process for good; its state can go.
                last_sends.remove(&op.process);
            }
        }
    }

    /// `int-poll-skip` and `int-nonmonotonic-poll`: within one poll, each key's pairs must
    /// be adjacent in the version order.
    fn int_poll(&mut self) {
        for op in self.ops() {
            for (k, pairs) in reads_of(op) {
                let k = *k;
                for ((_, v1), (_, v2)) in pairs.iter().zip(pairs.iter().skip(1)) {
                    match self.delta(k, Some(v1), Some(v2)) {
                        (d, Some((i1, i2))) if d > 1 => self.report("int-poll-skip", |c| {
                            json!({"key": c.key(k), "delta": d, "values": [c.msg(v1), c.msg(v2)],
                                   "skipped": c.skipped(k, i1, i2), "op": c.op(op, Some(k))})
                        }),
                        (d, _) if d < 1 => self.report("int-nonmonotonic-poll", |c| {
                            json!({"key": c.key(k), "delta": d, "values": [c.msg(v1), c.msg(v2)],
                                   "op": c.op(op, Some(k))})
                        }),
                        _ => {}
                    }
                }
            }
        }
    }

    /// `duplicate`: one value at two offsets of the same key.
    fn duplicate(&mut self) {
        let mut spread: Vec<(KeyId, MsgId, u32)> = self
            .orders
            .spread
            .iter()
            .map(|(e, s)| (s.key, self.values.msg(*e), *e))
            .collect();
        spread.sort_unstable();
        for (k, v, e) in spread {
            self.report("duplicate", |c| {
                let os = &c.orders.spread[&e].offsets;
                json!({"key": c.key(k), "value": c.msg(v), "count": os.len(), "offsets": os})
            });
        }
    }

    /// `unseen`: acknowledged sends that no `:ok` poll ever returned. One entry, like
    /// Jepsen's: its count is the number of unseen messages.
    fn unseen(&mut self) {
        let mut unseen: BTreeMap<KeyId, Vec<MsgId>> = BTreeMap::new();
        for op in self.ops() {
            if op.kind == OpType::Ok
                && let Some((k, _, v)) = send_of(op)
                && !self.has(k, v, OK_READ)
            {
                unseen.entry(k).or_default().push(v);
            }
        }
        let total: usize = unseen.values().map(Vec::len).sum();
        if total == 0 {
            return;
        }
        let counts: serde_json::Map<String, Value> = unseen
            .iter()
            .map(|(k, vs)| (self.h.tables.key_name(*k).to_owned(), json!(vs.len())))
            .collect();
        let messages: serde_json::Map<String, Value> = unseen
            .iter()
            .take(32)
            .map(|(k, vs)| {
                let mut vs = vs.clone();
                vs.sort();
                (
                    self.h.tables.key_name(*k).to_owned(),
                    self.msgs(vs.into_iter().take(32)),
                )
            })
            .collect();
        self.errors.insert(
            "unseen",
            Anomaly {
                count: total,
                examples: vec![json!({"unseen": counts, "messages": messages})],
            },
        );
    }

    /// A polled value that no operation ever sent: Jepsen's checker throws
    /// `no-writer-of-value` and the workload's verdict becomes unknown.
    fn no_writer(&mut self) {
        if !self.values.any_unsent() {
            return;
        }
        let mut found: Vec<(KeyId, MsgId, &Op)> = Vec::new();
        let mut seen = HashSet::default();
        for op in self.ops() {
            for (k, pairs) in reads_of(op) {
                for (_, v) in pairs.iter() {
                    if self.writer_of(*k, v).is_none() && seen.insert((*k, v)) {
                        found.push((*k, v, op));
                    }
                }
            }
        }
        for (k, v, op) in found {
            self.unknown = true;
            self.report(
                "no-writer-of-value",
                |c| json!({"key": c.key(k), "value": c.msg(v), "reader": c.op(op, Some(k))}),
            );
        }
    }
}

/// Whether `op`, a send, must have taken effect: `:ok`, or `:info` and read by some `:ok`
/// poll.
fn must_have_committed(values: &Values, op: &Op) -> bool {
    match op.kind {
        OpType::Ok => true,
        OpType::Info => send_of(op).is_some_and(|(k, _, v)| {
            values
                .entry(k, v)
                .is_some_and(|e| values.flags[e as usize] & OK_READ != 0)
        }),
        _ => false,
    }
}

impl Checker<'_> {
    /// `empty-transaction-graph`: no `send` or `poll` completed at all, so Elle, which
    /// judges only those, has no operation to build its graph from. Jepsen's kafka checker
    /// does not allow the anomaly, so the history is invalid (Jepsen's own empty-history
    /// test). Only this sure case is flagged: whether Elle's graph is also empty when every
    /// send and poll failed depends on which failed operations Elle keeps, and such a run
    /// fails the stats checker anyway.
    fn empty_transaction_graph(&mut self) {
        if !self.ops().any(|o| matches!(o.f(), F::Send | F::Poll)) {
            self.report("empty-transaction-graph", |_| json!({}));
        }
    }
}

/// Jepsen's `stats` checker as Maelstrom's kafka workload uses it: invalid when `assign`,
/// `poll` or `send` has no `:ok` completion at all (`crash` is exempt).
pub fn stats_valid(h: &History) -> Validity {
    let mut seen: HashMap<F, (usize, usize)> = HashMap::default();
    for op in &h.ops {
        let e = seen.entry(op.f()).or_default();
        e.0 += 1;
        if op.kind == OpType::Ok {
            e.1 += 1;
        }
    }
    if seen.is_empty() {
        return Validity::Unknown;
    }
    let bad = [F::Assign, F::Poll, F::Send]
        .iter()
        .any(|f| seen.get(f).is_some_and(|(_, ok)| *ok == 0));
    if bad { Validity::False } else { Validity::True }
}

#[cfg(test)]
mod tests {
    //! Each anomaly gets a minimal history that triggers it and a near-identical valid
    //! history that does not, so every check is shown failing on broken input.

    use super::*;
    use crate::protocol::RawMsg;

    /// A tiny history builder: `b.send(p, "k", v, offset)`, `b.poll(p, &[("k", &[(o, v)])])`.
    /// Each op takes the next time, from 1; `invoke_*` and `complete_*` interleave ops.
    #[derive(Default)]
    pub(super) struct B {
        pub(super) h: History,
        t: u64,
    }

    impl B {
        pub(super) fn push(&mut self, p: u64, kind: OpType, value: OpValue) -> &mut Self {
            self.t += 1;
            self.h.push(self.t, p, kind, value, None);
            self
        }

        fn send_value(&mut self, k: &str, v: i64, offset: Option<i64>) -> OpValue {
            let key = self.h.tables.key(k);
            let msg = self.h.tables.msg(&RawMsg::Int(v));
            OpValue::Send { key, offset, msg }
        }

        pub(super) fn invoke_send(&mut self, p: u64, k: &str, v: i64) -> &mut Self {
            let value = self.send_value(k, v, None);
            self.push(p, OpType::Invoke, value)
        }

        pub(super) fn complete_send(
            &mut self,
            p: u64,
            kind: OpType,
            k: &str,
            v: i64,
            offset: Option<i64>,
        ) -> &mut Self {
            let value = self.send_value(k, v, offset);
            self.push(p, kind, value)
        }

        pub(super) fn reads(&mut self, reads: &[(&str, &[(i64, i64)])]) -> Vec<(KeyId, Pairs)> {
            reads
                .iter()
                .map(|(k, pairs)| {
                    let key = self.h.tables.key(k);
                    let pairs = pairs
                        .iter()
                        .map(|(o, v)| (*o, self.h.tables.msg(&RawMsg::Int(*v))))
                        .collect();
                    (key, pairs)
                })
                .collect()
        }

        pub(super) fn invoke_poll(&mut self, p: u64) -> &mut Self {
            self.push(p, OpType::Invoke, OpValue::Poll(None))
        }

        pub(super) fn complete_poll(
            &mut self,
            p: u64,
            reads: &[(&str, &[(i64, i64)])],
        ) -> &mut Self {
            let r = self.reads(reads);
            self.push(
                p,
                OpType::Ok,
                OpValue::Poll(Some(crate::history::poll_result(r))),
            )
        }

        pub(super) fn send_as(
            &mut self,
            p: u64,
            kind: OpType,
            k: &str,
            v: i64,
            offset: Option<i64>,
        ) -> &mut Self {
            self.invoke_send(p, k, v)
                .complete_send(p, kind, k, v, offset)
        }

        pub(super) fn send(&mut self, p: u64, k: &str, v: i64, offset: i64) -> &mut Self {
            self.send_as(p, OpType::Ok, k, v, Some(offset))
        }

        pub(super) fn poll(&mut self, p: u64, reads: &[(&str, &[(i64, i64)])]) -> &mut Self {
            self.invoke_poll(p).complete_poll(p, reads)
        }

        fn assign(&mut self, p: u64, keys: &[&str]) -> &mut Self {
            let keys: crate::history::Keys =
                std::sync::Arc::new(keys.iter().map(|k| self.h.tables.key(k)).collect());
            let value = OpValue::Assign {
                keys,
                seek_to_beginning: false,
            };
            self.push(p, OpType::Invoke, value.clone());
            self.push(p, OpType::Ok, value);
            self
        }

        fn check(&self) -> WorkloadResult {
            check(&self.h)
        }
    }

    pub(super) fn types(r: &WorkloadResult) -> Vec<&'static str> {
        r.errors.keys().copied().collect()
    }

    /// Three sends to "x" at offsets 0..3, values 1..3, by process 0.
    fn three_sends() -> B {
        let mut b = B::default();
        b.send(0, "x", 1, 0).send(0, "x", 2, 1).send(0, "x", 3, 2);
        b
    }

    #[test]
    fn valid_history_is_valid() {
        let mut b = three_sends();
        b.poll(1, &[("x", &[(0, 1), (1, 2)])])
            .poll(1, &[("x", &[(2, 3)])]);
        let r = b.check();
        assert_eq!(r.valid, Validity::True, "{:?}", r.errors);
        assert!(r.errors.is_empty());
        assert_eq!(stats_valid(&b.h), Validity::True);
    }

    #[test]
    fn inconsistent_offsets() {
        let mut b = three_sends();
        b.poll(1, &[("x", &[(0, 1), (1, 2), (2, 3)])]);
        assert_eq!(b.check().valid, Validity::True);
        // A poll claims offset 1 holds 3: two values at one offset.
        b.poll(2, &[("x", &[(1, 3)])]);
        let r = b.check();
        assert_eq!(r.valid, Validity::False);
        assert!(
            types(&r).contains(&"inconsistent-offsets"),
            "{:?}",
            types(&r)
        );
        assert_eq!(r.errors["inconsistent-offsets"].examples[0]["offset"], 1);
    }

    #[test]
    fn duplicate() {
        let mut ok = three_sends();
        ok.poll(1, &[("x", &[(0, 1), (1, 2), (2, 3)])]);
        assert!(ok.check().errors.is_empty());
        let mut b = three_sends();
        b.poll(1, &[("x", &[(0, 1), (1, 2), (2, 3), (3, 3)])]);
        let r = b.check();
        // The repeated value also breaks adjacency inside that poll, as in Jepsen.
        assert!(types(&r).contains(&"duplicate"), "{:?}", types(&r));
        assert_eq!(r.errors["duplicate"].examples[0]["offsets"], json!([2, 3]));
    }

    #[test]
    fn lost_write() {
        // Offset 1 (value 2) was acknowledged but a poll that reached offset 2 never saw it.
        let mut b = three_sends();
        b.poll(1, &[("x", &[(0, 1)])]).poll(2, &[("x", &[(2, 3)])]);
        let r = b.check();
        assert!(types(&r).contains(&"lost-write"), "{:?}", types(&r));
        assert_eq!(r.errors["lost-write"].examples[0]["value"], 2);
        // Same, but some other poll did read value 2: nothing lost.
        let mut ok = three_sends();
        ok.poll(1, &[("x", &[(0, 1)])])
            .poll(2, &[("x", &[(2, 3)])])
            .poll(3, &[("x", &[(1, 2)])]);
        assert!(!types(&ok.check()).contains(&"lost-write"));
    }

    #[test]
    fn unseen() {
        let mut ok = three_sends();
        ok.poll(1, &[("x", &[(0, 1), (1, 2), (2, 3)])]);
        assert!(ok.check().errors.is_empty());
        let mut b = three_sends();
        b.poll(1, &[("x", &[(0, 1), (1, 2)])]);
        let r = b.check();
        assert_eq!(types(&r), vec!["unseen"]);
        assert_eq!(r.errors["unseen"].count, 1);
        assert_eq!(r.errors["unseen"].examples[0]["messages"]["x"], json!([3]));
    }

    #[test]
    fn poll_skip() {
        let mut ok = three_sends();
        ok.poll(1, &[("x", &[(0, 1)])])
            .poll(1, &[("x", &[(1, 2), (2, 3)])]);
        assert!(ok.check().errors.is_empty());
        // Process 1 read offset 0, then resumed at offset 2; another process read 1.
        let mut b = three_sends();
        b.poll(1, &[("x", &[(0, 1)])])
            .poll(1, &[("x", &[(2, 3)])])
            .poll(2, &[("x", &[(1, 2)])]);
        let r = b.check();
        assert_eq!(types(&r), vec!["poll-skip"]);
        assert_eq!(r.errors["poll-skip"].examples[0]["skipped"], json!([2]));
        // The example names the poll that read offset 0 and the one that skipped.
        let ops = &r.errors["poll-skip"].examples[0]["ops"];
        assert_eq!(
            (ops[0]["index"].clone(), ops[1]["index"].clone()),
            (json!(7), json!(9))
        );
        // An assign that drops the key forgets the process's position: no skip then.
        let mut reassigned = three_sends();
        reassigned
            .poll(1, &[("x", &[(0, 1)])])
            .assign(1, &["y"])
            .poll(1, &[("x", &[(2, 3)])])
            .poll(2, &[("x", &[(1, 2)])]);
        assert!(reassigned.check().errors.is_empty());
    }

    /// The same judgements once a process has read so many keys that its last reads are
    /// kept a slot per key (`LastReads::Many`): a skip, a repeat, and an assign that drops
    /// the key.
    #[test]
    fn poll_skip_and_nonmonotonic_poll_when_a_process_read_many_keys() {
        let many = |prefix: &mut B| {
            let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
            for k in &keys {
                prefix.send(0, k, 1, 0);
            }
            let one: &[(i64, i64)] = &[(0, 1)];
            let reads: Vec<(&str, &[(i64, i64)])> =
                keys.iter().map(|k| (k.as_str(), one)).collect();
            prefix.poll(1, &reads);
        };
        let mut ok = three_sends();
        many(&mut ok);
        ok.poll(1, &[("x", &[(0, 1)])])
            .poll(1, &[("x", &[(1, 2), (2, 3)])]);
        assert!(ok.check().errors.is_empty());
        let mut skip = three_sends();
        many(&mut skip);
        // Process 1 polls another key between its two reads of x: the example still names
        // the poll that last read x.
        skip.poll(1, &[("x", &[(0, 1)])])
            .poll(1, &[("k3", &[])])
            .poll(1, &[("x", &[(2, 3)])])
            .poll(2, &[("x", &[(1, 2)])]);
        let r = skip.check();
        assert_eq!(types(&r), vec!["poll-skip"]);
        assert_eq!(r.errors["poll-skip"].examples[0]["skipped"], json!([2]));
        let ops = &r.errors["poll-skip"].examples[0]["ops"];
        assert_eq!(
            (ops[0]["index"].clone(), ops[1]["index"].clone()),
            (json!(89), json!(93))
        );
        let mut repeat = three_sends();
        many(&mut repeat);
        repeat
            .poll(1, &[("x", &[(0, 1), (1, 2)])])
            .poll(1, &[("x", &[(1, 2), (2, 3)])]);
        assert_eq!(types(&repeat.check()), vec!["nonmonotonic-poll"]);
        let mut reassigned = three_sends();
        many(&mut reassigned);
        reassigned
            .poll(1, &[("x", &[(0, 1)])])
            .assign(1, &["y", "k3"])
            .poll(1, &[("x", &[(2, 3)])])
            .poll(1, &[("k3", &[(0, 1)])])
            .poll(2, &[("x", &[(1, 2)])]);
        // The assign kept k3's position: reading offset 0 again is a repeat.
        assert_eq!(types(&reassigned.check()), vec!["nonmonotonic-poll"]);
    }

    #[test]
    fn nonmonotonic_poll() {
        let mut b = three_sends();
        b.poll(1, &[("x", &[(0, 1), (1, 2)])])
            .poll(1, &[("x", &[(1, 2), (2, 3)])]);
        let r = b.check();
        assert_eq!(types(&r), vec!["nonmonotonic-poll"]);
        assert_eq!(r.errors["nonmonotonic-poll"].examples[0]["delta"], 0);
        // The same two polls by different processes are fine.
        let mut ok = three_sends();
        ok.poll(1, &[("x", &[(0, 1), (1, 2)])])
            .poll(2, &[("x", &[(1, 2), (2, 3)])]);
        assert!(ok.check().errors.is_empty());
    }

    #[test]
    fn int_poll_skip() {
        let mut b = three_sends();
        b.poll(1, &[("x", &[(0, 1), (2, 3)])])
            .poll(2, &[("x", &[(1, 2)])]);
        let r = b.check();
        assert_eq!(types(&r), vec!["int-poll-skip"]);
        let mut ok = three_sends();
        ok.poll(1, &[("x", &[(0, 1), (1, 2), (2, 3)])]);
        assert!(ok.check().errors.is_empty());
    }

    #[test]
    fn int_nonmonotonic_poll() {
        let mut b = three_sends();
        b.poll(1, &[("x", &[(1, 2), (0, 1), (2, 3)])]);
        let r = b.check();
        assert!(
            types(&r).contains(&"int-nonmonotonic-poll"),
            "{:?}",
            types(&r)
        );
        let mut ok = three_sends();
        ok.poll(1, &[("x", &[(0, 1), (1, 2), (2, 3)])]);
        assert!(ok.check().errors.is_empty());
    }

    #[test]
    fn nonmonotonic_send() {
        // Process 0's second send landed before its first in the log.
        let mut b = B::default();
        b.send(0, "x", 1, 1).send(0, "x", 2, 0);
        b.poll(1, &[("x", &[(0, 2), (1, 1)])]);
        let r = b.check();
        assert_eq!(types(&r), vec!["nonmonotonic-send"]);
        // Different processes may interleave freely.
        let mut ok = B::default();
        ok.send(0, "x", 1, 1).send(1, "x", 2, 0);
        ok.poll(2, &[("x", &[(0, 2), (1, 1)])]);
        assert!(ok.check().errors.is_empty());
    }

    /// The index finds a (key, value) by its key first: Maelstrom sends 1, 2, … to every
    /// key, so the same value under two keys is two entries, each with its own writer,
    /// failure, reads and index.
    #[test]
    fn one_value_under_two_keys_is_two_entries() {
        let mut b = B::default();
        // 1 is sent to x (ok, offset 0) and to y (failed); 2 is sent to y alone.
        b.send(0, "x", 1, 0)
            .send_as(1, OpType::Fail, "y", 1, None)
            .send(1, "y", 2, 0);
        // x's 1 read is no aborted read (y's send of 1 failed, x's did not), and y's 2 is
        // at index 0 of y although 1 is at index 0 of x.
        b.poll(2, &[("x", &[(0, 1)]), ("y", &[(0, 2)])]);
        let r = b.check();
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        // Reading y's failed 1 is an aborted read whose writer is y's send, not x's.
        b.poll(3, &[("y", &[(1, 1)])]);
        let r = b.check();
        assert_eq!(types(&r), vec!["G1a"]);
        let ex = &r.errors["G1a"].examples[0];
        assert_eq!(
            (&ex["key"], &ex["writer"]["type"]),
            (&json!("y"), &json!("fail"))
        );
        // An ok send of 2 to x never read is unseen under x, though y's 2 was read.
        let mut u = B::default();
        u.send(0, "x", 1, 0).send(0, "x", 2, 1).send(1, "y", 2, 0);
        u.poll(2, &[("x", &[(0, 1)]), ("y", &[(0, 2)])]);
        let r = u.check();
        assert_eq!(types(&r), vec!["unseen"]);
        assert_eq!(
            r.errors["unseen"].examples[0]["messages"],
            json!({"x": [2]})
        );
    }

    /// A value sent twice to one key: the last send is its writer (Jepsen's `writer-of`),
    /// and any failed send of it makes a read of it an aborted one.
    #[test]
    fn a_value_sent_twice_has_its_last_send_as_writer() {
        let mut b = B::default();
        b.send_as(0, OpType::Fail, "x", 1, None).send(1, "x", 1, 0);
        b.poll(2, &[("x", &[(0, 1)])]);
        let r = b.check();
        assert_eq!(types(&r), vec!["G1a"]);
        // The writer cited is the second send (history index 3), not the failed first.
        assert_eq!(r.errors["G1a"].examples[0]["writer"]["index"], 3);
        // Sent ok, then again and failed: still an aborted read, and the writer cited is
        // the failed one.
        let mut c = B::default();
        c.send(0, "x", 1, 0).send_as(1, OpType::Fail, "x", 1, None);
        c.poll(2, &[("x", &[(0, 1)])]);
        let r = c.check();
        assert_eq!(types(&r), vec!["G1a"]);
        assert_eq!(r.errors["G1a"].examples[0]["writer"]["type"], "fail");
        // Three sends of 2 to x, the last one ok and never read, below a read value: a lost
        // write, whose writer is that last send.
        let mut l = B::default();
        l.send(0, "x", 1, 0)
            .send_as(1, OpType::Info, "x", 2, None)
            .send_as(1, OpType::Fail, "x", 2, None)
            .send(2, "x", 2, 1)
            .send(0, "x", 3, 2);
        l.poll(3, &[("x", &[(0, 1)])]).poll(3, &[("x", &[(2, 3)])]);
        let r = l.check();
        assert!(types(&r).contains(&"lost-write"), "{:?}", types(&r));
        assert_eq!(r.errors["lost-write"].examples[0]["writer"]["index"], 7);
    }

    /// A value read that no send named (under its key: another key's send does not count)
    /// takes its place in the version order like any other, and makes the verdict unknown.
    #[test]
    fn a_value_read_but_never_sent_keeps_its_place_in_the_order() {
        let mut b = three_sends();
        // 9 was never sent to x; y's 9 does not make it sent.
        b.send(0, "y", 9, 0);
        b.poll(1, &[("x", &[(0, 1), (1, 2), (2, 3), (3, 9)])])
            .poll(2, &[("y", &[(0, 9)])]);
        let r = b.check();
        assert_eq!(r.valid, Validity::Unknown, "{:?}", r.errors);
        assert_eq!(types(&r), vec!["no-writer-of-value"]);
        assert_eq!(r.errors["no-writer-of-value"].count, 1);
        assert_eq!(r.errors["no-writer-of-value"].examples[0]["key"], "x");
        // A process that read up to 3, then 10 (sent at offset 4), skipped 9: x's 9 holds
        // index 3 of x's order though never sent.
        b.send(0, "x", 10, 4)
            .poll(4, &[("x", &[(0, 1), (1, 2), (2, 3)])])
            .poll(4, &[("x", &[(4, 10)])]);
        let r = b.check();
        assert_eq!(r.errors["poll-skip"].examples[0]["skipped"], json!([9]));
        // Read again at a second offset, an unsent value is a duplicate too; and two unsent
        // values at one offset are inconsistent offsets there.
        b.poll(2, &[("x", &[(5, 9)])])
            .poll(2, &[("x", &[(6, 11), (6, 12)])]);
        let r = b.check();
        assert_eq!(r.errors["duplicate"].examples[0]["offsets"], json!([3, 5]));
        let ex = &r.errors["inconsistent-offsets"].examples[0];
        assert_eq!(
            (&ex["offset"], &ex["values"]),
            (&json!(6), &json!([11, 12]))
        );
        assert_eq!(r.errors["no-writer-of-value"].count, 3);
    }

    /// A read kept once and returned by several polls (as `Tables::read` shares them) is
    /// judged at each poll that returned it, whatever the passes that walk it once learned.
    #[test]
    fn a_read_shared_between_polls_is_judged_at_each() {
        let mut b = B::default();
        b.send(0, "x", 1, 0).send(0, "x", 2, 1);
        let shared = crate::history::KeyRead::from(b.reads(&[("x", &[(0, 1), (1, 2)])]).remove(0));
        let poll = || OpValue::Poll(Some(Box::from([shared.clone()])));
        // An indeterminate poll returns it first: what it read proves nothing was seen.
        b.invoke_poll(1).push(1, OpType::Info, poll());
        // Then process 2 reads it (all seen), and process 3 twice (a repeat).
        b.invoke_poll(2).push(2, OpType::Ok, poll());
        b.invoke_poll(3).push(3, OpType::Ok, poll());
        b.invoke_poll(3).push(3, OpType::Ok, poll());
        let r = b.check();
        assert_eq!(types(&r), vec!["nonmonotonic-poll"]);
        // Only the indeterminate poll read it: both values unseen.
        let mut u = B::default();
        u.send(0, "x", 1, 0).send(0, "x", 2, 1);
        u.invoke_poll(1).push(1, OpType::Info, poll());
        u.poll(2, &[("x", &[])]);
        assert_eq!(u.check().errors["unseen"].count, 2);
    }

    #[test]
    fn g1a() {
        let mut b = B::default();
        b.send(0, "x", 1, 0).send_as(0, OpType::Fail, "x", 2, None);
        b.poll(1, &[("x", &[(0, 1), (1, 2)])]);
        let r = b.check();
        assert_eq!(types(&r), vec!["G1a"]);
        // An indeterminate send may show up.
        let mut ok = B::default();
        ok.send(0, "x", 1, 0).send_as(0, OpType::Info, "x", 2, None);
        ok.poll(1, &[("x", &[(0, 1), (1, 2)])]);
        assert!(ok.check().errors.is_empty(), "{:?}", ok.check().errors);
    }

    #[test]
    fn value_nobody_sent_is_unknown() {
        let mut b = three_sends();
        b.poll(1, &[("x", &[(0, 1), (1, 2), (2, 3), (3, 9)])]);
        let r = b.check();
        assert_eq!(r.valid, Validity::Unknown);
        assert_eq!(types(&r), vec!["no-writer-of-value"]);
    }

    #[test]
    fn unknown_outranks_anomalies() {
        // Value 3 is unseen, but the poll also returned 9 from "y", which nobody sent: Jepsen
        // throws before it reports anything, so the verdict is unknown, not false.
        let mut b = three_sends();
        b.poll(1, &[("x", &[(0, 1), (1, 2)]), ("y", &[(0, 9)])]);
        let r = b.check();
        assert_eq!(r.valid, Validity::Unknown);
        assert_eq!(types(&r), vec!["no-writer-of-value", "unseen"]);
    }

    #[test]
    fn key_polled_only_empty_is_unknown() {
        // "y" was never sent to; an :ok poll still named it, with no messages.
        let mut b = three_sends();
        b.poll(1, &[("x", &[(0, 1), (1, 2), (2, 3)]), ("y", &[])]);
        let r = b.check();
        assert_eq!(r.valid, Validity::Unknown);
        assert_eq!(types(&r), vec!["unread-polled-key"]);
        // Acknowledged sends that polls only ever answer with an empty list: unknown too.
        let mut lost = three_sends();
        lost.poll(1, &[("x", &[])]);
        assert_eq!(lost.check().valid, Validity::Unknown);
        // Once some :ok poll returns a message of the key, its empty polls are harmless.
        let mut ok = three_sends();
        ok.poll(1, &[("x", &[])])
            .poll(1, &[("x", &[(0, 1), (1, 2), (2, 3)])]);
        assert!(ok.check().errors.is_empty());
        // Keys left out of a reply are not polled at all.
        let mut omitted = three_sends();
        omitted
            .poll(1, &[])
            .poll(1, &[("x", &[(0, 1), (1, 2), (2, 3)])]);
        assert!(omitted.check().errors.is_empty());
    }

    #[test]
    fn offsets_jepsen_could_not_judge_are_unknown() {
        // A correct node that adds 2^40 to every offset: one key's dense log past a Java
        // int index. Judged unknown, and nothing here is sized by the offsets.
        let big = 1i64 << 40;
        let mut b = B::default();
        b.send(0, "x", 1, big).send(0, "x", 2, big + 1);
        b.poll(1, &[("x", &[(big, 1), (big + 1, 2)])]);
        let r = b.check();
        assert_eq!(r.valid, Validity::Unknown, "{:?}", r.errors);
        assert_eq!(types(&r), vec!["unjudgeable-offset"]);
        let ex = &r.errors["unjudgeable-offset"].examples[0];
        assert_eq!(ex["offset"], big + 1);
        assert!(ex["reason"].as_str().unwrap().contains("too large"), "{ex}");
        // The bound is on the sum over keys: two keys, each under it, together past it.
        let half = (UNJUDGEABLE_SLOTS / 2) as i64;
        let mut two = B::default();
        two.send(0, "x", 1, half).send(0, "y", 1, half);
        two.poll(1, &[("x", &[(half, 1)]), ("y", &[(half, 1)])]);
        assert_eq!(two.check().valid, Validity::Unknown);
        // Right at the bound: judged.
        let top = UNJUDGEABLE_SLOTS as i64 - 1;
        let mut edge = B::default();
        edge.send(0, "x", 1, top);
        edge.poll(1, &[("x", &[(top, 1)])]);
        let r = edge.check();
        assert_eq!(r.valid, Validity::True, "{:?}", r.errors);
        // A negative offset, in a send or inside an explicit poll reply.
        let mut neg = B::default();
        neg.send(0, "x", 1, -1);
        neg.poll(1, &[("x", &[(-1, 1)])]);
        let r = neg.check();
        assert_eq!(r.valid, Validity::Unknown);
        assert_eq!(types(&r), vec!["unjudgeable-offset"]);
        let mut neg_read = B::default();
        neg_read.send(0, "x", 1, 0).send(0, "x", 2, 1);
        neg_read.poll(1, &[("x", &[(0, 1), (-5, 2)])]);
        let r = neg_read.check();
        assert_eq!(r.valid, Validity::Unknown);
        assert_eq!(r.errors["unjudgeable-offset"].examples[0]["offset"], -5);
    }

    #[test]
    fn stats_need_ok_sends_and_polls() {
        let mut b = B::default();
        b.send_as(0, OpType::Info, "x", 1, None);
        b.poll(1, &[]);
        assert_eq!(stats_valid(&b.h), Validity::False);
        b.send(2, "x", 2, 0);
        assert_eq!(stats_valid(&b.h), Validity::True);
        assert_eq!(stats_valid(&History::default()), Validity::Unknown);
    }

    #[test]
    fn validity_merges_false_over_unknown_over_true() {
        assert_eq!(Validity::True.merge(Validity::Unknown), Validity::Unknown);
        assert_eq!(Validity::Unknown.merge(Validity::False), Validity::False);
        assert_eq!(Validity::True.merge(Validity::True), Validity::True);
    }
}
