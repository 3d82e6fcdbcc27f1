//! Hand-made SVG plots (latency and throughput over time) and the `index.html` that shows
//! them with the results summary. No plotting library and no native dependencies.

use std::fmt::Write as _;

use crate::checker::Validity;
use crate::history::{F, OpType};
use crate::report::verdict_line;
use crate::results::{Sample, quantile};
use crate::runner::Timeline;

const W: f64 = 900.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 160.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

/// Most points a scatter draws per series; beyond that it keeps every n-th (but all
/// failed and indeterminate ops, up to the same cap), so the SVG stays small.
const MAX_POINTS: usize = 4000;

fn color(f: F, kind: OpType) -> &'static str {
    match (kind, f) {
        (OpType::Ok, F::Send) => "#1f77b4",
        (OpType::Ok, F::Poll) => "#2ca02c",
        (OpType::Ok, F::Assign) => "#9467bd",
        (OpType::Fail, _) => "#ff7f0e",
        (OpType::Info, _) => "#d62728",
        _ => "#7f7f7f",
    }
}

struct Chart {
    svg: String,
    x_max: f64,
    y_min: f64,
    y_max: f64,
    log_y: bool,
    legend: usize,
}

impl Chart {
    fn new(title: &str, x_max: f64, y_min: f64, y_max: f64, log_y: bool, y_label: &str) -> Chart {
        let mut svg = String::new();
        let _ = write!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="Helvetica, Arial, sans-serif" font-size="12">
<rect width="{W}" height="{H}" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{}</text>
<text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">{}</text>
<text x="{}" y="{}" text-anchor="middle">time (s)</text>
"#,
            LEFT + (W - LEFT - RIGHT) / 2.0,
            esc(title),
            TOP + (H - TOP - BOTTOM) / 2.0,
            TOP + (H - TOP - BOTTOM) / 2.0,
            esc(y_label),
            LEFT + (W - LEFT - RIGHT) / 2.0,
            H - 12.0
        );
        let mut c = Chart {
            svg,
            x_max: x_max.max(1e-9),
            y_min,
            y_max: y_max.max(y_min * 1.0001 + 1e-9),
            log_y,
            legend: 0,
        };
        c.axes();
        c
    }

    fn x(&self, t: f64) -> f64 {
        LEFT + t / self.x_max * (W - LEFT - RIGHT)
    }

    fn y(&self, v: f64) -> f64 {
        let frac = if self.log_y {
            (v.max(self.y_min).ln() - self.y_min.ln()) / (self.y_max.ln() - self.y_min.ln())
        } else {
            (v - self.y_min) / (self.y_max - self.y_min)
        };
        H - BOTTOM - frac.clamp(0.0, 1.0) * (H - TOP - BOTTOM)
    }

    fn axes(&mut self) {
        let (x0, x1, y0, y1) = (LEFT, W - RIGHT, TOP, H - BOTTOM);
        let _ = writeln!(
            self.svg,
            r##"<rect x="{x0}" y="{y0}" width="{}" height="{}" fill="none" stroke="#444"/>"##,
            x1 - x0,
            y1 - y0
        );
        for t in nice_ticks(0.0, self.x_max) {
            let x = self.x(t);
            let _ = writeln!(
                self.svg,
                r##"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{y1}" stroke="#eee"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
                y1 + 16.0,
                fmt_num(t)
            );
        }
        let ticks = if self.log_y {
            log_ticks(self.y_min, self.y_max)
        } else {
            nice_ticks(self.y_min, self.y_max)
        };
        for v in ticks {
            let y = self.y(v);
            let _ = writeln!(
                self.svg,
                r##"<line x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                x0 - 6.0,
                y + 4.0,
                fmt_num(v)
            );
        }
    }

    /// Shaded spans where the network was partitioned, in Jepsen's partition colour.
    fn partitions(&mut self, spans: &[(u64, u64)]) {
        for &(a, b) in spans {
            let (a, b) = (a as f64 / 1e9, (b as f64 / 1e9).min(self.x_max));
            if b <= a {
                continue;
            }
            let _ = writeln!(
                self.svg,
                r##"<rect x="{:.1}" y="{TOP}" width="{:.1}" height="{}" fill="#E9DCA0" fill-opacity="0.6"><title>partition {a:.2} s to {b:.2} s</title></rect>"##,
                self.x(a),
                self.x(b) - self.x(a),
                H - TOP - BOTTOM
            );
        }
        if !spans.is_empty() {
            self.legend("partition", "#E9DCA0", true);
        }
    }

    /// Dashed vertical lines where phases change.
    fn phases(&mut self, marks: &[(f64, &str)]) {
        for (i, (t, label)) in marks.iter().enumerate() {
            if *t <= 0.0 || *t > self.x_max {
                continue;
            }
            let x = self.x(*t);
            // Labels near the right edge go left of their line, clear of the legend;
            // successive labels step down so close phases do not overprint.
            let (lx, anchor) = if x > W - RIGHT - 90.0 {
                (x - 3.0, "end")
            } else {
                (x + 3.0, "start")
            };
            let _ = writeln!(
                self.svg,
                r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{}" stroke="#F3974A" stroke-dasharray="4 3"/><text x="{lx:.1}" y="{}" text-anchor="{anchor}" fill="#c76a1a" font-size="10">{}</text>"##,
                H - BOTTOM,
                TOP + 12.0 + 12.0 * i as f64,
                esc(label)
            );
        }
    }

    fn legend(&mut self, label: &str, color: &str, line: bool) {
        let x = W - RIGHT + 14.0;
        let y = TOP + 10.0 + 18.0 * self.legend as f64;
        self.legend += 1;
        if line {
            let _ = writeln!(
                self.svg,
                r#"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{color}" stroke-width="2"/>"#,
                x + 16.0
            );
        } else {
            let _ = writeln!(
                self.svg,
                r#"<circle cx="{}" cy="{y}" r="3" fill="{color}"/>"#,
                x + 8.0
            );
        }
        let _ = writeln!(
            self.svg,
            r#"<text x="{}" y="{}">{}</text>"#,
            x + 22.0,
            y + 4.0,
            esc(label)
        );
    }

    fn points(&mut self, pts: &[(f64, f64)], color: &str, opacity: f64) {
        let _ = write!(self.svg, r#"<g fill="{color}" fill-opacity="{opacity}">"#);
        for (t, v) in pts {
            let _ = write!(
                self.svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="1.6"/>"#,
                self.x(*t),
                self.y(*v)
            );
        }
        self.svg.push_str("</g>\n");
    }

    fn line(&mut self, pts: &[(f64, f64)], color: &str, dash: bool) {
        if pts.is_empty() {
            return;
        }
        let d: Vec<String> = pts
            .iter()
            .map(|(t, v)| format!("{:.1},{:.1}", self.x(*t), self.y(*v)))
            .collect();
        let dash = if dash {
            r#" stroke-dasharray="5 3""#
        } else {
            ""
        };
        let _ = writeln!(
            self.svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.8"{dash} points="{}"/>"#,
            d.join(" ")
        );
    }

    fn finish(mut self, note: Option<&str>) -> String {
        if let Some(n) = note {
            let _ = writeln!(
                self.svg,
                r##"<text x="{}" y="{}" text-anchor="middle" fill="#888">{}</text>"##,
                LEFT + (W - LEFT - RIGHT) / 2.0,
                TOP + (H - TOP - BOTTOM) / 2.0,
                esc(n)
            );
        }
        self.svg.push_str("</svg>\n");
        self.svg
    }
}

