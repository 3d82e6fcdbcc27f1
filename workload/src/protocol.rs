//! Wire format: encodes the requests clients send and validates every line a node prints.
//!
//! Validation follows Maelstrom (see `shared/maelstrom-kafka.md` §1.3, §2, §3):
//! the envelope is a closed schema (`src`, `dest`, `body`, optional integer `id`), and each
//! `*_ok` reply body is a closed schema too (its fields, `type`, integer `in_reply_to`,
//! optional integer `msg_id`; no extra keys, no nulls, no floats where integers are due).
//! Error bodies are not schema-checked, exactly as Maelstrom's client throws on
//! `"type": "error"` before it validates anything.

use std::io::Write as _;

use serde_json::{Map, Value};

/// Where a node's message is going.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    /// A client `c<N>`.
    Client(u64),
    /// One of the nodes under test, by index into `node_ids`.
    Node(usize),
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
        msgs: RawPolled,
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
    /// A schema-valid envelope whose body cannot answer anything (no integer `in_reply_to`,
    /// or not a map). Node-to-node traffic lands here and is routed by `dest`.
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
}

impl Names {
    pub fn new(node_ids: Vec<String>) -> Self {
        Names { node_ids }
    }

    pub fn dest(&self, name: &str) -> Dest {
        if let Some(i) = self.node_ids.iter().position(|n| n == name) {
            return Dest::Node(i);
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
}

/// Parses and validates one stdout line of node `me`.
///
/// Any `Err` is fatal for that node's stdout, as in Maelstrom. `src` must be a node on the
/// network; `dest` is returned as-is and the caller decides whether it is registered
/// (clients come and go, which this function cannot know).
pub fn parse_line(line: &str, names: &Names) -> Result<Inbound, InvalidLine> {
    let value: Value = serde_json::from_str(line)
        .map_err(|e| InvalidLine(format!("stdout line is not JSON ({e})")))?;
    let Value::Object(mut env) = value else {
        return Err(InvalidLine("stdout line is not a JSON object".into()));
    };
    for k in env.keys() {
        if !matches!(k.as_str(), "src" | "dest" | "body" | "id") {
            return Err(InvalidLine(format!(
                "envelope has disallowed key {k:?} (allowed: src, dest, body, id)"
            )));
        }
    }
    if let Some(id) = env.get("id")
        && !is_int(id)
    {
        return Err(InvalidLine(format!("envelope id {id} is not an integer")));
    }
    let src = match env.get("src") {
        Some(Value::String(s)) => s.clone(),
        Some(v) => return Err(InvalidLine(format!("envelope src {v} is not a string"))),
        None => return Err(InvalidLine("envelope is missing src".into())),
    };
    let dest = match env.get("dest") {
        Some(Value::String(s)) => names.dest(s),
        Some(v) => return Err(InvalidLine(format!("envelope dest {v} is not a string"))),
        None => return Err(InvalidLine("envelope is missing dest".into())),
    };
    let Some(body) = env.remove("body") else {
        return Err(InvalidLine("envelope is missing body".into()));
    };
    if !matches!(names.dest(&src), Dest::Node(_)) {
        return Err(InvalidLine(format!(
            "Invalid src for message: {src:?} is not a node"
        )));
    }
    let Value::Object(body) = body else {
        return Ok(Inbound::Other { dest });
    };
    let Some(in_reply_to) = body.get("in_reply_to").and_then(Value::as_u64) else {
        // Maelstrom's client compares in_reply_to with Clojure `=`: 3.0 or "3" never match.
        return Ok(Inbound::Other { dest });
    };
    Ok(Inbound::Reply {
        dest,
        in_reply_to,
        reply: classify(body),
    })
}

fn is_int(v: &Value) -> bool {
    v.is_i64() || v.is_u64()
}

fn compact(body: &Map<String, Value>) -> Box<str> {
    serde_json::to_string(body)
        .unwrap_or_default()
        .into_boxed_str()
}

/// Checks a reply body against the closed schema its `type` names.
fn classify(body: Map<String, Value>) -> Reply {
    let malformed = |reason: String, body: &Map<String, Value>| Reply::Malformed {
        reason,
        body: compact(body),
    };
    let ty = match body.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(v) => return malformed(format!("type {v} is not a string"), &body),
        None => return malformed("missing type".into(), &body),
    };
    if ty == "error" {
        let code = body.get("code").and_then(Value::as_i64);
        return Reply::Error {
            code,
            body: compact(&body),
        };
    }
    let fields: &[&str] = match ty {
        "init_ok" => return Reply::InitOk,
        "send_ok" => &["offset"],
        "poll_ok" => &["msgs"],
        "commit_offsets_ok" => &[],
        "list_committed_offsets_ok" => &["offsets"],
        other => return malformed(format!("unexpected reply type {other:?}"), &body),
    };
    for (k, v) in &body {
        let known =
            matches!(k.as_str(), "type" | "in_reply_to" | "msg_id") || fields.contains(&k.as_str());
        if !known {
            return malformed(format!("disallowed key {k:?} in {ty}"), &body);
        }
        if k == "msg_id" && !is_int(v) {
            return malformed(format!("msg_id {v} is not an integer"), &body);
        }
    }
    for f in fields {
        if !body.contains_key(*f) {
            return malformed(format!("{ty} is missing required key {f:?}"), &body);
        }
    }
    let res = match ty {
        "send_ok" => int_field(&body["offset"], "offset").map(|offset| Reply::SendOk { offset }),
        "poll_ok" => parse_msgs(&body["msgs"]).map(|msgs| Reply::PollOk { msgs }),
        "commit_offsets_ok" => Ok(Reply::CommitOffsetsOk),
        _ => {
            parse_offsets(&body["offsets"]).map(|offsets| Reply::ListCommittedOffsetsOk { offsets })
        }
    };
    res.unwrap_or_else(|reason| malformed(reason, &body))
}

fn int_field(v: &Value, what: &str) -> Result<i64, String> {
    match v {
        Value::Number(n) if n.is_i64() => Ok(n.as_i64().unwrap_or_default()),
        Value::Number(n) if n.is_u64() => Err(format!("{what} {n} is out of range")),
        v => Err(format!("{what} {v} is not an integer")),
    }
}

fn parse_msgs(v: &Value) -> Result<RawPolled, String> {
    let Value::Object(map) = v else {
        return Err(format!("msgs {v} is not a map"));
    };
    let mut out = Vec::with_capacity(map.len());
    for (k, pairs) in map {
        let Value::Array(pairs) = pairs else {
            return Err(format!("msgs[{k:?}] = {pairs} is not an array"));
        };
        let mut parsed = Vec::with_capacity(pairs.len());
        for p in pairs {
            match p.as_array().map(Vec::as_slice) {
                Some([o, m]) => parsed.push((int_field(o, "offset")?, raw_msg(m))),
                _ => {
                    return Err(format!(
                        "msgs[{k:?}] element {p} is not an [offset, msg] pair"
                    ));
                }
            }
        }
        out.push((k.clone(), parsed));
    }
    Ok(out)
}

fn parse_offsets(v: &Value) -> Result<Vec<(String, i64)>, String> {
    let Value::Object(map) = v else {
        return Err(format!("offsets {v} is not a map"));
    };
    map.iter()
        .map(|(k, o)| Ok((k.clone(), int_field(o, "offset")?)))
        .collect()
}

fn raw_msg(v: &Value) -> RawMsg {
    match v.as_i64() {
        Some(i) if !v.is_f64() => RawMsg::Int(i),
        _ => RawMsg::Other(
            serde_json::to_string(v)
                .unwrap_or_default()
                .into_boxed_str(),
        ),
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
        let _ = write!(out, "{{\"id\":{id},\"src\":");
        write_str(out, src);
        out.extend_from_slice(b",\"dest\":");
        write_str(out, dest);
        out.extend_from_slice(b",\"body\":{\"type\":");
        write_str(out, ty);
        let _ = write!(out, ",\"msg_id\":{msg_id}");
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
            let _ = write!(self.out, ":{o}");
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

/// Writes `s` as a JSON string. Keys we generate are digits, so the fast path is a copy.
fn write_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
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
        assert_eq!(msgs.len(), 2);
        let nine = msgs.iter().find(|(k, _)| k == "9").unwrap();
        assert_eq!(
            nine.1,
            vec![(0, RawMsg::Int(1)), (1, RawMsg::Other("2.5".into()))]
        );
    }

    #[test]
    fn rejects_extra_null_and_float_fields() {
        let bad = [
            r#"{"src":"n0","dest":"c3","body":{"type":"send_ok","in_reply_to":3,"offset":12,"extra":1}}"#,
            r#"{"src":"n0","dest":"c3","body":{"type":"send_ok","in_reply_to":3,"offset":null}}"#,
            r#"{"src":"n0","dest":"c3","body":{"type":"send_ok","in_reply_to":3,"offset":1.0}}"#,
            r#"{"src":"n0","dest":"c3","body":{"type":"poll_ok","in_reply_to":3,"msgs":{"1":null}}}"#,
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
            parse_line(r#"{"src":"n0","dest":"lin-kv","body":3}"#, &names()),
            Ok(Inbound::Other {
                dest: Dest::Unknown("lin-kv".into())
            })
        );
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
