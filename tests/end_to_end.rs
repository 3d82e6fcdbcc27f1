//! End to end: the built binary as Maelstrom runs it, a child process on pipes.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::{check_reply, init, msg};

fn node() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_maelstrom-kafka"));
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Everything the node wrote on stderr (call once it has exited or its stdin is closed).
fn stderr_of(child: &mut std::process::Child) -> String {
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr is piped")
        .read_to_string(&mut stderr)
        .expect("stderr is UTF-8");
    stderr
}

#[test]
fn a_few_hundred_mixed_requests_then_eof_exits_cleanly() {
    let mut requests = vec![init()];
    let mut expected_sends = 0;
    for i in 0..400u64 {
        let client = format!("c{}", i % 4);
        let key = (i / 40).to_string();
        let body = match i % 4 {
            0 | 1 => {
                expected_sends += 1;
                json!({"type": "send", "msg_id": i, "key": key, "msg": i})
            }
            2 => json!({"type": "poll", "msg_id": i, "offsets": {key.clone(): 0, "none": 0}}),
            _ => json!({"type": "commit_offsets", "msg_id": i, "offsets": {key.clone(): i % 7}}),
        };
        requests.push(msg(&client, body));
        if i % 50 == 49 {
            requests.push(msg(
                &client,
                json!({"type": "list_committed_offsets", "msg_id": 10_000 + i, "keys": [key]}),
            ));
        }
    }
    // Sent only once every other reply is in, as a Maelstrom client would: with several
    // workers, a poll queued beside sends may run before them.
    let final_poll = msg(
        "c9",
        json!({"type": "poll", "msg_id": 1, "offsets": (0..10).map(|k| (k.to_string(), json!(0))).collect::<serde_json::Map<_, _>>()}),
    );

    let mut child = node().spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let input: String = requests.iter().map(|r| r.to_string() + "\n").collect();
    let writer = thread::spawn(move || stdin.write_all(input.as_bytes()).map(|()| stdin));
    let mut output = String::new();
    for _ in 0..requests.len() {
        stdout.read_line(&mut output).unwrap();
    }
    let mut stdin = writer.join().unwrap().unwrap();
    writeln!(stdin, "{final_poll}").unwrap();
    drop(stdin);
    stdout.read_to_string(&mut output).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    requests.push(final_poll);

    let replies: Vec<_> = output
        .lines()
        .map(|l| check_reply(l)["body"].clone())
        .collect();
    assert_eq!(replies.len(), requests.len(), "one reply per request");
    let sends = replies.iter().filter(|r| r["type"] == "send_ok").count();
    assert_eq!(sends, expected_sends);
    // The final poll sees every send, 20 per key, in order.
    let last = replies
        .iter()
        .find(|r| r["in_reply_to"] == 1 && r["type"] == "poll_ok")
        .unwrap();
    for k in 0..10 {
        let pairs = last["msgs"][k.to_string()].as_array().unwrap();
        assert_eq!(pairs.len(), 20, "key {k}");
    }
    let stderr = stderr_of(&mut child);
    assert_eq!(stderr, "", "nothing to complain about");
}

