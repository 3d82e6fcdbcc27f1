//! Hand-made SVG plots (latency and throughput over time) and the `index.html` that shows
//! them with the results summary. No plotting library and no native dependencies.

use std::fmt::Write as _;

use crate::checker::{Validity, WorkloadResult};
use crate::history::{F, OpType};
use crate::network::SERVER_TICK;
use crate::report::verdict_line;
use crate::results::{Sample, Samples, node_of, quantile};
use crate::runner::Timeline;
use crate::text::clip;
use crate::verdict::Verdict;

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

/// The x axis: the run's time in segments, each drawn at its own scale. The recovery
/// sleep between the main and the final phase is squeezed into a narrow band and the
/// final phase is given room to be seen, so the run's work fills the picture.
#[derive(Debug, Clone, PartialEq)]
struct Axis {
    segs: Vec<Seg>,
}

/// Seconds `t0..t1` drawn over the fraction `f0..f1` of the plot's width.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Seg {
    t0: f64,
    t1: f64,
    f0: f64,
    f1: f64,
    /// Drawn narrower than its length: the recovery sleep, where nothing is asked.
    squeezed: bool,
}

/// Widest the recovery sleep is drawn, as a share of the main phase's width.
const SLEEP_SHARE: f64 = 0.06;
/// Narrowest the final phase is drawn, as a share of the main phase's width.
const FINAL_SHARE: f64 = 0.2;
/// Narrowest time bin (s): a rate over less than this is mostly noise.
const MIN_BIN: f64 = 0.1;
/// Narrowest bin of the server-message plot (s).
const SERVER_BIN: f64 = 0.5;
/// Most bins one segment is cut into. Bins are at most a second wide, but a segment's span
/// comes from the history's times (`check` reads them from a file), so a span of years must
/// not size the bins' vector: past this count, bins widen instead. Ten thousand is 2.8 hours
/// at a second each, and more than the plot has pixels.
const MAX_BINS: f64 = 10_000.0;

impl Axis {
    fn linear(x_max: f64) -> Axis {
        Axis {
            segs: vec![Seg {
                t0: 0.0,
                t1: x_max.max(1e-9),
                f0: 0.0,
                f1: 1.0,
                squeezed: false,
            }],
        }
    }

    /// The main phase at full scale, the sleep after it squeezed when it is longer than
    /// [`SLEEP_SHARE`] of the main phase, and the final phase (if there was one) at least
    /// [`FINAL_SHARE`] of it wide.
    fn for_run(tl: &Timeline, x_max: f64) -> Axis {
        let s = |ns: u64| ns as f64 / 1e9;
        let main = s(tl.main_end).min(x_max);
        if main <= 0.0 || main >= x_max {
            return Axis::linear(x_max);
        }
        let final_start = (tl.final_start > tl.main_end).then(|| s(tl.final_start).min(x_max));
        let sleep_end = final_start.unwrap_or(x_max);
        // (from, to, drawn width in main-phase seconds, squeezed)
        let mut parts = vec![(0.0, main, main, false)];
        let sleep = sleep_end - main;
        if sleep > SLEEP_SHARE * main {
            parts.push((main, sleep_end, SLEEP_SHARE * main, true));
        } else if sleep > 0.0 {
            parts.push((main, sleep_end, sleep, false));
        }
        if let Some(a) = final_start
            && x_max > a
        {
            parts.push((a, x_max, (x_max - a).max(FINAL_SHARE * main), false));
        }
        let total: f64 = parts.iter().map(|p| p.2).sum();
        let mut f = 0.0;
        let segs = parts
            .into_iter()
            .map(|(t0, t1, w, squeezed)| {
                let f0 = f;
                f += w / total;
                Seg {
                    t0,
                    t1,
                    f0,
                    f1: f,
                    squeezed,
                }
            })
            .collect();
        Axis { segs }
    }

    fn end(&self) -> f64 {
        self.segs.last().map_or(1e-9, |s| s.t1)
    }

    /// Where `t` falls, as a fraction of the width (clamped to the axis).
    fn frac(&self, t: f64) -> f64 {
        let Some(seg) = self.segs.iter().find(|s| t <= s.t1).or(self.segs.last()) else {
            return 0.0;
        };
        let span = seg.t1 - seg.t0;
        if span <= 0.0 {
            return seg.f0;
        }
        seg.f0 + ((t - seg.t0) / span).clamp(0.0, 1.0) * (seg.f1 - seg.f0)
    }

    /// Time bins over the segments drawn to scale, about one per 1% of the width and
    /// at least [`MIN_BIN`] wide (so the last bin of a short final phase may end after
    /// it). None over a squeezed sleep: a line there would join what is far apart.
    fn bins(&self) -> Vec<Bin> {
        self.bins_at_least(MIN_BIN)
    }

