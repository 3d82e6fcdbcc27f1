//! `kafka-workload check PATH`: judges a stored history again without running anything.
//!
//! PATH is a run directory or a history file:
//! * ours: a run directory (`store/kafka/<time>/`, `store/latest`) or its `history.jsonl`.
//!   The run's `results.json` beside it gives what the history does not hold: the command
//!   line (so the summary and `results.json`'s `test` map are the run's own), the message
//!   counts, CPU, node faults and crashes, and the phase boundaries. Everything judged
//!   (the kafka checker, stats, availability, the lag, latencies and throughput) is
//!   computed afresh from the history, so a newer checker can re-judge an old run.
//! * Maelstrom's (Jepsen's): a `history.edn`, or the directory holding one, one operation
//!   a line as `prn` writes it, a plain map or a `#jepsen.history.Op{…}` record. Options,
//!   nodes, network and CPU are then unknown, and the summary says so.
//!
//! The results go where `test` puts them: a new run directory in the store (`--store`,
//! default `store`), published as `latest`, with the same `results.json`, `results.edn`,
//! plots, `timeline.html` and `index.html`, plus the judged history as `history.jsonl`;
//! the summary and the verdict line go to stdout and the exit code is the verdict's. A
//! Maelstrom user finds them as after `maelstrom test`, and `kafka-workload serve` lists
//! them; the judged run's own files are never rewritten.
//!
//! How Jepsen's shapes map onto ours:
//! * keys: an integer `9`, a keyword `:x` and a string `"x"` become the keys `"9"`, `"x"`,
//!   `"x"`; values: integers stay integers, a keyword `:a` becomes the string `"a"` (so `:a`
//!   and `"a"` are one value here), anything else is compared as its JSON form.
//! * `:subscribe` is read as `:assign`; `[:poll]` in an `:ok` completion is an empty read.
//! * a value of several micro-ops (a transaction, `:txn? true`) is judged as its micro-ops
//!   one after another by the same process: Maelstrom never writes one, and the checker
//!   judges single-op histories, so such a history's verdict is at best unknown, with a
//!   `multi-op-transaction` entry naming the first (see [`TXN`]).
//! * nemesis operations (process `:nemesis`) only mark partitions on the plots.
//! * operations are numbered again, client operations only, from 0.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::checker::{Anomaly, Validity};
use crate::cli::{self, CheckOpts, Config};
use crate::edn::{Edn, read};
use crate::error::Error;
use crate::history::{Event, History, KeyId, KeyRead, MsgId, OpType, OpValue, Pairs};
use crate::network::{Counts, NetStats};
use crate::node::Exit;
use crate::polled::Cursor;
use crate::protocol::RawMsg;
use crate::runner::{NodeFault, Outcome, Timeline};

/// The anomaly name a multi-op transaction is reported under: not Jepsen's (it has none,
/// since its checker takes them), ours, to say why the verdict is unknown.
pub const TXN: &str = "multi-op-transaction";

/// Judges `opts.path` and writes the results to a new run directory of `opts.store`.
pub fn run(opts: &CheckOpts, out: &mut impl Write) -> Result<Validity, Error> {
    let loaded = load(&opts.path)?;
    let dir = crate::new_run_dir(&opts.store)?;
    let note = format!("\nJudged from {}\n", loaded.source.display());
    crate::judge_and_write_with(
        &loaded.cfg,
        &loaded.outcome,
        &opts.store,
        &dir,
        &note,
        out,
        |w| mark_transactions(w, &loaded.txns),
    )
}

/// A stored history, ready to be judged as a run's outcome.
#[derive(Debug)]
pub struct Loaded {
    /// The history file read.
    pub source: PathBuf,
    pub cfg: Config,
    pub outcome: Outcome,
    /// Multi-op transactions seen: (the first one's line, how many).
    pub txns: Option<(usize, usize)>,
}

/// Reads what `check` judges from `path` (see the module docs).
pub fn load(path: &Path) -> Result<Loaded, Error> {
    let file = if path.is_dir() {
        ["history.jsonl", "history.edn"]
            .iter()
            .map(|f| path.join(f))
            .find(|f| f.is_file())
            .ok_or_else(|| Error::History {
                path: path.to_owned(),
                line: 0,
                what: "no history.jsonl or history.edn in this directory".into(),
            })?
    } else {
        path.to_owned()
    };
    // Read a line at a time: a long run's history.jsonl is several times the history it
    // holds (about 470 bytes an operation against the records' 96), and reading it whole
    // before building the history had `check` peak at the file and the history together.
    let io_err = |source| Error::Io {
        what: "reading the history",
        path: file.clone(),
        source,
    };
    let mut reader = std::io::BufReader::with_capacity(1 << 20, File::open(&file).map_err(io_err)?);
    let err = |line: usize, what: String| Error::History {
        path: file.clone(),
        line,
        what,
    };
    let mut builder = Builder::default();
    // JSON or EDN, told by the name or else by the first line that is not blank.
    let mut json = None;
    // One buffer for every line (no allocation per line), its end of line cut as
    // `str::lines` cuts it: `\n`, or `\r\n`.
    let mut buf = String::new();
    for i in 0.. {
        buf.clear();
        if reader.read_line(&mut buf).map_err(io_err)? == 0 {
            break;
        }
        let line = buf
            .strip_suffix('\n')
            .map_or(buf.as_str(), |l| l.strip_suffix('\r').unwrap_or(l));
        if line.trim().is_empty() {
            continue;
        }
        let edn_value;
        let (op, value) = if *json.get_or_insert_with(|| is_json_lines(&file, line)) {
            json_op(line).map_err(|e| err(i + 1, e))?
        } else {
            let forms = read::read_all(line).map_err(|e| err(i + 1, format!("not EDN: {e}")))?;
            let op = match forms.as_slice() {
                [] => continue,
                [form] => to_json(form),
                _ => return Err(err(i + 1, "more than one operation on a line".into())),
            };
            edn_value = op.get("value").map(Value::to_string);
            (op, edn_value.as_deref().and_then(Json::parse))
        };
        builder
            .op(&op, value.as_ref(), i + 1)
            .map_err(|what| err(i + 1, what))?;
    }
    let json = json.unwrap_or_else(|| is_json_lines(&file, ""));
    if builder.h.is_empty() {
        return Err(err(0, "no client operations".into()));
    }
    let results = file
        .parent()
        .map(|d| d.join("results.json"))
        .filter(|_| json)
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str::<Value>(&t).ok());
    let stored = results
        .as_ref()
        .and_then(|r| stored_config(r).map(|c| (r, c)));
    let (cfg, outcome) = match stored {
        Some((r, cfg)) => {
            let outcome = stored_outcome(r, builder.h, &builder.partitions);
            (cfg, outcome)
        }
        None => foreign(&file, builder.h, &builder.partitions),
    };
    Ok(Loaded {
        source: file,
        cfg,
        outcome,
        txns: builder.txns,
    })
}

