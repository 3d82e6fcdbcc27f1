//! The `replicate` message on the wire: its types, reading one from a parsed body, and writing
//! one within the cluster's line limit. Nothing here keeps state between messages.
//!
//! ```json
//! {"src":"n0","dest":"n1","body":{"type":"replicate",
//!   "updates":[["k",0,6,3,[[0,"11"],[4,"12"]]]],
//!   "acks":[["j",7,0]]}}
//! ```
//!
//! An update is `[key, from, to, committed, [[offset, msg], …]]`, with each `msg` the raw JSON
//! text of the message as a JSON string, and `committed` the highest committed offset plus one
//! (0: none). An ack is `[key, known, committed]`. Both lists may be empty or left out.

use compact_str::CompactString;
use simd_json::prelude::*;
use simd_json::tape::{Array, Object, Value};

use crate::cluster::Cluster;
use crate::envelope;
use crate::json::{str_len, write_str, write_u64};
use crate::store::Msg;

/// The body `type` of replication messages.
pub const TYPE: &str = "replicate";

/// The size a `replicate` line aims at, in bytes, unless the cluster's line limit is smaller:
/// far below the default limit (16 MiB), so that after a long partition the backlog goes over
/// several periods, each line cheap to parse. Acknowledgements take at most half of it. Only a
/// single message larger than that goes alone in a longer line, never past the limit.
pub const LINE_TARGET: usize = 1 << 20;

/// Digits a number of a `replicate` line may take (a `u64`'s longest), for sizing lines.
const NUMBER_LEN: usize = 20;

/// One `replicate` message, as parsed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Replicate {
    pub updates: Vec<Update>,
    pub acks: Vec<Ack>,
    /// Bytes of the line it arrived in: what applying it may cost is bounded by this (see
    /// [`super::OFFSETS_PER_BYTE`]).
    pub line_len: usize,
}

/// The sender's news about one key: its messages in `[from, to)` and its promise `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub key: CompactString,
    /// The promise the sender had already sent us (the range starts there).
    pub from: u64,
    /// The sender's promise now: it will never hand out an offset of its class below this.
    pub to: u64,
    /// The sender's committed value for the key: highest committed offset plus one, 0 for none.
    pub committed: u64,
    /// The sender's messages in `[from, to)`, ascending: (offset, raw JSON text).
    pub msgs: Vec<(u64, Msg)>,
}

/// The receiver's acknowledgement for one key: the sender's promise it knows, and its committed
/// value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub key: CompactString,
    pub known: u64,
    pub committed: u64,
}

/// Reads a `replicate` body (already known to have that type). Any deviation from the format is
/// an error, and the whole message is dropped (the sender resends).
pub fn decode(body: &Object<'_, '_>) -> Result<Replicate, String> {
    let mut message = Replicate::default();
    for (name, value) in body.iter() {
        match name {
            "updates" => {
                for item in array(value, "updates")?.iter() {
                    message.updates.push(decode_update(item)?);
                }
            }
            "acks" => {
                for item in array(value, "acks")?.iter() {
                    let fields = array(item, "an ack")?;
                    let mut it = fields.iter();
                    let (Some(key), Some(known), Some(committed), None) =
                        (it.next(), it.next(), it.next(), it.next())
                    else {
                        return Err("an ack must be [key, known, committed]".into());
                    };
                    message.acks.push(Ack {
                        key: string(key, "an ack's key")?,
                        known: number(known, "an ack's known")?,
                        committed: number(committed, "an ack's committed")?,
                    });
                }
            }
            _ => {}
        }
    }
    Ok(message)
}

fn decode_update(item: Value<'_, '_>) -> Result<Update, String> {
    let fields = array(item, "an update")?;
    let mut it = fields.iter();
    let (Some(key), Some(from), Some(to), Some(committed), Some(msgs), None) = (
        it.next(),
        it.next(),
        it.next(),
        it.next(),
        it.next(),
        it.next(),
    ) else {
        return Err("an update must be [key, from, to, committed, msgs]".into());
    };
    let mut update = Update {
        key: string(key, "an update's key")?,
        from: number(from, "an update's from")?,
        to: number(to, "an update's to")?,
        committed: number(committed, "an update's committed")?,
        msgs: Vec::new(),
    };
    for pair in array(msgs, "an update's msgs")?.iter() {
        let pair = array(pair, "a message")?;
        let mut it = pair.iter();
        let (Some(offset), Some(msg), None) = (it.next(), it.next(), it.next()) else {
            return Err("a message must be [offset, text]".into());
        };
        let msg = string(msg, "a message's text")?;
        update
            .msgs
            .push((number(offset, "a message's offset")?, msg));
    }
    Ok(update)
}

