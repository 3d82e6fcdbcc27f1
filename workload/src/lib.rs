//! kafka-workload: a Maelstrom-compatible local runner and checker for the kafka workload.
//!
//! It spawns the node binary, drives it with Maelstrom's kafka clients and generator over
//! its stdin/stdout (JSON lines, black-box), records the history, checks it with Jepsen's
//! kafka anomalies and writes results, history, plots and an HTML page to the store.
//!
//! # Layout
//!
//! * [`cli`]: the command line and the validated [`cli::Config`].
//! * [`protocol`]: the wire format: request encoding, envelope and reply-schema validation.
//! * [`node`]: one node's child process and the threads that own its pipes.
//! * [`network`]: the simulated network: latency, delivery by deadline, partitions, stats.
//! * [`services`]: `lin-kv`, `seq-kv`, `lww-kv` and `lin-tso`.
//! * [`error`]: the workload's errors and their exit codes.
//! * [`generator`]: what to do next (keys, values, assigns) and the rate schedule.
//! * [`runner`]: the scheduler, a directory of one job a file: the phases and the event
//!   loop, the clients (worker table, timeout queue, reply matching), the router, and the
//!   clock and pipes it is given (simulated in its unit tests).
//! * [`client`]: one worker's client as a state machine, with Maelstrom's client quirks.
//! * [`nemesis`]: `--nemesis partition`: the schedule and Jepsen's partition shapes.
//! * [`lag`]: the kafka checker's `worst-realtime-lag`.
//! * [`cpu`]: CPU time from `/proc`.
//! * [`history`]: the recorded operations, interned keys and values, `history.jsonl`.
//! * [`checker`]: the anomalies, Jepsen's kafka checker re-done.
//! * [`results`]: what a run measured, typed: counts, latency, throughput, messages,
//!   availability, CPU.
//! * [`verdict`]: every part of the verdict and how they combine; the only place that judges.
//! * [`report`]: renders results and verdict as `results.json` and the console summary.
//! * [`edn`]: EDN, read and written, and `results.edn` in Maelstrom's layout.
//! * [`plot`]: `latency.svg`, `rate.svg`, `index.html`.
//! * [`interrupt`]: SIGINT, SIGTERM and SIGHUP end a run early, judged as far as it got.
//! * [`lamport`]: `messages.svg`, the Lamport diagram.
//! * [`progress`]: the progress bar on stderr.
//! * [`store`]: `store/kafka/<timestamp>/` and the `latest` link.
//! * [`timeline`]: `timeline.html`, every operation as a box, one column per process.
//! * [`serve`]: `kafka-workload serve`: the store's runs over HTTP.
//! * [`check`]: `kafka-workload check`: a stored history (ours or Maelstrom's) judged again.
//! * [`fuzz`]: one entry point over whatever a node may write, for the fuzz target.

pub mod check;
pub mod checker;
pub mod cli;
pub mod client;
pub mod cpu;
pub mod edn;
pub mod error;
pub mod fuzz;
pub mod generator;
pub mod history;
pub mod interrupt;
pub mod lag;
pub mod lamport;
pub mod nemesis;
pub mod network;
pub mod node;
pub mod plot;
pub mod polled;
pub mod progress;
pub mod protocol;
pub mod report;
pub mod results;
pub mod runner;
pub mod serve;
pub mod services;
pub mod store;
mod text;
pub mod timeline;
pub mod verdict;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use checker::Validity;
use error::Error;

/// Exit codes, as Maelstrom's: valid, invalid, unknown.
pub fn exit_code(v: Validity) -> i32 {
    match v {
        Validity::True => 0,
        Validity::False => 1,
        Validity::Unknown => 2,
    }
}

