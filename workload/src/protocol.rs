//! Wire format: encodes the requests clients send and validates every line a node prints.
//!
//! Validation follows Maelstrom (see `docs/protocol.md` §2.1, §3.2, §4):
//! the envelope is a closed schema (`src`, `dest`, `body`, optional integer `id`), and each
//! `*_ok` reply body is a closed schema too (its fields, `type`, integer `in_reply_to`,
//! optional integer `msg_id`; no extra keys, no nulls, no floats where integers are due).
//! Error bodies are not schema-checked, exactly as Maelstrom's client throws on
//! `"type": "error"` before it validates anything.
//!
//! Values are read as Maelstrom's reader makes them (`docs/protocol.md` §1.3a): a key
//! written twice in an object holds the value written last, on every path (the one-pass
//! reading leaves such text to the explaining path, which makes the map first); integers
//! are of any size (`StrictInt`) and message values keep the distinctions Jackson's
//! numbers keep (`msg_of`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::polled::{Cursor, Polled, Runs};

/// Where a node's message is going.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    /// A client `c<N>`.
    Client(u64),
    /// One of the nodes under test, by index into `node_ids`.
    Node(usize),
    /// A service (`lin-kv`…), by its network address: its index after the nodes.
    Service(usize),
    /// Anything else: not registered on the network, so fatal for the sender's stdout.
    Unknown(String),
}

/// A message value as the node returned it. Integers are the common case and stay cheap.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RawMsg {
    Int(i64),
    /// Any other JSON value, as compact JSON text (so `4.0` and `"4"` stay distinct from `4`).
    Other(Box<str>),
}

/// A `poll_ok`'s `msgs`: each key with its `[offset, msg]` pairs, as received.
pub type RawPolled = Vec<(String, Vec<(i64, RawMsg)>)>;

/// A reply body, classified by its `type` and checked against that type's closed schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    InitOk,
    SendOk {
        offset: i64,
    },
    PollOk {
        msgs: Polled,
    },
    CommitOffsetsOk,
    ListCommittedOffsetsOk {
        offsets: Vec<(String, i64)>,
    },
    /// `"type": "error"`. `code` is `None` when missing or not an integer (Maelstrom then
    /// names it `:unknown`, which is indefinite).
    Error {
        code: Option<i64>,
        body: Box<str>,
    },
    /// A body that fails its schema: the operation ends as a malformed-response exception.
    Malformed {
        reason: String,
        body: Box<str>,
    },
}

/// One parsed stdout line of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// A body with an integer `in_reply_to`; only these can ever match a client's request.
    Reply {
        dest: Dest,
        in_reply_to: u64,
        reply: Reply,
    },
    /// A schema-valid envelope whose body cannot answer anything (no integer
    /// `in_reply_to`). Node-to-node traffic lands here and is routed by `dest`.
    Other { dest: Dest },
}

impl Inbound {
    pub fn dest(&self) -> &Dest {
        match self {
            Inbound::Reply { dest, .. } | Inbound::Other { dest } => dest,
        }
    }
}

/// Why a stdout line killed the node's stdout reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidLine(pub String);

/// Maps names on the simulated network to [`Dest`].
#[derive(Debug, Clone)]
pub struct Names {
    node_ids: Vec<String>,
    services: Vec<String>,
}

impl Names {
    /// The nodes only: nothing else is on the network but clients.
    pub fn new(node_ids: Vec<String>) -> Self {
        Names {
            node_ids,
            services: Vec::new(),
        }
    }

    /// The nodes and the services, which take the addresses after the nodes.
    pub fn with_services(node_ids: Vec<String>, services: Vec<String>) -> Self {
        Names { node_ids, services }
    }

    pub fn dest(&self, name: &str) -> Dest {
        if let Some(i) = self.node_ids.iter().position(|n| n == name) {
            return Dest::Node(i);
        }
        if let Some(i) = self.services.iter().position(|n| n == name) {
            return Dest::Service(self.node_ids.len() + i);
        }
        if let Some(digits) = name.strip_prefix('c')
            && !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !(digits.len() > 1 && digits.starts_with('0'))
            && let Ok(n) = digits.parse()
        {
            return Dest::Client(n);
        }
        Dest::Unknown(name.to_owned())
    }

    pub fn node_ids(&self) -> &[String] {
        &self.node_ids
    }

    /// Every address on the network but clients: the nodes, then the services.
    pub fn addresses(&self) -> Vec<String> {
        self.node_ids
            .iter()
            .chain(&self.services)
            .cloned()
            .collect()
    }
}

/// The body of an envelope, as the JSON text it was written with, for forwarding. `None`
/// if `line` is not an envelope (callers pass lines [`parse_line`] accepted).
pub fn envelope_body(line: &str) -> Option<&str> {
    match serde_json::from_str::<Envelope<'_, &RawValue>>(line) {
        Ok(e) => Some(e.body.get()),
        // A key written twice: the body written last, as in Maelstrom's map of the line.
        Err(_) => entries(line)?
            .into_iter()
            .rev()
            .find(|(k, _)| k == "body")
            .map(|(_, v)| v.get()),
    }
}

/// The body of a node's line as Maelstrom forwards it: the body as written when it is a
/// JSON object, else the map Maelstrom's reader makes of it (see `as_maelstrom_map`);
/// either way with each key written twice in an object, at any depth, written once, in
/// the place first written, holding the value written last (see `collapsed`). `None` if
/// `line` is not a line [`parse_line`] accepts.
pub fn forwarded_body(line: &str) -> Option<Cow<'_, str>> {
    let body = forwarded(line).or_else(|| {
        let line = as_jackson_reads(line)?;
        forwarded(&line).map(|body| Cow::Owned(body.into_owned()))
    })?;
    if !repeats_a_key(&body) {
        return Some(body);
    }
    collapsed(&body).map(Cow::Owned)
}

/// Whether an object in `json` (a JSON value serde_json takes), at any depth, writes a
/// key twice (as unescaped text). One pass, no recursion, allocating only for objects
/// with keys.
fn repeats_a_key(json: &str) -> bool {
    let b = json.as_bytes();
    // For each container open around `at`, the keys of an object so far.
    let mut open: Vec<Option<Seen<'_>>> = Vec::new();
    let mut name_next = false;
    let mut at = 0;
    while let Some(&c) = b.get(at) {
        at += 1;
        match c {
            b'{' => {
                open.push(Some(Seen::default()));
                name_next = true;
            }
            b'[' => {
                open.push(None);
                name_next = false;
            }
            b'}' | b']' => {
                open.pop();
                name_next = false;
            }
            b',' => name_next = matches!(open.last(), Some(Some(_))),
            b'"' => {
                let start = at;
                // Past the closing quote; never past the end, so the slices below hold.
                at = string_units(b, at).1.min(b.len());
                if std::mem::take(&mut name_next)
                    && let Some(Some(seen)) = open.last_mut()
                {
                    let raw = &json[start..at - 1];
                    let key = if raw.contains('\\') {
                        match serde_json::from_str::<String>(&json[start - 1..at]) {
                            Ok(k) => Cow::Owned(k),
                            Err(_) => Cow::Borrowed(raw),
                        }
                    } else {
                        Cow::Borrowed(raw)
                    };
                    if !seen.insert(key) {
                        return true;
                    }
                }
            }
            _ => {}
        }
    }
    false
}

/// `json` (a JSON value serde_json takes, within Jackson's limits) as the value Maelstrom's
/// reader makes of it and its writer writes again, as far as a node reading it can tell:
/// each object's keys once, in the place first written, holding the value written last,
/// at every depth (cheshire builds each map entry by entry, an array map keeping a key's
/// first place); everything else as written. `None` past Jackson's limits.
fn collapsed(json: &str) -> Option<String> {
    if past_jacksons_limits(json).is_some() {
        return None;
    }
    let mut c = Cursor::new(json);
    let mut out = String::with_capacity(json.len());
    rewritten_value(&mut c, &mut out, Form::Collapsed)?;
    Some(out)
}

/// How [`rewritten_value`] writes a value again.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// [`collapsed`]: keys in the place first written; scalars as written.
    Collapsed,
    /// [`canonical`]: keys in order; strings and numbers in one form each.
    Canonical,
}

/// The value at the cursor written again in `form`, appended to `out`. Either way each
/// object's keys are kept once, holding the value written last, as Maelstrom's reader
/// keeps them.
fn rewritten_value(c: &mut Cursor<'_>, out: &mut String, form: Form) -> Option<()> {
    c.skip_ws();
    let rest = c.rest();
    match *rest.as_bytes().first()? {
        b'{' => {
            c.expect(b'{')?;
            let mut entries: Vec<(String, String)> = Vec::new();
            let mut at: HashMap<String, usize> = HashMap::new();
            if !c.eat(b'}') {
                loop {
                    c.skip_ws();
                    let key = string_token(c)?;
                    c.expect(b':')?;
                    let mut v = String::new();
                    rewritten_value(c, &mut v, form)?;
                    match at.get(&key) {
                        Some(&i) => entries[i].1 = v,
                        None => {
                            at.insert(key.clone(), entries.len());
                            entries.push((key, v));
                        }
                    }
                    if c.eat(b'}') {
                        break;
                    }
                    c.expect(b',')?;
                }
            }
            if form == Form::Canonical {
                // Keys are unique here, so the order is total.
                entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            }
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).ok()?);
                out.push(':');
                out.push_str(v);
            }
            out.push('}');
        }
        b'[' => {
            c.expect(b'[')?;
            out.push('[');
            if !c.eat(b']') {
                loop {
                    rewritten_value(c, out, form)?;
                    if c.eat(b']') {
                        break;
                    }
                    c.expect(b',')?;
                    out.push(',');
                }
            }
            out.push(']');
        }
        b'"' => {
            let s = string_token(c)?;
            match form {
                Form::Collapsed => out.push_str(&rest[..rest.len() - c.rest().len()]),
                Form::Canonical => out.push_str(&serde_json::to_string(&s).ok()?),
            }
        }
        _ => {
            let len = rest
                .bytes()
                .position(
                    |b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E' | b'a'..=b'z'),
                )
                .unwrap_or(rest.len());
            let token = &rest[..len];
            match (form, token) {
                (Form::Collapsed, _) | (_, "true" | "false" | "null") => out.push_str(token),
                (Form::Canonical, _) => number_text(number(token)?, out),
            }
            c.at += len;
        }
    }
    Some(())
}

/// [`forwarded_body`] of a line serde_json reads as it is.
fn forwarded(line: &str) -> Option<Cow<'_, str>> {
    match as_maelstrom_map(line).ok()? {
        Cow::Borrowed(top) => as_maelstrom_map(envelope_body(top)?).ok(),
        Cow::Owned(top) => {
            let body = as_maelstrom_map(envelope_body(&top)?).ok()?;
            Some(Cow::Owned(body.into_owned()))
        }
    }
}

