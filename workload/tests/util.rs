//! Helpers: run the `kafka-workload` binary in a throw-away store and read its results.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The runner under test.
pub(crate) fn workload_bin() -> &'static str {
    env!("CARGO_BIN_EXE_kafka-workload")
}

/// The fixture node (see `src/bin/fixture-node.rs`).
pub(crate) fn fixture_bin() -> &'static str {
    env!("CARGO_BIN_EXE_fixture-node")
}

/// A fresh directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p =
            std::env::temp_dir().join(format!("kafka-workload-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What one run left behind.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) results: Value,
    pub(crate) dir: PathBuf,
    _store: TempDir,
}

impl Run {
    pub(crate) fn anomalies(&self) -> Vec<String> {
        self.results["workload"]["anomaly-types"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn node_faults(&self) -> Vec<String> {
        self.results["node"]["faults"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v["kind"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// How many messages the ok polls of `history.jsonl` read, counted once per poll that
    /// returned them. A poll's value is `[["poll", {key: [[offset, msg], …]}]]`.
    pub(crate) fn polled_messages(&self) -> usize {
        let history = std::fs::read_to_string(self.dir.join("history.jsonl")).unwrap_or_default();
        history
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|op| op["type"] == "ok" && op["f"] == "poll")
            .filter_map(|op| {
                let keys = op["value"][0][1].as_object()?;
                Some(
                    keys.values()
                        .map(|m| m.as_array().map_or(0, Vec::len))
                        .sum::<usize>(),
                )
            })
            .sum()
    }

    /// A readable dump for assertion messages.
    pub(crate) fn explain(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// The newest run directory under `store/kafka/` (their names sort by start time).
pub(crate) fn newest_run(store: &Path) -> Option<PathBuf> {
    std::fs::read_dir(store.join("kafka"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .max()
}

/// Runs `kafka-workload test` on `bin` with short phases (each overridable by `extra`),
/// then `-- node_args`.
pub(crate) fn run(bin: &Path, extra: &[&str], node_args: &[&str]) -> Run {
    let store = TempDir::new("store");
    let mut cmd = Command::new(workload_bin());
    cmd.args(["test", "-w", "kafka", "--bin"]).arg(bin);
    let defaults = [
        ("--node-count", "1"),
        ("--concurrency", "2n"),
        ("--time-limit", "2"),
        ("--rate", "1000"),
        ("--recovery-sleep", "0.2"),
        ("--final-time-limit", "2"),
    ];
    for (flag, value) in defaults {
        if !extra.contains(&flag) {
            cmd.args([flag, value]);
        }
    }
    cmd.args(["--no-progress", "--store"])
        .arg(&store.0)
        .args(extra);
    if !node_args.is_empty() {
        cmd.arg("--").args(node_args);
    }
    let out = cmd.output().expect("spawn kafka-workload");
    // A run whose setup failed is not published as `latest`: then the store's only run.
    let dir = std::fs::canonicalize(store.0.join("latest"))
        .ok()
        .or_else(|| newest_run(&store.0))
        .unwrap_or_default();
    let results = std::fs::read_to_string(dir.join("results.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null);
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        results,
        dir,
        _store: store,
    }
}

/// Runs the fixture node with `--fault fault`.
pub(crate) fn run_fault(fault: &str, extra: &[&str]) -> Run {
    run(Path::new(fixture_bin()), extra, &["--fault", fault])
}
