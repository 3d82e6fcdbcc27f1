//! Elle's cycle search, as Maelstrom's kafka checker runs it: `G1c-realtime`, found as
//! *future reads*.
//!
//! # What Maelstrom searches
//!
//! Jepsen's kafka checker hands Elle a graph over the completions of `send` and `poll`
//! operations (`assign` and `crash` are left out) and asks for cycles forbidden under
//! strict serializability. Under the options Maelstrom runs it with, the graph has two kinds
//! of edges:
//!
//! * **wr**: from the send that wrote value `v` to key `k` to every op that read `v` from
//!   `k`. The writer is Jepsen's `writer-of`: the *last* completion, in history order, of a
//!   send of `v` to `k`, whatever its outcome (`ok`, `info` or `fail`).
//! * **realtime**: from an `ok` op A to every op B invoked after A completed (Elle keeps a
//!   transitive reduction, which has the same paths). Only `ok` ops start such an edge; any
//!   op, an `info` or `fail` one too, can end one, since it was invoked.
//!
//! There are no ww edges (Maelstrom does not set `:ww-deps`), no rw edges (Jepsen's kafka
//! checker builds none), and every op is a single `send` or `poll` (`:txn? false`).
//! Elle names a cycle of wr and realtime edges `G1c-realtime`; Maelstrom does not allow it,
//! so it makes the run invalid.
//!
//! # A cycle exists exactly when a future read does
//!
//! A *future read* is an `ok` poll P that returned `v` for key `k`, where the writer S of
//! (`k`, `v`) was invoked only after P completed. Write `inv(X)` and `comp(X)` for the
//! positions of an op's invocation and completion in the history; `inv(X) < comp(X)`.
//!
//! *A future read is a cycle.* S →wr P since P read what S wrote, and P →realtime S since
//! P is `ok` and S was invoked after P completed: a cycle of two ops (Elle's reduced
//! realtime graph may route the second edge through other ops; the cycle is there all the
//! same).
//!
//! *A cycle holds a future read.* Take a cycle with no future read. Its realtime edges A → B
//! have `comp(A) < inv(B) < comp(B)`. Its wr edges S → P go from a send to a poll (a poll
//! writes nothing, a send reads nothing), and with no future read `inv(S) < comp(P)`. Only
//! realtime edges end at a send, so every wr edge S → P of the cycle comes right after a
//! realtime edge A → S, and together `comp(A) < inv(S) < comp(P)`. The cycle is then made
//! of single realtime edges and of realtime-then-wr pairs, and `comp` strictly increases
//! along each: it cannot come back to where it started. So no such cycle exists.
//!
//! Hence the check below reports every future read, and nothing else, under
//! `G1c-realtime`. Only invocations of sends matter, which is how Elle counts an `info`
//! send that never completed. Positions, not clock times, order the ops, as Elle orders
//! them; the example gives both times.
//!
//! # What would break the equivalence
//!
//! * **`:ww-deps`**: ww edges between sends in log order chain send to send, so a cycle
//!   needs no future read (Jepsen then allows `G1c` altogether).
//! * **Multi-op transactions** (`:txn? true`): an op that both sends and polls is the end
//!   of one wr edge and the start of the next, so two concurrent transactions that read
//!   each other's sends form a cycle (`G1c`, with no realtime edge at all).
//! * **rw edges**, which Jepsen's kafka checker has commented out: a poll whose last read
//!   precedes a send in the log would point at that send, giving `G-single` cycles.
//! * Process edges alone change nothing here: Elle links a process's successive `ok` ops,
//!   which realtime edges already order.
//!
//! # Cost
//!
//! One pass over the history, a binary search among a key's values per pair read, and 4
//! bytes per (key, value) sent for the pass: O(ops + pairs read × log values per key)
//! time, and memory proportional to the sends, never to an offset or a value.

use serde_json::json;

use super::Checker;
use super::index::NONE;
use crate::history::OpType;
use crate::history::OpValue;

