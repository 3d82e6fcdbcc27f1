//! What to do next: Maelstrom's kafka operation generator (`docs/protocol.md` §5.2), minus the timing.
//!
//! * Elle's `wr-txns`: single-op transactions, read or write 50/50, keys drawn from
//!   `key_count` active keys with an exponential bias towards the last slot, each key
//!   retired after `max_writes_per_key` sends carrying values 1, 2, ….
//! * Jepsen's `interleave-subscribes`: with probability `assign_p` the op becomes an
//!   `assign` of its key instead, and the underlying generator does not advance.
//! * Jepsen's `poll-unseen`: about a third of assigns also name every key that has
//!   acknowledged sends not yet polled by anyone.
//! * `track-key-offsets`: the highest offset seen per key, which the final phase polls up to.

use std::collections::HashMap;

use crate::history::{FxHashMap, KeyId};

/// One generated client operation. Keys are the generator's integers; the runner turns
/// them into decimal strings, as Maelstrom does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GenOp {
    Send {
        key: u64,
        msg: i64,
    },
    Poll,
    /// Keys to assign: generator keys, plus interned keys that have unseen messages.
    Assign {
        key: u64,
        unseen: Vec<KeyId>,
    },
}

/// The generator state.
#[derive(Debug)]
pub struct Generator {
    active: Vec<u64>,
    writes: FxHashMap<u64, i64>,
    max_writes_per_key: i64,
    scale: f64,
    assign_p: f64,
    /// Per key, the highest offset acknowledged by a send and read by a poll (`poll-unseen`).
    sent: FxHashMap<KeyId, i64>,
    polled: FxHashMap<KeyId, i64>,
    /// Per key, the highest offset any `:ok` op touched; `-1` for a key polled empty. A
    /// std map, unlike the others: the final phase's clients take it as their targets.
    max_offsets: HashMap<KeyId, i64>,
}

const KEY_DIST_BASE: f64 = 2.0;

impl Generator {
    pub fn new(key_count: usize, max_writes_per_key: i64, assign_p: f64) -> Self {
        let key_count = key_count.max(1);
        // Elle's key-dist-scale: base · (base^n − 1) / (base − 1).
        let scale =
            KEY_DIST_BASE * (KEY_DIST_BASE.powi(key_count as i32) - 1.0) / (KEY_DIST_BASE - 1.0);
        Generator {
            active: (0..key_count as u64).collect(),
            writes: FxHashMap::default(),
            max_writes_per_key: max_writes_per_key.max(1),
            scale,
            assign_p,
            sent: FxHashMap::default(),
            polled: FxHashMap::default(),
            max_offsets: HashMap::new(),
        }
    }

    /// Elle's exponential key choice: slot i (of n) with probability ≈ 2^(i−n); the last
    /// slot, where retired keys are usually replaced, gets about half the picks.
    fn rand_slot(&self, rng: &mut fastrand::Rng) -> usize {
        let x = rng.f64() * self.scale + KEY_DIST_BASE;
        let ki = (x.ln() / KEY_DIST_BASE.ln() - 1.0).floor();
        (ki.max(0.0) as usize).min(self.active.len() - 1)
    }

    pub fn next(&mut self, rng: &mut fastrand::Rng) -> GenOp {
        let slot = self.rand_slot(rng);
        let key = self.active[slot];
        let write = rng.bool();
        if rng.f64() < self.assign_p {
            // Replaces the op without advancing the generator: the value is not consumed.
            let unseen = if rng.f64() < 1.0 / 3.0 {
                self.unseen_keys()
            } else {
                Vec::new()
            };
            return GenOp::Assign { key, unseen };
        }
        if !write {
            return GenOp::Poll;
        }
        let n = self.writes.entry(key).or_insert(0);
        *n += 1;
        let msg = *n;
        if msg >= self.max_writes_per_key {
            self.writes.remove(&key);
            let fresh = self.active.iter().max().copied().unwrap_or(0) + 1;
            self.active[slot] = fresh;
        }
        GenOp::Send { key, msg }
    }

    fn unseen_keys(&self) -> Vec<KeyId> {
        let mut keys: Vec<KeyId> = self.sent.keys().copied().collect();
        keys.sort();
        keys
    }

    /// Feeds an `:ok` send back into the generator.
    pub fn sent_ok(&mut self, key: KeyId, offset: i64) {
        bump(&mut self.max_offsets, key, offset);
        bump(&mut self.sent, key, offset);
        self.trim(key);
    }

    /// Feeds an `:ok` poll back: `max` is the highest offset returned for the key, or −1.
    pub fn polled_ok(&mut self, key: KeyId, max: i64) {
        bump(&mut self.max_offsets, key, max);
        bump(&mut self.polled, key, max);
        self.trim(key);
    }

