//! The single-threaded floor for replay benchmarks: parses each stdin line with simd-json, as
//! the node's reader does, and writes one fixed reply line per request. Nothing else.
//!
//! Its I/O matches the node's: stdin and stdout through duplicated descriptors as plain files,
//! a 64 KiB `BufReader` in and a 64 KiB `BufWriter` out, and mimalloc as the allocator.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::os::fd::AsFd;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const REPLY: &[u8] =
    b"{\"src\":\"n0\",\"dest\":\"c1\",\"body\":{\"type\":\"send_ok\",\"in_reply_to\":1,\"offset\":0}}\n";

fn main() -> ExitCode {
    match run() {
        Ok(lines) => {
            eprintln!("floor: {lines} lines");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("floor: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> io::Result<u64> {
    let input = File::from(io::stdin().as_fd().try_clone_to_owned()?);
    let output = File::from(io::stdout().as_fd().try_clone_to_owned()?);
    let mut input = BufReader::with_capacity(64 * 1024, input);
    let mut output = BufWriter::with_capacity(64 * 1024, output);
    let mut line = Vec::new();
    let mut scratch = Vec::new();
    let mut buffers = simd_json::Buffers::default();
    let mut tape = Some(simd_json::Tape::null().reset());
    let mut lines = 0;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        // A padded copy, as the node parses: simd-json unescapes in place.
        let len = line.len();
        scratch.clear();
        scratch.extend_from_slice(&line);
        scratch.resize(len + simd_json::INPUT_PADDING, 0);
        let mut t = tape
            .take()
            .unwrap_or_else(|| simd_json::Tape::null().reset());
        if simd_json::fill_tape_padded(&mut scratch, len, &mut buffers, &mut t).is_ok() {
            output.write_all(REPLY)?;
            lines += 1;
        }
        tape = Some(t.reset());
    }
    output.flush()?;
    Ok(lines)
}
