//! A small single-threaded kafka node for the checker's tests: correct by default, or
//! broken in exactly one way with `--fault <name>`.
//!
//! Each fault waits until `--after N` requests have been served (so the run has a normal
//! start) and then strikes once, in the first situation where it is sure to be visible,
//! so a 2-4 s run reliably shows the anomaly. Faults and what they should produce:
//!
//! | fault            | what the node does                                     | anomaly                 |
//! |------------------|--------------------------------------------------------|-------------------------|
//! | `lose-write`     | acks a send (early in its key) but never stores it     | `lost-write`            |
//! | `skip-offset`    | a client's next poll of a key skips the next offset    | `poll-skip`             |
//! | `skip-inside`    | drops the middle pair of a poll's run of ≥3            | `int-poll-skip`         |
//! | `dup-offset`     | hands a key's last offset out again                    | `inconsistent-offsets`  |
//! | `out-of-order`   | swaps the first two pairs of a poll's run              | `int-nonmonotonic-poll` |
//! | `rewind`         | a client's next poll of a key starts one offset early  | `nonmonotonic-poll`     |
//! | `duplicate`      | appends one send twice                                 | `duplicate`             |
//! | `send-backwards` | places a client's send before its previous one (3 times) | `nonmonotonic-send`     |
//! | `fail-send`      | stores a send but answers a definite error (11)        | `G1a`                   |
//! | `non-json`       | prints a line that is not JSON                         | stdout dead             |
//! | `string-body`    | sends one reply with its body encoded twice: a string  | stdout dead             |
//! | `silent`         | acks one more send, then never answers again           | `unseen`                |
//! | `crash`          | exits with status 3                                    | node crashed            |
//! | `huge-offset`    | correct, but every key's offsets start at 2^40 (from the start) | unknown: `unjudgeable-offset` |
//! | `future-read`    | a poll of the newest key also returns the value its next send will carry, at the offset that send then gets (3 times) | `G1c-realtime` |
//! | `swap-keys`      | one `poll_ok` returns two keys' pairs under each other's names (values both keys hold, out of the client's order) | invalid: `nonmonotonic-poll` or `poll-skip` |
//! | `late-reply`     | holds the first send read `--late-at MS` after it started and answers it `--late-by MS` later, from another thread | none by itself: see `tests/faults.rs` |

use std::collections::HashMap;
use std::io::{self, BufRead, Write};

use serde_json::{Map, Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    LoseWrite,
    SkipOffset,
    SkipInside,
    DupOffset,
    OutOfOrder,
    Rewind,
    Duplicate,
    SendBackwards,
    FailSend,
    NonJson,
    StringBody,
    Silent,
    Crash,
    HugeOffset,
    FutureRead,
    SwapKeys,
    LateReply,
}

impl Fault {
    fn parse(s: &str) -> Option<Fault> {
        Some(match s {
            "none" => Fault::None,
            "lose-write" => Fault::LoseWrite,
            "skip-offset" => Fault::SkipOffset,
            "skip-inside" => Fault::SkipInside,
            "dup-offset" => Fault::DupOffset,
            "out-of-order" => Fault::OutOfOrder,
            "rewind" => Fault::Rewind,
            "duplicate" => Fault::Duplicate,
            "send-backwards" => Fault::SendBackwards,
            "fail-send" => Fault::FailSend,
            "non-json" => Fault::NonJson,
            "string-body" => Fault::StringBody,
            "silent" => Fault::Silent,
            "crash" => Fault::Crash,
            "huge-offset" => Fault::HugeOffset,
            "future-read" => Fault::FutureRead,
            "swap-keys" => Fault::SwapKeys,
            "late-reply" => Fault::LateReply,
            _ => return None,
        })
    }
}

/// One key's log. Offsets are dense positions, except under `send-backwards`, which
/// spaces them by two to leave a free slot before each message.
#[derive(Debug, Default)]
struct Log {
    msgs: Vec<(i64, Value)>,
    /// The next offset to hand out.
    next: i64,
}

