//! The RPCs: one arm per request type, each run against the store, its reply line written
//! straight into the caller's byte buffer (a worker's, see `worker.rs`).

use std::sync::atomic::Ordering;

use compact_str::CompactString;

use crate::config::Config;
use crate::envelope;
use crate::error::ErrorCode;
use crate::json::{write_str, write_u64};
use crate::protocol::{Body, Keys, Request};
use crate::replication;
use crate::shared::Shared;

/// Runs one request, whose key lists are in `keys`, and appends its reply line to `out`.
pub fn handle(request: Request, keys: &Keys, shared: &Shared, config: &Config, out: &mut Vec<u8>) {
    let store = &shared.store;
    let Request {
        src,
        msg_id,
        mut body,
    } = request;
    // A rejection before `init` is signed with the envelope's `dest`, taken out of the body so
    // that the body can be matched by value below.
    let signed_as = match &mut body {
        Body::Reject { from, .. } => from.take(),
        _ => None,
    };
    let Some(from) = signed_as.as_deref().or(shared.node_id()) else {
        // Unreachable in practice: the reader signs every pre-init rejection with `dest`.
        crate::diag::note!("no node id to sign a reply to {src} with");
        return;
    };
    let reply = Reply::begin(out, from, &src, msg_id);
    // On several nodes, what a client sends or commits must be able to reach every peer.
    let travels = |key: &str, msg: Option<&str>| match shared.cluster() {
        Some(cluster) if cluster.len() > 1 => {
            replication::travels(cluster, config.max_line, key, msg)
        }
        _ => Ok(()),
    };
    match body {
        Body::Init { .. } => reply.kind("init_ok"),
        Body::Send { key, msg } => {
            match travels(&key, Some(&msg)).map(|()| store.append(&key, msg)) {
                Err(why) => reply.error(ErrorCode::MalformedRequest, &why),
                Ok(Ok(offset)) => {
                    reply.kind("send_ok");
                    out.extend_from_slice(b",\"offset\":");
                    write_u64(out, offset);
                }
                Ok(Err(_)) => reply.error(
                    ErrorCode::Abort,
                    &format!("the log for key {key:?} is full"),
                ),
            }
        }
        Body::Poll { offsets } => {
            reply.kind("poll_ok");
            out.extend_from_slice(b",\"msgs\":{");
            poll(&keys[offsets], shared, config, out);
            out.push(b'}');
        }
        Body::CommitOffsets { offsets } => {
            // Every key checked before any is committed: an error means nothing happened.
            let offsets = &keys[offsets];
            match offsets.iter().try_for_each(|(key, _)| travels(key, None)) {
                Err(why) => reply.error(ErrorCode::MalformedRequest, &why),
                Ok(()) => {
                    for (key, offset) in offsets {
                        store.commit(key, *offset);
                    }
                    reply.kind("commit_offsets_ok");
                }
            }
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
    envelope::end(out);
}

/// Writes the members of a `poll_ok`'s `msgs`: for each requested key with anything to return,
/// its pairs from the requested offset, ascending and contiguous, at most `poll_max` of them.
///
/// The whole stops taking pairs once it holds `poll_bytes` bytes (after at least one pair), so a
/// key it reaches may get a shorter prefix, and later keys none. Those are the node's choice, and
/// it rotates them: a reply that stops early starts where the last such reply stopped (the
/// shared poll cursor counts the keys such replies visited), so clients polling the same keys at
/// the same time read different ones, and together cover all of them in fewer polls than one
/// client alone; the checker needs each message read by some client, not by each. A reply that
/// holds everything leaves the cursor alone (no shared write on the common path).
fn poll(requested: &[(CompactString, u64)], shared: &Shared, config: &Config, out: &mut Vec<u8>) {
    let count = requested.len();
    if count == 0 {
        return;
    }
    // Relaxed: the cursor only spreads replies over the keys; any value it holds is correct.
    let start = (shared.poll_cursor.load(Ordering::Relaxed) % count as u64) as usize;
    let begin = out.len();
    let mut first_key = true;
    let mut visited = 0;
    let mut cut = false;
    for (key, from) in requested[start..].iter().chain(&requested[..start]) {
        if out.len() - begin >= config.poll_bytes {
            break;
        }
        visited += 1;
        let mut written = 0;
        shared
            .store
            .poll(key, *from, config.poll_max, |offset, msg| {
                // Past the bound the rest of this key is skipped: what was written is a prefix.
                if written > 0 && out.len() - begin >= config.poll_bytes {
                    cut = true;
                    return;
                }
                // The key's entry opens with its first pair, so keys with none are left out.
                if written == 0 {
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
                written += 1;
            });
        if written > 0 {
            out.push(b']');
            first_key = false;
        }
    }
    if visited < count || cut {
        // The next such reply starts with the key this one cut short, if any: its next poller
        // reads on past the cut (its prefix comes again, but no one has read the rest yet).
        let advance = if cut && visited > 1 {
            visited - 1
        } else {
            visited
        };
        // Relaxed: as above.
        shared
            .poll_cursor
            .fetch_add(advance as u64, Ordering::Relaxed);
    }
}

/// A reply to one request, whose envelope is written once its type is known.
struct Reply<'a> {
    out: &'a mut Vec<u8>,
    from: &'a str,
    to: &'a str,
    in_reply_to: u64,
}

impl<'a> Reply<'a> {
    fn begin(out: &'a mut Vec<u8>, from: &'a str, to: &'a str, in_reply_to: u64) -> Self {
        Self {
            out,
            from,
            to,
            in_reply_to,
        }
    }

    /// Writes the envelope, the reply's type and `in_reply_to`; the caller appends the RPC's
    /// own fields.
    fn kind(self, kind: &str) {
        envelope::begin(self.out, self.from, self.to, kind);
        self.out.extend_from_slice(b",\"in_reply_to\":");
        write_u64(self.out, self.in_reply_to);
    }

    fn error(self, code: ErrorCode, text: &str) {
        let out = &mut *self.out;
        envelope::begin(out, self.from, self.to, "error");
        out.extend_from_slice(b",\"in_reply_to\":");
        write_u64(out, self.in_reply_to);
        out.extend_from_slice(b",\"code\":");
        write_u64(out, code.code().into());
        out.extend_from_slice(b",\"text\":");
        write_str(out, text);
    }
}
