//! EDN values and `results.edn`: the run's results in the layout of Maelstrom's own
//! `results.edn`, so they can be set beside results posted from a real Maelstrom run.
//!
//! [`Edn`] prints as Clojure's `pr-str` (compact, [`Edn::compact`]) or as its `pprint`
//! (entries one per line once a form does not fit the margin, [`Edn::pretty`]).
//! [`results_edn`] maps `results.json` onto Maelstrom's checker composition: `:perf`,
//! `:timeline`, `:exceptions`, `:stats`, `:availability`, `:net`, `:workload`, then our
//! own `:node` checker (it takes part in the verdict here), then `:valid?`.

use std::fmt::Write as _;

use serde_json::Value;

pub mod read;

use crate::checker::Validity;
use crate::history::F;
use crate::verdict::Verdict;

/// An EDN value. Maps keep their entries in insertion order, as Clojure's small maps do.
#[derive(Debug, Clone, PartialEq)]
pub enum Edn {
    Nil,
    Bool(bool),
    Int(i128),
    Float(f64),
    /// A single-precision float, as Clojure's `(float x)` makes and prints it (Maelstrom
    /// uses these for `:msgs-per-op` and `:ok-fraction`).
    Float32(f32),
    Str(String),
    /// A keyword, without its colon.
    Keyword(String),
    Vector(Vec<Edn>),
    List(Vec<Edn>),
    Set(Vec<Edn>),
    Map(Vec<(Edn, Edn)>),
    /// A symbol, as read ([`read`]); never written by our results.
    Symbol(String),
    /// A character, as read.
    Char(char),
    /// A tagged element `#tag form`, as read: a Clojure record prints as its class name
    /// and a map.
    Tagged(String, Box<Edn>),
}

/// Clojure's default `pprint` right margin.
const MARGIN: usize = 72;

impl Edn {
    pub fn kw(name: &str) -> Edn {
        Edn::Keyword(name.to_owned())
    }

    pub fn str(s: &str) -> Edn {
        Edn::Str(s.to_owned())
    }

    /// A map from keyword keys.
    pub fn map<'a>(entries: impl IntoIterator<Item = (&'a str, Edn)>) -> Edn {
        Edn::Map(entries.into_iter().map(|(k, v)| (Edn::kw(k), v)).collect())
    }

    /// On one line, as `pr-str`.
    pub fn compact(&self) -> String {
        let mut s = String::new();
        self.write_compact(&mut s);
        s
    }

    /// As `pprint`: a form that fits within the margin from its column stays on one line;
    /// otherwise a map puts one entry per line (`,` after each), and a sequence one element
    /// per line. Ends without a newline.
    pub fn pretty(&self) -> String {
        let mut s = String::new();
        self.write_pretty(&mut s, 0);
        s
    }

    fn write_compact(&self, out: &mut String) {
        match self {
            Edn::Nil => out.push_str("nil"),
            Edn::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Edn::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Edn::Float(x) => write_float(out, *x, |x| format!("{x:?}")),
            Edn::Float32(x) => write_float(out, f64::from(*x), |_| format!("{x:?}")),
            Edn::Str(s) => write_string(out, s),
            Edn::Keyword(k) => {
                out.push(':');
                out.push_str(k);
            }
            Edn::Vector(v) => write_seq(out, "[", "]", v),
            Edn::List(v) => write_seq(out, "(", ")", v),
            Edn::Set(v) => write_seq(out, "#{", "}", v),
            Edn::Symbol(s) => out.push_str(s),
            Edn::Char(c) => match c {
                '\n' => out.push_str("\\newline"),
                ' ' => out.push_str("\\space"),
                '\t' => out.push_str("\\tab"),
                '\r' => out.push_str("\\return"),
                c => {
                    out.push('\\');
                    out.push(*c);
                }
            },
            Edn::Tagged(tag, form) => {
                out.push('#');
                out.push_str(tag);
                if !matches!(
                    **form,
                    Edn::Map(_) | Edn::Vector(_) | Edn::Set(_) | Edn::List(_)
                ) {
                    out.push(' ');
                }
                form.write_compact(out);
            }
            Edn::Map(m) => {
                out.push('{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    k.write_compact(out);
                    out.push(' ');
                    v.write_compact(out);
                }
                out.push('}');
            }
        }
    }

    fn write_pretty(&self, out: &mut String, col: usize) {
        let flat = self.compact();
        if col + flat.chars().count() <= MARGIN {
            out.push_str(&flat);
            return;
        }
        let (open, close, items) = match self {
            Edn::Map(m) => {
                out.push('{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push_str(",\n");
                        push_spaces(out, col + 1);
                    }
                    let key = k.compact();
                    out.push_str(&key);
                    out.push(' ');
                    v.write_pretty(out, col + 1 + key.chars().count() + 1);
                }
                out.push('}');
                return;
            }
            Edn::Vector(v) => ("[", "]", v),
            Edn::List(v) => ("(", ")", v),
            Edn::Set(v) => ("#{", "}", v),
            _ => {
                out.push_str(&flat);
                return;
            }
        };
        out.push_str(open);
        for (i, x) in items.iter().enumerate() {
            if i > 0 {
                out.push('\n');
                push_spaces(out, col + open.len());
            }
            x.write_pretty(out, col + open.len());
        }
        out.push_str(close);
    }
}