fn esc(s: &str) -> String {
    crate::text::escape_html(s)
}

fn fmt_num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{}", (v * 10.0).round() / 10.0)
    } else {
        format!("{}", (v * 1000.0).round() / 1000.0)
    }
}

/// About five round-numbered ticks between `lo` and `hi`.
fn nice_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(1e-9);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-6 {
        out.push(t);
        t += step;
    }
    out
}

fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    (a..=b)
        .map(|e| 10f64.powi(e))
        .filter(|t| *t >= lo * 0.9999 && *t <= hi * 1.0001)
        .collect()
}

fn phase_marks(tl: &Timeline) -> Vec<(f64, &'static str)> {
    let s = |ns: u64| ns as f64 / 1e9;
    let mut m = vec![(s(tl.main_end), "main ends")];
    if tl.final_start > 0 {
        m.push((s(tl.final_start), "final polls"));
    }
    m
}

/// `latency.svg`: each op's latency against its start time (log scale), by op and
/// outcome, with the p50/p95/p99/max of ok ops per time bin drawn over it.
pub fn latency_svg(samples: &[Sample], tl: &Timeline) -> String {
    let x_max = (tl.end.max(1) as f64 / 1e9).max(
        samples
            .iter()
            .map(|s| s.start as f64 / 1e9)
            .fold(0.0, f64::max),
    );
    let real: Vec<&Sample> = samples.iter().filter(|s| s.f != F::Crash).collect();
    let lat_ms = |s: &Sample| (s.latency as f64 / 1e6).max(0.001);
    let (mut lo, mut hi) = (f64::MAX, 0.0f64);
    for s in &real {
        lo = lo.min(lat_ms(s));
        hi = hi.max(lat_ms(s));
    }
    if real.is_empty() {
        (lo, hi) = (0.01, 10.0);
    }
    let lo = 10f64.powf(lo.log10().floor());
    let hi = 10f64.powf(hi.log10().ceil()).max(lo * 10.0);
    let mut c = Chart::new("Latency", x_max, lo, hi, true, "latency (ms, log scale)");
    c.partitions(&tl.partitions);
    c.phases(&phase_marks(tl));
    let series = [
        (F::Send, OpType::Ok, "send ok"),
        (F::Poll, OpType::Ok, "poll ok"),
        (F::Assign, OpType::Ok, "assign ok"),
    ];
    for (f, kind, label) in series {
        let pts: Vec<&&Sample> = real.iter().filter(|s| s.f == f && s.kind == kind).collect();
        if pts.is_empty() {
            continue;
        }
        let stride = pts.len().div_ceil(MAX_POINTS).max(1);
        let xy: Vec<(f64, f64)> = pts
            .iter()
            .step_by(stride)
            .map(|s| (s.start as f64 / 1e9, lat_ms(s)))
            .collect();
        c.points(&xy, color(f, kind), 0.35);
        c.legend(label, color(f, kind), false);
    }
    for (kind, label) in [(OpType::Fail, "fail"), (OpType::Info, "info")] {
        let xy: Vec<(f64, f64)> = real
            .iter()
            .filter(|s| s.kind == kind)
            .take(MAX_POINTS)
            .map(|s| (s.start as f64 / 1e9, lat_ms(s)))
            .collect();
        if !xy.is_empty() {
            c.points(&xy, color(F::Send, kind), 0.9);
            c.legend(label, color(F::Send, kind), false);
        }
    }
    // Quantiles of ok ops per bin.
    let bin = bin_width(x_max);
    let n_bins = (x_max / bin).ceil() as usize + 1;
    let mut bins: Vec<Vec<u64>> = vec![Vec::new(); n_bins];
    for s in real.iter().filter(|s| s.kind == OpType::Ok) {
        let i = ((s.start as f64 / 1e9) / bin) as usize;
        if let Some(b) = bins.get_mut(i) {
            b.push(s.latency);
        }
    }
    for b in &mut bins {
        b.sort_unstable();
    }
    for (q, label, col) in [
        (0.5, "p50", "#000000"),
        (0.95, "p95", "#555555"),
        (0.99, "p99", "#8c564b"),
        (1.0, "max", "#e377c2"),
    ] {
        // One polyline per run of non-empty bins: no line across the recovery sleep.
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (i, b) in bins.iter().enumerate() {
            if b.is_empty() {
                runs.push(Vec::new());
                continue;
            }
            let t = (i as f64 + 0.5) * bin;
            if let Some(r) = runs.last_mut() {
                r.push((t, (quantile(b, q) as f64 / 1e6).max(0.001)));
            }
        }
        let mut drawn = false;
        for pts in runs.iter().filter(|r| r.len() > 1) {
            c.line(pts, col, q == 1.0);
            drawn = true;
        }
        if drawn {
            c.legend(&format!("{label} (ok)"), col, true);
        }
    }
    c.finish(real.is_empty().then_some("no operations"))
}