    /// [`bins`](Self::bins), each at least `min` seconds wide.
    fn bins_at_least(&self, min: f64) -> Vec<Bin> {
        let mut out = Vec::new();
        for (si, s) in self.segs.iter().enumerate() {
            if s.squeezed {
                continue;
            }
            let span = s.t1 - s.t0;
            let n = ((s.f1 - s.f0) * 100.0).round().max(1.0);
            let w = (span / n).clamp(min, min.max(1.0)).max(span / MAX_BINS);
            let count = (span / w).ceil().max(1.0) as usize;
            for i in 0..count {
                let t0 = s.t0 + i as f64 * w;
                out.push(Bin {
                    t0,
                    t1: t0 + w,
                    // The middle of what of it lies in the segment.
                    mid: (t0 + (t0 + w).min(s.t1)) / 2.0,
                    seg: si,
                });
            }
        }
        out
    }
}

/// One time bin: counts over `t0..t1`, drawn at `mid`.
#[derive(Debug, Clone, Copy)]
struct Bin {
    t0: f64,
    t1: f64,
    mid: f64,
    seg: usize,
}

/// The bin holding `t`, if any.
fn bin_of(bins: &[Bin], t: f64) -> Option<usize> {
    let i = bins.partition_point(|b| b.t0 <= t).checked_sub(1)?;
    (t < bins[i].t1).then_some(i)
}

/// One polyline per run of bins with a value and in one segment: no line across a
/// squeezed sleep or over bins with nothing in them.
fn runs(bins: &[Bin], values: &[Option<f64>]) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut last_seg = usize::MAX;
    let mut open = false;
    for (b, v) in bins.iter().zip(values) {
        match v {
            Some(v) => {
                if !open || b.seg != last_seg {
                    out.push(Vec::new());
                }
                if let Some(r) = out.last_mut() {
                    r.push((b.mid, *v));
                }
                open = true;
                last_seg = b.seg;
            }
            None => open = false,
        }
    }
    out
}

struct Chart {
    svg: String,
    axis: Axis,
    y_min: f64,
    y_max: f64,
    log_y: bool,
    legend: usize,
}

impl Chart {
    /// A chart of the run: its partitions shaded and its phase changes marked, as every
    /// plot of a run has them.
    fn of_run(
        title: &str,
        axis: Axis,
        tl: &Timeline,
        y: (f64, f64),
        log_y: bool,
        y_label: &str,
    ) -> Chart {
        let mut c = Chart::new(title, axis, y.0, y.1, log_y, y_label);
        c.partitions(&tl.partitions);
        c.phases(&phase_marks(tl));
        c
    }