/// One line of `history.jsonl`: every field but `value` as a `Value`, and `value` as
/// [`Json`], whose messages are read from their text as the runner read them from the
/// node (a `Value` would round an integer past u64 and refuses `1e400`, which the runner
/// writes for infinity). A key written twice holds the value written last.
fn json_op(line: &str) -> Result<(Value, Option<Json<'_>>), String> {
    let Some(entries) = crate::protocol::entries(line) else {
        // Not an object: the error, or, for other JSON, what the builder skips.
        return match serde_json::from_str::<serde::de::IgnoredAny>(line) {
            Err(e) => Err(format!("not JSON: {e}")),
            Ok(_) => Ok((serde_json::from_str(line).unwrap_or(Value::Null), None)),
        };
    };
    let mut op = serde_json::Map::new();
    let mut value = None;
    for (k, v) in entries {
        if k == "value" {
            value = Some(v.get());
        } else {
            let v = serde_json::from_str(v.get()).map_err(|e| format!("{k}: not JSON: {e}"))?;
            op.insert(k.into_owned(), v);
        }
    }
    let value = value.and_then(Json::parse);
    Ok((Value::Object(op), value))
}

/// A JSON value with the text of each of its parts, read from text serde_json has taken.
#[derive(Debug)]
struct Json<'a> {
    text: &'a str,
    kind: Kind<'a>,
}

#[derive(Debug)]
enum Kind<'a> {
    Array(Vec<Json<'a>>),
    /// Entries as written.
    Object(Vec<(String, Json<'a>)>),
    /// A string, number, boolean or null.
    Scalar,
}

impl<'a> Json<'a> {
    /// `None` if `text` is not one JSON value.
    fn parse(text: &'a str) -> Option<Self> {
        let mut c = Cursor::new(text);
        let v = Self::value(&mut c)?;
        c.at_end().then_some(v)
    }

    fn value(c: &mut Cursor<'a>) -> Option<Self> {
        c.skip_ws();
        let start = c.rest();
        let kind = match *start.as_bytes().first()? {
            b'[' => {
                c.expect(b'[')?;
                let mut items = Vec::new();
                if !c.eat(b']') {
                    loop {
                        items.push(Self::value(c)?);
                        if c.eat(b']') {
                            break;
                        }
                        c.expect(b',')?;
                    }
                }
                Kind::Array(items)
            }
            b'{' => {
                c.expect(b'{')?;
                let mut entries = Vec::new();
                if !c.eat(b'}') {
                    loop {
                        c.skip_ws();
                        let k = crate::protocol::string_token(c)?;
                        c.expect(b':')?;
                        entries.push((k, Self::value(c)?));
                        if c.eat(b'}') {
                            break;
                        }
                        c.expect(b',')?;
                    }
                }
                Kind::Object(entries)
            }
            b'"' => {
                crate::protocol::string_token(c)?;
                Kind::Scalar
            }
            _ => {
                let len = start
                    .bytes()
                    .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E' | b'a'..=b'z'))
                    .unwrap_or(start.len());
                c.at += len;
                Kind::Scalar
            }
        };
        let text = &start[..start.len() - c.rest().len()];
        Some(Json { text, kind })
    }

    fn as_array(&self) -> Option<&[Json<'a>]> {
        match &self.kind {
            Kind::Array(items) => Some(items),
            _ => None,
        }
    }

    /// A string's text, unescaped.
    fn as_str(&self) -> Option<String> {
        self.text
            .starts_with('"')
            .then(|| serde_json::from_str(self.text).ok())
            .flatten()
    }

    fn is(&self, s: &str) -> bool {
        self.as_str().is_some_and(|t| t == s)
    }

    fn as_i64(&self) -> Option<i64> {
        match self.msg() {
            RawMsg::Int(i) => Some(i),
            RawMsg::Other(_) => None,
        }
    }

    /// The value as a message, as the runner reads one from a node.
    fn msg(&self) -> RawMsg {
        crate::protocol::msg_of(self.text)
    }

    /// The value as a key: a string as itself, anything else as its text.
    fn key(&self) -> String {
        self.as_str().unwrap_or_else(|| self.text.to_owned())
    }
}

impl std::fmt::Display for Json<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text)
    }
}

/// Whether the history is JSON lines (ours) rather than EDN (Jepsen's): by the file's
/// extension, or else by its first line that is not blank.
fn is_json_lines(file: &Path, first: &str) -> bool {
    match file.extension().and_then(|e| e.to_str()) {
        Some("jsonl" | "json") => true,
        Some("edn") => false,
        _ => first.trim_start().starts_with("{\""),
    }
}

