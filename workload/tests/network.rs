//! The simulated network, end to end: latency is applied, the nemesis is recorded and healed
//! before the recovery sleep, and a zero recovery sleep reports zero.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::util::{Run, TempDir, run, workload_bin};

/// The multi-node fixture in `mode` on 2 nodes, with `extra` runner options.
fn run_cluster(mode: &str, extra: &[&str]) -> Run {
    let mut args = vec!["--node-count", "2", "--rate", "200", "--seed", "11"];
    args.extend_from_slice(extra);
    run(
        Path::new(env!("CARGO_BIN_EXE_fixture-cluster")),
        &args,
        &["--mode", mode],
    )
}

#[test]
fn latency_delays_forwarded_requests() {
    // Two nodes: about half the keys are owned by the other node, so some sends are
    // forwarded, and a forwarded send cannot complete before two one-way latencies. (No
    // partitions here: under them, how many forwarded sends complete depends on when the
    // partitions fall against the machine's speed.)
    let run = run_cluster("owner", &["--latency", "40"]);
    assert_eq!(run.code, Some(0), "{}", run.explain());
    let max_send_ms = run.results["latency-ms"]["send"]["max"].as_f64().unwrap();
    assert!(max_send_ms >= 80.0, "{max_send_ms} ms: {}", run.explain());
    assert!(run.results["net"]["servers"]["msg-count"].as_u64().unwrap() > 0);
}

#[test]
fn partitions_are_recorded_shaded_and_healed_before_the_recovery_sleep() {
    // The lin-kv design: nodes talk only to `lin-kv`, which partitions never cut, so the run is
    // valid wherever the partitions fall, however slow the machine. (The forwarding design
    // under partitions is in `cluster.rs`.)
    let run = run_cluster(
        "lin-kv",
        &[
            "--latency",
            "5",
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "0.3",
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.explain());

    let history = std::fs::read_to_string(run.dir.join("history.jsonl")).unwrap();
    let nemesis: Vec<Value> = history
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|op| op["process"] == "nemesis")
        .collect();
    let starts = nemesis
        .iter()
        .filter(|op| op["f"] == "start-partition")
        .count();
    // Waits are under 2 × 0.3 s, so the 2 s main phase starts at least two partitions.
    assert!(starts >= 2, "{nemesis:?}");
    // Each operation is an invocation and a completion; the last is the final heal, which
    // comes before the recovery sleep.
    let last = nemesis.last().unwrap();
    assert_eq!(last["f"], "stop-partition");
    assert_eq!(last["value"], "network-healed");
    let main_end = run.results["timeline-seconds"]["main-end"]
        .as_f64()
        .unwrap();
    assert!(last["time"].as_f64().unwrap() / 1e9 <= main_end + 1e-3);
    let svg = std::fs::read_to_string(run.dir.join("latency.svg")).unwrap();
    assert!(svg.contains("<title>partition "), "no partition shaded");
    let html = std::fs::read_to_string(run.dir.join("index.html")).unwrap();
    assert!(html.contains("href=\"messages.svg\"") && html.contains("href=\"results.edn\""));
}

#[test]
fn a_zero_recovery_sleep_is_reported_as_zero() {
    // The phase lines go to stderr when the progress bar is on and stderr is not a terminal.
    let store = TempDir::new("network");
    let out = Command::new(workload_bin())
        .args(["test", "-w", "kafka", "--bin"])
        .arg(Path::new(env!("CARGO_BIN_EXE_fixture-node")))
        .args(["--node-count", "1", "--time-limit", "0.5", "--rate", "100"])
        .args([
            "--recovery-sleep",
            "0",
            "--final-time-limit",
            "1",
            "--store",
        ])
        .arg(&store.0)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("recovery phase (0.0 s)"),
        "the recovery phase's length underflowed:\n{stderr}"
    );
}
