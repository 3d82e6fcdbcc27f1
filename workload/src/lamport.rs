//! `messages.svg`: a Lamport diagram of the run's first network events, drawn as Maelstrom
//! draws its own.
//!
//! One vertical line per participant (clients, then nodes, in numeric order, then services),
//! time going down one row per event, and an arrow from each send to its receive, labelled
//! with the body's type and its other fields (an error's text instead). Client traffic is
//! blue, errors pink, the rest black; hovering an arrow shows the whole message. `init`
//! traffic is left out, and only the first [`EVENT_LIMIT`] events are drawn, with a notice
//! when more happened.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::edn::Edn;

/// How many events (sends and receives) are drawn at most. Drawing is the expensive part.
pub const EVENT_LIMIT: usize = 10_000;

/// Whether an event is a message leaving its sender or reaching its receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Send,
    Recv,
}

/// One network event: message `id` (the envelope id) sent or received.
#[derive(Debug, Clone)]
pub struct MsgEvent {
    /// Nanoseconds since the run's origin.
    pub time_ns: u64,
    pub from: String,
    pub to: String,
    pub id: u64,
    /// The body, as compact JSON.
    pub body: String,
    pub kind: EventKind,
}

const WIDTH: f64 = 1200.0;
const Y_STEP: f64 = 20.0;
/// Labels longer than this are cut, with an ellipsis.
const LABEL_CHARS: usize = 48;
/// Node names are repeated every this many rows.
const LABEL_EVERY: usize = 50;

const COLOR_ERROR: &str = "#FF1E90";
const COLOR_CLIENT: &str = "#81BFFC";
const COLOR_SERVER: &str = "#000";
const COLOR_NOTICE: &str = "#D96918";

