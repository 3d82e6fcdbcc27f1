//! A node for measuring the runner's network, not a kafka node: it answers `init`, then
//! (after `--delay-ms`, default 200) writes small messages to the next node in `node_ids` as
//! fast as its stdout takes them, and reads and discards everything it is sent. Client
//! requests get no answer. Run with `--rate 1 --concurrency 1`: the servers' `recv-count` in
//! `results.json` over the main phase is what the runner routed, `cpu.runner-seconds` its cost.

use std::io::{self, BufRead, BufWriter, Write};
use std::time::Duration;

use serde_json::Value;

fn main() {
    let mut delay = Duration::from_millis(200);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--delay-ms" {
            if let Some(ms) = args.next().and_then(|v| v.parse().ok()) {
                delay = Duration::from_millis(ms);
            }
        } else {
            eprintln!("flood-node: unknown argument {a:?}");
        }
    }
    let stdin = io::stdin();
    let mut started = false;
    for line in stdin.lock().lines() {
        let Ok(line) = line else { return };
        if started {
            continue;
        }
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let body = &msg["body"];
        if body["type"] != "init" {
            continue;
        }
        let (Some(me), Some(ids)) = (body["node_id"].as_str(), body["node_ids"].as_array()) else {
            continue;
        };
        let ids: Vec<&str> = ids.iter().filter_map(Value::as_str).collect();
        let Some(pos) = ids.iter().position(|n| *n == me) else {
            continue;
        };
        let (me, peer) = (me.to_owned(), ids[(pos + 1) % ids.len()].to_owned());
        let reply = serde_json::json!({"src": me, "dest": msg["src"],
            "body": {"type": "init_ok", "in_reply_to": body["msg_id"]}});
        let mut out = io::stdout().lock();
        if writeln!(out, "{reply}").and_then(|()| out.flush()).is_err() {
            return;
        }
        drop(out);
        started = true;
        std::thread::spawn(move || flood(&me, &peer, delay));
    }
}

fn flood(me: &str, peer: &str, delay: Duration) {
    std::thread::sleep(delay);
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    for i in 0u64.. {
        let line = format!(
            "{{\"src\":\"{me}\",\"dest\":\"{peer}\",\"body\":{{\"type\":\"flood\",\"i\":{i}}}}}\n"
        );
        if out.write_all(line.as_bytes()).is_err() {
            return;
        }
    }
}
