//! The verdict: every checker's validity and how they combine, decided here and only here.
//! The renderers (`results.json` and the console summary in [`report`](crate::report),
//! `results.edn` in [`edn`](crate::edn), `index.html` in [`plot`](crate::plot)) show a
//! [`Verdict`]; none of them judges.
//!
//! As Maelstrom composes them: the kafka workload checker, Jepsen's stats checker,
//! Maelstrom's availability checker, and the checkers that only count or draw (`:net`,
//! `:perf`, `:timeline`, `:exceptions`), which are always valid. Ours adds the node
//! checker: a protocol fault is fatal here (README, "Differences"). Merging follows
//! Jepsen: `false` beats `unknown` beats `true`.

use std::collections::BTreeMap;

use crate::checker::{self, Validity, WorkloadResult};
use crate::cli;
use crate::history::{F, History};
use crate::results::{Availability, Results, Stats};
use crate::runner::NodeFault;

/// Every part of a run's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The run's: every part below merged, or unknown when setup failed.
    pub valid: Validity,
    /// The kafka checker's; `None` when no analysis ran (setup failed).
    pub workload: Option<Validity>,
    /// Jepsen's stats checker: `assign`, `poll` and `send` each have an ok op.
    pub stats: Validity,
    /// The stats checker per `f`: valid when the `f` has an ok op.
    pub stats_by_f: BTreeMap<F, Validity>,
    /// Ours: no node broke the protocol (a dead stdout) or crashed.
    pub node: Validity,
    /// Maelstrom's availability checker, against `--availability`.
    pub availability: Validity,
    /// `:net`, `:perf` (its latency and rate graphs), `:timeline` and `:exceptions`:
    /// they only count or draw, so they are always valid, as in Maelstrom.
    pub net: Validity,
    pub perf: Validity,
    pub timeline: Validity,
    pub exceptions: Validity,
}

/// Judges a run: its history, what it measured, the kafka checker's result (`None` when
/// no analysis ran), its node faults and whether setup failed.
pub fn judge(
    history: &History,
    results: &Results,
    workload: Option<&WorkloadResult>,
    faults: &[NodeFault],
    setup_failed: bool,
) -> Verdict {
    let workload = workload.map(|w| w.valid);
    let stats = checker::stats_valid(history);
    let node = if faults.is_empty() {
        Validity::True
    } else {
        Validity::False
    };
    let availability = availability(&results.availability);
    let valid = if setup_failed {
        // Without a working setup there is no history to judge, whatever else happened.
        Validity::Unknown
    } else {
        workload
            .unwrap_or(Validity::Unknown)
            .merge(stats)
            .merge(node)
            .merge(availability)
    };
    Verdict {
        valid,
        workload,
        stats,
        stats_by_f: stats_by_f(&results.stats),
        node,
        availability,
        net: Validity::True,
        perf: Validity::True,
        timeline: Validity::True,
        exceptions: Validity::True,
    }
}

/// A run interrupted before its phases ended is at best unknown: what it did not get to
/// was not tested. Anomalies it did record still make it invalid.
pub fn unfinished(v: &mut Verdict) {
    v.valid = v.valid.merge(Validity::Unknown);
}

/// Maelstrom's availability checker: always reported, judged only against
/// `--availability` (`total`: every invocation ok).
fn availability(a: &Availability) -> Validity {
    match a.expected {
        None => Validity::True,
        Some(cli::Availability::Total) if a.oks == a.invocations => Validity::True,
        Some(cli::Availability::AtLeast(min)) if a.ok_fraction() >= min => Validity::True,
        Some(_) => Validity::False,
    }
}

