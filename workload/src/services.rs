//! The services a node may talk to over the network: `lin-kv`, `seq-kv`, `lww-kv` and
//! `lin-tso`, with the behaviour of Maelstrom's own services (its `service.clj`).
//!
//! Each service handles one request at a time and answers with a body that carries
//! `in_reply_to` (the request's `msg_id`, or `null` when it had none) and no `msg_id`.
//! The runner routes requests here through its network, with latency, like any message
//! between servers.
//!
//! # Format
//!
//! The three key-value services take the same requests:
//!
//! ```text
//! {"type":"read","key":K}                      -> {"type":"read_ok","value":V}   | error 20
//! {"type":"write","key":K,"value":V}           -> {"type":"write_ok"}
//! {"type":"cas","key":K,"from":A,"to":B}       -> {"type":"cas_ok"}              | error 22 | error 20
//!     (optional "create_if_not_exists": true creates a missing key; lww-kv ignores it)
//! ```
//!
//! and `lin-tso` takes `{"type":"ts"}` and answers `{"type":"ts_ok","ts":N}`, N = 0, 1, 2, …
//!
//! # What a node sees, as in Maelstrom
//!
//! * Keys and values are any JSON. They are compared as parsed JSON values: `1` and `"1"`
//!   are different keys, and `1` does not equal `1.0` (Maelstrom compares a Long and a
//!   Double as different; `serde_json` keeps integers and floats apart in the same way).
//! * A missing field reads as `null` (Maelstrom looks fields up in a map, which gives nil):
//!   a `cas` without `from` succeeds only if the value is `null`, and a `read` without `key`
//!   reads the key `null`. `create_if_not_exists` counts as set unless it is missing,
//!   `null` or `false` (Clojure's truthiness).
//! * A request whose `type` the service does not know (or a body that is not an object)
//!   gets **no reply**: Maelstrom's service thread logs the exception and moves on.
//! * `lin-kv` is one linearizable map.
//! * `seq-kv` keeps the last [`SEQ_STATES`] states. A request is first tried on a random
//!   state between the last one the requesting node (`src`) saw and the newest. If it
//!   leaves that state unchanged (a read, a failed `cas`, a `write` of the value already
//!   there), that is the answer, and the node's view moves to that state. Otherwise it is
//!   run again on the newest state, its result becomes a new state, and the node's view
//!   moves to it. A node more than [`SEQ_STATES`] states behind is served, as by
//!   Maelstrom's ring buffer, the state in the window whose index is congruent to the
//!   picked one, while its view records the picked index: such a lagging node may see
//!   states out of order until it catches up.
//! * `lww-kv` simulates [`LWW_REPLICAS`] replicas and runs each request on a random one.
//!   Maelstrom also merges one random replica into another on each request, but it drops
//!   the merged result (the new replica vector is built from the unmerged one), so its
//!   replicas never converge: a value written to one replica is only ever read from that
//!   one. This module does the same. Its `cas` ignores `create_if_not_exists`.
//! * `lin-tso` hands out 0, 1, 2, … .

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::edn;

/// The service names, as node ids on the network.
pub const NAMES: [&str; 4] = ["lin-kv", "seq-kv", "lww-kv", "lin-tso"];

/// How many states `seq-kv` keeps (Maelstrom's ring buffer size).
pub const SEQ_STATES: u64 = 32;

/// How many replicas `lww-kv` simulates (Maelstrom's code says 2; its docs say 5).
pub const LWW_REPLICAS: usize = 2;

/// All four services, with one seeded random source.
#[derive(Debug)]
pub struct Services {
    rng: fastrand::Rng,
    lin_kv: HashMap<KeyRepr, Value>,
    seq_kv: SeqKv,
    lww_kv: [HashMap<KeyRepr, Value>; LWW_REPLICAS],
    next_ts: u64,
}

impl Services {
    pub fn new(seed: u64) -> Services {
        Services {
            rng: fastrand::Rng::with_seed(seed),
            lin_kv: HashMap::new(),
            seq_kv: SeqKv::default(),
            lww_kv: Default::default(),
            next_ts: 0,
        }
    }

