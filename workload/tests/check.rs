//! `kafka-workload check`: a test run's history judged again gives the run's own results,
//! and Jepsen's kafka checker tests, ported as EDN histories under `tests/jepsen/`, give
//! the anomalies Jepsen's tests expect (see `tests/jepsen/README.md`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::{self, TempDir, workload_bin};

/// What one `check` left behind.
struct Checked {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    results: Value,
    edn: String,
    history: String,
    _store: TempDir,
}

fn check(path: &Path) -> Checked {
    let store = TempDir::new("check");
    let out = Command::new(workload_bin())
        .arg("check")
        .arg(path)
        .arg("--store")
        .arg(&store.0)
        .output()
        .expect("spawn kafka-workload check");
    let dir = store.0.join("latest");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    Checked {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        results: serde_json::from_str(&read("results.json")).unwrap_or(Value::Null),
        edn: read("results.edn"),
        history: read("history.jsonl"),
        _store: store,
    }
}

/// The summary without the lines naming where it was judged from and written to.
fn summary(stdout: &str) -> String {
    stdout
        .lines()
        .filter(|l| !l.starts_with("Results in ") && !l.starts_with("Judged from "))
        .collect::<Vec<_>>()
        .join("\n")
        .trim_end()
        .to_owned()
}

fn exit_of(valid: &Value) -> i32 {
    match valid {
        Value::Bool(true) => 0,
        Value::Bool(false) => 1,
        _ => 2,
    }
}

#[test]
fn a_test_runs_history_judged_again_gives_the_runs_results() {
    // `crash` has the node exit: its fault and its exit status come back from results.json.
    for fault in ["none", "lose-write", "crash"] {
        // The fault strikes after 50 requests, not the fixture's default 200: a 1 s run at 300
        // ops/s on a loaded machine can serve fewer than 200, and then `crash` never crashes.
        let run = util::run(
            Path::new(util::fixture_bin()),
            &["--time-limit", "1", "--rate", "300"],
            &["--fault", fault, "--after", "50"],
        );
        assert!(run.results.is_object(), "{fault}: {}", run.explain());
        let stored = std::fs::read_to_string(run.dir.join("results.edn")).unwrap();
        let history = std::fs::read_to_string(run.dir.join("history.jsonl")).unwrap();
        for path in [run.dir.clone(), run.dir.join("history.jsonl")] {
            let c = check(&path);
            assert_eq!(c.code, run.code, "{fault} {path:?}: {}", c.stderr);
            assert_eq!(c.results, run.results, "{fault} {path:?}");
            assert_eq!(c.edn, stored, "{fault} {path:?}");
            // Read back into the compact history and written again, the same text.
            assert!(
                c.history == history,
                "{fault} {path:?}: history.jsonl differs"
            );
            assert_eq!(summary(&c.stdout), summary(&run.stdout), "{fault} {path:?}");
            assert!(c.stdout.contains("Judged from "), "{}", c.stdout);
        }
        let want = if fault == "none" { Some(0) } else { Some(1) };
        assert_eq!(run.code, want, "{fault}: {}", run.explain());
    }
}

#[test]
fn a_partitioned_cluster_run_judged_again_draws_the_same_plots_and_timeline() {
    let cluster = Path::new(env!("CARGO_BIN_EXE_fixture-cluster"));
    let run = util::run(
        cluster,
        &[
            "--node-count",
            "3",
            "--rate",
            "300",
            "--seed",
            "7",
            "--latency",
            "5",
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "0.5",
        ],
        &["--mode", "owner"],
    );
    assert_eq!(run.code, Some(0), "{}", run.explain());
    let history = std::fs::read_to_string(run.dir.join("history.jsonl")).unwrap();
    assert!(
        history.contains("start-partition"),
        "no partition in the run"
    );
    let store = TempDir::new("check-cluster");
    let out = Command::new(workload_bin())
        .arg("check")
        .arg(&run.dir)
        .arg("--store")
        .arg(&store.0)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    // The partitions come back from the nemesis's lines in the history.
    for f in [
        "results.json",
        "results.edn",
        "latency.svg",
        "rate.svg",
        "timeline.html",
        "history.jsonl",
    ] {
        let a = std::fs::read(run.dir.join(f)).unwrap();
        let b = std::fs::read(store.0.join("latest").join(f)).unwrap();
        assert!(a == b, "{f} differs");
    }
}

/// A fixture's expectations, from its `;; valid:`, `;; expect:` and
/// `;; worst-realtime-lag:` header lines.
struct Expected {
    valid: Value,
    kinds: BTreeMap<String, u64>,
    lag: Option<String>,
}