fn push_spaces(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn write_seq(out: &mut String, open: &str, close: &str, items: &[Edn]) {
    out.push_str(open);
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        x.write_compact(out);
    }
    out.push_str(close);
}

/// Floats as Rust's `Debug` prints them (shortest round-trip digits, always with a `.` or an
/// exponent, so they read back as floats); the non-finite ones use EDN's symbolic values.
fn write_float(out: &mut String, x: f64, repr: impl Fn(f64) -> String) {
    if x.is_nan() {
        out.push_str("##NaN");
    } else if x.is_infinite() {
        out.push_str(if x > 0.0 { "##Inf" } else { "##-Inf" });
    } else {
        out.push_str(&repr(x));
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Whether `s` can be a keyword's name as written: a leading letter, then letters, digits
/// and `-_?!*+.<>=`. Data keys (kafka keys such as `"9"`, free text) stay strings.
fn keyword_like(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "-_?!*+.<>=".contains(c))
}

/// A `results.json` key as Maelstrom would print it: `valid` is `:valid?`.
fn key_of(k: &str) -> Edn {
    match k {
        "valid" => Edn::kw("valid?"),
        k if keyword_like(k) => Edn::kw(k),
        k => Edn::str(k),
    }
}

/// A validity: `true`, `false` or `:unknown`.
fn validity(v: &Value) -> Edn {
    match v {
        Value::Bool(b) => Edn::Bool(*b),
        Value::Null => Edn::kw("unknown"),
        Value::String(s) => Edn::Keyword(s.clone()),
        other => from_json(other),
    }
}

/// Any JSON as EDN, with object keys as keywords where they look like names, `valid` as
/// `:valid?`, and the values of `type` and `f` (an operation's outcome and function in
/// Jepsen's histories) as keywords.
pub fn from_json(v: &Value) -> Edn {
    match v {
        Value::Null => Edn::Nil,
        Value::Bool(b) => Edn::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Edn::Int(i128::from(i))
            } else if let Some(u) = n.as_u64() {
                Edn::Int(i128::from(u))
            } else {
                Edn::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => Edn::Str(s.clone()),
        Value::Array(a) => Edn::Vector(a.iter().map(from_json).collect()),
        Value::Object(m) => Edn::Map(
            m.iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        ("valid", v) => validity(v),
                        ("type" | "f", Value::String(s)) if keyword_like(s) => Edn::kw(s),
                        _ => from_json(v),
                    };
                    (key_of(k), v)
                })
                .collect(),
        ),
    }
}

/// JSON as Maelstrom holds a parsed value below a body's top level: object keys stay
/// strings (`{"9" 0}`), everything else as [`from_json`].
pub fn plain(v: &Value) -> Edn {
    match v {
        Value::Object(m) => Edn::Map(
            m.iter()
                .map(|(k, v)| (Edn::Str(k.clone()), plain(v)))
                .collect(),
        ),
        Value::Array(a) => Edn::Vector(a.iter().map(plain).collect()),
        other => from_json(other),
    }
}