/// Parses and validates one stdout line of a node.
///
/// Any `Err` is fatal for that node's stdout, as in Maelstrom. `src` must be a node on the
/// network; `dest` is returned as-is and the caller decides whether it is registered
/// (clients come and go, which this function cannot know).
///
/// Parsing is typed and borrowing (no `Value` tree): final-phase poll replies run to
/// megabytes, and this is the runner's hottest code.
pub fn parse_line(line: &str, names: &Names) -> Result<Inbound, InvalidLine> {
    // The common case, a well-formed kafka reply whose poll values are small integers, in
    // one pass without serde; then any other well-formed reply, in one pass of serde's;
    // anything else is parsed again, more slowly, by the path that explains what is wrong.
    if let Some(inbound) = one_pass(line, names) {
        return Ok(inbound);
    }
    // What the one-pass reading takes is within them (its strings are short, its numbers
    // fit a u64, it nests four deep); anything else is measured against Jackson's limits.
    if let Some(past) = past_jacksons_limits(line) {
        return Err(past);
    }
    if is_object(line)
        && let Ok(env) = serde_json::from_str::<Envelope<'_, MapOnly<Fast<'_>>>>(line)
        && matches!(names.dest(&env.src), Dest::Node(_))
        && let Some((in_reply_to, reply)) = fast_reply(env.body.0)
    {
        let dest = names.dest(&env.dest);
        return Ok(Inbound::Reply {
            dest,
            in_reply_to,
            reply,
        });
    }
    read_line(line, names)
}

/// A node's line read and checked in one pass, without serde, if it is a reply in the
/// shape nodes write: an envelope of `src`, `dest`, `body` and an optional `id`, a body of
/// `type`, `in_reply_to`, an optional `msg_id` and the fields of a `send_ok`, `poll_ok`
/// (its `msgs` read by [`Runs::read_value`]) or `commit_offsets_ok`, each key once and
/// in any order, strings without escapes, integers without a sign. `None` for anything
/// else, and for anything this reading is unsure of (an escape, a sign, a number past
/// i64, a key written twice, another reply type), which the serde paths read instead.
///
/// What it takes is JSON serde_json takes (each part is read by a reader that takes only
/// valid JSON, and nothing may follow the envelope but whitespace), and it reads it as
/// [`parse_line_slow`] does, which the differential tests and the fuzz targets check
/// ([`crate::fuzz::node_lines`], [`crate::fuzz::poll_msgs`]). A final-phase poll reply
/// runs to a megabyte: this reads it once, where serde's path checks `msgs` is one JSON
/// value before reading it again.
pub(crate) fn one_pass(line: &str, names: &Names) -> Option<Inbound> {
    let mut c = Cursor::new(line);
    let (mut src, mut dest, mut body, mut id) = (None, None, None, false);
    c.expect(b'{')?;
    loop {
        let key = c.string()?;
        c.expect(b':')?;
        match key {
            "src" if src.is_none() => src = Some(c.string()?),
            "dest" if dest.is_none() => dest = Some(c.string()?),
            "body" if body.is_none() => body = Some(one_pass_body(&mut c)?),
            "id" if !id => {
                c.digits()?;
                id = true;
            }
            _ => return None,
        }
        if c.eat(b'}') {
            break;
        }
        c.expect(b',')?;
    }
    if !c.at_end() {
        return None;
    }
    let (src, dest, (in_reply_to, reply)) = (src?, dest?, body?);
    if !matches!(names.dest(src), Dest::Node(_)) {
        return None;
    }
    Some(Inbound::Reply {
        dest: names.dest(dest),
        in_reply_to,
        reply,
    })
}

/// The body of [`one_pass`]: its `in_reply_to` and reply.
fn one_pass_body(c: &mut Cursor<'_>) -> Option<(u64, Reply)> {
    let (mut ty, mut in_reply_to, mut msg_id, mut offset, mut msgs) =
        (None, None, false, None, None);
    c.expect(b'{')?;
    loop {
        let key = c.string()?;
        c.expect(b':')?;
        match key {
            "type" if ty.is_none() => ty = Some(c.string()?),
            "in_reply_to" if in_reply_to.is_none() => in_reply_to = Some(c.digits()?),
            "msg_id" if !msg_id => {
                c.digits()?;
                msg_id = true;
            }
            "offset" if offset.is_none() => offset = Some(c.digits()?),
            "msgs" if msgs.is_none() => msgs = Some(Runs::read_value(c)?),
            _ => return None,
        }
        if c.eat(b'}') {
            break;
        }
        c.expect(b',')?;
    }
    // Past i64 these are still integers, which the serde paths saturate or find answer
    // nothing.
    let in_reply_to = in_reply_to.filter(|&i| i64::try_from(i).is_ok())?;
    let reply = match (ty?, offset, msgs) {
        ("send_ok", Some(offset), None) => Reply::SendOk {
            offset: i64::try_from(offset).ok()?,
        },
        ("poll_ok", None, Some(msgs)) => Reply::PollOk {
            msgs: Polled::Runs(msgs),
        },
        ("commit_offsets_ok", None, None) => Reply::CommitOffsetsOk,
        _ => return None,
    };
    Some((in_reply_to, reply))
}

/// [`parse_line`] without the one-pass shortcuts: envelope first, then the body, each first
/// made a map as Maelstrom's reader makes it.
pub(crate) fn parse_line_slow(line: &str, names: &Names) -> Result<Inbound, InvalidLine> {
    match past_jacksons_limits(line) {
        Some(past) => Err(past),
        None => read_line(line, names),
    }
}

/// Jackson's default read limits, which Maelstrom's reader (cheshire over Jackson 2.17)
/// runs with: containers nested at most this deep;
const MAX_DEPTH: usize = 1000;
/// a number of at most this many digits (integer, fraction and exponent together);
const MAX_NUMBER_DIGITS: usize = 1000;
/// a string value of at most this many UTF-16 units once unescaped (Java's `char`s);
const MAX_STRING_UNITS: usize = 20_000_000;
/// a key of at most this many.
pub(crate) const MAX_NAME_UNITS: usize = 50_000;

/// Why Maelstrom's reader throws on `line` before it has read its first value, if a part
/// of that value is past one of Jackson's limits. Only the first value is measured, as
/// Jackson reads no further; text that is not JSON is measured as far as it looks like
/// JSON (what Jackson refuses for that is refused anyway, under another name).
fn past_jacksons_limits(line: &str) -> Option<InvalidLine> {
    let b = line.as_bytes();
    // For each container open around `at`, whether it is an object.
    let mut open: Vec<bool> = Vec::new();
    let mut name_next = false;
    let mut at = 0;
    let past = |what: String| {
        Some(InvalidLine(format!(
            "stdout line holds {what}, past what Maelstrom's JSON reader takes: {THROWS}"
        )))
    };
    while let Some(&c) = b.get(at) {
        at += 1;
        match c {
            b'{' | b'[' => {
                if open.len() == MAX_DEPTH {
                    return past(format!("containers nested more than {MAX_DEPTH} deep"));
                }
                open.push(c == b'{');
                name_next = c == b'{';
            }
            b'}' | b']' => {
                open.pop();
                if open.is_empty() {
                    return None;
                }
                name_next = false;
            }
            b',' => name_next = open.last() == Some(&true),
            b'"' => {
                let (units, end) = string_units(b, at);
                at = end;
                let (limit, what) = if name_next {
                    (MAX_NAME_UNITS, "a key")
                } else {
                    (MAX_STRING_UNITS, "a string")
                };
                if units > limit {
                    return past(format!("{what} of {units} characters (at most {limit})"));
                }
                name_next = false;
            }
            b'-' | b'0'..=b'9' => {
                let mut digits = usize::from(c != b'-');
                while let Some(&d) = b
                    .get(at)
                    .filter(|d| matches!(d, b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-'))
                {
                    digits += usize::from(d.is_ascii_digit());
                    at += 1;
                }
                if digits > MAX_NUMBER_DIGITS {
                    return past(format!(
                        "a number of {digits} digits (at most {MAX_NUMBER_DIGITS})"
                    ));
                }
            }
            _ => {}
        }
        if open.is_empty() && !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
            // A first value that is no container: read, and not a map either way.
            return None;
        }
    }
    None
}

/// The UTF-16 units of the string whose text starts at `b[at..]` (after its opening
/// quote), unescaped, and where it ends (after its closing quote, or at the end).
fn string_units(b: &[u8], mut at: usize) -> (usize, usize) {
    let mut units = 0;
    while let Some(&c) = b.get(at) {
        at += 1;
        units += match c {
            b'"' => return (units, at),
            // `\uXXXX` is one unit (a pair of them one character past U+FFFF, as in
            // UTF-16); any other escape is one character.
            b'\\' => {
                at += if b.get(at) == Some(&b'u') { 5 } else { 1 };
                1
            }
            // UTF-8: continuation bytes add nothing; a four-byte character is two units.
            0x80..=0xbf => 0,
            0xf0..=0xff => 2,
            _ => 1,
        };
    }
    (units, at)
}

/// [`parse_line_slow`] of a line within Jackson's limits.
fn read_line(line: &str, names: &Names) -> Result<Inbound, InvalidLine> {
    let read = explain_line(line, names);
    if read.is_ok() {
        return read;
    }
    // Only a line serde_json refuses pays for looking for what Jackson takes.
    match as_jackson_reads(line) {
        Some(mended) => explain_line(&mended, names).or(read),
        None => read,
    }
}

/// The line Maelstrom's reader reads where serde_json refuses it, as text serde_json reads:
/// cheshire's Jackson takes control characters unescaped in strings (its factory allows
/// them; here they are escaped), and reads one value from the line, never looking past it
/// (here what follows a first object or array is cut off). `None` if neither applies.
/// (A carriage return never reaches here inside a node's line: the runner's line reader,
/// as Maelstrom's, ends a line at one. Given one, it is left unescaped, and so refused.)
fn as_jackson_reads(line: &str) -> Option<String> {
    let mut out = String::new();
    let mut in_string = false;
    let mut escaped = false;
    let mut changed = false;
    for c in line.chars() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                '\r' => {}
                c if u32::from(c) < 0x20 => {
                    let _ =
                        fmt::Write::write_fmt(&mut out, format_args!("\\u{:04x}", u32::from(c)));
                    changed = true;
                    continue;
                }
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        }
        out.push(c);
    }
    let first = out.trim_start_matches([' ', '\t', '\n', '\r']);
    if first.starts_with(['{', '[']) {
        let mut values = serde_json::Deserializer::from_str(&out).into_iter::<IgnoredAny>();
        if let Some(Ok(_)) = values.next()
            && values.byte_offset() < out.len()
        {
            out.truncate(values.byte_offset());
            changed = true;
        }
    }
    changed.then_some(out)
}