/// A read EDN form as JSON: keywords, symbols and characters become strings (a keyword
/// without its colon), sets and lists arrays, map keys strings, a tagged form its form.
pub fn to_json(e: &Edn) -> Value {
    match e {
        Edn::Nil => Value::Null,
        Edn::Bool(b) => Value::Bool(*b),
        Edn::Int(i) => i64::try_from(*i)
            .map(Value::from)
            .or_else(|_| u64::try_from(*i).map(Value::from))
            // Beyond JSON's integers: kept distinct as its digits.
            .unwrap_or_else(|_| Value::String(i.to_string())),
        Edn::Float(x) => json!(x),
        Edn::Float32(x) => json!(x),
        Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => Value::String(s.clone()),
        Edn::Char(c) => Value::String(c.to_string()),
        Edn::Vector(v) | Edn::List(v) | Edn::Set(v) => {
            Value::Array(v.iter().map(to_json).collect())
        }
        Edn::Map(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (key_text(&to_json(k)), to_json(v)))
                .collect(),
        ),
        Edn::Tagged(_, form) => to_json(form),
    }
}

/// A key (of a map, or a kafka key) as text: a string as itself, anything else as JSON.
fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Builds the history op by op.
#[derive(Default)]
struct Builder {
    h: History,
    /// Each process's open invocation: its time and, for a transaction, its micro-ops'
    /// text.
    open: HashMap<u64, (u64, Vec<String>)>,
    /// (start, heal) of each partition, from the nemesis's operations.
    partitions: Vec<(u64, u64)>,
    partition_start: Option<u64>,
    txns: Option<(usize, usize)>,
    last_time: u64,
    /// The last assign's keys, shared with the next assign of the same keys: a final
    /// phase's assigns all name every key.
    last_assign: crate::history::Keys,
}

impl Builder {
    fn op(&mut self, op: &Value, value: Option<&Json<'_>>, line: usize) -> Result<(), String> {
        let time = match op.get("time") {
            Some(t) => t
                .as_u64()
                .ok_or_else(|| format!(":time {t} is not a non-negative integer"))?,
            None => self.last_time,
        };
        self.last_time = time;
        let f = op.get("f").and_then(Value::as_str).unwrap_or("");
        let Some(process) = op.get("process").and_then(Value::as_u64) else {
            // The nemesis (or another non-client process): partitions only.
            self.nemesis(time, f, op, value);
            return Ok(());
        };
        if u32::try_from(process).is_err() {
            // The history keeps processes as u32 (see `Op`).
            return Err(format!(
                ":process {process} is out of range (at most {})",
                u32::MAX
            ));
        }
        let kind = match op.get("type").and_then(Value::as_str) {
            Some("invoke") => OpType::Invoke,
            Some("ok") => OpType::Ok,
            Some("fail") => OpType::Fail,
            Some("info") => OpType::Info,
            other => return Err(format!("unknown :type {other:?}")),
        };
        let error: Option<Box<str>> = op.get("error").map(|e| match e {
            Value::String(s) => s.as_str().into(),
            e => e.to_string().into(),
        });
        let error = error.as_deref();
        let null = Json {
            text: "null",
            kind: Kind::Scalar,
        };
        let value = value.unwrap_or(&null);
        match f {
            "crash" => self.h.push(time, process, kind, OpValue::Crash, error),
            "assign" | "subscribe" => {
                let keys: Vec<KeyId> = value
                    .as_array()
                    .map(|ks| ks.iter().map(|k| self.h.tables.key(&k.key())).collect())
                    .unwrap_or_default();
                if *self.last_assign != *keys {
                    self.last_assign = keys.into();
                }
                let keys = self.last_assign.clone();
                let seek = op.get("seek-to-beginning?") == Some(&Value::Bool(true));
                let v = OpValue::Assign {
                    keys,
                    seek_to_beginning: seek,
                };
                self.h.push(time, process, kind, v, error);
            }
            "send" | "poll" | "txn" => {
                let mops = value
                    .as_array()
                    .filter(|m| !m.is_empty())
                    .ok_or_else(|| format!(":value {value} is not a list of micro-ops"))?;
                self.mops(time, process, kind, mops, error, line)?;
            }
            other => return Err(format!("unknown :f {other:?}")),
        }
        Ok(())
    }