fn int(v: &Value) -> Edn {
    v.as_i64().map_or(Edn::Nil, |i| Edn::Int(i128::from(i)))
}

fn float32(v: &Value) -> Edn {
    v.as_f64().map_or(Edn::Nil, |x| Edn::Float32(x as f32))
}

/// A verdict's part: `true`, `false` or `:unknown`.
fn valid(v: Validity) -> Edn {
    match v {
        Validity::True => Edn::Bool(true),
        Validity::False => Edn::Bool(false),
        Validity::Unknown => Edn::kw("unknown"),
    }
}

/// `{:valid? v}`, a checker with nothing else to say.
fn only_valid(v: Validity) -> Edn {
    Edn::map([("valid?", valid(v))])
}

/// `results.json` (see `report.rs`) and the run's [`Verdict`] as Maelstrom's
/// `results.edn`, pretty-printed, with a final newline. Every `:valid?` is the verdict's;
/// the numbers are `results.json`'s.
pub fn results_edn(results: &Value, verdict: &Verdict) -> String {
    let mut top = vec![
        (
            "perf",
            Edn::map([
                ("latency-graph", only_valid(verdict.perf)),
                ("rate-graph", only_valid(verdict.perf)),
                ("valid?", valid(verdict.perf)),
            ]),
        ),
        ("timeline", only_valid(verdict.timeline)),
        ("exceptions", only_valid(verdict.exceptions)),
        ("stats", stats(&results["stats"], verdict)),
        (
            "availability",
            availability(&results["availability"], &results["stats"], verdict),
        ),
        ("net", net(&results["net"], verdict)),
        ("workload", workload(&results["workload"], verdict)),
    ];
    if let Some(node) = results.get("node").filter(|n| n.is_object()) {
        top.push(("node", from_json(node)));
    }
    top.push(("valid?", valid(verdict.valid)));
    let mut s = Edn::map(top).pretty();
    s.push('\n');
    s
}

const COUNTS: [&str; 4] = ["count", "ok-count", "fail-count", "info-count"];

/// Jepsen's stats checker: counts overall and by `:f`, each `:f` judged on its own. The
/// overall `:valid?` is the kafka wrapper's, which excuses `:crash`.
fn stats(s: &Value, verdict: &Verdict) -> Edn {
    let counts = |c: &Value| COUNTS.map(|k| (k, int(&c[k])));
    let mut m = vec![("valid?", valid(verdict.stats))];
    m.extend(counts(s));
    let mut by_f: Vec<(&String, &Value)> = s["by-f"]
        .as_object()
        .map(|o| o.iter().collect())
        .unwrap_or_default();
    by_f.sort_by_key(|(f, _)| *f);
    let by_f = by_f
        .into_iter()
        .map(|(f, c)| {
            let v = F::ALL
                .iter()
                .find(|g| g.name() == f.as_str())
                .and_then(|g| verdict.stats_by_f.get(g));
            let mut e = vec![("valid?", valid(v.copied().unwrap_or(Validity::Unknown)))];
            e.extend(counts(c));
            (key_of(f), Edn::map(e))
        })
        .collect();
    m.push(("by-f", Edn::Map(by_f)));
    Edn::map(m)
}

/// Maelstrom's availability checker always reports the ok fraction of invocations; without
/// `--availability` it is valid whatever the fraction.
fn availability(a: &Value, stats: &Value, verdict: &Verdict) -> Edn {
    if a.is_object() {
        return Edn::map([
            ("valid?", valid(verdict.availability)),
            ("ok-fraction", float32(&a["ok-fraction"])),
        ]);
    }
    let count = stats["count"].as_f64().unwrap_or(0.0);
    let ok = stats["ok-count"].as_f64().unwrap_or(0.0);
    let fraction = if count > 0.0 { ok / count } else { 1.0 };
    Edn::map([
        ("valid?", valid(verdict.availability)),
        ("ok-fraction", Edn::Float32(fraction as f32)),
    ])
}