    /// Whether `name` is one of the services' node ids.
    pub fn is_service(name: &str) -> bool {
        NAMES.contains(&name)
    }

    /// Handles one request from `src` to the service `dest`, returning the reply body, or
    /// `None` when the service sends no reply (unknown request type, or `dest` is not a
    /// service).
    pub fn handle(&mut self, dest: &str, src: &str, body: &Value) -> Option<Value> {
        let obj = body.as_object()?;
        let ty = obj.get("type")?.as_str()?;
        let mut reply = match dest {
            "lin-tso" => {
                if ty != "ts" {
                    return None;
                }
                let ts = self.next_ts;
                self.next_ts += 1;
                json!({"type": "ts_ok", "ts": ts})
            }
            "lin-kv" => {
                let req = Req::parse(ty, obj)?;
                let (reply, change) = step(self.lin_kv.get(&req.key), &req, false);
                if let Some(v) = change {
                    self.lin_kv.insert(req.key, v);
                }
                reply
            }
            "seq-kv" => {
                let req = Req::parse(ty, obj)?;
                self.seq_kv.handle(src, &req, &mut self.rng)
            }
            "lww-kv" => {
                let req = Req::parse(ty, obj)?;
                // Maelstrom draws a merge source and destination here, merges, and then
                // drops the merge (see the module docs): only the replica choice matters.
                let replica = &mut self.lww_kv[self.rng.usize(..LWW_REPLICAS)];
                let (reply, change) = step(replica.get(&req.key), &req, true);
                if let Some(v) = change {
                    replica.insert(req.key, v);
                }
                reply
            }
            _ => return None,
        };
        reply["in_reply_to"] = obj.get("msg_id").cloned().unwrap_or(Value::Null);
        Some(reply)
    }
}

/// A JSON value in a form that hashes and compares as the value does: a type tag and a
/// canonical rendering (object keys sorted, integers and floats kept apart, `-0.0` as
/// `0.0`, since `-0.0 == 0.0` as values).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct KeyRepr(String);

impl KeyRepr {
    fn of(v: &Value) -> KeyRepr {
        let mut s = String::new();
        canonical(v, &mut s);
        KeyRepr(s)
    }
}