    /// A send or poll: one micro-op, or a transaction of several judged one by one (the
    /// first at the invocation, the rest invoked and completed at the completion).
    fn mops(
        &mut self,
        time: u64,
        process: u64,
        kind: OpType,
        mops: &[Json<'_>],
        error: Option<&str>,
        line: usize,
    ) -> Result<(), String> {
        if mops.len() > 1 {
            let (first, n) = self.txns.unwrap_or((line, 0));
            self.txns = Some((first, n + usize::from(kind == OpType::Invoke)));
        }
        if kind == OpType::Invoke {
            let v = self.mop(&mops[0], kind)?;
            // Only a transaction's later micro-ops are looked up at its completion.
            let later = mops.iter().skip(1).map(|m| m.text.to_owned()).collect();
            self.open.insert(process, (time, later));
            self.h.push(time, process, kind, v, None);
            return Ok(());
        }
        let invoked = self.open.remove(&process);
        let v = self.mop(&mops[0], kind)?;
        self.h.push(time, process, kind, v, error);
        let invoke_time = invoked.as_ref().map_or(time, |(t, _)| *t);
        for (i, m) in mops.iter().enumerate().skip(1) {
            let inv = invoked
                .as_ref()
                .and_then(|(_, ms)| ms.get(i - 1))
                .and_then(|t| Json::parse(t));
            let iv = self.mop(inv.as_ref().unwrap_or(m), OpType::Invoke)?;
            self.h.push(invoke_time, process, OpType::Invoke, iv, None);
            let v = self.mop(m, kind)?;
            self.h.push(time, process, kind, v, error);
        }
        Ok(())
    }

    /// One micro-op: `[:send k v]`, `[:send k [offset v]]`, `[:poll]` or `[:poll {k pairs}]`.
    fn mop(&mut self, m: &Json<'_>, kind: OpType) -> Result<OpValue, String> {
        let parts = m.as_array().unwrap_or_default();
        match parts {
            [f, k, v] if f.is("send") => {
                let key = self.h.tables.key(&k.key());
                let (offset, v) = match v.as_array() {
                    // A completion's `[offset v]`; an invocation's value is taken whole.
                    Some([o, v])
                        if kind != OpType::Invoke && (o.as_i64().is_some() || o.text == "null") =>
                    {
                        (o.as_i64(), v)
                    }
                    _ => (None, v),
                };
                let msg = self.h.tables.msg(&v.msg());
                Ok(OpValue::Send { key, offset, msg })
            }
            [f] if f.is("poll") => Ok(match kind {
                OpType::Ok => OpValue::Poll(Some(Box::default())),
                _ => OpValue::Poll(None),
            }),
            [
                f,
                Json {
                    kind: Kind::Object(reads),
                    ..
                },
            ] if f.is("poll") => {
                // Each key once, holding the pairs written last, in the keys' order.
                let reads: BTreeMap<&str, &Json<'_>> =
                    reads.iter().map(|(k, v)| (k.as_str(), v)).collect();
                let mut out: Vec<KeyRead> = Vec::with_capacity(reads.len());
                for (k, pairs) in reads {
                    let key = self.h.tables.key(k);
                    let pairs = pairs
                        .as_array()
                        .ok_or_else(|| format!("poll of {k}: {pairs} is not a list of pairs"))?;
                    let pairs = pairs
                        .iter()
                        .map(|p| self.pair(k, p))
                        .collect::<Result<Pairs, String>>()?;
                    // Shared as in a run, so re-judging a long history needs no more memory.
                    out.push(self.h.tables.read(key, pairs));
                }
                Ok(OpValue::Poll(Some(out.into())))
            }
            _ => Err(format!("unknown micro-op {m}")),
        }
    }

    fn pair(&mut self, k: &str, p: &Json<'_>) -> Result<(i64, MsgId), String> {
        match p.as_array() {
            Some([o, v]) => {
                let o = o
                    .as_i64()
                    .ok_or_else(|| format!("poll of {k}: offset {o} is not an integer"))?;
                Ok((o, self.h.tables.msg(&v.msg())))
            }
            _ => Err(format!("poll of {k}: {p} is not an [offset value] pair")),
        }
    }

    /// Jepsen's partitioner: `:start-partition` then `:stop-partition`, each an `:info`
    /// invocation and completion; a partition runs from the first start to the first stop.
    fn nemesis(&mut self, time: u64, f: &str, op: &Value, value: Option<&Json<'_>>) {
        let completion = op.get("type").and_then(Value::as_str) != Some("invoke");
        let name = match f {
            "start-partition" => "start-partition",
            "stop-partition" => "stop-partition",
            _ => return,
        };
        let value = value
            .and_then(|v| serde_json::from_str(v.text).ok())
            .unwrap_or(Value::Null);
        self.h.push_nemesis(time, name, value);
        if !completion {
            return;
        }
        match (name, self.partition_start) {
            ("start-partition", None) => self.partition_start = Some(time),
            ("stop-partition", Some(start)) => {
                self.partitions.push((start, time));
                self.partition_start = None;
            }
            _ => {}
        }
    }
}

/// The run's own config, from the command line `results.json` recorded.
fn stored_config(results: &Value) -> Option<Config> {
    let command = results["test"]["command"].as_str()?;
    cli::parse_args(shell_words(command)?).ok()
}

/// Splits a command line as `cli` quoted it: plain words, `'…'`, and `'\''` for a quote.
fn shell_words(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' if in_word => {
                words.push(std::mem::take(&mut word));
                in_word = false;
            }
            ' ' => {}
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(chars.next()?);
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

fn secs_to_ns(v: &Value) -> u64 {
    // Seconds as results.json wrote them (ns / 1e9): rounding recovers the ns exactly for
    // any run shorter than about a hundred days.
    (v.as_f64().unwrap_or(0.0) * 1e9).round() as u64
}

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// What the run measured that its history does not hold, from its `results.json`.
fn stored_outcome(r: &Value, history: History, partitions: &[(u64, u64)]) -> Outcome {
    let net = |p: &Value| Counts {
        sends: count(&p["send-count"]),
        recvs: count(&p["recv-count"]),
    };
    let tl = &r["timeline-seconds"];
    let faults = r["node"]["faults"]
        .as_array()
        .map(|fs| {
            fs.iter()
                .map(|f| NodeFault {
                    node: f["node"].as_str().unwrap_or("").to_owned(),
                    kind: f["kind"].as_str().unwrap_or("").to_owned().into(),
                    detail: f["detail"].as_str().unwrap_or("").to_owned(),
                    time: count(&f["time"]),
                })
                .collect()
        })
        .unwrap_or_default();
    let lines = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|ls| {
                ls.iter()
                    .filter_map(|l| l.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let exits = r["node"]["crashes"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| Exit {
                    name: c["node"].as_str().unwrap_or("").to_owned(),
                    crashed: Some(exit_status(c["status"].as_str().unwrap_or(""))),
                    stdout_tail: lines(&c["stdout-tail"]),
                    stderr_tail: lines(&c["stderr-tail"]),
                    held_open: Vec::new(),
                })
                .collect()
        })
        .unwrap_or_default();
    let node_cpu = r["cpu"]["node-seconds"]
        .as_object()
        .map(|m| m.values().map(Value::as_f64).collect())
        .unwrap_or_default();
    Outcome {
        history,
        net: NetStats {
            clients: net(&r["net"]["clients"]),
            servers: net(&r["net"]["servers"]),
            partitioned: count(&r["network"]["partitioned-messages"]),
        },
        dropped_replies: count(&r["network"]["dropped-replies"]),
        journal: Vec::new(),
        // Not stored: the run's page of a re-judged run has no server-message plot.
        server_sends: Vec::new(),
        faults,
        exits,
        setup_error: None,
        timeline: Timeline {
            main_start: secs_to_ns(&tl["main-start"]),
            main_end: secs_to_ns(&tl["main-end"]),
            final_start: secs_to_ns(&tl["final-start"]),
            final_end: secs_to_ns(&tl["final-end"]),
            end: secs_to_ns(&tl["end"]),
            partitions: partitions.to_vec(),
        },
        interrupted: None,
        runner_cpu: r["cpu"]["runner-seconds"].as_f64(),
        node_cpu,
    }
}

/// An exit status from its `Display` form (`exit status: 1`, `signal: 9 (SIGKILL)`), as
/// `results.json` records a crash.
fn exit_status(s: &str) -> std::process::ExitStatus {
    use std::os::unix::process::ExitStatusExt as _;
    let number = |t: &str| -> i32 {
        t.trim()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|d| d.parse().ok())
            .unwrap_or(0)
    };
    let raw = if let Some(code) = s.strip_prefix("exit status: ") {
        (number(code) & 0xff) << 8
    } else if let Some(sig) = s.strip_prefix("signal: ") {
        let core = if s.contains("core dumped") { 0x80 } else { 0 };
        (number(sig) & 0x7f) | core
    } else {
        0xff << 8
    };
    std::process::ExitStatus::from_raw(raw)
}

