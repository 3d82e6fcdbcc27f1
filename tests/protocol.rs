//! Handler tests: each RPC through the real thread pipeline, JSON lines in and out.

use maelstrom_kafka::Config;
use serde_json::json;

use crate::util::{check_reply, config, init, msg, rpc, run_text};

#[test]
fn init_is_answered_with_init_ok() {
    let lines = run_text(init().to_string() + "\n", config(2));
    assert_eq!(
        lines,
        [r#"{"src":"n0","dest":"c0","body":{"type":"init_ok","in_reply_to":1}}"#]
    );
}

#[test]
fn sends_get_dense_offsets_per_key() {
    let replies = rpc(
        &[
            msg(
                "c1",
                json!({"type": "send", "msg_id": 1, "key": "9", "msg": 1}),
            ),
            msg(
                "c1",
                json!({"type": "send", "msg_id": 2, "key": "9", "msg": 2}),
            ),
            msg(
                "c1",
                json!({"type": "send", "msg_id": 3, "key": "12", "msg": 1}),
            ),
            msg(
                "c1",
                json!({"type": "send", "msg_id": 4, "key": "9", "msg": 3}),
            ),
        ],
        config(1),
    );
    let offsets: Vec<_> = replies
        .iter()
        .map(|r| r["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, [0, 1, 0, 2]);
    assert!(replies.iter().all(|r| r["type"] == "send_ok"));
}

#[test]
fn poll_returns_from_the_requested_offset_and_leaves_out_empty_keys() {
    let mut requests: Vec<_> = (1..=5)
        .map(|i| {
            msg(
                "c1",
                json!({"type": "send", "msg_id": i, "key": "9", "msg": i * 10}),
            )
        })
        .collect();
    requests.push(msg(
        "c2",
        json!({"type": "poll", "msg_id": 1, "offsets": {"9": 3, "12": 0, "missing": 0}}),
    ));
    requests.push(msg(
        "c2",
        json!({"type": "poll", "msg_id": 2, "offsets": {"9": 5}}),
    ));
    requests.push(msg(
        "c2",
        json!({"type": "poll", "msg_id": 3, "offsets": {}}),
    ));
    requests.push(msg(
        "c2",
        json!({"type": "poll", "msg_id": 4, "offsets": {"9": 0}}),
    ));
    let replies = rpc(&requests, config(1));
    assert_eq!(replies[5]["msgs"], json!({"9": [[3, 40], [4, 50]]}));
    assert_eq!(
        replies[6]["msgs"],
        json!({}),
        "polling past the end returns nothing"
    );
    assert_eq!(
        replies[7]["msgs"],
        json!({}),
        "offsets: {{}} gets msgs: {{}}"
    );
    assert_eq!(replies[8]["msgs"]["9"].as_array().unwrap().len(), 5);
}

#[test]
fn poll_is_capped_per_key() {
    let mut requests: Vec<_> = (1..=10)
        .map(|i| {
            msg(
                "c1",
                json!({"type": "send", "msg_id": i, "key": "k", "msg": i}),
            )
        })
        .collect();
    requests.push(msg(
        "c2",
        json!({"type": "poll", "msg_id": 1, "offsets": {"k": 2}}),
    ));
    let replies = rpc(
        &requests,
        Config {
            poll_max: 3,
            ..config(1)
        },
    );
    assert_eq!(replies[10]["msgs"], json!({"k": [[2, 3], [3, 4], [4, 5]]}));
}

#[test]
fn messages_come_back_byte_for_byte() {
    // Written by hand: serde_json would normalise these texts.
    let texts = [
        "1e2",
        "-0.0",
        "-0",
        "0",
        "7",
        "-12",
        "18446744073709551615",
        "-9223372036854775808",
        "18446744073709551616",
        "12345678901234567890123",
        r#""caf\u00e9 \"quoted\"""#,
        r#"{ "a" : [1, 2.50, null, true], "b": {} }"#,
        "[]",
        "null",
    ];
    let mut input = init().to_string() + "\n";
    for (i, text) in texts.iter().enumerate() {
        input += &format!(
            r#"{{"src":"c1","dest":"n0","body":{{"type":"send","msg_id":{i},"key":"k","msg":{text}}}}}"#
        );
        input += "\n";
    }
    input += r#"{"src":"c2","dest":"n0","body":{"type":"poll","msg_id":1,"offsets":{"k":0}}}"#;
    let lines = run_text(input, config(1));
    let poll = lines.last().unwrap();
    check_reply(poll);
    let pairs: Vec<String> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| format!("[{i},{text}]"))
        .collect();
    let expected = format!(r#""msgs":{{"k":[{}]}}"#, pairs.join(","));
    assert!(
        poll.contains(&expected),
        "{poll}\nshould contain\n{expected}"
    );
}

#[test]
fn commits_keep_the_maximum_and_list_leaves_out_uncommitted_keys() {
    let replies = rpc(
        &[
            msg(
                "c1",
                json!({"type": "commit_offsets", "msg_id": 1, "offsets": {"a": 5, "b": 0}}),
            ),
            msg(
                "c1",
                json!({"type": "commit_offsets", "msg_id": 2, "offsets": {"a": 3}}),
            ),
            msg(
                "c1",
                json!({"type": "commit_offsets", "msg_id": 3, "offsets": {}}),
            ),
            msg(
                "c1",
                json!({"type": "list_committed_offsets", "msg_id": 4, "keys": ["a", "b", "c"]}),
            ),
            msg(
                "c1",
                json!({"type": "list_committed_offsets", "msg_id": 5, "keys": []}),
            ),
        ],
        config(1),
    );
    for r in &replies[..3] {
        assert_eq!(r["type"], "commit_offsets_ok");
    }
    assert_eq!(replies[3]["offsets"], json!({"a": 5, "b": 0}));
    assert_eq!(replies[4]["offsets"], json!({}));
}

#[test]
fn unknown_envelope_fields_are_ignored_and_keys_are_escaped_on_the_way_out() {
    let key = "we\"ird\\key\n";
    let replies = rpc(
        &[
            json!({"id": 1, "src": "c1", "dest": "n0", "extra": [1], "body": {"type": "send", "msg_id": 1, "key": key, "msg": 1, "also": true}}),
            msg(
                "c1",
                json!({"type": "poll", "msg_id": 2, "offsets": {key: 0}}),
            ),
        ],
        config(1),
    );
    assert_eq!(replies[1]["msgs"], json!({key: [[0, 1]]}));
}

#[test]
fn requests_before_init_get_code_11_and_init_is_idempotent() {
    let input = [
        msg(
            "c1",
            json!({"type": "send", "msg_id": 1, "key": "k", "msg": 1}),
        ),
        init(),
        msg(
            "c1",
            json!({"type": "send", "msg_id": 2, "key": "k", "msg": 2}),
        ),
        init(),
    ]
    .map(|v| v.to_string() + "\n")
    .concat();
    let lines = run_text(input, config(1));
    let replies: Vec<_> = lines
        .iter()
        .map(|l| check_reply(l)["body"].clone())
        .collect();
    assert_eq!(replies[0]["code"], 11);
    assert_eq!(replies[1]["type"], "init_ok");
    assert_eq!(replies[2]["offset"], 0, "the rejected send stored nothing");
    assert_eq!(replies[3]["type"], "init_ok");
}
