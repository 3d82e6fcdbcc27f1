//! Rendering: a run's [`Results`] and [`Verdict`] as `results.json` and as the console
//! summary that ends with Maelstrom's verdict line. Nothing here measures or judges: the
//! numbers come from [`results`](crate::results), every validity from
//! [`verdict`](crate::verdict), and the summary is written from those types, not read
//! back from the JSON.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::checker::{Validity, WorkloadResult};
use crate::cli::{self, Config};
use crate::history::F;
use crate::results::{Quantiles, Results};
use crate::runner::Outcome;
use crate::text::clip;
use crate::verdict::Verdict;

pub const VALID_LINE: &str = "Everything looks good! ヽ('ー`)ノ";
pub const INVALID_LINE: &str = "Analysis invalid! (ﾉಥ益ಥ）ﾉ ┻━┻";
pub const UNKNOWN_LINE: &str = "Errors occurred during analysis, but no anomalies found. ಠ~ಠ";

/// The rendered report.
#[derive(Debug)]
pub struct Report {
    /// `results.json`'s content.
    pub json: Value,
    /// The console summary, ending with the verdict line.
    pub summary: String,
}

pub fn verdict_line(v: Validity) -> &'static str {
    match v {
        Validity::True => VALID_LINE,
        Validity::False => INVALID_LINE,
        Validity::Unknown => UNKNOWN_LINE,
    }
}

/// Renders a run: its outcome, what it measured, the kafka checker's result (`None` when
/// no analysis ran) and its verdict.
pub fn render(
    cfg: &Config,
    out: &Outcome,
    workload: Option<&WorkloadResult>,
    results: &Results,
    verdict: &Verdict,
) -> Report {
    Report {
        json: results_json(cfg, out, workload, results, verdict),
        summary: summary(cfg, out, workload, results, verdict),
    }
}

/// A history `check` read from elsewhere (Maelstrom's), with no run of ours behind it:
/// no nodes are known.
fn foreign(cfg: &Config) -> bool {
    cfg.node_ids.is_empty()
}

