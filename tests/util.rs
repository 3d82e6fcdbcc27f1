//! Shared helpers: run the real pipeline in memory on JSON lines, and check every reply against
//! the closed schemas Maelstrom's client enforces.

use std::io::{self, Cursor, Write};
use std::sync::{Arc, Mutex};

use maelstrom_kafka::{Config, run};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// An in-memory stdout that the test can read after the node is done.
#[derive(Clone, Default)]
pub struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Sink {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).expect("stdout is UTF-8")
    }
}

pub fn config(workers: usize) -> Config {
    Config {
        workers,
        ..Config::default()
    }
}

/// Runs the node on `input` to its end and returns what it wrote, line by line.
pub fn run_text(input: impl Into<Vec<u8>>, config: Config) -> Vec<String> {
    let sink = Sink::default();
    run(Cursor::new(input.into()), sink.clone(), config).expect("the node runs to the end");
    let text = sink.text();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "output ends mid-line: {text:?}"
    );
    text.lines().map(str::to_owned).collect()
}

/// The init line for node `n0`, from client `c0`, msg_id 1.
pub fn init() -> Value {
    json!({"src": "c0", "dest": "n0", "body": {"type": "init", "msg_id": 1, "node_id": "n0", "node_ids": ["n0"]}})
}

/// An envelope from `src` to n0 carrying `body`.
pub fn msg(src: &str, body: Value) -> Value {
    json!({"id": 7, "src": src, "dest": "n0", "body": body})
}

/// Runs the node on `init` followed by `requests`, checks every output line is a valid reply,
/// and returns the reply bodies to `requests` in request order (matched by `in_reply_to`; every
/// request must have exactly one). Each request needs a distinct `(src, msg_id)`.
pub fn rpc(requests: &[Value], config: Config) -> Vec<Value> {
    let mut input = init().to_string() + "\n";
    for r in requests {
        input += &(r.to_string() + "\n");
    }
    let lines = run_text(input, config);
    let replies: Vec<Value> = lines.iter().map(|l| check_reply(l)).collect();
    assert_eq!(
        replies.len(),
        requests.len() + 1,
        "one reply per request: {lines:#?}"
    );
    requests
        .iter()
        .map(|r| {
            let matching: Vec<&Value> = replies
                .iter()
                .filter(|reply| {
                    reply["dest"] == r["src"] && reply["body"]["in_reply_to"] == r["body"]["msg_id"]
                })
                .collect();
            assert_eq!(matching.len(), 1, "exactly one reply to {r}: {lines:#?}");
            matching[0]["body"].clone()
        })
        .collect()
}

/// Parses a reply line and checks it against Maelstrom's closed schemas: envelope fields `src`,
/// `dest`, `body` only; body fields exactly those of its type; no nulls; integers where due.
pub fn check_reply(line: &str) -> Value {
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    let envelope = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {line}"));
    assert_eq!(
        keys(envelope),
        ["body", "dest", "src"],
        "envelope fields: {line}"
    );
    assert_eq!(v["src"], "n0", "replies come from n0: {line}");
    assert!(v["dest"].is_string(), "{line}");
    let body = v["body"]
        .as_object()
        .unwrap_or_else(|| panic!("body not an object: {line}"));
    assert!(body["in_reply_to"].is_u64(), "in_reply_to: {line}");
    let ty = body["type"]
        .as_str()
        .unwrap_or_else(|| panic!("type: {line}"));
    let expected: &[&str] = match ty {
        "init_ok" | "commit_offsets_ok" => &[],
        "send_ok" => {
            assert!(body["offset"].is_u64(), "offset: {line}");
            &["offset"]
        }
        "poll_ok" => {
            for (_, pairs) in body["msgs"].as_object().expect("msgs is an object") {
                let mut last = None;
                for pair in pairs.as_array().expect("msgs values are lists") {
                    let pair = pair.as_array().expect("pairs are lists");
                    assert_eq!(pair.len(), 2, "pair: {line}");
                    let offset = pair[0].as_u64().expect("pair offset is an integer");
                    assert!(
                        last.is_none_or(|l| offset == l + 1),
                        "gap or disorder: {line}"
                    );
                    last = Some(offset);
                }
                assert!(last.is_some(), "keys with nothing are left out: {line}");
            }
            &["msgs"]
        }
        "list_committed_offsets_ok" => {
            for (_, o) in body["offsets"].as_object().expect("offsets is an object") {
                assert!(o.is_u64(), "{line}");
            }
            &["offsets"]
        }
        "error" => {
            assert!(body["code"].is_u64(), "{line}");
            assert!(body["text"].is_string(), "{line}");
            &["code", "text"]
        }
        other => panic!("unexpected reply type {other}: {line}"),
    };
    let mut allowed: Vec<&str> = ["in_reply_to", "type"]
        .iter()
        .chain(expected)
        .copied()
        .collect();
    allowed.sort_unstable();
    assert_eq!(keys(body), allowed, "body fields: {line}");
    v
}

fn keys(map: &Map<String, Value>) -> Vec<&str> {
    let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

/// Arbitrary JSON values, nested up to three deep, for property tests: strings drawn from
/// `strings`, object member names from `names`.
pub fn json_value(
    strings: impl Strategy<Value = String> + 'static,
    names: impl Strategy<Value = String> + Clone + 'static,
) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(Value::from),
        strings.prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(names.clone(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
