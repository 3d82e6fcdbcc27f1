//! Model-based property test: random send/poll/commit/list sequences, with arbitrary JSON
//! messages, through the real parser and RPCs, checked step by step against a `BTreeMap`.

use std::collections::BTreeMap;

use maelstrom_kafka::protocol::{Keys, Parser};
use maelstrom_kafka::{Config, Shared, rpc};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::util::json_value;

const KEYS: [&str; 5] = ["0", "1", "k\"2", "long-key-3", "\u{e9}4"];
const POLL_MAX: usize = 5;

#[derive(Debug, Clone)]
enum Op {
    Send { key: usize, msg: Value },
    Poll { offsets: Vec<(usize, u64)> },
    Commit { offsets: Vec<(usize, u64)> },
    List { keys: Vec<usize> },
}

/// Offsets maps with distinct keys (a JSON object cannot repeat them), any key including
/// ones never written.
fn offsets() -> impl Strategy<Value = Vec<(usize, u64)>> {
    prop::collection::btree_map(0..KEYS.len(), 0..12u64, 0..4).prop_map(|m| m.into_iter().collect())
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..KEYS.len(), json_value(".{0,12}", ".{0,4}")).prop_map(|(key, msg)| Op::Send { key, msg }),
        3 => offsets().prop_map(|offsets| Op::Poll { offsets }),
        2 => offsets().prop_map(|offsets| Op::Commit { offsets }),
        1 => prop::collection::vec(0..KEYS.len(), 0..4).prop_map(|keys| Op::List { keys }),
    ]
}

#[derive(Default)]
struct Model {
    logs: BTreeMap<usize, Vec<Value>>,
    committed: BTreeMap<usize, u64>,
}

fn key_map(pairs: &[(usize, u64)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, o)| (KEYS[*k].to_owned(), json!(o)))
            .collect(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_node_agrees_with_a_btreemap(ops in prop::collection::vec(op(), 1..60)) {
        let shared = Shared::with_node_id("n0");
        let config = Config { poll_max: POLL_MAX, ..Config::default() };
        let mut parser = Parser::default();
        let mut model = Model::default();
        for (msg_id, op) in ops.iter().enumerate() {
            let body = match op {
                Op::Send { key, msg } => json!({"type": "send", "key": KEYS[*key], "msg": msg}),
                Op::Poll { offsets } => json!({"type": "poll", "offsets": key_map(offsets)}),
                Op::Commit { offsets } => json!({"type": "commit_offsets", "offsets": key_map(offsets)}),
                Op::List { keys } => json!({"type": "list_committed_offsets", "keys": keys.iter().map(|k| KEYS[*k]).collect::<Vec<_>>()}),
            };
            let mut body = body;
            body["msg_id"] = json!(msg_id);
            let line = json!({"src": "c1", "dest": "n0", "body": body}).to_string();
            let mut keys = Keys::new();
            let request = parser.parse(line.as_bytes(), true, &mut keys).expect("a well-formed request parses");
            let mut out = Vec::new();
            rpc::handle(request, &keys, &shared, &config, &mut out);
            let reply_line = String::from_utf8(out).expect("replies are UTF-8");
            prop_assert!(reply_line.ends_with('\n') && reply_line.matches('\n').count() == 1);
            let reply = crate::util::check_reply(reply_line.trim_end());
            let reply = &reply["body"];
            prop_assert_eq!(&reply["in_reply_to"], &json!(msg_id));
            match op {
                Op::Send { key, msg } => {
                    let log = model.logs.entry(*key).or_default();
                    prop_assert_eq!(&reply["offset"], &json!(log.len()));
                    // What the reply's parser will make of the text we sent: serde_json does not
                    // promise that text -> f64 -> text -> f64 is the identity.
                    let as_sent: Value = serde_json::from_str(&msg.to_string()).unwrap();
                    log.push(as_sent);
                }
                Op::Poll { offsets } => {
                    let mut expected = serde_json::Map::new();
                    for (key, from) in offsets {
                        let log = model.logs.get(key).map_or(&[][..], Vec::as_slice);
                        let pairs: Vec<Value> = log
                            .iter()
                            .enumerate()
                            .skip(*from as usize)
                            .take(POLL_MAX)
                            .map(|(o, m)| json!([o, m]))
                            .collect();
                        if !pairs.is_empty() {
                            expected.insert(KEYS[*key].to_owned(), Value::Array(pairs));
                        }
                    }
                    prop_assert_eq!(&reply["msgs"], &Value::Object(expected));
                }
                Op::Commit { offsets } => {
                    prop_assert_eq!(&reply["type"], "commit_offsets_ok");
                    for (key, offset) in offsets {
                        let c = model.committed.entry(*key).or_insert(*offset);
                        *c = (*c).max(*offset);
                    }
                }
                Op::List { keys } => {
                    let expected: serde_json::Map<String, Value> = keys
                        .iter()
                        .filter_map(|k| model.committed.get(k).map(|o| (KEYS[*k].to_owned(), json!(o))))
                        .collect();
                    prop_assert_eq!(&reply["offsets"], &Value::Object(expected));
                }
            }
        }
    }
}
