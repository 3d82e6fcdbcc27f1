//! Worker thread: takes batches of requests from the reader, answers each with [`rpc::handle`],
//! and hands the replies, already serialised, to the writer thread.
//!
//! Replies are built straight into a byte buffer, one per batch (or more, for very large replies),
//! so the writer only copies bytes; buffers come back from the writer for reuse, so in steady
//! state a worker allocates nothing for replies.

use std::mem;

use crossbeam_channel::{Receiver, Sender};

use crate::config::Config;
use crate::doorbell::{BellReceiver, BellSender};
use crate::protocol::Batch;
use crate::rpc;
use crate::shared::Shared;

/// The channels a worker works between.
#[derive(Debug)]
pub(crate) struct Lanes {
    /// Batches of requests, from the reader.
    pub(crate) work: BellReceiver<Batch>,
    /// Emptied batches, back to the reader for reuse.
    pub(crate) empty_batches: Sender<Batch>,
    /// Buffers of reply lines, to the writer.
    pub(crate) replies: BellSender<Vec<u8>>,
    /// Reply buffers the writer has written out and cleared, back for reuse.
    pub(crate) empty_buffers: Receiver<Vec<u8>>,
}

/// Reply bytes after which a worker hands its buffer to the writer without finishing the batch.
const HANDOFF_BYTES: usize = 64 * 1024;

/// Serves batches until the reader is done, or the writer is gone.
pub(crate) fn run(lanes: &Lanes, shared: &Shared, config: &Config) {
    let fresh = || lanes.empty_buffers.try_recv().unwrap_or_default();
    while let Some(mut batch) = lanes.work.recv() {
        let mut out = fresh();
        for request in batch.requests.drain(..) {
            rpc::handle(request, &batch.keys, shared, config, &mut out);
            // Large replies (a final-phase poll of every key from 0) go to the writer at once
            // instead of waiting for the rest of the batch.
            if out.len() >= HANDOFF_BYTES {
                let full = mem::replace(&mut out, fresh());
                if lanes.replies.send(full).is_err() {
                    return;
                }
            }
        }
        batch.keys.clear();
        // A full pool just means this batch is freed instead; nothing waits on it.
        let _ = lanes.empty_batches.try_send(batch);
        if lanes.replies.send(out).is_err() {
            // stdout is closed: no reply can be delivered any more.
            return;
        }
    }
}
