//! The command line and setup failures: exit codes and messages.

use std::path::Path;

use crate::util::{TempDir, fixture_bin, run, workload_bin};

#[test]
fn missing_binary_is_unknown() {
    let run = run(Path::new("/nonexistent/node"), &[], &[]);
    assert_eq!(run.code, Some(2), "{}", run.explain());
    assert!(run.stdout.contains("could not start"), "{}", run.explain());
    assert_eq!(run.results["valid"], "unknown");
    // Said once, with no checks that did not run and no plots of nothing.
    assert_eq!(
        run.stdout.matches("could not start").count(),
        1,
        "{}",
        run.explain()
    );
    assert!(!run.stdout.contains("workload:"), "{}", run.explain());
    assert!(!run.stdout.contains("throughput:"), "{}", run.explain());
    assert!(!run.dir.join("latency.svg").exists());
    assert!(run.dir.join("index.html").exists());
    // Nothing ran, so nothing became `latest`.
    let store = run.dir.parent().unwrap().parent().unwrap();
    assert!(std::fs::symlink_metadata(store.join("latest")).is_err());
}

#[test]
fn a_failed_setup_leaves_latest_on_the_last_run_that_ran() {
    let store = TempDir::new("cli");
    let test = |bin: &str| {
        std::process::Command::new(workload_bin())
            .args(["test", "-w", "kafka", "--bin", bin, "--node-count", "1"])
            .args([
                "--time-limit",
                "0.5",
                "--recovery-sleep",
                "0",
                "--no-progress",
            ])
            .arg("--store")
            .arg(&store.0)
            .output()
            .unwrap()
    };
    assert_eq!(test(fixture_bin()).status.code(), Some(0));
    let good = std::fs::canonicalize(store.0.join("latest")).unwrap();
    let out = test("/bin/false");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(std::fs::canonicalize(store.0.join("latest")).unwrap(), good);
    assert_eq!(std::fs::read_dir(store.0.join("kafka")).unwrap().count(), 2);
}

#[test]
fn a_store_that_cannot_be_written_is_the_users_to_fix() {
    // A file where the store should be (as root, a read-only directory is writable).
    let dir = TempDir::new("cli");
    let file = dir.0.join("not-a-directory");
    std::fs::write(&file, "").unwrap();
    let out = std::process::Command::new(workload_bin())
        .args(["test", "-w", "kafka", "--bin", fixture_bin(), "--store"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(254), "{stderr}");
    assert!(
        stderr.contains("cannot create a run directory under --store"),
        "{stderr}"
    );
}

#[test]
fn a_time_limit_of_zero_is_refused_not_passed() {
    let out = std::process::Command::new(workload_bin())
        .args([
            "test",
            "-w",
            "kafka",
            "--bin",
            fixture_bin(),
            "--time-limit",
            "0",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(254), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).is_empty());
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
    // The nearest option is named; nothing suggests handing the typo to the node.
    assert!(
        stderr.contains("similar argument exists: '--time-limit'"),
        "{stderr}"
    );
    assert!(!stderr.contains("-- --time-limt"), "{stderr}");
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
        run.stdout
            .contains("n0 ended with exit status: 1, writing nothing to stderr."),
        "{}",
        run.explain()
    );
    // What failed, once; no heading with nothing under it.
    assert_eq!(run.stdout.matches("exited").count(), 1, "{}", run.explain());
    assert!(
        !run.stdout.contains("Last lines of its stderr:"),
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
            // Progress on, not a terminal: the phases are announced line by line.
            "--store",
        ])
        .arg(&store.0)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("Everything looks good!"), "{stdout}");
    // The final phase's limit is said to be a cap, and what it took is said after it.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("final phase (until every client has read all, at most 1.0 s)"),
        "{stderr}"
    );
    assert!(stderr.contains("final phase took "), "{stderr}");
    // A `crash` row is explained wherever there is one.
    assert_eq!(
        stdout.contains("\ncrash "),
        stdout.contains("(crash: a client replaced on Maelstrom's schedule"),
        "{stdout}"
    );
}

#[test]
fn a_signal_ends_the_run_judged_as_far_as_it_got() {
    for signal in ["INT", "TERM", "HUP"] {
        let store = TempDir::new("cli");
        let child = std::process::Command::new(workload_bin())
            .args([
                "test",
                "-w",
                "kafka",
                "--bin",
                fixture_bin(),
                "--node-count",
                "1",
            ])
            .args([
                "--time-limit",
                "60",
                "--rate",
                "100",
                "--no-progress",
                "--store",
            ])
            .arg(&store.0)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let killed = std::process::Command::new("kill")
            .args(["-s", signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        // Ends promptly (the 60 s main phase is cut short), having written its results.
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        // A correct node's partial run is unknown, never "Everything looks good!".
        assert_eq!(out.status.code(), Some(2), "SIG{signal}: {stdout}");
        assert!(
            stdout.contains(&format!(
                "Interrupted by SIG{signal}: the nodes were stopped"
            )),
            "{stdout}"
        );
        assert!(!stdout.contains("Everything looks good!"), "{stdout}");
        // Not `latest`, but marked interrupted for the index, with what it recorded.
        assert!(std::fs::symlink_metadata(store.0.join("latest")).is_err());
        let dir = crate::util::newest_run(&store.0).unwrap();
        let results: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap())
                .unwrap();
        assert_eq!(results["interrupted"], format!("SIG{signal}"));
        assert!(
            results["stats"]["ok-count"].as_u64() > Some(10),
            "{results}"
        );
    }
}
