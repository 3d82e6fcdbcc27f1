//! The command line and setup failures: exit codes and messages.

use std::path::Path;

use crate::util::{TempDir, fixture_bin, run, workload_bin};

#[test]
fn missing_binary_is_unknown() {
    let run = run(Path::new("/nonexistent/node"), &[], &[]);
    assert_eq!(run.code, Some(2), "{}", run.explain());
    assert!(run.stdout.contains("could not start"), "{}", run.explain());
    assert_eq!(run.results["valid"], "unknown");
}

#[test]
fn node_that_never_inits_is_unknown() {
    // `sleep` never answers init: once the init timeout (Maelstrom's 10 s; short here) is up,
    // the setup fails, naming the node and the timeout, while `sleep` is still running.
    let run = run(Path::new("/bin/sleep"), &["--init-timeout", "0.5"], &["30"]);
    assert_eq!(run.code, Some(2), "{}", run.explain());
    assert!(
        run.stdout
            .contains("init failed: n0: no init_ok within 0.5 s"),
        "{}",
        run.explain()
    );
}

#[test]
fn unsupported_workload_is_refused() {
    let store = TempDir::new("cli");
    let out = std::process::Command::new(workload_bin())
        .args(["test", "-w", "lin-kv", "--bin", fixture_bin(), "--store"])
        .arg(&store.0)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(254));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only kafka"));
}

#[test]
fn a_mistyped_option_is_refused_not_passed_to_the_node() {
    // It used to be handed to the node, and the run went on for the default 60 s.
    let store = TempDir::new("cli");
    let out = std::process::Command::new(workload_bin())
        .args([
            "test",
            "-w",
            "kafka",
            "--bin",
            fixture_bin(),
            "--time-limt",
            "1",
        ])
        .arg("--store")
        .arg(&store.0)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(254), "{stderr}");
    assert!(stderr.contains("--time-limt"), "{stderr}");
    assert!(
        std::fs::read_dir(&store.0).unwrap().next().is_none(),
        "a refused command line must not start a run"
    );
}

#[test]
fn node_exiting_at_start_is_unknown_and_reported() {
    let run = run(Path::new("/bin/false"), &[], &[]);
    assert_eq!(run.code, Some(2), "{}", run.explain());
    assert!(
        run.stdout
            .contains("exited (or closed stdout) before answering init"),
        "{}",
        run.explain()
    );
    assert!(
        run.stdout.contains("Node n0 crashed with exit status: 1"),
        "{}",
        run.explain()
    );
}

#[test]
fn a_relative_bin_is_found_from_the_working_directory() {
    // The node runs in the temp directory, as under Maelstrom, so `--bin` must be resolved
    // before it starts: README's command passes `target/release/maelstrom-kafka`.
    let fixture = Path::new(fixture_bin());
    let store = TempDir::new("cli");
    let out = std::process::Command::new(workload_bin())
        .current_dir(fixture.parent().unwrap())
        .args(["test", "-w", "kafka", "--bin"])
        .arg(Path::new(".").join(fixture.file_name().unwrap()))
        .args(["--node-count", "1", "--time-limit", "1", "--rate", "100"])
        .args([
            "--recovery-sleep",
            "0.1",
            "--final-time-limit",
            "1",
            "--no-progress",
            "--store",
        ])
        .arg(&store.0)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("Everything looks good!"), "{stdout}");
}
