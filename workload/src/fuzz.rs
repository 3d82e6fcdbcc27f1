//! Entry points over whatever a node may write, for the fuzz targets (`fuzz/`) and the
//! seed-corpus test (`tests/fuzz_corpus.rs`).
//!
//! [`node_lines`] takes bytes as a node's stdout: each line goes through the runner's
//! reading of node lines ([`protocol::parse_line`], and the envelope and forwarding slices
//! the router takes), each reply to a client through a client's state machine
//! ([`Worker`]) and the generator's offset tracking, into a [`History`] as the
//! runner records it; then the history goes through everything that reads one: the
//! checker, the stats checker, the realtime lag, `history.jsonl`, the latency and rate
//! plots and the timeline. Whatever the bytes, none of it may panic, hang, or allocate in
//! proportion to a number the node wrote; and where the checker's rules say what the
//! verdict must be (an offset Jepsen could not judge), it is checked here.
//!
//! [`poll_msgs`] takes bytes as a `poll_ok`'s `msgs` and checks the one-pass reading of
//! poll replies ([`Runs::read`]) against serde's, alone and inside a whole node line; both
//! targets check that a line's one-pass reading and its explaining path agree.

use std::io;

use crate::checker::{self, Validity};
use crate::client::Worker;
use crate::generator::Generator;
use crate::history::{History, OpType, OpValue};
use crate::polled::{Polled, Runs};
use crate::protocol::{self, Dest, Inbound, Names, RawMsg, Reply};
use crate::runner::Timeline;
use crate::{lag, plot, services, timeline};

/// Client workers the lines are spread over (by the client they are addressed to).
const WORKERS: usize = 3;

/// What one input came to, for the tests over the seed corpus.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    /// Lines the runner's reading refused: each would kill a node's stdout.
    pub invalid_lines: usize,
    /// Completed client operations recorded.
    pub ops: usize,
    /// The kafka checker's verdict.
    pub valid: Validity,
    /// The anomaly names the checker reported.
    pub anomalies: Vec<&'static str>,
}

