//! The checker's index of a history: every (key, value) it names, and every key's version
//! order, in flat vectors by key id rather than a map per key or an entry per pair.
//!
//! Maelstrom's values are 1, 2, … on every key, so a value alone names nothing: the unit is
//! the (key, value) pair, an *entry*. The entries some send named are sorted by key and
//! then value in one vector, with a start per key id (keys are interned densely), so an
//! entry is found by a binary search among its key's few values, and each fact about it
//! (its writer, its index, whether it was read) is a slot in a vector by entry. The rare
//! value read from a key that no send named (a node that invents values, a foreign history)
//! is an entry of its own, found through a side map. A version order keeps one slot per
//! distinct offset of its key, again in one vector for all keys; the rare offset holding
//! several values, and the rare value at several offsets, are kept beside it.
//!
//! The maps this replaces (a hash map from (key, value) to its writer, twice, a hash set of
//! values read per key, and per key an order of one vector per offset and a hash map from
//! value to index) held about 80 bytes an operation in a 60 s run at 100k ops/s; these hold
//! about 13 bytes a sent value and 12 a slot of the orders (BENCHMARKS.md, "What bounds the
//! checker's memory").

use crate::history::{FxHashMap as HashMap, History, KeyId, MsgId, OpValue};

/// "None" in a `u32` slot: no writer, no index.
pub(super) const NONE: u32 = u32::MAX;

/// Some send of the entry failed (Jepsen's failed writes, whatever the last send did).
pub(super) const FAILED: u8 = 1;
/// Some `:ok` poll read the entry.
pub(super) const OK_READ: u8 = 2;
/// The entry is at more than one offset of its key ([`Spread`]).
pub(super) const SEVERAL: u8 = 4;

/// Every (key, value) the history names: an entry id each.
#[derive(Debug, Default)]
pub(super) struct Values {
    /// By key id: where the key's sent values start in `msgs`; one more than there are keys.
    starts: Vec<u32>,
    /// Each key's sent values, sorted, one after another: entry ids `0..msgs.len()`.
    msgs: Vec<MsgId>,
    /// Values read from a key that no send named, by key and value: entry ids from
    /// `msgs.len()` on.
    unsent: HashMap<(KeyId, MsgId), u32>,
    /// The unsent entries' keys and values, by entry id less `msgs.len()`.
    unsent_list: Vec<(KeyId, MsgId)>,
    /// By entry: the record (position in `History::ops`) of the last send of it, Jepsen's
    /// `writer-of`; [`NONE`] for an unsent entry.
    pub(super) writer: Vec<u32>,
    /// By entry: its index in its key's version order, the last one for a value at several
    /// offsets (as Jepsen's map from value to index); [`NONE`] when not in the order.
    pub(super) index: Vec<u32>,
    /// By entry: [`FAILED`], [`OK_READ`], [`SEVERAL`].
    pub(super) flags: Vec<u8>,
}