fn array<'t, 'i>(value: Value<'t, 'i>, what: &str) -> Result<Array<'t, 'i>, String> {
    value
        .as_array()
        .ok_or_else(|| format!("{what} must be a list"))
}

fn string(value: Value<'_, '_>, what: &str) -> Result<CompactString, String> {
    value
        .into_string()
        .map(CompactString::from)
        .ok_or_else(|| format!("{what} must be a string"))
}

fn number(value: Value<'_, '_>, what: &str) -> Result<u64, String> {
    value
        .as_u64()
        .ok_or_else(|| format!("{what} must be a non-negative integer"))
}

/// How long a line to a peer may be: what every node accepts (`max`), what it aims at
/// (`target`), and how much of that its acks may take (`acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LineLimits {
    pub(super) max: usize,
    pub(super) target: usize,
    pub(super) acks: usize,
}

impl LineLimits {
    /// The limits within `max_line`, the longest line every node of the cluster accepts.
    pub(super) fn new(max_line: usize) -> Self {
        let target = LINE_TARGET.min(max_line);
        Self {
            max: max_line,
            target,
            acks: target / 2,
        }
    }
}

/// Whether a client's `send` of `msg` to `key` (or, with no `msg`, a commit of `key`) can reach
/// every other node of `cluster`, whose nodes accept lines of up to `max_line` bytes; if not,
/// why, for the error reply.
///
/// A message travels to peers as a JSON string inside a `replicate` line, so its text is escaped
/// again there (a backslash or quote takes two bytes): the line carrying it alone, with room for
/// acknowledgements, must stay within the limit, and the key's acknowledgement must fit in the
/// room acks have. A message that could not travel would be acknowledged and then never seen
/// on the other nodes, so it is refused before anything is stored.
pub fn travels(
    cluster: &Cluster,
    max_line: usize,
    key: &str,
    msg: Option<&str>,
) -> Result<(), String> {
    let limits = LineLimits::new(max_line);
    let longest_peer = (0..cluster.len())
        .filter(|&j| j != cluster.me)
        .map(|j| str_len(&cluster.ids[j]))
        .max()
        .unwrap_or(0);
    let frame = r#"{"src":,"dest":,"body":{"type":"replicate","updates":[],"acks":[]}}"#.len()
        + str_len(cluster.my_id())
        + longest_peer;
    let key_len = str_len(key);
    // `[key,known,committed]`, and a comma.
    let ack = key_len + 2 * (1 + NUMBER_LEN) + 3;
    // `[key,from,to,committed,[[offset,"msg"]]]`, and a comma.
    let update =
        key_len + 3 * (1 + NUMBER_LEN) + 5 + msg.map_or(0, |msg| 3 + NUMBER_LEN + str_len(msg));
    if ack > limits.acks || frame + update + limits.acks > limits.max {
        let what = if msg.is_some() { "message" } else { "commit" };
        return Err(format!(
            "the {what} cannot reach the other nodes: with key and message escaped inside a \
             replicate line it takes {} bytes, past what the cluster's line limit of {max_line} \
             bytes (MAELSTROM_KAFKA_MAX_LINE) leaves for it",
            frame + update + limits.acks
        ));
    }
    Ok(())
}

/// Why an update could not be started in a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unfit {
    /// Not in this line, which is full: it may go in the next.
    Later,
    /// In no line: even alone it would pass what every node accepts.
    Never,
}

/// A `replicate` line being written, which stays within its [`LineLimits`] and reports what
/// fit: acks first (at most `limits.acks` bytes of them), then updates, each opened, given
/// messages while they fit, and closed or dropped.
///
/// The line stays within `limits.target`, except that the first message of the line's first
/// update goes whatever its size up to `limits.max` (what every node accepts): [`travels`] let
/// in only messages that fit so, and without it such a message would never go.
#[derive(Debug)]
pub(super) struct LineWriter {
    limits: LineLimits,
    /// The envelope and the closed updates, then the open one's head.
    out: Vec<u8>,
    /// The acks, written out after the updates.
    acks: Vec<u8>,
    /// The open update's messages, `[offset,"text"]` pairs with commas between.
    msgs: Vec<u8>,
    /// Updates closed so far.
    updates: usize,
    /// Where the open update starts in `out`.
    mark: usize,
    /// The whole line's length with the open update and no messages.
    fixed: usize,
}