/// [`parse_line_slow`] of a line as serde_json reads it.
fn explain_line(line: &str, names: &Names) -> Result<Inbound, InvalidLine> {
    if !is_object(line) {
        serde_json::from_str::<IgnoredAny>(line).map_err(|e| InvalidLine(not_json(&e)))?;
    }
    let top = as_maelstrom_map(line)
        .map_err(|what| InvalidLine(format!("stdout line is {what}, not a map: {THROWS}")))?;
    // A key written twice (which serde's structs refuse) holds the value written last, as
    // in Maelstrom's map of the line; looked for only when the envelope is refused.
    let deduped;
    let env: Envelope<'_, &RawValue> = match serde_json::from_str(&top) {
        Ok(env) => env,
        Err(e) => {
            let envelope = |e: serde_json::Error| {
                InvalidLine(if e.is_syntax() || e.is_eof() {
                    not_json(&e)
                } else {
                    format!("envelope does not match {{src, dest, body, id?}} ({e})")
                })
            };
            deduped = last_wins(&top).ok_or_else(|| envelope(e))?;
            serde_json::from_str(&deduped).map_err(envelope)?
        }
    };
    if !matches!(names.dest(&env.src), Dest::Node(_)) {
        return Err(InvalidLine(format!(
            "Invalid src for message: {:?} is not a node",
            env.src
        )));
    }
    let dest = names.dest(&env.dest);
    let body = as_maelstrom_map(env.body.get()).map_err(|what| {
        InvalidLine(format!(
            "body {} is {what}, not a map: {THROWS}",
            crate::text::clip(env.body.get(), 80)
        ))
    })?;
    // A body with no integer in_reply_to can never match a request: Maelstrom's client
    // compares in_reply_to with Clojure `=`, so 3.0 or "3" never match.
    let Ok(head) = serde_json::from_str::<Head<'_>>(&body) else {
        return Ok(Inbound::Other { dest });
    };
    let Some(in_reply_to) = head.in_reply_to.and_then(reply_to) else {
        return Ok(Inbound::Other { dest });
    };
    // The schemas' structs refuse a key written twice: they are given Maelstrom's map.
    let deduped = if head.repeated {
        last_wins(&body)
    } else {
        None
    };
    let reply = classify(&head, deduped.as_deref().unwrap_or(&body));
    Ok(Inbound::Reply {
        dest,
        in_reply_to,
        reply,
    })
}

/// A JSON object as the map Maelstrom's reader makes of it, when a key is written twice:
/// each key once, in the place it was first written, holding the value written last
/// (cheshire builds the map entry by entry, without Jackson's duplicate detection).
/// `None` if `json` is no object or writes no key twice.
fn last_wins(json: &str) -> Option<String> {
    let entries = entries(json)?;
    let mut at: HashMap<&str, usize> = HashMap::with_capacity(entries.len());
    let mut kept: Vec<(&str, &RawValue)> = Vec::with_capacity(entries.len());
    for (k, v) in &entries {
        match at.get(&**k) {
            Some(&i) => kept[i].1 = v,
            None => {
                at.insert(k, kept.len());
                kept.push((k, v));
            }
        }
    }
    if kept.len() == entries.len() {
        return None;
    }
    let mut out = Vec::with_capacity(json.len());
    out.push(b'{');
    for (i, (k, v)) in kept.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(&mut out, k);
        out.push(b':');
        out.extend_from_slice(v.get().as_bytes());
    }
    out.push(b'}');
    String::from_utf8(out).ok()
}

/// A JSON object's entries as written, keys unescaped, values as their text; `None` if
/// `json` is no object.
pub(crate) fn entries(json: &str) -> Option<Vec<(Cow<'_, str>, &RawValue)>> {
    struct Entries<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);
    impl<'de> Deserialize<'de> for Entries<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Entries<'de>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<Self::Value, A::Error> {
                    let mut entries = Vec::new();
                    while let Some(entry) = map.next_entry()? {
                        entries.push(entry);
                    }
                    Ok(Entries(entries))
                }
            }
            d.deserialize_map(V)
        }
    }
    serde_json::from_str(json).ok().map(|Entries(e)| e)
}

/// What Maelstrom's reader does with a line it cannot make a map of.
const THROWS: &str = "Maelstrom's reader throws on it and reads no more of this node's stdout";

fn not_json(e: &serde_json::Error) -> String {
    format!("stdout line is not JSON ({e})")
}

/// Whether JSON text starts an object (the common case, which needs no conversion).
fn is_object(json: &str) -> bool {
    json.trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
}

/// The map Maelstrom's reader makes of a JSON value, as JSON text, or what the value is
/// when the reader throws on it. `json` must be valid JSON.
///
/// Maelstrom parses each line with cheshire and turns the line, then its `body`, into a
/// map of keywords with one `reduce` over the value, destructuring each element as a
/// `[key value]` pair (its `keywordize-keys-1`):
/// * an object is a map already (kept as written);
/// * `null`, `""` and `[]` reduce over nothing: an empty map;
/// * an array makes a map of its elements: an array element `[k, v, …]` gives `k` → `v`
///   (a missing one is nil), a `null` element nil → nil, a string element nil → its
///   second character (a character's keyword is nil); a key that is not a string is nil,
///   which cheshire writes as the key `""`; a later key wins;
/// * anything else throws: a number, `true`/`false`, a non-empty string (its characters
///   are not pairs), or an array with a number, boolean or object in it.
fn as_maelstrom_map(json: &str) -> Result<Cow<'_, str>, String> {
    if is_object(json) {
        return Ok(Cow::Borrowed(json));
    }
    let kind = |v: &Value| match v {
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
        Value::Null => "null",
    };
    let v: Value = serde_json::from_str(json).map_err(|e| format!("not JSON ({e})"))?;
    let mut map = serde_json::Map::new();
    match v {
        Value::Null => {}
        Value::String(s) if s.is_empty() => {}
        Value::Array(items) => {
            for item in items {
                let (k, v) = match item {
                    Value::Null => (Value::Null, Value::Null),
                    Value::String(s) => {
                        // Java strings are UTF-16; a lone surrogate cannot be kept.
                        let second = s.encode_utf16().nth(1).map(|u| {
                            let c = char::from_u32(u32::from(u)).unwrap_or('\u{fffd}');
                            Value::String(c.to_string())
                        });
                        (Value::Null, second.unwrap_or(Value::Null))
                    }
                    Value::Array(pair) => {
                        let mut pair = pair.into_iter();
                        let k = pair.next().unwrap_or(Value::Null);
                        (k, pair.next().unwrap_or(Value::Null))
                    }
                    other => return Err(format!("an array holding {}", kind(&other))),
                };
                let k = match k {
                    Value::String(k) => k,
                    _ => String::new(),
                };
                map.insert(k, v);
            }
        }
        other => return Err(kind(&other).to_owned()),
    }
    Ok(Cow::Owned(Value::Object(map).to_string()))
}

/// Deserializes `T` from a JSON object only: serde's derived structs also accept an array
/// of their fields in order, which Maelstrom's reader would not take for a map.
struct MapOnly<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for MapOnly<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(OnlyMap(d)).map(MapOnly)
    }
}

/// A deserializer that hands every request to its inner one as a request for a map.
struct OnlyMap<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for OnlyMap<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(v)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(v)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// One pass over a well-formed kafka reply: every field any `*_ok` type may have, all
/// strictly typed, nothing else. Errors, malformed bodies and node-to-node messages fail
/// this parse and take the slower, explaining path ([`Head`], then [`classify`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fast<'a> {
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
    /// `None` for an integer no request's `msg_id` can be (see [`reply_to`]).
    #[serde(deserialize_with = "strict_reply_to")]
    in_reply_to: Option<u64>,
    #[serde(default, rename = "msg_id", deserialize_with = "present_int")]
    _msg_id: Option<i64>,
    #[serde(default, deserialize_with = "present_int")]
    offset: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    msgs: Option<FastMsgs>,
    #[serde(default, borrow, deserialize_with = "present")]
    offsets: Option<HashMap<Cow<'a, str>, StrictInt>>,
}

/// `msgs` straight into its final shape: first as text that serde_json has checked is one
/// JSON value, then its common shape read in one pass ([`Runs::read`]), else with serde
/// ([`RawMsgs`]).
struct FastMsgs(Polled);

impl<'de> Deserialize<'de> for FastMsgs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <&'de RawValue>::deserialize(d)?.get();
        if let Some(runs) = Runs::read(text) {
            return Ok(FastMsgs(Polled::Runs(runs)));
        }
        msgs_by_serde(text)
            .map(|raw| FastMsgs(Polled::Raw(raw)))
            .map_err(de::Error::custom)
    }
}

/// A `poll_ok`'s `msgs` read by serde alone, as the one-pass reading must read it too:
/// what Maelstrom's reader makes of it (see `RawMsgs`), keys in the order written.
pub fn msgs_by_serde(text: &str) -> serde_json::Result<RawPolled> {
    serde_json::from_str::<RawMsgs>(text).map(|m| m.0)
}

/// `msgs` into [`RawPolled`]: no map, no intermediate vectors; as Maelstrom reads it.
///
/// Maelstrom's reader (cheshire over Jackson, without duplicate detection) builds each
/// JSON object into a map one entry at a time, so a key written twice holds the value
/// written last: here it keeps its first place and takes the later pairs. The schema of
/// a key's pairs (a vector of `[offset msg]`) lets `null` through as nothing read, which
/// the client then treats as an empty list: here it is one.
struct RawMsgs(RawPolled);

impl<'de> Deserialize<'de> for RawMsgs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawPolled;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of keys to [offset, msg] pairs")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<RawPolled, A::Error> {
                let mut out: RawPolled = Vec::with_capacity(map.size_hint().unwrap_or(0));
                // Where each key sits in `out`, to find one written again.
                let mut at: HashMap<String, usize> = HashMap::new();
                while let Some((k, pairs)) = map.next_entry::<String, Option<Vec<FastPair>>>()? {
                    let pairs = pairs
                        .unwrap_or_default()
                        .into_iter()
                        .map(|p| (p.0, p.1.0))
                        .collect();
                    match at.get(&k) {
                        Some(&i) => out[i].1 = pairs,
                        None => {
                            at.insert(k.clone(), out.len());
                            out.push((k, pairs));
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(V).map(RawMsgs)
    }
}

#[derive(Deserialize)]
struct FastPair(#[serde(deserialize_with = "strict_int")] i64, MsgDe);

/// A message value, read from its text as Maelstrom reads it ([`msg_of`]).
struct MsgDe(RawMsg);

impl<'de> Deserialize<'de> for MsgDe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'de RawValue>::deserialize(d).map(|raw| MsgDe(msg_of(raw.get())))
    }
}

fn fast_reply(f: Fast<'_>) -> Option<(u64, Reply)> {
    let irt = f.in_reply_to?;
    let reply = match (&*f.ty, f.offset, f.msgs, f.offsets) {
        ("send_ok", Some(offset), None, None) => Reply::SendOk { offset },
        ("poll_ok", None, Some(msgs), None) => Reply::PollOk { msgs: msgs.0 },
        ("commit_offsets_ok", None, None, None) => Reply::CommitOffsetsOk,
        ("list_committed_offsets_ok", None, None, Some(offsets)) => Reply::ListCommittedOffsetsOk {
            offsets: committed(offsets),
        },
        _ => return None,
    };
    Some((irt, reply))
}

