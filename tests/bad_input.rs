//! Bad input: every kind of broken line gets a clear error reply when the sender can be told,
//! a line on stderr otherwise, and the node keeps serving. stdout only ever carries valid replies.

use maelstrom_kafka::Config;
use serde_json::{Value, json};

use crate::util::{check_reply, config, init, run_text};

/// Runs `init`, then each bad line, then a send and a poll that must still be served. Returns
/// the replies to the bad lines, keyed by `in_reply_to`, and checks the node's health after.
fn after_init(bad_lines: &[Vec<u8>], config: Config) -> Vec<Value> {
    let mut input = (init().to_string() + "\n").into_bytes();
    for line in bad_lines {
        input.extend_from_slice(line);
        input.push(b'\n');
    }
    input.extend_from_slice(
        br#"{"src":"c9","dest":"n0","body":{"type":"send","msg_id":9001,"key":"ok","msg":42}}
{"src":"c9","dest":"n0","body":{"type":"poll","msg_id":9002,"offsets":{"ok":0}}}
"#,
    );
    let lines = run_text(input, config);
    let replies: Vec<Value> = lines.iter().map(|l| check_reply(l)).collect();
    let last = &replies[replies.len() - 2..];
    assert_eq!(
        last[0]["body"]["offset"], 0,
        "still serving sends: {lines:#?}"
    );
    assert_eq!(
        last[1]["body"]["msgs"],
        json!({"ok": [[0, 42]]}),
        "still serving polls"
    );
    replies[1..replies.len() - 2]
        .iter()
        .map(|r| r["body"].clone())
        .collect()
}

fn line(v: Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

fn body(msg_id: u64, fields: Value) -> Vec<u8> {
    let mut body = fields;
    body["msg_id"] = msg_id.into();
    line(json!({"src": "c1", "dest": "n0", "body": body}))
}

#[test]
fn mistyped_and_missing_fields_get_malformed_request() {
    let cases = [
        json!({"type": "send", "key": 5, "msg": 1}),
        json!({"type": "send", "key": null, "msg": 1}),
        json!({"type": "send", "msg": 1}),
        json!({"type": "send", "key": "k"}),
        json!({"type": "poll", "offsets": {"k": -1}}),
        json!({"type": "poll", "offsets": {"k": 1.5}}),
        json!({"type": "poll", "offsets": {"k": "3"}}),
        json!({"type": "poll", "offsets": {"k": 9_223_372_036_854_775_808_u64}}),
        json!({"type": "poll", "offsets": [["k", 1]]}),
        json!({"type": "poll"}),
        json!({"type": "commit_offsets", "offsets": {"k": -2}}),
        json!({"type": "commit_offsets", "offsets": "k"}),
        json!({"type": "list_committed_offsets", "keys": "k"}),
        json!({"type": "list_committed_offsets", "keys": ["k", 1]}),
        json!({"type": "list_committed_offsets"}),
        json!({"type": 7}),
        json!({}),
        json!({"type": "init"}),
    ];
    let lines: Vec<_> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| body(i as u64, c.clone()))
        .collect();
    let replies = after_init(&lines, config(1));
    assert_eq!(
        replies.len(),
        cases.len(),
        "every case is answered: {replies:#?}"
    );
    for (i, case) in cases.iter().enumerate() {
        let reply = replies
            .iter()
            .find(|r| r["in_reply_to"] == i)
            .expect("a reply per case");
        assert_eq!(reply["type"], "error", "{case}");
        assert_eq!(reply["code"], 12, "{case}: {reply}");
        assert!(!reply["text"].as_str().unwrap().is_empty());
    }
}

#[test]
fn unknown_types_get_not_supported() {
    let replies = after_init(
        &[
            body(5, json!({"type": "send_ok"})),
            body(6, json!({"type": "echo"})),
        ],
        config(1),
    );
    assert_eq!(replies.len(), 2);
    assert!(replies.iter().all(|r| r["code"] == 10), "{replies:#?}");
}

#[test]
fn lines_with_no_one_to_answer_are_logged_and_skipped() {
    let mut garbage: Vec<u8> = (0..=255u8).filter(|&b| b != b'\n').collect();
    garbage.extend_from_slice(&[0xff, 0xfe, 0, 0, 0xc3]);
    let lines = vec![
        br#"{"src":"c1","dest":"n0","body":{"type":"send","msg_id":1,"key""#.to_vec(),
        b"not json at all".to_vec(),
        garbage,
        b"[1,2,3]".to_vec(),
        b"42".to_vec(),
        b"\"just a string\"".to_vec(),
        line(json!({"src": "c1", "dest": "n0"})),
        line(json!({"src": "c1", "dest": "n0", "body": null})),
        line(json!({"src": "c1", "dest": "n0", "body": {}})),
        line(json!({"src": "c1", "dest": "n0", "body": {"type": "send", "key": "k", "msg": 1}})),
        line(
            json!({"src": "c1", "dest": "n0", "body": {"type": "send", "msg_id": -1, "key": "k", "msg": 1}}),
        ),
        line(
            json!({"src": "c1", "dest": "n0", "body": {"type": "send", "msg_id": "3", "key": "k", "msg": 1}}),
        ),
        line(
            json!({"src": 5, "dest": "n0", "body": {"type": "send", "msg_id": 3, "key": "k", "msg": 1}}),
        ),
        line(json!({"dest": "n0", "body": {"type": "send", "msg_id": 3, "key": "k", "msg": 1}})),
        b"".to_vec(),
        b"   \t ".to_vec(),
        // (Valid JSON nested deeper than simd-json's limit is answered with a 12: see
        // `regression::a_msg_nested_deeper_than_simd_json_accepts_gets_an_error_reply`.)
    ];
    let replies = after_init(&lines, config(1));
    assert_eq!(
        replies,
        Vec::<Value>::new(),
        "none of these can be answered"
    );
}

