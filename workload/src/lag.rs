//! The kafka checker's `worst-realtime-lag`, as Jepsen computes it (reported, never part
//! of the verdict): how long, at least, a poll's view of a key had been stale.
//!
//! First, for each key and offset i, the earliest time offset i was known to exist (an ok
//! send returned it, or an ok poll read it, or a higher offset): from then on offset i - 1
//! was no longer the log's tail. Then each process's read position per assigned key is
//! followed through its ok assigns and polls; a poll invoked at time t whose position in
//! key k is o has lag `t - known[k][o + 1]`, or 0 if that is later or unknown. The worst
//! is the largest over every poll and key.

use crate::history::{FxHashMap as HashMap, History, KeyId, OpType, OpValue};

/// The worst lag found, times in ns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lag {
    /// When the poll was invoked.
    pub time: u64,
    pub process: u64,
    pub key: Option<KeyId>,
    pub lag: u64,
}

/// Highest offset per key that an ok op sent or read (`-1` for a key polled empty).
fn max_offsets(v: &OpValue, out: &mut Vec<(KeyId, i64)>) {
    out.clear();
    match v {
        OpValue::Send {
            key,
            offset: Some(o),
            ..
        } => out.push((*key, *o)),
        OpValue::Poll(Some(msgs)) => {
            out.extend(msgs.iter().map(|r| (r.0, r.1.max_offset().unwrap_or(-1))));
        }
        _ => {}
    }
}

/// When each offset of one key was first known to exist, kept sparse: the ops that raised
/// the key's highest known offset, as `(offset, time)` with offsets strictly increasing.
/// Jepsen fills a dense vector from each new highest offset down; offset `i` then holds the
/// time of the first op in history order whose highest offset reached `i`, which is the
/// first entry here at or above `i`. The offsets are the node's to choose, so nothing is
/// sized by them (a node that adds 2^40 to every offset must not make us allocate 2^43 bytes).
#[derive(Debug, Default)]
struct Known(Vec<(i64, u64)>);

impl Known {
    fn saw(&mut self, offset: i64, time: u64) {
        if offset >= 0 && self.0.last().is_none_or(|&(top, _)| offset > top) {
            self.0.push((offset, time));
        }
    }

    /// When offset `i` was first known to exist, if it ever was.
    fn at(&self, i: i64) -> Option<u64> {
        if i < 0 {
            return None;
        }
        let j = self.0.partition_point(|&(o, _)| o < i);
        self.0.get(j).map(|&(_, t)| t)
    }
}

/// A position that reads as "not assigned" in [`Positions::Many`]. Stored positions are
/// kept at or above -2, which changes nothing: a position below -1 gives no lag (there is
/// no offset below 0 to have been known), and it stays below -1 until a read at or above
/// -2 replaces it, which it would be in either case.
const UNASSIGNED: i64 = i64::MIN;

/// One process's read position in each key it was assigned or read: a map while it names
/// a few keys (the main phase's assigns name one or a handful), a vector indexed by key id
/// once it names a good share of them (the final phase's processes name every key, 64 of
/// them: as maps, tens of bytes a key each; as vectors, 8).
#[derive(Debug)]
enum Positions {
    Few(HashMap<KeyId, i64>),
    Many(Vec<i64>),
}

impl Default for Positions {
    fn default() -> Self {
        Positions::Few(HashMap::default())
    }
}

impl Positions {
    /// `keys` at the positions `old` had for them, the others before offset 0.
    fn assigned(keys: &[KeyId], old: &Positions, nkeys: usize) -> Positions {
        let mut new = if Positions::dense_at(keys.len(), nkeys) {
            Positions::Many(vec![UNASSIGNED; nkeys])
        } else {
            Positions::Few(HashMap::default())
        };
        for k in keys {
            new.set(*k, old.get(*k).unwrap_or(-1), nkeys);
        }
        new
    }

    /// Whether `len` keys of `nkeys` are held more cheaply in a vector: a map entry costs
    /// about four times a vector slot.
    fn dense_at(len: usize, nkeys: usize) -> bool {
        len >= 64 && len * 4 >= nkeys
    }

