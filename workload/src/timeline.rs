//! `timeline.html`: which process did what, when, and what came back. One column per
//! process; each operation a box from its invocation to its completion, coloured by how it
//! ended, with its request and reply on hover; nemesis events, node faults and phase changes
//! drawn across every column. Plain HTML and CSS (absolutely positioned boxes), no script.
//!
//! Time runs down in *event order*: each invocation or completion is one row, so boxes
//! overlap exactly when the operations did, however fast the run (at 100k ops/s a
//! millisecond holds a hundred operations; a time scale would draw them as one line). The
//! time of a row is in the left margin and in each box's hover text.
//!
//! A run has up to millions of operations; the page shows at most [`OP_LIMIT`] of them, so
//! it stays a few megabytes. When the history is longer it shows windows around the
//! operations the checker cites in its anomaly examples, or, in a valid run, the first
//! [`OP_LIMIT`], and says so at the top. Each box's id is `op-<index>` (the completion's
//! index, as the checker cites it), so `timeline.html#op-1234` scrolls to that operation.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use serde_json::Value;

use crate::history::{Event, History, Invocation, Op, OpType, OpValue};
use crate::runner::{NodeFault, Timeline};
use crate::text::{clip, escape_html as esc};

/// The most operations one page shows: about 0.5 KB each (box, label, hover text), so at
/// most about 2.5 MB of HTML.
pub const OP_LIMIT: usize = 5_000;

/// Hover text is cut here: a final-phase poll returns every message of every key.
const TITLE_BYTES: usize = 300;

const ROW: u32 = 15;
const COL: u32 = 132;
const GUTTER: u32 = 84;
const HEAD: u32 = 34;

/// What the page is drawn from.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub history: &'a History,
    pub timeline: &'a Timeline,
    pub faults: &'a [NodeFault],
    /// Client threads: process `p` is thread `p mod concurrency`, bound to node
    /// `thread mod nodes`.
    pub concurrency: usize,
    pub node_ids: &'a [String],
    /// Operation indices to show whatever the window: the ones the anomalies cite.
    pub focus: &'a [u64],
}

/// Every `"index"` number in the checker's `errors` (its examples cite operations so).
pub fn cited_ops(errors: &Value) -> Vec<u64> {
    fn walk(v: &Value, out: &mut Vec<u64>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v.as_u64()) {
                        ("index", Some(i)) => out.push(i),
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(errors, &mut out);
    out.sort_unstable();
    out.dedup();
    out
}

/// One operation that was invoked: its record, which is its invocation if it never
/// completed (a completion with no invocation before it has no box).
type Pair<'h> = &'h Op;

/// The history's invocations and completions by index: (index, time) of `p`'s invocation.
fn invoked(h: &History, p: Pair<'_>) -> (u32, u64) {
    let (time, index) = h.invoked_at(p).unwrap_or((p.time, p.index));
    (index, time)
}

/// (index, time) of `p`'s completion, if it completed.
fn completed(p: Pair<'_>) -> Option<(u32, u64)> {
    (p.kind != OpType::Invoke).then_some((p.index, p.time))
}

/// The operations that were invoked, in invocation order.
fn pairs(h: &History) -> Vec<Pair<'_>> {
    h.events()
        .filter_map(|e| match e {
            Event::Invoked(op) => Some(op),
            Event::Completed(_) => None,
        })
        .collect()
}