    fn new(title: &str, axis: Axis, y_min: f64, y_max: f64, log_y: bool, y_label: &str) -> Chart {
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
            axis,
            y_min,
            y_max: y_max.max(y_min * 1.0001 + 1e-9),
            log_y,
            legend: 0,
        };
        c.axes();
        c
    }

    fn x(&self, t: f64) -> f64 {
        LEFT + self.axis.frac(t) * (W - LEFT - RIGHT)
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
        let mut last_label = f64::MIN;
        for seg in self.axis.segs.clone() {
            let (a, b) = (self.x(seg.t0), self.x(seg.t1));
            if seg.squeezed {
                let mid = (a + b) / 2.0;
                let _ = writeln!(
                    self.svg,
                    r##"<rect x="{a:.1}" y="{y0}" width="{:.1}" height="{}" fill="#f0f0f0"/><text x="{mid:.1}" y="{:.1}" text-anchor="middle" fill="#777" font-size="11" transform="rotate(-90 {mid:.1} {:.1})">recovery sleep {} s, squeezed</text><text x="{mid:.1}" y="{}" text-anchor="middle" fill="#777">≈</text>"##,
                    b - a,
                    y1 - y0,
                    (y0 + y1) / 2.0,
                    (y0 + y1) / 2.0,
                    fmt_num(seg.t1 - seg.t0),
                    y1 + 16.0,
                );
                continue;
            }
            let want = ((seg.f1 - seg.f0) * 8.0).round().max(2.0);
            let (ticks, step) = nice_ticks_n(seg.t0, seg.t1, want);
            for t in ticks {
                let x = self.x(t);
                // Ticks of two segments can meet at their border: keep labels apart.
                if x - last_label < 45.0 {
                    continue;
                }
                last_label = x;
                let _ = writeln!(
                    self.svg,
                    r##"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{y1}" stroke="#eee"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
                    y1 + 16.0,
                    fmt_tick(t, step)
                );
            }
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
            let (a, b) = (a as f64 / 1e9, (b as f64 / 1e9).min(self.axis.end()));
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
            if *t <= 0.0 || *t > self.axis.end() {
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

    /// A polyline; a lone point (a bin alone in its run, as in a short final phase)
    /// as a dot, so it is not lost.
    fn line(&mut self, pts: &[(f64, f64)], color: &str, dash: bool) {
        if let [(t, v)] = pts {
            let _ = writeln!(
                self.svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{color}"/>"#,
                self.x(*t),
                self.y(*v)
            );
            return;
        }
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
    nice_ticks_n(lo, hi, 5.0).0
}

/// A tick at `t` labelled with as many decimals as `step` needs (a 4 ms final phase
/// is labelled in ms, not as five ticks all reading "8.1").
fn fmt_tick(t: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).clamp(0.0, 6.0) as usize;
    format!("{t:.decimals$}")
}

/// About `n` round-numbered ticks between `lo` and `hi`, and their step.
fn nice_ticks_n(lo: f64, hi: f64, n: f64) -> (Vec<f64>, f64) {
    let span = (hi - lo).max(1e-9);
    let raw = span / n.max(1.0);
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil();
    let mut out = Vec::new();
    let mut i = 0.0;
    // Multiples of the step, not a running sum: no 0.30000000000000004.
    while (first + i) * step <= hi + step * 1e-6 {
        out.push((first + i) * step);
        i += 1.0;
    }
    (out, step)
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

/// The run's axis: to its end or its last invocation, whichever is later.
fn run_axis(samples: &(impl Samples + ?Sized), tl: &Timeline) -> Axis {
    let x_max = (tl.end.max(1) as f64 / 1e9).max(
        samples
            .samples()
            .map(|s| s.start as f64 / 1e9)
            .fold(0.0, f64::max),
    );
    Axis::for_run(tl, x_max)
}

/// A colour per node, repeating after ten.
fn node_color(n: usize) -> &'static str {
    const C: [&str; 10] = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
        "#bcbd22", "#17becf",
    ];
    C[n % C.len()]
}

/// The y range of a log-scale latency chart holding every sample, in ms.
fn latency_range(real: impl Iterator<Item = Sample>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::MAX, 0.0f64);
    let mut empty = true;
    for s in real {
        lo = lo.min(lat_ms(&s));
        hi = hi.max(lat_ms(&s));
        empty = false;
    }
    if empty {
        (lo, hi) = (0.01, 10.0);
    }
    let lo = 10f64.powf(lo.log10().floor());
    (lo, 10f64.powf(hi.log10().ceil()).max(lo * 10.0))
}

fn lat_ms(s: &Sample) -> f64 {
    (s.latency as f64 / 1e6).max(0.001)
}

/// The `q` quantile of ok ops' latency (ms) per bin, `None` where a bin has none.
fn quantile_series(
    bins: &[Bin],
    ok: impl Iterator<Item = Sample>,
    qs: &[f64],
) -> Vec<Vec<Option<f64>>> {
    let mut by_bin: Vec<Vec<u64>> = vec![Vec::new(); bins.len()];
    for s in ok {
        if let Some(i) = bin_of(bins, s.start as f64 / 1e9) {
            by_bin[i].push(s.latency);
        }
    }
    for b in &mut by_bin {
        b.sort_unstable();
    }
    qs.iter()
        .map(|q| {
            by_bin
                .iter()
                .map(|b| (!b.is_empty()).then(|| (quantile(b, *q) as f64 / 1e6).max(0.001)))
                .collect()
        })
        .collect()
}

/// Per bin, the rate (per second) of the samples completed in it.
fn rate_series(bins: &[Bin], done: impl Iterator<Item = Sample>) -> Vec<f64> {
    let mut counts = vec![0.0; bins.len()];
    for s in done {
        if let Some(i) = bin_of(bins, (s.start + s.latency) as f64 / 1e9) {
            counts[i] += 1.0;
        }
    }
    counts
        .iter()
        .zip(bins)
        .map(|(c, b)| c / (b.t1 - b.t0))
        .collect()
}

/// The top of a rate plot's y axis: a tenth above the highest rate, and at least 1.1, so an
/// idle run still has an axis.
fn rate_top<'a>(rates: impl Iterator<Item = &'a f64>) -> f64 {
    rates.fold(0.0f64, |a, b| a.max(*b)).max(1.0) * 1.1
}

