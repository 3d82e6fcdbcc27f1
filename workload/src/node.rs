//! One node under test: its child process and the three threads that own its pipes.
//!
//! * `writer` is the only writer of the node's stdin. It takes byte chunks off a channel,
//!   writes them, and flushes whenever the channel is momentarily empty, so a burst of
//!   requests costs one syscall rather than one each.
//! * `reader` reads stdout lines, validates each with [`protocol::parse_line`] and hands
//!   batches of events to the scheduler. The first invalid line kills the node's stdout for
//!   good, as in Maelstrom; the thread keeps draining the pipe (so the node never blocks on
//!   a full pipe) but forwards nothing more.
//! * `stderr` copies the node's stderr into `node-logs/<node>.log` and keeps the last lines
//!   for the crash report.
//!
//! Teardown is SIGKILL (`Child::kill`), as Maelstrom's `destroyForcibly`.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};

use crossbeam_channel::{Receiver, Sender};

use crate::protocol::{self, Inbound, Names};

/// How many trailing lines of stdout and stderr a crash report shows (Maelstrom: 32).
const TAIL: usize = 32;

/// Longest stdout line kept whole in the crash-report tail.
const TAIL_LINE: usize = 4096;

/// A reader hands its batch over at this many lines or bytes even if more is buffered.
const BATCH_LINES: usize = 256;
const BATCH_BYTES: usize = 256 * 1024;

/// What a node's reader tells the scheduler.
#[derive(Debug)]
pub enum Event {
    /// A valid line. `body` (its body as written) is kept only for messages to anything
    /// but a client: the network forwards it to a node or a service, or names it when the
    /// destination does not exist.
    Line {
        node: usize,
        msg: Inbound,
        body: Option<String>,
    },
    /// The first invalid line; nothing from this node's stdout is delivered after it.
    Invalid {
        node: usize,
        line: String,
        reason: String,
    },
    /// Stdout reached EOF: the node exited or closed it.
    Eof { node: usize },
}

/// The running node.
#[derive(Debug)]
pub struct Node {
    pub name: String,
    child: Child,
    stdin: Option<Sender<Vec<u8>>>,
    writer: Option<JoinHandle<()>>,
    reader: Option<JoinHandle<VecDeque<String>>>,
    stderr: Option<JoinHandle<VecDeque<String>>>,
}

/// How a node ended, for the report.
#[derive(Debug, Clone)]
pub struct Exit {
    pub name: String,
    /// `Some` if the node had already exited before teardown: it crashed.
    pub crashed: Option<ExitStatus>,
    pub stdout_tail: Vec<String>,
    pub stderr_tail: Vec<String>,
}

impl Node {
    /// Spawns `bin args…` as node number `index` and starts its pipe threads.
    pub fn spawn(
        index: usize,
        bin: &Path,
        args: &[String],
        names: Names,
        log_path: &Path,
        echo_stderr: bool,
        events: Sender<Vec<Event>>,
    ) -> io::Result<Node> {
        let name = names.node_ids()[index].clone();
        // The node runs in the temp directory, as under Maelstrom, which makes `--bin` canonical
        // first; a relative path would otherwise be looked up from there. A bare name that is
        // not a file here is left for the PATH lookup.
        let bin = std::fs::canonicalize(bin).unwrap_or_else(|_| bin.to_path_buf());
        let mut child = Command::new(&bin)
            .args(args)
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = File::create(log_path)?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let writer = thread::Builder::new()
            .name(format!("{name}-stdin"))
            .spawn(move || write_loop(stdin, rx))?;
        let reader = thread::Builder::new()
            .name(format!("{name}-stdout"))
            .spawn(move || read_loop(index, stdout, names, events))?;
        let label = name.clone();
        let stderr = thread::Builder::new()
            .name(format!("{name}-stderr"))
            .spawn(move || stderr_loop(stderr, log, echo_stderr.then_some(label)))?;
        Ok(Node {
            name,
            child,
            stdin: Some(tx),
            writer: Some(writer),
            reader: Some(reader),
            stderr: Some(stderr),
        })
    }

    /// Queues bytes (whole lines) for the node's stdin.
    pub fn send(&self, bytes: Vec<u8>) {
        if let Some(tx) = &self.stdin {
            // A send error means the writer stopped because the node's stdin is closed;
            // the reader's EOF reports that.
            let _ = tx.send(bytes);
        }
    }

