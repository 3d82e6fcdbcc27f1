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
//! * [`error`]: the workload's errors and their exit codes.
//! * [`generator`]: what to do next (keys, values, assigns) and the rate schedule.
//! * [`runner`]: the scheduler: the event loop, timeouts, phases, routing.
//! * [`client`]: one worker's client as a state machine, with Maelstrom's client quirks.
//! * [`nemesis`]: `--nemesis partition`: the schedule and Jepsen's partition shapes.
//! * [`lag`]: the kafka checker's `worst-realtime-lag`.
//! * [`cpu`]: CPU time from `/proc`.
//! * [`history`]: the recorded operations, interned keys and values, `history.jsonl`.
//! * [`checker`]: the anomalies, Jepsen's kafka checker re-done.
//! * [`report`]: stats, latency, throughput, `results.json`, the console summary.
//! * [`plot`]: `latency.svg`, `rate.svg`, `index.html`.
//! * [`progress`]: the progress bar on stderr.
//! * [`store`]: `store/kafka/<timestamp>/` and the `latest` link.
//! * [`timeline`]: `timeline.html`, every operation as a box, one column per process.
//! * [`serve`]: `kafka-workload serve`: the store's runs over HTTP.

pub mod checker;
pub mod cli;
pub mod client;
pub mod cpu;
pub mod edn;
pub mod error;
pub mod generator;
pub mod history;
pub mod lag;
pub mod lamport;
pub mod nemesis;
pub mod network;
pub mod node;
pub mod plot;
pub mod progress;
pub mod protocol;
pub mod report;
pub mod runner;
pub mod serve;
pub mod services;
pub mod store;
mod text;
pub mod timeline;

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
    let dir = store::new_run_dir(&cfg.opts.store).map_err(|source| Error::Io {
        what: "creating a run directory under",
        path: cfg.opts.store.clone(),
        source,
    })?;
    let outcome = runner::run(cfg, &dir);
    // The history file and the analysis both only read the history: on two cores,
    // writing hundreds of megabytes of JSON alongside the checker halves the wait.
    let (rep, samples, written) = std::thread::scope(|s| {
        let writer = s.spawn(|| write_history(&dir, &outcome.history));
        let workload = outcome
            .setup_error
            .is_none()
            .then(|| checker::check(&outcome.history));
        let samples = report::samples(&outcome.history);
        let rep = report::build(cfg, &outcome, workload.as_ref(), &samples);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("history writer panicked")));
        (rep, samples, written)
    });
    let mut rep = rep;
    rep.summary
        .push_str(&format!("\nResults in {}\n", dir.display()));
    written
        .and_then(|()| write_files(&dir, cfg, &outcome, &rep, &samples))
        .and_then(|()| store::publish(&cfg.opts.store, &dir))
        .map_err(|source| Error::Io {
            what: "writing results to",
            path: dir.clone(),
            source,
        })?;
    out.write_all(rep.summary.as_bytes())
        .and_then(|()| out.flush())
        .map_err(Error::Console)?;
    Ok(rep.valid)
}

fn write_history(dir: &Path, history: &history::History) -> std::io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(dir.join("history.jsonl"))?);
    history.write_jsonl(&mut w)?;
    w.flush()
}

fn write_files(
    dir: &Path,
    cfg: &cli::Config,
    outcome: &runner::Outcome,
    rep: &report::Report,
    samples: &[report::Sample],
) -> std::io::Result<()> {
    let results = serde_json::to_string_pretty(&rep.json).unwrap_or_default();
    std::fs::write(dir.join("results.json"), results + "\n")?;
    std::fs::write(dir.join("results.edn"), edn::results_edn(&rep.json))?;
    std::fs::write(
        dir.join("messages.svg"),
        lamport::messages_svg(&outcome.journal),
    )?;
    std::fs::write(
        dir.join("latency.svg"),
        plot::latency_svg(samples, &outcome.timeline),
    )?;
    std::fs::write(
        dir.join("rate.svg"),
        plot::rate_svg(samples, &outcome.timeline),
    )?;
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
    std::fs::write(
        dir.join("index.html"),
        plot::index_html(&rep.json, &rep.summary, &cfg.node_ids),
    )?;
    Ok(())
}
