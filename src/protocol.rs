//! Wire types: what a line on stdin is ([`Incoming`]: a client's request, or a peer's
//! `replicate` message), and how a parsed line becomes one.
//! The rules of the wire format, and of the client that reads our replies, are in
//! `docs/protocol.md` (§2 to §4).
//!
//! # Format
//!
//! Every line on stdin is one envelope; Maelstrom may add fields (such as `id`), which are ignored:
//!
//! ```json
//! {"id":42,"src":"c3","dest":"n0","body":{"type":"send","msg_id":7,"key":"5","msg":3}}
//! ```
//!
//! The RPCs, request then reply (replies are written by `rpc.rs`):
//!
//! ```json
//! {"type":"init","msg_id":1,"node_id":"n0","node_ids":["n0"]}
//! {"type":"init_ok","in_reply_to":1}
//! {"type":"send","msg_id":3,"key":"9","msg":4}
//! {"type":"send_ok","in_reply_to":3,"offset":12}
//! {"type":"poll","msg_id":4,"offsets":{"9":0,"12":5}}
//! {"type":"poll_ok","in_reply_to":4,"msgs":{"9":[[0,1],[1,2]]}}
//! {"type":"commit_offsets","msg_id":5,"offsets":{"9":3}}
//! {"type":"commit_offsets_ok","in_reply_to":5}
//! {"type":"list_committed_offsets","msg_id":6,"keys":["9","12"]}
//! {"type":"list_committed_offsets_ok","in_reply_to":6,"offsets":{"9":3}}
//! {"type":"error","in_reply_to":6,"code":12,"text":"…"}
//! ```

use std::ops::Range;

use compact_str::CompactString;
use simd_json::prelude::*;
use simd_json::tape::{Object, Value};

use crate::error::ErrorCode;
use crate::json;
use crate::limits::{KEY_MAP_RETAIN, MAX_NODES, SHRINK_ABOVE};
use crate::replication::wire::{self, Replicate};
use crate::store::{MAX_OFFSET, Msg};

/// The pairs of (key, offset) that requests point into; list requests use offset 0.
pub type Keys = Vec<(CompactString, u64)>;

/// A request that deserves a reply: who asked, which message, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The sender, who gets the reply.
    pub src: CompactString,
    /// The sender's `msg_id`, echoed as `in_reply_to`.
    pub msg_id: u64,
    pub body: Body,
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Init {
        node_id: CompactString,
        /// Every node's id (`node_ids`), each once, ours among them (see `check_cluster`).
        node_ids: Vec<CompactString>,
    },
    Send {
        key: CompactString,
        /// The raw JSON text of `msg`, exactly as it arrived.
        msg: Msg,
    },
    /// `offsets` indexes the batch's [`Keys`]: (key, first offset wanted).
    Poll { offsets: Range<usize> },
    /// `offsets` indexes the batch's [`Keys`]: (key, offset committed).
    CommitOffsets { offsets: Range<usize> },
    /// `keys` indexes the batch's [`Keys`]; their offsets mean nothing.
    ListCommittedOffsets { keys: Range<usize> },
    /// A request the reader already rejected; the reply is this error.
    Reject {
        code: ErrorCode,
        text: String,
        /// Our own id, to sign the reply with, when it is not known yet (before `init`).
        from: Option<CompactString>,
    },
}

/// What one line on stdin is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A request that deserves a reply, for a worker.
    Request(Request),
    /// A peer's replication message (see `replication/`): for the replication thread, and it
    /// gets no reply.
    Replicate {
        src: CompactString,
        message: Box<Replicate>,
    },
}

/// Why a line gets no reply: there is no one or nothing to reply to. Logged on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unanswerable(pub String);

impl std::fmt::Display for Unanswerable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unanswerable {}