    /// The OS pid, for CPU accounting.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` if the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Kills the node (unless it already exited, which is then reported as a crash) and
    /// joins its threads.
    pub fn teardown(mut self) -> Exit {
        let crashed = self.exited();
        if crashed.is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        self.stdin.take();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
        let stdout_tail = self
            .reader
            .take()
            .and_then(|r| r.join().ok())
            .unwrap_or_default();
        let stderr_tail = self
            .stderr
            .take()
            .and_then(|r| r.join().ok())
            .unwrap_or_default();
        Exit {
            name: self.name.clone(),
            crashed,
            stdout_tail: stdout_tail.into(),
            stderr_tail: stderr_tail.into(),
        }
    }
}

fn write_loop(stdin: ChildStdin, rx: Receiver<Vec<u8>>) {
    let mut w = BufWriter::with_capacity(1 << 16, stdin);
    while let Ok(chunk) = rx.recv() {
        if w.write_all(&chunk).is_err() {
            return;
        }
        while let Ok(more) = rx.try_recv() {
            if w.write_all(&more).is_err() {
                return;
            }
        }
        if w.flush().is_err() {
            return;
        }
    }
}

fn read_loop(
    node: usize,
    stdout: impl Read,
    names: Names,
    events: Sender<Vec<Event>>,
) -> VecDeque<String> {
    let mut r = BufReader::with_capacity(1 << 16, stdout);
    let mut tail: VecDeque<String> = VecDeque::with_capacity(TAIL + 1);
    let mut batch = Vec::new();
    let mut batch_bytes = 0;
    let mut dead = false;
    let mut lines = 0;
    loop {
        // Reuse the oldest tail line's allocation as the next read buffer.
        let mut line = if tail.len() >= TAIL {
            tail.pop_front().unwrap_or_default()
        } else {
            String::new()
        };
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if !dead {
            let text = line.strip_suffix('\n').unwrap_or(&line);
            match protocol::parse_line(text, &names) {
                Ok(msg) => {
                    // Replies to clients are only kept while the journal may still want
                    // them: they are the bulk of the traffic.
                    let keep = !matches!(msg.dest(), protocol::Dest::Client(_))
                        || lines < crate::network::JOURNAL_LIMIT;
                    lines += 1;
                    batch.push(Event::Line {
                        node,
                        msg,
                        body: keep
                            .then(|| protocol::envelope_body(text).unwrap_or(text).to_owned()),
                    });
                }
                Err(e) => {
                    dead = true;
                    batch.push(Event::Invalid {
                        node,
                        line: text.to_owned(),
                        reason: e.0,
                    });
                }
            }
        }
        batch_bytes += line.len();
        if line.len() > TAIL_LINE {
            // Final-phase poll replies run to megabytes; the crash report needs a glimpse.
            line.truncate(crate::text::prefix(&line, TAIL_LINE).len());
            line.shrink_to_fit();
        }
        tail.push_back(line);
        // Hand the batch over once nothing more is buffered: one wake-up per burst. Under a
        // steady stream the buffer is never empty, so large batches go out anyway.
        let full = batch.len() >= BATCH_LINES || batch_bytes >= BATCH_BYTES;
        if !batch.is_empty() && (full || r.buffer().is_empty()) {
            batch_bytes = 0;
            if events.send(std::mem::take(&mut batch)).is_err() {
                return tail;
            }
        }
    }
    batch.push(Event::Eof { node });
    let _ = events.send(batch);
    tail
}

fn stderr_loop(stderr: impl Read, log: File, echo: Option<String>) -> VecDeque<String> {
    let mut r = BufReader::new(stderr);
    let mut log = BufWriter::new(log);
    let mut tail = VecDeque::with_capacity(TAIL + 1);
    let mut line = Vec::new();
    loop {
        line.clear();
        match r.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let _ = log.write_all(&line);
        if r.buffer().is_empty() {
            let _ = log.flush();
        }
        let text = String::from_utf8_lossy(&line)
            .trim_end_matches('\n')
            .to_owned();
        if let Some(name) = &echo {
            eprintln!("[{name}] {text}");
        }
        if tail.len() == TAIL {
            tail.pop_front();
        }
        tail.push_back(text);
    }
    let _ = log.flush();
    tail
}
