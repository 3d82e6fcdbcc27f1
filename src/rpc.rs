//! The RPCs: one arm per request type, each run against the store, its reply line written
//! straight into the caller's byte buffer (a worker's, see `worker.rs`).

use crate::config::Config;
use crate::error::ErrorCode;
use crate::json::{write_str, write_u64};
use crate::protocol::{Body, Keys, Request};
use crate::shared::Shared;

/// Runs one request, whose key lists are in `keys`, and appends its reply line to `out`.
pub fn handle(request: Request, keys: &Keys, shared: &Shared, config: &Config, out: &mut Vec<u8>) {
    let store = &shared.store;
    if let Body::Replicate(_) = request.body {
        // The reader hands these to the replication thread; one here gets no reply.
        crate::diag::note!("a replicate message from {} reached a worker", request.src);
        return;
    }
    let from: Option<&str> = match &request.body {
        Body::Reject {
            from: Some(from), ..
        } => Some(from),
        _ => shared.node_id(),
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
                let mut opened = false;
                let returned = store.poll(key, *from, config.poll_max, |offset, msg| {
                    // The key's entry opens with its first pair, so keys with none are left out.
                    // On several nodes offsets are sparse: the first pair may lie past `from`.
                    if !opened {
                        opened = true;
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
        // Returned early above; an error reply is the harmless answer if that ever changes.
        Body::Replicate(_) => reply.error(ErrorCode::NotSupported, "not a request"),
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