impl Values {
    /// The entries of every send in `h`, with their writers. Each key's sends are gathered
    /// by a count per key (no sort of the whole history), then sorted by value within the
    /// key, where a value's sends stay in history order and the last one is its writer.
    pub(super) fn of_sends(h: &History) -> Values {
        let keys = h.tables.keys();
        let mut starts = vec![0u32; keys + 1];
        for op in &h.ops {
            if let OpValue::Send { key, .. } = op.value {
                starts[key.0 as usize + 1] += 1;
            }
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        let mut sends = vec![(MsgId(0), 0u32); starts[keys] as usize];
        let mut next = starts.clone();
        for (pos, op) in h.ops.iter().enumerate() {
            if let OpValue::Send { key, msg, .. } = op.value {
                let at = &mut next[key.0 as usize];
                // Below 2^32: `History::push` numbers no more lines than that.
                sends[*at as usize] = (msg, u32::try_from(pos).expect("fewer than 2^32 ops"));
                *at += 1;
            }
        }
        drop(next);
        let mut msgs = Vec::with_capacity(sends.len());
        let mut writer = Vec::with_capacity(sends.len());
        let mut start = 0;
        for k in 0..keys {
            let (lo, hi) = (starts[k] as usize, starts[k + 1] as usize);
            starts[k] = start;
            let mine = &mut sends[lo..hi];
            // By value, then position: a value's last send comes last.
            mine.sort_unstable();
            for (i, &(m, pos)) in mine.iter().enumerate() {
                if mine.get(i + 1).is_none_or(|next| next.0 != m) {
                    msgs.push(m);
                    writer.push(pos);
                }
            }
            // No more entries than sends, which are below 2^32 (above).
            start = msgs.len() as u32;
        }
        starts[keys] = start;
        drop(sends);
        msgs.shrink_to_fit();
        writer.shrink_to_fit();
        let n = msgs.len();
        Values {
            starts,
            msgs,
            unsent: HashMap::default(),
            unsent_list: Vec::new(),
            writer,
            index: vec![NONE; n],
            flags: vec![0; n],
        }
    }

    /// How many entries there are: every id is below it.
    pub(super) fn len(&self) -> usize {
        self.writer.len()
    }

    /// Key `k`'s sent values and the entry id of the first.
    fn sent(&self, k: KeyId) -> (u32, &[MsgId]) {
        let i = k.0 as usize;
        match (self.starts.get(i), self.starts.get(i + 1)) {
            (Some(&lo), Some(&hi)) => (lo, &self.msgs[lo as usize..hi as usize]),
            _ => (0, &[]),
        }
    }

    /// The entry of `v` in key `k`, if the history names it.
    pub(super) fn entry(&self, k: KeyId, v: MsgId) -> Option<u32> {
        let (lo, vs) = self.sent(k);
        match vs.binary_search(&v) {
            // Below 2^32: entry ids are.
            Ok(i) => Some(lo + i as u32),
            Err(_) if self.unsent.is_empty() => None,
            Err(_) => self.unsent.get(&(k, v)).copied(),
        }
    }

    /// The entry of `v` in key `k`, made (unsent) if no send named it.
    pub(super) fn entry_or_insert(&mut self, k: KeyId, v: MsgId) -> u32 {
        if let Some(e) = self.entry(k, v) {
            return e;
        }
        let e = u32::try_from(self.len())
            .ok()
            .filter(|e| *e != NONE)
            .expect("fewer than 2^32 - 1 distinct (key, value) pairs");
        self.unsent.insert((k, v), e);
        self.unsent_list.push((k, v));
        self.writer.push(NONE);
        self.index.push(NONE);
        self.flags.push(0);
        e
    }

    /// Whether some read named a value no send did (`no-writer-of-value`).
    pub(super) fn any_unsent(&self) -> bool {
        !self.unsent_list.is_empty()
    }

    /// The value of entry `e`.
    pub(super) fn msg(&self, e: u32) -> MsgId {
        let e = e as usize;
        match self.msgs.get(e) {
            Some(m) => *m,
            None => self.unsent_list[e - self.msgs.len()].1,
        }
    }

    /// The key of an unsent entry, or `None` for a sent one.
    fn unsent_key(&self, e: u32) -> Option<KeyId> {
        let i = (e as usize).checked_sub(self.msgs.len())?;
        Some(self.unsent_list[i].0)
    }

    /// Key `k`'s entries: its sent values' ids in value order, then its unsent ones in
    /// value order (`unsent` from [`Values::unsent_by_key`]).
    pub(super) fn entries_of<'a>(
        &self,
        k: KeyId,
        unsent: &'a [(KeyId, MsgId, u32)],
    ) -> impl Iterator<Item = u32> + 'a {
        let (lo, vs) = self.sent(k);
        // Below 2^32: entry ids are.
        let sent = lo..lo + vs.len() as u32;
        let from = unsent.partition_point(|u| u.0 < k);
        let to = unsent.partition_point(|u| u.0 <= k);
        sent.chain(unsent[from..to].iter().map(|u| u.2))
    }

    /// The unsent entries sorted by key and value, for [`Values::entries_of`].
    pub(super) fn unsent_by_key(&self) -> Vec<(KeyId, MsgId, u32)> {
        let base = self.msgs.len();
        let mut u: Vec<(KeyId, MsgId, u32)> = self
            .unsent_list
            .iter()
            .enumerate()
            // Below 2^32: entry ids are.
            .map(|(i, &(k, m))| (k, m, (base + i) as u32))
            .collect();
        u.sort_unstable();
        u
    }
}

/// A value at more than one offset of its key (`duplicate`).
#[derive(Debug)]
pub(super) struct Spread {
    pub(super) key: KeyId,
    /// Its first index in the key's order (its entry's index is the last).
    pub(super) first: u32,
    /// Its offsets, ascending.
    pub(super) offsets: Vec<i64>,
}

/// Every key's version order: its distinct offsets ascending, each with the values seen
/// there. Position among the key's offsets is the *index*.
#[derive(Debug, Default)]
pub(super) struct Orders {
    /// By key id: where the key's order starts in `offsets` and `firsts`; one more than
    /// there are keys.
    starts: Vec<usize>,
    /// By slot: the offset.
    offsets: Vec<i64>,
    /// By slot: the value seen there first.
    firsts: Vec<MsgId>,
    /// Slots that hold more than one value (`inconsistent-offsets`): every value, in the
    /// order first seen.
    crowded: HashMap<usize, Vec<MsgId>>,
    /// By entry, the values at several offsets.
    pub(super) spread: HashMap<u32, Spread>,
}