/// A `list_committed_offsets_ok`'s offsets in key order: a map has none of its own, and
/// each reading's map iterates in its own random order.
fn committed(offsets: HashMap<Cow<'_, str>, StrictInt>) -> Vec<(String, i64)> {
    let mut offsets: Vec<(String, i64)> = offsets
        .into_iter()
        .map(|(k, o)| (k.into_owned(), o.0))
        .collect();
    offsets.sort_unstable();
    offsets
}

/// For optional keys whose value, when present, must not be `null`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// The envelope's closed schema, around a body read as `B`: a [`Fast`] reply on the one-pass
/// path, or the raw text on the explaining path.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "B: Deserialize<'de>"))]
struct Envelope<'a, B> {
    #[serde(borrow)]
    src: Cow<'a, str>,
    #[serde(borrow)]
    dest: Cow<'a, str>,
    body: B,
    #[serde(default, rename = "id", deserialize_with = "present_int")]
    _id: Option<i64>,
}

/// The few body fields needed to route and classify a reply; the rest is skipped. A key
/// written twice holds the value written last, as in Maelstrom's map of the body.
#[derive(Default)]
struct Head<'a> {
    ty: Option<&'a RawValue>,
    in_reply_to: Option<&'a RawValue>,
    code: Option<&'a RawValue>,
    /// Whether some key (any, not only these) is written twice.
    repeated: bool,
}

impl<'de> Deserialize<'de> for Head<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Head<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Head<'de>, A::Error> {
                let mut head = Head::default();
                let mut seen = Seen::default();
                while let Some(k) = map.next_key::<Cow<'de, str>>()? {
                    match &*k {
                        "type" => head.ty = map.next_value()?,
                        "in_reply_to" => head.in_reply_to = map.next_value()?,
                        "code" => head.code = map.next_value()?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                    head.repeated = head.repeated || !seen.insert(k);
                }
                Ok(head)
            }
        }
        d.deserialize_map(V)
    }
}

/// The keys of one object read so far: a list while there are few (bodies hold a
/// handful), a set past that, so a body of many keys costs no quadratic search.
#[derive(Default)]
struct Seen<'a> {
    list: Vec<Cow<'a, str>>,
    set: std::collections::HashSet<Cow<'a, str>, crate::history::FxBuild>,
}

impl<'a> Seen<'a> {
    const LIST: usize = 16;

    /// False if `k` was seen already.
    fn insert(&mut self, k: Cow<'a, str>) -> bool {
        if self.list.len() < Self::LIST {
            if self.list.contains(&k) {
                return false;
            }
            self.list.push(k);
            return true;
        }
        if self.set.is_empty() {
            self.set.extend(self.list.iter().cloned());
        }
        self.set.insert(k)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendOk {
    #[serde(rename = "type")]
    _ty: IgnoredAny,
    #[serde(rename = "in_reply_to")]
    _irt: IgnoredAny,
    #[serde(default, rename = "msg_id", deserialize_with = "present_int")]
    _msg_id: Option<i64>,
    #[serde(deserialize_with = "strict_int")]
    offset: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PollOk {
    #[serde(rename = "type")]
    _ty: IgnoredAny,
    #[serde(rename = "in_reply_to")]
    _irt: IgnoredAny,
    #[serde(default, rename = "msg_id", deserialize_with = "present_int")]
    _msg_id: Option<i64>,
    msgs: RawMsgs,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitOffsetsOk {
    #[serde(rename = "type")]
    _ty: IgnoredAny,
    #[serde(rename = "in_reply_to")]
    _irt: IgnoredAny,
    #[serde(default, rename = "msg_id", deserialize_with = "present_int")]
    _msg_id: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListCommittedOffsetsOk<'a> {
    #[serde(rename = "type")]
    _ty: IgnoredAny,
    #[serde(rename = "in_reply_to")]
    _irt: IgnoredAny,
    #[serde(default, rename = "msg_id", deserialize_with = "present_int")]
    _msg_id: Option<i64>,
    #[serde(borrow)]
    offsets: HashMap<Cow<'a, str>, StrictInt>,
}

/// An integer, as Maelstrom's schemas take one (`s/Int`: any integer, however large); not
/// a float, not null, not a string. One past i64 is kept as i64's nearest end: Maelstrom
/// would keep it exact, but an offset that large is past what Jepsen's checker can judge
/// (see [`crate::checker::UNJUDGEABLE_SLOTS`]), and so is its saturated value, so the
/// verdict is the same (unknown); a `msg_id` or `id` is never used.
struct StrictInt(i64);

impl<'de> Deserialize<'de> for StrictInt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <&'de RawValue>::deserialize(d)?;
        match number(raw.get()) {
            Some(Number::Int(i)) => Ok(StrictInt(i)),
            Some(Number::Big(digits)) if digits.starts_with('-') => Ok(StrictInt(i64::MIN)),
            Some(Number::Big(_)) => Ok(StrictInt(i64::MAX)),
            _ => Err(de::Error::custom(format_args!(
                "expected an integer, found {}",
                crate::text::clip(raw.get(), 40)
            ))),
        }
    }
}

/// `in_reply_to` as a request's `msg_id` could be: an integer from 0 to i64's end (the
/// runner's ids never come near it). Any other integer is valid but answers nothing,
/// as in Maelstrom, where it equals no id.
fn reply_to(raw: &RawValue) -> Option<u64> {
    match number(raw.get()) {
        Some(Number::Int(i)) => u64::try_from(i).ok(),
        _ => None,
    }
}

/// [`reply_to`] of a field that must be an integer.
fn strict_reply_to<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let raw = <&'de RawValue>::deserialize(d)?;
    match number(raw.get()) {
        Some(Number::Int(_) | Number::Big(_)) => Ok(reply_to(raw)),
        _ => Err(de::Error::custom("in_reply_to is not an integer")),
    }
}

/// A JSON number as Maelstrom's reader makes it: cheshire hands each number to Jackson,
/// which reads a literal without fraction or exponent as a `Long` when it fits and a
/// `BigInteger` when it does not (`-0` is 0), and any other as a `Double`, correctly
/// rounded (`1e400` is infinity).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Number<'a> {
    Int(i64),
    /// An integer past i64, as written: JSON writes no leading zeros, so equal integers
    /// are written alike.
    Big(&'a str),
    Float(f64),
}

/// The number `text` writes, if it is a JSON number literal serde_json has accepted
/// (callers pass a `RawValue`'s text); `None` for any other value.
fn number(text: &str) -> Option<Number<'_>> {
    let b = text.as_bytes();
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    if !digits.first().is_some_and(u8::is_ascii_digit) {
        return None;
    }
    if digits.iter().all(u8::is_ascii_digit) {
        return Some(text.parse().map_or(Number::Big(text), Number::Int));
    }
    // A JSON literal with a fraction or exponent is one Rust's parser takes, rounded
    // correctly as Java's is.
    text.parse().ok().map(Number::Float)
}

/// A message value from its JSON text (a `RawValue`'s), as Maelstrom tells values apart:
/// integers as such when they fit i64 (no allocation: the common case); any other value
/// as its [`canonical`] text, so that two values have one text exactly when Maelstrom
/// holds them equal.
pub(crate) fn msg_of(text: &str) -> RawMsg {
    match number(text) {
        Some(Number::Int(i)) => RawMsg::Int(i),
        _ => RawMsg::Other(canonical(text)),
    }
}

/// The text of a number as Jackson reads it: an integer as its digits, however large
/// (`-0` is `0`); a float as the shortest text of its double, so `1.0`, `1.00` and `1e0`
/// are one value, as they are one `Double`, and ±infinity as `1e400` and `-1e400` (JSON
/// has no infinity; any literal past the doubles' range is that one value).
fn number_text(n: Number<'_>, out: &mut String) {
    match n {
        Number::Int(i) => out.push_str(itoa::Buffer::new().format(i)),
        Number::Big(digits) => out.push_str(digits),
        Number::Float(f) if f.is_finite() => out.push_str(&Value::from(f).to_string()),
        Number::Float(f) => out.push_str(if f > 0.0 { "1e400" } else { "-1e400" }),
    }
}

/// A JSON value's text in one form for each value Maelstrom's reader tells apart: numbers
/// as [`number_text`] writes them, at any depth (so two integers past a double's
/// precision stay two values, where a `serde_json::Value` would round both to one
/// double); strings with serde_json's escapes; an object's keys in order, each once,
/// holding the value written last (a Clojure map compares without order). `text` must
/// be one JSON value serde_json takes, within Jackson's limits (so this recursion is at
/// most 1,000 deep); anything else is kept as written.
fn canonical(text: &str) -> Box<str> {
    let mut c = Cursor::new(text);
    let mut out = String::with_capacity(text.len());
    match rewritten_value(&mut c, &mut out, Form::Canonical) {
        Some(()) if c.at_end() => out.into(),
        _ => text.into(),
    }
}

/// The string at the cursor (its opening quote next), unescaped.
pub(crate) fn string_token(c: &mut Cursor<'_>) -> Option<String> {
    let rest = c.rest();
    let b = rest.as_bytes();
    let mut end = 1;
    loop {
        match *b.get(end)? {
            b'"' => break,
            b'\\' => end += 2,
            _ => end += 1,
        }
    }
    let s = serde_json::from_str(&rest[..=end]).ok()?;
    c.at += end + 1;
    Some(s)
}

fn strict_int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    StrictInt::deserialize(d).map(|i| i.0)
}

/// For optional integer keys: absent is fine (`#[serde(default)]`), present must be an
/// integer; `null` is rejected, as Prismatic's `(optional-key k) s/Int` does.
fn present_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    strict_int(d).map(Some)
}

fn compact(raw: &str) -> Box<str> {
    serde_json::from_str::<Value>(raw)
        .map(|v| v.to_string())
        .unwrap_or_else(|_| raw.to_owned())
        .into_boxed_str()
}

