//! `kafka-workload serve`: the store over HTTP, as `maelstrom serve` browses its own. The
//! index lists every run, newest first, built from each run's `results.json` at every
//! request, so runs added while it serves show up on the next reload; everything else is
//! the runs' files as they are (the run pages are plain files that open without a server).
//!
//! It serves what lies under the store root and nothing else. A request path is
//! percent-decoded first, then split; a `..` segment or a hidden one (a leading `.`) refuses
//! it, and the file it names is resolved with its symlinks and must still lie under the
//! resolved root. Anything refused is answered exactly as a missing file is (404), so probing
//! learns nothing. It binds loopback unless `--host` says otherwise.
//!
//! The HTTP server is `tiny_http`: synchronous (one person browsing needs no async runtime),
//! free of unsafe code, with four small dependencies. Requests are answered one at a time
//! on the calling thread; the slowest answer is the index, a few milliseconds per run.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::cli::ServeOpts;
use crate::error::Error;
use crate::text::escape_html as esc;

/// What one request is answered with.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Body,
    /// Where a redirect (301) points.
    pub location: Option<String>,
}

#[derive(Debug)]
pub enum Body {
    Bytes(Vec<u8>),
    File(fs::File),
}

impl Reply {
    fn html(status: u16, page: String) -> Reply {
        Reply {
            status,
            content_type: "text/html; charset=utf-8",
            body: Body::Bytes(page.into_bytes()),
            location: None,
        }
    }

    fn not_found(path: &str) -> Reply {
        Reply::html(
            404,
            page(
                "Not found",
                &format!(
                    "<h1>Not found</h1><p>Nothing in the store is called <code>{}</code>. <a href=\"/\">All runs</a></p>",
                    esc(path)
                ),
            ),
        )
    }

    /// The body as text, for tests and small pages.
    pub fn text(self) -> String {
        match self.body {
            Body::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
            Body::File(mut f) => {
                let mut s = String::new();
                let _ = io::Read::read_to_string(&mut f, &mut s);
                s
            }
        }
    }
}

/// Serves `opts.store` until the process is stopped. The address it listens on (the port
/// the system chose, for `--port 0`) is printed on `out` first.
pub fn run(opts: &ServeOpts, out: &mut impl Write) -> Result<(), Error> {
    let root = fs::canonicalize(&opts.store)
        .ok()
        .filter(|r| r.is_dir())
        .ok_or_else(|| {
            Error::args(format!(
                "{} is not a store (no such directory): run a test first, or name the store with --store",
                opts.store.display()
            ))
        })?;
    let server = tiny_http::Server::http((opts.host.as_str(), opts.port)).map_err(|e| {
        Error::args(format!(
            "cannot listen on {}:{}: {e} (choose another --port, or --port 0 for any free one)",
            opts.host, opts.port
        ))
    })?;
    let addr = server
        .server_addr()
        .to_ip()
        .map_or_else(|| format!("{}:{}", opts.host, opts.port), |a| a.to_string());
    writeln!(
        out,
        "Serving {} at http://{addr}/ (Ctrl-C stops it)",
        root.display()
    )
    .and_then(|()| out.flush())
    .map_err(Error::Console)?;
    for req in server.incoming_requests() {
        let reply = match req.method() {
            tiny_http::Method::Get | tiny_http::Method::Head => respond(&root, req.url()),
            _ => Reply::html(405, page("Method not allowed", "<h1>Only GET</h1>")),
        };
        // A browser that went away mid-reply is no reason to stop serving.
        let _ = send(req, reply);
    }
    Ok(())
}

