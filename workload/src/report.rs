//! Results: stats, latency, throughput and the verdict, as `results.json` and as the
//! console summary that ends with Maelstrom's verdict line.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::checker::{self, Validity, WorkloadResult};
use crate::cli::{Availability, Config};
use crate::history::{F, History, OpType, OpValue};
use crate::runner::Outcome;
use crate::text::clip;

pub const VALID_LINE: &str = "Everything looks good! ヽ('ー`)ノ";
pub const INVALID_LINE: &str = "Analysis invalid! (ﾉಥ益ಥ）ﾉ ┻━┻";
pub const UNKNOWN_LINE: &str = "Errors occurred during analysis, but no anomalies found. ಠ~ಠ";

/// One completed operation's latency.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub f: F,
    pub kind: OpType,
    /// Invocation time, ns since the run's origin.
    pub start: u64,
    pub latency: u64,
}

/// Pairs each completion with its process's invocation.
pub fn samples(h: &History) -> Vec<Sample> {
    let mut open: HashMap<u64, u64> = HashMap::new();
    let mut out = Vec::with_capacity(h.ops.len() / 2);
    for op in &h.ops {
        if op.kind == OpType::Invoke {
            open.insert(op.process, op.time);
        } else if let Some(start) = open.remove(&op.process)
            && !matches!(
                op.value,
                OpValue::Assign {
                    seek_to_beginning: true,
                    ..
                }
            )
        {
            // (Final-phase assigns make no RPC: their zero latency would only mislead.)
            out.push(Sample {
                f: op.f(),
                kind: op.kind,
                start,
                latency: op.time.saturating_sub(start),
            });
        }
    }
    out
}

/// The `q` quantile (nearest rank) of sorted values.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The finished report.
#[derive(Debug)]
pub struct Report {
    pub valid: Validity,
    pub json: Value,
    pub summary: String,
}

pub fn verdict_line(v: Validity) -> &'static str {
    match v {
        Validity::True => VALID_LINE,
        Validity::False => INVALID_LINE,
        Validity::Unknown => UNKNOWN_LINE,
    }
}

fn ms(ns: u64) -> f64 {
    (ns as f64 / 1e3).round() / 1000.0
}

