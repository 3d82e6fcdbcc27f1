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
/// key it reaches may get a shorter prefix, and later keys none. Those are the node's choice.
///
/// First, when the request names enough keys that the bound may be reached, the keys holding a
/// message no reply has carried yet (see `Logs::unserved`): a message is judged lost unless some
/// client reads it, and in Maelstrom's final phase, where every poll names every key from
/// offset 0, the few messages no main-phase poll returned are the ones at risk. In a
/// ten-minute run at 100k ops/s such a poll names 1.8M keys, each takes the node tenths of a
/// second to read, and a reply holds about 80,000 pairs of the log's 29M: no number of rounds
/// in the phase's 10 s would reach the newest keys by rotation alone.
///
/// Then the rest, rotated: a reply that stops early starts where the last such reply stopped
/// (the shared poll cursor counts the keys such replies visited), so clients polling the same
/// keys at the same time read different ones, and together cover all of them in fewer polls
/// than one client alone; the checker needs each message read by some client, not by each. A
/// reply that holds everything leaves the cursor alone (no shared write on the common path).
fn poll(requested: &[(CompactString, u64)], shared: &Shared, config: &Config, out: &mut Vec<u8>) {
    let count = requested.len();
    if count == 0 {
        return;
    }
    // Relaxed: the cursor only spreads replies over the keys; any value it holds is correct.
    let start = (shared.poll_cursor.load(Ordering::Relaxed) % count as u64) as usize;
    let order = || (start..count).chain(0..start);
    let mut reply = PollReply {
        begin: out.len(),
        out,
        bound: config.poll_bytes,
        first_key: true,
        cut: false,
    };
    // A pair takes at least `[0,0]` and a comma: below this many keys at `poll_max` pairs each,
    // the bound cannot be reached and the order does not matter.
    let may_fill = count
        .saturating_mul(config.poll_max)
        .saturating_mul(MIN_PAIR_BYTES)
        >= config.poll_bytes;
    let mut served = Vec::new();
    if may_fill {
        served = vec![false; count];
        for i in order() {
            if reply.full() {
                break;
            }
            let (key, from) = &requested[i];
            if shared.store.unserved(key, *from) {
                served[i] = true;
                reply.key(shared, key, *from, config.poll_max);
            }
        }
    }
    let mut visited = 0;
    for i in order() {
        if reply.full() {
            break;
        }
        visited += 1;
        if served.get(i) == Some(&true) {
            continue;
        }
        let (key, from) = &requested[i];
        reply.key(shared, key, *from, config.poll_max);
    }
    if visited < count || reply.cut {
        // The next such reply starts with the key this one cut short, if any: its next poller
        // reads on past the cut (its prefix comes again, but no one has read the rest yet).
        let advance = if reply.cut && visited > 1 {
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

/// The fewest bytes a pair takes in a reply: `[0,0]` and the comma before the next.
const MIN_PAIR_BYTES: usize = 6;

/// A `poll_ok`'s `msgs` as it is written: the keys so far, and whether the bound cut one short.
struct PollReply<'a> {
    out: &'a mut Vec<u8>,
    /// Where `msgs`'s members start in `out`.
    begin: usize,
    /// `Config::poll_bytes`.
    bound: usize,
    first_key: bool,
    /// Whether a key was cut short by the bound.
    cut: bool,
}

impl PollReply<'_> {
    fn full(&self) -> bool {
        self.out.len() - self.begin >= self.bound
    }

    /// Writes `key`'s pairs from `from`, at most `max`, stopping where the bound is passed.
    fn key(&mut self, shared: &Shared, key: &str, from: u64, max: usize) {
        let mut written = 0;
        let Self {
            out,
            begin,
            bound,
            first_key,
            cut,
        } = self;
        shared.store.serve(key, from, max, |offset, msg| {
            // Past the bound the rest of this key is left: what was written is a prefix.
            if written > 0 && out.len() - *begin >= *bound {
                *cut = true;
                return false;
            }
            // The key's entry opens with its first pair, so keys with none are left out.
            if written == 0 {
                if !*first_key {
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
            true
        });
        if written > 0 {
            out.push(b']');
            *first_key = false;
        }
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