/// Checks a reply body against the closed schema its `type` names.
fn classify(head: &Head<'_>, body: &str) -> Reply {
    let malformed = |reason: String| Reply::Malformed {
        reason,
        body: compact(body),
    };
    let ty = match head
        .ty
        .map(|t| serde_json::from_str::<Cow<'_, str>>(t.get()))
    {
        Some(Ok(t)) => t,
        Some(Err(_)) => return malformed("type is not a string".into()),
        None => return malformed("missing type".into()),
    };
    let schema = |e: serde_json::Error| format!("{ty} does not match its schema: {e}");
    match &*ty {
        "error" => Reply::Error {
            code: head.code.and_then(|c| match number(c.get()) {
                Some(Number::Int(i)) => Some(i),
                _ => None,
            }),
            body: compact(body),
        },
        "init_ok" => Reply::InitOk,
        "send_ok" => match serde_json::from_str::<SendOk>(body) {
            Ok(r) => Reply::SendOk { offset: r.offset },
            Err(e) => malformed(schema(e)),
        },
        "poll_ok" => match serde_json::from_str::<PollOk>(body) {
            Ok(r) => Reply::PollOk {
                msgs: Polled::Raw(r.msgs.0),
            },
            Err(e) => malformed(schema(e)),
        },
        "commit_offsets_ok" => match serde_json::from_str::<CommitOffsetsOk>(body) {
            Ok(_) => Reply::CommitOffsetsOk,
            Err(e) => malformed(schema(e)),
        },
        "list_committed_offsets_ok" => {
            match serde_json::from_str::<ListCommittedOffsetsOk<'_>>(body) {
                Ok(r) => Reply::ListCommittedOffsetsOk {
                    offsets: committed(r.offsets),
                },
                Err(e) => malformed(schema(e)),
            }
        }
        other => malformed(format!("unexpected reply type {other:?}")),
    }
}

/// Whether Maelstrom's error registry calls `code` definite: the operation certainly did
/// not happen. Codes it does not know (including all codes ≥ 1000) are indefinite.
pub fn is_definite(code: Option<i64>) -> bool {
    matches!(code, Some(1 | 10 | 11 | 12 | 14 | 20 | 21 | 22 | 30))
}

/// Appends one request line (envelope plus body, then `\n`) to `out`.
///
/// Bodies are written by hand: this runs once per operation on the scheduler thread, and
/// a `Value` tree per request would cost more than the whole rest of the dispatch.
#[derive(Debug)]
pub struct Encoder<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> Encoder<'a> {
    /// Starts `{"id":..,"src":"c<client>","dest":..,"body":{"type":..,"msg_id":..` .
    pub fn start(
        out: &'a mut Vec<u8>,
        id: u64,
        src: &str,
        dest: &str,
        ty: &str,
        msg_id: u64,
    ) -> Self {
        out.extend_from_slice(b"{\"id\":");
        write_int(out, id);
        out.extend_from_slice(b",\"src\":");
        write_str(out, src);
        out.extend_from_slice(b",\"dest\":");
        write_str(out, dest);
        out.extend_from_slice(b",\"body\":{\"type\":");
        write_str(out, ty);
        out.extend_from_slice(b",\"msg_id\":");
        write_int(out, msg_id);
        Encoder { out }
    }

    pub fn str_field(self, name: &str, v: &str) -> Self {
        let _ = write!(self.out, ",\"{name}\":");
        write_str(self.out, v);
        self
    }

    pub fn int_field(self, name: &str, v: i64) -> Self {
        let _ = write!(self.out, ",\"{name}\":{v}");
        self
    }

    /// A `{"key": offset, ...}` field.
    pub fn offsets_field<'k>(self, name: &str, it: impl Iterator<Item = (&'k str, i64)>) -> Self {
        let _ = write!(self.out, ",\"{name}\":{{");
        for (i, (k, o)) in it.enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            write_str(self.out, k);
            self.out.push(b':');
            write_int(self.out, o);
        }
        self.out.push(b'}');
        self
    }

    /// A `["a", "b", ...]` field.
    pub fn strs_field<'k>(self, name: &str, it: impl Iterator<Item = &'k str>) -> Self {
        let _ = write!(self.out, ",\"{name}\":[");
        for (i, k) in it.enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            write_str(self.out, k);
        }
        self.out.push(b']');
        self
    }

    pub fn finish(self) {
        self.out.extend_from_slice(b"}}\n");
    }
}