fn expected(text: &str) -> Expected {
    let header = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!(";; {name}:")))
            .map(str::trim)
    };
    let valid = match header("valid") {
        Some("true") => Value::Bool(true),
        Some("false") => Value::Bool(false),
        other => panic!("a fixture says valid: true or false, not {other:?}"),
    };
    let kinds = header("expect")
        .expect("a fixture lists the anomalies it expects")
        .split_whitespace()
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("kind=count");
            (k.to_owned(), v.parse().expect("a count"))
        })
        .collect();
    Expected {
        valid,
        kinds,
        lag: header("worst-realtime-lag").map(str::to_owned),
    }
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jepsen");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "edn"))
        .collect();
    files.sort();
    files
}

#[test]
fn jepsens_kafka_checker_tests_give_the_anomalies_jepsen_expects() {
    let files = fixtures();
    assert!(files.len() >= 27, "fixtures went missing: {files:?}");
    let mut wrong = Vec::new();
    for file in &files {
        let want = expected(&std::fs::read_to_string(file).unwrap());
        let c = check(file);
        let w = &c.results["workload"];
        let got = kafka_workload::check::kinds(w);
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if w["valid"] != want.valid || got != want.kinds {
            wrong.push(format!(
                "{name}: workload valid {} with {got:?}, want {} with {:?}",
                w["valid"], want.valid, want.kinds
            ));
        }
        // The exit code and the verdict line are the whole run's, stats included.
        assert_eq!(
            c.code,
            Some(exit_of(&c.results["valid"])),
            "{name}: {}",
            c.stderr
        );
        assert!(c.edn.contains(":workload {:valid?"), "{name}: {}", c.edn);
        if let Some(lag) = want.lag {
            let l = &w["worst-realtime-lag"];
            let got = format!(
                "{{:time {}, :process {}, :key {}, :lag {}}}",
                l["time"],
                l["process"],
                l["key"].as_str().unwrap_or("?"),
                l["lag"]
            )
            .replace(".0,", ",")
            .replace(".0}", "}");
            assert_eq!(got, lag, "{name}");
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_maelstrom_history_is_summarised_as_one_from_elsewhere() {
    let c = check(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jepsen/lost-write.edn"));
    assert_eq!(c.code, Some(1), "{}", c.stderr);
    assert!(c.stdout.contains("recorded elsewhere"), "{}", c.stdout);
    assert!(c.stdout.contains("lost-write: 2 case(s)"), "{}", c.stdout);
    assert!(
        c.stdout.contains("\nAnalysis invalid! (ﾉಥ益ಥ）ﾉ ┻━┻\n"),
        "{}",
        c.stdout
    );
    assert_eq!(c.results["test"]["concurrency"], 1);
    assert!(
        c.results["test"]["command"]
            .as_str()
            .unwrap()
            .contains("kafka-workload check")
    );
}

#[test]
fn what_check_cannot_read_is_an_error_naming_it() {
    let tmp = TempDir::new("check-bad");
    let c = check(&tmp.0);
    assert_eq!(c.code, Some(254), "{}", c.stderr);
    assert!(
        c.stderr.contains("no history.jsonl or history.edn"),
        "{}",
        c.stderr
    );
    let bad = tmp.0.join("history.edn");
    std::fs::write(
        &bad,
        "{:type :ok, :f :poll, :value [[:poll {1 [[0 1]]}]], :process 0}\n{:type",
    )
    .unwrap();
    let c = check(&bad);
    assert_eq!(c.code, Some(254), "{}", c.stderr);
    assert!(c.stderr.contains("line 2: not EDN"), "{}", c.stderr);
    let c = check(&tmp.0.join("missing.edn"));
    assert_eq!(c.code, Some(255), "{}", c.stderr);
    // Nothing was written for a history that could not be read.
    assert!(c.results.is_null());
}

/// Times are the history's own numbers: one at u64's top must be judged like any other, not
/// overflow while the run's phases are laid out (in a debug build, a panic; in release, an end
/// before the start).
#[test]
fn a_history_whose_last_time_is_u64_max_is_judged() {
    let tmp = TempDir::new("check-top-time");
    let file = tmp.0.join("history.jsonl");
    std::fs::write(
        &file,
        concat!(
            r#"{"index":0,"time":0,"process":1,"type":"invoke","f":"send","value":[["send","7",1]]}"#,
            "\n",
            r#"{"index":1,"time":5,"process":1,"type":"ok","f":"send","value":[["send","7",[0,1]]]}"#,
            "\n",
            r#"{"index":2,"time":6,"process":1,"type":"invoke","f":"poll","value":[["poll"]]}"#,
            "\n",
            r#"{"index":3,"time":18446744073709551615,"process":1,"type":"ok","f":"poll","value":[["poll",{"7":[[0,1]]}]]}"#,
            "\n",
        ),
    )
    .unwrap();
    let c = check(&file);
    assert_eq!(c.code, Some(0), "{}\n{}", c.stdout, c.stderr);
    assert!(c.history.contains("18446744073709551615"), "{}", c.history);
}