#[test]
fn replies_are_flushed_while_stdin_stays_open() {
    let mut child = node().spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        for _ in 0..2 {
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            tx.send(line).unwrap();
        }
    });
    let send = msg(
        "c1",
        json!({"type": "send", "msg_id": 2, "key": "k", "msg": 5}),
    )
    .to_string();
    let (head, tail) = send.split_at(10);
    // A whole line and the start of the next in one write: the first must not wait for the second.
    write!(stdin, "{}\n{head}", init()).unwrap();
    stdin.flush().unwrap();
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("init_ok arrives without EOF");
    assert_eq!(check_reply(first.trim_end())["body"]["type"], "init_ok");
    writeln!(stdin, "{tail}").unwrap();
    stdin.flush().unwrap();
    let second = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("send_ok arrives without EOF");
    assert_eq!(check_reply(second.trim_end())["body"]["offset"], 0);
    drop(stdin);
    reader.join().unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_closed_stdout_is_a_clean_exit() {
    let mut child = node().spawn().unwrap();
    drop(child.stdout.take());
    let mut stdin = child.stdin.take().unwrap();
    let line = msg(
        "c1",
        json!({"type": "send", "msg_id": 2, "key": "k", "msg": 5}),
    )
    .to_string()
        + "\n";
    // Writing may fail once the node has exited; that is the point.
    let _ = writeln!(stdin, "{}", init());
    for _ in 0..10_000 {
        if stdin.write_all(line.as_bytes()).is_err() {
            break;
        }
    }
    let _ = stdin.flush();
    // stdin stays open: the node must leave because its stdout broke, not because its input
    // ended. The bound only keeps a broken node from hanging the suite; a working one exits
    // as soon as its first reply fails to write.
    let mut status = None;
    for _ in 0..6000 {
        status = child.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the node still ran 60 s after its stdout closed, with stdin open");
    };
    drop(stdin);
    assert!(status.success(), "exit status {status}");
    let stderr = stderr_of(&mut child);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Lines of `child`'s stdout as they come, on a channel (the thread ends with stdout).
fn stdout_lines(child: &mut std::process::Child) -> mpsc::Receiver<String> {
    let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in stdout.lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// `count` lines from a peer the node does not know, each worth a note on stderr.
fn bad_peer_lines(count: usize) -> String {
    (0..count)
        .map(|i| {
            format!(
                "{}\n",
                json!({"src": "n9", "dest": "n0", "body": {"type": "replicate",
                    "updates": [[format!("key-{i}-{}", "x".repeat(100)), 0, 2, 0, []]]}})
            )
        })
        .collect()
}

// See: issue 15. A node whose stderr nobody read stopped answering: 3,000 notes about bad peer
// lines filled the pipe, and the reader blocked writing the next one.
#[test]
fn a_node_whose_stderr_nobody_reads_keeps_answering() {
    // stderr is a pipe that this test never reads: 64 KiB of notes fill it.
    let mut child = node().spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let replies = stdout_lines(&mut child);
    let init = init();
    let send = msg(
        "c1",
        json!({"type": "send", "msg_id": 2, "key": "k", "msg": 5}),
    );
    // Writing may itself block once the node stops reading, so it happens on a thread of its own.
    let input = format!("{init}\n{}{send}\n", bad_peer_lines(5000));
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
        let _ = stdin.flush();
        stdin
    });
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match replies.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => seen.push(check_reply(&line)["body"]["type"].clone()),
            Err(_) => break,
        }
    }
    let answered = seen == [json!("init_ok"), json!("send_ok")];
    if !answered {
        // Stuck: the test must not hang on it.
        child.kill().unwrap();
    }
    drop(writer.join().unwrap());
    child.wait().unwrap();
    assert!(answered, "the node stopped answering: {seen:?}");
}

#[test]
fn notes_about_a_flood_of_bad_lines_are_rate_limited_and_say_how_many_were_dropped() {
    let mut child = node().spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let init = init();
    let input = format!("{init}\n{}", bad_peer_lines(5000));
    let stderr = {
        let mut stderr = child.stderr.take().unwrap();
        thread::spawn(move || {
            let mut text = String::new();
            stderr.read_to_string(&mut text).unwrap();
            text
        })
    };
    let stdout = stdout_lines(&mut child);
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    assert_eq!(
        check_reply(&stdout.recv_timeout(Duration::from_secs(20)).unwrap())["body"]["type"],
        "init_ok"
    );
    assert!(child.wait().unwrap().success());
    let stderr = stderr.join().unwrap();
    let notes = stderr.lines().count();
    assert!(
        (2..=400).contains(&notes),
        "{notes} notes for 5,000 bad lines"
    );
    let dropped: u64 = stderr
        .lines()
        .filter_map(|line| line.strip_prefix("maelstrom-kafka: "))
        .filter_map(|line| line.split_once(" notes dropped"))
        .map(|(n, _)| n.parse::<u64>().unwrap())
        .sum();
    let about_bad_lines = stderr
        .matches("ignored a replicate message from n9")
        .count() as u64;
    assert_eq!(
        about_bad_lines + dropped,
        5000,
        "every bad line is noted or counted dropped:\n{stderr}"
    );
}

// See: issue 15. MAELSTROM_KAFKA_WORKERS=100000 started 32k threads and aborted, and a
// MAELSTROM_KAFKA_MAX_LINE of 1 made the node skip its own init.
#[test]
fn settings_out_of_range_are_clamped_with_a_note_and_the_node_serves() {
    for (name, value, note) in [
        (
            "MAELSTROM_KAFKA_WORKERS",
            "100000",
            "MAELSTROM_KAFKA_WORKERS=100000 is outside 1..=256; using 256",
        ),
        (
            "MAELSTROM_KAFKA_MAX_LINE",
            "1",
            "MAELSTROM_KAFKA_MAX_LINE=1 is outside 4096..=268435456; using 4096",
        ),
    ] {
        let mut child = node().env(name, value).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let send = msg(
            "c1",
            json!({"type": "send", "msg_id": 2, "key": "k", "msg": 5}),
        );
        write!(stdin, "{}\n{send}\n", init()).unwrap();
        drop(stdin);
        let mut stdout = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        let stderr = stderr_of(&mut child);
        let status = child.wait().unwrap();
        assert!(status.success(), "{name}={value}: {status}\n{stderr}");
        let types: Vec<Value> = stdout
            .lines()
            .map(|line| check_reply(line)["body"]["type"].clone())
            .collect();
        assert_eq!(types, ["init_ok", "send_ok"], "{name}={value}\n{stderr}");
        assert!(stderr.contains(note), "{name}={value}: {stderr}");
    }
}