    fn get(&self, k: KeyId) -> Option<i64> {
        match self {
            Positions::Few(m) => m.get(&k).copied(),
            Positions::Many(v) => v.get(k.0 as usize).copied().filter(|p| *p != UNASSIGNED),
        }
    }

    fn set(&mut self, k: KeyId, p: i64, nkeys: usize) {
        let p = p.max(-2);
        match self {
            Positions::Few(m) => {
                m.insert(k, p);
                if Positions::dense_at(m.len(), nkeys) {
                    let mut v = vec![UNASSIGNED; nkeys];
                    for (k, p) in m.drain() {
                        v[k.0 as usize] = p;
                    }
                    *self = Positions::Many(v);
                }
            }
            Positions::Many(v) => v[k.0 as usize] = p,
        }
    }

    /// The poll read key `k` up to offset `o`: the position moves up to it, never back.
    fn read(&mut self, k: KeyId, o: i64, nkeys: usize) {
        let p = self.get(k).map_or(o, |p| p.max(o));
        self.set(k, p, nkeys);
    }

    /// The largest lag over the keys at time `t`, the lowest key on a tie (the order Jepsen
    /// meets them in is a hash map's; any is as right).
    fn worst(&self, t: u64, known: &[Known]) -> Option<(u64, KeyId)> {
        let lag = |k: KeyId, o: i64| {
            let at = o
                .checked_add(1)
                .and_then(|i| known.get(k.0 as usize)?.at(i))
                .unwrap_or(u64::MAX);
            (t.saturating_sub(at), k)
        };
        let better = |a: (u64, KeyId), b: (u64, KeyId)| a.0 > b.0 || (a.0 == b.0 && a.1 < b.1);
        let mut best: Option<(u64, KeyId)> = None;
        let mut consider = |c: (u64, KeyId)| {
            if best.is_none_or(|b| better(c, b)) {
                best = Some(c);
            }
        };
        match self {
            Positions::Few(m) => m.iter().for_each(|(&k, &o)| consider(lag(k, o))),
            Positions::Many(v) => v
                .iter()
                .enumerate()
                .filter(|(_, o)| **o != UNASSIGNED)
                .for_each(|(k, &o)| consider(lag(KeyId(k as u32), o))),
        }
        best
    }
}

pub fn worst_realtime_lag(h: &History) -> Lag {
    // Key ids are dense from 0: the per-key tables are vectors, as long as the highest id.
    let nkeys = h
        .ops
        .iter()
        .filter(|o| o.kind == OpType::Ok)
        .filter_map(|o| match &o.value {
            OpValue::Send { key, .. } => Some(key.0),
            OpValue::Poll(Some(msgs)) => msgs.iter().map(|r| r.0.0).max(),
            OpValue::Assign { keys, .. } => keys.iter().map(|k| k.0).max(),
            _ => None,
        })
        .max()
        .map_or(0, |k| k as usize + 1);
    let mut known: Vec<Known> = (0..nkeys).map(|_| Known::default()).collect();
    let mut offs = Vec::new();
    for op in h.ops.iter().filter(|o| o.kind == OpType::Ok) {
        max_offsets(&op.value, &mut offs);
        for &(k, o) in &offs {
            known[k.0 as usize].saw(o, op.time);
        }
    }
    let mut invoked: HashMap<u32, u64> = HashMap::default();
    let mut positions: HashMap<u32, Positions> = HashMap::default();
    let mut worst = Lag::default();
    for op in &h.ops {
        // A process's last invocation before this completion: its own, or, for a
        // completion with none, the one its process's earlier op answered (Jepsen's).
        if let Some((t, _)) = h.invoked_at(op) {
            invoked.insert(op.process, t);
        }
        if op.kind != OpType::Ok {
            continue;
        }
        match &op.value {
            OpValue::Assign { keys, .. } => {
                // Keys still assigned keep their position; new ones start before offset 0.
                let old = positions.remove(&op.process).unwrap_or_default();
                positions.insert(op.process, Positions::assigned(keys, &old, nkeys));
            }
            OpValue::Poll(Some(_)) => {
                let t = invoked.get(&op.process).copied().unwrap_or(op.time);
                max_offsets(&op.value, &mut offs);
                let pos = positions.entry(op.process).or_default();
                for &(k, o) in &offs {
                    pos.read(k, o, nkeys);
                }
                if let Some((lag, k)) = pos.worst(t, &known)
                    && lag > worst.lag
                {
                    worst = Lag {
                        time: t,
                        process: u64::from(op.process),
                        key: Some(k),
                        lag,
                    };
                }
            }
            _ => {}
        }
    }
    worst
}