#[derive(Debug)]
struct Node {
    fault: Fault,
    after: u64,
    served: u64,
    /// The fault has struck (it strikes once).
    struck: bool,
    silent: bool,
    /// Go silent once the current reply is out.
    pending_silence: bool,
    me: String,
    logs: HashMap<String, Log>,
    committed: HashMap<String, i64>,
    /// (client, key) -> the last offset a poll returned to that client.
    last_polled: HashMap<(String, String), i64>,
    /// (client, key) -> the offset of that client's last send to that key, while that client
    /// has made no other request since: between two sends with nothing else in between, an
    /// assign that drops the key (which resets Jepsen's send tracking) is unlikely.
    last_sent: HashMap<(String, String), i64>,
    /// How many more times `send-backwards` may strike. It strikes a few times, so that one
    /// occasion masked by an assign with no RPC of its own cannot hide the fault.
    backwards_left: u32,
    /// The highest decimal key sent to so far.
    newest_key: Option<i64>,
    step: i64,
    /// `future-read`: how many more times it may strike, and per key the value a poll
    /// already returned ahead of its send, with the offset it was given.
    future_left: u32,
    reserved: HashMap<String, (Value, i64)>,
    /// `late-reply`: when the node started, when to hold a send (ms after the start) and
    /// how long to hold it.
    started: std::time::Instant,
    late_at: u64,
    late_by: u64,
}

fn main() -> io::Result<()> {
    let mut fault = Fault::None;
    let mut after = 200;
    let (mut late_at, mut late_by) = (0, 0);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--fault" => {
                let v = args.next().unwrap_or_default();
                fault = Fault::parse(&v).unwrap_or_else(|| {
                    eprintln!("fixture-node: unknown fault {v:?}");
                    std::process::exit(64);
                });
            }
            "--after" => after = args.next().and_then(|v| v.parse().ok()).unwrap_or(after),
            "--late-at" => late_at = args.next().and_then(|v| v.parse().ok()).unwrap_or(0),
            "--late-by" => late_by = args.next().and_then(|v| v.parse().ok()).unwrap_or(0),
            other => {
                eprintln!("fixture-node: unknown argument {other:?}");
                std::process::exit(64);
            }
        }
    }
    let step = if fault == Fault::SendBackwards { 2 } else { 1 };
    let mut node = Node {
        fault,
        after,
        served: 0,
        struck: false,
        silent: false,
        pending_silence: false,
        me: String::new(),
        logs: HashMap::new(),
        committed: HashMap::new(),
        last_polled: HashMap::new(),
        last_sent: HashMap::new(),
        backwards_left: 3,
        newest_key: None,
        step,
        future_left: 3,
        reserved: HashMap::new(),
        started: std::time::Instant::now(),
        late_at,
        late_by,
    };
    eprintln!("fixture-node: starting, fault {fault:?} after {after} requests");
    let stdin = io::stdin().lock();
    // Not locked for the whole run: `late-reply` writes its held reply from another thread
    // (each line is one locked write).
    let mut stdout = io::stdout();
    for line in stdin.lines() {
        let line = line?;
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            eprintln!("fixture-node: ignoring unparsable line {line:?}");
            continue;
        };
        let src = msg["src"].as_str().unwrap_or_default().to_owned();
        let body = msg["body"].as_object().cloned().unwrap_or_default();
        let Some(mut reply) = node.handle(&src, &body, &mut stdout)? else {
            continue;
        };
        if node.silent {
            continue;
        }
        reply.insert(
            "in_reply_to".into(),
            body.get("msg_id").cloned().unwrap_or(Value::Null),
        );
        let mut body = Value::Object(reply);
        if node.armed(Fault::StringBody) {
            node.strike("sending a reply whose body is a JSON string");
            body = Value::String(body.to_string());
        }
        let out = json!({"src": node.me, "dest": src, "body": body});
        if node.fault == Fault::LateReply
            && !node.struck
            && body["type"] == "send_ok"
            && node.started.elapsed().as_millis() >= u128::from(node.late_at)
        {
            let late_by = node.late_by;
            node.strike(&format!("holding the reply to {src} for {late_by} ms"));
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(late_by));
                eprintln!("fixture-node: fault LateReply: answering {src} now");
                let mut stdout = io::stdout();
                let _ = writeln!(stdout, "{out}").and_then(|()| stdout.flush());
            });
            continue;
        }
        writeln!(stdout, "{out}")?;
        stdout.flush()?;
        node.silent |= node.pending_silence;
    }
    Ok(())
}