/// `rate.svg`: completed operations per second over time, by op and outcome.
pub fn rate_svg(samples: &[Sample], tl: &Timeline) -> String {
    let x_max = (tl.end.max(1) as f64 / 1e9).max(
        samples
            .iter()
            .map(|s| s.start as f64 / 1e9)
            .fold(0.0, f64::max),
    );
    let bin = bin_width(x_max);
    let n_bins = (x_max / bin).ceil() as usize + 1;
    let series = [
        (F::Send, OpType::Ok, "send ok"),
        (F::Poll, OpType::Ok, "poll ok"),
        (F::Assign, OpType::Ok, "assign ok"),
    ];
    let mut counts: Vec<Vec<f64>> = vec![vec![0.0; n_bins]; series.len() + 2];
    for s in samples.iter().filter(|s| s.f != F::Crash) {
        let i = (((s.start + s.latency) as f64 / 1e9) / bin) as usize;
        let row = match s.kind {
            OpType::Fail => series.len(),
            OpType::Info => series.len() + 1,
            _ => match series.iter().position(|(f, _, _)| *f == s.f) {
                Some(r) => r,
                None => continue,
            },
        };
        if let Some(c) = counts[row].get_mut(i) {
            *c += 1.0 / bin;
        }
    }
    let y_max = counts
        .iter()
        .flatten()
        .fold(0.0f64, |a, b| a.max(*b))
        .max(1.0)
        * 1.1;
    let mut c = Chart::new(
        "Throughput",
        x_max,
        0.0,
        y_max,
        false,
        "operations per second",
    );
    c.partitions(&tl.partitions);
    c.phases(&phase_marks(tl));
    let mut labels: Vec<(&str, &str)> =
        series.iter().map(|(f, k, l)| (*l, color(*f, *k))).collect();
    labels.push(("fail", color(F::Send, OpType::Fail)));
    labels.push(("info", color(F::Send, OpType::Info)));
    for (row, (label, col)) in counts.iter().zip(labels) {
        if row.iter().all(|v| *v == 0.0) {
            continue;
        }
        let pts: Vec<(f64, f64)> = row
            .iter()
            .enumerate()
            .map(|(i, v)| ((i as f64 + 0.5) * bin, *v))
            .collect();
        c.line(&pts, col, false);
        c.legend(label, col, true);
    }
    c.finish(samples.is_empty().then_some("no operations"))
}