fn send(req: tiny_http::Request, reply: Reply) -> io::Result<()> {
    // Results change as runs are added; a stale index or page would mislead.
    let mut headers: Vec<tiny_http::Header> = [
        ("Content-Type", reply.content_type),
        ("Cache-Control", "no-store"),
    ]
    .iter()
    .filter_map(|(n, v)| tiny_http::Header::from_bytes(*n, *v).ok())
    .collect();
    // A request path that is not a valid header value (it came from the client) gets no
    // Location, and the browser shows the empty 301.
    if let Some(h) = reply
        .location
        .as_deref()
        .and_then(|l| tiny_http::Header::from_bytes("Location", l).ok())
    {
        headers.push(h);
    }
    let status = tiny_http::StatusCode(reply.status);
    match reply.body {
        Body::Bytes(b) => {
            let len = b.len();
            req.respond(tiny_http::Response::new(
                status,
                headers,
                io::Cursor::new(b),
                Some(len),
                None,
            ))
        }
        Body::File(f) => {
            let len = f.metadata().ok().map(|m| m.len() as usize);
            req.respond(tiny_http::Response::new(status, headers, f, len, None))
        }
    }
}

/// The answer to a GET of `url` (its path and query, as the request line has it).
pub fn respond(root: &Path, url: &str) -> Reply {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    if path == "/" {
        return Reply::html(200, index_html(&rows(root)));
    }
    let Some(file) = resolve(root, path) else {
        return Reply::not_found(path);
    };
    if file.is_dir() {
        // Relative links in a run's page resolve against its directory only with the slash.
        if !path.ends_with('/') {
            return Reply {
                status: 301,
                content_type: "text/plain; charset=utf-8",
                body: Body::Bytes(Vec::new()),
                location: Some(format!("{path}/")),
            };
        }
        if query != "files"
            && let Some(index) = resolve(root, &format!("{path}index.html"))
            && index.is_file()
            && let Ok(f) = fs::File::open(&index)
        {
            return Reply {
                status: 200,
                content_type: content_type(&index),
                body: Body::File(f),
                location: None,
            };
        }
        return Reply::html(200, listing(root, &file, path));
    }
    match fs::File::open(&file) {
        Ok(f) => Reply {
            status: 200,
            content_type: content_type(&file),
            body: Body::File(f),
            location: None,
        },
        Err(_) => Reply::not_found(path),
    }
}

/// The file or directory under `root` that the request path `path` names, or `None` when
/// it names nothing there: a missing file, a `..` or hidden segment (raw or
/// percent-encoded), bytes that are not UTF-8, or a symlink that resolves outside `root`.
pub fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    // Only origin-form targets ("/a/b"); an absolute URL or `*` names nothing here.
    let path = path.strip_prefix('/')?;
    let decoded = percent_decode(path)?;
    let mut rel = PathBuf::new();
    for seg in decoded.split('/') {
        match seg {
            // "a//b" and "a/./b" name a/b, as a browser would have it.
            "" | "." => {}
            // `..` climbs; a leading dot is a file the store keeps to itself (a temporary
            // `latest` link). A NUL cannot be in a file name.
            s if s.starts_with('.') || s.contains('\0') => return None,
            s => rel.push(s),
        }
    }
    let root = fs::canonicalize(root).ok()?;
    // canonicalize follows every symlink on the way: what it returns is where the bytes are.
    let full = fs::canonicalize(root.join(&rel)).ok()?;
    full.starts_with(&root).then_some(full)
}

/// `%XX` escapes decoded; `None` for a bad escape or a result that is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `s` made safe for a URL path segment.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn content_type(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        // An <img> shows an SVG only when it is served as one.
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "json" => "application/json",
        // Text the browser shows rather than downloads.
        _ => "text/plain; charset=utf-8",
    }
}

