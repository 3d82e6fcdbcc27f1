//! Writes a deterministic replay file of kafka requests (JSON lines) to stdout.
//!
//! ```text
//! gen-requests --profile maelstrom|long-log --requests N --seed S > requests.jsonl
//! ```

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use kafka_perf::{Profile, generate};

fn main() -> ExitCode {
    let (mut profile, mut requests, mut seed) = (Profile::Maelstrom, 1_000_000u64, 1u64);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        let ok = match flag.as_str() {
            "--profile" => Profile::from_name(&value).map(|p| profile = p).is_some(),
            "--requests" => value.parse().map(|n| requests = n).is_ok(),
            "--seed" => value.parse().map(|s| seed = s).is_ok(),
            _ => false,
        };
        if !ok {
            eprintln!(
                "usage: gen-requests [--profile maelstrom|long-log] [--requests N] [--seed S] \
                 (bad or unknown: {flag} {value:?})"
            );
            return ExitCode::from(2);
        }
    }
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    match generate(profile, requests, seed, &mut out).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen-requests: {e}");
            ExitCode::FAILURE
        }
    }
}