/// Turns a line that simd-json parsed into `tape` into what it is, appending the keys of a poll,
/// commit or list to `keys` (and nothing, if the request is rejected).
///
/// `line` is the line's original text, before simd-json unescaped strings in place; `send`
/// takes `msg` from it verbatim, found with the help of `structurals`, simd-json's structural
/// indexes for the line.
/// Field errors that leave `src` and `msg_id` readable become [`Body::Reject`] (code 12, or 10
/// for an unknown type), so the sender hears why.
pub fn parse(
    tape: Value<'_, '_>,
    line: &[u8],
    structurals: &[u32],
    keys: &mut Keys,
) -> Result<Incoming, Unanswerable> {
    let Some(envelope) = tape.as_object() else {
        return Err(Unanswerable("the line is not a JSON object".into()));
    };
    // One pass over the members, rather than a lookup per name; the first of a repeated name
    // wins, as with simd-json's own lookups.
    let (mut src, mut dest, mut body) = (None, None, None);
    for (name, value) in envelope.iter() {
        let slot = match name {
            "src" => &mut src,
            "dest" => &mut dest,
            "body" => &mut body,
            _ => continue,
        };
        slot.get_or_insert(value);
    }
    let Some(src) = src.and_then(Value::into_string) else {
        return Err(Unanswerable("the envelope has no string `src`".into()));
    };
    let Some(body) = body.and_then(|v| v.as_object()) else {
        return Err(Unanswerable(format!(
            "the message from {src} has no object `body`"
        )));
    };
    let fields = Fields::of(&body);
    if fields.ty.and_then(Value::into_string) == Some(wire::TYPE) {
        // Between our own nodes: no msg_id, and never a reply, so a malformed one is only noted.
        return match wire::decode(&body) {
            Ok(mut message) => {
                message.line_len = line.len();
                Ok(Incoming::Replicate {
                    src: src.into(),
                    message: Box::new(message),
                })
            }
            Err(why) => Err(Unanswerable(format!(
                "a malformed replicate message from {src}: {why}"
            ))),
        };
    }
    let Some(msg_id) = fields.msg_id.and_then(|v| v.as_u64()) else {
        return Err(Unanswerable(format!(
            "the message from {src} has no non-negative integer `msg_id`"
        )));
    };
    let mark = keys.len();
    let body = parse_body(&fields, line, structurals, keys).unwrap_or_else(|(code, text)| {
        keys.truncate(mark);
        // A refused `init` is answered with its reason even before any init: signed with the
        // envelope's `dest`, as we have no id of our own yet.
        let init = fields.ty.and_then(Value::into_string) == Some("init");
        Body::Reject {
            code,
            text,
            from: dest
                .filter(|_| init)
                .and_then(Value::into_string)
                .map(CompactString::from),
        }
    });
    Ok(Incoming::Request(Request {
        src: src.into(),
        msg_id,
        body,
    }))
}

/// The body members this node reads, gathered in one pass.
#[derive(Default)]
struct Fields<'t, 'i> {
    ty: Option<Value<'t, 'i>>,
    msg_id: Option<Value<'t, 'i>>,
    node_id: Option<Value<'t, 'i>>,
    node_ids: Option<Value<'t, 'i>>,
    key: Option<Value<'t, 'i>>,
    msg: Option<Value<'t, 'i>>,
    offsets: Option<Value<'t, 'i>>,
    keys: Option<Value<'t, 'i>>,
}