#[test]
fn a_two_megabyte_line_is_served_and_a_two_megabyte_garbage_line_is_skipped() {
    let big = "x".repeat(2 << 20);
    let lines = vec![
        body(1, json!({"type": "send", "key": "big", "msg": big})),
        body(2, json!({"type": "poll", "offsets": {"big": 0}})),
        vec![b'{'; 2 << 20],
    ];
    let replies = after_init(&lines, config(1));
    assert_eq!(replies.len(), 2);
    assert_eq!(replies[0]["offset"], 0);
    assert_eq!(
        replies[1]["msgs"]["big"][0][1].as_str().map(str::len),
        Some(big.len())
    );
}

#[test]
fn lines_over_the_limit_are_skipped_whole() {
    let long = body(
        1,
        json!({"type": "send", "key": "k", "msg": "y".repeat(5000)}),
    );
    let replies = after_init(
        &[long, body(2, json!({"type": "poll", "offsets": {"k": 0}}))],
        Config {
            // The least the node accepts (`config::MAX_LINE`).
            max_line: 4096,
            ..config(1)
        },
    );
    assert_eq!(
        replies,
        [json!({"type": "poll_ok", "in_reply_to": 2, "msgs": {}})]
    );
}

#[test]
fn a_truncated_last_line_is_skipped_and_everything_before_it_answered() {
    let input = format!(
        "{}\n{}\n{}",
        init(),
        r#"{"src":"c1","dest":"n0","body":{"type":"send","msg_id":1,"key":"k","msg":1}}"#,
        r#"{"src":"c1","dest":"n0","body":{"type":"send","msg_id":2,"ke"#
    );
    let lines = run_text(input, config(1));
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert_eq!(check_reply(&lines[1])["body"]["offset"], 0);
}

#[test]
fn a_peers_bad_replicate_messages_get_no_reply_and_change_nothing() {
    let init = json!({"src": "c0", "dest": "n0", "body": {"type": "init", "msg_id": 1, "node_id": "n0", "node_ids": ["n0", "n1"]}});
    let replicate = |src: &str, body: Value| {
        let mut body = body;
        body["type"] = "replicate".into();
        json!({"src": src, "dest": "n0", "body": body}).to_string()
    };
    let bad = [
        replicate("n1", json!({"updates": 5})),
        replicate("n1", json!({"updates": [["ok", 1, 3, 0]]})),
        replicate("n1", json!({"updates": [["ok", "1", 3, 0, []]]})),
        replicate("n1", json!({"updates": [["ok", 1, 3, 0, [[1, 7]]]]})),
        replicate("n1", json!({"acks": [["ok", 1]]})),
        // Offsets of n0's own class, from n1; a range backwards; a message outside its range.
        replicate("n1", json!({"updates": [["ok", 0, 2, 0, [[0, "7"]]]]})),
        replicate("n1", json!({"updates": [["ok", 5, 3, 0, []]]})),
        replicate("n1", json!({"updates": [["ok", 1, 3, 0, [[5, "7"]]]]})),
        // Not a peer: a node outside the cluster, a client, ourselves.
        replicate("n7", json!({"updates": [["ok", 1, 3, 0, [[1, "7"]]]]})),
        replicate("c3", json!({"updates": [["ok", 1, 3, 0, [[1, "7"]]]]})),
        replicate("n0", json!({"updates": [["ok", 0, 2, 0, [[0, "7"]]]]})),
    ];
    let mut input = init.to_string() + "\n";
    for line in &bad {
        input += line;
        input.push('\n');
    }
    input += r#"{"src":"c9","dest":"n0","body":{"type":"send","msg_id":9001,"key":"ok","msg":42}}
{"src":"c9","dest":"n0","body":{"type":"poll","msg_id":9002,"offsets":{"ok":0}}}
"#;
    let lines = run_text(input, config(2));
    // The replication thread may have sent n1 its batch before the input ended; anything else is
    // a reply, and only the three requests get one.
    let replies: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON"))
        .filter(|v| v["dest"] != "n1")
        .collect();
    assert_eq!(replies.len(), 3, "{lines:#?}");
    assert_eq!(replies[1]["body"]["offset"], 0, "n0's first offset");
    assert_eq!(
        replies[2]["body"]["msgs"],
        json!({"ok": [[0, 42]]}),
        "nothing from the bad updates shows"
    );
}

