//! What a run measured, typed: operation counts, latency quantiles, throughput, message
//! counts, availability, the network's drops, CPU and the worst realtime lag. Computed once
//! from the [`Outcome`]; [`verdict`](crate::verdict) judges them and
//! [`report`](crate::report), the HTML page and `results.edn` only show them.

use std::collections::BTreeMap;

use crate::cli::{self, Config};
use crate::history::{F, History, OpType, OpValue};
use crate::lag::{self, Lag};
use crate::network::NetStats;
use crate::runner::{Outcome, Timeline};

/// One completed operation's latency. Made from the history's records as each walk needs
/// it ([`Samples`]), not kept: a vector of them was 24 bytes an operation beside the records
/// while the results were written.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub f: F,
    pub kind: OpType,
    /// The client process, which names the node it talked to (see [`node_of`]).
    pub process: u32,
    /// Invocation time, ns since the run's origin.
    pub start: u64,
    pub latency: u64,
}

/// The node a client process talked to: worker thread `t` keeps node `t % nodes` for
/// every client it is given, and its processes are `t`, `t + concurrency`, ...
pub fn node_of(process: u32, concurrency: usize, nodes: usize) -> usize {
    (process as usize % concurrency.max(1)) % nodes.max(1)
}

const _: () = assert!(std::mem::size_of::<Sample>() == 24);

/// Each completion that answered an invocation, with that invocation's time, in the order
/// of the completions.
pub fn samples(h: &History) -> impl Iterator<Item = Sample> + '_ {
    h.ops.iter().filter_map(|op| {
        // (Final-phase assigns make no RPC: their zero latency would only mislead.)
        if let OpValue::Assign {
            seek_to_beginning: true,
            ..
        } = op.value
        {
            return None;
        }
        let (start, _) = h.invoked_at(op)?;
        Some(Sample {
            f: op.f(),
            kind: op.kind,
            process: op.process,
            start,
            latency: op.time.saturating_sub(start),
        })
    })
}

/// What the results and the plots read latencies from, walked afresh each time: a history
/// (its [`samples`], made from the records as they are walked) or, in tests, samples given
/// as they are.
pub trait Samples {
    fn samples(&self) -> impl Iterator<Item = Sample> + '_;
}

impl Samples for History {
    fn samples(&self) -> impl Iterator<Item = Sample> + '_ {
        samples(self)
    }
}

impl Samples for [Sample] {
    fn samples(&self) -> impl Iterator<Item = Sample> + '_ {
        self.iter().copied()
    }
}

/// The `q` quantile (nearest rank) of sorted values.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Completions by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
}

impl Counts {
    pub fn count(&self) -> u64 {
        self.ok + self.fail + self.info
    }
}

/// Jepsen's stats: completions overall and by `f`.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub total: Counts,
    pub by_f: BTreeMap<F, Counts>,
}

/// Latency quantiles of one `f`'s ok operations, ns (nearest rank).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantiles {
    pub count: usize,
    pub p50: u64,
    pub p95: u64,
    pub p99: u64,
    pub max: u64,
}

/// Operations invoked during the main phase (crashes aside), over its length.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    /// The main phase's length, ns.
    pub main_phase: u64,
    pub ops: usize,
    pub ok_ops: usize,
    /// `--rate`.
    pub target_rate: f64,
}

/// Maelstrom's `:net` statistics, and the client invocations that `msgs-per-op` divides by
/// (crashes and final-phase ops included).
#[derive(Debug, Clone, Copy)]
pub struct Net {
    pub stats: NetStats,
    pub invocations: usize,
}

impl Net {
    /// Messages per client invocation, `None` when nothing was invoked.
    pub fn per_op(&self, msgs: u64) -> Option<f64> {
        (self.invocations > 0).then(|| msgs as f64 / self.invocations as f64)
    }
}

/// Maelstrom's availability checker's inputs: ok completions over invocations, and what
/// `--availability` expects.
#[derive(Debug, Clone, Copy)]
pub struct Availability {
    pub oks: usize,
    pub invocations: usize,
    pub expected: Option<cli::Availability>,
}

impl Availability {
    /// 1 when nothing was invoked.
    pub fn ok_fraction(&self) -> f64 {
        if self.invocations == 0 {
            1.0
        } else {
            self.oks as f64 / self.invocations as f64
        }
    }
}