impl Checker<'_> {
    /// `G1c-realtime`: every `ok` poll that read a value whose writer was invoked only
    /// after the poll completed.
    pub(super) fn g1c_realtime(&mut self) {
        let (h, ops) = (self.h, &self.h.ops);
        // By entry: its writer's invocation index (0 for none: no poll completes before
        // index 0). The writer is the last completion of a send of it, as Jepsen's
        // `writer-of` ([`super::index::Values`]); Jepsen pairs a completion with its
        // process's last invocation, as `History::push` does. A vector by entry for this
        // pass alone, so the lookup per pair read finds it beside the entry.
        let invoked: Vec<u32> = self
            .values
            .writer
            .iter()
            .map(|&w| match w {
                NONE => NONE,
                w => h.invoked_at(&ops[w as usize]).map_or(0, |(_, i)| i),
            })
            .collect();
        let mut found = Vec::new();
        for (pos, op) in ops.iter().enumerate() {
            if op.kind != OpType::Ok {
                continue;
            }
            let OpValue::Poll(Some(reads)) = &op.value else {
                continue;
            };
            for (k, pairs) in crate::history::reads(reads) {
                for (_, v) in pairs.iter() {
                    if let Some(e) = self.values.entry(*k, v)
                        && let inv = invoked[e as usize]
                        && inv != NONE
                        && inv > op.index
                    {
                        found.push((pos, *k, v, self.values.writer[e as usize] as usize));
                    }
                }
            }
        }
        drop(invoked);
        for (poll, k, v, send) in found {
            let (poll, send) = (&ops[poll], &ops[send]);
            let invoked = h.invoked_at(send).map_or(0, |(t, _)| t);
            self.report("G1c-realtime", |c| {
                json!({
                    "key": c.key(k),
                    "value": c.msg(v),
                    "poll": c.op(poll, Some(k)),
                    "send": c.op(send, None),
                    "poll-completed": poll.time,
                    "send-invoked": invoked,
                    "cycle": [poll.index, send.index, poll.index],
                    "explanation": format!(
                        "poll {} completed (at {} ns) before send {} was invoked (at {} ns), \
                         so the poll precedes the send in real time; yet the poll read {} \
                         from key {}, which that send wrote",
                        poll.index, poll.time, send.index, invoked,
                        c.h.tables.msg_json(v), c.key(k)
                    ),
                })
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{B, types};
    use super::super::{Validity, check};
    use crate::history::OpType;

    fn g1c(b: &B) -> usize {
        check(&b.h)
            .errors
            .get("G1c-realtime")
            .map_or(0, |a| a.count)
    }

    #[test]
    fn a_poll_that_reads_a_send_invoked_after_it_completed_is_a_cycle() {
        // The first history: process 1 reads y=1 before process 0 sends it.
        let mut b = B::default();
        b.send(0, "x", 1, 0)
            .poll(1, &[("y", &[(0, 1)])])
            .send(0, "y", 1, 0)
            .poll(2, &[("x", &[(0, 1)]), ("y", &[(0, 1)])]);
        let r = check(&b.h);
        assert_eq!(r.valid, Validity::False, "{:?}", r.errors);
        assert_eq!(types(&r), vec!["G1c-realtime"]);
        let e = &r.errors["G1c-realtime"];
        assert_eq!(e.count, 1);
        let ex = &e.examples[0];
        assert_eq!(ex["key"], "y");
        assert_eq!(ex["value"], 1);
        assert_eq!(ex["poll"]["index"], 3);
        assert_eq!(ex["send"]["index"], 5);
        assert_eq!(ex["poll-completed"], 4);
        assert_eq!(ex["send-invoked"], 5);
        assert_eq!(ex["cycle"], serde_json::json!([3, 5, 3]));
    }

    #[test]
    fn one_process_that_reads_a_value_and_then_sends_it() {
        // The second history: the same process reads y=1, then sends it.
        let mut b = B::default();
        b.send(0, "x", 1, 0)
            .poll(0, &[("y", &[(0, 1)])])
            .send(0, "y", 1, 0)
            .poll(1, &[("x", &[(0, 1)]), ("y", &[(0, 1)])]);
        assert_eq!(types(&check(&b.h)), vec!["G1c-realtime"]);
    }

    #[test]
    fn a_poll_answered_with_another_keys_pairs() {
        // The third history: a poll of key 5 gets key 3's pairs under the label 5,
        // and values 1 and 2 are only sent to 5 afterwards. Every other check passes.
        let mut b = B::default();
        b.send(0, "3", 1, 0)
            .send(0, "3", 2, 1)
            .poll(1, &[("5", &[(0, 1), (1, 2)])])
            .send(0, "5", 1, 0)
            .send(0, "5", 2, 1)
            .poll(2, &[("3", &[(0, 1), (1, 2)]), ("5", &[(0, 1), (1, 2)])]);
        let r = check(&b.h);
        assert_eq!(types(&r), vec!["G1c-realtime"]);
        assert_eq!(r.errors["G1c-realtime"].count, 2);
        // The same history with the poll answered truthfully is valid.
        let mut ok = B::default();
        ok.send(0, "3", 1, 0)
            .send(0, "3", 2, 1)
            .poll(1, &[("3", &[(0, 1), (1, 2)])])
            .send(0, "5", 1, 0)
            .send(0, "5", 2, 1)
            .poll(2, &[("3", &[(0, 1), (1, 2)]), ("5", &[(0, 1), (1, 2)])]);
        let r = check(&ok.h);
        assert_eq!(r.valid, Validity::True, "{:?}", r.errors);
    }

    #[test]
    fn a_poll_concurrent_with_the_send_is_no_cycle() {
        // The send is invoked before the poll completes: the poll may see it, whichever
        // completes first and however the invocations are ordered.
        let orders: [&[&str]; 4] = [
            &["inv-poll", "inv-send", "ok-poll", "ok-send"],
            &["inv-poll", "inv-send", "ok-send", "ok-poll"],
            &["inv-send", "inv-poll", "ok-poll", "ok-send"],
            &["inv-send", "inv-poll", "ok-send", "ok-poll"],
        ];
        for order in orders {
            let mut b = B::default();
            for step in order {
                match *step {
                    "inv-poll" => b.invoke_poll(1),
                    "ok-poll" => b.complete_poll(1, &[("y", &[(0, 1)])]),
                    "inv-send" => b.invoke_send(0, "y", 1),
                    _ => b.complete_send(0, OpType::Ok, "y", 1, Some(0)),
                };
            }
            let r = check(&b.h);
            assert_eq!(r.valid, Validity::True, "{order:?}: {:?}", r.errors);
        }
        // Invoked one step after the poll completed: a cycle.
        let mut b = B::default();
        b.invoke_poll(1)
            .complete_poll(1, &[("y", &[(0, 1)])])
            .invoke_send(0, "y", 1)
            .complete_send(0, OpType::Ok, "y", 1, Some(0));
        assert_eq!(g1c(&b), 1);
    }

    #[test]
    fn sends_that_never_completed_or_failed_count_by_their_invocation() {
        // An info send, invoked after the poll that read its value completed.
        let mut info = B::default();
        info.send(0, "x", 1, 0)
            .poll(1, &[("x", &[(0, 1), (1, 2)])])
            .send_as(0, OpType::Info, "x", 2, None);
        assert_eq!(types(&check(&info.h)), vec!["G1c-realtime"]);
        // The same info send invoked before the poll completed: nothing wrong.
        let mut early = B::default();
        early.send(0, "x", 1, 0).invoke_send(0, "x", 2);
        early
            .poll(1, &[("x", &[(0, 1), (1, 2)])])
            .complete_send(0, OpType::Info, "x", 2, None);
        assert!(check(&early.h).errors.is_empty());
        // A failed send read from the future: an aborted read and a cycle, as in Elle.
        let mut fail = B::default();
        fail.send(0, "x", 1, 0)
            .poll(1, &[("x", &[(0, 1), (1, 2)])])
            .send_as(0, OpType::Fail, "x", 2, None);
        assert_eq!(types(&check(&fail.h)), vec!["G1a", "G1c-realtime"]);
    }

    #[test]
    fn the_writer_is_the_last_send_of_the_value_as_jepsens_writer_of() {
        // Value 1 is sent to x twice, the second time after the poll: Jepsen's writer-of
        // keeps the last completion, whose wr edge closes a cycle with the poll.
        let mut b = B::default();
        b.send(0, "x", 1, 0)
            .poll(1, &[("x", &[(0, 1)])])
            .send(0, "x", 1, 1);
        assert!(types(&check(&b.h)).contains(&"G1c-realtime"));
    }

    #[test]
    fn only_ok_polls_start_realtime_edges() {
        // A failed poll has no data in Maelstrom; one with data (another checker's history)
        // starts no realtime edge, so it closes no cycle.
        let mut b = B::default();
        b.send(0, "x", 1, 0).invoke_poll(1);
        let reads = b.reads(&[("x", &[(0, 1), (1, 2)])]);
        b.push(
            1,
            OpType::Info,
            crate::history::OpValue::Poll(Some(crate::history::poll_result(reads))),
        );
        b.send(0, "x", 2, 1).poll(2, &[("x", &[(0, 1), (1, 2)])]);
        assert_eq!(g1c(&b), 0);
    }
}