/// Runs one test end to end and returns the verdict. Console output (the summary and the
/// verdict line) goes to `out`; everything else to the run directory.
pub fn run_test(cfg: &cli::Config, out: &mut impl Write) -> Result<Validity, Error> {
    let dir = new_run_dir(&cfg.opts.store)?;
    let outcome = runner::run(cfg, &dir);
    let interrupted = outcome.interrupted.is_some();
    judge_and_write_with(cfg, &outcome, &cfg.opts.store, &dir, "", out, |w| {
        // Cut short before its final polls, a run has sends no one read yet: that is
        // the signal's doing, not the node's.
        // (`False` with no errors left was unseen's alone; the checker's `Unknown` stays.)
        if interrupted
            && w.errors.remove("unseen").is_some()
            && w.errors.is_empty()
            && w.valid == checker::Validity::False
        {
            w.valid = checker::Validity::True;
        }
    })
}

fn new_run_dir(store: &Path) -> Result<std::path::PathBuf, Error> {
    use std::io::ErrorKind;
    store::new_run_dir(store).map_err(|source| match source.kind() {
        // A store the user cannot write is their --store to change (254), not our fault.
        ErrorKind::PermissionDenied
        | ErrorKind::ReadOnlyFilesystem
        | ErrorKind::NotADirectory
        | ErrorKind::AlreadyExists => Error::args(format!(
            "cannot create a run directory under --store {}: {source} (choose a store you can write)",
            store.display()
        )),
        _ => Error::Io {
            what: "creating a run directory under",
            path: store.to_owned(),
            source,
        },
    })
}

/// Judges a run's outcome, writes its files to `dir` (a new run directory of `store`, then
/// published as `latest`) and the summary, `note` and the verdict line to `out`. What
/// `test` and `check` share, so both judge and report alike; `adjust` sees the kafka
/// checker's result before anything else does (`check` marks what it could not judge).
fn judge_and_write_with(
    cfg: &cli::Config,
    outcome: &runner::Outcome,
    store: &Path,
    dir: &Path,
    note: &str,
    out: &mut impl Write,
    adjust: impl FnOnce(&mut checker::WorkloadResult),
) -> Result<Validity, Error> {
    // The history file and the analysis both only read the history: on two cores,
    // writing hundreds of megabytes of JSON alongside the checker halves the wait.
    let (rep, verdict, results, workload, written) = std::thread::scope(|s| {
        let writer = s.spawn(|| write_history(dir, &outcome.history));
        let setup_failed = outcome.setup_error.is_some();
        let workload = (!setup_failed).then(|| {
            let mut w = checker::check(&outcome.history);
            adjust(&mut w);
            w
        });
        let results = results::measure(cfg, outcome);
        let mut verdict = verdict::judge(
            &outcome.history,
            &results,
            workload.as_ref(),
            &outcome.faults,
            setup_failed,
        );
        if outcome.interrupted.is_some() {
            verdict::unfinished(&mut verdict);
        }
        let rep = report::render(cfg, outcome, workload.as_ref(), &results, &verdict);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("history writer panicked")));
        (rep, verdict, results, workload, written)
    });
    let mut rep = rep;
    rep.summary.push_str(note);
    rep.summary
        .push_str(&format!("\nResults in {}\n", dir.display()));
    written
        .and_then(|()| {
            let judged = Judged {
                rep: &rep,
                verdict: &verdict,
                results: &results,
                workload: workload.as_ref(),
            };
            write_files(dir, cfg, outcome, &judged)
        })
        // `latest` names the last run that ran to its end: one whose nodes never started,
        // or that was interrupted, is no reason to lose it.
        .and_then(|()| match (&outcome.setup_error, outcome.interrupted) {
            (None, None) => store::publish(store, dir),
            _ => Ok(()),
        })
        .map_err(|source| Error::Io {
            what: "writing results to",
            path: dir.to_owned(),
            source,
        })?;
    out.write_all(rep.summary.as_bytes())
        .and_then(|()| out.flush())
        .map_err(Error::Console)?;
    Ok(verdict.valid)
}

fn write_history(dir: &Path, history: &history::History) -> std::io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(dir.join("history.jsonl"))?);
    history.write_jsonl(&mut w)?;
    w.flush()
}

