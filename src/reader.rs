//! Reader thread: the only code that touches stdin. Splits it into lines, parses each with
//! simd-json, and hands batches of requests to the workers.

use std::io::{self, BufRead, BufReader, Read};
use std::mem;

use crossbeam_channel::Sender;

use crate::config::Config;
use crate::node::Shared;
use crate::protocol::{Body, Parser, Request};

/// Reads `input` to its end. Returns early, with `Ok`, if every worker is gone.
pub(crate) fn run(
    input: impl Read,
    work: &Sender<Vec<Request>>,
    shared: &Shared,
    config: &Config,
) -> io::Result<()> {
    let mut input = BufReader::with_capacity(64 * 1024, input);
    let mut parser = Parser::default();
    let mut line = Vec::new();
    let mut batch = Vec::with_capacity(config.batch);
    loop {
        line.clear();
        match read_line(&mut input, &mut line, config.max_line)? {
            Line::Eof => break,
            Line::TooLong(len) => eprintln!(
                "maelstrom-kafka: skipped a {len}-byte line, longer than the limit of {} bytes \
                 (MAELSTROM_KAFKA_MAX_LINE)",
                config.max_line
            ),
            Line::Read => {
                if let Some(request) = parse_line(&mut parser, &line, shared) {
                    batch.push(request);
                }
            }
        }
        // Hand over a full batch, or whatever we have once the buffer holds no complete line:
        // the next read may block, and a request must not wait for company that may never come.
        let ready = batch.len() >= config.batch
            || (!batch.is_empty() && memchr::memchr(b'\n', input.buffer()).is_none());
        if ready
            && work
                .send(mem::replace(&mut batch, Vec::with_capacity(config.batch)))
                .is_err()
        {
            return Ok(());
        }
    }
    if !batch.is_empty() {
        let _ = work.send(batch);
    }
    Ok(())
}

fn parse_line(parser: &mut Parser, line: &[u8], shared: &Shared) -> Option<Request> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    match parser.parse(line, shared.node_id.get().is_some()) {
        Ok(request) => {
            if let Body::Init { node_id } = &request.body {
                // The reader is the only writer of the node id, and it sets it before it hands
                // the init (or anything after it) to a worker, so every later request sees it.
                let known = shared.node_id.get_or_init(|| node_id.as_str().into());
                if **known != **node_id {
                    eprintln!(
                        "maelstrom-kafka: init as {node_id} after init as {known}; keeping {known}"
                    );
                }
            }
            Some(request)
        }
        Err(e) => {
            eprintln!("maelstrom-kafka: ignored a line, {e}: {}", preview(line));
            None
        }
    }
}

/// The start of a line, printable on stderr whatever bytes it holds.
fn preview(line: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(&line[..line.len().min(MAX)]);
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if line.len() > MAX {
        format!("{text}… ({} bytes)", line.len())
    } else {
        text
    }
}

enum Line {
    Read,
    TooLong(usize),
    Eof,
}

/// Reads one line into `line` (without its newline or a trailing `\r`), or skips it past `max`.
/// A last line without a newline still counts.
fn read_line(input: &mut BufReader<impl Read>, line: &mut Vec<u8>, max: usize) -> io::Result<Line> {
    let mut total = 0;
    loop {
        let available = match input.fill_buf() {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(match total {
                0 => Line::Eof,
                n if n > max => Line::TooLong(n),
                _ => Line::Read,
            });
        }
        let (chunk, used, done) = match memchr::memchr(b'\n', available) {
            Some(i) => (&available[..i], i + 1, true),
            None => (available, available.len(), false),
        };
        total += chunk.len();
        if total <= max {
            line.extend_from_slice(chunk);
        } else {
            line.clear();
        }
        input.consume(used);
        if done {
            if total > max {
                return Ok(Line::TooLong(total));
            }
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Line::Read);
        }
    }
}