/// `latency.svg`: each op's latency against its start time (log scale), by op and
/// outcome, with the p50/p95/p99/max of ok ops per time bin drawn over it.
pub fn latency_svg(samples: &(impl Samples + ?Sized), tl: &Timeline) -> String {
    let axis = run_axis(samples, tl);
    let real = || samples.samples().filter(|s| s.f != F::Crash);
    let (lo, hi) = latency_range(real());
    let bins = axis.bins();
    let mut c = Chart::of_run(
        "Latency",
        axis,
        tl,
        (lo, hi),
        true,
        "latency (ms, log scale)",
    );
    let series = [
        (F::Send, OpType::Ok, "send ok"),
        (F::Poll, OpType::Ok, "poll ok"),
        (F::Assign, OpType::Ok, "assign ok"),
    ];
    for (f, kind, label) in series {
        let pts = || real().filter(move |s| s.f == f && s.kind == kind);
        let n = pts().count();
        if n == 0 {
            continue;
        }
        let stride = n.div_ceil(MAX_POINTS).max(1);
        let xy: Vec<(f64, f64)> = pts()
            .step_by(stride)
            .map(|s| (s.start as f64 / 1e9, lat_ms(&s)))
            .collect();
        c.points(&xy, color(f, kind), 0.35);
        c.legend(label, color(f, kind), false);
    }
    for (kind, label) in [(OpType::Fail, "fail"), (OpType::Info, "info")] {
        let xy: Vec<(f64, f64)> = real()
            .filter(|s| s.kind == kind)
            .take(MAX_POINTS)
            .map(|s| (s.start as f64 / 1e9, lat_ms(&s)))
            .collect();
        if !xy.is_empty() {
            c.points(&xy, color(F::Send, kind), 0.9);
            c.legend(label, color(F::Send, kind), false);
        }
    }
    let qs = [
        (0.5, "p50", "#000000"),
        (0.95, "p95", "#555555"),
        (0.99, "p99", "#8c564b"),
        (1.0, "max", "#e377c2"),
    ];
    let values = quantile_series(
        &bins,
        real().filter(|s| s.kind == OpType::Ok),
        &qs.map(|q| q.0),
    );
    for ((q, label, col), v) in qs.into_iter().zip(values) {
        let mut drawn = false;
        for pts in runs(&bins, &v) {
            c.line(&pts, col, q == 1.0);
            drawn = true;
        }
        if drawn {
            c.legend(&format!("{label} (ok)"), col, true);
        }
    }
    c.finish(real().next().is_none().then_some("no operations"))
}

/// What a plot of a history with no operations says instead.
fn no_operations(samples: &(impl Samples + ?Sized)) -> Option<&'static str> {
    samples
        .samples()
        .next()
        .is_none()
        .then_some("no operations")
}

/// `rate.svg`: completed operations per second over time, by op and outcome.
pub fn rate_svg(samples: &(impl Samples + ?Sized), tl: &Timeline) -> String {
    let axis = run_axis(samples, tl);
    let bins = axis.bins();
    let real = || samples.samples().filter(|s| s.f != F::Crash);
    let mut rows: Vec<(&str, &str, Vec<f64>)> = [F::Send, F::Poll, F::Assign]
        .into_iter()
        .map(|f| {
            let label = match f {
                F::Send => "send ok",
                F::Poll => "poll ok",
                _ => "assign ok",
            };
            let ok = real().filter(move |s| s.f == f && s.kind == OpType::Ok);
            (label, color(f, OpType::Ok), rate_series(&bins, ok))
        })
        .collect();
    for (kind, label) in [(OpType::Fail, "fail"), (OpType::Info, "info")] {
        let these = real().filter(move |s| s.kind == kind);
        rows.push((label, color(F::Send, kind), rate_series(&bins, these)));
    }
    let y = (0.0, rate_top(rows.iter().flat_map(|r| r.2.iter())));
    let mut c = Chart::of_run("Throughput", axis, tl, y, false, "operations per second");
    for (label, col, row) in rows {
        if row.iter().all(|v| *v == 0.0) {
            continue;
        }
        let v: Vec<Option<f64>> = row.into_iter().map(Some).collect();
        for pts in runs(&bins, &v) {
            c.line(&pts, col, false);
        }
        c.legend(label, col, true);
    }
    c.finish(no_operations(samples))
}

/// What the per-node plots need to know of the run.
#[derive(Debug)]
pub struct Nodes<'a> {
    pub ids: &'a [String],
    pub concurrency: usize,
}

/// `latency-by-node.svg` (several nodes): each node's p50 (solid) and p99 (dashed)
/// latency of ok ops per time bin, by the node its client talked to.
pub fn latency_by_node_svg(
    samples: &(impl Samples + ?Sized),
    tl: &Timeline,
    nodes: &Nodes<'_>,
) -> String {
    let axis = run_axis(samples, tl);
    let real = || samples.samples().filter(|s| s.f != F::Crash);
    let (lo, hi) = latency_range(real());
    let bins = axis.bins();
    let mut c = Chart::of_run(
        "Latency by node (ok ops: p50 solid, p99 dashed)",
        axis,
        tl,
        (lo, hi),
        true,
        "latency (ms, log scale)",
    );
    for (n, id) in nodes.ids.iter().enumerate() {
        let mine = real().filter(|s| {
            s.kind == OpType::Ok && node_of(s.process, nodes.concurrency, nodes.ids.len()) == n
        });
        let v = quantile_series(&bins, mine, &[0.5, 0.99]);
        for (i, series) in v.iter().enumerate() {
            for pts in runs(&bins, series) {
                c.line(&pts, node_color(n), i == 1);
            }
        }
        c.legend(id, node_color(n), true);
    }
    c.finish(real().next().is_none().then_some("no operations"))
}