/// A directory's files, for `?files` and for directories without a page.
fn listing(root: &Path, dir: &Path, path: &str) -> String {
    let mut entries: Vec<(String, bool, u64)> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    // What would be refused is not listed.
                    let target = resolve(root, &format!("{path}{}", percent_encode(&name)))?;
                    let meta = fs::metadata(&target).ok()?;
                    Some((name, meta.is_dir(), meta.len()))
                })
                .collect()
        })
        .unwrap_or_default();
    entries.sort();
    let mut body = format!(
        "<h1>{}</h1><p><a href=\"/\">All runs</a></p><table>",
        esc(path)
    );
    for (name, is_dir, len) in entries {
        let slash = if is_dir { "/" } else { "" };
        let size = if is_dir {
            String::new()
        } else {
            human_bytes(len)
        };
        body.push_str(&format!(
            "<tr><td><a href=\"{}{slash}\">{}{slash}</a></td><td class=\"num\">{size}</td></tr>",
            percent_encode(&name),
            esc(&name)
        ));
    }
    body.push_str("</table>");
    page(path, &body)
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// What the index shows of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The run directory's name under `kafka/`: its start time.
    pub name: String,
    /// The start time, readable.
    pub when: String,
    pub verdict: Verdict,
    /// The run was stopped by a signal before its phases ended.
    pub interrupted: bool,
    /// The nodes never got to the main phase: there is no timeline to link.
    pub setup_failed: bool,
    pub nodes: Option<usize>,
    /// The options that tell runs apart, as command-line flags.
    pub options: String,
    /// The node binary and its arguments.
    pub bin: String,
    pub ops_per_sec: Option<f64>,
    /// Messages per operation: all of them, and between servers only (5c's figure).
    pub msgs_per_op: Option<f64>,
    pub server_msgs_per_op: Option<f64>,
    /// The anomalies and faults found, by kind.
    pub anomalies: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    Invalid,
    Unknown,
    /// No `results.json`: the run is still going, or was killed before it wrote one.
    NoResults,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unknown => "unknown",
            Verdict::NoResults => "no results",
        }
    }
}