/// Which operations (ranges of pair numbers) the page shows, and how to say so.
fn window(h: &History, pairs: &[Pair<'_>], focus: &[u64]) -> (Vec<std::ops::Range<usize>>, String) {
    let n = pairs.len();
    if n <= OP_LIMIT {
        return (
            std::iter::once(0..n).collect(),
            format!("All {n} operations."),
        );
    }
    // Pair number of each history position (invocations and completions alike).
    let mut of_pos: HashMap<usize, usize> = HashMap::new();
    for &f in focus {
        of_pos.insert(f as usize, usize::MAX);
    }
    for (i, p) in pairs.iter().enumerate() {
        for (pos, _) in std::iter::once(invoked(h, p)).chain(completed(p)) {
            if let Some(slot) = of_pos.get_mut(&(pos as usize)) {
                *slot = i;
            }
        }
    }
    let mut centres: Vec<usize> = of_pos.into_values().filter(|&i| i != usize::MAX).collect();
    centres.sort_unstable();
    centres.dedup();
    if centres.is_empty() {
        return (
            std::iter::once(0..OP_LIMIT).collect(),
            format!("The first {OP_LIMIT} of {n} operations (the page shows at most {OP_LIMIT})."),
        );
    }
    // Each cited operation with the operations around it, sharing the limit.
    let half = (OP_LIMIT / (2 * centres.len())).max(5);
    let mut ranges: Vec<std::ops::Range<usize>> = Vec::new();
    let mut total = 0;
    for c in centres {
        let r = c.saturating_sub(half)..(c + half + 1).min(n);
        match ranges.last_mut() {
            Some(last) if r.start <= last.end => {
                total += r.end.saturating_sub(last.end);
                last.end = last.end.max(r.end);
            }
            _ => {
                total += r.len();
                ranges.push(r);
            }
        }
        if total >= OP_LIMIT {
            break;
        }
    }
    let shown: usize = ranges.iter().map(|r| r.len()).sum();
    (
        ranges,
        format!(
            "{shown} of {n} operations: the ones the anomaly examples cite, with about {half} before and after each (the page shows at most {OP_LIMIT})."
        ),
    )
}

/// What one row of the page holds.
#[derive(Debug)]
enum Row {
    /// An invocation or completion: its index and time.
    Event(u32, u64),
    /// Something that happened to the whole run at a time: nemesis, fault, phase.
    Mark {
        time: u64,
        class: &'static str,
        text: String,
    },
    /// Operations left out between two windows.
    Gap(String),
}

/// The run-wide events, by time.
fn marks(input: &Input<'_>) -> Vec<(u64, &'static str, String)> {
    let mut m = Vec::new();
    let tl = input.timeline;
    if tl.main_end > 0 {
        m.push((
            tl.main_end,
            "phase",
            "main phase ends: no new operations; in-flight ones finish, then the recovery sleep"
                .to_owned(),
        ));
    }
    if tl.final_start > 0 {
        m.push((
            tl.final_start,
            "phase",
            "final phase: every client reads every key from offset 0".to_owned(),
        ));
    }
    // Jepsen records each nemesis operation twice (invocation, completion); one line each.
    let mut last: Option<(u64, &str)> = None;
    for n in &input.history.nemesis {
        if last == Some((n.time, n.f)) {
            // The completion of a start says who drops whom: `["isolated", {node: [from]}]`.
            if let (Some(l), Some(grudge)) = (m.last_mut(), n.value[1].as_object()) {
                let cuts: Vec<String> = grudge
                    .iter()
                    .map(|(node, from)| {
                        let from: Vec<&str> = from
                            .as_array()
                            .map(|a| a.iter().filter_map(Value::as_str).collect())
                            .unwrap_or_default();
                        format!("{node} hears nothing from {}", from.join(", "))
                    })
                    .collect();
                let _ = write!(l.2, ": {}", clip(&cuts.join("; "), 300));
            }
            continue;
        }
        last = Some((n.time, n.f));
        let text = match n.f {
            "start-partition" => format!(
                "nemesis: partition starts ({})",
                n.value.as_str().unwrap_or("")
            ),
            "stop-partition" => "nemesis: partition heals".to_owned(),
            f => format!("nemesis: {f}"),
        };
        m.push((n.time, "nemesis", text));
    }
    for f in input.faults {
        m.push((
            f.time,
            "fault",
            format!("node {} {}: {}", f.node, f.kind, clip(&f.detail, 200)),
        ));
    }
    m.sort_by_key(|x| x.0);
    m
}

/// Lays out the rows of the windows: their events in history order, a gap row where
/// operations are left out, and each run-wide mark before the first event after it (a mark
/// that falls in a gap comes right after the gap row, so every mark is shown).
fn rows(input: &Input<'_>, pairs: &[Pair<'_>], ranges: &[std::ops::Range<usize>]) -> Vec<Row> {
    let h = input.history;
    let all_marks = marks(input);
    let mut marks = all_marks.iter().peekable();
    let mut mark_row = |m: &(u64, &'static str, String)| Row::Mark {
        time: m.0,
        class: m.1,
        text: m.2.clone(),
    };
    let mut rows = Vec::new();
    let mut prev_end = 0;
    for r in ranges {
        if r.start > prev_end {
            rows.push(Row::Gap(format!(
                "… {} operations not shown …",
                r.start - prev_end
            )));
        }
        prev_end = r.end;
        let mut events: Vec<(u32, u64)> = pairs[r.clone()]
            .iter()
            .flat_map(|p| std::iter::once(invoked(h, p)).chain(completed(p)))
            .collect();
        events.sort_unstable();
        for (index, time) in events {
            while let Some(m) = marks.next_if(|m| m.0 <= time) {
                rows.push(mark_row(m));
            }
            rows.push(Row::Event(index, time));
        }
    }
    if prev_end < pairs.len() {
        rows.push(Row::Gap(format!(
            "… {} more operations not shown",
            pairs.len() - prev_end
        )));
    }
    rows.extend(marks.map(&mut mark_row));
    rows
}