impl<'t, 'i> Fields<'t, 'i> {
    fn of(body: &Object<'t, 'i>) -> Self {
        let mut fields = Self::default();
        for (name, value) in body.iter() {
            let slot = match name {
                "type" => &mut fields.ty,
                "msg_id" => &mut fields.msg_id,
                "node_id" => &mut fields.node_id,
                "node_ids" => &mut fields.node_ids,
                "key" => &mut fields.key,
                "msg" => &mut fields.msg,
                "offsets" => &mut fields.offsets,
                "keys" => &mut fields.keys,
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        fields
    }
}

/// The `dest` of an envelope, which is our own id; used to sign replies sent before `init`.
pub fn dest<'i>(tape: Value<'_, 'i>) -> Option<&'i str> {
    tape.as_object()?.get("dest")?.into_string()
}

type Rejection = (ErrorCode, String);

fn malformed(text: impl Into<String>) -> Rejection {
    (ErrorCode::MalformedRequest, text.into())
}

fn parse_body(
    body: &Fields<'_, '_>,
    line: &[u8],
    structurals: &[u32],
    keys: &mut Keys,
) -> Result<Body, Rejection> {
    let ty = body
        .ty
        .ok_or_else(|| malformed("the body has no `type`"))?
        .into_string()
        .ok_or_else(|| malformed("`type` is not a string"))?;
    match ty {
        "init" => {
            let node_id = body
                .node_id
                .and_then(Value::into_string)
                .ok_or_else(|| malformed("init needs a string `node_id`"))?;
            let node_ids = body
                .node_ids
                .ok_or_else(|| malformed("init needs `node_ids`, the list of every node's id"))?
                .as_array()
                .and_then(|ids| {
                    ids.iter()
                        .map(|id| id.into_string().map(CompactString::from))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| malformed("init's `node_ids` must be a list of strings"))?;
            check_cluster(node_id, &node_ids)?;
            Ok(Body::Init {
                node_id: node_id.into(),
                node_ids,
            })
        }
        "send" => {
            let key = body
                .key
                .ok_or_else(|| malformed("send needs a `key`"))?
                .into_string()
                .ok_or_else(|| malformed("send's `key` must be a string"))?;
            let msg = body.msg.ok_or_else(|| malformed("send needs a `msg`"))?;
            let msg = integer_text(msg)
                .or_else(|| {
                    json::raw_member_indexed(line, structurals, &["body", "msg"])
                        .and_then(|span| stored_text(&line[span]))
                })
                .ok_or_else(|| malformed("send's `msg` could not be read"))?;
            Ok(Body::Send {
                key: key.into(),
                msg,
            })
        }
        "poll" => Ok(Body::Poll {
            offsets: offsets(body.offsets, "poll", keys)?,
        }),
        "commit_offsets" => Ok(Body::CommitOffsets {
            offsets: offsets(body.offsets, "commit_offsets", keys)?,
        }),
        "list_committed_offsets" => {
            let list = body
                .keys
                .ok_or_else(|| malformed("list_committed_offsets needs `keys`"))?
                .as_array()
                .ok_or_else(|| malformed("`keys` must be a list of strings"))?;
            let start = keys.len();
            for key in list.iter() {
                let key = key
                    .into_string()
                    .ok_or_else(|| malformed("`keys` must be a list of strings"))?;
                keys.push((key.into(), 0));
            }
            dedup_keys(keys, start);
            Ok(Body::ListCommittedOffsets {
                keys: start..keys.len(),
            })
        }
        other => Err((
            ErrorCode::NotSupported,
            format!("unsupported request type {other:?}"),
        )),
    }
}

/// Whether `init`'s `node_ids` describe a cluster this node can serve as `node_id`: itself
/// listed once, every id once, and at most [`MAX_NODES`] of them.
///
/// A node that is not listed cannot place itself, so it would share offsets with whoever has
/// its place; an id listed twice is two places for one node, and the node replicated to itself,
/// its polls stuck at offset 0. Either is refused, and the node stays uninitialised, rather
/// than serve a run whose every poll would be wrong.
fn check_cluster(node_id: &str, node_ids: &[CompactString]) -> Result<(), Rejection> {
    if node_ids.len() > MAX_NODES {
        return Err((
            ErrorCode::NotSupported,
            format!(
                "init names {} nodes; this node serves clusters of at most {MAX_NODES}",
                node_ids.len()
            ),
        ));
    }
    if !node_ids.iter().any(|id| id == node_id) {
        return Err(malformed(format!(
            "init's `node_ids` must list this node, {node_id:?}"
        )));
    }
    for (i, id) in node_ids.iter().enumerate() {
        if node_ids[..i].contains(id) {
            return Err(malformed(format!(
                "init's `node_ids` lists {id:?} twice: each node must have one place"
            )));
        }
    }
    Ok(())
}

/// The text of a `msg` that simd-json read as a nonzero integer, without finding it in the line:
/// a nonzero integer has one spelling in JSON (no leading zeros, no plus sign, no exponent, or
/// simd-json would have read a float), the one `itoa` writes, so this is the line's own text.
/// Zero may also be spelled `-0`, and anything else has many spellings: those (`None`) are
/// taken from the line by [`stored_text`]. Maelstrom's messages are all integers, so most sends
/// skip the second walk over the line that finding the raw text takes.
fn integer_text(msg: Value<'_, '_>) -> Option<Msg> {
    let mut text = itoa::Buffer::new();
    let text = match (msg.as_u64(), msg.as_i64()) {
        (Some(0), _) => return None,
        (Some(n), _) => text.format(n),
        (None, Some(n)) => text.format(n),
        (None, None) => return None,
    };
    Some(CompactString::from(text))
}

/// The raw text of a `msg` as the node keeps it: byte for byte, except that a carriage return
/// becomes a space.
///
/// In valid JSON a raw `\r` can only be white space between tokens (inside strings it must be
/// escaped), so the value is unchanged; but Maelstrom reads our stdout with Java's `readLine`,
/// which also ends a line at a lone `\r`, and a reply echoing one would be cut in two.
/// simd-json has validated the line as UTF-8, so the text is too.
fn stored_text(raw: &[u8]) -> Option<Msg> {
    if memchr::memchr(b'\r', raw).is_none() {
        return CompactString::from_utf8(raw).ok();
    }
    let spaced: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'\r' { b' ' } else { b })
        .collect();
    CompactString::from_utf8(spaced).ok()
}

/// Drops later repeats of a key from `keys[start..]`, keeping the first, as simd-json's lookups
/// do, so that no reply names a key twice.
fn dedup_keys(keys: &mut Keys, start: usize) {
    let count = keys.len() - start;
    if count < 2 {
        return;
    }
    // Maelstrom's polls name a handful of keys: a quadratic scan beats building a set. Only the
    // final phase names hundreds.
    if count <= 16 {
        let mut i = start + 1;
        while i < keys.len() {
            if keys[start..i]
                .iter()
                .any(|(key, _)| same_key(key, &keys[i].0))
            {
                keys.remove(i);
            } else {
                i += 1;
            }
        }
        return;
    }
    // Maelstrom's final phase names every key of the run, 180,000 after 60 s at 100k ops/s: a
    // set of the keys themselves, allocated afresh, was half the node's time on such polls. Each
    // key is hashed once into a reused map from hash to the first key with it; a repeated hash is
    // then checked against that key, and (if it differs: two keys with one 64-bit hash, which the
    // per-process seed keeps out of anyone's reach) against every earlier key.
    thread_local! {
        static FIRST: std::cell::RefCell<std::collections::HashMap<u64, usize, foldhash::fast::FixedState>> =
            std::cell::RefCell::default();
    }
    let state = foldhash::fast::RandomState::default();
    FIRST.with_borrow_mut(|first| {
        first.clear();
        let mut kept = start;
        for next in start..keys.len() {
            let hash = std::hash::BuildHasher::hash_one(&state, keys[next].0.as_str());
            let repeat = match first.entry(hash) {
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(kept);
                    false
                }
                std::collections::hash_map::Entry::Occupied(slot) => {
                    let key = &keys[next].0;
                    keys[*slot.get()].0 == *key || keys[start..kept].iter().any(|(k, _)| k == key)
                }
            };
            if !repeat {
                // Keys before `kept` are the first mentions, in order; between it and `next`,
                // repeats waiting to be cut off.
                keys.swap(kept, next);
                kept += 1;
            }
        }
        keys.truncate(kept);
        if first.capacity() > KEY_MAP_RETAIN {
            // Do not hold the map of an outsized request for the rest of the run.
            *first = std::collections::HashMap::default();
        }
    });
}

/// Whether two keys are the same, compared inline: Maelstrom's keys are a few digits, for which
/// a call to `memcmp` (what `==` on strings makes) cost more than the comparison.
fn same_key(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len()
        && if a.len() <= 16 {
            a.iter().zip(b).all(|(x, y)| x == y)
        } else {
            a == b
        }
}

/// The `offsets` object of a poll or commit, key to a non-negative integer offset, appended to
/// `keys`.
fn offsets(
    offsets: Option<Value<'_, '_>>,
    rpc: &str,
    keys: &mut Keys,
) -> Result<Range<usize>, Rejection> {
    let offsets = offsets
        .ok_or_else(|| malformed(format!("{rpc} needs `offsets`")))?
        .as_object()
        .ok_or_else(|| malformed("`offsets` must be an object of key to offset"))?;
    let start = keys.len();
    for (key, offset) in offsets.iter() {
        match offset.as_u64() {
            Some(o) if o <= MAX_OFFSET => keys.push((key.into(), o)),
            _ => {
                return Err(malformed(format!(
                    "offset for key {key:?} must be an integer from 0 to {MAX_OFFSET}"
                )));
            }
        }
    }
    dedup_keys(keys, start);
    Ok(start..keys.len())
}

/// The answer to a line simd-json refused.
///
/// Most such lines are not JSON, and get no reply. But some are JSON that simd-json cannot hold
/// (a number beyond `f64`, nesting past its depth limit), and then, if the byte scanner finds one
/// complete object with a string `src` and an integer `body.msg_id`, the sender is told why
/// (code 12, or 11 before `init`), rather than left to time out.
fn unparsed(line: &[u8], initialized: bool, error: &str) -> Result<Request, LineError> {
    let invalid = || LineError::InvalidJson(error.to_owned());
    let member = |path: &[&str]| json::raw_member(line, path).map(|span| &line[span]);
    let whole = member(&[]).is_some_and(|root| root.len() == line.trim_ascii().len());
    if !whole {
        return Err(invalid());
    }
    let string =
        |path: &[&str]| member(path).and_then(|raw| serde_json::from_slice::<String>(raw).ok());
    let (Some(src), Some(msg_id)) = (
        string(&["src"]),
        member(&["body", "msg_id"]).and_then(|raw| serde_json::from_slice::<u64>(raw).ok()),
    ) else {
        return Err(invalid());
    };
    let body = if initialized {
        Body::Reject {
            code: ErrorCode::MalformedRequest,
            text: format!("the request could not be parsed: {error}"),
            from: None,
        }
    } else {
        let Some(dest) = string(&["dest"]) else {
            return Err(invalid());
        };
        Body::Reject {
            code: ErrorCode::TemporarilyUnavailable,
            text: "not initialised yet: init must come first".into(),
            from: Some(dest.into()),
        }
    };
    Ok(Request {
        src: src.into(),
        msg_id,
        body,
    })
}

/// Why a line produced no request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineError {
    /// Not JSON at all (or nested deeper than simd-json allows).
    InvalidJson(String),
    /// JSON, but with no one or nothing to reply to.
    Unanswerable(Unanswerable),
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidJson(e) => write!(f, "not valid JSON: {e}"),
            Self::Unanswerable(why) => write!(f, "no reply possible: {why}"),
        }
    }
}

