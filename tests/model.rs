//! Model-based property test: random send/poll/commit/list sequences, with arbitrary JSON
//! messages, through the real parser and RPCs, checked step by step against a `BTreeMap`.
//!
//! Few keys and a small poll cap, so logs grow past the cap: polls start anywhere, near the end
//! of a key's log, or where the last poll of that key left off (paging through it, as a client
//! does). `the_generated_polls_reach_the_cap_and_page` checks that they do.

use std::collections::BTreeMap;

use maelstrom_kafka::protocol::{Incoming, Keys, Parser};
use maelstrom_kafka::{Config, Shared, rpc};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::util::json_value;

/// Three keys, one needing escapes and one not ASCII, so that each log grows long.
const KEYS: [&str; 3] = ["0", "k\"1", "\u{e9}2"];
const POLL_MAX: usize = 2;

#[derive(Debug, Clone)]
enum Op {
    Send { key: usize, msg: Value },
    Poll { offsets: Vec<(usize, Start)> },
    Commit { offsets: Vec<(usize, u64)> },
    List { keys: Vec<usize> },
}

/// Where a poll of one key starts, resolved against the model when the poll runs.
#[derive(Debug, Clone, Copy)]
enum Start {
    /// This offset, whatever the log's length.
    At(u64),
    /// This many offsets before the end of the log (0: at the end; past the start: 0).
    FromEnd(u64),
    /// Where the last poll of this key stopped: the offset after the last one it returned.
    Next,
}

/// Offsets maps with distinct keys (a JSON object cannot repeat them), any key including
/// ones never written.
fn offsets() -> impl Strategy<Value = Vec<(usize, u64)>> {
    prop::collection::btree_map(0..KEYS.len(), 0..24u64, 0..4).prop_map(|m| m.into_iter().collect())
}

fn poll_starts() -> impl Strategy<Value = Vec<(usize, Start)>> {
    let start = prop_oneof![
        (0..12u64).prop_map(Start::At),
        (0..=POLL_MAX as u64 + 2).prop_map(Start::FromEnd),
        Just(Start::Next),
    ];
    prop::collection::btree_map(0..KEYS.len(), start, 0..4).prop_map(|m| m.into_iter().collect())
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..KEYS.len(), json_value(".{0,12}", ".{0,4}")).prop_map(|(key, msg)| Op::Send { key, msg }),
        3 => poll_starts().prop_map(|offsets| Op::Poll { offsets }),
        2 => offsets().prop_map(|offsets| Op::Commit { offsets }),
        1 => prop::collection::vec(0..KEYS.len(), 0..4).prop_map(|keys| Op::List { keys }),
    ]
}

#[derive(Default)]
struct Model {
    logs: BTreeMap<usize, Vec<Value>>,
    committed: BTreeMap<usize, u64>,
    /// Per key, the offset after the last one a poll returned.
    next: BTreeMap<usize, u64>,
}

impl Model {
    fn len(&self, key: usize) -> u64 {
        self.logs.get(&key).map_or(0, |log| log.len() as u64)
    }

    /// The offset a poll of `key` starts from.
    fn resolve(&self, key: usize, start: Start) -> u64 {
        match start {
            Start::At(offset) => offset,
            Start::FromEnd(back) => self.len(key).saturating_sub(back),
            Start::Next => self.next.get(&key).copied().unwrap_or(0),
        }
    }

    /// What a poll of `key` from `from` returns: at most `POLL_MAX` pairs. Moves the key's
    /// `Next` start past them.
    fn poll(&mut self, key: usize, from: u64) -> Vec<Value> {
        let log = self.logs.get(&key).map_or(&[][..], Vec::as_slice);
        let pairs: Vec<Value> = log
            .iter()
            .enumerate()
            .skip(from as usize)
            .take(POLL_MAX)
            .map(|(o, m)| json!([o, m]))
            .collect();
        if !pairs.is_empty() {
            self.next.insert(key, from + pairs.len() as u64);
        }
        pairs
    }
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
                Op::Poll { offsets } => {
                    let resolved: Vec<(usize, u64)> =
                        offsets.iter().map(|&(k, start)| (k, model.resolve(k, start))).collect();
                    json!({"type": "poll", "offsets": key_map(&resolved)})
                }
                Op::Commit { offsets } => json!({"type": "commit_offsets", "offsets": key_map(offsets)}),
                Op::List { keys } => json!({"type": "list_committed_offsets", "keys": keys.iter().map(|k| KEYS[*k]).collect::<Vec<_>>()}),
            };
            let mut body = body;
            body["msg_id"] = json!(msg_id);
            let line = json!({"src": "c1", "dest": "n0", "body": body}).to_string();
            let mut keys = Keys::new();
            let Ok(Incoming::Request(request)) = parser.parse(line.as_bytes(), true, &mut keys) else {
                panic!("a well-formed request parses: {line}");
            };
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
                    for &(key, start) in offsets {
                        let from = model.resolve(key, start);
                        let pairs = model.poll(key, from);
                        if !pairs.is_empty() {
                            expected.insert(KEYS[key].to_owned(), Value::Array(pairs));
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

/// The generator explores what the model test is for: across the cases proptest runs, many
/// polls of a key are cut short by the cap, and many pick up where a capped one stopped.
/// Runs the generated sequences through the model alone, with proptest's deterministic seed.
#[test]
fn the_generated_polls_reach_the_cap_and_page() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let (mut key_polls, mut capped, mut paged) = (0, 0, 0);
    for _ in 0..256 {
        let ops = prop::collection::vec(op(), 1..60)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Send { key, msg } => model.logs.entry(key).or_default().push(msg),
                Op::Poll { offsets } => {
                    for (key, start) in offsets {
                        let from = model.resolve(key, start);
                        let resumed = matches!(start, Start::Next) && from > 0;
                        key_polls += 1;
                        if model.poll(key, from).len() == POLL_MAX
                            && from + (POLL_MAX as u64) < model.len(key)
                        {
                            capped += 1;
                            paged += usize::from(resumed);
                        }
                    }
                }
                Op::Commit { .. } | Op::List { .. } => {}
            }
        }
    }
    eprintln!(
        "{key_polls} key polls: {capped} cut short by the cap, {paged} of them resuming a paged read"
    );
    assert!(
        capped * 5 >= key_polls,
        "only {capped} of {key_polls} key polls hit the cap"
    );
    assert!(
        paged * 20 >= key_polls,
        "only {paged} of {key_polls} key polls paged on past the cap"
    );
}
