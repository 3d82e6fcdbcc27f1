//! The project's own node, `maelstrom-kafka`, must be judged valid.
//!
//! The workload knows the node only as a binary (it is black-box, and does not depend on the
//! node's crate). `CARGO_BIN_EXE_*` only names binaries of this package, so the test asks cargo
//! to build the node, in this test's own target directory and profile, and runs the executable
//! cargo names: the node under test is always the current source, never a stale binary.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::util::run;

/// Builds the node (a no-op when it is up to date) and returns the path cargo reports for it.
fn real_node() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/tests-<hash>
    let profile_dir = exe.parent().and_then(|p| p.parent()).unwrap();
    let target_dir = profile_dir.parent().unwrap();
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args([
        "build",
        "-p",
        "maelstrom-kafka",
        "--bin",
        "maelstrom-kafka",
        "--message-format",
        "json-render-diagnostics",
        "--manifest-path",
    ])
    .arg(&manifest)
    .env("CARGO_TARGET_DIR", target_dir)
    .stderr(Stdio::inherit());
    // The dev profile's directory is `debug`; every other profile's is its own name.
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some(profile) => {
            cmd.args(["--profile", profile]);
        }
    }
    let out = cmd.output().expect("run cargo build for maelstrom-kafka");
    assert!(out.status.success(), "building maelstrom-kafka failed");
    let stdout = String::from_utf8(out.stdout).expect("cargo's messages are UTF-8");
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "maelstrom-kafka")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo names the maelstrom-kafka executable it built")
}

#[test]
fn our_node_is_valid() {
    let node = real_node();
    let run = run(&node, &["--time-limit", "3"], &[]);
    assert_eq!(run.code, Some(0), "{}", run.explain());
    assert_eq!(run.results["valid"], true, "{}", run.explain());
    assert!(run.stdout.contains("Everything looks good!"));
    // The node was exercised, not just started: sends and polls (with their commits) got ok
    // answers, and no fault of the node was recorded.
    for f in ["send", "poll"] {
        let ok = run.results["stats"]["by-f"][f]["ok-count"].as_u64();
        assert!(ok.is_some_and(|n| n > 0), "no ok {f}\n{}", run.explain());
    }
    assert_eq!(run.node_faults(), Vec::<String>::new(), "{}", run.explain());
}
