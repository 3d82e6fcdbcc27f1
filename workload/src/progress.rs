//! The console progress bar on stderr, redrawn a few times a second while a run goes on.
//!
//! On a terminal it is one line rewritten with `\r`; elsewhere (CI logs, tests) only the
//! phase changes and notes are printed, so logs stay readable.

use std::io::{IsTerminal, Write};

const SEC: f64 = 1e9;

#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    tty: bool,
    phase: &'static str,
    start: u64,
    end: u64,
    last_draw: u64,
    last_entries: usize,
    drawn: bool,
}

impl Progress {
    pub fn new(enabled: bool) -> Self {
        Progress {
            enabled,
            tty: std::io::stderr().is_terminal(),
            phase: "",
            start: 0,
            end: 0,
            last_draw: 0,
            last_entries: 0,
            drawn: false,
        }
    }

    /// Starts a phase that runs from `start` to (about) `end`, in ns.
    pub fn phase(&mut self, name: &'static str, start: u64, end: u64) {
        self.phase = name;
        self.start = start;
        self.end = end;
        if self.enabled && !self.tty {
            let secs = end.saturating_sub(start) as f64 / SEC;
            // The final phase ends when every client has caught up: its length is a cap.
            if name == "final" {
                eprintln!(
                    "kafka-workload: final phase (until every client has read all, at most {secs:.1} s)"
                );
            } else {
                eprintln!("kafka-workload: {name} phase ({secs:.1} s)");
            }
        }
    }

    /// Prints a line above the bar.
    pub fn note(&mut self, msg: &str) {
        self.clear();
        eprintln!("kafka-workload: {msg}");
    }

    /// Redraws the bar if 200 ms passed. `entries` is the history length so far.
    pub fn draw(&mut self, now: u64, entries: usize, in_flight: usize) {
        if !self.enabled || !self.tty || now < self.last_draw + 200_000_000 {
            return;
        }
        let dt = (now - self.last_draw) as f64 / SEC;
        // Each operation is two history entries: its invocation and its completion.
        let rate = (entries.saturating_sub(self.last_entries)) as f64 / 2.0 / dt;
        self.last_draw = now;
        self.last_entries = entries;
        let span = self.end.saturating_sub(self.start).max(1);
        let frac = (now.saturating_sub(self.start) as f64 / span as f64).clamp(0.0, 1.0);
        const WIDTH: usize = 30;
        let filled = (frac * WIDTH as f64).round() as usize;
        let bar: String = "█".repeat(filled) + &"░".repeat(WIDTH - filled);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K{:<8} {bar} {:>6.1}/{:.1} s  {:>9} ops  {:>8.0} ops/s  {:>4} in flight",
            self.phase,
            now.saturating_sub(self.start) as f64 / SEC,
            span as f64 / SEC,
            entries / 2,
            rate,
            in_flight,
        );
        let _ = err.flush();
        self.drawn = true;
    }

    fn clear(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[2K");
            self.drawn = false;
        }
    }

    pub fn finish(&mut self) {
        if self.drawn {
            eprintln!();
            self.drawn = false;
        }
    }
}