/// Reads `data` as a node's stdout and judges the history its replies make.
///
/// Each line addressed to client `c<N>` answers worker `N mod 3`'s pending operation,
/// which is whatever the reply's type answers (a send for `send_ok`, a poll for `poll_ok`,
/// an assign for `list_committed_offsets_ok`; for an error or a malformed reply, the
/// operation the line's position picks), invoked just before it. A send goes to key `"0"`
/// with the line's number (from 0) as its value, so a history can hold values no one
/// polled and polled values no one sent.
///
/// # Panics
///
/// When the checker breaks one of its own rules on this history (the point of fuzzing).
pub fn node_lines(data: &[u8]) -> Judged {
    let names = Names::with_services(
        vec!["n0".to_owned(), "n1".to_owned()],
        services::NAMES.iter().map(|s| (*s).to_owned()).collect(),
    );
    let mut h = History::default();
    let mut workers: Vec<Worker> = (0..WORKERS).map(|w| Worker::new(w, 0, w as u64)).collect();
    let mut generator = Generator::new(4, 16, 1.0 / 64.0);
    let mut invalid_lines = 0;
    let mut negative_offset = false;
    for (i, line) in crate::node::java_lines(data).enumerate() {
        let time = 2 * i as u64 + 1;
        // A line that is not UTF-8 kills the node's stdout before it is parsed.
        let Ok(line) = std::str::from_utf8(line) else {
            invalid_lines += 1;
            continue;
        };
        // What the router takes of a line it forwards to a node or a service.
        let _ = protocol::envelope_body(line);
        let _ = protocol::forwarded_body(line);
        let parsed = protocol::parse_line(line, &names);
        same_reading(line, &parsed, &protocol::parse_line_slow(line, &names));
        let (c, reply) = match parsed {
            Ok(Inbound::Reply {
                dest: Dest::Client(c),
                reply,
                ..
            }) => (c, reply),
            // Not on the network: the router kills the sender's stdout.
            Ok(inbound) if matches!(inbound.dest(), Dest::Unknown(_)) => {
                invalid_lines += 1;
                continue;
            }
            Ok(_) => continue,
            Err(_) => {
                invalid_lines += 1;
                continue;
            }
        };
        let w = &mut workers[(c % WORKERS as u64) as usize];
        let process = w.process;
        // Every send goes to key "0" with the line's number as its value, so a seed can
        // write a correct node's replies by hand.
        let key = h.tables.key("0");
        let msg = h.tables.msg(&RawMsg::Int(i as i64));
        let invoked = |h: &mut History, value: OpValue| {
            h.push(time - 1, process, OpType::Invoke, value, None);
        };
        match reply {
            Reply::SendOk { offset } => {
                negative_offset |= offset < 0;
                invoked(
                    &mut h,
                    OpValue::Send {
                        key,
                        offset: None,
                        msg,
                    },
                );
                generator.sent_ok(key, offset);
                let value = OpValue::Send {
                    key,
                    offset: Some(offset),
                    msg,
                };
                h.push(time, process, OpType::Ok, value, None);
            }
            Reply::PollOk { msgs } => {
                negative_offset |= msgs
                    .to_raw()
                    .iter()
                    .flat_map(|(_, ps)| ps)
                    .any(|(o, _)| *o < 0);
                invoked(&mut h, OpValue::Poll(None));
                let polled = h.intern_polled(msgs);
                let _commit = w.advance(&polled);
                w.final_progress(&polled);
                for (k, pairs) in crate::history::reads(&polled) {
                    generator.polled_ok(*k, pairs.max_offset().unwrap_or(-1));
                }
                h.push(time, process, OpType::Ok, OpValue::Poll(Some(polled)), None);
            }
            Reply::ListCommittedOffsetsOk { .. } => {
                let keys: crate::history::Keys = vec![key].into();
                let value = OpValue::Assign {
                    keys: keys.clone(),
                    seek_to_beginning: false,
                };
                invoked(&mut h, value.clone());
                w.assigned(&keys);
                h.push(time, process, OpType::Ok, value, None);
            }
            other => {
                w.pending = match i % 3 {
                    0 => crate::client::Pending::Send {
                        key,
                        msg,
                        msg_id: 1,
                    },
                    1 => crate::client::Pending::Poll { msg_id: 1 },
                    _ => crate::client::Pending::Assign {
                        keys: vec![key].into(),
                        msg_id: 1,
                    },
                };
                let (error, definite) = crate::client::reply_error(other);
                if let Some((kind, value)) = w.give_up(definite) {
                    invoked(&mut h, value.clone());
                    h.push(time, process, kind, value, Some(&error));
                    if kind == OpType::Info {
                        let n = workers.len() as u64;
                        let w = &mut workers[(c % WORKERS as u64) as usize];
                        w.replace(w.client + n, n);
                    }
                }
            }
        }
    }
    let ops = h.ops.len();
    let result = checker::check(&h);
    if negative_offset {
        assert_eq!(
            result.valid,
            Validity::Unknown,
            "a negative offset cannot be judged: {:?}",
            result.errors
        );
    }
    let _ = checker::stats_valid(&h);
    let worst = lag::worst_realtime_lag(&h);
    let _ = lag::to_json(&worst, &h);
    let errors = result.to_json();
    let focus = timeline::cited_ops(&errors["errors"]);
    h.write_jsonl(&mut io::sink())
        .expect("writing to a sink cannot fail");
    let end = h.ops.last().map_or(0, |o| o.time);
    let tl = Timeline {
        main_end: end / 2,
        final_start: end / 2,
        final_end: end,
        end,
        ..Timeline::default()
    };
    let _ = plot::latency_svg(&h, &tl);
    let _ = plot::rate_svg(&h, &tl);
    let node_ids = ["n0".to_owned(), "n1".to_owned()];
    let _ = timeline::timeline_html(&timeline::Input {
        history: &h,
        timeline: &tl,
        faults: &[],
        concurrency: WORKERS,
        node_ids: &node_ids,
        focus: &focus,
    });
    Judged {
        invalid_lines,
        ops,
        valid: result.valid,
        anomalies: result.errors.keys().copied().collect(),
    }
}

