//! Worker thread: takes batches of requests from the reader, answers each with [`rpc::handle`],
//! and hands the replies, already serialised, to the writer thread.
//!
//! Replies are built straight into a byte buffer, one per batch (or more, for very large replies),
//! so the writer only copies bytes; buffers come back from the writer for reuse, so in steady
//! state a worker allocates nothing for replies.

use std::mem;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use crate::budget::ByteBudget;
use crate::config::Config;
use crate::doorbell::{BellReceiver, BellSender};
use crate::limits::{HANDOFF_BYTES, RECYCLE_KEYS};
use crate::protocol::{Body, Request};
use crate::reader::Batch;
use crate::rpc;
use crate::shared::Shared;
use crate::writer::Replies;

/// The channels a worker works between.
#[derive(Debug)]
pub(crate) struct Lanes {
    /// Batches of requests, from the reader.
    pub(crate) work: BellReceiver<Batch>,
    /// The bytes the reader took for each batch, given back as soon as a worker has it.
    pub(crate) work_budget: Arc<ByteBudget>,
    /// Emptied batches, back to the reader for reuse.
    pub(crate) empty_batches: Sender<Batch>,
    /// Buffers of reply lines, to the writer.
    pub(crate) replies: BellSender<Replies>,
    /// Reply buffers the writer has written out and cleared, back for reuse.
    pub(crate) empty_buffers: Receiver<Replies>,
}

/// Whether the reply deadline applies to the reply to `request`: it does to replies to clients
/// (Maelstrom names them `c1`, `c2`, …), but for `init_ok`, whose deadline is 10 s; it does not
/// to replies to other nodes, which do not give up after 5 s.
fn deadline_applies(request: &Request) -> bool {
    request.src.starts_with('c') && !matches!(request.body, Body::Init { .. })
}

/// Serves batches until the reader is done, or the writer is gone.
pub(crate) fn run(lanes: &Lanes, budget: &ByteBudget, shared: &Shared, config: &Config) {
    let deadline = config.reply_deadline();
    let fresh = |read_at| {
        let mut replies = lanes.empty_buffers.try_recv().unwrap_or_default();
        replies.read_at = read_at;
        replies
    };
    while let Some(mut batch) = lanes.work.recv() {
        lanes
            .work_budget
            .give_back(mem::take(&mut batch.line_bytes));
        let read_at = batch.read_at.take();
        // One clock reading per batch: its requests came out of one or two reads of stdin.
        let late = read_at
            .map(|t| t.elapsed())
            .filter(|waited| *waited > deadline);
        let mut out = fresh(read_at);
        for request in batch.requests.drain(..) {
            let applies = deadline_applies(&request);
            if let Some(waited) = late
                && applies
            {
                // The client has given up: answering is pointless, and harmful (see the
                // `reply_deadline_ms` docs), so the request is not run at all.
                shared.dropped(1, waited, || {
                    format!("{}'s request {}", request.src, request.msg_id)
                });
                continue;
            }
            let start = out.bytes.len();
            rpc::handle(request, &batch.keys, shared, config, &mut out.bytes);
            if !applies {
                out.exempt.push(start..out.bytes.len());
            }
            // Large replies (a final-phase poll of many keys) go to the writer at once instead of
            // waiting for the rest of the batch.
            if out.bytes.len() >= HANDOFF_BYTES {
                let full = mem::replace(&mut out, fresh(read_at));
                if !hand_over(lanes, budget, full) {
                    return;
                }
            }
        }
        batch.keys.clear();
        // A full pool just means this batch is freed instead; nothing waits on it. A batch that
        // held a poll of every key (Maelstrom's final phase) is freed too: kept in the pool, 64 of
        // them held 600 MB of key lists.
        if batch.keys.capacity() <= RECYCLE_KEYS {
            let _ = lanes.empty_batches.try_send(batch);
        }
        if !hand_over(lanes, budget, out) {
            // stdout is closed: no reply can be delivered any more.
            return;
        }
    }
}

/// Takes the buffer's bytes from the budget (waiting while the writer is that far behind) and
/// hands it to the writer. False once the writer is gone.
fn hand_over(lanes: &Lanes, budget: &ByteBudget, mut replies: Replies) -> bool {
    replies.taken = replies.bytes.len();
    budget.take(replies.taken) && lanes.replies.send(replies).is_ok()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::doorbell;
    use crate::protocol::Keys;

    #[test]
    fn a_late_batch_runs_only_what_the_deadline_exempts() {
        let (work_tx, work) = doorbell::channel(4);
        let (replies, replies_rx) = doorbell::channel(4);
        let (empty_batches, _empty_batches_rx) = crossbeam_channel::bounded(4);
        let (_empty_buffers_tx, empty_buffers) = crossbeam_channel::bounded(4);
        let lanes = Lanes {
            work,
            work_budget: Arc::new(ByteBudget::new(1 << 20)),
            empty_batches,
            replies,
            empty_buffers,
        };
        let shared = Shared::with_node_id("n0");
        let request = |src: &str, body| Request {
            src: src.into(),
            msg_id: 1,
            body,
        };
        let send = |src| {
            request(
                src,
                Body::Send {
                    key: "k".into(),
                    msg: "1".into(),
                },
            )
        };
        let init = Body::Init {
            node_id: "n0".into(),
            node_ids: Vec::new(),
        };
        let batch = Batch {
            requests: vec![request("c0", init), send("c1"), send("n1")],
            keys: Keys::new(),
            read_at: Instant::now().checked_sub(Duration::from_secs(10)),
            line_bytes: 0,
        };
        work_tx.send(batch).unwrap();
        drop(work_tx);
        run(
            &lanes,
            &ByteBudget::new(1 << 20),
            &shared,
            &Config::default(),
        );
        let replies = replies_rx.recv().unwrap();
        let text = String::from_utf8(replies.bytes).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].contains("\"init_ok\""), "{text}");
        assert!(
            lines[1].contains(r#""dest":"n1""#) && lines[1].contains(r#""offset":0"#),
            "the late client's send was not run: {text}"
        );
        assert_eq!(replies.exempt.len(), 2);
        assert_eq!(shared.dropped_replies(), 1);
    }
}
