//! The fuzz targets' seed corpora (`fuzz/seeds/node_lines/`, `fuzz/seeds/poll_msgs/`,
//! `fuzz/seeds/one_line/`), run without the fuzzer so every `cargo test` goes through
//! them: each `node_lines` file as a node's stdout, through the runner's reading, the
//! history and everything that reads one (`kafka_workload::fuzz::node_lines`); each
//! `poll_msgs` file as a poll reply's `msgs`, read in one pass and by serde
//! (`kafka_workload::fuzz::poll_msgs`); each `one_line` file as one line, read in one
//! pass and by the explaining path (`kafka_workload::fuzz::one_line`). A finding of the
//! fuzzer is added there as a file, with what it must come to below.

use std::path::PathBuf;

use kafka_workload::checker::Validity;
use kafka_workload::fuzz::{Judged, node_lines, one_line, poll_msgs};

fn seeds() -> PathBuf {
    seeds_of("node_lines")
}

fn seeds_of(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target)
}

/// The seeds of `target` that `read` takes in one pass, sorted; `read` panics where its
/// readings differ.
fn taken_in_one_pass(target: &str, read: fn(&[u8]) -> bool) -> Vec<String> {
    let mut taken = Vec::new();
    for entry in std::fs::read_dir(seeds_of(target)).unwrap() {
        let path = entry.unwrap().path();
        if read(&std::fs::read(&path).unwrap()) {
            taken.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    taken.sort();
    taken
}

fn judge(name: &str) -> Judged {
    let data = std::fs::read(seeds().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    node_lines(&data)
}

#[test]
fn every_seed_is_judged_without_a_panic() {
    let mut n = 0;
    for entry in std::fs::read_dir(seeds()).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let j = node_lines(&data);
        assert!(j.ops <= data.len(), "{}: {j:?}", path.display());
        n += 1;
    }
    assert!(n >= 8, "only {n} seeds in {}", seeds().display());
}

#[test]
fn a_correct_nodes_replies_are_valid() {
    let j = judge("valid-run");
    assert_eq!((j.invalid_lines, j.ops), (0, 5), "{j:?}");
    assert_eq!(j.valid, Validity::True, "{j:?}");
}

#[test]
fn a_key_written_twice_holds_the_value_written_last() {
    // The correct exchange of `valid-run`, each line with a key written twice whose
    // earlier value is wrong: Maelstrom's map of each line keeps the later one.
    let j = judge("repeated-keys");
    assert_eq!(j, judge("valid-run"));
}

#[test]
fn a_carriage_return_ends_a_line_as_in_maelstrom() {
    // The correct exchange with its lines ended by `\r\n` (the last by `\r` alone): the
    // same lines, read alike.
    assert_eq!(judge("carriage-returns"), judge("valid-run"));
    // A `\r` inside the first line makes two lines of it, neither JSON; the rest is read.
    let j = judge("split-by-carriage-return");
    assert_eq!((j.invalid_lines, j.ops), (2, 4), "{j:?}");
}

#[test]
fn offsets_jepsen_cannot_judge_are_unknown_and_cost_nothing() {
    for name in ["huge-offsets", "negative-offsets"] {
        let j = judge(name);
        assert_eq!(j.valid, Validity::Unknown, "{name}: {j:?}");
        assert!(j.anomalies.contains(&"unjudgeable-offset"), "{name}: {j:?}");
    }
}

#[test]
fn lines_maelstrom_would_refuse_are_counted_not_recorded() {
    let j = judge("not-lines");
    // Not JSON, a string, an array, a string body, a dest not on the network.
    assert_eq!(j.invalid_lines, 5, "{j:?}");
    // The init_ok to a client is a reply (to nothing it asked): an error completion.
    assert_eq!(j.ops, 1, "{j:?}");
    assert_eq!(judge("non-utf8").invalid_lines, 1);
}

#[test]
fn nesting_deeper_than_maelstroms_reader_takes_is_refused() {
    // 5,000 levels, in a field no schema names and in a polled value: Jackson reads
    // 1,000 and throws past them, so each line kills the stdout, without recursing away.
    for name in ["deep-nesting", "deep-value"] {
        let j = judge(name);
        assert_eq!((j.invalid_lines, j.ops), (1, 0), "{name}: {j:?}");
    }
}

#[test]
fn poll_reply_seeds_are_read_alike_in_one_pass_and_by_serde() {
    assert_eq!(
        taken_in_one_pass("poll_msgs", poll_msgs),
        // A key written twice is left to serde, which keeps the later pairs.
        ["many-keys", "not-a-run", "runs", "whitespace"]
    );
}

#[test]
fn line_seeds_are_read_alike_in_one_pass_and_by_the_explaining_path() {
    // The rest is left to serde: a key twice, odd numbers, escapes, a control character,
    // trailing text.
    assert_eq!(
        taken_in_one_pass("one_line", one_line),
        ["poll-ok", "send-ok", "whitespace-and-order"]
    );
}