impl std::error::Error for LineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidJson(_) => None,
            Self::Unanswerable(why) => Some(why),
        }
    }
}

/// Parses lines with simd-json, reusing its buffers and tape from line to line.
///
/// simd-json parses in place, unescaping strings inside its input, so the parser works on a
/// padded copy of the line and keeps the original intact for [`json::raw_member`].
pub struct Parser {
    scratch: Vec<u8>,
    buffers: simd_json::Buffers,
    /// Kept between lines for its allocation only; always empty between calls.
    tape: Option<simd_json::Tape<'static>>,
}

impl std::fmt::Debug for Parser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parser").finish_non_exhaustive()
    }
}

impl Default for Parser {
    fn default() -> Self {
        Self {
            scratch: Vec::new(),
            buffers: simd_json::Buffers::default(),
            tape: Some(simd_json::Tape::null().reset()),
        }
    }
}

impl Parser {
    /// Parses one line (without its newline) into what it is; a request's key lists go into
    /// `keys`.
    ///
    /// Before `init` (`initialized == false`), every request but `init` is answered with code 11,
    /// signed with the envelope's `dest`, which is our own id.
    pub fn parse(
        &mut self,
        line: &[u8],
        initialized: bool,
        keys: &mut Keys,
    ) -> Result<Incoming, LineError> {
        let len = line.len();
        let padded = len + simd_json::INPUT_PADDING;
        if self.scratch.len() < padded {
            self.scratch.resize(padded, 0);
        }
        // The padding may hold anything (simd-json only needs it to be readable), so the bytes
        // left over from earlier lines can stay.
        self.scratch[..len].copy_from_slice(line);
        let mut tape = self
            .tape
            .take()
            .unwrap_or_else(|| simd_json::Tape::null().reset());
        let result = match simd_json::fill_tape_padded(
            &mut self.scratch[..padded],
            len,
            &mut self.buffers,
            &mut tape,
        ) {
            Err(e) => unparsed(line, initialized, &e.to_string()).map(Incoming::Request),
            Ok(()) => parse(
                tape.as_value(),
                line,
                self.buffers.structural_indexes(),
                keys,
            )
            .map_err(LineError::Unanswerable)
            .and_then(|incoming| match incoming {
                // Its sender resends what we never acknowledge.
                Incoming::Replicate { src, .. } if !initialized => Err(LineError::Unanswerable(
                    Unanswerable(format!("a replicate message from {src} before init")),
                )),
                Incoming::Request(mut request)
                    if !initialized
                        && !matches!(
                            request.body,
                            Body::Init { .. } | Body::Reject { from: Some(_), .. }
                        ) =>
                {
                    let Some(dest) = dest(tape.as_value()) else {
                        return Err(LineError::Unanswerable(Unanswerable(
                            "a request before init with no string `dest` to sign the error with"
                                .into(),
                        )));
                    };
                    request.body = Body::Reject {
                        code: ErrorCode::TemporarilyUnavailable,
                        text: "not initialised yet: init must come first".into(),
                        from: Some(dest.into()),
                    };
                    Ok(Incoming::Request(request))
                }
                incoming => Ok(incoming),
            }),
        };
        if len > SHRINK_ABOVE {
            // A long line's buffers (over 20 times its length at worst, see `Config::max_line`)
            // are freed rather than kept for the rest of the run.
            *self = Self::default();
        } else {
            self.tape = Some(tape.reset());
        }
        result
    }
}
