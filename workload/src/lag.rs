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

pub fn worst_realtime_lag(h: &History) -> Lag {
    let mut known: HashMap<KeyId, Known> = HashMap::default();
    let mut offs = Vec::new();
    for op in h.ops.iter().filter(|o| o.kind == OpType::Ok) {
        max_offsets(&op.value, &mut offs);
        for &(k, o) in &offs {
            known.entry(k).or_default().saw(o, op.time);
        }
    }
    let mut invoked: HashMap<u32, u64> = HashMap::default();
    let mut positions: HashMap<u32, HashMap<KeyId, i64>> = HashMap::default();
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