/// The index row of the run directory `name`, from its `results.json` (`None` if missing or
/// unreadable).
pub fn row(name: &str, results: Option<&Value>) -> Row {
    let Some(r) = results else {
        return Row {
            name: name.to_owned(),
            when: when(name),
            verdict: Verdict::NoResults,
            interrupted: false,
            setup_failed: false,
            nodes: None,
            options: String::new(),
            bin: String::new(),
            ops_per_sec: None,
            msgs_per_op: None,
            server_msgs_per_op: None,
            anomalies: Vec::new(),
        };
    };
    let verdict = match &r["valid"] {
        Value::Bool(true) => Verdict::Valid,
        Value::Bool(false) => Verdict::Invalid,
        _ => Verdict::Unknown,
    };
    let t = &r["test"];
    let mut options = Vec::new();
    let mut flag = |name: &str, v: &Value| {
        let v = match v {
            Value::Null => return,
            Value::String(s) => s.clone(),
            // 1000.0 reads as it was typed: 1000.
            Value::Number(n) => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
                _ => n.to_string(),
            },
            v => v.to_string(),
        };
        options.push(format!("--{name} {v}"));
    };
    flag("concurrency", &t["concurrency"]);
    flag("rate", &t["rate"]);
    flag("time-limit", &t["time-limit"]);
    let latency = &r["network"]["latency-ms"];
    if latency.as_u64().is_some_and(|l| l > 0) {
        flag("latency", latency);
        let dist = &r["network"]["latency-dist"];
        if dist != "constant" {
            flag("latency-dist", dist);
        }
    }
    if let Some(n) = t["nemesis"].as_str().filter(|n| !n.is_empty()) {
        flag("nemesis", &Value::from(n));
        flag("nemesis-interval", &t["nemesis-interval"]);
    }
    flag("availability", &r["availability"]["expected"]);
    if t["assign-probability"]
        .as_f64()
        .is_some_and(|p| (p - 1.0 / 64.0).abs() > 1e-12)
    {
        flag("assign-probability", &t["assign-probability"]);
    }
    flag("seed", &t["seed"]);
    let bin = t["bin"]
        .as_str()
        .map(|b| {
            let name = Path::new(b)
                .file_name()
                .map_or_else(|| b.to_owned(), |n| n.to_string_lossy().into_owned());
            let args: Vec<&str> = t["args"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if args.is_empty() {
                name
            } else {
                format!("{name} -- {}", args.join(" "))
            }
        })
        .unwrap_or_default();
    let mut anomalies: Vec<String> = r["workload"]["anomaly-types"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if let Some(faults) = r["node"]["faults"].as_array() {
        for f in faults {
            if let Some(kind) = f["kind"].as_str() {
                let kind = format!("node {kind}");
                if !anomalies.contains(&kind) {
                    anomalies.push(kind);
                }
            }
        }
    }
    if r["stats"]["valid"] == false {
        anomalies.push("stats: an f with no ok op".into());
    }
    if r["availability"]["valid"] == false {
        anomalies.push("availability below --availability".into());
    }
    if !r["setup-error"].is_null() {
        anomalies.push("setup failed".into());
    }
    Row {
        name: name.to_owned(),
        when: when(name),
        verdict,
        interrupted: !r["interrupted"].is_null() && r["interrupted"] != false,
        setup_failed: !r["setup-error"].is_null(),
        nodes: t["node-ids"].as_array().map(Vec::len),
        options: options.join(" "),
        bin,
        ops_per_sec: r["throughput"]["ops-per-sec"].as_f64(),
        msgs_per_op: r["net"]["all"]["msgs-per-op"].as_f64(),
        server_msgs_per_op: r["net"]["servers"]["msgs-per-op"].as_f64(),
        anomalies,
    }
}

/// `20260301T120000.123Z` (and `…Z-2`) as `2026-03-01 12:00:00 UTC`; other names as they are.
fn when(name: &str) -> String {
    let b = name.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if b.len() >= 15 && digits(0..8) && b[8] == b'T' && digits(9..15) {
        format!(
            "{}-{}-{} {}:{}:{} UTC",
            &name[0..4],
            &name[4..6],
            &name[6..8],
            &name[9..11],
            &name[11..13],
            &name[13..15]
        )
    } else {
        name.to_owned()
    }
}

/// Every run under `root/kafka/`, newest first (the names are start times, which sort).
pub fn rows(root: &Path) -> Vec<Row> {
    let kafka = root.join("kafka");
    let mut names: Vec<String> = fs::read_dir(&kafka)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort_unstable_by(|a, b| b.cmp(a));
    names
        .iter()
        .map(|n| {
            let results = fs::read(kafka.join(n).join("results.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
            row(n, results.as_ref())
        })
        .collect()
}

/// The index page: one row per run, newest first.
pub fn index_html(rows: &[Row]) -> String {
    let mut body = String::from(
        "<h1>kafka-workload runs</h1>\n<p class=\"note\">Newest first. The verdict merges the four checks (workload, stats, node, availability); msgs/op is messages per operation, all of them and, in bold, between servers only (what 5c is judged on). Reload for runs added since.</p>\n",
    );
    if rows.is_empty() {
        body.push_str(
            "<p>No runs in this store yet: <code>kafka-workload test …</code> adds one.</p>\n",
        );
        return page("kafka-workload runs", &body);
    }
    body.push_str("<table class=\"runs\">\n<tr><th>when</th><th>verdict</th><th>nodes</th><th>node</th><th>options</th><th class=\"num\">ops/s</th><th class=\"num\">msgs/op (servers)</th><th>anomalies</th><th>files</th></tr>\n");
    for r in rows {
        let dir = format!("kafka/{}/", percent_encode(&r.name));
        let verdict = if r.interrupted {
            format!("interrupted, {}", r.verdict.label())
        } else {
            r.verdict.label().to_owned()
        };
        let class = match (r.interrupted, r.verdict) {
            (true, _) | (_, Verdict::NoResults) => "other",
            (_, Verdict::Valid) => "valid",
            (_, Verdict::Invalid) => "invalid",
            (_, Verdict::Unknown) => "unknown",
        };
        let num = |v: Option<f64>| v.map_or_else(String::new, |v| format!("{v}"));
        let msgs = match (r.msgs_per_op, r.server_msgs_per_op) {
            (Some(a), Some(s)) => format!("{a:.3} (<b>{s:.3}</b>)"),
            (Some(a), None) => format!("{a:.3}"),
            _ => String::new(),
        };
        let links = if r.verdict == Verdict::NoResults {
            format!("<a href=\"{dir}?files\">files</a>")
        } else if r.setup_failed {
            format!(
                "<a href=\"{dir}results.json\">results.json</a> <a href=\"{dir}?files\">files</a>"
            )
        } else {
            format!(
                "<a href=\"{dir}timeline.html\">timeline</a> <a href=\"{dir}results.json\">results.json</a> <a href=\"{dir}?files\">files</a>"
            )
        };
        let page_link = if r.verdict == Verdict::NoResults {
            esc(&r.when)
        } else {
            format!("<a href=\"{dir}\">{}</a>", esc(&r.when))
        };
        body.push_str(&format!(
            "<tr class=\"run {class}\" id=\"run-{}\"><td class=\"when\">{page_link}</td><td class=\"verdict\">{}</td><td class=\"num\">{}</td><td>{}</td><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{msgs}</td><td>{}</td><td>{links}</td></tr>\n",
            esc(&r.name),
            esc(&verdict),
            num(r.nodes.map(|n| n as f64)),
            esc(&r.bin),
            esc(&r.options),
            num(r.ops_per_sec),
            esc(&r.anomalies.join(", ")),
        ));
    }
    body.push_str("</table>\n");
    page("kafka-workload runs", &body)
}

/// A page around `body`, with the store's look.
fn page(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>{}</title>
<style>
body {{ font-family: Helvetica, Arial, sans-serif; margin: 24px; color: #222; }}
h1 {{ font-size: 22px; }}
.note {{ color: #555; max-width: 60em; }}
table {{ border-collapse: collapse; font-size: 13px; }}
th, td {{ padding: 4px 8px; border-bottom: 1px solid #e4e4e4; text-align: left; vertical-align: top; }}
th {{ background: #f4f4f4; }}
td.when {{ white-space: nowrap; }}
.num {{ text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }}
tr.valid .verdict {{ color: #1a7f37; font-weight: bold; }}
tr.invalid .verdict {{ color: #c62828; font-weight: bold; }}
tr.unknown .verdict {{ color: #d46b08; font-weight: bold; }}
tr.other .verdict {{ color: #666; font-style: italic; }}
code {{ font-size: 12px; }}
a {{ color: #0b57d0; }}
</style></head>
<body>
{body}
</body></html>
"#,
        esc(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn results(valid: Value) -> Value {
        json!({
            "valid": valid,
            "test": {"bin": "/x/target/release/fixture-node", "args": ["--fault", "rewind"],
                     "node-ids": ["n0", "n1"], "concurrency": 4, "time-limit": 2.0, "rate": 1000.0,
                     "seed": 7, "assign-probability": 0.015625},
            "network": {"latency-ms": 20, "latency-dist": "exponential"},
            "availability": {"expected": null, "valid": true},
            "stats": {"valid": true},
            "throughput": {"ops-per-sec": 998.5},
            "net": {"all": {"msgs-per-op": 2.17}, "servers": {"msgs-per-op": 0.05}},
            "workload": {"anomaly-types": ["nonmonotonic-poll"]},
            "node": {"faults": [{"kind": "crashed"}]},
        })
    }

    #[test]
    fn a_row_shows_what_tells_runs_apart() {
        let r = row("20260301T120000.123Z", Some(&results(json!(false))));
        assert_eq!(r.when, "2026-03-01 12:00:00 UTC");
        assert_eq!(r.verdict, Verdict::Invalid);
        assert!(!r.interrupted);
        assert_eq!(r.nodes, Some(2));
        assert_eq!(
            r.options,
            "--concurrency 4 --rate 1000 --time-limit 2 --latency 20 --latency-dist exponential --seed 7"
        );
        assert_eq!(r.bin, "fixture-node -- --fault rewind");
        assert_eq!(r.ops_per_sec, Some(998.5));
        assert_eq!(
            (r.msgs_per_op, r.server_msgs_per_op),
            (Some(2.17), Some(0.05))
        );
        assert_eq!(r.anomalies, vec!["nonmonotonic-poll", "node crashed"]);
        let html = index_html(std::slice::from_ref(&r));
        assert!(
            html.contains("href=\"kafka/20260301T120000.123Z/\""),
            "{html}"
        );
        assert!(
            html.contains("<td class=\"verdict\">invalid</td>"),
            "{html}"
        );
        assert!(html.contains("nonmonotonic-poll, node crashed"), "{html}");
        assert!(html.contains("2.170 (<b>0.050</b>)"), "{html}");
    }

    #[test]
    fn rows_tell_valid_unknown_interrupted_and_missing_results_apart() {
        let mut v = results(json!(true));
        v["workload"]["anomaly-types"] = json!([]);
        v["node"]["faults"] = json!([]);
        let valid = row("a", Some(&v));
        assert_eq!((valid.verdict, valid.anomalies.len()), (Verdict::Valid, 0));
        let mut u = v.clone();
        u["valid"] = json!("unknown");
        u["setup-error"] = json!("init failed");
        let unknown = row("b", Some(&u));
        assert_eq!(unknown.verdict, Verdict::Unknown);
        assert_eq!(unknown.anomalies, vec!["setup failed"]);
        let mut i = u.clone();
        i["interrupted"] = json!("SIGINT");
        let interrupted = row("c", Some(&i));
        assert!(interrupted.interrupted);
        let missing = row("d", None);
        assert_eq!(missing.verdict, Verdict::NoResults);
        assert!(unknown.setup_failed && !valid.setup_failed);
        let html = index_html(&[valid, unknown, interrupted, missing]);
        assert!(html.contains("interrupted, unknown"), "{html}");
        // A failed setup drew no timeline: none is linked.
        assert!(html.contains("href=\"kafka/a/timeline.html\""), "{html}");
        assert!(!html.contains("href=\"kafka/b/timeline.html\""), "{html}");
        assert!(html.contains("no results"), "{html}");
        // A run without results has no page to link, only its files.
        assert!(!html.contains("href=\"kafka/d/\""), "{html}");
        assert!(html.contains("href=\"kafka/d/?files\""), "{html}");
    }

    #[test]
    fn rows_are_newest_first_and_read_each_runs_results() {
        let root = Store::new("rows");
        for (name, valid) in [
            ("20260101T000000.000Z", true),
            ("20260102T000000.000Z", false),
        ] {
            let dir = root.0.join("kafka").join(name);
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("results.json"), results(json!(valid)).to_string()).unwrap();
        }
        fs::create_dir_all(root.0.join("kafka/20260103T000000.000Z")).unwrap();
        let rs = rows(&root.0);
        // (The fixture's own run, "run", is not one of these.)
        let names: Vec<(&str, Verdict)> = rs
            .iter()
            .filter(|r| r.name != "run")
            .map(|r| (r.name.as_str(), r.verdict))
            .collect();
        assert_eq!(
            names,
            vec![
                ("20260103T000000.000Z", Verdict::NoResults),
                ("20260102T000000.000Z", Verdict::Invalid),
                ("20260101T000000.000Z", Verdict::Valid),
            ]
        );
        // The index is built per request: a run added later is listed at once.
        fs::create_dir_all(root.0.join("kafka/20260104T000000.000Z")).unwrap();
        assert!(
            respond(&root.0, "/")
                .text()
                .contains("20260104T000000.000Z")
        );
    }

    /// A store with one run's files, a secret beside the store, and links in and out.
    struct Store(PathBuf);

    impl Store {
        fn new(tag: &str) -> Store {
            let n = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let base =
                std::env::temp_dir().join(format!("kw-serve-{tag}-{}-{n}", std::process::id()));
            let root = base.join("store");
            fs::create_dir_all(root.join("kafka/run/node-logs")).unwrap();
            fs::write(root.join("kafka/run/index.html"), "<p>run page</p>").unwrap();
            fs::write(root.join("kafka/run/latency.svg"), "<svg/>").unwrap();
            fs::write(root.join("kafka/run/node-logs/n0.log"), "log").unwrap();
            fs::write(root.join(".latest-1-0"), "hidden").unwrap();
            fs::write(base.join("secret.txt"), "secret").unwrap();
            std::os::unix::fs::symlink("kafka/run", root.join("latest")).unwrap();
            std::os::unix::fs::symlink("../secret.txt", root.join("kafka/run/escape.txt")).unwrap();
            std::os::unix::fs::symlink(&base, root.join("kafka/run/up")).unwrap();
            Store(root)
        }
    }

    impl Drop for Store {
        fn drop(&mut self) {
            if let Some(base) = self.0.parent() {
                let _ = fs::remove_dir_all(base);
            }
        }
    }

    #[test]
    fn serves_the_stores_files_and_nothing_outside_it() {
        let s = Store::new("paths");
        let ok = |url: &str| {
            let r = respond(&s.0, url);
            assert_eq!(r.status, 200, "{url}");
            r
        };
        assert_eq!(ok("/kafka/run/latency.svg").content_type, "image/svg+xml");
        assert_eq!(ok("/kafka/run/node-logs/n0.log").text(), "log");
        // A link that stays inside the store is followed.
        assert_eq!(ok("/latest/index.html").text(), "<p>run page</p>");
        assert_eq!(ok("/kafka/run/").text(), "<p>run page</p>");
        assert_eq!(ok("/kafka/%72un/latency.svg").content_type, "image/svg+xml");
        // The listing of a run's files leaves out what it would refuse to serve.
        let files = ok("/kafka/run/?files").text();
        assert!(
            files.contains("latency.svg") && files.contains("node-logs/"),
            "{files}"
        );
        assert!(
            !files.contains("escape.txt") && !files.contains("\"up/\""),
            "{files}"
        );
        let redirect = respond(&s.0, "/kafka/run");
        assert_eq!(
            (redirect.status, redirect.location.as_deref()),
            (301, Some("/kafka/run/"))
        );
        for bad in [
            "/../secret.txt",
            "/kafka/../../secret.txt",
            "/kafka/run/../../../secret.txt",
            "/%2e%2e/secret.txt",
            "/%2E%2E/secret.txt",
            "/kafka/%2e%2e%2f%2e%2e%2fsecret.txt",
            "/..%2fsecret.txt",
            // Absolute paths: the leading slashes name the store's root, not the disk's.
            "//etc/passwd",
            "/%2fetc%2fpasswd",
            "http://localhost/etc/passwd",
            "/etc/passwd",
            // Symlinks that resolve outside the store.
            "/kafka/run/escape.txt",
            "/kafka/run/up/secret.txt",
            // Hidden files, bad escapes, missing files.
            "/.latest-1-0",
            "/kafka/run/%zz",
            "/kafka/run/%ff",
            "/kafka/run/%00",
            "/kafka/run/missing.svg",
        ] {
            let r = respond(&s.0, bad);
            assert_eq!(r.status, 404, "{bad} must not be served");
            assert!(r.text().contains("<h1>Not found</h1>"), "{bad}");
        }
        assert_eq!(resolve(&s.0, "/kafka/run/escape.txt"), None);
        assert!(resolve(&s.0, "/latest").is_some_and(|p| p.ends_with("kafka/run")));
    }
}