fn stats_by_f(stats: &Stats) -> BTreeMap<F, Validity> {
    stats
        .by_f
        .iter()
        .map(|(f, c)| {
            let v = if c.ok > 0 {
                Validity::True
            } else {
                Validity::False
            };
            (*f, v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::Anomaly;
    use crate::cli;
    use crate::history::{MsgId, OpType, OpValue};
    use crate::results::Counts;

    /// A history with one ok op of each `f` that the stats checker wants.
    fn healthy() -> History {
        let mut h = History::default();
        let k = h.tables.key("0");
        let ops = [
            OpValue::Send {
                key: k,
                offset: Some(0),
                msg: MsgId(0),
            },
            OpValue::Poll(Some(Box::new([]))),
            OpValue::Assign {
                keys: std::sync::Arc::new(vec![k]),
                seek_to_beginning: false,
            },
        ];
        for (i, v) in ops.into_iter().enumerate() {
            h.push(i as u64, 0, OpType::Invoke, v.clone(), None);
            h.push(i as u64, 0, OpType::Ok, v, None);
        }
        h
    }

    fn results(expected: Option<cli::Availability>, oks: usize, invocations: usize) -> Results {
        let cfg = cli::parse_args(["kafka-workload", "test", "--bin", "x"]).unwrap();
        let out = crate::runner::Outcome {
            history: History::default(),
            net: Default::default(),
            dropped_replies: 0,
            journal: Vec::new(),
            server_sends: Vec::new(),
            faults: Vec::new(),
            exits: Vec::new(),
            setup_error: None,
            timeline: Default::default(),
            interrupted: None,
            runner_cpu: None,
            node_cpu: Vec::new(),
        };
        let mut r = crate::results::measure(&cfg, &out);
        r.availability = Availability {
            oks,
            invocations,
            expected,
        };
        r.stats.by_f.insert(
            F::Send,
            Counts {
                ok: 1,
                fail: 0,
                info: 0,
            },
        );
        r.stats.by_f.insert(
            F::Poll,
            Counts {
                ok: 0,
                fail: 2,
                info: 0,
            },
        );
        r
    }

    fn workload(valid: Validity) -> WorkloadResult {
        let mut errors = BTreeMap::new();
        if valid == Validity::False {
            errors.insert("lost-write", Anomaly::default());
        }
        WorkloadResult { valid, errors }
    }

    fn fault() -> NodeFault {
        NodeFault {
            node: "n0".into(),
            kind: "invalid-dest".into(),
            detail: String::new(),
            time: 0,
        }
    }

    #[test]
    fn every_part_merges_false_over_unknown_over_true() {
        let (h, r) = (healthy(), results(None, 1, 1));
        let ok = workload(Validity::True);
        let v = judge(&h, &r, Some(&ok), &[], false);
        assert_eq!(
            (v.valid, v.workload, v.stats, v.node, v.availability),
            (
                Validity::True,
                Some(Validity::True),
                Validity::True,
                Validity::True,
                Validity::True
            )
        );
        let unknown = workload(Validity::Unknown);
        assert_eq!(
            judge(&h, &r, Some(&unknown), &[], false).valid,
            Validity::Unknown
        );
        // A node fault is fatal, and false beats the workload's unknown.
        let v = judge(&h, &r, Some(&unknown), &[fault()], false);
        assert_eq!((v.node, v.valid), (Validity::False, Validity::False));
        let bad = workload(Validity::False);
        assert_eq!(judge(&h, &r, Some(&bad), &[], false).valid, Validity::False);
        // No ok op of one f: the stats checker fails the run.
        let mut h2 = History::default();
        h2.tables.key("0");
        for line in healthy().lines() {
            let kind = match *line.value {
                OpValue::Assign { .. } if line.kind == OpType::Ok => OpType::Fail,
                _ => line.kind,
            };
            let value = line.value.into_owned();
            h2.push(line.time, u64::from(line.process), kind, value, None);
        }
        let v = judge(&h2, &r, Some(&ok), &[], false);
        assert_eq!((v.stats, v.valid), (Validity::False, Validity::False));
    }

    #[test]
    fn a_failed_setup_is_unknown_whatever_else_happened() {
        let (h, r) = (healthy(), results(None, 1, 1));
        let v = judge(&h, &r, None, &[fault()], true);
        assert_eq!((v.valid, v.workload), (Validity::Unknown, None));
        assert_eq!(v.node, Validity::False, "the part is still reported");
    }

    #[test]
    fn availability_is_judged_only_against_what_was_expected() {
        let h = healthy();
        let ok = workload(Validity::True);
        let judged =
            |expected, oks, n| judge(&h, &results(expected, oks, n), Some(&ok), &[], false);
        assert_eq!(judged(None, 0, 10).availability, Validity::True);
        let total = Some(cli::Availability::Total);
        assert_eq!(judged(total, 10, 10).availability, Validity::True);
        let v = judged(total, 9, 10);
        assert_eq!(
            (v.availability, v.valid),
            (Validity::False, Validity::False)
        );
        let most = Some(cli::Availability::AtLeast(0.9));
        assert_eq!(judged(most, 9, 10).availability, Validity::True);
        assert_eq!(judged(most, 8, 10).availability, Validity::False);
    }

    #[test]
    fn the_counting_checkers_are_always_valid_and_stats_are_judged_per_f() {
        let v = judge(&healthy(), &results(None, 1, 1), None, &[], false);
        for part in [v.net, v.perf, v.timeline, v.exceptions] {
            assert_eq!(part, Validity::True);
        }
        assert_eq!(v.stats_by_f[&F::Send], Validity::True);
        assert_eq!(v.stats_by_f[&F::Poll], Validity::False);
    }
}
