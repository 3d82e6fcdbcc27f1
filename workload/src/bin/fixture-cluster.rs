//! Multi-node kafka nodes for the checker's and the network's tests: two correct designs
//! and several broken ones, chosen with `--mode <name>`.
//!
//! | mode             | design                                                                 | expected verdict |
//! |------------------|------------------------------------------------------------------------|------------------|
//! | `owner`          | each key has an owner (a hash over `node_ids`); other nodes forward sends, polls, commits and lists to it, with their own msg_ids, retrying until answered; the owner deduplicates retried sends by (origin, request id) | valid |
//! | `lin-kv`         | each key's log is one `lin-kv` value, appended with read + `cas` (retried on code 22) | valid |
//! | `independent`    | each node hands out offsets from its own counter and copies messages to its peers | `inconsistent-offsets` |
//! | `no-replication` | offsets come from the key's owner, but a message stays on the node that took it | a skip or lost write |
//! | `early-poll`     | as `no-replication`, but copies reach the peers later (held back, then sent); a poll answers what the node has, holes included | a skip |
//! | `retry-dup`      | as `owner`, but a forwarded send is retried after 10 ms and the owner does not deduplicate: under latency, one send lands twice | `duplicate` |
//! | `unknown-node`   | correct like `owner`, but after `--after N` client requests it sends one message to `n99`, which does not exist | the node's stdout dies |
//!
//! The node is single-threaded: a reader thread hands stdin lines over a channel, and the
//! main loop also runs timers (RPC timeouts and retries). It never answers a client more
//! than `--give-up-ms` (default 4000) after the request came, since a late reply would go
//! to a client that has been replaced (an invalid destination). Nothing is sent to peers or
//! services before the first client request (they may not be set up yet).

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::io::{self, BufRead, Write};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Owner,
    LinKv,
    Independent,
    NoReplication,
    EarlyPoll,
    RetryDup,
    UnknownNode,
}

impl Mode {
    fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "owner" => Mode::Owner,
            "lin-kv" => Mode::LinKv,
            "independent" => Mode::Independent,
            "no-replication" => Mode::NoReplication,
            "early-poll" => Mode::EarlyPoll,
            "retry-dup" => Mode::RetryDup,
            "unknown-node" => Mode::UnknownNode,
            _ => return None,
        })
    }

    /// Modes where each key's owner holds its log and answers for it.
    fn owned(self) -> bool {
        matches!(self, Mode::Owner | Mode::RetryDup | Mode::UnknownNode)
    }
}

/// What to do with an RPC's reply body, or `None` when it timed out.
type Callback = Box<dyn FnOnce(&mut Node, Option<Value>)>;
type Timer = Box<dyn FnOnce(&mut Node)>;

/// A client request being served: where the reply goes, and until when it may.
#[derive(Debug, Clone)]
struct Client {
    src: String,
    msg_id: Value,
    deadline: Instant,
    replied: Rc<RefCell<bool>>,
}

