//! Worker loop: takes batches of requests, runs each RPC against the store, and writes the
//! replies, already serialised, for the writer thread.
//!
//! Replies are built straight into a byte buffer, one per batch (or more, for very large replies),
//! so the writer only copies bytes; buffers come back from the writer for reuse, so in steady
//! state a worker allocates nothing for replies.

use std::mem;

use crossbeam_channel::{Receiver, Sender};

use crate::config::Config;
use crate::doorbell::{BellReceiver, BellSender};
use crate::error::ErrorCode;
use crate::json::{write_str, write_u64};
use crate::node::Shared;
use crate::protocol::{Batch, Body, Keys, Request};

/// The channels a worker works between.
#[derive(Debug)]
pub(crate) struct Lanes {
    /// Batches of requests, from the reader.
    pub(crate) work: BellReceiver<Batch>,
    /// Emptied batches, back to the reader for reuse.
    pub(crate) spent: Sender<Batch>,
    /// Buffers of reply lines, to the writer.
    pub(crate) replies: BellSender<Vec<u8>>,
    /// Written-out reply buffers, back from the writer for reuse.
    pub(crate) blank: Receiver<Vec<u8>>,
}

/// Reply bytes after which a worker hands its buffer to the writer without finishing the batch.
const HANDOFF_BYTES: usize = 64 * 1024;

/// Serves batches until the reader is done, or the writer is gone.
pub(crate) fn run(lanes: &Lanes, shared: &Shared, config: &Config) {
    while let Some(mut batch) = lanes.work.recv() {
        let mut out = lanes.blank.try_recv().unwrap_or_default();
        for request in batch.requests.drain(..) {
            handle(request, &batch.keys, shared, config, &mut out);
            // Large replies (a final-phase poll of every key from 0) go to the writer at once
            // instead of waiting for the rest of the batch.
            if out.len() >= HANDOFF_BYTES {
                let full = mem::replace(&mut out, lanes.blank.try_recv().unwrap_or_default());
                if lanes.replies.send(full).is_err() {
                    return;
                }
            }
        }
        batch.keys.clear();
        // A full pool just means this batch is freed instead; nothing waits on it.
        let _ = lanes.spent.try_send(batch);
        if lanes.replies.send(out).is_err() {
            // stdout is closed: no reply can be delivered any more.
            return;
        }
    }
}

/// Runs one request, whose key lists are in `keys`, and appends its reply line to `out`.
pub fn handle(request: Request, keys: &Keys, shared: &Shared, config: &Config, out: &mut Vec<u8>) {
    let store = &shared.store;
    let from: Option<&str> = match &request.body {
        Body::Reject {
            from: Some(from), ..
        } => Some(from),
        _ => shared.node_id.get().map(|id| &**id),
    };
    let Some(from) = from else {
        // Unreachable in practice: the reader signs every pre-init rejection with `dest`.
        crate::diag::note!("no node id to sign a reply to {} with", request.src);
        return;
    };
    let reply = Reply::begin(out, from, &request.src, request.msg_id);
    match request.body {
        Body::Init { .. } => reply.kind("init_ok"),
        Body::Send { key, msg } => match store.append(&key, msg) {
            Ok(offset) => {
                reply.kind("send_ok");
                out.extend_from_slice(b",\"offset\":");
                write_u64(out, offset);
            }
            Err(_) => reply.error(
                ErrorCode::Abort,
                &format!("the log for key {key:?} is full"),
            ),
        },
        Body::Poll { offsets } => {
            reply.kind("poll_ok");
            out.extend_from_slice(b",\"msgs\":{");
            let mut first_key = true;
            for (key, from) in &keys[offsets] {
                let returned = store.poll(key, *from, config.poll_max, |offset, msg| {
                    // The key's entry opens with its first pair, so keys with none are left out.
                    if offset == *from {
                        if !first_key {
                            out.push(b',');
                        }
                        write_str(out, key);
                        out.extend_from_slice(b":[[");
                    } else {
                        out.extend_from_slice(b",[");
                    }
                    write_u64(out, offset);
                    out.push(b',');
                    out.extend_from_slice(msg.as_bytes());
                    out.push(b']');
                });
                if returned > 0 {
                    out.push(b']');
                    first_key = false;
                }
            }
            out.push(b'}');
        }
        Body::CommitOffsets { offsets } => {
            for (key, offset) in &keys[offsets] {
                store.commit(key, *offset);
            }
            reply.kind("commit_offsets_ok");
        }
        Body::ListCommittedOffsets { keys: list } => {
            reply.kind("list_committed_offsets_ok");
            out.extend_from_slice(b",\"offsets\":{");
            let mut first = true;
            for (key, _) in &keys[list] {
                if let Some(offset) = store.committed(key) {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    write_str(out, key);
                    out.push(b':');
                    write_u64(out, offset);
                }
            }
            out.push(b'}');
        }
        Body::Reject { code, text, .. } => reply.error(code, &text),
    }
    out.extend_from_slice(b"}}\n");
}

/// The start of a reply line, up to where the body's `type` goes.
struct Reply<'a> {
    out: &'a mut Vec<u8>,
    in_reply_to: u64,
}

impl<'a> Reply<'a> {
    fn begin(out: &'a mut Vec<u8>, from: &str, to: &str, in_reply_to: u64) -> Self {
        out.extend_from_slice(b"{\"src\":");
        write_str(out, from);
        out.extend_from_slice(b",\"dest\":");
        write_str(out, to);
        out.extend_from_slice(b",\"body\":{\"type\":");
        Self { out, in_reply_to }
    }

    /// Writes the reply's type and `in_reply_to`; the caller appends the RPC's own fields.
    fn kind(self, kind: &str) {
        self.out.push(b'"');
        self.out.extend_from_slice(kind.as_bytes());
        self.out.extend_from_slice(b"\",\"in_reply_to\":");
        write_u64(self.out, self.in_reply_to);
    }

    fn error(self, code: ErrorCode, text: &str) {
        let out = &mut *self.out;
        out.extend_from_slice(b"\"error\",\"in_reply_to\":");
        write_u64(out, self.in_reply_to);
        out.extend_from_slice(b",\"code\":");
        write_u64(out, code.code().into());
        out.extend_from_slice(b",\"text\":");
        write_str(out, text);
    }
}