impl Node {
    /// Whether the fault may strike now.
    fn armed(&self, f: Fault) -> bool {
        self.fault == f && !self.struck && self.served > self.after
    }

    fn strike(&mut self, what: &str) {
        self.struck = true;
        eprintln!("fixture-node: fault {:?} strikes: {what}", self.fault);
    }

    fn handle(
        &mut self,
        src: &str,
        body: &Map<String, Value>,
        stdout: &mut impl Write,
    ) -> io::Result<Option<Map<String, Value>>> {
        let ty = body.get("type").and_then(Value::as_str).unwrap_or_default();
        if ty != "init" {
            self.served += 1;
        }
        if ty != "send" {
            self.last_sent.retain(|(client, _), _| client != src);
        }
        if self.armed(Fault::Crash) {
            self.strike("exiting");
            std::process::exit(3);
        }
        if self.armed(Fault::NonJson) {
            self.strike("printing a non-JSON line");
            writeln!(stdout, "oops: this line is not JSON")?;
        }
        let reply = match ty {
            "init" => {
                self.me = body
                    .get("node_id")
                    .and_then(Value::as_str)
                    .unwrap_or("n0")
                    .to_owned();
                json!({"type": "init_ok"})
            }
            "send" => return Ok(Some(self.send(src, body))),
            "poll" => self.poll(src, body),
            "commit_offsets" => {
                for (k, o) in body
                    .get("offsets")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    let o = o.as_i64().unwrap_or(0);
                    let c = self.committed.entry(k.clone()).or_insert(o);
                    *c = (*c).max(o);
                }
                json!({"type": "commit_offsets_ok"})
            }
            "list_committed_offsets" => {
                let mut offsets = Map::new();
                for k in body
                    .get("keys")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(k) = k.as_str()
                        && let Some(o) = self.committed.get(k)
                    {
                        offsets.insert(k.to_owned(), json!(o));
                    }
                }
                json!({"type": "list_committed_offsets_ok", "offsets": offsets})
            }
            _ => json!({"type": "error", "code": 10, "text": format!("unsupported type {ty:?}")}),
        };
        Ok(reply.as_object().cloned())
    }

    fn send(&mut self, src: &str, body: &Map<String, Value>) -> Map<String, Value> {
        let key = body
            .get("key")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let msg = body.get("msg").cloned().unwrap_or(Value::Null);
        let small = msg.as_i64().is_some_and(|m| m <= 8);
        // The generator's newest key is the highest-numbered one, and gets about half of all
        // sends: a write lost there is followed by later writes that polls read, which is what
        // makes it a lost write rather than only unseen.
        let number = key.parse::<i64>().ok();
        self.newest_key = self.newest_key.max(number);
        let newest = number.is_some() && number == self.newest_key;
        let step = self.step;
        let last_sent = self.last_sent.get(&(src.to_owned(), key.clone())).copied();
        let huge = self.fault == Fault::HugeOffset;
        let log = self.logs.entry(key.clone()).or_insert_with(|| {
            if huge {
                eprintln!("fixture-node: fault HugeOffset: key {key} starts at offset 2^40");
            }
            Log {
                msgs: Vec::new(),
                // A correct log, offset by a number the checker must not allocate for.
                next: if huge { 1 << 40 } else { 0 },
            }
        });
        let offset;
        let mut fail = false;
        if self.fault == Fault::LoseWrite
            && !self.struck
            && self.served > self.after
            && small
            && newest
        {
            offset = log.next;
            log.next += step;
            self.struck = true;
            eprintln!(
                "fixture-node: fault LoseWrite strikes: key {key} offset {offset} not stored"
            );
        } else if self.fault == Fault::DupOffset
            && !self.struck
            && self.served > self.after
            && !log.msgs.is_empty()
        {
            let last = log.msgs.len() - 1;
            offset = log.msgs[last].0;
            log.msgs[last].1 = msg;
            self.struck = true;
            eprintln!(
                "fixture-node: fault DupOffset strikes: key {key} offset {offset} given out twice"
            );
        } else if self.fault == Fault::SendBackwards
            && self.backwards_left > 0
            && self.served > self.after
            && let Some(prev) = last_sent
            // Offset 0 has no free slot before it: -1 would be an offset no checker can judge
            // (unknown), not the nonmonotonic send this fault is for.
            && prev > 0
            && log.msgs.iter().any(|(o, _)| *o == prev)
        {
            // The free slot just before this client's previous send.
            offset = prev - 1;
            let at = log.msgs.iter().position(|(o, _)| *o == prev).unwrap_or(0);
            log.msgs.insert(at, (offset, msg));
            self.backwards_left -= 1;
            self.struck = true;
            eprintln!(
                "fixture-node: fault SendBackwards strikes: key {key} offset {offset} before {prev}"
            );
        } else if let Some((_, at)) = self.reserved.get(&key).filter(|(v, _)| *v == msg) {
            // The value a poll returned before this send: it is already in the log there.
            offset = *at;
            self.reserved.remove(&key);
        } else {
            offset = log.next;
            log.next += step;
            log.msgs.push((offset, msg.clone()));
            if self.fault == Fault::Duplicate && !self.struck && self.served > self.after {
                let again = log.next;
                log.next += step;
                log.msgs.push((again, msg));
                self.struck = true;
                eprintln!(
                    "fixture-node: fault Duplicate strikes: key {key} offsets {offset} and {again}"
                );
            } else if self.fault == Fault::FailSend && !self.struck && self.served > self.after {
                fail = true;
                self.struck = true;
                eprintln!(
                    "fixture-node: fault FailSend strikes: key {key} offset {offset} stored, error sent"
                );
            } else if self.fault == Fault::Silent && !self.struck && self.served > self.after {
                self.struck = true;
                eprintln!(
                    "fixture-node: fault Silent strikes: acked key {key} offset {offset}, going silent"
                );
                // This reply still goes out; everything after it does not.
                self.pending_silence = true;
            }
        }
        self.last_sent.insert((src.to_owned(), key), offset);
        let reply = if fail {
            json!({"type": "error", "code": 11, "text": "temporarily unavailable"})
        } else {
            json!({"type": "send_ok", "offset": offset})
        };
        reply.as_object().cloned().unwrap_or_default()
    }

    fn poll(&mut self, src: &str, body: &Map<String, Value>) -> Value {
        let mut msgs = Map::new();
        // Where this client's last read of each key ended, before this poll.
        let before: HashMap<String, i64> = self
            .last_polled
            .iter()
            .filter(|((c, _), _)| c == src)
            .map(|((_, k), o)| (k.clone(), *o))
            .collect();
        for (k, from) in body
            .get("offsets")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let from = from.as_i64().unwrap_or(0);
            if self.fault == Fault::FutureRead {
                self.read_ahead(k);
            }
            let Some(log) = self.logs.get(k) else {
                continue;
            };
            let mut pairs: Vec<(i64, Value)> = log
                .msgs
                .iter()
                .filter(|(o, _)| *o >= from)
                .cloned()
                .collect();
            let ck = (src.to_owned(), k.clone());
            let last = self.last_polled.get(&ck).copied();
            let continues =
                last.is_some_and(|l| pairs.first().is_some_and(|p| p.0 == l + self.step));
            if self.armed(Fault::SkipOffset) && continues && pairs.len() >= 2 {
                let skipped = pairs.remove(0);
                self.strike(&format!(
                    "client {src} key {k}: skipping offset {}",
                    skipped.0
                ));
            } else if self.armed(Fault::Rewind)
                && continues
                && let Some(l) = last
                && let Some(prev) = log.msgs.iter().find(|(o, _)| *o == l)
            {
                pairs.insert(0, prev.clone());
                self.strike(&format!("client {src} key {k}: re-sending offset {l}"));
            } else if self.armed(Fault::SkipInside) && pairs.len() >= 3 {
                let skipped = pairs.remove(1);
                self.strike(&format!(
                    "key {k}: dropping offset {} inside a poll",
                    skipped.0
                ));
            } else if self.armed(Fault::OutOfOrder) && pairs.len() >= 2 {
                pairs.swap(0, 1);
                self.strike(&format!(
                    "key {k}: swapping offsets {} and {}",
                    pairs[1].0, pairs[0].0
                ));
            }
            // Keys with nothing new are left out, so the client's last read of a key (which
            // the checker compares against) is the last poll that returned some of it.
            let Some(max) = pairs.iter().map(|p| p.0).max() else {
                continue;
            };
            self.last_polled.insert(ck, max);
            msgs.insert(
                k.clone(),
                Value::Array(pairs.into_iter().map(|(o, m)| json!([o, m])).collect()),
            );
        }
        if self.armed(Fault::SwapKeys) {
            self.swap_two_keys(&mut msgs, &before);
        }
        json!({"type": "poll_ok", "msgs": msgs})
    }

    /// `future-read`: on a poll of the newest key, whose values so far are 1..=n, put the
    /// value its next send will carry (n + 1, the generator's sequence) in the log now, at
    /// the next offset, and give that offset to the send when it comes. A poll that returns
    /// it has read a value whose send was invoked only after the poll completed.
    fn read_ahead(&mut self, k: &str) {
        if self.future_left == 0
            || self.served <= self.after
            || self.reserved.contains_key(k)
            || k.parse::<i64>().ok() != self.newest_key
        {
            return;
        }
        let Some(log) = self.logs.get_mut(k) else {
            return;
        };
        let n = log.msgs.len() as i64;
        let sequence = log
            .msgs
            .iter()
            .all(|(_, m)| m.as_i64().is_some_and(|m| (1..=n).contains(&m)));
        // The generator sends at most 16 values to a key (Maelstrom's default).
        if n == 0 || n >= 15 || !sequence {
            return;
        }
        let (offset, value) = (log.next, json!(n + 1));
        log.next += self.step;
        log.msgs.push((offset, value.clone()));
        self.reserved.insert(k.to_owned(), (value, offset));
        self.future_left -= 1;
        self.struck = true;
        eprintln!(
            "fixture-node: fault FutureRead strikes: key {k} offset {offset} holds {} before it is sent",
            n + 1
        );
    }

    /// `swap-keys`: two keys of one reply trade their pairs, where that cannot pass unseen:
    /// every value is one the other key holds too (so each has a writer, and the verdict
    /// is not merely unknown), and under one of them the pairs do not continue where this
    /// client's last read of that key ended (`before`: key to the last offset it read), so
    /// the client's process reads that key out of order.
    fn swap_two_keys(&mut self, msgs: &mut Map<String, Value>, before: &HashMap<String, i64>) {
        let holds_all = |key: &str, pairs: &Value| {
            let log = self.logs.get(key).map_or(&[][..], |l| &l.msgs[..]);
            pairs
                .as_array()
                .into_iter()
                .flatten()
                .all(|p| log.iter().any(|(_, m)| *m == p[1]))
        };
        let breaks = |key: &str, pairs: &Value| {
            let first = pairs.get(0).and_then(|p| p[0].as_i64());
            before
                .get(key)
                .is_some_and(|l| first != Some(l + self.step))
        };
        let keys: Vec<String> = msgs.keys().cloned().collect();
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                let (pa, pb) = (&msgs[a], &msgs[b]);
                if pa != pb
                    && holds_all(a, pb)
                    && holds_all(b, pa)
                    && (breaks(a, pb) || breaks(b, pa))
                {
                    let pa = msgs.insert(a.clone(), Value::Null).unwrap_or_default();
                    let pb = msgs.insert(b.clone(), pa).unwrap_or_default();
                    msgs.insert(a.clone(), pb);
                    self.strike(&format!("keys {a} and {b} swapped in one poll_ok"));
                    return;
                }
            }
        }
    }
}
