//! Writes a replay file to stdout a few lines at a time, with a pause between writes, so that the
//! node sees requests as a live run delivers them (a few per read) rather than a full pipe.
//!
//! `pace FILE [LINES_PER_WRITE] [PAUSE_MICROS]` (defaults 4 and 40): one `write` of LINES lines,
//! then a sleep of PAUSE µs, until the file ends. The replies are not awaited, so the node's CPU
//! per request under this pacing is what its hand-offs cost when each read brings a few lines,
//! without a workload runner sharing the machine.

use std::fs;
use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: pace FILE [LINES_PER_WRITE] [PAUSE_MICROS]");
        return ExitCode::FAILURE;
    };
    let number = |i: usize, default: u64| args.get(i).map_or(Ok(default), |s| s.parse::<u64>());
    let (Ok(lines), Ok(pause)) = (number(1, 4), number(2, 40)) else {
        eprintln!("pace: LINES_PER_WRITE and PAUSE_MICROS are whole numbers");
        return ExitCode::FAILURE;
    };
    match run(path, lines.max(1) as usize, Duration::from_micros(pause)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pace: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(path: &str, lines: usize, pause: Duration) -> io::Result<()> {
    let text = fs::read(path)?;
    let mut out = io::stdout().lock();
    let mut rest = text.as_slice();
    while !rest.is_empty() {
        // The end of the LINES-th line from here, or of the file.
        let end = rest
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'\n')
            .nth(lines - 1)
            .map_or(rest.len(), |(i, _)| i + 1);
        out.write_all(&rest[..end])?;
        out.flush()?;
        rest = &rest[end..];
        std::thread::sleep(pause);
    }
    Ok(())
}