/// Reads `data` as a `poll_ok`'s `msgs` every way the runner may and checks they agree:
/// where the text is one JSON value, the one-pass reading ([`Runs::read`]) takes it only
/// if serde's reading ([`protocol::msgs_by_serde`]) does, and then yields exactly serde's
/// keys and pairs, in order; and a node line carrying the text as its `msgs` is read by
/// [`protocol::parse_line`] and by its explaining path alike (`same_reading`), to serde's
/// keys and pairs when serde reads the text, and never in one pass otherwise. Returns
/// whether the one-pass reading took the text (so the tests can tell that they
/// exercised it).
///
/// # Panics
///
/// When the readings disagree (the point of fuzzing).
pub fn poll_msgs(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let by_serde = protocol::msgs_by_serde(text).ok();
    // The one-pass reading is only ever given text serde_json has checked is one value.
    let one_value = serde_json::from_str::<&serde_json::value::RawValue>(text).is_ok();
    let runs = one_value.then(|| Runs::read(text)).flatten();
    if let Some(runs) = &runs {
        let raw = Polled::Runs(runs.clone()).to_raw();
        assert_eq!(
            Some(&raw),
            by_serde.as_ref(),
            "one-pass and serde differ on {text:?}"
        );
        // And the history keeps the same: the values are ids already, which must be the
        // ids the values interned one by one get, next to an interned value of another kind.
        let kept = |msgs: Polled| {
            let mut h = History::default();
            h.tables.msg(&RawMsg::Other("\"x\"".into()));
            let read = h.intern_polled(msgs);
            h.value_json(&OpValue::Poll(Some(read)))
        };
        assert_eq!(
            kept(Polled::Runs(runs.clone())),
            kept(Polled::Raw(raw)),
            "the history keeps {text:?} differently"
        );
    }
    let line = format!(
        r#"{{"src":"n0","dest":"c1","body":{{"type":"poll_ok","in_reply_to":1,"msgs":{text}}}}}"#
    );
    let names = Names::new(vec!["n0".to_owned()]);
    let parsed = protocol::parse_line(&line, &names);
    same_reading(&line, &parsed, &protocol::parse_line_slow(&line, &names));
    let read = match parsed {
        Ok(Inbound::Reply {
            reply: Reply::PollOk { msgs },
            ..
        }) => Some(msgs),
        _ => None,
    };
    if let Some(by_serde) = by_serde {
        let read = read.unwrap_or_else(|| panic!("serde reads {text:?}, the line is no poll_ok"));
        assert_eq!(
            read.to_raw(),
            by_serde,
            "the line's msgs differ from serde's: {text:?}"
        );
        assert_eq!(
            matches!(read, Polled::Runs(_)),
            runs.is_some(),
            "the line took another path than the text alone: {text:?}"
        );
    } else {
        // The line may still be a poll_ok read as Maelstrom's reader reads what serde_json
        // refuses (text after the envelope's end never looked at, as with `{..}}`), but
        // never by the one-pass readings.
        assert!(
            !matches!(read, Some(Polled::Runs(_))),
            "serde refuses {text:?}, the line reads {read:?}"
        );
    }
    runs.is_some()
}

/// Reads `data` as one line of a node's stdout every way the runner may: the one-pass
/// reading without serde (`protocol::one_pass`), the parse of [`protocol::parse_line`]
/// (which tries it first), and the explaining path alone; they must agree
/// (`same_reading`). Returns whether the one-pass reading took the line.
///
/// # Panics
///
/// When the readings disagree (the point of fuzzing).
pub fn one_line(data: &[u8]) -> bool {
    let Ok(line) = std::str::from_utf8(data) else {
        return false;
    };
    let names = Names::new(vec!["n0".to_owned(), "n1".to_owned()]);
    let slow = protocol::parse_line_slow(line, &names);
    let one_pass = protocol::one_pass(line, &names);
    if let Some(read) = &one_pass {
        // The one-pass reading takes only JSON serde_json takes.
        assert!(
            serde_json::from_str::<serde::de::IgnoredAny>(line).is_ok(),
            "the one-pass reading takes {line:?}, which is no JSON"
        );
        same_reading(line, &Ok(read.clone()), &slow);
    }
    same_reading(line, &protocol::parse_line(line, &names), &slow);
    one_pass.is_some()
}

/// Checks that a one-pass reading of a node's line ([`protocol::parse_line`]'s) and the
/// explaining path alone read it alike: the same verdict on the line, the same reply,
/// a poll's keys and pairs the same however each path holds them.
///
/// # Panics
///
/// Where they differ.
fn same_reading(
    line: &str,
    fast: &Result<Inbound, protocol::InvalidLine>,
    slow: &Result<Inbound, protocol::InvalidLine>,
) {
    let plain = |r: &Result<Inbound, protocol::InvalidLine>| match r {
        Ok(Inbound::Reply {
            dest,
            in_reply_to,
            reply: Reply::PollOk { msgs },
        }) => Ok(Inbound::Reply {
            dest: dest.clone(),
            in_reply_to: *in_reply_to,
            reply: Reply::PollOk {
                msgs: Polled::Raw(msgs.to_raw()),
            },
        }),
        other => other.clone(),
    };
    match (plain(fast), plain(slow)) {
        // Both refuse the line; the one-pass path's reason is the explaining path's.
        (Err(_), Err(_)) => {}
        (a, b) => assert_eq!(a, b, "the two paths read {line:?} differently"),
    }
}
