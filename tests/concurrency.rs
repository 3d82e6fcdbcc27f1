//! Concurrency: more threads than cores append to a few keys while others poll. Every message
//! must land exactly once, offsets per key must be unique and gap-free, and no poll may ever see
//! a gap or a message out of place.

use std::collections::HashSet;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use maelstrom_kafka::store::{Logs, Msg};
use serde_json::json;

use crate::util::{check_reply, config, init, msg, run_text};

const WRITERS: usize = 8;
const POLLERS: usize = 3;
const KEYS: usize = 4;
const PER_WRITER: usize = if cfg!(miri) { 100 } else { 20_000 };

/// A message names its writer and sequence number, so we can tell every one apart.
fn encode(writer: usize, seq: usize) -> Msg {
    format!("{writer}:{seq}").into()
}

#[test]
fn mpmc_append_is_exactly_once_and_gap_free_and_polls_never_see_gaps() {
    let logs = Logs::new();
    let done = AtomicBool::new(false);
    let start = Barrier::new(WRITERS + POLLERS);
    let offsets: Vec<Vec<(usize, u64)>> = thread::scope(|s| {
        for _ in 0..POLLERS {
            s.spawn(|| {
                start.wait();
                let mut polls = 0u64;
                // Relaxed: a stop flag; the final check after join does not depend on it.
                while !done.load(Ordering::Relaxed) || polls == 0 {
                    for k in 0..KEYS {
                        let key = k.to_string();
                        let mut next = 0;
                        let mut seen = HashSet::new();
                        logs.poll(&key, 0, usize::MAX, |offset, m| {
                            assert_eq!(offset, next, "poll of key {key} skipped an offset");
                            next += 1;
                            assert!(seen.insert(m.clone()), "message twice in one poll");
                        });
                        // A poll from the middle starts exactly there.
                        let from = next / 2;
                        let mut expect = from;
                        logs.poll(&key, from, 100, |offset, _| {
                            assert_eq!(offset, expect);
                            expect += 1;
                        });
                    }
                    polls += 1;
                }
            });
        }
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (logs, start) = (&logs, &start);
                s.spawn(move || {
                    start.wait();
                    (0..PER_WRITER)
                        .map(|seq| {
                            let key = (seq + w) % KEYS;
                            (key, logs.append(&key.to_string(), encode(w, seq)).unwrap())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let results = writers.into_iter().map(|h| h.join().unwrap()).collect();
        done.store(true, Ordering::Relaxed);
        results
    });

    for k in 0..KEYS {
        let key = k.to_string();
        let mut acknowledged: Vec<u64> = offsets
            .iter()
            .flat_map(|per_writer| {
                per_writer
                    .iter()
                    .filter(|(kk, _)| *kk == k)
                    .map(|(_, o)| *o)
            })
            .collect();
        acknowledged.sort_unstable();
        let n = acknowledged.len() as u64;
        assert_eq!(
            acknowledged,
            (0..n).collect::<Vec<_>>(),
            "key {k}: offsets unique and dense"
        );
        let mut stored = HashSet::new();
        let returned = logs.poll(&key, 0, usize::MAX, |offset, m| {
            assert!(
                stored.insert(m.clone()),
                "key {k}: message at {offset} stored twice"
            );
        });
        assert_eq!(
            returned as u64, n,
            "key {k}: every acknowledged message is readable"
        );
    }
    // And every message sent is where its send said.
    for (w, per_writer) in offsets.iter().enumerate() {
        for (seq, (k, offset)) in per_writer.iter().enumerate() {
            let mut got = None;
            logs.poll(&k.to_string(), *offset, 1, |_, m| got = Some(m.clone()));
            assert_eq!(got, Some(encode(w, seq)), "writer {w} seq {seq}");
        }
    }
}

#[test]
fn the_pipeline_with_many_workers_answers_everything_consistently() {
    const SENDS: u64 = 4000;
    let mut input = init().to_string() + "\n";
    for i in 0..SENDS {
        let client = format!("c{}", i % 7);
        let key = (i % 5).to_string();
        input += &msg(
            &client,
            json!({"type": "send", "msg_id": i, "key": key, "msg": i}),
        )
        .to_string();
        input.push('\n');
        if i % 10 == 0 {
            let poll = json!({"type": "poll", "msg_id": 1_000_000 + i, "offsets": {key: 0}});
            input += &(msg("p", poll).to_string() + "\n");
        }
    }
    let lines = run_text(input, config(6));
    let mut per_key: Vec<Vec<(u64, u64)>> = vec![Vec::new(); 5];
    let mut polls = 0;
    let mut inits = 0;
    for line in &lines {
        let body = check_reply(line)["body"].clone();
        match body["type"].as_str().unwrap() {
            "send_ok" => {
                let i = body["in_reply_to"].as_u64().unwrap();
                per_key[(i % 5) as usize].push((body["offset"].as_u64().unwrap(), i));
            }
            "poll_ok" => polls += 1, // `check_reply` already rejects gaps and disorder
            "init_ok" => inits += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((inits, polls), (1, SENDS / 10));
    for (k, mut sends) in per_key.into_iter().enumerate() {
        sends.sort_unstable();
        let offsets: Vec<u64> = sends.iter().map(|(o, _)| *o).collect();
        assert_eq!(
            offsets,
            (0..offsets.len() as u64).collect::<Vec<_>>(),
            "key {k}"
        );
    }
}