/// Builds the version orders: `add` an entry at an offset as the history shows it, then
/// `finish`.
#[derive(Debug, Default)]
pub(super) struct OrderBuilder {
    /// By entry: the first offset it was seen at, and when ([`NONE`]: never).
    first: Vec<(i64, u32)>,
    /// An entry's further offsets, with when each was first seen, and its key.
    more: HashMap<(u32, i64), (u32, KeyId)>,
    /// How many (entry, offset) pairs were seen so far: the next one's "when".
    seen: u32,
}

impl OrderBuilder {
    pub(super) fn new(entries: usize) -> OrderBuilder {
        OrderBuilder {
            first: vec![(0, NONE); entries],
            ..OrderBuilder::default()
        }
    }

    fn tick(&mut self) -> u32 {
        let t = self.seen;
        self.seen = t
            .checked_add(1)
            .filter(|t| *t != NONE)
            .expect("fewer than 2^32 - 1 distinct offsets of values");
        t
    }

    /// Entry `e` of key `k` seen at offset `o`.
    pub(super) fn add(&mut self, values: &mut Values, k: KeyId, o: i64, e: u32) {
        let i = e as usize;
        if self.first.len() <= i {
            self.first.resize(i + 1, (0, NONE));
        }
        let (first, when) = self.first[i];
        if when == NONE {
            let t = self.tick();
            self.first[i] = (o, t);
        } else if first != o && !self.more.contains_key(&(e, o)) {
            let t = self.tick();
            self.more.insert((e, o), (t, k));
            values.flags[i] |= SEVERAL;
        }
    }

    /// The orders, and every slot holding several values as (key, offset, index), in key
    /// and index order.
    pub(super) fn finish(self, values: &mut Values) -> (Orders, Vec<(KeyId, i64, u32)>) {
        let OrderBuilder { first, more, .. } = self;
        let keys = values.starts.len().saturating_sub(1);
        // What is not a sent entry's first offset, by key: unsent entries' first offsets
        // and every entry's further ones (both rare).
        let mut others: Vec<(KeyId, i64, u32, u32)> = more
            .into_iter()
            .map(|((e, o), (t, k))| (k, o, t, e))
            .collect();
        for (i, &(o, t)) in first.iter().enumerate().skip(values.msgs.len()) {
            // Below 2^32: entry ids are.
            let e = i as u32;
            if t != NONE
                && let Some(k) = values.unsent_key(e)
            {
                others.push((k, o, t, e));
            }
        }
        others.sort_unstable();
        let mut orders = Orders {
            starts: Vec::with_capacity(keys + 1),
            ..Orders::default()
        };
        let mut crowded = Vec::new();
        let mut items: Vec<(i64, u32, u32)> = Vec::new();
        let mut other = others.iter().peekable();
        for k in 0..keys {
            // Below 2^32: key ids are.
            let key = KeyId(k as u32);
            orders.starts.push(orders.offsets.len());
            items.clear();
            let (lo, vs) = values.sent(key);
            for e in lo..lo + vs.len() as u32 {
                let (o, t) = first[e as usize];
                if t != NONE {
                    items.push((o, t, e));
                }
            }
            while let Some(&(_, o, t, e)) = other.next_if(|x| x.0 == key) {
                items.push((o, t, e));
            }
            // By offset, and at one offset in the order first seen.
            items.sort_unstable();
            let mut index = 0u32;
            for (i, &(o, _, e)) in items.iter().enumerate() {
                let m = values.msg(e);
                if i == 0 || items[i - 1].0 != o {
                    if i != 0 {
                        index += 1;
                    }
                    orders.offsets.push(o);
                    orders.firsts.push(m);
                } else {
                    let slot = orders.offsets.len() - 1;
                    let first = orders.firsts[slot];
                    let vs = orders.crowded.entry(slot).or_insert_with(|| {
                        crowded.push((key, o, index));
                        vec![first]
                    });
                    vs.push(m);
                }
                values.index[e as usize] = index;
                if values.flags[e as usize] & SEVERAL != 0 {
                    let s = orders.spread.entry(e).or_insert_with(|| Spread {
                        key,
                        first: index,
                        offsets: Vec::new(),
                    });
                    s.offsets.push(o);
                }
            }
        }
        orders.starts.push(orders.offsets.len());
        orders.offsets.shrink_to_fit();
        orders.firsts.shrink_to_fit();
        (orders, crowded)
    }
}

impl Orders {
    fn slot(&self, k: KeyId, i: u32) -> usize {
        self.starts[k.0 as usize] + i as usize
    }

    /// The representative value at index `i` of key `k`: the first one seen there.
    pub(super) fn at(&self, k: KeyId, i: u32) -> MsgId {
        self.firsts[self.slot(k, i)]
    }

    /// Every value at index `i` of key `k`, in the order first seen.
    pub(super) fn all_at(&self, k: KeyId, i: u32) -> &[MsgId] {
        let slot = self.slot(k, i);
        match self.crowded.get(&slot) {
            Some(vs) => vs,
            None => std::slice::from_ref(&self.firsts[slot]),
        }
    }
}
