//! End to end: the built binary as Maelstrom runs it, a child process on pipes.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde_json::json;

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