/// A history recorded elsewhere: no options, nodes, network or CPU, one phase spanning
/// every operation, and as many client threads as operations were ever open at once.
fn foreign(file: &Path, history: History, partitions: &[(u64, u64)]) -> (Config, Outcome) {
    let mut cfg = cli::parse_args(["kafka-workload", "test", "--bin", "-", "--seed", "0"])
        .unwrap_or_else(|(_, e)| unreachable!("fixed arguments parse: {e}"));
    cfg.node_ids = Vec::new();
    cfg.opts.rate = f64::NAN;
    cfg.opts.time_limit = f64::NAN;
    cfg.command = format!(
        "kafka-workload check {}",
        shell_quote_path(&file.display().to_string())
    );
    let (mut open, mut most) = (0usize, 0usize);
    let mut busy: HashMap<u32, bool> = HashMap::new();
    // The first and the last line's times.
    let (mut first, mut last) = (None, 0);
    for event in history.events() {
        let (op, invoked, time) = match event {
            Event::Invoked(op) => (op, true, history.invoked_at(op).map_or(op.time, |t| t.0)),
            Event::Completed(op) => (op, false, op.time),
        };
        first.get_or_insert(time);
        last = time;
        let was = busy.insert(op.process, invoked) == Some(true);
        match (invoked, was) {
            (true, false) => open += 1,
            (false, true) => open -= 1,
            _ => {}
        }
        most = most.max(open);
    }
    cfg.concurrency = most.max(1);
    let first = first.unwrap_or(0);
    // The history's own number: at u64's top there is no "just after" to end the run at.
    let last = last.saturating_add(1);
    let outcome = Outcome {
        history,
        net: NetStats::default(),
        dropped_replies: 0,
        journal: Vec::new(),
        server_sends: Vec::new(),
        faults: Vec::new(),
        exits: Vec::new(),
        setup_error: None,
        timeline: Timeline {
            main_start: first,
            main_end: last,
            final_start: last,
            final_end: last,
            end: last,
            partitions: partitions.to_vec(),
        },
        interrupted: None,
        runner_cpu: None,
        node_cpu: Vec::new(),
    };
    (cfg, outcome)
}

fn shell_quote_path(p: &str) -> String {
    if !p.is_empty()
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./=:,@%+".contains(c))
    {
        p.to_owned()
    } else {
        format!("'{}'", p.replace('\'', r"'\''"))
    }
}

/// A history with multi-op transactions: the checker judged their micro-ops one by one,
/// which is not how Jepsen judges a transaction, so the verdict is at best unknown.
fn mark_transactions(w: &mut crate::checker::WorkloadResult, txns: &Option<(usize, usize)>) {
    let Some((line, n)) = *txns else {
        return;
    };
    w.errors.insert(
        TXN,
        Anomaly {
            count: n,
            examples: vec![json!({
                "line": line,
                "why": "Maelstrom runs Jepsen's kafka checker without transactions (:txn? false); this checker judges single-op histories and split each transaction into its micro-ops",
            })],
        },
    );
    if w.valid == Validity::True {
        w.valid = Validity::Unknown;
    }
}