    /// `poll-unseen` forgets keys whose polls caught up with their sends.
    fn trim(&mut self, key: KeyId) {
        let polled = self.polled.get(&key).copied().unwrap_or(-1);
        let sent = self.sent.get(&key).copied().unwrap_or(-1);
        if polled >= sent {
            self.sent.remove(&key);
            self.polled.remove(&key);
        }
    }

    /// The offsets the final phase polls up to.
    pub fn max_offsets(&self) -> &HashMap<KeyId, i64> {
        &self.max_offsets
    }
}

fn bump<S: std::hash::BuildHasher>(m: &mut HashMap<KeyId, i64, S>, k: KeyId, v: i64) {
    let e = m.entry(k).or_insert(v);
    *e = (*e).max(v);
}

/// Jepsen's `stagger`: successive times at uniformly random gaps in `[0, 2·mean)`.
#[derive(Debug)]
pub struct Stagger {
    /// Nanoseconds; `None` before the first op, which goes out at once.
    next: Option<u64>,
    mean_ns: f64,
}

impl Stagger {
    pub fn new(mean_ns: f64) -> Self {
        Stagger {
            next: None,
            mean_ns,
        }
    }

    /// When the next op is due, in ns since the run's start.
    pub fn due(&self, now: u64) -> u64 {
        self.next.unwrap_or(now)
    }

    /// Marks the due op as issued at `now` and schedules the one after. `slack` is how far
    /// behind schedule the run may fall and still catch up in a burst: a little, so that
    /// sleep granularity does not cap the rate, but not a backlog after a stall.
    pub fn issued(&mut self, now: u64, slack: u64, rng: &mut fastrand::Rng) {
        let base = self.due(now).max(now.saturating_sub(slack));
        self.next = Some(base + (rng.f64() * 2.0 * self.mean_ns) as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_slot_gets_about_half_the_picks() {
        let g = Generator::new(10, 16, 0.0);
        let mut rng = fastrand::Rng::with_seed(1);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            counts[g.rand_slot(&mut rng)] += 1;
        }
        let last = f64::from(counts[9]) / 100_000.0;
        let second = f64::from(counts[8]) / 100_000.0;
        assert!((0.47..0.53).contains(&last), "{counts:?}");
        assert!((0.22..0.28).contains(&second), "{counts:?}");
        assert!(counts[0] > 0);
    }

    #[test]
    fn keys_retire_after_max_writes_with_values_one_to_max() {
        let mut g = Generator::new(3, 4, 0.0);
        let mut rng = fastrand::Rng::with_seed(7);
        let mut per_key: HashMap<u64, Vec<i64>> = HashMap::new();
        for _ in 0..2000 {
            if let GenOp::Send { key, msg } = g.next(&mut rng) {
                per_key.entry(key).or_default().push(msg);
            }
        }
        let full = per_key.values().filter(|v| v.len() == 4).count();
        assert!(full > 100, "{full}");
        for vs in per_key.values() {
            let want: Vec<i64> = (1..=vs.len() as i64).collect();
            assert_eq!(vs, &want);
            assert!(vs.len() <= 4);
        }
        assert!(g.active.iter().all(|k| *k >= 3));
    }

    #[test]
    fn assigns_come_at_the_configured_rate_and_name_unseen_keys() {
        let mut g = Generator::new(10, 16, 1.0 / 8.0);
        g.sent_ok(KeyId(5), 3);
        g.polled_ok(KeyId(6), 0);
        let mut rng = fastrand::Rng::with_seed(3);
        let (mut assigns, mut widened) = (0, 0);
        for _ in 0..8000 {
            if let GenOp::Assign { unseen, .. } = g.next(&mut rng) {
                assigns += 1;
                if !unseen.is_empty() {
                    assert_eq!(unseen, vec![KeyId(5)]);
                    widened += 1;
                }
            }
        }
        assert!((850..1150).contains(&assigns), "{assigns}");
        assert!((200..450).contains(&widened), "{widened}");
        g.polled_ok(KeyId(5), 3);
        assert!(g.unseen_keys().is_empty());
        assert_eq!(g.max_offsets()[&KeyId(6)], 0);
    }

    #[test]
    fn stagger_averages_the_mean_and_does_not_build_a_backlog() {
        let mut s = Stagger::new(1000.0);
        let mut rng = fastrand::Rng::with_seed(2);
        let mut now = 0;
        for _ in 0..10_000 {
            now = s.due(now);
            s.issued(now, 0, &mut rng);
        }
        assert!((9_500_000..10_500_000).contains(&now), "{now}");
        // After a long stall the schedule restarts from (now − slack), not from the past.
        s.issued(now + 1_000_000_000, 5_000, &mut rng);
        assert!(s.due(0) >= now + 1_000_000_000 - 5_000);
    }
}