fn canonical(v: &Value, out: &mut String) {
    use std::fmt::Write as _;
    match v {
        Value::Null => out.push('z'),
        Value::Bool(b) => out.push(if *b { 't' } else { 'f' }),
        Value::Number(n) => {
            if let Some(i) = n.as_u64() {
                let _ = write!(out, "u{i};");
            } else if let Some(i) = n.as_i64() {
                let _ = write!(out, "i{i};");
            } else {
                let x = n.as_f64().unwrap_or(0.0) + 0.0;
                let _ = write!(out, "d{};", x.to_bits());
            }
        }
        Value::String(s) => {
            let _ = write!(out, "s{}:{s}", s.len());
        }
        Value::Array(a) => {
            let _ = write!(out, "a{}[", a.len());
            for x in a {
                canonical(x, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let _ = write!(out, "o{}{{", m.len());
            for k in keys {
                let _ = write!(out, "{}:{k}", k.len());
                canonical(&m[k], out);
            }
            out.push('}');
        }
    }
}

/// A key-value request.
#[derive(Debug)]
struct Req {
    key: KeyRepr,
    op: Op,
}

#[derive(Debug)]
enum Op {
    Read,
    Write(Value),
    Cas {
        from: Value,
        to: Value,
        create_if_not_exists: bool,
    },
}

impl Req {
    /// `None` for a type the key-value services do not know: no reply.
    fn parse(ty: &str, body: &Map<String, Value>) -> Option<Req> {
        let field = |k: &str| body.get(k).cloned().unwrap_or(Value::Null);
        let op = match ty {
            "read" => Op::Read,
            "write" => Op::Write(field("value")),
            "cas" => Op::Cas {
                from: field("from"),
                to: field("to"),
                create_if_not_exists: !matches!(
                    body.get("create_if_not_exists"),
                    None | Some(Value::Null | Value::Bool(false))
                ),
            },
            _ => return None,
        };
        Some(Req {
            key: KeyRepr::of(body.get("key").unwrap_or(&Value::Null)),
            op,
        })
    }
}

/// Runs `req` against a key whose current value is `cur`. Returns the reply body and, if
/// the state changes, the key's new value. A write or cas that leaves the value equal is
/// no change, as Maelstrom compares states by value. `lww` is lww-kv's variant: its cas
/// ignores `create_if_not_exists`, and its error text prints `from` with `str`.
fn step(cur: Option<&Value>, req: &Req, lww: bool) -> (Value, Option<Value>) {
    let set = |v: &Value| (cur != Some(v)).then(|| v.clone());
    match (&req.op, cur) {
        (Op::Read, Some(v)) => (json!({"type": "read_ok", "value": v}), None),
        (Op::Read, None) => (key_missing(), None),
        (Op::Write(v), _) => (json!({"type": "write_ok"}), set(v)),
        (Op::Cas { from, to, .. }, Some(v)) => {
            if from == v {
                (json!({"type": "cas_ok"}), set(to))
            } else {
                // Maelstrom's texts: the values as Clojure prints them; lww-kv prints
                // `from` with `str`, which leaves a string unquoted.
                let from_text = match from {
                    Value::String(s) if lww => s.clone(),
                    other => edn::plain(other).compact(),
                };
                let text = format!(
                    "current value {} is not {from_text}",
                    edn::plain(v).compact()
                );
                (json!({"type": "error", "code": 22, "text": text}), None)
            }
        }
        (
            Op::Cas {
                to,
                create_if_not_exists,
                ..
            },
            None,
        ) => {
            if !lww && *create_if_not_exists {
                (json!({"type": "cas_ok"}), Some(to.clone()))
            } else {
                (key_missing(), None)
            }
        }
    }
}

fn key_missing() -> Value {
    json!({"type": "error", "code": 20, "text": "key does not exist"})
}

/// `seq-kv`'s recent states, stored per key as the value each key took at each state index
/// (there are no deletes, so a key without an entry at or before a state is absent there).
#[derive(Debug, Default)]
struct SeqKv {
    /// The newest state's index; state 0 is the empty map.
    last: u64,
    /// Per key, ascending state indices with the value set at that state. Entries older than
    /// the window are dropped, except the newest of them, which the window's first state uses.
    keys: HashMap<KeyRepr, Vec<(u64, Value)>>,
    /// The state index each requesting node last saw (0 when it never asked).
    seen: HashMap<String, u64>,
}

impl SeqKv {
    /// The number of states held, and the index of the oldest.
    fn window(&self) -> (u64, u64) {
        let len = (self.last + 1).min(SEQ_STATES);
        (len, self.last + 1 - len)
    }

    /// The state Maelstrom's ring buffer returns for `index`: itself when it is still held,
    /// otherwise the held state congruent to it modulo the window's length.
    fn held_state(&self, index: u64) -> u64 {
        let (len, start) = self.window();
        if index >= start {
            index
        } else {
            start + (len - (start - index) % len) % len
        }
    }

    fn value_at(&self, key: &KeyRepr, state: u64) -> Option<&Value> {
        self.keys
            .get(key)?
            .iter()
            .rev()
            .find(|(s, _)| *s <= state)
            .map(|(_, v)| v)
    }

    fn handle(&mut self, src: &str, req: &Req, rng: &mut fastrand::Rng) -> Value {
        let seen = self.seen.get(src).copied().unwrap_or(0);
        let index = rng.u64(seen..=self.last);
        let state = self.held_state(index);
        let (reply, change) = step(self.value_at(&req.key, state), req, false);
        if change.is_none() {
            self.seen.insert(src.to_owned(), index);
            return reply;
        }
        // It would change a state that may be in the past: run it on the newest instead,
        // which makes a new state even if nothing changes there.
        let (reply, change) = step(self.value_at(&req.key, self.last), req, false);
        self.last += 1;
        if let Some(v) = change {
            let (_, start) = self.window();
            let entries = self.keys.entry(req.key.clone()).or_default();
            entries.push((self.last, v));
            let drop = entries.windows(2).take_while(|w| w[1].0 <= start).count();
            entries.drain(..drop);
        }
        self.seen.insert(src.to_owned(), self.last);
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(s: &mut Services, dest: &str, src: &str, body: Value) -> Option<Value> {
        s.handle(dest, src, &body)
    }

    fn read(s: &mut Services, dest: &str, src: &str, key: Value) -> Value {
        req(
            s,
            dest,
            src,
            json!({"type": "read", "key": key, "msg_id": 1}),
        )
        .unwrap()
    }

    fn write(s: &mut Services, dest: &str, src: &str, key: Value, value: Value) {
        let r = req(
            s,
            dest,
            src,
            json!({"type": "write", "key": key, "value": value, "msg_id": 1}),
        );
        assert_eq!(r.unwrap()["type"], "write_ok");
    }

    fn cas(s: &mut Services, dest: &str, src: &str, from: Value, to: Value) -> Value {
        let body = json!({"type": "cas", "key": "x", "from": from, "to": to, "msg_id": 3});
        req(s, dest, src, body).unwrap()
    }

    fn code(r: &Value) -> Option<i64> {
        (r["type"] == "error").then(|| r["code"].as_i64().unwrap())
    }

    #[test]
    fn names() {
        for n in NAMES {
            assert!(Services::is_service(n));
        }
        assert!(!Services::is_service("n0"));
        assert!(!Services::is_service("c1"));
        assert!(!Services::is_service("lin_kv"));
    }

    #[test]
    fn lin_kv_read_write_cas() {
        let mut s = Services::new(1);
        for dest in ["lin-kv", "seq-kv", "lww-kv"] {
            let r = read(&mut s, dest, "n0", json!("x"));
            assert_eq!(code(&r), Some(20), "{dest}: {r}");
            assert_eq!(r["in_reply_to"], 1);
        }
        write(&mut s, "lin-kv", "n0", json!("x"), json!(1));
        let r = read(&mut s, "lin-kv", "n1", json!("x"));
        assert_eq!(r, json!({"type": "read_ok", "value": 1, "in_reply_to": 1}));
        // cas: mismatch, match, then the new value is read.
        let r = cas(&mut s, "lin-kv", "n1", json!(2), json!(3));
        assert_eq!(code(&r), Some(22));
        assert_eq!(r["in_reply_to"], 3);
        assert_eq!(r["text"], "current value 1 is not 2");
        let r = cas(&mut s, "lin-kv", "n1", json!(1), json!(3));
        assert_eq!(r, json!({"type": "cas_ok", "in_reply_to": 3}));
        assert_eq!(read(&mut s, "lin-kv", "n0", json!("x"))["value"], 3);
        // A missing key: 20, unless create_if_not_exists.
        let missing = json!({"type": "cas", "key": "y", "from": 0, "to": 5, "msg_id": 4});
        assert_eq!(code(&s.handle("lin-kv", "n0", &missing).unwrap()), Some(20));
        let mut create = missing.clone();
        create["create_if_not_exists"] = json!(true);
        assert_eq!(s.handle("lin-kv", "n0", &create).unwrap()["type"], "cas_ok");
        assert_eq!(read(&mut s, "lin-kv", "n0", json!("y"))["value"], 5);
        // With the key present, `from` is still compared.
        assert_eq!(code(&s.handle("lin-kv", "n0", &create).unwrap()), Some(22));
    }

    #[test]
    fn create_if_not_exists_is_clojure_truthy() {
        let mut s = Services::new(1);
        for (i, flag) in [json!(false), json!(null)].into_iter().enumerate() {
            let body =
                json!({"type": "cas", "key": i, "from": 0, "to": 5, "create_if_not_exists": flag});
            assert_eq!(code(&s.handle("lin-kv", "n0", &body).unwrap()), Some(20));
        }
        for (i, flag) in [json!(0), json!(""), json!("false")]
            .into_iter()
            .enumerate()
        {
            let body =
                json!({"type": "cas", "key": i, "from": 0, "to": 5, "create_if_not_exists": flag});
            assert_eq!(s.handle("lin-kv", "n0", &body).unwrap()["type"], "cas_ok");
        }
    }

    #[test]
    fn values_compare_as_parsed_json() {
        let mut s = Services::new(1);
        write(&mut s, "lin-kv", "n0", json!(1), json!("int key"));
        write(&mut s, "lin-kv", "n0", json!("1"), json!("string key"));
        write(&mut s, "lin-kv", "n0", json!(1.0), json!("float key"));
        write(
            &mut s,
            "lin-kv",
            "n0",
            json!({"b": 1, "a": [1, 2]}),
            json!("map key"),
        );
        assert_eq!(read(&mut s, "lin-kv", "n0", json!(1))["value"], "int key");
        assert_eq!(
            read(&mut s, "lin-kv", "n0", json!("1"))["value"],
            "string key"
        );
        assert_eq!(
            read(&mut s, "lin-kv", "n0", json!(1.0))["value"],
            "float key"
        );
        let parsed: Value = serde_json::from_str(r#"{"a":[1,2],"b":1}"#).unwrap();
        assert_eq!(read(&mut s, "lin-kv", "n0", parsed)["value"], "map key");
        let other: Value = serde_json::from_str(r#"{"a":[1,2.0],"b":1}"#).unwrap();
        assert_eq!(code(&read(&mut s, "lin-kv", "n0", other)), Some(20));
        // 1 is not 1.0 and not "1" for cas either.
        let one: Value = serde_json::from_str("1").unwrap();
        let one_f: Value = serde_json::from_str("1.0").unwrap();
        s.handle(
            "lin-kv",
            "n0",
            &json!({"type": "write", "key": "x", "value": one}),
        );
        assert_eq!(
            code(&cas(&mut s, "lin-kv", "n0", one_f, json!(2))),
            Some(22)
        );
        assert_eq!(
            code(&cas(&mut s, "lin-kv", "n0", json!("1"), json!(2))),
            Some(22)
        );
        assert_eq!(
            cas(&mut s, "lin-kv", "n0", json!(1), json!(2))["type"],
            "cas_ok"
        );
        // -0.0 equals 0.0 as a number, so both name one key.
        write(&mut s, "lin-kv", "n0", json!(-0.0), json!("zero"));
        assert_eq!(read(&mut s, "lin-kv", "n0", json!(0.0))["value"], "zero");
    }

    #[test]
    fn missing_fields_read_as_null() {
        let mut s = Services::new(1);
        // No key: the key is null. No value: the value is null.
        assert_eq!(
            s.handle("lin-kv", "n0", &json!({"type": "write"})).unwrap()["type"],
            "write_ok"
        );
        let r = read(&mut s, "lin-kv", "n0", json!(null));
        assert_eq!(r["type"], "read_ok");
        assert_eq!(r["value"], Value::Null);
        // A cas without from matches the null value.
        let r = s
            .handle("lin-kv", "n0", &json!({"type": "cas", "to": 1}))
            .unwrap();
        assert_eq!(r["type"], "cas_ok");
        // No msg_id: in_reply_to is null, and there is never a msg_id.
        assert_eq!(r["in_reply_to"], Value::Null);
        assert!(r.as_object().unwrap().contains_key("in_reply_to"));
        assert!(r.get("msg_id").is_none());
    }

    #[test]
    fn unknown_requests_get_no_reply() {
        let mut s = Services::new(1);
        for dest in NAMES {
            for body in [
                json!({"type": "frobnicate", "msg_id": 1}),
                json!({"type": 5, "msg_id": 1}),
                json!({"msg_id": 1}),
                json!("read"),
                json!([1]),
            ] {
                assert_eq!(s.handle(dest, "n0", &body), None, "{dest} {body}");
            }
        }
        assert_eq!(s.handle("lin-tso", "n0", &json!({"type": "read"})), None);
        assert_eq!(s.handle("lin-kv", "n0", &json!({"type": "ts"})), None);
        assert_eq!(s.handle("n1", "n0", &json!({"type": "read"})), None);
        // The unknown requests changed nothing.
        assert_eq!(
            s.handle("lin-tso", "n0", &json!({"type": "ts", "msg_id": 9})),
            Some(json!({"type": "ts_ok", "ts": 0, "in_reply_to": 9}))
        );
    }

    #[test]
    fn lin_tso_counts_from_zero() {
        let mut s = Services::new(1);
        for i in 0..100u64 {
            let r = s
                .handle(
                    "lin-tso",
                    &format!("n{}", i % 3),
                    &json!({"type": "ts", "msg_id": i}),
                )
                .unwrap();
            assert_eq!(r, json!({"type": "ts_ok", "ts": i, "in_reply_to": i}));
        }
    }

    /// Node "w" writes 1..=n to x on seq-kv.
    fn seq_with_writes(seed: u64, n: i64) -> Services {
        let mut s = Services::new(seed);
        for i in 1..=n {
            write(&mut s, "seq-kv", "w", json!("x"), json!(i));
        }
        s
    }

    fn seq_read(s: &mut Services, src: &str) -> Option<i64> {
        let r = read(s, "seq-kv", src, json!("x"));
        match code(&r) {
            Some(20) => None,
            None => Some(r["value"].as_i64().unwrap()),
            c => panic!("unexpected {c:?}"),
        }
    }

    #[test]
    fn seq_kv_fresh_nodes_read_old_states() {
        let mut s = seq_with_writes(7, 8);
        let reads: std::collections::BTreeSet<_> = (0..64)
            .map(|i| seq_read(&mut s, &format!("fresh-{i}")))
            .collect();
        // Some saw the empty initial state, some the newest, and some in between.
        assert!(reads.contains(&None), "{reads:?}");
        assert!(reads.contains(&Some(8)), "{reads:?}");
        assert!(reads.len() > 3, "{reads:?}");
        // The writer itself saw its own write: it reads the newest state only.
        for _ in 0..50 {
            assert_eq!(seq_read(&mut s, "w"), Some(8));
        }
    }

    #[test]
    fn seq_kv_views_are_monotonic_per_node_and_converge() {
        for seed in 0..20 {
            let mut s = seq_with_writes(seed, 20);
            let mut last = None;
            let mut reads = 0;
            while last != Some(20) {
                let v = seq_read(&mut s, "r");
                assert!(v >= last, "seed {seed}: read {v:?} after {last:?}");
                last = v;
                reads += 1;
                assert!(reads < 1000, "seed {seed}: never caught up");
            }
            // Caught up, it stays at the newest.
            assert_eq!(seq_read(&mut s, "r"), Some(20));
        }
    }

    #[test]
    fn seq_kv_a_write_moves_the_writer_to_the_newest_state() {
        for seed in 0..20 {
            let mut s = seq_with_writes(seed, 10);
            // A write to another key is a state change: it runs on the newest state.
            write(&mut s, "seq-kv", "r", json!("other"), json!(seed));
            assert_eq!(seq_read(&mut s, "r"), Some(10), "seed {seed}");
        }
    }

    #[test]
    fn seq_kv_failed_cas_may_see_a_stale_state_and_a_changing_cas_runs_on_the_newest() {
        let mut stale = 0;
        for seed in 0..40 {
            let mut s = seq_with_writes(seed, 10);
            let r = cas(&mut s, "seq-kv", &format!("c{seed}"), json!(10), json!(11));
            match code(&r) {
                // Tried on a past state where x was not 10 (or absent): a failed cas changes
                // nothing, so that is the answer.
                Some(22 | 20) => stale += 1,
                None => assert_eq!(seq_read(&mut s, &format!("c{seed}")), Some(11)),
                c => panic!("{c:?}"),
            }
            // A cas from a past value would change a past state, so it is re-run on the
            // newest, where it fails: it never succeeds against a stale value.
            let r = cas(&mut s, "seq-kv", &format!("d{seed}"), json!(3), json!(99));
            assert_ne!(r["type"], "cas_ok", "seed {seed}: {r}");
        }
        assert!(stale > 0, "a fresh node's cas never saw a past state");
    }

    #[test]
    fn seq_kv_a_write_of_the_current_value_is_no_change() {
        // Writing the value a past state already holds changes nothing there, so Maelstrom
        // serves it on that past state and the node does not move up to the newest state.
        let mut moved = 0;
        for seed in 0..40 {
            let mut s = Services::new(seed);
            write(&mut s, "seq-kv", "w", json!("x"), json!(1));
            for i in 0..10 {
                write(&mut s, "seq-kv", "w", json!("y"), json!(i));
            }
            write(&mut s, "seq-kv", "r", json!("x"), json!(1));
            let r = read(&mut s, "seq-kv", "r", json!("y"));
            moved += usize::from(r["value"] == 9);
        }
        assert!(moved < 40, "an unchanged write always moved the node up");
    }

    #[test]
    fn seq_kv_keeps_only_the_last_states() {
        // After 100 writes, a fresh node reads from the last 32 states only.
        for seed in 0..30 {
            let mut s = seq_with_writes(seed, 100);
            let v = seq_read(&mut s, &format!("fresh{seed}")).unwrap();
            assert!(v > 100 - SEQ_STATES as i64, "seed {seed}: read {v}");
        }
        // And the per-key history stays bounded.
        let s = seq_with_writes(1, 1000);
        let n = s.seq_kv.keys[&KeyRepr::of(&json!("x"))].len() as u64;
        assert!(n <= SEQ_STATES + 1, "{n} entries kept");
    }

    #[test]
    fn seq_kv_ring_buffer_index_mapping() {
        let mut kv = SeqKv {
            last: 10,
            ..SeqKv::default()
        };
        assert_eq!(kv.held_state(0), 0);
        assert_eq!(kv.held_state(10), 10);
        kv.last = 100; // holds 69..=100
        assert_eq!(kv.held_state(69), 69);
        assert_eq!(kv.held_state(100), 100);
        assert_eq!(kv.held_state(68), 100);
        assert_eq!(kv.held_state(37), 69);
        assert_eq!(kv.held_state(5), 69);
        assert_eq!(kv.held_state(6), 70);
    }

    #[test]
    fn lww_kv_replicas_never_converge() {
        let mut s = Services::new(3);
        write(&mut s, "lww-kv", "n0", json!("x"), json!(1));
        let (mut found, mut missing) = (0, 0);
        for _ in 0..400 {
            match code(&read(&mut s, "lww-kv", "n1", json!("x"))) {
                None => found += 1,
                Some(20) => missing += 1,
                c => panic!("{c:?}"),
            }
        }
        // One write went to one of the two replicas; reads keep hitting both.
        assert!(
            found > 100 && missing > 100,
            "{found} found, {missing} missing"
        );
    }

    #[test]
    fn lww_kv_cas_ignores_create_if_not_exists() {
        let mut s = Services::new(3);
        for i in 0..50 {
            let body =
                json!({"type": "cas", "key": i, "from": 0, "to": 1, "create_if_not_exists": true});
            assert_eq!(code(&s.handle("lww-kv", "n0", &body).unwrap()), Some(20));
        }
        // Present on the replica it hits, cas works as on the other services.
        write(&mut s, "lww-kv", "n0", json!("x"), json!(1));
        let mut ok = 0;
        for _ in 0..50 {
            let r = cas(&mut s, "lww-kv", "n0", json!(1), json!(1));
            ok += usize::from(r["type"] == "cas_ok");
        }
        assert!(ok > 0);
        // Error texts print values as Clojure does; lww-kv leaves a string `from` unquoted.
        let mut s = Services::new(3);
        for dest in ["lin-kv", "lww-kv"] {
            for _ in 0..20 {
                write(&mut s, dest, "n0", json!("x"), json!(["a", {"k": 1}]));
            }
        }
        let r = cas(&mut s, "lin-kv", "n0", json!("b"), json!(1));
        assert_eq!(r["text"], r#"current value ["a" {"k" 1}] is not "b""#);
        let r = cas(&mut s, "lww-kv", "n0", json!("b"), json!(1));
        assert_eq!(r["text"], r#"current value ["a" {"k" 1}] is not b"#);
    }

    #[test]
    fn seeded_runs_repeat() {
        let run = |seed| {
            let mut s = seq_with_writes(seed, 30);
            (0..20)
                .map(|i| seq_read(&mut s, &format!("f{i}")))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(5), run(5));
    }
}