impl LineWriter {
    /// A line from `src` to `dest`, within `limits`.
    pub(super) fn new(limits: LineLimits, src: &str, dest: &str) -> Self {
        let mut out = Vec::with_capacity(128);
        envelope::begin(&mut out, src, dest, TYPE);
        out.extend_from_slice(b",\"updates\":[");
        Self {
            limits,
            out,
            acks: Vec::new(),
            msgs: Vec::new(),
            updates: 0,
            mark: 0,
            fixed: 0,
        }
    }

    /// Adds the ack for `key`, unless the acks would pass their share of the line; false then,
    /// with nothing written. Every ack comes before the first update.
    pub(super) fn ack(&mut self, key: &str, known: u64, committed: u64) -> bool {
        debug_assert_eq!(self.updates, 0, "acks come first");
        let mark = self.acks.len();
        if mark > 0 {
            self.acks.push(b',');
        }
        self.acks.push(b'[');
        write_str(&mut self.acks, key);
        self.acks.push(b',');
        write_u64(&mut self.acks, known);
        self.acks.push(b',');
        write_u64(&mut self.acks, committed);
        self.acks.push(b']');
        if self.acks.len() > self.limits.acks {
            self.acks.truncate(mark);
            return false;
        }
        true
    }

    /// Whether the line carries any ack.
    pub(super) fn has_acks(&self) -> bool {
        !self.acks.is_empty()
    }

    /// Updates closed so far.
    pub(super) fn updates(&self) -> usize {
        self.updates
    }

    /// Opens the update of `key` from `from`, if the line has room for it with no messages.
    pub(super) fn open(&mut self, key: &str, from: u64) -> Result<(), Unfit> {
        self.mark = self.out.len();
        if self.updates > 0 {
            self.out.push(b',');
        }
        self.out.push(b'[');
        write_str(&mut self.out, key);
        self.out.push(b',');
        write_u64(&mut self.out, from);
        // What follows the updates (the newline aside: line limits do not count it), and the
        // update's `to` and `committed` with their commas, at their longest.
        let tail = b"],\"acks\":[]}}".len() + self.acks.len();
        self.fixed = self.out.len() + 2 * (1 + NUMBER_LEN) + b",[]]".len() + tail;
        let unfit = if self.fixed > self.limits.target && self.updates > 0 {
            Some(Unfit::Later)
        } else if self.fixed > self.limits.max {
            Some(Unfit::Never)
        } else {
            None
        };
        self.msgs.clear();
        match unfit {
            Some(why) => {
                self.out.truncate(self.mark);
                Err(why)
            }
            None => Ok(()),
        }
    }

    /// The line's length so far with the open update's messages, as `to` and `committed` will
    /// not take more than their room in the limits: what the receiver measures, to the byte
    /// or above it, is at most this plus those two numbers.
    pub(super) fn len(&self) -> usize {
        self.out.len() + self.acks.len() + self.msgs.len()
    }

    /// Adds the message at `offset` to the open update if the line still fits with it and
    /// `allowed` holds for the line's [`len`](Self::len) with it; reports whether it went.
    pub(super) fn message(
        &mut self,
        offset: u64,
        text: &str,
        allowed: impl FnOnce(usize) -> bool,
    ) -> bool {
        let before = self.msgs.len();
        if before > 0 {
            self.msgs.push(b',');
        }
        self.msgs.push(b'[');
        write_u64(&mut self.msgs, offset);
        self.msgs.push(b',');
        write_str(&mut self.msgs, text);
        self.msgs.push(b']');
        let line = self.fixed + self.msgs.len();
        let lone = self.updates == 0 && before == 0;
        let fits = (line <= self.limits.target || (lone && line <= self.limits.max))
            && allowed(self.len());
        if !fits {
            self.msgs.truncate(before);
        }
        fits
    }

    /// Closes the open update with its promise `to` and `committed` value.
    pub(super) fn close(&mut self, to: u64, committed: u64) {
        for value in [to, committed] {
            self.out.push(b',');
            write_u64(&mut self.out, value);
        }
        self.out.extend_from_slice(b",[");
        self.out.extend_from_slice(&self.msgs);
        self.out.extend_from_slice(b"]]");
        self.msgs.clear();
        self.updates += 1;
    }

    /// Drops the open update: the line is as it was before [`open`](Self::open).
    pub(super) fn drop_open(&mut self) {
        self.out.truncate(self.mark);
        self.msgs.clear();
    }

    /// The whole line, ending in a newline.
    pub(super) fn finish(mut self) -> Vec<u8> {
        self.out.extend_from_slice(b"],\"acks\":[");
        self.out.extend_from_slice(&self.acks);
        self.out.push(b']');
        envelope::end(&mut self.out);
        self.out
    }
}