/// The diagram as an SVG document.
pub fn messages_svg(events: &[MsgEvent]) -> String {
    let mut kept: Vec<(&MsgEvent, Option<Value>)> = events
        .iter()
        .map(|e| (e, serde_json::from_str::<Value>(&e.body).ok()))
        .filter(|(_, body)| {
            !matches!(
                body.as_ref().and_then(|b| b["type"].as_str()),
                Some("init" | "init_ok")
            )
        })
        .collect();
    // Stable: a send and its receive at the same instant keep their order.
    kept.sort_by_key(|(e, _)| e.time_ns);
    let truncated = kept.len() > EVENT_LIMIT;
    kept.truncate(EVENT_LIMIT);
    let steps = kept.len();

    let mut nodes: Vec<&str> = Vec::new();
    for (e, _) in &kept {
        for n in [e.from.as_str(), e.to.as_str()] {
            if !nodes.contains(&n) {
                nodes.push(n);
            }
        }
    }
    nodes.sort_by_key(|n| node_order(n));
    let column: HashMap<&str, usize> = nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let x = |node: &str| (column[node] as f64 + 0.5) / nodes.len().max(1) as f64 * WIDTH;
    let y = |step: f64| Y_STEP * (1.5 + step);

    let height = Y_STEP * (7 + steps) as f64;
    let mut svg = String::with_capacity(256 * steps + 2048);
    let _ = write!(
        svg,
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" version="2.0" width="{WIDTH}" height="{height}">
<style>
svg {{ font-family: Helvetica, Arial, sans-serif; font-size: 11px; }}
rect {{ stroke-linecap: butt; stroke-width: 3; stroke: #fff; }}
polygon {{ fill: #000; }}
</style>
<defs>
<polygon id="ahead" points="0 0, -12 4, -12 -4"/>
<filter id="glow" x="0" y="0">
<feGaussianBlur in="SourceAlpha" stdDeviation="2" result="blurred"/>
<feFlood flood-color="#fff"/>
<feComposite operator="in" in2="blurred"/>
<feComponentTransfer><feFuncA type="linear" slope="10" intercept="0"/></feComponentTransfer>
<feMerge><feMergeNode/><feMergeNode in="SourceGraphic"/></feMerge>
</filter>
</defs>
"##
    );

    // Node names at the top, and again every LABEL_EVERY rows.
    svg.push_str("<g>\n");
    for node in &nodes {
        for step in (0..steps.max(1)).step_by(LABEL_EVERY) {
            let fill = if step == 0 { "#000" } else { "#aaa" };
            let _ = writeln!(
                svg,
                r#"<text x="{}" y="{}" text-anchor="middle" alignment-baseline="middle" fill="{fill}">{}</text>"#,
                num(x(node)),
                num(y(step as f64 - 0.5)),
                escape_text(node)
            );
        }
    }
    svg.push_str("</g>\n<g>\n");
    for node in &nodes {
        let _ = writeln!(
            svg,
            r##"<line stroke="#ccc" x1="{0}" y1="{1}" x2="{0}" y2="{2}"/>"##,
            num(x(node)),
            num(y(0.0)),
            num(y((steps + 1) as f64))
        );
    }
    svg.push_str("</g>\n<g>\n");

    // Arrows: each receive, from where its send happened.
    let mut sent: HashMap<u64, (&str, usize)> = HashMap::new();
    for (i, (e, body)) in kept.iter().enumerate() {
        let step = i + 1;
        match e.kind {
            EventKind::Send => {
                sent.insert(e.id, (e.from.as_str(), step));
            }
            EventKind::Recv => {
                let Some(&(from, from_step)) = sent.get(&e.id) else {
                    continue;
                };
                let (x0, y0) = (x(from), y(from_step as f64));
                let (x1, y1) = (x(&e.to), y(step as f64));
                arrow(&mut svg, e, body.as_ref(), (x0, y0), (x1, y1));
            }
        }
    }
    svg.push_str("</g>\n");

    if truncated {
        let step = (steps + 2) as f64;
        let _ = writeln!(
            svg,
            r#"<g><line x1="30" y1="{0}" x2="{1}" y2="{0}" stroke-width="1" stroke="{COLOR_NOTICE}"/><text x="{2}" y="{3}" fill="{COLOR_NOTICE}" text-anchor="middle">Additional network events not shown</text></g>"#,
            num(y(step)),
            num(WIDTH - 30.0),
            num(WIDTH / 2.0),
            num(y(step + 1.0))
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// One message: a bar from the sender's row to the receiver's, drawn horizontally and
/// rotated into place, with an arrowhead and a label above it.
fn arrow(svg: &mut String, e: &MsgEvent, body: Option<&Value>, p0: (f64, f64), p1: (f64, f64)) {
    let (dx, dy) = (p1.0 - p0.0, p1.1 - p0.1);
    let length = dx.hypot(dy);
    let angle = dy.atan2(dx).to_degrees();
    // Pointing left, the label would be upside down: turn it around.
    let left = !(-90.0 < angle && angle < 90.0);
    let ty = body.and_then(|b| b["type"].as_str()).unwrap_or_default();
    let color = if ty == "error" {
        COLOR_ERROR
    } else if e.from.starts_with('c') || e.to.starts_with('c') {
        COLOR_CLIENT
    } else {
        COLOR_SERVER
    };
    let label = cut(&label(ty, body, &e.body), LABEL_CHARS);
    let title = format!(
        "{} → {} {}",
        e.from,
        e.to,
        body.map_or_else(|| e.body.clone(), |b| body_edn(b, &[]).compact())
    );
    let flip = if left {
        format!(r#" transform="rotate(180 {} 0)""#, num(length / 2.0))
    } else {
        String::new()
    };
    let (lx, ly) = (num(length / 2.0), num(-Y_STEP / 5.0));
    let label = escape_text(&label);
    let _ = writeln!(
        svg,
        r##"<g transform="translate({} {}) rotate({})"><rect x="0" y="-2.5" height="5" width="{}" fill="{color}"><title>{}</title></rect><use xlink:href="#ahead" href="#ahead" x="{}" y="0"/><text text-anchor="middle" x="{lx}" y="{ly}"{flip} filter="url(#glow)" style="fill: #fff">{label}</text><text text-anchor="middle" x="{lx}" y="{ly}"{flip}>{label}</text></g>"##,
        num(p0.0),
        num(p0.1),
        num(angle),
        num((length - 4.0).max(0.0)),
        escape_text(&title),
        num(length),
    );
}

/// `type` and then the other fields (without `msg_id` and `in_reply_to`), or an error's
/// text.
fn label(ty: &str, body: Option<&Value>, raw: &str) -> String {
    let Some(body) = body else {
        return raw.to_owned();
    };
    if ty == "error" {
        let text = match &body["text"] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        return format!("error {text}");
    }
    let rest = body_edn(body, &["type", "msg_id", "in_reply_to"]).compact();
    format!("{ty} {rest}")
}

/// A body as Maelstrom holds it: top-level keys as keywords, deeper keys as strings.
fn body_edn(body: &Value, skip: &[&str]) -> Edn {
    match body.as_object() {
        Some(m) => Edn::Map(
            m.iter()
                .filter(|(k, _)| !skip.contains(&k.as_str()))
                .map(|(k, v)| (Edn::Keyword(k.clone()), crate::edn::plain(v)))
                .collect(),
        ),
        None => crate::edn::plain(body),
    }
}

/// Clients first, then nodes (each by letter, then number), then names without a number
/// (the services), by name.
fn node_order(n: &str) -> (u8, String, u64) {
    let digits = n.len() - n.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (prefix, number) = n.split_at(n.len() - digits);
    match number.parse::<u64>() {
        Ok(num) if !prefix.is_empty() => (0, prefix.to_owned(), num),
        _ => (1, n.to_owned(), 0),
    }
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(n - 1).collect();
    out.push('…');
    out
}

/// A coordinate with at most two decimals.
fn num(x: f64) -> String {
    let r = (x * 100.0).round() / 100.0;
    if r == r.trunc() {
        format!("{}", r as i64)
    } else {
        format!("{r}")
    }
}

/// Element text with the XML specials escaped. (Every attribute value written here is a
/// number or a constant.)
fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // Not allowed in XML 1.0 at all.
            c if c.is_control() && !matches!(c, '\n' | '\t' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t: u64, kind: EventKind, from: &str, to: &str, id: u64, body: &str) -> MsgEvent {
        MsgEvent {
            time_ns: t,
            from: from.into(),
            to: to.into(),
            id,
            body: body.into(),
            kind,
        }
    }

    /// A message sent at `t` and received at `t + 1`.
    fn msg(t: u64, from: &str, to: &str, id: u64, body: &str) -> [MsgEvent; 2] {
        [
            ev(t, EventKind::Send, from, to, id, body),
            ev(t + 1, EventKind::Recv, from, to, id, body),
        ]
    }

    /// Checks that `s` is well-formed XML as far as this module can break it: tags balance,
    /// attribute values are quoted, and no raw `<` or `&` appears in text.
    fn assert_well_formed(s: &str) {
        let body = s
            .strip_prefix(r#"<?xml version="1.0" encoding="UTF-8"?>"#)
            .expect("XML declaration");
        let mut stack: Vec<String> = Vec::new();
        let mut rest = body;
        while let Some(open) = rest.find('<') {
            check_text(&rest[..open]);
            let close = rest[open..].find('>').expect("unterminated tag") + open;
            let tag = &rest[open + 1..close];
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
            } else {
                let self_closing = tag.ends_with('/');
                let tag = tag.trim_end_matches('/');
                let name = tag.split_whitespace().next().expect("tag name");
                check_attributes(&tag[name.len()..]);
                if !self_closing {
                    stack.push(name.to_owned());
                }
            }
            rest = &rest[close + 1..];
        }
        check_text(rest);
        assert!(stack.is_empty(), "unclosed {stack:?}");
    }

    fn check_text(t: &str) {
        assert!(!t.contains('<'), "raw < in {t:?}");
        let mut parts = t.split('&');
        parts.next();
        for p in parts {
            let entity = p.split(';').next().unwrap();
            assert!(
                ["amp", "lt", "gt", "quot", "apos"].contains(&entity),
                "bad entity &{entity} in {t:?}"
            );
        }
    }

    fn check_attributes(a: &str) {
        let mut rest = a.trim();
        while !rest.is_empty() {
            let eq = rest.find('=').expect("attribute without value");
            let after = &rest[eq + 1..];
            assert!(after.starts_with('"'), "unquoted attribute in {a:?}");
            let end = after[1..].find('"').expect("unterminated value") + 1;
            check_text(&after[1..end]);
            rest = after[end + 1..].trim_start();
        }
    }

    #[test]
    fn one_arrow_per_delivered_message() {
        let mut events = Vec::new();
        events.extend(msg(
            0,
            "c1",
            "n0",
            1,
            r#"{"type":"send","msg_id":1,"key":"9","msg":3}"#,
        ));
        events.extend(msg(
            2,
            "n0",
            "n1",
            2,
            r#"{"type":"replicate","msg_id":7,"key":"9"}"#,
        ));
        events.extend(msg(
            4,
            "n0",
            "c1",
            3,
            r#"{"type":"send_ok","in_reply_to":1,"offset":0}"#,
        ));
        // Sent but never delivered (partitioned): no arrow.
        events.push(ev(6, EventKind::Send, "n1", "n0", 4, r#"{"type":"ack"}"#));
        let svg = messages_svg(&events);
        assert_well_formed(&svg);
        assert_eq!(svg.matches("<use ").count(), 3, "{svg}");
        // Labels: the type, then the other fields, as EDN.
        assert!(svg.contains(r#">send {:key "9", :msg 3}</text>"#), "{svg}");
        assert!(svg.contains(r#">send_ok {:offset 0}</text>"#), "{svg}");
        // Colours: client traffic blue, node to node black.
        assert_eq!(
            svg.matches(&format!(r#"fill="{COLOR_CLIENT}"><title>"#))
                .count(),
            2
        );
        assert_eq!(
            svg.matches(&format!(r#"fill="{COLOR_SERVER}"><title>"#))
                .count(),
            1
        );
        assert!(!svg.contains("Additional network events"));
    }

    #[test]
    fn errors_are_pink_and_labelled_by_their_text() {
        let events = msg(
            0,
            "lin-kv",
            "n0",
            1,
            r#"{"type":"error","code":22,"text":"current value 1 is not 2","in_reply_to":3}"#,
        );
        let svg = messages_svg(&events);
        assert!(svg.contains(&format!(r#"fill="{COLOR_ERROR}""#)));
        assert!(
            svg.contains(">error current value 1 is not 2</text>"),
            "{svg}"
        );
    }

    #[test]
    fn escapes_bodies_and_stays_well_formed() {
        let body = r#"{"type":"x<y","k":"a & b \"quoted\" 'single' </svg>","msg_id":1}"#;
        let events = msg(0, "n0", "n1", 1, body);
        let svg = messages_svg(&events);
        assert_well_formed(&svg);
        assert!(svg.contains("x&lt;y"), "{svg}");
        assert!(svg.contains("a &amp; b"), "{svg}");
        // A body that is not JSON is shown as it came.
        let svg = messages_svg(&msg(0, "n0", "n1", 1, "not <json>"));
        assert_well_formed(&svg);
        assert!(svg.contains("not &lt;json&gt;"), "{svg}");
    }

    #[test]
    fn leaves_out_init_and_orders_columns() {
        let mut events = Vec::new();
        events.extend(msg(
            0,
            "c0",
            "n10",
            1,
            r#"{"type":"init","msg_id":1,"node_id":"n10"}"#,
        ));
        events.extend(msg(
            2,
            "n10",
            "c0",
            2,
            r#"{"type":"init_ok","in_reply_to":1}"#,
        ));
        events.extend(msg(4, "n10", "lin-kv", 3, r#"{"type":"read","key":"k"}"#));
        events.extend(msg(6, "c12", "n2", 4, r#"{"type":"poll","offsets":{}}"#));
        events.extend(msg(8, "c3", "n10", 5, r#"{"type":"poll","offsets":{}}"#));
        let svg = messages_svg(&events);
        assert!(!svg.contains("init"), "{svg}");
        assert!(!svg.contains(">c0<"), "c0 only took part in init: {svg}");
        let order: Vec<&str> = ["c3", "c12", "n2", "n10", "lin-kv"]
            .into_iter()
            .map(|n| {
                let at = svg
                    .find(&format!(">{n}</text>"))
                    .unwrap_or_else(|| panic!("{n}"));
                (at, n)
            })
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_values()
            .collect();
        assert_eq!(order, ["c3", "c12", "n2", "n10", "lin-kv"]);
        assert_eq!(svg.matches("<use ").count(), 3);
    }

    #[test]
    fn draws_only_the_first_events() {
        let events: Vec<MsgEvent> = (0..EVENT_LIMIT as u64)
            .flat_map(|i| msg(2 * i, "n0", "n1", i, r#"{"type":"gossip"}"#))
            .collect();
        let svg = messages_svg(&events);
        assert_well_formed(&svg);
        assert_eq!(svg.matches("<use ").count(), EVENT_LIMIT / 2);
        assert!(svg.contains("Additional network events not shown"));
    }

    #[test]
    fn long_labels_are_cut_by_characters() {
        let long = format!(r#"{{"type":"t","v":"{}"}}"#, "é".repeat(100));
        let svg = messages_svg(&msg(0, "n0", "n1", 1, &long));
        let label = svg.split("<text").last().unwrap();
        let text = &label[label.find('>').unwrap() + 1..label.find("</text>").unwrap()];
        assert_eq!(text.chars().count(), LABEL_CHARS, "{text}");
        assert!(text.ends_with('…'));
    }

    #[test]
    fn empty_journal() {
        let svg = messages_svg(&[]);
        assert_well_formed(&svg);
        assert_eq!(svg.matches("<use ").count(), 0);
    }
}