struct Node {
    mode: Mode,
    after: u64,
    give_up: Duration,
    me: String,
    node_ids: Vec<String>,
    next_msg_id: u64,
    served: u64,
    struck: bool,
    /// Logs held here: offset -> message. Dense from 0 for owned keys.
    logs: HashMap<String, BTreeMap<i64, Value>>,
    /// Offset counters: per key, the next offset to hand out (owner modes, allocation).
    next: HashMap<String, i64>,
    committed: HashMap<String, i64>,
    /// Sends already appended for a forwarder: (origin, request id) -> offset.
    forwarded: HashMap<(String, u64), i64>,
    rpcs: HashMap<u64, Callback>,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    timer_fns: HashMap<u64, Timer>,
    timer_seq: u64,
    /// Messages that came before our own init.
    early: Vec<Value>,
    out: io::StdoutLock<'static>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("mode", &self.mode)
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

fn main() {
    let mut mode = Mode::Owner;
    let mut after = 50;
    let mut give_up_ms = 4000;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_default();
        match a.as_str() {
            "--mode" => {
                let v = value();
                mode = Mode::parse(&v).unwrap_or_else(|| {
                    eprintln!("fixture-cluster: unknown mode {v:?}");
                    std::process::exit(64);
                });
            }
            "--after" => after = value().parse().unwrap_or(after),
            "--give-up-ms" => give_up_ms = value().parse().unwrap_or(give_up_ms),
            other => {
                eprintln!("fixture-cluster: unknown argument {other:?}");
                std::process::exit(64);
            }
        }
    }
    eprintln!("fixture-cluster: starting in mode {mode:?}");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut node = Node {
        mode,
        after,
        give_up: Duration::from_millis(give_up_ms),
        me: String::new(),
        node_ids: Vec::new(),
        next_msg_id: 0,
        served: 0,
        struck: false,
        logs: HashMap::new(),
        next: HashMap::new(),
        committed: HashMap::new(),
        forwarded: HashMap::new(),
        rpcs: HashMap::new(),
        timers: BinaryHeap::new(),
        timer_fns: HashMap::new(),
        timer_seq: 0,
        early: Vec::new(),
        out: io::stdout().lock(),
    };
    loop {
        node.run_due_timers();
        let wait = node
            .timers
            .peek()
            .map(|Reverse((at, _))| at.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_secs(3600));
        match rx.recv_timeout(wait) {
            Ok(line) => match serde_json::from_str::<Value>(&line) {
                Ok(msg) => node.on_message(msg),
                Err(_) => eprintln!("fixture-cluster: ignoring unparsable line {line:?}"),
            },
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// FNV-1a: a stable hash, so every node agrees on a key's owner.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn pairs(log: Option<&BTreeMap<i64, Value>>, from: i64) -> Vec<Value> {
    log.into_iter()
        .flat_map(|l| l.range(from..))
        .map(|(o, m)| json!([o, m]))
        .collect()
}

impl Node {
    fn send(&mut self, dest: &str, body: Value) {
        let msg = json!({"src": self.me, "dest": dest, "body": body});
        // A closed stdout means the run is over; there is nothing left to tell anyone.
        let _ = writeln!(self.out, "{msg}").and_then(|()| self.out.flush());
    }

    fn fresh_id(&mut self) -> u64 {
        self.next_msg_id += 1;
        self.next_msg_id
    }

    fn after_ms(&mut self, d: Duration, f: impl FnOnce(&mut Node) + 'static) {
        self.timer_seq += 1;
        self.timers
            .push(Reverse((Instant::now() + d, self.timer_seq)));
        self.timer_fns.insert(self.timer_seq, Box::new(f));
    }

    fn run_due_timers(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, seq))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if let Some(f) = self.timer_fns.remove(&seq) {
                f(self);
            }
        }
    }

    /// Sends `body` to `dest` as an RPC; `cb` gets the reply, or `None` after `timeout`.
    fn rpc(
        &mut self,
        dest: &str,
        mut body: Value,
        timeout: Duration,
        cb: impl FnOnce(&mut Node, Option<Value>) + 'static,
    ) {
        let id = self.fresh_id();
        body["msg_id"] = json!(id);
        self.send(dest, body);
        self.rpcs.insert(id, Box::new(cb));
        self.after_ms(timeout, move |n| {
            if let Some(cb) = n.rpcs.remove(&id) {
                cb(n, None);
            }
        });
    }

    /// An RPC re-sent every `every` until a reply to any of its attempts comes, or
    /// `deadline` passes (`None`). Each attempt has its own msg_id.
    fn rpc_retry(
        &mut self,
        dest: String,
        body: Value,
        every: Duration,
        deadline: Instant,
        cb: impl FnOnce(&mut Node, Option<Value>) + 'static,
    ) {
        let cb: Rc<RefCell<Option<Callback>>> = Rc::new(RefCell::new(Some(Box::new(cb))));
        attempt(self, dest, body, every, deadline, cb);

        fn attempt(
            n: &mut Node,
            dest: String,
            mut body: Value,
            every: Duration,
            deadline: Instant,
            cb: Rc<RefCell<Option<Callback>>>,
        ) {
            let id = n.fresh_id();
            body["msg_id"] = json!(id);
            n.send(&dest, body.clone());
            let on_reply = cb.clone();
            n.rpcs.insert(
                id,
                Box::new(move |n, reply| {
                    let taken = on_reply.borrow_mut().take();
                    if let Some(f) = taken {
                        f(n, reply);
                    }
                }),
            );
            let now = Instant::now();
            let left = deadline.saturating_duration_since(now);
            n.after_ms(every.min(left), move |n| {
                if cb.borrow().is_none() {
                    return;
                }
                if Instant::now() < deadline {
                    return attempt(n, dest, body, every, deadline, cb);
                }
                let taken = cb.borrow_mut().take();
                if let Some(f) = taken {
                    f(n, None);
                }
            });
            // A reply later than the deadline is of no use: forget the attempt then.
            n.after_ms(left, move |n| {
                n.rpcs.remove(&id);
            });
        }
    }

    fn reply(&mut self, c: &Client, mut body: Value) {
        if *c.replied.borrow() || Instant::now() >= c.deadline {
            return;
        }
        *c.replied.borrow_mut() = true;
        body["in_reply_to"] = c.msg_id.clone();
        let src = c.src.clone();
        self.send(&src, body);
    }

    fn owner_of(&self, key: &str) -> String {
        let n = self.node_ids.len().max(1) as u64;
        self.node_ids
            .get((fnv(key) % n) as usize)
            .cloned()
            .unwrap_or_else(|| self.me.clone())
    }

    fn on_message(&mut self, msg: Value) {
        let src = msg["src"].as_str().unwrap_or_default().to_owned();
        let body = msg["body"].clone();
        let ty = body["type"].as_str().unwrap_or_default().to_owned();
        if ty == "init" {
            self.me = body["node_id"].as_str().unwrap_or("n0").to_owned();
            self.node_ids = body["node_ids"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            self.send(
                &src,
                json!({"type": "init_ok", "in_reply_to": body["msg_id"]}),
            );
            for m in std::mem::take(&mut self.early) {
                self.on_message(m);
            }
            return;
        }
        if self.me.is_empty() {
            self.early.push(msg);
            return;
        }
        if let Some(id) = body.get("in_reply_to").and_then(Value::as_u64) {
            if let Some(cb) = self.rpcs.remove(&id) {
                cb(self, Some(body));
            }
            return;
        }
        if !src.starts_with('c') {
            return self.on_peer(&src, &ty, &body);
        }
        self.served += 1;
        if self.mode == Mode::UnknownNode && !self.struck && self.served > self.after {
            self.struck = true;
            eprintln!("fixture-cluster: sending to n99, which does not exist");
            self.send("n99", json!({"type": "hello"}));
        }
        let c = Client {
            src,
            msg_id: body.get("msg_id").cloned().unwrap_or(Value::Null),
            deadline: Instant::now() + self.give_up,
            replied: Rc::default(),
        };
        match ty.as_str() {
            "send" => self.on_send(c, &body),
            "poll" => self.on_poll(c, &body),
            "commit_offsets" => self.on_commit(c, &body),
            "list_committed_offsets" => self.on_list(c, &body),
            _ => self.reply(
                &c,
                json!({"type": "error", "code": 10, "text": format!("unsupported type {ty:?}")}),
            ),
        }
    }

    /// Appends to a log held here and returns the offset.
    fn append(&mut self, key: &str, msg: Value) -> i64 {
        let offset = self.next_offset(key.to_owned());
        self.logs
            .entry(key.to_owned())
            .or_default()
            .insert(offset, msg);
        offset
    }

    fn on_send(&mut self, c: Client, body: &Value) {
        let key = body["key"].as_str().unwrap_or_default().to_owned();
        let msg = body["msg"].clone();
        match self.mode {
            Mode::LinKv => self.lin_kv_send(c, key, msg),
            Mode::Independent => {
                let offset = self.append(&key, msg.clone());
                for peer in self.peers() {
                    self.send(
                        &peer,
                        json!({"type": "copy", "key": key, "offset": offset, "msg": msg}),
                    );
                }
                self.reply(&c, json!({"type": "send_ok", "offset": offset}));
            }
            Mode::NoReplication | Mode::EarlyPoll => {
                self.alloc(key.clone(), c.deadline, move |n, offset| {
                    let Some(offset) = offset else {
                        return;
                    };
                    n.logs.entry(key.clone()).or_default().insert(offset, msg.clone());
                    if n.mode == Mode::EarlyPoll {
                        // Held back, so peers learn of it well after later offsets.
                        n.after_ms(Duration::from_millis(300), move |n| {
                            for peer in n.peers() {
                                n.send(&peer, json!({"type": "copy", "key": key, "offset": offset, "msg": msg}));
                            }
                        });
                    }
                    n.reply(&c, json!({"type": "send_ok", "offset": offset}));
                });
            }
            Mode::Owner | Mode::RetryDup | Mode::UnknownNode => {
                let owner = self.owner_of(&key);
                if owner == self.me {
                    let offset = self.append(&key, msg);
                    return self.reply(&c, json!({"type": "send_ok", "offset": offset}));
                }
                let req_id = self.fresh_id();
                let req = json!({"type": "fwd_send", "key": key, "msg": msg, "req_id": req_id});
                let every = if self.mode == Mode::RetryDup {
                    Duration::from_millis(10)
                } else {
                    Duration::from_millis(1000)
                };
                self.rpc_retry(owner, req, every, c.deadline, move |n, r| match r {
                    Some(r) if r["type"] == "fwd_send_ok" => {
                        n.reply(&c, json!({"type": "send_ok", "offset": r["offset"]}));
                    }
                    // Gave up: it may have landed, so the error must be indefinite.
                    _ => n.reply(
                        &c,
                        json!({"type": "error", "code": 13, "text": "owner unreachable"}),
                    ),
                });
            }
        }
    }

    /// An offset for `key` from its owner (this node, or an RPC to it); `None` if the owner
    /// stayed unreachable until `deadline`.
    fn alloc(
        &mut self,
        key: String,
        deadline: Instant,
        then: impl FnOnce(&mut Node, Option<i64>) + 'static,
    ) {
        let owner = self.owner_of(&key);
        if owner == self.me {
            let offset = self.next_offset(key);
            return then(self, Some(offset));
        }
        let req = json!({"type": "alloc", "key": key});
        let every = Duration::from_millis(1000);
        self.rpc_retry(owner, req, every, deadline, move |n, r| {
            then(n, r.as_ref().and_then(|r| r["offset"].as_i64()));
        });
    }

    fn next_offset(&mut self, key: String) -> i64 {
        let next = self.next.entry(key).or_insert(0);
        *next += 1;
        *next - 1
    }

    /// `{key: x}` split into one object per key owner.
    fn by_owner(&self, keys: &Value) -> BTreeMap<String, Map<String, Value>> {
        let mut parts: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
        for (k, v) in keys.as_object().into_iter().flatten() {
            parts
                .entry(self.owner_of(k))
                .or_default()
                .insert(k.clone(), v.clone());
        }
        parts
    }

    fn peers(&self) -> Vec<String> {
        self.node_ids
            .iter()
            .filter(|n| **n != self.me)
            .cloned()
            .collect()
    }

    fn on_peer(&mut self, src: &str, ty: &str, body: &Value) {
        let key = body["key"].as_str().unwrap_or_default().to_owned();
        let reply = match ty {
            "fwd_send" => {
                let origin = (src.to_owned(), body["req_id"].as_u64().unwrap_or(0));
                let offset = match self.forwarded.get(&origin) {
                    Some(o) if self.mode != Mode::RetryDup => *o,
                    _ => {
                        let o = self.append(&key, body["msg"].clone());
                        self.forwarded.insert(origin, o);
                        o
                    }
                };
                json!({"type": "fwd_send_ok", "offset": offset})
            }
            "fwd_poll" => {
                let msgs = self.local_poll(&body["offsets"]);
                json!({"type": "fwd_poll_ok", "results": msgs})
            }
            "fwd_list" => {
                let offsets = self.local_list(&body["offsets"]);
                json!({"type": "fwd_list_ok", "results": offsets})
            }
            "fwd_commit" => {
                self.local_commit(&body["offsets"]);
                json!({"type": "fwd_commit_ok"})
            }
            "alloc" => json!({"type": "alloc_ok", "offset": self.next_offset(key)}),
            "copy" => {
                let offset = body["offset"].as_i64().unwrap_or(0);
                // The first value at an offset stays: what this node already answered.
                self.logs
                    .entry(key)
                    .or_default()
                    .entry(offset)
                    .or_insert_with(|| body["msg"].clone());
                return;
            }
            _ => return,
        };
        let mut reply = reply;
        reply["in_reply_to"] = body["msg_id"].clone();
        self.send(src, reply);
    }

    /// `{key: from}` -> `{key: [[offset, msg]…]}` from the logs held here; keys with nothing
    /// to return are left out.
    fn local_poll(&self, offsets: &Value) -> Map<String, Value> {
        let mut msgs = Map::new();
        for (k, from) in offsets.as_object().into_iter().flatten() {
            let p = pairs(self.logs.get(k), from.as_i64().unwrap_or(0));
            if !p.is_empty() {
                msgs.insert(k.clone(), Value::Array(p));
            }
        }
        msgs
    }

    fn local_commit(&mut self, offsets: &Value) {
        for (k, o) in offsets.as_object().into_iter().flatten() {
            let o = o.as_i64().unwrap_or(0);
            let c = self.committed.entry(k.clone()).or_insert(o);
            *c = (*c).max(o);
        }
    }

    /// Committed offsets of the keys named (as an object's keys, or a list).
    fn local_list(&self, keys: &Value) -> Map<String, Value> {
        let names: Vec<String> = match keys {
            Value::Object(m) => m.keys().cloned().collect(),
            Value::Array(a) => a
                .iter()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        names
            .into_iter()
            .filter_map(|k| self.committed.get(&k).map(|o| (k, json!(o))))
            .collect()
    }

    fn on_poll(&mut self, c: Client, body: &Value) {
        match self.mode {
            Mode::LinKv => self.lin_kv_poll(c, body),
            m if m.owned() => self.fan_out(c, &body["offsets"], "fwd_poll", "poll_ok", "msgs"),
            _ => {
                let msgs = self.local_poll(&body["offsets"]);
                self.reply(&c, json!({"type": "poll_ok", "msgs": msgs}));
            }
        }
    }

    fn on_commit(&mut self, c: Client, body: &Value) {
        let offsets = &body["offsets"];
        if self.mode == Mode::LinKv {
            for (k, o) in offsets.as_object().into_iter().flatten() {
                let req = json!({"type": "write", "key": format!("commit-{k}"), "value": o});
                self.rpc("lin-kv", req, self.give_up, |_, _| {});
            }
        } else if self.mode.owned() {
            for (owner, part) in self.by_owner(offsets) {
                if owner == self.me {
                    self.local_commit(&Value::Object(part));
                } else {
                    let req = json!({"type": "fwd_commit", "offsets": part});
                    let every = Duration::from_millis(1000);
                    self.rpc_retry(owner, req, every, c.deadline, |_, _| {});
                }
            }
        } else {
            self.local_commit(offsets);
        }
        // Commits are never checked, and a definite error would make the client skip
        // messages (its offsets advance anyway): always acknowledge, at once.
        self.reply(&c, json!({"type": "commit_offsets_ok"}));
    }

    fn on_list(&mut self, c: Client, body: &Value) {
        let keys: Map<String, Value> = body["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k.as_str().map(|k| (k.to_owned(), Value::Null)))
            .collect();
        if self.mode == Mode::LinKv {
            return self.lin_kv_list(c, keys);
        }
        if self.mode.owned() {
            return self.fan_out(
                c,
                &Value::Object(keys),
                "fwd_list",
                "list_committed_offsets_ok",
                "offsets",
            );
        }
        let offsets = self.local_list(&Value::Object(keys));
        self.reply(
            &c,
            json!({"type": "list_committed_offsets_ok", "offsets": offsets}),
        );
    }

    /// Splits `{key: x}` by owner, answers the local part, asks each other owner for its
    /// part, and replies `{reply_type, field: merged}` once all have answered, or with what
    /// has come at the client's deadline.
    fn fan_out(
        &mut self,
        c: Client,
        keys: &Value,
        fwd_type: &str,
        reply_type: &'static str,
        field: &'static str,
    ) {
        let mut by_owner = self.by_owner(keys);
        let local = by_owner
            .remove(&self.me)
            .map(Value::Object)
            .unwrap_or(json!({}));
        let merged = match fwd_type {
            "fwd_poll" => self.local_poll(&local),
            _ => self.local_list(&local),
        };
        let state = Rc::new(RefCell::new((merged, by_owner.len())));
        let finish =
            move |n: &mut Node, c: &Client, state: &Rc<RefCell<(Map<String, Value>, usize)>>| {
                let merged = state.borrow().0.clone();
                n.reply(c, json!({"type": reply_type, field: merged}));
            };
        if by_owner.is_empty() {
            return finish(self, &c, &state);
        }
        // At the deadline, answer with what has come.
        let (c2, s2) = (c.clone(), state.clone());
        let left = c.deadline.saturating_duration_since(Instant::now());
        self.after_ms(left.saturating_sub(Duration::from_millis(50)), move |n| {
            finish(n, &c2, &s2)
        });
        for (owner, part) in by_owner {
            let req = json!({"type": fwd_type, "offsets": part});
            let (c, state) = (c.clone(), state.clone());
            let every = Duration::from_millis(1000);
            self.rpc_retry(owner, req, every, c.deadline, move |n, r| {
                let done = {
                    let mut s = state.borrow_mut();
                    if let Some(results) = r.as_ref().and_then(|r| r["results"].as_object()) {
                        s.0.extend(results.clone());
                    }
                    s.1 -= 1;
                    s.1 == 0
                };
                if done {
                    finish(n, &c, &state);
                }
            });
        }
    }

    // --- lin-kv: each key's log is one value, `log-<key>`, a list of [offset, msg] pairs.

    fn lin_kv_send(&mut self, c: Client, key: String, msg: Value) {
        let left = c.deadline.saturating_duration_since(Instant::now());
        let req = json!({"type": "read", "key": format!("log-{key}")});
        self.rpc("lin-kv", req, left, move |n, r| {
            let Some(r) = r else {
                return n.reply(
                    &c,
                    json!({"type": "error", "code": 13, "text": "lin-kv timed out"}),
                );
            };
            let log = match (r["type"].as_str(), r["code"].as_i64()) {
                (Some("read_ok"), _) => r["value"].clone(),
                (_, Some(20)) => json!([]),
                _ => {
                    return n.reply(
                        &c,
                        json!({"type": "error", "code": 13, "text": "lin-kv read failed"}),
                    );
                }
            };
            let offset = log.as_array().map_or(0, Vec::len);
            let mut new = log.clone();
            if let Some(a) = new.as_array_mut() {
                a.push(json!([offset, msg]));
            }
            let req = json!({"type": "cas", "key": format!("log-{key}"), "from": log, "to": new,
                             "create_if_not_exists": offset == 0});
            let left = c.deadline.saturating_duration_since(Instant::now());
            n.rpc("lin-kv", req, left, move |n, r| match r {
                Some(r) if r["type"] == "cas_ok" => {
                    n.reply(&c, json!({"type": "send_ok", "offset": offset}));
                }
                // Someone appended first: read again and retry.
                Some(r) if r["code"] == 22 || r["code"] == 20 => n.lin_kv_send(c, key, msg),
                // Lost or unknown: it may have been applied, so the error is indefinite.
                _ => n.reply(
                    &c,
                    json!({"type": "error", "code": 13, "text": "lin-kv cas failed"}),
                ),
            });
        });
    }

    fn lin_kv_poll(&mut self, c: Client, body: &Value) {
        let wanted: Vec<(String, i64)> = body["offsets"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, o)| (k.clone(), o.as_i64().unwrap_or(0)))
            .collect();
        self.lin_kv_gather(c, wanted, "log-", "poll_ok", "msgs", |v, from| {
            let p: Vec<Value> = v
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p[0].as_i64().is_some_and(|o| o >= from))
                .cloned()
                .collect();
            (!p.is_empty()).then_some(Value::Array(p))
        });
    }

    fn lin_kv_list(&mut self, c: Client, keys: Map<String, Value>) {
        let wanted = keys.into_iter().map(|(k, _)| (k, 0)).collect();
        self.lin_kv_gather(
            c,
            wanted,
            "commit-",
            "list_committed_offsets_ok",
            "offsets",
            |v, _| Some(v.clone()),
        );
    }

    /// Reads `<prefix><key>` for every key at once and replies with `pick`'s answers.
    fn lin_kv_gather(
        &mut self,
        c: Client,
        wanted: Vec<(String, i64)>,
        prefix: &str,
        reply_type: &'static str,
        field: &'static str,
        pick: fn(&Value, i64) -> Option<Value>,
    ) {
        if wanted.is_empty() {
            return self.reply(&c, json!({"type": reply_type, field: {}}));
        }
        let state = Rc::new(RefCell::new((Map::new(), wanted.len())));
        let left = c.deadline.saturating_duration_since(Instant::now());
        for (k, from) in wanted {
            let (c, state) = (c.clone(), state.clone());
            let req = json!({"type": "read", "key": format!("{prefix}{k}")});
            self.rpc("lin-kv", req, left, move |n, r| {
                let done = {
                    let mut s = state.borrow_mut();
                    if let Some(r) = r.filter(|r| r["type"] == "read_ok")
                        && let Some(v) = pick(&r["value"], from)
                    {
                        s.0.insert(k, v);
                    }
                    s.1 -= 1;
                    s.1 == 0
                };
                if done {
                    let merged = state.borrow().0.clone();
                    n.reply(&c, json!({"type": reply_type, field: merged}));
                }
            });
        }
    }
}