/// Writes an integer without going through `fmt` (this runs once per key per request).
fn write_int(out: &mut Vec<u8>, v: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Whether a string is written in JSON as it is, between quotes: nothing in it needs
/// escaping. Keys are nearly always such (Maelstrom's are decimal numbers).
pub(crate) fn is_plain(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Writes `s` as a JSON string. Keys we generate are digits and network names are node ids and
/// service names, so the fast path is a copy; serde escapes anything else.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    if is_plain(s) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names::new(vec!["n0".into(), "n1".into()])
    }

    fn reply(line: &str) -> Reply {
        match parse_line(line, &names()) {
            Ok(Inbound::Reply { reply, .. }) => reply,
            other => panic!("not a reply: {other:?}"),
        }
    }

    #[test]
    fn accepts_valid_replies() {
        assert_eq!(
            reply(
                r#"{"src":"n0","dest":"c3","body":{"type":"send_ok","in_reply_to":3,"offset":12}}"#
            ),
            Reply::SendOk { offset: 12 }
        );
        let r = reply(
            r#"{"id":5,"src":"n0","dest":"c3","body":{"type":"poll_ok","in_reply_to":4,"msg_id":9,"msgs":{"9":[[0,1],[1,2.5]],"12":[]}}}"#,
        );
        let Reply::PollOk { msgs } = r else {
            panic!("{r:?}")
        };
        let msgs = msgs.to_raw();
        assert_eq!(msgs.len(), 2);
        let nine = msgs.iter().find(|(k, _)| k == "9").unwrap();
        assert_eq!(
            nine.1,
            vec![(0, RawMsg::Int(1)), (1, RawMsg::Other("2.5".into()))]
        );
    }

    #[test]
    fn fast_and_slow_paths_agree() {
        let lines = [
            r#"{"src":"n0","dest":"c3","body":{"type":"send_ok","in_reply_to":3,"offset":12,"msg_id":4}}"#,
            r#"{"id":9,"src":"n0","dest":"c3","body":{"in_reply_to":3,"msgs":{"1":[[0,1],[1,2.5],[2,"x"],[3,null],[4,[1]],[5,{"a":1}],[6,18446744073709551615],[7,-3]]},"type":"poll_ok"}}"#,
            r#"{"src":"n0","dest":"c3","body":{"type":"commit_offsets_ok","in_reply_to":3}}"#,
            r#"{"src":"n0","dest":"c3","body":{"type":"list_committed_offsets_ok","in_reply_to":3,"offsets":{"1":4}}}"#,
        ];
        for line in lines {
            let fast = parse_line(line, &names()).unwrap();
            assert_eq!(Ok(fast), parse_line_slow(line, &names()), "{line}");
        }
    }

    #[test]
    fn rejects_extra_null_and_float_fields() {
        let bad = [
            r#"{"src":"n0","dest":"c3","body":{"type":"send_ok","in_reply_to":3,"offset":12,"extra":1}}"#,
            r#"{"src":"n0","dest":"c3","body":{"type":"send_ok","in_reply_to":3,"offset":null}}"#,
            r#"{"src":"n0","dest":"c3","body":{"type":"send_ok","in_reply_to":3,"offset":1.0}}"#,
            r#"{"src":"n0","dest":"c3","body":{"type":"poll_ok","in_reply_to":3,"msgs":{"1":[null]}}}"#,
            r#"{"src":"n0","dest":"c3","body":{"type":"poll_ok","in_reply_to":3,"msgs":null}}"#,
            r#"{"src":"n0","dest":"c3","body":{"type":"poll_ok","in_reply_to":3,"msgs":{"1":[[0,1,2]]}}}"#,
            r#"{"src":"n0","dest":"c3","body":{"type":"list_committed_offsets_ok","in_reply_to":3,"offsets":{"1":null}}}"#,
            r#"{"src":"n0","dest":"c3","body":{"type":"commit_offsets_ok","in_reply_to":3,"msg_id":1.5}}"#,
        ];
        for line in bad {
            assert!(matches!(reply(line), Reply::Malformed { .. }), "{line}");
        }
    }

    #[test]
    fn errors_skip_the_schema_and_know_definite_codes() {
        let r = reply(
            r#"{"src":"n0","dest":"c3","body":{"type":"error","in_reply_to":3,"code":11,"x":1}}"#,
        );
        assert!(matches!(r, Reply::Error { code: Some(11), .. }));
        assert!(is_definite(Some(11)));
        assert!(!is_definite(Some(13)));
        assert!(!is_definite(Some(1000)));
        assert!(!is_definite(None));
    }

    #[test]
    fn envelope_is_closed() {
        for line in [
            "not json",
            "[1]",
            r#"{"src":"n0","dest":"c3","body":{},"extra":1}"#,
            r#"{"src":"n0","dest":"c3"}"#,
            r#"{"src":"n0","dest":"c3","body":{},"id":"7"}"#,
            r#"{"src":"n0","dest":"c3","body":{"type":"send_ok","in_reply_to":3,"offset":1},"id":null}"#,
            r#"{"src":"n9","dest":"c3","body":{}}"#,
            r#"{"src":1,"dest":"c3","body":{}}"#,
        ] {
            assert!(parse_line(line, &names()).is_err(), "{line}");
        }
        assert_eq!(
            parse_line(
                r#"{"src":"n0","dest":"n1","body":{"type":"gossip"}}"#,
                &names()
            ),
            Ok(Inbound::Other {
                dest: Dest::Node(1)
            })
        );
        assert_eq!(
            parse_line(r#"{"src":"n0","dest":"lin-kv","body":{}}"#, &names()),
            Ok(Inbound::Other {
                dest: Dest::Unknown("lin-kv".into())
            })
        );
    }

    #[test]
    fn a_body_maelstrom_cannot_make_a_map_of_kills_the_stdout() {
        // Maelstrom's reader reduces the body as a sequence of [key value] pairs: these
        // throw, and it reads no more of the node's stdout.
        for body in [
            "3",
            "-1.5",
            "true",
            "false",
            r#""send_ok""#,
            r#""x""#,
            "[1]",
            r#"[["type","x"],7]"#,
            "[{}]",
            "[true]",
        ] {
            for dest in ["c3", "n1", "lin-kv"] {
                let line = format!(r#"{{"src":"n0","dest":"{dest}","body":{body}}}"#);
                let err = parse_line(&line, &names()).unwrap_err();
                assert!(err.0.contains("not a map"), "{line}: {err:?}");
                assert!(err.0.contains(body), "the reason names the body: {err:?}");
            }
        }
        // The line itself goes through the same reduce.
        for line in ["3", r#""x""#, "[1]", "true"] {
            assert!(parse_line(line, &names()).is_err(), "{line}");
        }
    }

    #[test]
    fn a_body_maelstrom_makes_a_map_of_is_that_map() {
        // null, "" and [] reduce to an empty map: delivered as {}, never a reply.
        for body in ["null", r#""""#, "[]", " [ ] "] {
            let line = format!(r#"{{"src":"n0","dest":"n1","body":{body}}}"#);
            assert_eq!(
                parse_line(&line, &names()),
                Ok(Inbound::Other {
                    dest: Dest::Node(1)
                }),
                "{line}"
            );
            assert_eq!(forwarded_body(&line).as_deref(), Some("{}"), "{line}");
        }
        // An array of pairs is the map of those pairs: here a well-formed send_ok.
        let line = r#"{"src":"n0","dest":"c3","body":[["type","send_ok"],["in_reply_to",3],["offset",12]]}"#;
        assert_eq!(reply(line), Reply::SendOk { offset: 12 });
        // Strings and nulls in the array are pairs with a nil key, written "": an extra key
        // that a reply's closed schema refuses.
        let line = r#"{"src":"n0","dest":"c3","body":[["type","send_ok"],["in_reply_to",3],["offset",12],"ab"]}"#;
        assert!(matches!(reply(line), Reply::Malformed { .. }), "{line}");
        let line = r#"{"src":"n0","dest":"n1","body":[["a",1,2],["b"],"xy",null,[],["a",3]]}"#;
        let body: Value = serde_json::from_str(&forwarded_body(line).unwrap()).unwrap();
        assert_eq!(body, serde_json::json!({"a": 3, "b": null, "": null}));
        let line = r#"{"src":"n0","dest":"n1","body":["xy"]}"#;
        let body: Value = serde_json::from_str(&forwarded_body(line).unwrap()).unwrap();
        assert_eq!(body, serde_json::json!({"": "y"}));
        // So is a line that is an array of pairs.
        let line = r#"[["src","n0"],["dest","c3"],["body",{"type":"send_ok","in_reply_to":3,"offset":1}]]"#;
        assert_eq!(reply(line), Reply::SendOk { offset: 1 });
        // An object body is forwarded as written.
        let line = r#"{"src":"n0","dest":"n1","body":{"b":1, "a":[2]}}"#;
        assert_eq!(forwarded_body(line).as_deref(), Some(r#"{"b":1, "a":[2]}"#));
        // Unless it writes a key twice, at any depth: then as the map Maelstrom makes of
        // it, each key once in the place first written, holding the value written last,
        // so the receiver reads the value Maelstrom would give it, whatever its parser
        // does with a key written twice.
        for (body, want) in [
            (
                r#"{"type":"g","v":1,"w":[],"v":2}"#,
                r#"{"type":"g","v":2,"w":[]}"#,
            ),
            (
                r#"{"type":"g", "m":{"a":[1, {"x":1,"x":"2"}],"a":3, "b":1.50}}"#,
                r#"{"type":"g","m":{"a":3,"b":1.50}}"#,
            ),
            (
                r#"{"type":"g","l":[{"k":1,"\u006b":2}]}"#,
                r#"{"type":"g","l":[{"k":2}]}"#,
            ),
            (
                r#"{"type":"g","l":[{"k":1},{"k":2}],"s":"{\"k\":1,\"k\":2}"}"#,
                r#"{"type":"g","l":[{"k":1},{"k":2}],"s":"{\"k\":1,\"k\":2}"}"#,
            ),
        ] {
            let line = format!(r#"{{"src":"n0","dest":"n1","body":{body}}}"#);
            assert_eq!(forwarded_body(&line).as_deref(), Some(want), "{line}");
        }
    }

    #[test]
    fn the_one_pass_path_takes_objects_only() {
        // serde's derived structs also read an array of their fields in order; Maelstrom
        // would throw on these, so the runner must too.
        for line in [
            r#"{"src":"n0","dest":"c3","body":["send_ok",3,1,5]}"#,
            r#"["n0","c3",{"type":"send_ok","in_reply_to":3,"offset":1}]"#,
        ] {
            assert!(parse_line(line, &names()).is_err(), "{line}");
        }
    }

    /// A poll reply's `msgs` as both paths read it, as serde's reading keeps it.
    fn polled(line: &str) -> Vec<RawPolled> {
        [parse_line(line, &names()), parse_line_slow(line, &names())]
            .into_iter()
            .map(|read| match read {
                Ok(Inbound::Reply {
                    reply: Reply::PollOk { msgs },
                    ..
                }) => msgs.to_raw(),
                other => panic!("{line}: {other:?}"),
            })
            .collect()
    }

    fn poll_line(msgs: &str) -> String {
        format!(
            r#"{{"src":"n0","dest":"c3","body":{{"type":"poll_ok","in_reply_to":3,"msgs":{msgs}}}}}"#
        )
    }

    fn pairs(p: &[(i64, RawMsg)]) -> Vec<(i64, RawMsg)> {
        p.to_vec()
    }

    #[test]
    fn a_key_written_twice_in_msgs_holds_the_pairs_written_last() {
        // Maelstrom's reader builds each object into a map entry by entry: the later
        // pairs replace the earlier, whichever path reads the reply (the one-pass reading
        // of runs, serde's of other values, the explaining path's).
        let one = |o, v| (o, RawMsg::Int(v));
        for (msgs, want) in [
            (
                r#"{"k":[[0,1]],"j":[[0,5]],"k":[[1,2]]}"#,
                vec![("k", pairs(&[one(1, 2)])), ("j", pairs(&[one(0, 5)]))],
            ),
            (
                r#"{"k":[[0,1.5]],"k":[[1,2]]}"#,
                vec![("k", pairs(&[one(1, 2)]))],
            ),
            (
                r#"{"k":[[0,1]],"k":[[4,1.5]]}"#,
                vec![("k", pairs(&[(4, RawMsg::Other("1.5".into()))]))],
            ),
            (r#"{"k":[[0,1]],"k":[]}"#, vec![("k", vec![])]),
        ] {
            let want: RawPolled = want.into_iter().map(|(k, p)| (k.to_owned(), p)).collect();
            for got in polled(&poll_line(msgs)) {
                assert_eq!(got, want, "{msgs}");
            }
        }
        // Past the keys compared one by one, found by the index.
        let mut many: Vec<String> = (0..40).map(|k| format!(r#""{k}":[[0,{k}]]"#)).collect();
        many.push(r#""33":[[1,7]]"#.into());
        let read = polled(&poll_line(&format!("{{{}}}", many.join(","))));
        for got in read {
            assert_eq!(got.len(), 40);
            assert_eq!(got[33], ("33".to_owned(), vec![one(1, 7)]));
        }
    }

    #[test]
    fn a_key_written_twice_in_a_body_or_envelope_holds_the_value_written_last() {
        let line = |body: &str| format!(r#"{{"src":"n0","dest":"c3","body":{body}}}"#);
        for (body, want) in [
            (
                r#"{"type":"send_ok","in_reply_to":3,"offset":2,"offset":3}"#,
                Reply::SendOk { offset: 3 },
            ),
            (
                r#"{"type":"error","in_reply_to":3,"type":"send_ok","offset":2}"#,
                Reply::SendOk { offset: 2 },
            ),
            (
                r#"{"type":"send_ok","in_reply_to":3,"offset":2,"msg_id":1,"msg_id":2}"#,
                Reply::SendOk { offset: 2 },
            ),
            (
                r#"{"type":"list_committed_offsets_ok","in_reply_to":3,"offsets":{"a":1,"a":4}}"#,
                Reply::ListCommittedOffsetsOk {
                    offsets: vec![("a".into(), 4)],
                },
            ),
            (
                r#"{"type":"poll_ok","in_reply_to":3,"msgs":{"a":[[0,1]]},"msgs":{"b":[[0,2]]}}"#,
                Reply::PollOk {
                    msgs: Polled::Raw(vec![("b".into(), vec![(0, RawMsg::Int(2))])]),
                },
            ),
        ] {
            let line = line(body);
            for got in [
                parse_line(&line, &names()),
                parse_line_slow(&line, &names()),
            ] {
                let Ok(Inbound::Reply { reply, .. }) = got else {
                    panic!("{line}: {got:?}")
                };
                let reply = match reply {
                    Reply::PollOk { msgs } => Reply::PollOk {
                        msgs: Polled::Raw(msgs.to_raw()),
                    },
                    other => other,
                };
                assert_eq!(reply, want, "{line}");
            }
        }
        // in_reply_to written twice answers the later id.
        let l = line(r#"{"type":"send_ok","in_reply_to":1,"offset":2,"in_reply_to":7}"#);
        assert!(
            matches!(
                parse_line(&l, &names()),
                Ok(Inbound::Reply { in_reply_to: 7, .. })
            ),
            "{l}"
        );
        // The envelope too: the line is kept, as Maelstrom keeps it, not its stdout killed.
        for l in [
            r#"{"src":"n1","src":"n0","dest":"c3","body":{"type":"send_ok","in_reply_to":3,"offset":5}}"#,
            r#"{"src":"n0","dest":"c9","body":{"type":"send_ok","in_reply_to":3,"offset":5},"dest":"c3"}"#,
            r#"{"src":"n0","dest":"c3","body":{"type":"error"},"body":{"type":"send_ok","in_reply_to":3,"offset":5}}"#,
            r#"{"id":1,"src":"n0","id":2,"dest":"c3","body":{"type":"send_ok","in_reply_to":3,"offset":5}}"#,
        ] {
            for got in [parse_line(l, &names()), parse_line_slow(l, &names())] {
                assert_eq!(
                    got,
                    Ok(Inbound::Reply {
                        dest: Dest::Client(3),
                        in_reply_to: 3,
                        reply: Reply::SendOk { offset: 5 }
                    }),
                    "{l}"
                );
            }
            assert_eq!(
                envelope_body(l),
                Some(r#"{"type":"send_ok","in_reply_to":3,"offset":5}"#),
                "{l}"
            );
            assert_eq!(
                forwarded_body(l).as_deref(),
                Some(r#"{"type":"send_ok","in_reply_to":3,"offset":5}"#),
                "{l}"
            );
        }
        // A key written twice is still a key the schema must allow.
        let l = line(r#"{"type":"send_ok","in_reply_to":3,"offset":2,"x":1,"x":2}"#);
        assert!(matches!(reply(&l), Reply::Malformed { .. }), "{l}");
    }

    #[test]
    fn numbers_are_what_maelstrom_reads() {
        let one = |msgs: &str| -> Vec<(i64, RawMsg)> {
            let read = polled(&poll_line(msgs));
            assert_eq!(read[0], read[1], "{msgs}");
            read[0].first().map(|(_, p)| p.clone()).unwrap_or_default()
        };
        let other = |s: &str| RawMsg::Other(s.into());
        // Jackson reads `-0` as the integer 0, as a value and as an offset.
        assert_eq!(one(r#"{"k":[[0,-0]]}"#), vec![(0, RawMsg::Int(0))]);
        assert_eq!(one(r#"{"k":[[-0,1]]}"#), vec![(0, RawMsg::Int(1))]);
        // An integer past i64 is a BigInteger: kept exact, not rounded to a double.
        assert_eq!(
            one(r#"{"k":[[0,18446744073709551617]]}"#),
            vec![(0, other("18446744073709551617"))]
        );
        assert_eq!(
            one(r#"{"k":[[0,-18446744073709551617]]}"#),
            vec![(0, other("-18446744073709551617"))]
        );
        // Floats are doubles: equal doubles are one value, whatever their text, and every
        // literal past the doubles' range is infinity.
        for (text, want) in [
            ("1.00", "1.0"),
            ("1e0", "1.0"),
            ("1E400", "1e400"),
            ("2e400", "1e400"),
            ("-1e999", "-1e400"),
            ("1e-400", "0.0"),
        ] {
            assert_eq!(
                one(&format!(r#"{{"k":[[0,{text}]]}}"#)),
                vec![(0, other(want))],
                "{text}"
            );
        }
        // Inside a value too: each value Jackson tells apart has its own text, and each
        // it does not one text, at any depth.
        for (a, b, same) in [
            ("[18446744073709551617]", "[18446744073709551616]", false),
            (
                r#"{"x":[1,18446744073709551617]}"#,
                r#"{"x":[1,18446744073709551616]}"#,
                false,
            ),
            ("[-18446744073709551617]", "[-18446744073709551616]", false),
            ("[1e400]", "[2E999]", true),
            ("[-1e400]", "[1e400]", false),
            ("[[-0]]", "[[0]]", true),
            ("[1.0]", "[1]", false),
            ("[1.50]", "[15e-1]", true),
            (r#"{"b":1,"a":[2]}"#, r#" { "a" : [ 2 ] , "b" : 1 } "#, true),
            (r#"{"a":1,"a":2}"#, r#"{"a":2}"#, true),
            (r#"["\u0041"]"#, r#"["A"]"#, true),
            (r#"[true,null,"x"]"#, r#"[true,null,"x"]"#, true),
        ] {
            let (ma, mb) = (msg_of(a), msg_of(b));
            assert_eq!(ma == mb, same, "{a} {ma:?} against {b} {mb:?}");
            assert_eq!(one(&format!(r#"{{"k":[[0,{a}]]}}"#)), vec![(0, ma)], "{a}");
        }
        assert_eq!(
            msg_of(r#"{"x":[1,18446744073709551617,-0,1e400]}"#),
            other(r#"{"x":[1,18446744073709551617,0,1e400]}"#)
        );
        // Offsets past i64 are integers Maelstrom's schema takes: the reply is valid, and
        // the offset, past what Jepsen's checker can judge, is i64's nearest end.
        assert_eq!(
            one(r#"{"k":[[18446744073709551617,1]]}"#),
            vec![(i64::MAX, RawMsg::Int(1))]
        );
        assert_eq!(
            one(r#"{"k":[[-9223372036854775809,1]]}"#),
            vec![(i64::MIN, RawMsg::Int(1))]
        );
        let line = |body: &str| format!(r#"{{"src":"n0","dest":"c3","body":{body}}}"#);
        for (body, offset) in [
            (
                r#"{"type":"send_ok","in_reply_to":3,"offset":18446744073709551617}"#,
                i64::MAX,
            ),
            (
                r#"{"type":"send_ok","in_reply_to":3,"offset":9223372036854775808}"#,
                i64::MAX,
            ),
            (r#"{"type":"send_ok","in_reply_to":3,"offset":-0}"#, 0),
            (
                r#"{"type":"send_ok","in_reply_to":3,"offset":4,"msg_id":18446744073709551617}"#,
                4,
            ),
        ] {
            let l = line(body);
            for got in [parse_line(&l, &names()), parse_line_slow(&l, &names())] {
                assert!(
                    matches!(got, Ok(Inbound::Reply { reply: Reply::SendOk { offset: o }, .. }) if o == offset),
                    "{l}: {got:?}"
                );
            }
        }
        let l = line(
            r#"{"type":"list_committed_offsets_ok","in_reply_to":3,"offsets":{"a":18446744073709551617}}"#,
        );
        assert_eq!(
            reply(&l),
            Reply::ListCommittedOffsetsOk {
                offsets: vec![("a".into(), i64::MAX)]
            }
        );
        // The envelope's id is an integer of any size too: the line is kept.
        let l = r#"{"id":18446744073709551617,"src":"n0","dest":"c3","body":{"type":"send_ok","in_reply_to":3,"offset":1}}"#;
        assert_eq!(reply(l), Reply::SendOk { offset: 1 });
        // An in_reply_to no request's id can equal answers nothing, on either path.
        for irt in ["18446744073709551617", "-1", "3.0", "1e400"] {
            let l = line(&format!(
                r#"{{"type":"send_ok","in_reply_to":{irt},"offset":1}}"#
            ));
            for got in [parse_line(&l, &names()), parse_line_slow(&l, &names())] {
                assert_eq!(
                    got,
                    Ok(Inbound::Other {
                        dest: Dest::Client(3)
                    }),
                    "{l}"
                );
            }
        }
        let l = line(r#"{"type":"send_ok","in_reply_to":-0,"offset":1}"#);
        assert!(matches!(
            parse_line(&l, &names()),
            Ok(Inbound::Reply { in_reply_to: 0, .. })
        ));
        // An error's code is read as Maelstrom's registry looks it up: an integer, or none.
        for (code, want) in [
            ("11", Some(11)),
            ("-0", Some(0)),
            ("11.0", None),
            ("1e400", None),
        ] {
            let l = line(&format!(
                r#"{{"type":"error","in_reply_to":3,"code":{code}}}"#
            ));
            assert!(
                matches!(reply(&l), Reply::Error { code, .. } if code == want),
                "{l}"
            );
        }
    }

    /// Jackson's read limits, each at its edge: what is within is read, what is one past
    /// it kills the stdout on every path, naming the limit.
    #[test]
    fn what_is_past_jacksons_limits_is_refused_and_what_is_within_is_read() {
        let within_and_past = |within: &str, past: &str, what: &str| {
            for l in [within, past] {
                let paths = [parse_line(l, &names()), parse_line_slow(l, &names())];
                for got in paths {
                    if l == within {
                        assert!(got.is_ok(), "{}: {got:?}", crate::text::clip(l, 80));
                    } else {
                        let Err(InvalidLine(why)) = got else {
                            panic!("{} read: {got:?}", crate::text::clip(l, 80));
                        };
                        assert!(why.contains(what), "{why}");
                    }
                }
            }
        };
        let nested = |d: usize| format!("{}1{}", "[".repeat(d), "]".repeat(d));
        // The line and its body are two levels; a poll's msgs, its key and a pair three
        // more: 1000 in all is read.
        within_and_past(
            &poll_line(&format!(r#"{{"k":[[0,{}]]}}"#, nested(995))),
            &poll_line(&format!(r#"{{"k":[[0,{}]]}}"#, nested(996))),
            "nested more than 1000 deep",
        );
        let gossip =
            |v: &str| format!(r#"{{"src":"n0","dest":"n1","body":{{"type":"g","v":{v}}}}}"#);
        within_and_past(&gossip(&nested(998)), &gossip(&nested(999)), "nested");
        // Only the first value is read: what follows it is never measured.
        let first = format!("{}{}", gossip("1"), "[".repeat(2000));
        assert!(parse_line(&first, &names()).is_ok());
        let digits = |n: usize| "7".repeat(n);
        for (within, past) in [
            (digits(1000), digits(1001)),
            (format!("-{}", digits(1000)), format!("-{}", digits(1001))),
            (
                format!("1.{}e-10", digits(997)),
                format!("1.{}e-10", digits(998)),
            ),
        ] {
            within_and_past(
                &poll_line(&format!(r#"{{"k":[[0,{within}]]}}"#)),
                &poll_line(&format!(r#"{{"k":[[0,{past}]]}}"#)),
                "digits (at most 1000)",
            );
        }
        // A key is measured in UTF-16 units once unescaped: `é` (two bytes) is one, `𝄞`
        // (four bytes) two, `\u0041` one; the one-pass reading leaves a long key to the
        // rest.
        let key = |s: String| poll_line(&format!(r#"{{"{s}":[[0,1]]}}"#));
        for (unit, per) in [("a", 1), ("é", 1), ("𝄞", 2), ("\\u0041", 1)] {
            within_and_past(
                &key(unit.repeat(50_000 / per)),
                &key(unit.repeat(50_000 / per + 1)),
                "a key of",
            );
        }
        // A string value may be longer than a key, up to 20,000,000 units.
        within_and_past(
            &gossip(&format!("\"{}\"", "a".repeat(50_001))),
            &gossip(&format!("\"{}\"", "a".repeat(20_000_001))),
            "a string of 20000001 characters",
        );
    }

    #[test]
    fn what_jacksons_reader_takes_and_serde_json_refuses_is_read() {
        let send =
            r#"{"src":"n0","dest":"c3","body":{"type":"send_ok","in_reply_to":3,"offset":5}}"#;
        let ok = Ok(Inbound::Reply {
            dest: Dest::Client(3),
            in_reply_to: 3,
            reply: Reply::SendOk { offset: 5 },
        });
        // Maelstrom's reader reads one value from the line and never looks past it.
        for trailing in ["x", "}", " {\"src\":\"n1\"}", "\u{1}"] {
            let l = format!("{send}{trailing}");
            assert_eq!(parse_line(&l, &names()), ok, "{l:?}");
            assert_eq!(
                forwarded_body(&l).as_deref(),
                Some(r#"{"type":"send_ok","in_reply_to":3,"offset":5}"#),
                "{l:?}"
            );
        }
        let l = r#"[["src","n0"],["dest","c3"],["body",{"type":"send_ok","in_reply_to":3,"offset":5}]] ]"#;
        assert_eq!(parse_line(l, &names()), ok, "{l:?}");
        // Its factory lets control characters through unescaped in strings.
        let l = "{\"src\":\"n0\",\"dest\":\"c3\",\"body\":{\"type\":\"poll_ok\",\"in_reply_to\":3,\"msgs\":{\"k\\\"\t\":[[0,\"a\tb\u{0}\"]]}}}";
        assert_eq!(
            polled(l)[1],
            vec![(
                "k\"\t".to_owned(),
                vec![(0, RawMsg::Other(r#""a\tb\u0000""#.into()))]
            )],
            "{l:?}"
        );
        let l = "{\"src\":\"n0\",\"dest\":\"n1\",\"body\":{\"type\":\"x\ty\"}}";
        assert_eq!(
            parse_line(l, &names()),
            Ok(Inbound::Other {
                dest: Dest::Node(1)
            })
        );
        assert_eq!(forwarded_body(l).as_deref(), Some(r#"{"type":"x\u0009y"}"#));
        // What it refuses stays refused: a carriage return ends its line; a first value
        // that is not a map; a control character outside a string; a broken first value.
        for l in [
            "{\"src\":\"n0\",\"dest\":\"c3\",\"body\":{\"type\":\"a\rb\",\"in_reply_to\":3}}"
                .to_owned(),
            "3 x".to_owned(),
            "\"x\" {}".to_owned(),
            format!("{}\u{1}}}", &send[..send.len() - 1]),
            format!("{}x", &send[..send.len() - 2]),
        ] {
            assert!(parse_line(&l, &names()).is_err(), "{l:?}");
        }
    }

    /// Found by the `node_lines` fuzz target: each reading made its own map of the
    /// committed offsets, and listed them in that map's random order.
    #[test]
    fn committed_offsets_are_listed_in_one_order_on_every_path() {
        let offsets: Vec<String> = (0..32).map(|k| format!(r#""{k}":{k}"#)).collect();
        let body = format!(
            r#"{{"type":"list_committed_offsets_ok","in_reply_to":3,"offsets":{{{}}}}}"#,
            offsets.join(",")
        );
        // As written, and with a control character serde_json refuses in a key.
        for body in [body.clone(), body.replacen("\"31\"", "\"3\u{1}1\"", 1)] {
            let l = format!(r#"{{"src":"n0","dest":"c3","body":{body}}}"#);
            let (a, b) = (parse_line(&l, &names()), parse_line_slow(&l, &names()));
            assert_eq!(a, b, "{l:?}");
            let Ok(Inbound::Reply {
                reply: Reply::ListCommittedOffsetsOk { offsets },
                ..
            }) = a
            else {
                panic!("{a:?}")
            };
            assert!(offsets.is_sorted(), "{offsets:?}");
        }
    }

    #[test]
    fn a_key_without_pairs_may_be_null() {
        // The schema of a key's pairs is a vector, which Maelstrom's schema library lets
        // `null` through; its client then reads nothing from that key.
        assert_eq!(
            polled(&poll_line(r#"{"k":null,"j":[[0,1]]}"#))[0],
            vec![
                ("k".to_owned(), vec![]),
                ("j".to_owned(), vec![(0, RawMsg::Int(1))])
            ]
        );
    }

    /// A node's line, mostly in the shape nodes write, with every kind of deviation mixed
    /// in: envelope and body keys in any order, written twice, unknown or escaped;
    /// strings with escapes and control characters; integers signed, huge, with leading
    /// zeros, as floats or strings; every reply type; `msgs` as the differential test of
    /// poll replies makes it.
    fn generated_line(rng: &mut fastrand::Rng) -> String {
        fn pick<'a>(
            rng: &mut fastrand::Rng,
            odd: bool,
            usual: &'a str,
            all: &[&'a str],
        ) -> &'a str {
            if odd {
                all[rng.usize(..all.len())]
            } else {
                usual
            }
        }
        let ws = |rng: &mut fastrand::Rng| [" ", "", "", "", "\t", "\r\n "][rng.usize(..6)];
        // Three lines in four keep to the shape (their `msgs` aside).
        let clean = rng.u8(..4) != 0;
        let odd = |rng: &mut fastrand::Rng| !clean && rng.u8(..4) == 0;
        const INTS: [&str; 12] = [
            "3",
            "0",
            "-0",
            "-1",
            "03",
            "1.0",
            "1e2",
            "\"3\"",
            "null",
            "9223372036854775807",
            "9223372036854775808",
            "18446744073709551617",
        ];
        let ty = if clean {
            ["\"poll_ok\"", "\"send_ok\"", "\"commit_offsets_ok\""][rng.usize(..3)]
        } else {
            [
                "\"poll_ok\"",
                "\"send_ok\"",
                "\"commit_offsets_ok\"",
                "\"error\"",
                "\"init_ok\"",
                "\"poll\\u005fok\"",
                "\"list_committed_offsets_ok\"",
                "7",
            ][rng.usize(..8)]
        };
        let mut body: Vec<(String, String)> = vec![("type".into(), ty.into())];
        let o = odd(rng);
        body.push(("in_reply_to".into(), pick(rng, o, "3", &INTS).into()));
        if rng.bool() {
            let o = odd(rng);
            body.push(("msg_id".into(), pick(rng, o, "9", &INTS).into()));
        }
        match ty {
            "\"send_ok\"" => {
                let o = odd(rng);
                body.push(("offset".into(), pick(rng, o, "12", &INTS).into()));
            }
            "\"poll_ok\"" => {
                body.push(("msgs".into(), crate::polled::tests::generated(rng)));
            }
            _ => {}
        }
        if odd(rng) {
            let (k, v) = [
                ("offset", "4"),
                ("msgs", "{}"),
                ("x", "1"),
                ("code", "11"),
                ("type", "\"send_ok\""),
            ][rng.usize(..5)];
            body.push((k.into(), v.into()));
        }
        if odd(rng) && !body.is_empty() {
            let i = rng.usize(..body.len());
            let dup = body[i].clone();
            body.push(dup);
        }
        rng.shuffle(&mut body);
        let object = |rng: &mut fastrand::Rng, entries: &[(String, String)]| {
            let mut s = String::from("{");
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                s.push_str(ws(rng));
                s.push('"');
                s.push_str(k);
                s.push('"');
                s.push_str(ws(rng));
                s.push(':');
                s.push_str(ws(rng));
                s.push_str(v);
                s.push_str(ws(rng));
            }
            s.push('}');
            s
        };
        let body = object(rng, &body);
        let o = odd(rng);
        let src = pick(
            rng,
            o,
            "\"n0\"",
            &["\"n1\"", "\"c1\"", "\"n\\u0030\"", "\"n0\t\"", "5"],
        );
        let o = odd(rng);
        let dest = pick(
            rng,
            o,
            "\"c3\"",
            &["\"n1\"", "\"lin-kv\"", "\"c03\"", "\"c\\u0033\""],
        );
        let mut env: Vec<(String, String)> = vec![
            ("src".into(), src.into()),
            ("dest".into(), dest.into()),
            ("body".into(), body),
        ];
        if rng.bool() {
            let o = odd(rng);
            env.push(("id".into(), pick(rng, o, "41", &INTS).into()));
        }
        if odd(rng) {
            let i = rng.usize(..env.len());
            let dup = env[i].clone();
            env.push(dup);
        }
        if odd(rng) {
            env.remove(rng.usize(..env.len()));
        }
        rng.shuffle(&mut env);
        let mut line = object(rng, &env);
        if odd(rng) {
            line.push_str([" ", "x", "}", "{}"][rng.usize(..4)]);
        }
        line
    }

    /// The differential test of whole lines: every generated line, and each cut short and
    /// with a byte replaced, read by the one-pass reading, by `parse_line` and by the
    /// explaining path ([`crate::fuzz::one_line`] panics where they differ).
    #[test]
    fn one_pass_lines_read_as_the_explaining_path_reads_them() {
        let mut rng = fastrand::Rng::with_seed(16);
        let (mut lines, mut one_pass) = (0, 0);
        for _ in 0..20_000 {
            let line = generated_line(&mut rng);
            let mut variants = vec![line.clone()];
            let cut = rng.usize(..=line.len());
            if line.is_char_boundary(cut) {
                variants.push(line[..cut].to_owned());
            }
            let mut bytes = line.clone().into_bytes();
            let at = rng.usize(..bytes.len());
            bytes[at] = b"{}[],:\"-.0e \\1\t"[rng.usize(..15)];
            variants.push(String::from_utf8_lossy(&bytes).into_owned());
            for v in variants {
                lines += 1;
                one_pass += usize::from(crate::fuzz::one_line(v.as_bytes()));
            }
        }
        // Not vacuous: both paths are taken, often.
        assert!(
            one_pass > lines / 5,
            "{one_pass} of {lines} read in one pass"
        );
        assert!(
            one_pass < lines * 4 / 5,
            "{one_pass} of {lines} read in one pass"
        );
    }

    #[test]
    fn one_pass_edge_cases_read_alike() {
        let line = |body: &str| format!(r#"{{"src":"n0","dest":"c3","body":{body}}}"#);
        for (l, one_pass) in [
            (line(r#"{"type":"send_ok","in_reply_to":3,"offset":12}"#), true),
            (format!(" {} \r", line(r#" { "msg_id" : 9 , "offset":0,"type":"send_ok","in_reply_to":0 } "#)), true),
            (line(r#"{"type":"poll_ok","in_reply_to":3,"msgs":{"9":[[0,1],[2,2]],"":[]}}"#), true),
            (line(r#"{"type":"commit_offsets_ok","in_reply_to":3}"#), true),
            (r#"{"id":7,"body":{"in_reply_to":3,"type":"commit_offsets_ok"},"dest":"n1","src":"n1"}"#.to_owned(), true),
            // Left to serde: a key twice, leading zeros, signs, escapes, control
            // characters, numbers past i64, trailing text, other types, unknown keys.
            (line(r#"{"type":"send_ok","in_reply_to":3,"offset":12,"offset":1}"#), false),
            (line(r#"{"type":"send_ok","in_reply_to":03,"offset":12}"#), false),
            (line(r#"{"type":"send_ok","in_reply_to":3,"offset":012}"#), false),
            (line(r#"{"type":"poll_ok","in_reply_to":3,"msgs":{"9":[[00,1]]}}"#), false),
            (line(r#"{"type":"poll_ok","in_reply_to":3,"msgs":{"9":[[0,01]]}}"#), false),
            (line(r#"{"type":"send_ok","in_reply_to":-0,"offset":12}"#), false),
            (line(r#"{"type":"send_ok","in_reply_to":3,"offset":9223372036854775808}"#), false),
            (line(r#"{"type":"send_ok","in_reply_to":9223372036854775808,"offset":1}"#), false),
            (line("{\"type\":\"send_ok\",\"in_reply_to\":3,\"offset\":1,\"msg_id\":1.0}"), false),
            (line("{\"type\":\"send\tok\",\"in_reply_to\":3,\"offset\":1}"), false),
            (line("{\"type\":\"poll_ok\",\"in_reply_to\":3,\"msgs\":{\"a\tb\":[]}}"), false),
            (r#"{"src":"n\u0030","dest":"c3","body":{"type":"commit_offsets_ok","in_reply_to":3}}"#.to_owned(), false),
            (format!("{}x", line(r#"{"type":"commit_offsets_ok","in_reply_to":3}"#)), false),
            (format!("{}{{}}", line(r#"{"type":"commit_offsets_ok","in_reply_to":3}"#)), false),
            (line(r#"{"type":"init_ok","in_reply_to":3}"#), false),
            (line(r#"{"type":"commit_offsets_ok","in_reply_to":3,"x":1}"#), false),
            (r#"{"src":"c1","dest":"c3","body":{"type":"commit_offsets_ok","in_reply_to":3}}"#.to_owned(), false),
            (r#"{"src":"n0","body":{"type":"commit_offsets_ok","in_reply_to":3}}"#.to_owned(), false),
        ] {
            assert_eq!(crate::fuzz::one_line(l.as_bytes()), one_pass, "{l}");
        }
    }

    #[test]
    fn encodes_requests() {
        let mut out = Vec::new();
        Encoder::start(&mut out, 1, "c2", "n0", "poll", 3)
            .offsets_field("offsets", [("9", 0), ("a\"b", 5)].into_iter())
            .finish();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["body"]["offsets"]["a\"b"], 5);
        assert_eq!(v["body"]["msg_id"], 3);
        assert!(out.ends_with(b"\n"));
    }
}