/// About a hundred bins, at least 0.1 s and at most 1 s wide.
fn bin_width(x_max: f64) -> f64 {
    (x_max / 100.0).clamp(0.1, 1.0)
}

/// `index.html`: the verdict, the summary tables and both plots.
pub fn index_html(valid: Validity, summary: &str, node_ids: &[String]) -> String {
    let color = match valid {
        Validity::True => "#2ca02c",
        Validity::False => "#d62728",
        Validity::Unknown => "#ff7f0e",
    };
    let mut logs = String::new();
    for n in node_ids {
        let _ = write!(
            logs,
            r#" <a href="node-logs/{0}.log">node-logs/{0}.log</a>"#,
            esc(n)
        );
    }
    format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>kafka-workload: {verdict}</title>
<style>
body {{ font-family: Helvetica, Arial, sans-serif; margin: 24px; color: #222; }}
h1 {{ color: {color}; font-size: 22px; }}
pre {{ background: #f6f6f6; padding: 12px; overflow-x: auto; font-size: 13px; }}
img {{ max-width: 100%; border: 1px solid #ddd; margin: 8px 0; }}
</style></head>
<body>
<h1>{verdict}</h1>
<p>Files: <a href="results.json">results.json</a> <a href="results.edn">results.edn</a> <a href="history.jsonl">history.jsonl</a> <a href="messages.svg">messages.svg</a>{logs}</p>
<img src="latency.svg" alt="latency over time">
<img src="rate.svg" alt="throughput over time">
<h2>Summary</h2>
<pre>{summary}</pre>
</body></html>
"#,
        verdict = esc(verdict_line(valid)),
        summary = esc(summary),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(f: F, kind: OpType, start_ms: u64, lat_us: u64) -> Sample {
        Sample {
            f,
            kind,
            start: start_ms * 1_000_000,
            latency: lat_us * 1000,
        }
    }

    #[test]
    fn plots_are_well_formed_svg() {
        let samples: Vec<Sample> = (0..5000)
            .map(|i| {
                sample(
                    if i % 2 == 0 { F::Send } else { F::Poll },
                    OpType::Ok,
                    i,
                    50 + i % 300,
                )
            })
            .chain([sample(F::Send, OpType::Info, 900, 5_000_000)])
            .collect();
        let tl = Timeline {
            main_start: 0,
            main_end: 4_000_000_000,
            final_start: 4_500_000_000,
            final_end: 5_000_000_000,
            end: 5_000_000_000,
            partitions: vec![(1_000_000_000, 2_000_000_000)],
        };
        for svg in [latency_svg(&samples, &tl), rate_svg(&samples, &tl)] {
            assert!(svg.starts_with("<svg"));
            assert!(svg.contains("<title>partition 1.00 s to 2.00 s</title>"));
            assert!(svg.trim_end().ends_with("</svg>"));
            assert!(svg.contains("polyline"));
            let bad = ["NaN", "\"inf", ",inf", "inf,", "inf\""];
            assert!(!bad.iter().any(|b| svg.contains(b)), "bad coordinates");
        }
        let empty = latency_svg(&[], &Timeline::default());
        assert!(empty.contains("no operations") && !empty.contains("NaN"));
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_ticks(0.0, 20.0), vec![0.0, 5.0, 10.0, 15.0, 20.0]);
        assert_eq!(log_ticks(0.01, 100.0), vec![0.01, 0.1, 1.0, 10.0, 100.0]);
    }
}