/// `rate-by-node.svg` (several nodes): ok operations per second completed through each
/// node (solid), and those that failed or are indeterminate (dashed).
pub fn rate_by_node_svg(
    samples: &(impl Samples + ?Sized),
    tl: &Timeline,
    nodes: &Nodes<'_>,
) -> String {
    let axis = run_axis(samples, tl);
    let bins = axis.bins();
    let node = |s: &Sample| node_of(s.process, nodes.concurrency, nodes.ids.len());
    let real = || samples.samples().filter(|s| s.f != F::Crash);
    let mut rows = Vec::new();
    for n in 0..nodes.ids.len() {
        let ok = rate_series(
            &bins,
            real().filter(|s| node(s) == n && s.kind == OpType::Ok),
        );
        let bad = rate_series(
            &bins,
            real().filter(|s| node(s) == n && s.kind != OpType::Ok),
        );
        rows.push((n, ok, bad));
    }
    let y = (
        0.0,
        rate_top(rows.iter().flat_map(|r| r.1.iter().chain(r.2.iter()))),
    );
    let mut c = Chart::of_run(
        "Throughput by node (ok solid, fail or info dashed)",
        axis,
        tl,
        y,
        false,
        "operations per second",
    );
    for (n, ok, bad) in rows {
        for (row, dash) in [(ok, false), (bad, true)] {
            if row.iter().all(|v| *v == 0.0) {
                continue;
            }
            let v: Vec<Option<f64>> = row.into_iter().map(Some).collect();
            for pts in runs(&bins, &v) {
                c.line(&pts, node_color(n), dash);
            }
        }
        c.legend(&nodes.ids[n], node_color(n), true);
    }
    c.finish(no_operations(samples))
}

/// `server-msgs.svg`: server messages (node to node and node to service) sent per
/// second over time, from the network's [`SERVER_TICK`] counts: where 5c's msgs-per-op
/// comes from.
pub fn server_msgs_svg(sends: &[u32], samples: &(impl Samples + ?Sized), tl: &Timeline) -> String {
    let tick = SERVER_TICK as f64 / 1e9;
    let mut axis = run_axis(samples, tl);
    if axis.end() < sends.len() as f64 * tick {
        axis = Axis::for_run(tl, sends.len() as f64 * tick);
    }
    // Nodes send in periodic batches (every 20 to 120 ms and more): bins narrower than
    // half a second alias with the period and draw a saw-tooth that is not there.
    let bins = axis.bins_at_least(SERVER_BIN);
    let mut counts = vec![0.0; bins.len()];
    for (i, n) in sends.iter().enumerate() {
        // Each tick counted in the bin holding its middle.
        if let Some(b) = bin_of(&bins, (i as f64 + 0.5) * tick) {
            counts[b] += f64::from(*n);
        }
    }
    let rate: Vec<f64> = counts
        .iter()
        .zip(&bins)
        .map(|(c, b)| c / (b.t1 - b.t0))
        .collect();
    let mut c = Chart::of_run(
        "Server messages",
        axis,
        tl,
        (0.0, rate_top(rate.iter())),
        false,
        "server messages sent per second",
    );
    let total: u64 = sends.iter().map(|n| u64::from(*n)).sum();
    let v: Vec<Option<f64>> = rate.into_iter().map(Some).collect();
    for pts in runs(&bins, &v) {
        c.line(&pts, "#17becf", false);
    }
    c.legend(&format!("{total} sent"), "#17becf", true);
    c.finish((total == 0).then_some("no server messages"))
}

/// What the run's page shows, from the run's types.
#[derive(Debug)]
pub struct Page<'a> {
    pub verdict: &'a Verdict,
    /// The kafka checker's result; `None` when no analysis ran.
    pub workload: Option<&'a WorkloadResult>,
    /// The console summary, shown in full at the bottom.
    pub summary: &'a str,
    pub node_ids: &'a [String],
    /// The command line that runs the test again, with its `--seed`.
    pub command: &'a str,
    /// Server messages (and all messages) per client operation: 5c's figure.
    pub msgs_per_op: (Option<f64>, Option<f64>),
    /// Why the run never got to its main phase.
    pub setup_error: Option<String>,
    /// The plots written beside the page: file and what it shows.
    pub plots: &'a [(&'a str, &'a str)],
}