fn secs(ns: u64) -> String {
    format!("{:.6}", ns as f64 / 1e9)
}

/// The box's text: the operation in a few words.
fn label(h: &History, inv: &Invocation<'_>, done: Option<&Op>) -> String {
    let value = done.map_or(&*inv.value, |d| &d.value);
    let mut s = match value {
        OpValue::Send { key, offset, msg } => {
            let k = h.tables.key_name(*key);
            let m = clip(&h.tables.msg_json(*msg), 24);
            match offset {
                Some(o) => format!("send {k} {m} → {o}"),
                None => format!("send {k} {m}"),
            }
        }
        OpValue::Poll(Some(r)) => {
            let msgs: usize = r.iter().map(|r| r.1.len()).sum();
            match (msgs, r.len()) {
                (0, _) => "poll: nothing".to_owned(),
                (m, 1) => format!("poll: {m} from 1 key"),
                (m, k) => format!("poll: {m} from {k} keys"),
            }
        }
        OpValue::Poll(None) => "poll".to_owned(),
        OpValue::Assign {
            keys,
            seek_to_beginning,
        } => format!(
            "assign {} key{}{}",
            keys.len(),
            if keys.len() == 1 { "" } else { "s" },
            if *seek_to_beginning { " from 0" } else { "" }
        ),
        OpValue::Crash => "crash (client replaced)".to_owned(),
    };
    if let Some(e) = done.and_then(|d| h.error(d)) {
        let _ = write!(s, ": {}", clip(e, 40));
    }
    s
}

fn title(input: &Input<'_>, inv: &Invocation<'_>, done: Option<&Op>) -> String {
    let h = input.history;
    let mut t = format!(
        "{} by process {} (node {})",
        inv.value.f().name(),
        inv.process,
        node_of(input, inv.process)
    );
    match done {
        Some(d) => {
            let _ = write!(
                t,
                ", {}\ninvoked {} s, completed {} s: {:.3} ms",
                d.kind.name(),
                secs(inv.time),
                secs(d.time),
                d.time.saturating_sub(inv.time) as f64 / 1e6
            );
        }
        None => {
            let _ = write!(t, ", never completed\ninvoked {} s", secs(inv.time));
        }
    }
    if *inv.value != OpValue::Crash {
        let _ = write!(
            t,
            "\nrequest: {}",
            clip(&h.value_json(&inv.value), TITLE_BYTES)
        );
    }
    if let Some(d) = done {
        match d.kind {
            OpType::Ok if d.value != OpValue::Crash => {
                let _ = write!(t, "\nreply: {}", clip(&h.value_json(&d.value), TITLE_BYTES));
            }
            _ => {}
        }
        if let Some(e) = h.error(d) {
            let _ = write!(t, "\nerror: {}", clip(e, TITLE_BYTES));
        }
        let _ = write!(t, "\nindex {} (invoked at {})", d.index, inv.index);
    }
    t
}

fn node_of(input: &Input<'_>, process: u32) -> String {
    let n = crate::results::node_of(process, input.concurrency, input.node_ids.len());
    input.node_ids.get(n).cloned().unwrap_or_default()
}

