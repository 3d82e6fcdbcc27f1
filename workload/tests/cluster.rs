//! Several nodes on the runner's network: the multi-node fixtures (`src/bin/fixture-cluster.rs`)
//! at 2 and 3 nodes, with latency, through `lin-kv`, and under partitions. Each correct
//! design must be judged valid, each broken one invalid with its anomaly named.

use std::path::Path;

use crate::util::{Run, run};

fn cluster_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_fixture-cluster"))
}

/// A short run of `mode` on `nodes` nodes; `extra` adds or overrides runner options.
fn run_mode(mode: &str, nodes: &str, extra: &[&str]) -> Run {
    let mut args = vec!["--node-count", nodes, "--rate", "300", "--seed", "7"];
    args.extend_from_slice(extra);
    run(cluster_bin(), &args, &["--mode", mode])
}

/// Exit 0 and valid, no fault of a node, and the run did what a kafka run does: sends, polls
/// and assigns were answered ok, and some poll read a message back. (How many depends on the
/// machine's speed, so only that there were some is asserted.)
fn assert_valid(run: &Run) {
    assert_eq!(run.code, Some(0), "{}", run.explain());
    let r = &run.results;
    assert_eq!(r["valid"], true, "{}", run.explain());
    assert_eq!(r["workload"]["valid"], true);
    assert!(run.node_faults().is_empty(), "{}", run.explain());
    for f in ["send", "poll", "assign"] {
        assert!(
            r["stats"]["by-f"][f]["ok-count"].as_u64().unwrap_or(0) > 0,
            "no ok {f}: {}",
            run.explain()
        );
    }
    assert!(
        run.polled_messages() > 0,
        "no poll read a message: {}",
        run.explain()
    );
}

/// Exit 1, Maelstrom's verdict line, and one of `anomalies` named in the results and the
/// summary.
fn assert_invalid_with_one_of(run: &Run, anomalies: &[&str]) {
    assert_eq!(run.code, Some(1), "{}", run.explain());
    assert!(
        run.stdout.contains("Analysis invalid! (ﾉಥ益ಥ）ﾉ ┻━┻"),
        "{}",
        run.explain()
    );
    let found = run.anomalies();
    let named: Vec<&&str> = anomalies
        .iter()
        .filter(|a| found.iter().any(|f| f == **a) && run.stdout.contains(**a))
        .collect();
    assert!(
        !named.is_empty(),
        "want one of {anomalies:?}, got {found:?}\n{}",
        run.explain()
    );
}

#[test]
fn owner_forwarding_is_valid_on_2_nodes() {
    assert_valid(&run_mode("owner", "2", &[]));
}

#[test]
fn owner_forwarding_is_valid_on_3_nodes_with_latency() {
    let run = run_mode(
        "owner",
        "3",
        &["--latency", "10", "--latency-dist", "uniform"],
    );
    assert_valid(&run);
    // Forwarding shows as server traffic.
    assert!(
        run.results["net"]["servers"]["msg-count"]
            .as_u64()
            .unwrap_or(0)
            > 0
    );
}

#[test]
fn owner_forwarding_is_valid_under_partitions() {
    let run = run_mode(
        "owner",
        "3",
        &[
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "0.5",
            "--latency",
            "5",
            "--time-limit",
            "3",
        ],
    );
    // Clients wait out unreachable owners (up to 4 s a request), so few ops complete; some
    // still must.
    assert_valid(&run);
    // The partitions did cut messages.
    let cut = &run.results["network"]["partitioned-messages"];
    assert!(cut.as_u64().unwrap_or(0) > 0, "{}", run.explain());
}

#[test]
fn lin_kv_cas_is_valid_on_2_nodes() {
    let run = run_mode("lin-kv", "2", &[]);
    assert_valid(&run);
    // Every send and poll went through the service: server traffic exceeds client traffic.
    let net = &run.results["net"];
    assert!(
        net["servers"]["msg-count"].as_u64() > net["clients"]["msg-count"].as_u64(),
        "{net}"
    );
    // results.edn in Maelstrom's layout, with the same verdict and counts.
    let edn = std::fs::read_to_string(run.dir.join("results.edn")).unwrap();
    assert!(
        edn.starts_with("{:perf {:latency-graph {:valid? true},"),
        "{edn}"
    );
    assert!(edn.ends_with(" :valid? true}\n"), "{edn}");
    let sends = format!(":send-count {},", net["all"]["send-count"]);
    assert!(edn.contains(&sends), "{sends} not in\n{edn}");
    // The Lamport diagram has a column for the service and arrows to and from it.
    let svg = std::fs::read_to_string(run.dir.join("messages.svg")).unwrap();
    assert!(svg.contains(">lin-kv</text>"), "no lin-kv column");
    assert!(
        svg.contains("<title>n0 → lin-kv {"),
        "no arrow from n0 to lin-kv"
    );
    assert!(
        svg.contains("<title>lin-kv → n1 {"),
        "no arrow from lin-kv to n1"
    );
}

#[test]
fn lin_kv_cas_is_valid_on_3_nodes_with_latency() {
    assert_valid(&run_mode("lin-kv", "3", &["--latency", "5"]));
}

#[test]
fn independent_offsets_are_inconsistent() {
    for nodes in ["2", "3"] {
        let run = run_mode("independent", nodes, &[]);
        assert_invalid_with_one_of(&run, &["inconsistent-offsets"]);
    }
}

#[test]
fn no_replication_skips() {
    for nodes in ["2", "3"] {
        let run = run_mode("no-replication", nodes, &[]);
        assert_invalid_with_one_of(
            &run,
            &["int-poll-skip", "poll-skip", "lost-write", "unseen"],
        );
    }
}

#[test]
fn a_poll_ahead_of_replication_skips() {
    for nodes in ["2", "3"] {
        let run = run_mode("early-poll", nodes, &["--latency", "5"]);
        assert_invalid_with_one_of(&run, &["int-poll-skip", "poll-skip", "lost-write"]);
    }
}

#[test]
fn a_forwarded_send_retried_without_deduplication_lands_twice_under_latency() {
    for nodes in ["2", "3"] {
        let run = run_mode("retry-dup", nodes, &["--latency", "20"]);
        assert_invalid_with_one_of(&run, &["duplicate"]);
    }
}

#[test]
fn a_message_to_an_unknown_node_kills_its_stdout() {
    for nodes in ["2", "3"] {
        let run = run_mode("unknown-node", nodes, &[]);
        assert_eq!(run.code, Some(1), "{}", run.explain());
        assert!(
            run.node_faults().iter().any(|k| k == "invalid-dest"),
            "{}",
            run.explain()
        );
        // The verdict says who sent what to whom.
        assert!(run.stdout.contains("n99"), "{}", run.explain());
    }
}
