//! Regressions: one test per problem found, each with where it was found.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::util::{check_reply, config, init, msg, run_text};

fn lines(requests: &[String]) -> String {
    std::iter::once(init().to_string())
        .chain(requests.iter().cloned())
        .map(|l| l + "\n")
        .collect()
}

// See: review of the node, 2026-11-26. Maelstrom reads stdout with Java's `readLine`, which
// also ends a line at a lone `\r`; a `\r` between tokens of `msg`, echoed in a poll reply, cut
// the reply in two and would have stopped Maelstrom reading the node.
#[test]
fn a_carriage_return_inside_msg_does_not_split_the_poll_reply() {
    let input = lines(&[
        "{\"src\":\"c1\",\"dest\":\"n0\",\"body\":{\"type\":\"send\",\"msg_id\":2,\"key\":\"k\",\"msg\":[1,\r2]}}".into(),
        msg("c1", json!({"type": "poll", "msg_id": 3, "offsets": {"k": 0}})).to_string(),
    ]);
    let out = run_text(input, config(1));
    for line in &out {
        assert!(!line.contains('\r'), "{line:?}");
        check_reply(line);
    }
    let poll = check_reply(&out[2]);
    assert_eq!(poll["body"]["msgs"], json!({"k": [[0, [1, 2]]]}));
}

// See: review of the node, 2026-11-26. A key named twice in a poll, or twice in a list, was
// named twice in the reply.
#[test]
fn a_key_named_twice_is_answered_once_and_the_first_offset_wins() {
    let input = lines(&[
        msg("c1", json!({"type": "send", "msg_id": 2, "key": "k", "msg": 1})).to_string(),
        msg("c1", json!({"type": "send", "msg_id": 3, "key": "k", "msg": 2})).to_string(),
        r#"{"src":"c1","dest":"n0","body":{"type":"poll","msg_id":4,"offsets":{"k":1,"k":0}}}"#.into(),
        r#"{"src":"c1","dest":"n0","body":{"type":"commit_offsets","msg_id":5,"offsets":{"k":1,"k":0}}}"#.into(),
        msg("c1", json!({"type": "list_committed_offsets", "msg_id": 6, "keys": ["k", "k"]})).to_string(),
    ]);
    let out = run_text(input, config(1));
    assert_eq!(out.len(), 6);
    assert_eq!(out[3].matches(r#""k":"#).count(), 1, "{}", out[3]);
    assert!(out[3].contains(r#""msgs":{"k":[[1,2]]}"#), "{}", out[3]);
    assert!(out[5].contains(r#""offsets":{"k":1}"#), "{}", out[5]);
}

// See: review of the node, 2026-11-26. Valid JSON that simd-json cannot hold (a number past
// f64) was dropped without a reply, so the client waited out its timeout.
#[test]
fn a_number_beyond_f64_gets_an_error_reply() {
    let big = format!("1{}", "0".repeat(400));
    let input = lines(&[
        format!(
            r#"{{"src":"c1","dest":"n0","body":{{"type":"send","msg_id":2,"key":"k","msg":{big}}}}}"#
        ),
        r#"{"src":"c1","dest":"n0","body":{"type":"send","msg_id":3,"key":"k","msg":1e400}}"#
            .into(),
        // Not JSON at all, with a readable src and msg_id: still no reply.
        r#"{"src":"c1","dest":"n0","body":{"type":"send","msg_id":4,"key":"k","msg":1e400}"#.into(),
        msg(
            "c1",
            json!({"type": "send", "msg_id": 5, "key": "k", "msg": 1}),
        )
        .to_string(),
    ]);
    let out: Vec<Value> = run_text(input, config(1))
        .iter()
        .map(|l| check_reply(l)["body"].clone())
        .collect();
    assert_eq!(out.len(), 4, "{out:#?}");
    for (reply, id) in out[1..3].iter().zip([2, 3]) {
        assert_eq!(
            (reply["in_reply_to"].as_u64(), reply["code"].as_u64()),
            (Some(id), Some(12))
        );
    }
    assert_eq!(
        out[3]["offset"], 0,
        "nothing was stored for the refused sends"
    );
}

// See: issue 9 (high-rate runs), 2026-11-26. A `msg` nested deeper than simd-json accepts
// (1024 levels) got no reply: the byte scanner that reads `src` and `msg_id` out of refused lines
// had a depth limit of its own, so the client waited out its timeout.
#[test]
fn a_msg_nested_deeper_than_simd_json_accepts_gets_an_error_reply() {
    let deep = |levels: usize| format!("{}1{}", "[".repeat(levels), "]".repeat(levels));
    let input = lines(&[
        format!(
            r#"{{"src":"c1","dest":"n0","body":{{"type":"send","msg_id":2,"key":"k","msg":{}}}}}"#,
            deep(2000)
        ),
        format!(
            r#"{{"src":"c1","dest":"n0","body":{{"type":"send","msg","msg_id":3,"key":"k","msg":{}}}}}"#,
            deep(100_000)
        ),
        format!(
            r#"{{"src":"c1","dest":"n0","body":{{"msg":{},"type":"send","msg_id":4,"key":"k"}}}}"#,
            deep(100_000)
        ),
        msg(
            "c1",
            json!({"type": "send", "msg_id": 5, "key": "k", "msg": 1}),
        )
        .to_string(),
    ]);
    let out: Vec<Value> = run_text(input, config(1))
        .iter()
        .map(|l| check_reply(l)["body"].clone())
        .collect();
    // The second line is not JSON (`"msg",` is no member): no reply, as for any other.
    let answered: Vec<_> = out[1..]
        .iter()
        .map(|r| (r["in_reply_to"].as_u64(), r["code"].as_u64()))
        .collect();
    assert_eq!(
        answered,
        [(Some(2), Some(12)), (Some(4), Some(12)), (Some(5), None)],
        "{out:#?}"
    );
    assert_eq!(
        out[3]["offset"], 0,
        "nothing was stored for the refused sends"
    );
}

// See: review of the node, 2026-11-26. `eprintln!` panics when stderr is closed, and the reader
// thread, which logs skipped lines, died with the requests it held.
#[test]
fn a_closed_stderr_does_not_stop_the_node() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_maelstrom-kafka"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{}", init()).unwrap();
    writeln!(stdin, "not json, so the node writes to stderr").unwrap();
    writeln!(
        stdin,
        "{}",
        msg(
            "c1",
            json!({"type": "send", "msg_id": 2, "key": "k", "msg": 1})
        )
    )
    .unwrap();
    drop(stdin);
    let replies: Vec<String> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(Result::unwrap)
        .collect();
    assert_eq!(replies.len(), 2, "{replies:#?}");
    assert_eq!(check_reply(&replies[1])["body"]["offset"], 0);
    assert!(child.wait().unwrap().success());
}
