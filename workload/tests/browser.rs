//! The pages in a real browser: `kafka-workload serve` on a free loopback port over a
//! store holding a valid run (two nodes) and an invalid one, read by Debian's `chromium`
//! headless (`--dump-dom`, which prints the DOM after the page's load, and `--screenshot`).
//!
//! Without chromium this test fails, naming what to install, unless
//! `KAFKA_WORKLOAD_SKIP_BROWSER=1` asks to skip it; then it says on stderr that it skipped.
//! `.ci/run` installs chromium when it is missing, so CI always runs it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{TempDir, fixture_bin, workload_bin};

/// The browser: `$KAFKA_WORKLOAD_CHROMIUM`, else the first of Debian's and other
/// distributions' names found on `PATH`.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("KAFKA_WORKLOAD_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

/// Runs a command to its end, killing it after `limit`; its stdout.
fn output_within(mut cmd: Command, limit: Duration) -> Result<String, String> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{cmd:?} took longer than {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(reader.join().expect("reader"))
}

/// Runs the command `make` builds, and once more if chromium hangs: headless chromium has been
/// seen to hang now and then beside a busy test suite (a page that loads in a second here, not
/// answered in 90 s), and it is the browser's hang, not the page's, that such a rerun forgives.
/// A second hang fails the test.
fn output_of_chromium(make: impl Fn() -> Command, limit: Duration) -> String {
    output_within(make(), limit).unwrap_or_else(|why| {
        eprintln!("browser test: {why}; running it once more");
        output_within(make(), limit).unwrap_or_else(|why| panic!("{why}, twice"))
    })
}

struct Browser {
    bin: PathBuf,
    profile: TempDir,
}

impl Browser {
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        // --no-sandbox: CI runs as root, where chromium's sandbox refuses to start. A
        // profile of its own, so parallel runs do not share a lock.
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", self.profile.0.display()));
        cmd
    }

    /// The DOM of `url` once loaded.
    fn dom(&self, url: &str) -> String {
        let cmd = || {
            let mut cmd = self.command();
            cmd.args(["--dump-dom", url]);
            cmd
        };
        output_of_chromium(cmd, Duration::from_secs(60))
    }

    fn screenshot(&self, url: &str, png: &Path, size: &str) {
        let cmd = || {
            let mut cmd = self.command();
            cmd.arg(format!("--screenshot={}", png.display()))
                .arg(format!("--window-size={size}"))
                .arg(url);
            cmd
        };
        output_of_chromium(cmd, Duration::from_secs(60));
    }
}

/// `serve`, stopped when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(store: &Path) -> Server {
    let mut child = Command::new(workload_bin())
        .args(["serve", "--port", "0", "--store"])
        .arg(store)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("serve's first line");
    // "Serving <store> at http://127.0.0.1:<port>/ (Ctrl-C stops it)"
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no loopback address in {line:?}"))
        .trim_end_matches('/')
        .to_owned();
    Server { child, url }
}

/// One `test` run into `store`; the run directory's name.
fn run_into(store: &Path, bin: &str, extra: &[&str], node_args: &[&str]) -> String {
    let out = Command::new(workload_bin())
        .args(["test", "-w", "kafka", "--bin", bin])
        .args([
            "--time-limit",
            "2",
            "--rate",
            "200",
            "--recovery-sleep",
            "0.2",
        ])
        .args(["--final-time-limit", "2", "--no-progress", "--store"])
        .arg(store)
        .args(extra)
        .arg("--")
        .args(node_args)
        .output()
        .expect("spawn kafka-workload");
    let latest = std::fs::canonicalize(store.join("latest")).expect("latest");
    assert!(
        out.status.code().is_some(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    latest.file_name().unwrap().to_string_lossy().into_owned()
}

/// Client invocations in a run's `history.jsonl` (the nemesis's are not operations).
fn invocations(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("history.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|op| op["type"] == "invoke" && op["process"].is_u64())
        .count()
}

#[test]
fn serve_shows_the_runs_their_plots_anomalies_and_timelines_in_chromium() {
    let Some(bin) = chromium() else {
        if std::env::var_os("KAFKA_WORKLOAD_SKIP_BROWSER").is_some() {
            eprintln!(
                "SKIPPED serve_shows_the_runs_…: no chromium on PATH (KAFKA_WORKLOAD_SKIP_BROWSER is set)"
            );
            return;
        }
        panic!(
            "no chromium on PATH: install it (apt-get install chromium), point \
             KAFKA_WORKLOAD_CHROMIUM at a Chromium or Chrome binary, or set \
             KAFKA_WORKLOAD_SKIP_BROWSER=1 to skip this test"
        );
    };
    let browser = Browser {
        bin,
        profile: TempDir::new("chromium"),
    };
    let store = TempDir::new("browser-store");
    let cluster = env!("CARGO_BIN_EXE_fixture-cluster");
    let valid = run_into(
        &store.0,
        cluster,
        &["--node-count", "2", "--concurrency", "2n"],
        &["--mode", "owner"],
    );
    let invalid = run_into(
        &store.0,
        fixture_bin(),
        &["--node-count", "1", "--concurrency", "2n"],
        &["--fault", "lose-write"],
    );
    let server = serve(&store.0);

    // The index lists both runs, each with its verdict.
    let index = browser.dom(&format!("{}/", server.url));
    for (name, class) in [(&valid, "valid"), (&invalid, "invalid")] {
        let row = format!("<tr class=\"run {class}\" id=\"run-{name}\">");
        assert!(index.contains(&row), "no {row} in\n{index}");
    }

    // The invalid run's page: verdict, its anomaly linked to an operation of the
    // timeline, the command with its seed, and its plots.
    let page_url = format!("{}/kafka/{invalid}/", server.url);
    let page = browser.dom(&page_url);
    assert!(page.contains("Analysis invalid!"), "{page}");
    assert!(page.contains("<b>lost-write</b>"), "{page}");
    assert!(page.contains("href=\"timeline.html#op-"), "{page}");
    assert!(page.contains("--seed "), "{page}");
    for svg in ["latency.svg", "rate.svg"] {
        assert!(
            page.contains(&format!("<img src=\"{svg}\"")),
            "{svg}: {page}"
        );
        // And the browser reads each as SVG.
        let dom = browser.dom(&format!("{page_url}{svg}"));
        assert!(
            dom.contains("<svg") && dom.contains("</svg>"),
            "{svg}: {dom}"
        );
    }
    // The valid two-node run's page has the per-node plots.
    let page = browser.dom(&format!("{}/kafka/{valid}/", server.url));
    assert!(page.contains("Everything looks good!"), "{page}");
    for svg in ["latency-by-node.svg", "rate-by-node.svg", "server-msgs.svg"] {
        assert!(
            page.contains(&format!("<img src=\"{svg}\"")),
            "{svg}: {page}"
        );
    }

    // The timeline: one box per operation.
    let timeline = browser.dom(&format!("{page_url}timeline.html"));
    let boxes = timeline.matches("<a class=\"op ").count();
    let ops = invocations(&store.0.join("kafka").join(&invalid));
    assert!(ops > 100, "{ops} operations");
    assert_eq!(boxes, ops, "boxes in the timeline");

    // A screenshot of the page is an image of it.
    let png = store.0.join("page.png");
    browser.screenshot(&page_url, &png, "1000,1400");
    let bytes = std::fs::read(&png).expect("a screenshot");
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 20_000,
        "{} bytes",
        bytes.len()
    );
}