/// `:net`: send, receive and distinct message counts for all traffic, client traffic and
/// server traffic (services included), with messages per operation.
fn net(n: &Value, verdict: &Verdict) -> Edn {
    let part = |p: &Value| {
        let mut e: Vec<(&str, Edn)> = ["send-count", "recv-count", "msg-count"]
            .into_iter()
            .filter(|k| p.get(*k).is_some())
            .map(|k| (k, int(&p[k])))
            .collect();
        if let Some(x) = p.get("msgs-per-op") {
            e.push(("msgs-per-op", float32(x)));
        }
        Edn::map(e)
    };
    Edn::map([
        ("all", part(&n["all"])),
        ("clients", part(&n["clients"])),
        ("servers", part(&n["servers"])),
        ("valid?", valid(verdict.net)),
    ])
}

/// The kafka checker's result: validity, the worst realtime lag, the error types, then one
/// entry per error type with its count and examples (`:errs`).
fn workload(w: &Value, verdict: &Verdict) -> Edn {
    let v = verdict.workload.unwrap_or(Validity::Unknown);
    if !w.is_object() {
        // No analysis ran (setup failed): Maelstrom would have crashed before any result.
        return only_valid(v);
    }
    let types: Vec<String> = w["anomaly-types"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut sorted = types.clone();
    sorted.sort();
    let type_list = || Edn::List(sorted.iter().map(|t| Edn::kw(t)).collect());
    let m = vec![
        ("valid?", valid(v)),
        ("worst-realtime-lag", lag(&w["worst-realtime-lag"])),
        // Every anomaly checked here invalidates the run: none of Jepsen's allowed types
        // (int-send-skip, G0) is checked.
        ("bad-error-types", type_list()),
        ("error-types", type_list()),
        (
            "info-txn-causes",
            Edn::List(
                w["info-txn-causes"]
                    .as_array()
                    .map(|a| a.iter().map(from_json).collect())
                    .unwrap_or_default(),
            ),
        ),
    ];
    let mut all: Vec<(Edn, Edn)> = m.into_iter().map(|(k, v)| (Edn::kw(k), v)).collect();
    all.extend(sorted.iter().map(|t| {
        let e = &w["errors"][t.as_str()];
        let errs = e["examples"]
            .as_array()
            .map(|a| a.iter().map(from_json).collect())
            .unwrap_or_default();
        (
            key_of(t),
            Edn::map([("count", int(&e["count"])), ("errs", Edn::Vector(errs))]),
        )
    }));
    Edn::Map(all)
}

/// `:worst-realtime-lag` in Jepsen's key order (`:time`, `:process`, `:key`, `:lag`, times
/// in seconds), or nil when there was none.
fn lag(l: &Value) -> Edn {
    let Some(o) = l.as_object() else {
        return Edn::Nil;
    };
    let order = ["time", "process", "key", "lag"];
    let known = order
        .iter()
        .filter_map(|k| o.get(*k).map(|v| (Edn::kw(k), from_json(v))));
    let rest = o
        .iter()
        .filter(|(k, _)| !order.contains(&k.as_str()))
        .map(|(k, v)| (key_of(k), from_json(v)));
    Edn::Map(known.chain(rest).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prints_scalars() {
        assert_eq!(Edn::Nil.compact(), "nil");
        assert_eq!(Edn::Bool(true).compact(), "true");
        assert_eq!(Edn::Int(-3).compact(), "-3");
        assert_eq!(Edn::Int(u64::MAX.into()).compact(), "18446744073709551615");
        assert_eq!(Edn::Float(1.0).compact(), "1.0");
        assert_eq!(Edn::Float(0.25).compact(), "0.25");
        assert_eq!(Edn::Float(1e-7).compact(), "1e-7");
        assert_eq!(Edn::Float(1e300).compact(), "1e300");
        assert_eq!(Edn::Float(-0.0).compact(), "-0.0");
        assert_eq!(Edn::Float(f64::NAN).compact(), "##NaN");
        assert_eq!(Edn::Float(f64::NEG_INFINITY).compact(), "##-Inf");
        // A float32 prints its own shortest digits, as Clojure prints (float 0.99964).
        assert_eq!(Edn::Float32(0.99964).compact(), "0.99964");
        assert_eq!(Edn::Float32(12.342486).compact(), "12.342486");
        assert_eq!(Edn::Float32(2.0).compact(), "2.0");
        assert_eq!(Edn::kw("valid?").compact(), ":valid?");
    }

    #[test]
    fn escapes_strings() {
        let s = Edn::str("a \"q\" \\ b\nc\td\r\u{1}é→");
        assert_eq!(s.compact(), r#""a \"q\" \\ b\nc\td\r\u0001é→""#);
    }

    #[test]
    fn prints_collections() {
        let e = Edn::map([
            ("a", Edn::Vector(vec![Edn::Int(1), Edn::Int(2)])),
            ("b", Edn::List(vec![])),
            ("c", Edn::Set(vec![Edn::kw("x")])),
            ("d", Edn::Map(vec![(Edn::str("9"), Edn::Int(0))])),
        ]);
        assert_eq!(e.compact(), r#"{:a [1 2], :b (), :c #{:x}, :d {"9" 0}}"#);
        assert_eq!(e.pretty(), e.compact(), "short forms stay on one line");
    }

    #[test]
    fn pretty_breaks_long_maps_like_pprint() {
        let inner = Edn::map([
            ("latency-graph", only_valid(Validity::True)),
            ("rate-graph", only_valid(Validity::True)),
            ("valid?", Edn::Bool(true)),
        ]);
        let e = Edn::map([
            ("perf", inner),
            ("timeline", only_valid(Validity::True)),
            ("valid?", Edn::Bool(true)),
        ]);
        assert_eq!(
            e.pretty(),
            "{:perf {:latency-graph {:valid? true},\n        :rate-graph {:valid? true},\n        :valid? true},\n :timeline {:valid? true},\n :valid? true}"
        );
        let v = Edn::Vector((0..30).map(|i| Edn::Int(i * 1000)).collect());
        let p = v.pretty();
        assert!(p.starts_with("[0\n 1000\n 2000"), "{p}");
    }

    /// A verdict with the given parts; the rest valid, the stats by f as [`sample`]'s.
    fn verdict(valid: Validity, workload: Option<Validity>, availability: Validity) -> Verdict {
        Verdict {
            valid,
            workload,
            stats: Validity::True,
            stats_by_f: [
                (F::Assign, Validity::True),
                (F::Crash, Validity::False),
                (F::Poll, Validity::True),
                (F::Send, Validity::True),
            ]
            .into(),
            node: Validity::True,
            availability,
            net: Validity::True,
            perf: Validity::True,
            timeline: Validity::True,
            exceptions: Validity::True,
        }
    }

    fn sample() -> Value {
        json!({
            "valid": false,
            "verdict": "Analysis invalid!",
            "stats": {
                "count": 100, "ok-count": 90, "fail-count": 4, "info-count": 6,
                "by-f": {
                    "send": {"count": 50, "ok-count": 48, "fail-count": 2, "info-count": 0},
                    "crash": {"count": 6, "ok-count": 0, "fail-count": 0, "info-count": 6},
                    "assign": {"count": 4, "ok-count": 4, "fail-count": 0, "info-count": 0},
                    "poll": {"count": 40, "ok-count": 38, "fail-count": 2, "info-count": 0}
                },
                "valid": true
            },
            "workload": {
                "valid": false,
                "anomaly-types": ["unseen", "lost-write"],
                "errors": {
                    "lost-write": {"count": 1, "examples": [{"key": "9", "value": 3, "writer": {"type": "ok", "f": "send", "process": 2}}]},
                    "unseen": {"count": 2, "examples": [{"time": 1.5, "unseen": {"9": 2}}]}
                },
                "worst-realtime-lag": {"time": 32.22, "process": 22, "key": "9", "lag": 0.0}
            },
            "net": {
                "all": {"send-count": 10, "recv-count": 9, "msg-count": 10, "msgs-per-op": 7.64},
                "clients": {"send-count": 4, "recv-count": 4, "msg-count": 4},
                "servers": {"send-count": 6, "recv-count": 5, "msg-count": 6, "msgs-per-op": 5.16},
                "valid": true,
                "dropped-replies": 0
            },
            "node": {"valid": true, "faults": [], "crashes": []},
            "latency-ms": {"send": {"p50": 0.1}}
        })
    }

    #[test]
    fn results_in_maelstroms_layout() {
        let v = verdict(Validity::False, Some(Validity::False), Validity::True);
        let edn = results_edn(&sample(), &v);
        let top: Vec<&str> = edn
            .lines()
            .filter_map(|l| l.strip_prefix(' ').or_else(|| l.strip_prefix('{')))
            .filter(|l| l.starts_with(':'))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        assert_eq!(
            top,
            [
                ":perf",
                ":timeline",
                ":exceptions",
                ":stats",
                ":availability",
                ":net",
                ":workload",
                ":node",
                ":valid?"
            ],
            "{edn}"
        );
        assert!(edn.ends_with(" :valid? false}\n"), "{edn}");
        let flat = edn.split_whitespace().collect::<Vec<_>>().join(" ");
        for want in [
            ":perf {:latency-graph {:valid? true}, :rate-graph {:valid? true}, :valid? true}",
            ":stats {:valid? true, :count 100, :ok-count 90, :fail-count 4, :info-count 6, :by-f {:assign {:valid? true,",
            ":crash {:valid? false, :count 6, :ok-count 0, :fail-count 0, :info-count 6}",
            ":availability {:valid? true, :ok-fraction 0.9}",
            ":all {:send-count 10, :recv-count 9, :msg-count 10, :msgs-per-op 7.64}",
            ":clients {:send-count 4, :recv-count 4, :msg-count 4}",
            ":msgs-per-op 5.16}, :valid? true}",
            ":workload {:valid? false, :worst-realtime-lag {:time 32.22, :process 22, :key \"9\", :lag 0.0}",
            ":bad-error-types (:lost-write :unseen), :error-types (:lost-write :unseen), :info-txn-causes ()",
            ":lost-write {:count 1, :errs [{:key \"9\", :value 3, :writer {:f :send, :process 2, :type :ok}}]}",
            ":unseen {\"9\" 2}",
        ] {
            assert!(flat.contains(want), "missing {want:?} in\n{edn}");
        }
        // Only Maelstrom's keys: our extras stay in results.json.
        for extra in ["latency-ms", "dropped-replies", "verdict"] {
            assert!(!edn.contains(extra), "{extra} in\n{edn}");
        }
    }

    #[test]
    fn unknown_and_missing_parts() {
        let v = verdict(Validity::Unknown, None, Validity::True);
        let edn = results_edn(
            &json!({"valid": "unknown", "workload": null, "stats": {}}),
            &v,
        );
        assert!(edn.contains(":workload {:valid? :unknown}"), "{edn}");
        assert!(edn.ends_with(":valid? :unknown}\n"), "{edn}");
        assert!(!edn.contains(":node"), "{edn}");
        // The availability's validity is the verdict's, its fraction results.json's.
        let v = verdict(Validity::False, Some(Validity::True), Validity::False);
        let edn = results_edn(
            &json!({"valid": true, "availability": {"valid": true, "ok-fraction": 0.5}}),
            &v,
        );
        assert!(
            edn.contains(":availability {:valid? false, :ok-fraction 0.5}"),
            "{edn}"
        );
    }

    #[test]
    fn plain_json_keeps_string_keys() {
        let e = plain(&json!({"a": [1, "x", null], "valid": true}));
        assert_eq!(e.compact(), r#"{"a" [1 "x" nil], "valid" true}"#);
    }

    #[test]
    fn json_keys_become_keywords_only_where_they_are_names() {
        let e = from_json(
            &json!({"valid": null, "ok-count": 1, "9": [1, 2.5], "a b": "x", "type": "info"}),
        );
        assert_eq!(
            e.compact(),
            r#"{"9" [1 2.5], "a b" "x", :ok-count 1, :type :info, :valid? :unknown}"#
        );
    }
}