/// Jepsen's map: times in seconds, the key by name.
pub fn to_json(l: &Lag, h: &History) -> serde_json::Value {
    let mut j = serde_json::json!({"time": l.time as f64 / 1e9, "lag": l.lag as f64 / 1e9});
    if let Some(k) = l.key {
        j["process"] = l.process.into();
        j["key"] = h.tables.key_name(k).into();
    }
    j
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::RawMsg;

    fn send(h: &mut History, t: u64, p: u64, key: KeyId, offset: i64) {
        let msg = h.tables.msg(&RawMsg::Int(offset));
        let v = OpValue::Send {
            key,
            offset: Some(offset),
            msg,
        };
        h.push(t, p, OpType::Invoke, v.clone(), None);
        h.push(t, p, OpType::Ok, v, None);
    }

    fn poll(h: &mut History, t0: u64, t1: u64, p: u64, key: KeyId, offsets: &[i64]) {
        let pairs = offsets
            .iter()
            .map(|o| (*o, h.tables.msg(&RawMsg::Int(*o))))
            .collect();
        h.push(t0, p, OpType::Invoke, OpValue::Poll(None), None);
        let v = OpValue::Poll(Some(crate::history::poll_result(vec![(key, pairs)])));
        h.push(t1, p, OpType::Ok, v, None);
    }

    #[test]
    fn jepsens_example() {
        // Jepsen's docstring: a poll of x that sees offset 0 at time 2 has no lag; after
        // offset 1 is sent at time 3, an empty poll invoked at 4 lags by 1.
        let mut h = History::default();
        let x = h.tables.key("x");
        send(&mut h, 1, 0, x, 0);
        poll(&mut h, 2, 2, 1, x, &[0]);
        assert_eq!(worst_realtime_lag(&h).lag, 0);
        send(&mut h, 3, 0, x, 1);
        poll(&mut h, 4, 5, 1, x, &[]);
        let w = worst_realtime_lag(&h);
        assert_eq!((w.lag, w.time, w.process, w.key), (1, 4, 1, Some(x)));
    }

    #[test]
    fn a_process_that_keeps_up_has_no_lag_and_one_that_falls_behind_does() {
        let mut h = History::default();
        let k = h.tables.key("k");
        for i in 0..10 {
            send(&mut h, 100 * i, 0, k, i as i64);
            poll(&mut h, 100 * i + 10, 100 * i + 20, 1, k, &[i as i64]);
        }
        assert_eq!(worst_realtime_lag(&h).lag, 0);
        // Process 2 read offset 3 at 350, then nothing more until a poll invoked at 2000.
        poll(&mut h, 350, 360, 2, k, &[3]);
        poll(&mut h, 2000, 2010, 2, k, &[]);
        let w = worst_realtime_lag(&h);
        // Offset 4 existed from time 400.
        assert_eq!((w.lag, w.process), (1600, 2));
        let j = to_json(&w, &h);
        assert_eq!(j["key"], "k");
    }

    #[test]
    fn sparse_known_times_match_a_dense_fill() {
        // The dense table Jepsen builds, filled down from each op's highest offset, against
        // the sparse one, over offsets that go up, repeat, go back and jump.
        let ops: [(i64, u64); 8] = [
            (2, 10),
            (1, 20),
            (5, 30),
            (5, 40),
            (3, 50),
            (9, 60),
            (-1, 70),
            (7, 80),
        ];
        let mut dense: Vec<Option<u64>> = Vec::new();
        let mut sparse = Known::default();
        for (o, t) in ops {
            sparse.saw(o, t);
            let Ok(o) = usize::try_from(o) else { continue };
            if dense.len() <= o {
                dense.resize(o + 1, None);
            }
            for slot in dense[..=o].iter_mut().rev() {
                if slot.is_some() {
                    break;
                }
                *slot = Some(t);
            }
        }
        for i in -2..12 {
            let want = usize::try_from(i)
                .ok()
                .and_then(|i| dense.get(i).copied().flatten());
            assert_eq!(sparse.at(i), want, "offset {i}");
        }
    }

    /// The computation as Jepsen states it, a map per process, keys met in key order (so
    /// the lowest key wins a tie, as in [`Positions::worst`]).
    fn reference(h: &History) -> Lag {
        use std::collections::BTreeMap;
        let mut known: BTreeMap<KeyId, Known> = BTreeMap::new();
        let mut offs = Vec::new();
        for op in h.ops.iter().filter(|o| o.kind == OpType::Ok) {
            max_offsets(&op.value, &mut offs);
            for &(k, o) in &offs {
                known.entry(k).or_default().saw(o, op.time);
            }
        }
        let mut invoked = BTreeMap::new();
        let mut positions: BTreeMap<u32, BTreeMap<KeyId, i64>> = BTreeMap::new();
        let mut worst = Lag::default();
        for op in &h.ops {
            if let Some((t, _)) = h.invoked_at(op) {
                invoked.insert(op.process, t);
            }
            if op.kind != OpType::Ok {
                continue;
            }
            match &op.value {
                OpValue::Assign { keys, .. } => {
                    let old = positions.remove(&op.process).unwrap_or_default();
                    let new = keys
                        .iter()
                        .map(|k| (*k, old.get(k).copied().unwrap_or(-1)))
                        .collect();
                    positions.insert(op.process, new);
                }
                OpValue::Poll(Some(_)) => {
                    let t = invoked.get(&op.process).copied().unwrap_or(op.time);
                    max_offsets(&op.value, &mut offs);
                    let pos = positions.entry(op.process).or_default();
                    for &(k, o) in &offs {
                        let p = pos.entry(k).or_insert(o);
                        *p = (*p).max(o);
                    }
                    for (&k, &o) in pos.iter() {
                        let at = o
                            .checked_add(1)
                            .and_then(|i| known.get(&k)?.at(i))
                            .unwrap_or(u64::MAX);
                        let lag = t.saturating_sub(at);
                        if lag > worst.lag {
                            worst = Lag {
                                time: t,
                                process: u64::from(op.process),
                                key: Some(k),
                                lag,
                            };
                        }
                    }
                }
                _ => {}
            }
        }
        worst
    }

    /// Processes that name a few keys (maps) and processes assigned every key (vectors),
    /// polls that read nothing, runs, offsets far below 0 and at `i64::MAX`: the same worst
    /// lag as the reference, history after history.
    #[test]
    fn positions_by_map_or_vector_give_the_references_lag() {
        for seed in 0..40 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut h = History::default();
            let nkeys = rng.usize(1..300);
            let keys: Vec<KeyId> = (0..nkeys).map(|i| h.tables.key(&format!("k{i}"))).collect();
            let mut tops = vec![-1i64; nkeys];
            let mut t = 0;
            for _ in 0..600 {
                t += rng.u64(1..50);
                let p = rng.u64(0..6);
                let k = keys[rng.usize(..nkeys)];
                match rng.u8(..10) {
                    0..=3 => {
                        tops[k.0 as usize] += 1;
                        send(&mut h, t, 100 + p, k, tops[k.0 as usize]);
                    }
                    4 => {
                        let all = rng.bool();
                        let chosen: Vec<KeyId> = if all {
                            keys.clone()
                        } else {
                            (0..rng.usize(1..5))
                                .map(|_| keys[rng.usize(..nkeys)])
                                .collect()
                        };
                        let v = OpValue::Assign {
                            keys: chosen.into(),
                            seek_to_beginning: all,
                        };
                        h.push(t, p, OpType::Invoke, v.clone(), None);
                        h.push(t + 1, p, OpType::Ok, v, None);
                    }
                    _ => {
                        let top = tops[k.0 as usize];
                        let offsets: Vec<i64> = match rng.u8(..8) {
                            0 => vec![],
                            1 => vec![i64::MIN + rng.i64(0..3)],
                            2 => vec![rng.i64(-6..-1)],
                            3 => vec![i64::MAX],
                            _ => (rng.i64(0..=top.max(0))..=top).collect(),
                        };
                        poll(&mut h, t, t + rng.u64(0..20), p, k, &offsets);
                    }
                }
            }
            let (got, want) = (worst_realtime_lag(&h), reference(&h));
            assert_eq!(got, want, "seed {seed}, {nkeys} keys");
        }
    }

    /// A process's positions, as a vector or a map, against a plain map of the positions
    /// as Jepsen keeps them, op by op: the same keys present, the same positions (those
    /// below -1 all give no lag and may be kept as -2), the same worst lag and key.
    #[test]
    fn positions_keep_what_a_plain_map_keeps() {
        use std::collections::BTreeMap;
        for seed in 0..200 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let nkeys = rng.usize(1..300);
            // Offsets known at few distinct times, so lags tie across keys.
            let known: Vec<Known> = (0..nkeys)
                .map(|_| {
                    let mut k = Known::default();
                    for o in 0..rng.i64(0..6) {
                        k.saw(o, rng.u64(0..4) * 10 + o as u64);
                    }
                    k
                })
                .collect();
            let mut pos = Positions::default();
            let mut model: BTreeMap<KeyId, i64> = BTreeMap::new();
            let key = |rng: &mut fastrand::Rng| KeyId(rng.u32(..nkeys as u32));
            for step in 0..100 {
                if rng.u8(..8) == 0 {
                    // Every key, about half of them (both kept in a vector once there
                    // are 64 or more), or a handful (a map).
                    let keys: Vec<KeyId> = match rng.u8(..3) {
                        0 => (0..nkeys as u32).map(KeyId).collect(),
                        1 => (0..nkeys as u32)
                            .filter(|_| rng.bool())
                            .map(KeyId)
                            .collect(),
                        _ => (0..rng.usize(1..6)).map(|_| key(&mut rng)).collect(),
                    };
                    pos = Positions::assigned(&keys, &pos, nkeys);
                    model = keys
                        .iter()
                        .map(|k| (*k, model.get(k).copied().unwrap_or(-1)))
                        .collect();
                } else {
                    let k = key(&mut rng);
                    let o = match rng.u8(..6) {
                        0 => i64::MIN + rng.i64(0..2),
                        1 => rng.i64(-4..0),
                        2 => i64::MAX,
                        _ => rng.i64(0..6),
                    };
                    pos.read(k, o, nkeys);
                    let p = model.entry(k).or_insert(o);
                    *p = (*p).max(o);
                }
                // Positions below -1 give no lag, whatever they are.
                let class = |p: Option<i64>| p.map(|p| p.max(-2));
                for k in (0..nkeys as u32).map(KeyId) {
                    let (got, want) = (class(pos.get(k)), class(model.get(&k).copied()));
                    assert_eq!(got, want, "seed {seed} step {step} key {k:?}");
                }
                let t = rng.u64(0..80);
                let mut want: Option<(u64, KeyId)> = None;
                for (&k, &o) in &model {
                    let at = o
                        .checked_add(1)
                        .and_then(|i| known[k.0 as usize].at(i))
                        .unwrap_or(u64::MAX);
                    let lag = t.saturating_sub(at);
                    if want.is_none_or(|(w, _)| lag > w) {
                        want = Some((lag, k));
                    }
                }
                assert_eq!(pos.worst(t, &known), want, "seed {seed} step {step}");
            }
        }
    }

    #[test]
    fn huge_offsets_cost_nothing_in_proportion() {
        // A node that adds 2^40 to every offset: the dense table would be 2^43 bytes.
        let mut h = History::default();
        let k = h.tables.key("k");
        let big = 1i64 << 40;
        send(&mut h, 100, 0, k, big);
        poll(&mut h, 150, 160, 1, k, &[big]);
        send(&mut h, 200, 0, k, big + 1);
        poll(&mut h, 500, 510, 1, k, &[]);
        poll(&mut h, 600, 610, 2, k, &[i64::MAX]);
        poll(&mut h, 700, 710, 2, k, &[]);
        let w = worst_realtime_lag(&h);
        assert_eq!((w.lag, w.process), (300, 1));
    }
}