/// ns as ms, to the µs.
fn ms(ns: u64) -> f64 {
    (ns as f64 / 1e3).round() / 1000.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// The main phase's length in seconds, to the ms.
fn main_phase_seconds(r: &Results) -> f64 {
    (r.throughput.main_phase as f64 / 1e9 * 1000.0).round() / 1000.0
}

/// Operations per second of the main phase, to a tenth.
fn per_sec(r: &Results, n: usize) -> f64 {
    let secs = r.throughput.main_phase as f64 / 1e9;
    if secs > 0.0 {
        (n as f64 / secs * 10.0).round() / 10.0
    } else {
        0.0
    }
}

/// Messages per client invocation, to six places, as `results.json` writes it.
pub(crate) fn msgs_per_op(r: &Results, msgs: u64) -> Option<f64> {
    r.net.per_op(msgs).map(round6)
}

fn ok_fraction(r: &Results) -> f64 {
    round6(r.availability.ok_fraction())
}

fn expected(r: &Results) -> Value {
    match r.availability.expected {
        None => Value::Null,
        Some(cli::Availability::Total) => json!("total"),
        Some(cli::Availability::AtLeast(a)) => json!(a),
    }
}

fn node_cpu(r: &Results) -> Value {
    r.cpu
        .nodes
        .iter()
        .map(|(n, c)| (n.clone(), json!(c.map(round2))))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// `results.json`: keys as Maelstrom's `results.edn`, in kebab-case (README, "The store").
fn results_json(
    cfg: &Config,
    out: &Outcome,
    workload: Option<&WorkloadResult>,
    r: &Results,
    verdict: &Verdict,
) -> Value {
    let h = &out.history;
    let tl = &r.timeline;
    let count_json = |c: &crate::results::Counts| json!({"count": c.count(), "ok-count": c.ok, "fail-count": c.fail, "info-count": c.info});
    let mut stats = count_json(&r.stats.total);
    stats["by-f"] = r
        .stats
        .by_f
        .iter()
        .map(|(f, c)| (f.name().to_owned(), count_json(c)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    stats["valid"] = verdict.stats.to_json();

    let latency: serde_json::Map<String, Value> = r
        .latency
        .iter()
        .map(|(f, q)| {
            let j = json!({"count": q.count, "p50": ms(q.p50), "p95": ms(q.p95),
                           "p99": ms(q.p99), "max": ms(q.max)});
            (f.name().to_owned(), j)
        })
        .collect();

    let throughput = json!({
        "main-phase-seconds": main_phase_seconds(r),
        "ops-per-sec": per_sec(r, r.throughput.ops),
        "ok-ops-per-sec": per_sec(r, r.throughput.ok_ops),
        "target-rate": r.throughput.target_rate,
    });

    // Message counts, as Maelstrom's :net: every message has its own id, so the distinct
    // message count is the send count; msgs-per-op divides by every client invocation.
    let n = r.net.stats;
    let counts = |c: crate::network::Counts, per_op: Option<f64>| {
        let mut j = json!({"send-count": c.sends, "recv-count": c.recvs, "msg-count": c.sends});
        if let Some(p) = per_op {
            j["msgs-per-op"] = json!(p);
        }
        j
    };
    let net = json!({
        "all": counts(n.all(), msgs_per_op(r, n.all().sends)),
        "clients": counts(n.clients, None),
        "servers": counts(n.servers, msgs_per_op(r, n.servers.sends)),
        "valid": verdict.net.to_json(),
    });

    let availability = json!({
        "valid": verdict.availability.to_json(),
        "ok-fraction": ok_fraction(r),
        "expected": expected(r),
    });
    let network = json!({
        "latency-ms": r.network.latency_ms,
        "latency-dist": r.network.latency_dist,
        "partitioned-messages": r.network.partitioned,
        "dropped-replies": r.network.dropped_replies,
    });

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

    let cpu = json!({
        "runner-seconds": r.cpu.runner.map(round2),
        "node-seconds": node_cpu(r),
    });
    let o = &cfg.opts;
    let test = if foreign(cfg) {
        json!({"workload": o.workload, "command": cfg.command, "concurrency": cfg.concurrency})
    } else {
        json!({
            "workload": o.workload, "bin": o.bin, "args": o.args, "node-ids": cfg.node_ids,
            "concurrency": cfg.concurrency, "time-limit": o.time_limit, "rate": o.rate,
            "key-count": o.key_count, "max-writes-per-key": o.max_writes_per_key, "seed": cfg.seed,
            "assign-probability": cfg.assign_p, "recovery-sleep": o.recovery_sleep,
            "final-time-limit": o.final_time_limit, "rpc-timeout-ms": o.rpc_timeout,
            "init-timeout": o.init_timeout,
            "latency": o.latency, "latency-dist": o.latency_dist,
            "nemesis": o.nemesis, "nemesis-interval": o.nemesis_interval,
            "command": cfg.command,
        })
    };
    json!({
        "valid": verdict.valid.to_json(),
        "verdict": verdict_line(verdict.valid),
        "setup-error": out.setup_error.as_ref().map(ToString::to_string),
        "interrupted": out.interrupted,
        "test": test,
        "workload": workload.map(|w| {
            let mut j = w.to_json();
            j["worst-realtime-lag"] = r.lag.map_or(Value::Null, |l| crate::lag::to_json(&l, h));
            j
        }),
        "stats": stats,
        "node": {"valid": verdict.node.to_json(), "faults": faults, "crashes": exits},
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
    })
}

/// A number as `results.json` writes it (`1000.0`, `null` for nothing), so the summary
/// reads as the file does.
fn num(x: Option<f64>) -> String {
    json!(x).to_string()
}

/// A run that never got to its main phase: what failed, once, and the last words of any
/// node that died; no counts, rates or checks, since nothing ran.
fn setup_failed(s: &mut String, e: &crate::runner::SetupError, out: &Outcome) {
    let _ = writeln!(s, "\nSetup failed: {e}");
    // Nodes that died alike (five copies of a binary that exits at once) in one line.
    let mut silent: Vec<(String, Vec<&str>)> = Vec::new();
    for x in out.exits.iter() {
        let Some(status) = x.crashed else { continue };
        if x.stderr_tail.is_empty() {
            let status = status.to_string();
            match silent.iter_mut().find(|(st, _)| *st == status) {
                Some((_, names)) => names.push(&x.name),
                None => silent.push((status, vec![&x.name])),
            }
        } else {
            let _ = writeln!(
                s,
                "{} ended with {status}; the last lines of its stderr:",
                x.name
            );
            for l in &x.stderr_tail {
                let _ = writeln!(s, "    {l}");
            }
        }
    }
    for (status, names) in silent {
        let _ = writeln!(
            s,
            "{} ended with {status}, writing nothing to stderr.",
            names.join(", ")
        );
    }
    let _ = writeln!(
        s,
        "\nNothing was tested, so no check ran; the store's `latest` still names the last run that did."
    );
}

/// The console summary: the test, the op counts, latency, throughput, the verdict's parts
/// with the anomalies and node faults, and the verdict line.
fn summary(
    cfg: &Config,
    out: &Outcome,
    workload: Option<&WorkloadResult>,
    r: &Results,
    verdict: &Verdict,
) -> String {
    let mut s = String::new();
    let o = &cfg.opts;
    if foreign(cfg) {
        let _ = writeln!(
            s,
            "\nkafka history recorded elsewhere ({}): at most {} operation(s) open at once; its options, nodes, network and CPU are unknown",
            cfg.command, cfg.concurrency
        );
    } else {
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
    }
    if let Some(signal) = out.interrupted {
        let _ = writeln!(
            s,
            "\nInterrupted by {signal}: the nodes were stopped, and what was recorded until then is judged below (sends no poll had read yet are not counted unseen: the final polls never ran); an unfinished run is at best unknown, and the store's `latest` still names the last run that finished."
        );
    }
    if let Some(e) = &out.setup_error {
        setup_failed(&mut s, e, out);
        let _ = writeln!(s, "\n{}", verdict_line(verdict.valid));
        return s;
    }
    if !r.stats.by_f.is_empty() {
        let _ = writeln!(
            s,
            "\n{:<8} {:>9} {:>9} {:>7} {:>7}",
            "op", "count", "ok", "fail", "info"
        );
    }
    for (f, c) in &r.stats.by_f {
        let _ = writeln!(
            s,
            "{:<8} {:>9} {:>9} {:>7} {:>7}",
            f.name(),
            c.count(),
            c.ok,
            c.fail,
            c.info
        );
    }
    if r.stats.by_f.contains_key(&F::Crash) {
        let _ = writeln!(
            s,
            "(crash: a client replaced on Maelstrom's schedule, as its generator does; not a node fault)"
        );
    }
    if !r.latency.is_empty() {
        let _ = writeln!(
            s,
            "\n{:<8} {:>9} {:>9} {:>9} {:>9}   (ms, ok ops)",
            "latency", "p50", "p95", "p99", "max"
        );
        // In the order results.json lists them: by name.
        let mut rows: Vec<(&F, &Quantiles)> = r.latency.iter().collect();
        rows.sort_by_key(|(f, _)| f.name());
        for (f, q) in rows {
            let _ = writeln!(
                s,
                "{:<8} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
                f.name(),
                ms(q.p50),
                ms(q.p95),
                ms(q.p99),
                ms(q.max)
            );
        }
    }
    let _ = writeln!(
        s,
        "\nthroughput: {} ops/s ({} ok ops/s) over the {} s main phase, target {}/s",
        num(Some(per_sec(r, r.throughput.ops))),
        num(Some(per_sec(r, r.throughput.ok_ops))),
        num(Some(main_phase_seconds(r))),
        num(Some(r.throughput.target_rate))
    );
    let n = r.net.stats;
    // A history from elsewhere carries no messages or CPU to report.
    let _ = (!foreign(cfg)).then(|| {
        writeln!(
            s,
            "msgs-per-op: {} (servers {}), cpu: runner {} s, nodes {}",
            num(msgs_per_op(r, n.all().sends)),
            num(msgs_per_op(r, n.servers.sends)),
            num(r.cpu.runner.map(round2)),
            node_cpu(r)
        )
    });
    if out.setup_error.is_none() {
        let expected = match expected(r) {
            Value::Null => String::new(),
            e => format!(" (expected {e})"),
        };
        let _ = writeln!(
            s,
            "availability: {} of invocations ok{expected}, worst realtime lag: {} s",
            num(Some(ok_fraction(r))),
            num(r.lag.map(|l| l.lag as f64 / 1e9)),
        );
    }
    if cfg.partitions || cfg.latency.mean_ms > 0 {
        let _ = writeln!(
            s,
            "network: {} ms {} latency, {} message(s) dropped by partitions",
            r.network.latency_ms, r.network.latency_dist, r.network.partitioned
        );
    }
    let _ = writeln!(
        s,
        "\nworkload: {}   stats: {}   node: {}   availability: {}",
        verdict.workload.map_or(Value::Null, Validity::to_json),
        verdict.stats.to_json(),
        verdict.node.to_json(),
        verdict.availability.to_json()
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
        let status = e.crashed.map(|s| s.to_string()).unwrap_or_default();
        if e.stderr_tail.is_empty() {
            let _ = writeln!(
                s,
                "\nNode {} crashed with {status}, writing nothing to its stderr.",
                e.name
            );
        } else {
            let _ = writeln!(
                s,
                "\nNode {} crashed with {status}. Last lines of its stderr:",
                e.name
            );
        }
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
    let _ = writeln!(s, "\n{}", verdict_line(verdict.valid));
    s
}