/// Jepsen's name for an anomaly, said plainly.
fn anomaly_meaning(name: &str) -> &'static str {
    match name {
        "lost-write" => "an acknowledged send that no poll saw, though later offsets were read",
        "duplicate" => "one value at two offsets of a key",
        "inconsistent-offsets" => "two values read or written at one offset of a key",
        "nonmonotonic-poll" => "a poll whose offsets went backwards or skipped",
        "nonmonotonic-send" => "a client's sends to a key whose offsets went backwards",
        "int-poll-skip" => "within one poll of a key, offsets that skip one it should have read",
        "int-nonmonotonic-poll" => "within one poll of a key, offsets that go backwards",
        "poll-skip" => "a client's next poll skipped offsets it should have seen",
        "G1a" => "a poll read a value whose send failed",
        "unread-polled-key" => {
            "a key polled but never with a message (the checker cannot judge it)"
        }
        "G1c-realtime" => "a poll read a value whose send began only after the poll ended",
        "unseen" => "acknowledged sends no poll had read when the run ended",
        _ => "see the kafka checker in workload/README.md",
    }
}

/// The operation an anomaly's example cites: its `writer` if it names one (the send a
/// lost-write or G1a is about), else the first object in it shaped as a history op
/// (`index`, `type` and `f`). An example's own `index` (lost-write's place in the key's
/// order) is not an operation.
fn example_op(example: &serde_json::Value) -> Option<u64> {
    use serde_json::Value;
    match example {
        Value::Object(m) => {
            if m.contains_key("type")
                && m.contains_key("f")
                && let Some(i) = m.get("index").and_then(Value::as_u64)
            {
                return Some(i);
            }
            m.get("writer")
                .and_then(example_op)
                .or_else(|| m.values().find_map(example_op))
        }
        Value::Array(a) => a.iter().find_map(example_op),
        _ => None,
    }
}