/// The simulated network as configured, and what it dropped.
#[derive(Debug, Clone)]
pub struct Network {
    /// `--latency`, ms.
    pub latency_ms: u64,
    /// `--latency-dist`.
    pub latency_dist: String,
    /// Messages dropped by partitions.
    pub partitioned: u64,
    /// Replies no client waited for.
    pub dropped_replies: u64,
}

/// CPU seconds: this process, and each node by name.
#[derive(Debug, Clone)]
pub struct Cpu {
    pub runner: Option<f64>,
    pub nodes: Vec<(String, Option<f64>)>,
}

/// Everything a run measured.
#[derive(Debug, Clone)]
pub struct Results {
    pub stats: Stats,
    /// Ok operations' latency, by `f` (crashes have none).
    pub latency: BTreeMap<F, Quantiles>,
    pub throughput: Throughput,
    pub net: Net,
    pub availability: Availability,
    pub network: Network,
    pub cpu: Cpu,
    /// Jepsen's worst realtime lag; `None` when setup failed and nothing was analysed.
    pub lag: Option<Lag>,
    pub timeline: Timeline,
}

/// Measures a run.
pub fn measure(cfg: &Config, out: &Outcome) -> Results {
    let h = &out.history;
    let tl = &out.timeline;
    let mut stats = Stats::default();
    for op in &h.ops {
        let c = stats.by_f.entry(op.f()).or_default();
        match op.kind {
            OpType::Ok => c.ok += 1,
            OpType::Fail => c.fail += 1,
            _ => c.info += 1,
        }
    }
    stats.total = stats.by_f.values().fold(Counts::default(), |a, c| Counts {
        ok: a.ok + c.ok,
        fail: a.fail + c.fail,
        info: a.info + c.info,
    });

    let mut by_f: BTreeMap<F, Vec<u64>> = BTreeMap::new();
    for s in samples(h).filter(|s| s.kind == OpType::Ok && s.f != F::Crash) {
        by_f.entry(s.f).or_default().push(s.latency);
    }
    let latency = by_f
        .into_iter()
        .map(|(f, mut v)| {
            v.sort_unstable();
            let q = Quantiles {
                count: v.len(),
                p50: quantile(&v, 0.5),
                p95: quantile(&v, 0.95),
                p99: quantile(&v, 0.99),
                max: quantile(&v, 1.0),
            };
            (f, q)
        })
        .collect();

    let in_main = |s: &Sample| s.start >= tl.main_start && s.start < tl.main_end && s.f != F::Crash;
    let (mut ops, mut ok_ops) = (0, 0);
    for s in samples(h).filter(in_main) {
        ops += 1;
        ok_ops += usize::from(s.kind == OpType::Ok);
    }
    let throughput = Throughput {
        main_phase: tl.main_end.saturating_sub(tl.main_start),
        ops,
        ok_ops,
        target_rate: cfg.opts.rate,
    };

    let invocations =
        h.ops.iter().filter(|o| h.invoked_at(o).is_some()).count() + h.unfinished().len();
    let oks = h.ops.iter().filter(|o| o.kind == OpType::Ok).count();
    Results {
        stats,
        latency,
        throughput,
        net: Net {
            stats: out.net,
            invocations,
        },
        availability: Availability {
            oks,
            invocations,
            expected: cfg.availability,
        },
        network: Network {
            latency_ms: cfg.latency.mean_ms,
            latency_dist: cfg.opts.latency_dist.clone(),
            partitioned: out.net.partitioned,
            dropped_replies: out.dropped_replies,
        },
        cpu: Cpu {
            runner: out.runner_cpu,
            nodes: cfg
                .node_ids
                .iter()
                .cloned()
                .zip(out.node_cpu.iter().copied())
                .collect(),
        },
        lag: out
            .setup_error
            .is_none()
            .then(|| lag::worst_realtime_lag(h)),
        timeline: tl.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), 50);
        assert_eq!(quantile(&v, 0.99), 99);
        assert_eq!(quantile(&v, 1.0), 100);
        assert_eq!(quantile(&[], 0.5), 0);
        assert_eq!(quantile(&[7], 0.01), 7);
    }
}