/// Counts of each anomaly kind, for tests and comparisons.
pub fn kinds(w: &Value) -> BTreeMap<String, u64> {
    w["errors"]
        .as_object()
        .map(|e| {
            e.iter()
                .map(|(k, v)| (k.clone(), v["count"].as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `text` to a fresh file named `name` and loads it.
    /// `loaded`'s history as `write_jsonl` writes it.
    fn written_again(loaded: &Loaded) -> String {
        let mut out = Vec::new();
        loaded.outcome.history.write_jsonl(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn load_text(name: &str, text: &str) -> Result<Loaded, Error> {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("check-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let loaded = load(&path);
        let _ = std::fs::remove_dir_all(&dir);
        loaded
    }

    #[test]
    fn command_lines_split_as_cli_quotes_them() {
        assert_eq!(
            shell_words(r"kafka-workload test --bin 'it'\''s' --seed 3 -- 'a b' ''"),
            Some(
                [
                    "kafka-workload",
                    "test",
                    "--bin",
                    "it's",
                    "--seed",
                    "3",
                    "--",
                    "a b",
                    ""
                ]
                .map(String::from)
                .to_vec()
            )
        );
        assert_eq!(shell_words("a 'unclosed"), None);
    }

    #[test]
    fn exit_statuses_read_back_from_their_display() {
        for raw in [3 << 8, 255 << 8, 9, 6 | 0x80] {
            use std::os::unix::process::ExitStatusExt as _;
            let status = std::process::ExitStatus::from_raw(raw);
            assert_eq!(exit_status(&status.to_string()), status, "{status}");
        }
    }

    /// The loader reads a line at a time: CRLF line ends, blank lines (leading ones too), no
    /// newline after the last line and a name without an extension (JSON told by the first
    /// line that is not blank) read as the plain file does.
    #[test]
    fn a_history_read_a_line_at_a_time_ignores_line_ends_and_blank_lines() {
        use crate::protocol::RawMsg;
        let mut h = History::default();
        let k = h.tables.key("k");
        let m = h.tables.msg(&RawMsg::Int(1));
        let send = |offset| OpValue::Send {
            key: k,
            offset,
            msg: m,
        };
        h.push(1, 0, OpType::Invoke, send(None), None);
        h.push(2, 0, OpType::Ok, send(Some(0)), None);
        h.push(3, 1, OpType::Invoke, OpValue::Poll(None), None);
        let reads: crate::history::PollResult = vec![h.tables.read(k, vec![(0, m)].into())].into();
        h.push(4, 1, OpType::Ok, OpValue::Poll(Some(reads)), None);
        let mut written = Vec::new();
        h.write_jsonl(&mut written).unwrap();
        let text = String::from_utf8(written).unwrap();
        assert_eq!(
            written_again(&load_text("history.jsonl", &text).unwrap()),
            text
        );
        let crlf = format!("\r\n  \n{}", text.trim_end().replace('\n', "\r\n\r\n"));
        assert_eq!(written_again(&load_text("history", &crlf).unwrap()), text);
        // A line that is not JSON is named by its number, blank lines counted.
        let broken = format!("{}\n\n{{\"index\":", text);
        let Err(Error::History { line, .. }) = load_text("history.jsonl", &broken) else {
            panic!("a broken last line is an error");
        };
        assert_eq!(line, text.lines().count() + 3);
    }

    /// The compact record (`Op`: process and index as u32, errors, keys, values and reads
    /// interned and shared) keeps everything `history.jsonl` says: a history with every
    /// field at its edges, written, read back and written again, is the same text.
    #[test]
    fn a_written_history_reads_back_to_the_same_text() {
        use crate::protocol::RawMsg;
        let mut h = History::default();
        let (k, j) = (h.tables.key("k1"), h.tables.key("odd \"key\""));
        let m = h.tables.msg(&RawMsg::Int(7));
        let neg = h.tables.msg(&RawMsg::Int(-3));
        let float = h.tables.msg(&RawMsg::Other("1.5".into()));
        let top = u64::from(u32::MAX);
        let send = |key, offset, msg| OpValue::Send { key, offset, msg };
        h.push(1, 0, OpType::Invoke, send(k, None, m), None);
        h.push(2, 0, OpType::Ok, send(k, Some(i64::MIN), m), None);
        h.push(3, top, OpType::Invoke, send(j, None, neg), None);
        h.push(4, top, OpType::Info, send(j, None, neg), Some("timeout"));
        h.push(5, 7, OpType::Invoke, send(j, None, float), None);
        h.push(
            6,
            7,
            OpType::Fail,
            send(j, None, float),
            Some("error {\"code\":11}"),
        );
        h.push(7, 1, OpType::Invoke, OpValue::Poll(None), None);
        let run = h.tables.read(k, vec![(0, m), (1, neg)].into());
        let same = h.tables.read(k, vec![(0, m), (1, neg)].into());
        let gap = h.tables.read(j, vec![(5, float), (3, m), (3, m)].into());
        let reads: crate::history::PollResult = vec![run, gap].into();
        h.push(8, 1, OpType::Ok, OpValue::Poll(Some(reads)), None);
        h.push(9, 1, OpType::Invoke, OpValue::Poll(None), None);
        let reads: crate::history::PollResult = vec![same].into();
        h.push(9, 1, OpType::Ok, OpValue::Poll(Some(reads)), None);
        h.push(9, 1, OpType::Invoke, OpValue::Poll(None), None);
        h.push(10, 1, OpType::Info, OpValue::Poll(None), Some("timeout"));
        let keys: crate::history::Keys = std::sync::Arc::new(vec![j, k]);
        for (seek_to_beginning, kind) in [(false, OpType::Fail), (true, OpType::Ok)] {
            let v = OpValue::Assign {
                keys: keys.clone(),
                seek_to_beginning,
            };
            h.push(11, 2, OpType::Invoke, v.clone(), None);
            h.push(12, 2, kind, v, None);
        }
        h.push(1 << 50, 3, OpType::Invoke, OpValue::Crash, None);
        h.push(
            1 << 50,
            3,
            OpType::Info,
            OpValue::Crash,
            Some("[\"node-crashed\",\"n1\"]"),
        );
        let mut written = Vec::new();
        h.write_jsonl(&mut written).unwrap();
        let text = String::from_utf8(written).unwrap();
        let loaded = load_text("history.jsonl", &text).unwrap();
        let mut again = Vec::new();
        loaded.outcome.history.write_jsonl(&mut again).unwrap();
        assert_eq!(String::from_utf8(again).unwrap(), text);
        assert!(text.contains(r#""process":4294967295"#), "{text}");
        // Each op kept its own error text.
        let errors: Vec<String> = text
            .lines()
            .filter_map(|l| {
                Some(
                    serde_json::from_str::<Value>(l).ok()?["error"]
                        .as_str()?
                        .to_owned(),
                )
            })
            .collect();
        assert_eq!(
            errors,
            [
                "timeout",
                "error {\"code\":11}",
                "timeout",
                "[\"node-crashed\",\"n1\"]"
            ]
        );
        // Processes beyond what the record holds are refused, not wrapped.
        let beyond = text.replace("4294967295", "4294967296");
        let Err(e) = load_text("history.jsonl", &beyond) else {
            panic!("a process above u32::MAX was accepted");
        };
        assert!(e.to_string().contains("out of range"), "{e}");
    }

    /// The history keeps one record an operation; `history.jsonl` still holds both lines
    /// of each, in their order. A stored history with ops open across others' completions,
    /// a wait longer than 4.3 s, a completion before its invocation's time, a crash, a
    /// completion with no invocation, a process that invoked twice, invocations that say
    /// more than their completions imply, nemesis lines and ops never completed, read
    /// and written again: the same bytes.
    #[test]
    fn interleaved_unfinished_and_odd_ops_are_written_back_byte_for_byte() {
        let text = r#"{"index":0,"time":10,"process":0,"type":"invoke","f":"send","value":[["send","1",5]]}
{"index":1,"time":11,"process":1,"type":"invoke","f":"poll","value":[["poll"]]}
{"index":2,"time":12,"process":2,"type":"invoke","f":"assign","value":["1","2"]}
{"index":3,"time":13,"process":1,"type":"ok","f":"poll","value":[["poll",{"1":[[0,5],[1,6]],"2":[[4,1],[2,1]]}]]}
{"f":"start-partition","process":"nemesis","time":14,"type":"info","value":"majority"}
{"index":4,"time":20000000000,"process":0,"type":"ok","f":"send","value":[["send","1",[0,5]]]}
{"index":5,"time":21000000000,"process":3,"type":"invoke","f":"crash","value":null}
{"index":6,"time":21000000000,"process":3,"type":"info","f":"crash","value":null,"error":"[\"node-crashed\",\"n1\"]"}
{"index":7,"time":21000000001,"process":2,"type":"fail","f":"assign","value":["1","2"],"error":"error {\"code\":11}"}
{"index":8,"time":21000000002,"process":4,"type":"ok","f":"send","value":[["send","2",[3,9]]]}
{"index":9,"time":21000000003,"process":5,"type":"invoke","f":"send","value":[["send","2",7]]}
{"index":10,"time":21000000004,"process":5,"type":"invoke","f":"send","value":[["send","2",8]]}
{"index":11,"time":21000000002,"process":5,"type":"info","f":"send","value":[["send","2",9]],"error":"timeout"}
{"index":12,"time":21000000005,"process":6,"type":"invoke","f":"assign","value":["2"],"error":"odd"}
{"index":13,"time":21000000006,"process":6,"type":"ok","f":"assign","value":["1","2"],"seek-to-beginning?":true}
{"index":14,"time":21000000007,"process":7,"type":"invoke","f":"poll","value":[["poll",{"1":[[0,5]]}]]}
{"index":15,"time":21000000008,"process":1,"type":"invoke","f":"poll","value":[["poll"]]}
{"f":"stop-partition","process":"nemesis","time":21000000009,"type":"info","value":null}
{"index":16,"time":21000000010,"process":7,"type":"fail","f":"poll","value":[["poll"]],"error":"timeout"}
{"index":17,"time":21000000011,"process":8,"type":"invoke","f":"send","value":[["send","3",1]]}
"#;
        let loaded = load_text("history.jsonl", text).unwrap();
        assert_eq!(written_again(&loaded), text);
        let h = &loaded.outcome.history;
        // Eight operations with a completion (one without an invocation), a process's first
        // invocation superseded by its second, and two invocations left open.
        assert_eq!(h.ops.len(), 8);
        assert_eq!(h.unfinished().len(), 3);
        assert_eq!(h.len(), 18);
    }

    /// Messages as the runner writes them from what nodes sent: infinity as `1e400`,
    /// integers past u64, alone and inside values, read back as the runner read them
    /// from the node, so a history is written back byte for byte and values Maelstrom
    /// tells apart stay apart.
    #[test]
    fn numbers_past_a_double_read_back_as_the_runner_read_them() {
        let text = r#"{"index":0,"time":10,"process":0,"type":"invoke","f":"send","value":[["send","1",1e400]]}
{"index":1,"time":11,"process":0,"type":"ok","f":"send","value":[["send","1",[0,1e400]]]}
{"index":2,"time":12,"process":0,"type":"invoke","f":"send","value":[["send","1",-1e400]]}
{"index":3,"time":13,"process":0,"type":"ok","f":"send","value":[["send","1",[1,-1e400]]]}
{"index":4,"time":14,"process":0,"type":"invoke","f":"send","value":[["send","1",18446744073709551617]]}
{"index":5,"time":15,"process":0,"type":"ok","f":"send","value":[["send","1",[2,18446744073709551617]]]}
{"index":6,"time":16,"process":0,"type":"invoke","f":"send","value":[["send","1",[18446744073709551616,{"a":1e400}]]]}
{"index":7,"time":17,"process":0,"type":"ok","f":"send","value":[["send","1",[3,[18446744073709551616,{"a":1e400}]]]]}
{"index":8,"time":18,"process":0,"type":"invoke","f":"send","value":[["send","1",[18446744073709551617,{"a":1e400}]]]}
{"index":9,"time":19,"process":0,"type":"ok","f":"send","value":[["send","1",[4,[18446744073709551617,{"a":1e400}]]]]}
{"index":10,"time":20,"process":1,"type":"invoke","f":"poll","value":[["poll"]]}
{"index":11,"time":21,"process":1,"type":"ok","f":"poll","value":[["poll",{"1":[[0,1e400],[1,-1e400],[2,18446744073709551617],[3,[18446744073709551616,{"a":1e400}]],[4,[18446744073709551617,{"a":1e400}]]]}]]}
"#;
        let loaded = load_text("history.jsonl", text).unwrap();
        assert_eq!(written_again(&loaded), text);
        let h = &loaded.outcome.history;
        // Five values, each its own, and each polled value the one sent at its offset.
        let sent: Vec<MsgId> = h
            .lines()
            .filter_map(|l| match *l.value {
                OpValue::Send {
                    msg,
                    offset: Some(_),
                    ..
                } => Some(msg),
                _ => None,
            })
            .collect();
        assert_eq!(sent.len(), 5);
        assert_eq!(
            sent.iter().collect::<std::collections::HashSet<_>>().len(),
            5
        );
        let verdict = crate::checker::check(h);
        assert_eq!(verdict.valid, Validity::True, "{verdict:?}");
    }

    #[test]
    fn reads_jepsens_shapes() {
        let loaded = load_text(
            "history.edn",
            r#"{:type :invoke, :f :send, :value [[:send 9 :a]], :time 10, :process 0, :index 0}
#jepsen.history.Op{:index 1, :time 20, :type :ok, :process 0, :f :send, :value [[:send 9 [0 :a]]]}
{:type :info, :f :start-partition, :value :majority, :time 25, :process :nemesis}
{:type :invoke, :f :subscribe, :value [9 :x], :time 30, :process 1}
{:type :ok, :f :subscribe, :value [9 :x], :time 31, :process 1}
{:type :invoke, :f :poll, :value [[:poll]], :time 40, :process 1}
{:type :ok, :f :poll, :value [[:poll {9 [[0 :a]], :x []}]], :time 50, :process 1}
{:type :info, :f :stop-partition, :value nil, :time 55, :process :nemesis}
{:type :invoke, :f :poll, :value [[:poll]], :time 60, :process 1}
{:type :ok, :f :poll, :value [[:poll]], :time 70, :process 1}
{:type :invoke, :f :crash, :value nil, :time 80, :process 2}
{:type :info, :f :crash, :value nil, :time 80, :process 2, :error [:node-crashed "n1"]}
"#,
        )
        .unwrap();
        let h = &loaded.outcome.history;
        let lines: Vec<_> = h.lines().collect();
        assert_eq!(lines.len(), 10, "client ops only, renumbered");
        assert_eq!(h.ops.len(), 5, "one record an operation");
        assert_eq!(lines[1].index, 1);
        let k9 = KeyId(0);
        assert_eq!(h.tables.key_name(k9), "9");
        let OpValue::Send { key, offset, msg } = *lines[1].value else {
            panic!("{:?}", lines[1])
        };
        assert_eq!(
            (key, offset, h.tables.msg_json(msg)),
            (k9, Some(0), "\"a\"".into())
        );
        let OpValue::Assign { keys, .. } = &*lines[3].value else {
            panic!("{:?}", lines[3])
        };
        assert_eq!(keys.len(), 2);
        let OpValue::Poll(Some(reads)) = &*lines[5].value else {
            panic!("{:?}", lines[5])
        };
        assert_eq!(reads.len(), 2);
        assert_eq!(*lines[7].value, OpValue::Poll(Some(Box::default())));
        assert_eq!(*lines[9].value, OpValue::Crash);
        assert_eq!(h.error(&h.ops[4]), Some(r#"["node-crashed","n1"]"#));
        assert_eq!(loaded.outcome.timeline.partitions, vec![(25, 55)]);
        assert_eq!(loaded.cfg.concurrency, 1);
        assert!(loaded.txns.is_none());
        // Key x was only ever polled empty: Jepsen's lost-write search throws on it.
        let w = crate::checker::check(h);
        assert_eq!(w.valid, Validity::Unknown, "{:?}", w.errors);
        assert_eq!(
            w.errors.keys().copied().collect::<Vec<&str>>(),
            vec!["unread-polled-key"]
        );
    }

    #[test]
    fn a_transaction_is_judged_as_its_micro_ops_and_at_best_unknown() {
        let loaded = load_text(
            "h.edn",
            r#"{:type :invoke, :f :txn, :value [[:send :x 1] [:send :y 2]], :time 1, :process 0}
{:type :ok, :f :txn, :value [[:send :x [0 1]] [:send :y [0 2]]], :time 2, :process 0}
{:type :invoke, :f :txn, :value [[:poll] [:poll]], :time 3, :process 1}
{:type :ok, :f :txn, :value [[:poll {:x [[0 1]]}] [:poll {:y [[0 2]]}]], :time 4, :process 1}
"#,
        )
        .unwrap();
        assert_eq!(loaded.txns, Some((1, 2)));
        let kinds: Vec<(OpType, u64)> = loaded
            .outcome
            .history
            .lines()
            .map(|o| (o.kind, o.time))
            .collect();
        assert_eq!(
            kinds,
            [
                (OpType::Invoke, 1),
                (OpType::Ok, 2),
                (OpType::Invoke, 1),
                (OpType::Ok, 2),
                (OpType::Invoke, 3),
                (OpType::Ok, 4),
                (OpType::Invoke, 3),
                (OpType::Ok, 4)
            ]
        );
        let mut w = crate::checker::check(&loaded.outcome.history);
        assert_eq!(w.valid, Validity::True);
        mark_transactions(&mut w, &loaded.txns);
        assert_eq!(w.valid, Validity::Unknown);
        assert_eq!(w.errors[TXN].count, 2);
    }

    #[test]
    fn unreadable_histories_name_the_line() {
        for (text, needle) in [
            ("{:type :ok, :f :send, :value [[:send 1", "line 1: not EDN"),
            (
                "{:type :ok, :f :frob, :value nil, :process 0}",
                "unknown :f",
            ),
            (
                "{:type :done, :f :poll, :value [[:poll]], :process 0}",
                "unknown :type",
            ),
            (
                "\n{:type :ok, :f :poll, :value [[:poll {1 [[:a 1]]}]], :process 0}",
                "line 2",
            ),
            (
                "{:type :ok, :f :poll, :value [[:scan]], :process 0}",
                "micro-op",
            ),
            (
                "{:type :ok, :f :poll, :value [[:poll]], :process 0, :time -1}",
                ":time",
            ),
            (
                "{:process :nemesis, :f :start-partition, :type :info}",
                "no client operations",
            ),
            ("{:a 1} {:b 2}", "more than one"),
        ] {
            let e = load_text("history.edn", text).unwrap_err();
            assert!(e.to_string().contains(needle), "{text:?}: {e}");
            assert_eq!(e.exit_code(), 254);
        }
        let e = load_text("history.jsonl", "{\"type\": ").unwrap_err();
        assert!(e.to_string().contains("not JSON"), "{e}");
    }
}