pub fn build(
    cfg: &Config,
    out: &Outcome,
    workload: Option<&WorkloadResult>,
    samples: &[Sample],
) -> Report {
    let h = &out.history;
    let tl = &out.timeline;

    // Counts by f and outcome.
    let mut by_f: BTreeMap<F, [u64; 3]> = BTreeMap::new();
    for op in h.ops.iter().filter(|o| o.kind != OpType::Invoke) {
        let c = by_f.entry(op.f()).or_default();
        match op.kind {
            OpType::Ok => c[0] += 1,
            OpType::Fail => c[1] += 1,
            _ => c[2] += 1,
        }
    }
    let stats_valid = checker::stats_valid(h);
    let count_json = |c: &[u64; 3]| json!({"count": c.iter().sum::<u64>(), "ok-count": c[0], "fail-count": c[1], "info-count": c[2]});
    let total = by_f
        .values()
        .fold([0u64; 3], |a, c| [a[0] + c[0], a[1] + c[1], a[2] + c[2]]);
    let mut stats = count_json(&total);
    stats["by-f"] = by_f
        .iter()
        .map(|(f, c)| (f.name().to_owned(), count_json(c)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    stats["valid"] = stats_valid.to_json();

    // Latency of ok ops, per f.
    let mut lat: BTreeMap<F, Vec<u64>> = BTreeMap::new();
    for s in samples
        .iter()
        .filter(|s| s.kind == OpType::Ok && s.f != F::Crash)
    {
        lat.entry(s.f).or_default().push(s.latency);
    }
    let mut latency = serde_json::Map::new();
    for (f, v) in &mut lat {
        v.sort_unstable();
        latency.insert(
            f.name().to_owned(),
            json!({"count": v.len(), "p50": ms(quantile(v, 0.5)), "p95": ms(quantile(v, 0.95)),
                   "p99": ms(quantile(v, 0.99)), "max": ms(quantile(v, 1.0))}),
        );
    }

    // Throughput over the main phase.
    let main_secs = (tl.main_end.saturating_sub(tl.main_start)) as f64 / 1e9;
    let in_main =
        |s: &&Sample| s.start >= tl.main_start && s.start < tl.main_end && s.f != F::Crash;
    let main_ops = samples.iter().filter(in_main).count() as f64;
    let main_ok = samples
        .iter()
        .filter(in_main)
        .filter(|s| s.kind == OpType::Ok)
        .count() as f64;
    let per_sec = |n: f64| {
        if main_secs > 0.0 {
            (n / main_secs * 10.0).round() / 10.0
        } else {
            0.0
        }
    };
    let throughput = json!({
        "main-phase-seconds": (main_secs * 1000.0).round() / 1000.0,
        "ops-per-sec": per_sec(main_ops),
        "ok-ops-per-sec": per_sec(main_ok),
        "target-rate": cfg.opts.rate,
    });

    // Message counts, as Maelstrom's :net: every message has its own id, so the distinct
    // message count is the send count; msgs-per-op divides by every client invocation.
    let n = out.net;
    let invocations = h.ops.iter().filter(|o| o.kind == OpType::Invoke).count();
    let round2 = |x: f64| (x * 100.0).round() / 100.0;
    let per_op = |msgs: u64| {
        (invocations > 0).then(|| (msgs as f64 / invocations as f64 * 1e6).round() / 1e6)
    };
    let counts = |c: crate::network::Counts, per_op: Option<f64>| {
        let mut j = json!({"send-count": c.sends, "recv-count": c.recvs, "msg-count": c.sends});
        if let Some(p) = per_op {
            j["msgs-per-op"] = json!(p);
        }
        j
    };
    let net = json!({
        "all": counts(n.all(), per_op(n.all().sends)),
        "clients": counts(n.clients, None),
        "servers": counts(n.servers, per_op(n.servers.sends)),
        "valid": true,
    });

    // Maelstrom's availability checker: ok completions over invocations, always reported,
    // judged only against --availability.
    let oks = h.ops.iter().filter(|o| o.kind == OpType::Ok).count();
    let ok_fraction = if invocations == 0 {
        1.0
    } else {
        oks as f64 / invocations as f64
    };
    let availability_valid = match cfg.availability {
        None => Validity::True,
        Some(Availability::Total) if oks == invocations => Validity::True,
        Some(Availability::AtLeast(a)) if ok_fraction >= a => Validity::True,
        Some(_) => Validity::False,
    };
    let availability = json!({
        "valid": availability_valid.to_json(),
        "ok-fraction": (ok_fraction * 1e6).round() / 1e6,
        "expected": match cfg.availability {
            None => Value::Null,
            Some(Availability::Total) => json!("total"),
            Some(Availability::AtLeast(a)) => json!(a),
        },
    });
    let network = json!({
        "latency-ms": cfg.latency.mean_ms,
        "latency-dist": cfg.opts.latency_dist,
        "partitioned-messages": n.partitioned,
        "dropped-replies": out.dropped_replies,
    });

    // The node checker: protocol-level faults are fatal here (see README, "Differences").
    let node_valid = if out.faults.is_empty() {
        Validity::True
    } else {
        Validity::False
    };
    let faults: Vec<Value> = out
        .faults
        .iter()
        .map(|f| json!({"node": f.node, "kind": f.kind, "detail": f.detail, "time": f.time}))
        .collect();
    let exits: Vec<Value> = out
        .exits
        .iter()
        .filter(|e| e.crashed.is_some())
        .map(|e| {
            json!({"node": e.name, "status": e.crashed.map(|s| s.to_string()),
                        "stdout-tail": e.stdout_tail, "stderr-tail": e.stderr_tail})
        })
        .collect();

    let workload_valid = workload.map_or(Validity::Unknown, |w| w.valid);
    let valid = if out.setup_error.is_some() {
        // Without a working setup there is no history to judge, whatever else happened.
        Validity::Unknown
    } else {
        workload_valid
            .merge(stats_valid)
            .merge(node_valid)
            .merge(availability_valid)
    };

    let cpu = json!({
        "runner-seconds": out.runner_cpu.map(round2),
        "node-seconds": cfg.node_ids.iter().zip(&out.node_cpu).map(|(n, c)| (n.clone(), json!(c.map(round2)))).collect::<serde_json::Map<_, _>>(),
    });
    let o = &cfg.opts;
    let json = json!({
        "valid": valid.to_json(),
        "verdict": verdict_line(valid),
        "setup-error": out.setup_error.as_ref().map(ToString::to_string),
        "test": {
            "workload": o.workload, "bin": o.bin, "args": o.args, "node-ids": cfg.node_ids,
            "concurrency": cfg.concurrency, "time-limit": o.time_limit, "rate": o.rate,
            "key-count": o.key_count, "max-writes-per-key": o.max_writes_per_key, "seed": cfg.seed,
            "assign-probability": cfg.assign_p, "recovery-sleep": o.recovery_sleep,
            "final-time-limit": o.final_time_limit, "rpc-timeout-ms": o.rpc_timeout,
            "init-timeout": o.init_timeout,
            "latency": o.latency, "latency-dist": o.latency_dist,
            "nemesis": o.nemesis, "nemesis-interval": o.nemesis_interval,
            "command": cfg.command,
        },
        "workload": workload.map(|w| {
            let mut j = w.to_json();
            j["worst-realtime-lag"] = crate::lag::to_json(&crate::lag::worst_realtime_lag(h), h);
            j
        }),
        "stats": stats,
        "node": {"valid": node_valid.to_json(), "faults": faults, "crashes": exits},
        "latency-ms": latency,
        "throughput": throughput,
        "net": net,
        "availability": availability,
        "network": network,
        "cpu": cpu,
        "timeline-seconds": {
            "main-start": tl.main_start as f64 / 1e9, "main-end": tl.main_end as f64 / 1e9,
            "final-start": tl.final_start as f64 / 1e9, "final-end": tl.final_end as f64 / 1e9,
            "end": tl.end as f64 / 1e9,
        },
    });
    let summary = summarize(cfg, out, &json, workload, &by_f, valid);
    Report {
        valid,
        json,
        summary,
    }
}

fn summarize(
    cfg: &Config,
    out: &Outcome,
    j: &Value,
    workload: Option<&WorkloadResult>,
    by_f: &BTreeMap<F, [u64; 3]>,
    valid: Validity,
) -> String {
    let mut s = String::new();
    let o = &cfg.opts;
    let _ = writeln!(
        s,
        "\nkafka test: {} node(s) {}, concurrency {}, rate {}/s, time limit {} s, seed {}",
        cfg.node_ids.len(),
        cfg.node_ids.join(","),
        cfg.concurrency,
        o.rate,
        o.time_limit,
        cfg.seed
    );
    if let Some(e) = &out.setup_error {
        let _ = writeln!(s, "\nSetup failed: {e}");
    }
    if !by_f.is_empty() {
        let _ = writeln!(
            s,
            "\n{:<8} {:>9} {:>9} {:>7} {:>7}",
            "op", "count", "ok", "fail", "info"
        );
    }
    for (f, c) in by_f {
        let _ = writeln!(
            s,
            "{:<8} {:>9} {:>9} {:>7} {:>7}",
            f.name(),
            c.iter().sum::<u64>(),
            c[0],
            c[1],
            c[2]
        );
    }
    if let Some(lat) = j["latency-ms"].as_object().filter(|m| !m.is_empty()) {
        let _ = writeln!(
            s,
            "\n{:<8} {:>9} {:>9} {:>9} {:>9}   (ms, ok ops)",
            "latency", "p50", "p95", "p99", "max"
        );
        for (f, l) in lat {
            let q = |k: &str| l[k].as_f64().unwrap_or(0.0);
            let _ = writeln!(
                s,
                "{:<8} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
                f,
                q("p50"),
                q("p95"),
                q("p99"),
                q("max")
            );
        }
    }
    let t = &j["throughput"];
    let _ = writeln!(
        s,
        "\nthroughput: {} ops/s ({} ok ops/s) over the {} s main phase, target {}/s",
        t["ops-per-sec"], t["ok-ops-per-sec"], t["main-phase-seconds"], t["target-rate"]
    );
    let _ = writeln!(
        s,
        "msgs-per-op: {} (servers {}), cpu: runner {} s, nodes {}",
        j["net"]["all"]["msgs-per-op"],
        j["net"]["servers"]["msgs-per-op"],
        j["cpu"]["runner-seconds"],
        j["cpu"]["node-seconds"]
    );
    let a = &j["availability"];
    if out.setup_error.is_none() {
        let _ = writeln!(
            s,
            "availability: {} of invocations ok{}, worst realtime lag: {} s",
            a["ok-fraction"],
            if a["expected"].is_null() {
                String::new()
            } else {
                format!(" (expected {})", a["expected"])
            },
            j["workload"]["worst-realtime-lag"]["lag"]
        );
    }
    if cfg.partitions || cfg.latency.mean_ms > 0 {
        let n = &j["network"];
        let _ = writeln!(
            s,
            "network: {} ms {} latency, {} message(s) dropped by partitions",
            n["latency-ms"],
            n["latency-dist"].as_str().unwrap_or_default(),
            n["partitioned-messages"]
        );
    }
    let _ = writeln!(
        s,
        "\nworkload: {}   stats: {}   node: {}   availability: {}",
        j["workload"]["valid"], j["stats"]["valid"], j["node"]["valid"], a["valid"]
    );
    if let Some(w) = workload {
        for (name, a) in &w.errors {
            let _ = writeln!(
                s,
                "  {name}: {} case(s), e.g. {}",
                a.count,
                a.examples
                    .first()
                    .map(|e| clip(&e.to_string(), 400))
                    .unwrap_or_default()
            );
        }
    }
    for f in &out.faults {
        let _ = writeln!(s, "  node {} {}: {}", f.node, f.kind, f.detail);
    }
    for e in out.exits.iter().filter(|e| e.crashed.is_some()) {
        let _ = writeln!(
            s,
            "\nNode {} crashed with {}. Last lines of its stderr:",
            e.name,
            e.crashed.map(|s| s.to_string()).unwrap_or_default()
        );
        for l in &e.stderr_tail {
            let _ = writeln!(s, "    {l}");
        }
        if !e.stdout_tail.is_empty() {
            let _ = writeln!(s, "  and of its stdout:");
            for l in &e.stdout_tail {
                let _ = writeln!(s, "    {}", clip(l, 300));
            }
        }
    }
    let _ = writeln!(s, "\n{}", verdict_line(valid));
    s
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