#[test]
fn a_peers_message_that_is_not_one_json_value_on_one_line_is_refused_so_stdout_stays_json() {
    use maelstrom_kafka::cluster::Cluster;
    use maelstrom_kafka::protocol::{Incoming, Keys, Parser};
    use maelstrom_kafka::replication::{Replicator, Timing};
    use maelstrom_kafka::{Shared, rpc};

    let cluster = Cluster {
        ids: vec!["n0".into(), "n1".into()],
        me: 0,
    };
    let shared = Shared::with_cluster(cluster.clone());
    let mut replicator = Replicator::new(cluster, Timing::for_nodes(2), Config::default().max_line);
    let (mut parser, mut keys) = (Parser::default(), Keys::new());
    // Poll texts are written out as they were stored, so each of these would break stdout: not
    // JSON, two values, nothing, and a newline between tokens (valid JSON, but two lines).
    let texts = [
        ("a", "nope"),
        ("b", "7 8"),
        ("c", ""),
        ("d", "[1,\n2]"),
        ("ok", "5"),
    ];
    for (key, text) in texts {
        let update = json!({"src": "n1", "dest": "n0", "body": {"type": "replicate",
            "updates": [[key, 1, 3, 0, [[1, text]]]]}});
        let Ok(Incoming::Replicate { src, message }) =
            parser.parse(update.to_string().as_bytes(), true, &mut keys)
        else {
            panic!("not a well-formed replicate message");
        };
        replicator.apply(&src, &message, &shared.store);
    }
    let poll = json!({"src": "c1", "dest": "n0", "body": {"type": "poll", "msg_id": 1,
        "offsets": {"a": 0, "b": 0, "c": 0, "d": 0, "ok": 0}}});
    let Ok(Incoming::Request(request)) = parser.parse(poll.to_string().as_bytes(), true, &mut keys)
    else {
        panic!("not a poll");
    };
    let mut out = Vec::new();
    rpc::handle(request, &keys, &shared, &Config::default(), &mut out);
    let text = String::from_utf8(out).expect("UTF-8");
    assert_eq!(text.matches('\n').count(), 1, "one line: {text:?}");
    let reply = check_reply(text.trim_end());
    let msgs = &reply["body"]["msgs"];
    assert_eq!(msgs["ok"], json!([[1, 5]]), "a good message shows: {text}");
    for key in ["a", "b", "c", "d"] {
        assert!(
            msgs.get(key).is_none_or(|pairs| pairs == &json!([])),
            "nothing from the bad text of key {key}: {text}"
        );
    }
}

// See: issue 15. `node_ids` with a duplicate was accepted silently, and the node replicated to
// itself, its polls stuck at offset 0; an init that did not list the node made it run alone.
#[test]
fn an_init_with_duplicate_missing_or_too_many_ids_is_refused_and_the_node_waits_for_a_good_one() {
    let init = |msg_id: u64, node_ids: Value| {
        let mut body = json!({"type": "init", "msg_id": msg_id, "node_id": "n0"});
        if !node_ids.is_null() {
            body["node_ids"] = node_ids;
        }
        json!({"src": "c0", "dest": "n0", "body": body}).to_string()
    };
    let many: Vec<String> = (0..65).map(|i| format!("n{i}")).collect();
    let refused = [
        (1, json!(["n0", "n1", "n0"]), 12),
        (2, json!(["n1", "n2"]), 12),
        (3, json!([]), 12),
        (4, Value::Null, 12),
        (5, json!(many), 10),
    ];
    let mut input: Vec<String> = refused
        .iter()
        .map(|(id, ids, _)| init(*id, ids.clone()))
        .collect();
    let send = |msg_id: u64| {
        json!({"src": "c1", "dest": "n0", "body": {"type": "send", "msg_id": msg_id, "key": "k", "msg": 1}})
            .to_string()
    };
    input.push(send(6));
    input.push(init(7, json!(["n0", "n1"])));
    input.push(send(8));
    let lines = run_text(input.join("\n") + "\n", config(1));
    let replies: Vec<Value> = lines
        .iter()
        .map(|line| check_reply(line)["body"].clone())
        .collect();
    assert_eq!(replies.len(), input.len(), "{replies:#?}");
    for ((msg_id, ids, code), reply) in refused.iter().zip(&replies) {
        assert_eq!(reply["in_reply_to"], *msg_id, "{reply}");
        assert_eq!(reply["type"], "error", "init with {ids} was taken: {reply}");
        assert_eq!(reply["code"], *code, "{reply}");
    }
    assert_eq!(
        replies[5]["code"], 11,
        "still not initialised: {}",
        replies[5]
    );
    assert_eq!(replies[6]["type"], "init_ok", "{}", replies[6]);
    assert_eq!(replies[7]["type"], "send_ok", "{}", replies[7]);
}