/// `index.html`, the run's page: first what a reader wants (the verdict, each anomaly
/// with one example linked to its operation in the timeline, the command that runs the
/// test again, what each check means, msgs-per-op), then the plots, the files and the
/// console summary.
pub fn index_html(p: &Page<'_>) -> String {
    let valid = p.verdict.valid;
    let color = match valid {
        Validity::True => "#2ca02c",
        Validity::False => "#d62728",
        Validity::Unknown => "#ff7f0e",
    };
    let mut top = String::new();
    if let Some(e) = &p.setup_error {
        let _ = writeln!(
            top,
            "<p class=\"setup\">Setup failed, so nothing was tested: {}</p>",
            esc(e)
        );
    }
    if let Some(w) = p.workload {
        if w.errors.is_empty() {
            top.push_str("<p>The kafka checker found no anomalies.</p>\n");
        } else {
            top.push_str("<h2>Anomalies</h2>\n<ul class=\"anomalies\">\n");
            for (name, a) in &w.errors {
                let example = a.examples.first();
                let link = example
                    .and_then(example_op)
                    .map(|i| {
                        format!(
                            " <a href=\"timeline.html#op-{i}\">operation {i} in the timeline</a>"
                        )
                    })
                    .unwrap_or_default();
                let _ = writeln!(
                    top,
                    "<li><b>{}</b>: {} case(s): {}.{link}<br><code>{}</code></li>",
                    esc(name),
                    a.count,
                    esc(anomaly_meaning(name)),
                    esc(&example
                        .map(|e| clip(&e.to_string(), 600))
                        .unwrap_or_default()),
                );
            }
            top.push_str("</ul>\n");
        }
    }
    let v = |x: Option<Validity>| x.map_or("did not run".to_owned(), |v| v.to_json().to_string());
    let checks = [
        (
            "workload",
            v(p.verdict.workload),
            "the kafka checker: every acknowledged send is read back at its offset, offsets are unique and in order per key, and no poll reads the future",
        ),
        (
            "stats",
            v(p.workload.map(|_| p.verdict.stats)),
            "send, poll and assign each succeeded at least once",
        ),
        (
            "node",
            v(p.workload.map(|_| p.verdict.node)),
            "no node broke the protocol (a line its client could not read) or died",
        ),
        (
            "availability",
            v(p.workload.map(|_| p.verdict.availability)),
            "the share of ok invocations met --availability (when it is not given, anything passes)",
        ),
    ];
    top.push_str("<h2>Checks</h2>\n<table class=\"checks\">\n");
    for (name, result, meaning) in checks {
        let _ = writeln!(
            top,
            "<tr><td>{name}</td><td><b>{}</b></td><td>{}</td></tr>",
            esc(&result),
            esc(meaning)
        );
    }
    top.push_str("</table>\n");
    let num = |x: Option<f64>| x.map_or("none".to_owned(), |x| x.to_string());
    let _ = writeln!(
        top,
        "<p class=\"msgs\">msgs-per-op: <b>{}</b> server messages per operation (5c's figure: node to node and node to service), {} counting the clients' own.</p>",
        num(p.msgs_per_op.0),
        num(p.msgs_per_op.1)
    );
    let _ = writeln!(
        top,
        "<h2>Run it again</h2>\n<pre class=\"command\">{}</pre>",
        esc(p.command)
    );
    let mut plots = String::new();
    if p.setup_error.is_none() {
        plots.push_str("<h2>Plots</h2>\n");
        for (f, alt) in p.plots {
            let _ = writeln!(plots, r#"<a href="{f}"><img src="{f}" alt="{alt}"></a>"#);
        }
    }
    let mut logs = String::new();
    for n in p.node_ids {
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
body {{ font-family: Helvetica, Arial, sans-serif; margin: 24px; color: #222; max-width: 1000px; }}
h1 {{ color: {color}; font-size: 22px; }}
h2 {{ font-size: 17px; margin-top: 22px; }}
pre {{ background: #f6f6f6; padding: 12px; overflow-x: auto; font-size: 13px; white-space: pre-wrap; }}
img {{ max-width: 100%; border: 1px solid #ddd; margin: 8px 0; }}
table.checks td {{ padding: 2px 10px 2px 0; vertical-align: top; }}
.anomalies code {{ font-size: 12px; color: #555; }}
.setup {{ color: #d62728; font-weight: bold; }}
</style></head>
<body>
<h1>{verdict}</h1>
{top}<p>Files: <a href="timeline.html">timeline.html</a> <a href="results.json">results.json</a> <a href="results.edn">results.edn</a> <a href="history.jsonl">history.jsonl</a> <a href="messages.svg">messages.svg</a>{logs} <a href="/">all runs</a> (when served)</p>
{plots}<h2>Summary</h2>
<pre>{summary}</pre>
</body></html>
"#,
        verdict = esc(verdict_line(valid)),
        summary = esc(p.summary),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(f: F, kind: OpType, start_ms: u64, lat_us: u64) -> Sample {
        Sample {
            f,
            kind,
            process: 0,
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
        for svg in [
            latency_svg(samples.as_slice(), &tl),
            rate_svg(samples.as_slice(), &tl),
        ] {
            assert!(svg.starts_with("<svg"));
            assert!(svg.contains("<title>partition 1.00 s to 2.00 s</title>"));
            assert!(svg.trim_end().ends_with("</svg>"));
            assert!(svg.contains("polyline"));
            let bad = ["NaN", "\"inf", ",inf", "inf,", "inf\""];
            assert!(!bad.iter().any(|b| svg.contains(b)), "bad coordinates");
        }
        let empty = latency_svg(&[] as &[Sample], &Timeline::default());
        assert!(empty.contains("no operations") && !empty.contains("NaN"));
    }

    fn run_timeline() -> Timeline {
        // A 4 s main phase, a 10 s recovery sleep, a final phase of 4 ms.
        Timeline {
            main_start: 0,
            main_end: 4_000_000_000,
            final_start: 14_000_000_000,
            final_end: 14_004_000_000,
            end: 14_004_000_000,
            partitions: vec![],
        }
    }

    #[test]
    fn the_recovery_sleep_is_squeezed_and_the_final_phase_seen() {
        let axis = Axis::for_run(&run_timeline(), 14.004);
        let [main, sleep, fin] = axis.segs[..] else {
            panic!("{axis:?}")
        };
        assert!(
            !main.squeezed && sleep.squeezed && !fin.squeezed,
            "{axis:?}"
        );
        // The main phase fills most of the width; the 10 s sleep takes at most 6% of the
        // main phase's width, and the 4 ms final phase at least 20% of it.
        assert!(main.f1 > 0.75, "{axis:?}");
        assert!(
            (sleep.f1 - sleep.f0) <= SLEEP_SHARE * main.f1 + 1e-9,
            "{axis:?}"
        );
        assert!(
            (fin.f1 - fin.f0) >= FINAL_SHARE * main.f1 - 1e-9,
            "{axis:?}"
        );
        assert!((axis.frac(4.0) - main.f1).abs() < 1e-9);
        assert!((axis.frac(14.004) - 1.0).abs() < 1e-9);
        // Monotone over the whole run.
        let mut last = -1.0;
        for i in 0..=1400 {
            let f = axis.frac(i as f64 / 100.0);
            assert!(f >= last, "not monotone at {i}");
            last = f;
        }
        // A sleep shorter than the share is drawn to scale; no final phase, no segment.
        let short = Timeline {
            final_start: 4_100_000_000,
            end: 5_000_000_000,
            ..run_timeline()
        };
        assert!(Axis::for_run(&short, 5.0).segs.iter().all(|s| !s.squeezed));
        let no_final = Timeline {
            final_start: 0,
            ..run_timeline()
        };
        assert_eq!(Axis::for_run(&no_final, 14.0).segs.len(), 2);
        // Bins cover the drawn segments only, each at least MIN_BIN wide.
        let bins = axis.bins();
        assert!(bins.iter().all(|b| b.t1 - b.t0 >= MIN_BIN - 1e-9));
        assert!(bin_of(&bins, 8.0).is_none(), "a bin in the sleep");
        assert!(bin_of(&bins, 14.002).is_some() && bin_of(&bins, 3.99).is_some());
        // The final phase's ticks are in ms, not five labels reading "14".
        assert_eq!(fmt_tick(14.002, 0.001), "14.002");
    }

    #[test]
    fn node_plots_name_each_node_and_count_server_messages() {
        let samples: Vec<Sample> = (0..400)
            .map(|i| Sample {
                process: u32::try_from(i % 4).unwrap(),
                ..sample(F::Send, OpType::Ok, i * 10, 100 + i)
            })
            .collect();
        let tl = run_timeline();
        let ids = ["n0".to_owned(), "n1".to_owned()];
        let nodes = Nodes {
            ids: &ids,
            concurrency: 4,
        };
        for svg in [
            latency_by_node_svg(samples.as_slice(), &tl, &nodes),
            rate_by_node_svg(samples.as_slice(), &tl, &nodes),
        ] {
            assert!(svg.contains(">n0</text>") && svg.contains(">n1</text>"));
            assert!(svg.contains("polyline") && !svg.contains("NaN"));
            assert!(svg.contains("recovery sleep 10 s, squeezed"));
        }
        // 30 messages in each of the first 100 ticks (1 s): 3000 sent, 3000/s drawn.
        let sends = vec![30u32; 100];
        let svg = server_msgs_svg(&sends, samples.as_slice(), &tl);
        assert!(svg.contains(">3000 sent</text>"), "{svg}");
        assert!(svg.contains(">3000</text>"), "no 3000/s tick");
        let none = server_msgs_svg(&[], &[] as &[Sample], &Timeline::default());
        assert!(none.contains("no server messages"));
    }

    #[test]
    fn the_run_page_leads_with_verdict_anomalies_command_and_checks() {
        use std::collections::BTreeMap;
        let example = serde_json::json!({"index": 0, "key": "k", "value": 1,
            "max-read": {"f": "poll", "index": 591, "type": "ok", "process": 1},
            "writer": {"f": "send", "index": 417, "type": "ok", "process": 1}});
        let w = WorkloadResult {
            valid: Validity::False,
            errors: BTreeMap::from([(
                "lost-write",
                crate::checker::Anomaly {
                    count: 1,
                    examples: vec![example],
                },
            )]),
        };
        let t = Validity::True;
        let verdict = Verdict {
            valid: Validity::False,
            workload: Some(Validity::False),
            stats: t,
            stats_by_f: BTreeMap::new(),
            node: t,
            availability: t,
            net: t,
            perf: t,
            timeline: t,
            exceptions: t,
        };
        let ids = ["n0".to_owned(), "n1".to_owned()];
        let page = Page {
            verdict: &verdict,
            workload: Some(&w),
            summary: "the summary",
            node_ids: &ids,
            command: "kafka-workload test --seed 7 -w kafka --bin ./node",
            msgs_per_op: (Some(0.25), Some(2.5)),
            setup_error: None,
            plots: &[("latency.svg", "latency"), ("server-msgs.svg", "messages")],
        };
        let html = index_html(&page);
        let at = |s: &str| html.find(s).unwrap_or_else(|| panic!("no {s} in {html}"));
        // The verdict first, then the anomaly linking its lost send, the checks, the
        // figure and the command, all before the plots.
        assert!(at("Analysis invalid!") < at("lost-write"));
        assert!(
            html.contains("<a href=\"timeline.html#op-417\">operation 417 in the timeline</a>")
        );
        assert!(at("lost-write") < at("<td>workload</td><td><b>false</b></td>"));
        assert!(at("<b>0.25</b> server messages per operation") < at("<img"));
        assert!(at("--seed 7") < at("<img"));
        // The plots it was given, and no others.
        for f in ["latency.svg", "server-msgs.svg"] {
            assert!(html.contains(&format!("<img src=\"{f}\"")), "{f}");
        }
        assert!(!html.contains("rate.svg"));
        // A run whose setup failed says so, shows no plots of nothing, and no check
        // that did not run passes.
        let failed = Page {
            workload: None,
            setup_error: Some("n0 could not be started".into()),
            ..page
        };
        let html = index_html(&failed);
        assert!(html.contains("Setup failed, so nothing was tested: n0 could not be started"));
        assert!(
            !html.contains("<img") && !html.contains("<b>true</b>"),
            "{html}"
        );
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_ticks(0.0, 20.0), vec![0.0, 5.0, 10.0, 15.0, 20.0]);
        assert_eq!(log_ticks(0.01, 100.0), vec![0.01, 0.1, 1.0, 10.0, 100.0]);
    }
}