/// The page.
pub fn timeline_html(input: &Input<'_>) -> String {
    let h = input.history;
    let pairs = pairs(h);
    let (ranges, shown) = window(h, &pairs, input.focus);
    let rows = rows(input, &pairs, &ranges);
    let mut row_of: HashMap<u32, u32> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        if let Row::Event(index, _) = r {
            row_of.insert(*index, i as u32);
        }
    }
    let shown_pairs: Vec<Pair<'_>> = ranges
        .iter()
        .flat_map(|r| pairs[r.clone()].iter().copied())
        .collect();
    let mut columns: BTreeMap<u32, u32> = BTreeMap::new();
    for p in &shown_pairs {
        columns.insert(p.process, 0);
    }
    for (i, c) in columns.values_mut().enumerate() {
        *c = i as u32;
    }
    let width = GUTTER + COL * columns.len().max(1) as u32;
    let height = ROW * rows.len().max(1) as u32;

    let mut out = String::with_capacity(600 * shown_pairs.len() + 8192);
    let _ = write!(
        out,
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Timeline</title>
<style>
body {{ font: 12px Helvetica, Arial, sans-serif; margin: 16px; color: #222; }}
h1 {{ font-size: 20px; margin: 0 0 6px; }}
p {{ margin: 4px 0; max-width: 70em; }}
.key span {{ display: inline-block; padding: 1px 6px; margin-right: 4px; border: 1px solid #0002; }}
#ops {{ position: relative; width: {width}px; height: {}px; margin-top: 8px; }}
.head {{ position: sticky; top: 0; z-index: 5; height: {HEAD}px; width: {width}px; background: #fff; border-bottom: 1px solid #ccc; }}
.head div {{ position: absolute; top: 2px; width: {}px; text-align: center; font-weight: bold; line-height: 14px; }}
.head small {{ font-weight: normal; color: #666; }}
.op {{ position: absolute; width: {}px; box-sizing: border-box; overflow: hidden; white-space: nowrap; text-overflow: ellipsis; font-size: 11px; line-height: {}px; padding: 0 3px; border: 1px solid #0003; border-radius: 3px; color: #111; text-decoration: none; scroll-margin-top: {}px; }}
.op:hover {{ border-color: #000; z-index: 3; }}
.op:target {{ outline: 3px solid #1f4fd8; z-index: 4; }}
.ok {{ background: #b7e4c7; }}
.fail {{ background: #f4a6a6; }}
.info {{ background: #ffd98a; }}
.open {{ background: #e0e0e0; border-style: dashed; }}
.crash {{ background: repeating-linear-gradient(45deg, #ddd, #ddd 4px, #f4f4f4 4px, #f4f4f4 8px); color: #555; }}
.t {{ position: absolute; left: 0; width: {}px; text-align: right; color: #888; font-size: 10px; line-height: {ROW}px; font-variant-numeric: tabular-nums; }}
.mark {{ position: absolute; left: 0; width: {width}px; height: {ROW}px; border-top: 2px solid; font-size: 11px; line-height: {}px; padding-left: {GUTTER}px; box-sizing: border-box; white-space: nowrap; z-index: 2; pointer-events: none; }}
.mark span {{ background: #fffd; padding: 0 4px; }}
.nemesis {{ border-color: #c98a00; color: #8a5d00; }}
.fault {{ border-color: #c62828; color: #c62828; font-weight: bold; }}
.phase {{ border-color: #888; border-top-style: dashed; color: #555; }}
.gap {{ position: absolute; left: 0; width: {width}px; height: {ROW}px; background: repeating-linear-gradient(90deg, #eee, #eee 6px, #fff 6px, #fff 12px); color: #555; text-align: center; line-height: {ROW}px; font-style: italic; }}
</style></head>
<body>
<h1>Timeline</h1>
<p><a href="index.html">The run's page</a> · <a href="history.jsonl">history.jsonl</a></p>
<p>One column per process (a client; a crashed or timed-out client is replaced by a new process), each operation a box from its invocation to its completion. Time runs down one row per event (an invocation or a completion), so boxes overlap exactly when the operations did; the left margin gives the time in seconds, and hovering a box shows its request, its reply and how long it took.</p>
<p class="key"><span class="ok">ok</span><span class="fail">fail</span><span class="info">info (indeterminate)</span><span class="crash">crash (client replaced)</span><span class="open">never completed</span> <b style="color:#8a5d00">—</b> nemesis <b style="color:#c62828">—</b> node fault <b style="color:#555">- -</b> phase</p>
<p><b>{}</b></p>
"#,
        height + HEAD,
        COL - 4,
        COL - 4,
        ROW - 2,
        HEAD + 20,
        GUTTER - 8,
        ROW - 2,
        esc(&shown),
    );
    let _ = write!(out, "<div id=\"ops\"><div class=\"head\">");
    for (p, c) in &columns {
        let _ = write!(
            out,
            "<div style=\"left:{}px\">process {p}<br><small>node {}</small></div>",
            GUTTER + c * COL,
            esc(&node_of(input, *p))
        );
    }
    out.push_str("</div>\n");
    let top = |row: u32| HEAD + row * ROW;
    for (i, r) in rows.iter().enumerate() {
        let i = i as u32;
        match r {
            Row::Event(_, time) => {
                // The time every fifth row, and at the first row.
                if i.is_multiple_of(5) {
                    let _ = writeln!(
                        out,
                        "<div class=\"t\" style=\"top:{}px\">{}</div>",
                        top(i),
                        format_args!("{:.6}", *time as f64 / 1e9)
                    );
                }
            }
            Row::Mark { time, class, text } => {
                let _ = writeln!(
                    out,
                    "<div class=\"mark {class}\" style=\"top:{}px\"><span>{} s: {}</span></div>",
                    top(i),
                    format_args!("{:.4}", *time as f64 / 1e9),
                    esc(text)
                );
            }
            Row::Gap(text) => {
                let _ = writeln!(
                    out,
                    "<div class=\"gap\" style=\"top:{}px\">{}</div>",
                    top(i),
                    esc(text)
                );
            }
        }
    }
    let last_row = rows.len() as u32;
    for p in shown_pairs {
        let Some(inv) = h.invocation(p) else {
            continue;
        };
        let done = completed(p).map(|_| p);
        let Some(&r0) = row_of.get(&inv.index) else {
            continue;
        };
        let r1 = done
            .and_then(|d| row_of.get(&d.index).copied())
            .unwrap_or(last_row.saturating_sub(1));
        let class = match done {
            None => "open",
            Some(_) if *inv.value == OpValue::Crash => "crash",
            Some(d) => d.kind.name(),
        };
        let id = done.map_or(inv.index, |d| d.index);
        let _ = writeln!(
            out,
            "<a class=\"op {class}\" id=\"op-{id}\" href=\"#op-{id}\" style=\"left:{}px;top:{}px;height:{}px\" title=\"{}\">{}</a>",
            GUTTER + columns[&inv.process] * COL,
            top(r0),
            (r1 + 1 - r0) * ROW - 1,
            esc(&title(input, &inv, done)),
            esc(&label(h, &inv, done)),
        );
    }
    out.push_str("</div>\n</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::RawMsg;

    fn send(
        h: &mut History,
        t: u64,
        p: u64,
        kind: OpType,
        key: &str,
        msg: i64,
        offset: Option<i64>,
    ) {
        let key = h.tables.key(key);
        let msg = h.tables.msg(&RawMsg::Int(msg));
        let error = (kind == OpType::Info).then_some("timeout");
        h.push(t, p, kind, OpValue::Send { key, offset, msg }, error);
    }

    fn page(h: &History, focus: &[u64]) -> String {
        let tl = Timeline {
            main_end: 5_000,
            ..Timeline::default()
        };
        let faults = [NodeFault {
            node: "n1".into(),
            kind: "crashed".into(),
            detail: "Node n1 crashed with exit status: 1".into(),
            time: 6_000,
        }];
        timeline_html(&Input {
            history: h,
            timeline: &tl,
            faults: &faults,
            concurrency: 2,
            node_ids: &["n0".into(), "n1".into()],
            focus,
        })
    }

    #[test]
    fn every_operation_is_a_box_with_its_request_and_reply() {
        let mut h = History::default();
        send(&mut h, 1_000, 0, OpType::Invoke, "5", 3, None);
        send(&mut h, 1_100, 1, OpType::Invoke, "6", 4, None);
        send(&mut h, 1_200, 0, OpType::Ok, "5", 3, Some(12));
        send(&mut h, 4_000, 1, OpType::Info, "6", 4, None);
        h.push(4_500, 3, OpType::Invoke, OpValue::Crash, None);
        h.push(4_500, 3, OpType::Info, OpValue::Crash, None);
        h.push(4_600, 5, OpType::Invoke, OpValue::Poll(None), None);
        h.push_nemesis(2_000, "start-partition", serde_json::json!("majority"));
        h.push_nemesis(
            2_000,
            "start-partition",
            serde_json::json!(["isolated", {"n0": ["n1"]}]),
        );
        let html = page(&h, &[]);
        assert_eq!(html.matches("<a class=\"op ").count(), 4, "{html}");
        for (id, class) in [(2, "ok"), (3, "info"), (5, "crash"), (6, "open")] {
            assert!(
                html.contains(&format!("<a class=\"op {class}\" id=\"op-{id}\"")),
                "op {id} {class}:\n{html}"
            );
        }
        assert!(
            html.contains("request: [[&quot;send&quot;,&quot;5&quot;,3]]"),
            "{html}"
        );
        assert!(
            html.contains("reply: [[&quot;send&quot;,&quot;5&quot;,[12,3]]]"),
            "{html}"
        );
        assert!(html.contains("error: timeout"), "{html}");
        // Process 1 is thread 1, on node n1; its box spans from its invocation (row 1) past
        // the other op's completion and the nemesis line to its own completion (row 4).
        assert!(
            html.contains("process 1<br><small>node n1</small>"),
            "{html}"
        );
        assert!(
            html.contains(&format!(
                "id=\"op-3\" href=\"#op-3\" style=\"left:{}px;top:{}px;height:{}px\"",
                GUTTER + COL,
                HEAD + ROW,
                4 * ROW - 1
            )),
            "{html}"
        );
        assert!(
            html.contains("nemesis: partition starts (majority): n0 hears nothing from n1"),
            "{html}"
        );
        assert!(html.contains("node n1 crashed"), "{html}");
        assert!(html.contains("main phase ends"), "{html}");
        assert!(html.contains("All 4 operations."), "{html}");
    }

    #[test]
    fn a_long_history_shows_a_window_around_the_cited_operations_or_its_start() {
        let mut h = History::default();
        let n = OP_LIMIT + 2_000;
        for i in 0..n as u64 {
            send(&mut h, 10 * i, 0, OpType::Invoke, "1", i as i64, None);
            send(
                &mut h,
                10 * i + 5,
                0,
                OpType::Ok,
                "1",
                i as i64,
                Some(i as i64),
            );
        }
        let boxes = |html: &str| html.matches("<a class=\"op ").count();
        let first = page(&h, &[]);
        assert_eq!(boxes(&first), OP_LIMIT);
        assert!(
            first.contains(&format!("The first {OP_LIMIT} of {n} operations")),
            "first"
        );
        assert!(first.contains("… 2000 more operations not shown"));
        // The last op's completion is cited: it is shown, with the ops before it.
        let last = 2 * n as u64 - 1;
        let around = page(&h, &[3, last]);
        assert!(around.contains(&format!("id=\"op-{last}\"")));
        assert!(around.contains("id=\"op-3\""));
        assert!(
            boxes(&around) <= OP_LIMIT && boxes(&around) > 2,
            "{}",
            boxes(&around)
        );
        assert!(around.contains("the anomaly examples cite"));
        assert!(around.contains("operations not shown …"));
    }

    #[test]
    fn cited_ops_are_every_index_in_the_examples() {
        let errors = serde_json::json!({
            "lost-write": {"count": 1, "examples": [{"poll": {"index": 9}, "write": {"index": 4, "time": 7}}]},
            "G1a": {"count": 1, "examples": [{"index": 9}]},
        });
        assert_eq!(cited_ops(&errors), vec![4, 9]);
    }
}