/// What judging a run made, for the files.
struct Judged<'a> {
    rep: &'a report::Report,
    verdict: &'a verdict::Verdict,
    results: &'a results::Results,
    workload: Option<&'a checker::WorkloadResult>,
}

fn write_files(
    dir: &Path,
    cfg: &cli::Config,
    outcome: &runner::Outcome,
    judged: &Judged<'_>,
) -> std::io::Result<()> {
    let (rep, verdict) = (judged.rep, judged.verdict);
    let results = serde_json::to_string_pretty(&rep.json).unwrap_or_default();
    std::fs::write(dir.join("results.json"), results + "\n")?;
    std::fs::write(
        dir.join("results.edn"),
        edn::results_edn(&rep.json, verdict),
    )?;
    // A run whose setup failed has nothing to draw: its page says what failed.
    let plots = if outcome.setup_error.is_none() {
        write_drawings(dir, cfg, outcome, rep)?
    } else {
        Vec::new()
    };
    let net = judged.results.net.stats;
    std::fs::write(
        dir.join("index.html"),
        plot::index_html(&plot::Page {
            verdict,
            workload: judged.workload,
            summary: &rep.summary,
            node_ids: &cfg.node_ids,
            command: &cfg.command,
            msgs_per_op: (
                report::msgs_per_op(judged.results, net.servers.sends),
                report::msgs_per_op(judged.results, net.all().sends),
            ),
            setup_error: outcome.setup_error.as_ref().map(ToString::to_string),
            plots: &plots,
        }),
    )?;
    Ok(())
}

/// The plots, the Lamport diagram and the timeline; the plots written, for the page.
fn write_drawings(
    dir: &Path,
    cfg: &cli::Config,
    outcome: &runner::Outcome,
    rep: &report::Report,
) -> std::io::Result<Vec<(&'static str, &'static str)>> {
    // The plots read the latencies from the history's records, walked once a plot.
    let samples = &outcome.history;
    // A re-judged history has no messages to draw.
    if !outcome.journal.is_empty() {
        std::fs::write(
            dir.join("messages.svg"),
            lamport::messages_svg(&outcome.journal),
        )?;
    }
    std::fs::write(
        dir.join("latency.svg"),
        plot::latency_svg(samples, &outcome.timeline),
    )?;
    std::fs::write(
        dir.join("rate.svg"),
        plot::rate_svg(samples, &outcome.timeline),
    )?;
    let mut plots = vec![
        ("latency.svg", "latency over time"),
        ("rate.svg", "throughput over time"),
    ];
    if cfg.node_ids.len() > 1 {
        let nodes = plot::Nodes {
            ids: &cfg.node_ids,
            concurrency: cfg.concurrency,
        };
        let tl = &outcome.timeline;
        std::fs::write(
            dir.join("latency-by-node.svg"),
            plot::latency_by_node_svg(samples, tl, &nodes),
        )?;
        std::fs::write(
            dir.join("rate-by-node.svg"),
            plot::rate_by_node_svg(samples, tl, &nodes),
        )?;
        plots.extend([
            ("latency-by-node.svg", "latency by node"),
            ("rate-by-node.svg", "throughput by node"),
        ]);
        // A re-judged run (`check`) has its message count but not when they were sent.
        if !outcome.server_sends.is_empty() || outcome.net.servers.sends == 0 {
            std::fs::write(
                dir.join("server-msgs.svg"),
                plot::server_msgs_svg(&outcome.server_sends, samples, tl),
            )?;
            plots.push(("server-msgs.svg", "server messages over time"));
        }
    }
    let focus = timeline::cited_ops(&rep.json["workload"]["errors"]);
    std::fs::write(
        dir.join("timeline.html"),
        timeline::timeline_html(&timeline::Input {
            history: &outcome.history,
            timeline: &outcome.timeline,
            faults: &outcome.faults,
            concurrency: cfg.concurrency,
            node_ids: &cfg.node_ids,
            focus: &focus,
        }),
    )?;
    Ok(plots)
}
