//! One node under test: its child process, its stdin, and the two threads that own its
//! other pipes.
//!
//! * The scheduler writes the node's stdin itself, without blocking: the pipe is
//!   non-blocking, so what does not fit waits in a backlog, written first on the next send
//!   or [`Node::retry`]. A handover to a writer thread cost a wake-up per batch of requests
//!   (about a third of the runner's CPU at 100k ops/s); a direct write costs one syscall
//!   per batch, and a node that stops reading its stdin still cannot stall the scheduler.
//! * `reader` reads stdout lines, stamps each with the time it was read from the pipe,
//!   validates it with [`protocol::parse_line`] and hands batches of events to the scheduler.
//!   The first invalid line (not UTF-8, longer than [`MAX_STDOUT_LINE`], not JSON, a bad
//!   envelope) kills the node's stdout for good, as in Maelstrom; the thread keeps draining the
//!   pipe (so the node never blocks on a full pipe) but forwards nothing more.
//! * `stderr` copies the node's stderr into `node-logs/<node>.log`, cutting lines longer than
//!   [`MAX_STDERR_LINE`], and keeps the last lines for the crash report.
//!
//! Teardown is SIGKILL (`Child::kill`), as Maelstrom's `destroyForcibly`. A process the node
//! started may still hold its pipes open after that; the pipe threads are then left behind,
//! blocked, after a short grace, instead of hanging the run (see [`Node::teardown`]).

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use std::sync::Condvar;

use crate::protocol::{self, Inbound, Names};

/// How many trailing lines of stdout and stderr a crash report shows (Maelstrom: 32).
const TAIL: usize = 32;

/// Longest stdout line kept whole in the crash-report tail.
const TAIL_LINE: usize = 4096;

/// Longest stdout line accepted, in bytes (without its newline). A longer line is an invalid
/// stdout line, which kills the node's stdout, as a line Maelstrom fails to parse does.
///
/// The bound is on memory: a line is held whole while it is parsed, and a `poll_ok` takes
/// about five times its length once parsed. A correct node's longest lines are final-phase
/// poll replies; this node bounds them to a few MiB.
pub const MAX_STDOUT_LINE: usize = 64 << 20;

/// Longest stderr line kept, in bytes; the rest of a longer line is left out of the node's log
/// and of the crash report, and a marker says how much.
pub const MAX_STDERR_LINE: usize = 64 << 10;

/// After the node is killed, how long its pipe threads get to see the pipes close.
const PIPE_GRACE: Duration = Duration::from_secs(1);

/// Size of each read from a pipe.
const READ_CHUNK: usize = 64 << 10;

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
        /// When the reader read the line's last byte from the pipe. Maelstrom's stdout thread
        /// hands a reply to its client as it reads it, so this, not when the scheduler gets to
        /// the line, decides whether a reply beat its client's timeout.
        read_at: Instant,
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
    stdin: Stdin<ChildStdin>,
    reader: Option<JoinHandle<()>>,
    stderr: Option<JoinHandle<()>>,
    stdout: Arc<Stdout>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

/// How a node ended, for the report.
#[derive(Debug, Clone)]
pub struct Exit {
    pub name: String,
    /// `Some` if the node had already exited before teardown: it crashed.
    pub crashed: Option<ExitStatus>,
    pub stdout_tail: Vec<String>,
    pub stderr_tail: Vec<String>,
    /// Pipes (`stdout`, `stderr`) still open after the node was killed and the
    /// grace had passed: some process the node started holds them. Their threads were left.
    pub held_open: Vec<&'static str>,
}

/// What the stdout reader shares with the scheduler and with teardown.
#[derive(Debug)]
struct Stdout {
    /// The origin of `unsent`.
    epoch: Instant,
    /// Nanoseconds after `epoch` at which the oldest line read but not yet handed over was
    /// read; [`IDLE`] when every line read has been handed over, [`STAMPING`] while a read
    /// that just returned is being stamped.
    unsent: AtomicU64,
    /// The last lines read, for the crash report. Shared rather than returned by the thread,
    /// because teardown may have to leave the thread behind, blocked on a pipe.
    tail: Mutex<VecDeque<String>>,
}

const IDLE: u64 = u64::MAX;
const STAMPING: u64 = u64::MAX - 1;

impl Stdout {
    /// See [`Node::handed_over_before`].
    fn handed_over_before(&self) -> Instant {
        let now = Instant::now();
        // SeqCst: pairs with the reader's stores; if this load still sees IDLE, the reader's
        // STAMPING store (made before it reads the clock for the next stamp) comes later in
        // the single total order, so lines it reads now are stamped after `now`. And every
        // batch sent before the IDLE store is in the channel for the drain that follows.
        match self.unsent.load(Ordering::SeqCst) {
            IDLE => now,
            STAMPING => self.epoch,
            ns => self.epoch + Duration::from_nanos(ns),
        }
    }
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
        events: EventSender,
    ) -> io::Result<Node> {
        let name = names.node_ids()[index].clone();
        // The node runs in the temp directory, as under Maelstrom, which makes `--bin` canonical
        // first; a relative path would otherwise be looked up from there. A bare name that is
        // not a file here is left for the PATH lookup.
        let bin = std::fs::canonicalize(bin).unwrap_or_else(|_| bin.to_path_buf());
        let mut child = Command::new(&bin)
            .args(args)
            .current_dir(std::env::temp_dir())
            // A group of its own: Ctrl-C at a terminal signals the whole foreground group,
            // and the runner, not the terminal, stops its nodes (after judging the run).
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take().expect("piped stdin");
        // Only our end's open file description turns non-blocking: the node's end is
        // another one and keeps blocking reads.
        rustix::fs::fcntl_setfl(&stdin, rustix::fs::OFlags::NONBLOCK)?;
        // A bigger pipe (1 MiB, Linux's default cap for unprivileged processes) holds a
        // final-phase burst of requests, so the backlog is rarely used; a smaller one works.
        let _ = rustix::pipe::fcntl_setpipe_size(&stdin, 1 << 20);
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = File::create(log_path)?;
        let shared = Arc::new(Stdout {
            epoch: Instant::now(),
            unsent: AtomicU64::new(IDLE),
            tail: Mutex::new(VecDeque::with_capacity(TAIL)),
        });
        let stderr_tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL)));
        let reader = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("{name}-stdout"))
                .spawn(move || read_loop(index, stdout, &names, &events, &shared))?
        };
        let stderr = {
            let (label, tail) = (name.clone(), Arc::clone(&stderr_tail));
            thread::Builder::new()
                .name(format!("{name}-stderr"))
                .spawn(move || stderr_loop(stderr, log, echo_stderr.then_some(label), &tail))?
        };
        Ok(Node {
            name,
            child,
            stdin: Stdin::new(stdin),
            reader: Some(reader),
            stderr: Some(stderr),
            stdout: shared,
            stderr_tail,
        })
    }

    /// Writes bytes (whole lines) to the node's stdin, after any backlog, as far as the pipe
    /// takes them now; the rest joins the backlog.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stdin.send(bytes);
    }

    /// Whether some bytes wait in the backlog.
    pub fn held_back(&self) -> bool {
        self.stdin.held_back()
    }

    /// Writes what it can of the backlog. True if some of it is still waiting.
    pub fn retry(&mut self) -> bool {
        self.stdin.retry()
    }

    /// The OS pid, for CPU accounting.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` if the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// A time before which every stdout line of the node has been handed over: every line
    /// read from the pipe earlier is in the event channel already. Now, if the reader is
    /// waiting for input; otherwise when it read the oldest line it still holds.
    ///
    /// The scheduler takes this before it drains the channel, and times out only requests
    /// whose deadline is before it, so a reply read in time is never judged late because
    /// the reader was still parsing it. A line read within the clock's resolution of this
    /// call may fall on either side, as in Maelstrom, where the stdout thread and the
    /// client's timeout race too.
    pub fn handed_over_before(&self) -> Instant {
        self.stdout.handed_over_before()
    }

    /// Kills the node (unless it already exited, which is then reported as a crash) and
    /// joins its threads.
    ///
    /// A pipe normally closes with the process. If a process the node started still holds
    /// one, its thread would block forever; after `PIPE_GRACE` it is left behind instead
    /// (it ends with the runner) and the pipe is named in [`Exit::held_open`].
    pub fn teardown(mut self) -> Exit {
        let crashed = self.exited();
        if crashed.is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        self.stdin.close();
        let deadline = Instant::now() + PIPE_GRACE;
        let mut held_open = Vec::new();
        for (pipe, thread) in [
            ("stdout", self.reader.take()),
            ("stderr", self.stderr.take()),
        ] {
            if let Some(thread) = thread
                && !join_by(thread, deadline)
            {
                held_open.push(pipe);
            }
        }
        Exit {
            name: self.name.clone(),
            crashed,
            stdout_tail: lock(&self.stdout.tail).iter().cloned().collect(),
            stderr_tail: lock(&self.stderr_tail).iter().cloned().collect(),
            held_open,
        }
    }
}

/// A non-blocking writer and what it would not take yet.
#[derive(Debug)]
struct Stdin<W> {
    /// `None` once a write failed: the node closed its stdin or exited.
    pipe: Option<W>,
    /// Bytes the pipe would not take yet, in order, from `backlog_at` on.
    backlog: Vec<u8>,
    backlog_at: usize,
}

impl<W: Write> Stdin<W> {
    fn new(pipe: W) -> Stdin<W> {
        Stdin {
            pipe: Some(pipe),
            backlog: Vec::new(),
            backlog_at: 0,
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        if self.retry() {
            self.backlog.extend_from_slice(bytes);
            return;
        }
        let n = self.write_some(bytes);
        if n < bytes.len() {
            self.backlog.clear();
            self.backlog_at = 0;
            self.backlog.extend_from_slice(&bytes[n..]);
        }
    }

    fn held_back(&self) -> bool {
        self.backlog_at < self.backlog.len()
    }

    fn retry(&mut self) -> bool {
        if !self.held_back() {
            return false;
        }
        let backlog = std::mem::take(&mut self.backlog);
        self.backlog_at += self.write_some(&backlog[self.backlog_at..]);
        self.backlog = backlog;
        if self.held_back() {
            return true;
        }
        self.backlog.clear();
        self.backlog_at = 0;
        false
    }

    /// Writes a prefix of `bytes` without blocking; returns its length. Once the pipe is
    /// broken (the node closed its stdin or exited), everything counts as written: nobody
    /// will read it, and the reader's EOF reports the node's end.
    fn write_some(&mut self, bytes: &[u8]) -> usize {
        let Some(pipe) = &mut self.pipe else {
            return bytes.len();
        };
        let mut done = 0;
        while done < bytes.len() {
            match pipe.write(&bytes[done..]) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return done,
                Err(_) => {
                    self.close();
                    return bytes.len();
                }
            }
        }
        done
    }

    fn close(&mut self) {
        self.pipe = None;
        self.backlog = Vec::new();
        self.backlog_at = 0;
    }
}

/// Joins `thread` if it ends by `deadline`; otherwise leaves it running and returns false.
fn join_by(thread: JoinHandle<()>, deadline: Instant) -> bool {
    while !thread.is_finished() {
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
    let _ = thread.join();
    true
}

/// A tail is only ever pushed to and copied; a panic elsewhere leaves it usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn push_tail(tail: &Mutex<VecDeque<String>>, line: &[u8]) {
    let mut tail = lock(tail);
    // Reuse the oldest line's allocation once the tail is full.
    let mut kept = if tail.len() >= TAIL {
        tail.pop_front().unwrap_or_default()
    } else {
        String::new()
    };
    kept.clear();
    // Final-phase poll replies run to megabytes; the crash report needs a glimpse.
    let glimpse = String::from_utf8_lossy(&line[..line.len().min(TAIL_LINE)]);
    kept.push_str(&glimpse);
    if line.len() > TAIL_LINE {
        kept.push('…');
    }
    tail.push_back(kept);
}

/// Splits a pipe into lines of bounded length, without assuming they are text.
///
/// A line ends as Java's line reader (Maelstrom's) ends one: at a line feed, at a carriage
/// return, or at a carriage return and the line feed right after it, which end one line
/// together ([`java_lines`] is the same split of bytes held whole).
///
/// A line that fits in one read is lent straight out of the read buffer; one that spans reads
/// is gathered in `long`, up to `max` bytes, beyond which only its length is counted.
#[derive(Debug)]
struct Lines<R> {
    input: R,
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    long: Vec<u8>,
    /// Length of the line being gathered, including bytes beyond `max` that were dropped.
    long_len: usize,
    max: usize,
    /// How much of a line over `max` is kept, to show.
    glimpse: usize,
    /// The last line ended at a carriage return: a line feed next is part of its end.
    after_cr: bool,
}

/// One line out of [`Lines`].
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    /// A line within the bound, without its newline.
    Line(&'a [u8]),
    /// A line longer than the bound: its first bytes (as many as fit) and its whole length.
    TooLong(&'a [u8], usize),
}

impl<R: Read> Lines<R> {
    fn new(input: R, max: usize, glimpse: usize) -> Self {
        Lines {
            input,
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            long: Vec::new(),
            long_len: 0,
            max,
            glimpse: glimpse.min(max),
            after_cr: false,
        }
    }

    /// The next complete line already read, if any. Never reads.
    fn buffered(&mut self) -> Option<Piece<'_>> {
        if self.after_cr && self.start < self.end {
            self.after_cr = false;
            self.start += usize::from(self.buf[self.start] == b'\n');
        }
        let available = &self.buf[self.start..self.end];
        let at = available.iter().position(|&b| b == b'\n' || b == b'\r')?;
        self.after_cr = available[at] == b'\r';
        let from = self.start;
        self.start += at + 1;
        if self.long_len == 0 {
            let line = &self.buf[from..from + at];
            return Some(if at > self.max {
                Piece::TooLong(&line[..self.glimpse], at)
            } else {
                Piece::Line(line)
            });
        }
        Some(self.finish_long(from, at))
    }

    /// Appends `buf[from..from + n]` to the line being gathered and returns it.
    fn finish_long(&mut self, from: usize, n: usize) -> Piece<'_> {
        self.gather(from, n);
        let len = std::mem::take(&mut self.long_len);
        if len > self.max {
            Piece::TooLong(&self.long, len)
        } else {
            Piece::Line(&self.long)
        }
    }

    /// Adds bytes to the line being gathered, keeping at most `max` of them, and only a
    /// glimpse once the line is over the bound.
    fn gather(&mut self, from: usize, n: usize) {
        if self.long_len == 0 {
            if self.long.capacity() > 2 * READ_CHUNK {
                // Do not keep the memory of a long line for the rest of the run.
                self.long = Vec::new();
            }
            self.long.clear();
        }
        self.long_len += n;
        let keep = if self.long_len > self.max {
            self.glimpse
        } else {
            self.max
        };
        if self.long.len() > keep {
            self.long.truncate(keep);
            self.long.shrink_to_fit();
        }
        let room = keep.saturating_sub(self.long.len()).min(n);
        self.long.extend_from_slice(&self.buf[from..from + room]);
    }

    /// Moves the partial line left in the buffer aside and reads more. Returns when it read
    /// something (true) or at end of input or on a read error (false). A partial last line
    /// is then left for [`Lines::last`].
    fn fill(&mut self) -> bool {
        if self.start < self.end {
            self.gather(self.start, self.end - self.start);
        }
        self.start = 0;
        self.end = 0;
        loop {
            match self.input.read(&mut self.buf) {
                Ok(0) => return false,
                Ok(n) => {
                    self.end = n;
                    return true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }

    /// A last line that had no newline, at end of input.
    fn last(&mut self) -> Option<Piece<'_>> {
        (self.long_len > 0).then(|| {
            let len = std::mem::take(&mut self.long_len);
            if len > self.max {
                Piece::TooLong(&self.long, len)
            } else {
                Piece::Line(&self.long)
            }
        })
    }
}

/// `data` split into lines as the runner splits a node's stdout, without its bound: at
/// `\n`, `\r` or `\r\n`; the bytes after the last end are a line only if there are any.
pub fn java_lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let Some(at) = rest.iter().position(|&b| b == b'\n' || b == b'\r') else {
            return Some(std::mem::take(&mut rest));
        };
        let line = &rest[..at];
        let end = if rest[at..].starts_with(b"\r\n") {
            2
        } else {
            1
        };
        rest = &rest[at + end..];
        Some(line)
    })
}

/// The reader's state for one line at a time, so each line is handled the same way whether
/// it came out of the buffer or was the last one.
struct Reader<'a> {
    node: usize,
    names: &'a Names,
    shared: &'a Stdout,
    batch: Vec<Event>,
    batch_bytes: usize,
    dead: bool,
    /// Valid lines so far.
    lines: usize,
}

impl Reader<'_> {
    fn line(&mut self, piece: Piece<'_>, read_at: Instant) {
        let (bytes, too_long) = match piece {
            Piece::Line(bytes) => (bytes, None),
            Piece::TooLong(glimpse, len) => (glimpse, Some(len)),
        };
        self.batch_bytes += bytes.len();
        push_tail(&self.shared.tail, bytes);
        if self.dead {
            return;
        }
        let node = self.node;
        let text = match (too_long, std::str::from_utf8(bytes)) {
            (Some(len), _) => Err(format!(
                "stdout line of {len} bytes, longer than the runner's limit of {MAX_STDOUT_LINE}"
            )),
            (None, Err(e)) => Err(format!(
                "stdout line is not UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            )),
            (None, Ok(text)) => protocol::parse_line(text, self.names)
                .map(|msg| {
                    // Replies to clients are only kept while the journal may still want
                    // them: they are the bulk of the traffic.
                    let keep = !matches!(msg.dest(), protocol::Dest::Client(_))
                        || self.lines < crate::network::JOURNAL_LIMIT;
                    self.lines += 1;
                    Event::Line {
                        node,
                        msg,
                        body: keep.then(|| {
                            protocol::forwarded_body(text)
                                .map_or_else(|| text.to_owned(), Cow::into_owned)
                        }),
                        read_at,
                    }
                })
                .map_err(|e| e.0),
        };
        match text {
            Ok(event) => self.batch.push(event),
            Err(reason) => {
                self.dead = true;
                self.batch.push(Event::Invalid {
                    node,
                    line: String::from_utf8_lossy(bytes).into_owned(),
                    reason,
                });
            }
        }
    }

    /// Hands the batch over; false if the scheduler is gone.
    fn send(&mut self, events: &impl Handoff) -> bool {
        self.batch_bytes = 0;
        self.batch.is_empty() || events.hand_over(std::mem::take(&mut self.batch))
    }
}

fn read_loop(
    node: usize,
    stdout: impl Read,
    names: &Names,
    events: &impl Handoff,
    shared: &Stdout,
) {
    let mut lines = Lines::new(stdout, MAX_STDOUT_LINE, TAIL_LINE);
    let mut reader = Reader {
        node,
        names,
        shared,
        batch: Vec::new(),
        batch_bytes: 0,
        dead: false,
        lines: 0,
    };
    let mut read_at = Instant::now();
    loop {
        while let Some(piece) = lines.buffered() {
            reader.line(piece, read_at);
            let full = reader.batch.len() >= BATCH_LINES || reader.batch_bytes >= BATCH_BYTES;
            if full && !reader.send(events) {
                return;
            }
        }
        // No complete line is left: hand everything over before the next read, which may
        // block, so no reply waits for company.
        if !reader.send(events) {
            return;
        }
        // SeqCst (all three stores): see `Node::handed_over_before`. IDLE says every line
        // read so far is in the channel; STAMPING, stored before the clock is read, makes
        // the scheduler wait rather than miss a line stamped before its own clock reading.
        shared.unsent.store(IDLE, Ordering::SeqCst);
        if !lines.fill() {
            break;
        }
        if !reader.dead {
            shared.unsent.store(STAMPING, Ordering::SeqCst);
            read_at = Instant::now();
            let ns = read_at.duration_since(shared.epoch).as_nanos();
            shared
                .unsent
                .store(u64::try_from(ns).unwrap_or(STAMPING - 1), Ordering::SeqCst);
        }
    }
    if let Some(piece) = lines.last() {
        reader.line(piece, read_at);
    }
    reader.batch.push(Event::Eof { node });
    reader.send(events);
}

/// Where a reader hands its batches: the scheduler's [`EventSender`] in a run.
pub trait Handoff {
    /// False if nobody will take batches any more.
    fn hand_over(&self, batch: Vec<Event>) -> bool;
}

/// The readers' side of the queue their batches wait in for the scheduler.
///
/// A mutex and a condvar rather than a channel: crossbeam's blocking receive spins and
/// calls `sched_yield` several times before it sleeps, and at 100k ops/s the scheduler
/// waits for nearly every batch, so on two busy cores those yields were a quarter of its
/// CPU. Here a waiting scheduler sleeps at once, and a reader only makes the wake-up
/// syscall when the scheduler is asleep.
#[derive(Debug)]
pub struct EventSender(Arc<EventQueue>);

/// The scheduler's side of the queue: see [`EventSender`].
#[derive(Debug)]
pub struct EventReceiver(Arc<EventQueue>);

#[derive(Debug, Default)]
struct EventQueue {
    state: Mutex<QueueState>,
    ready: Condvar,
}

#[derive(Debug, Default)]
struct QueueState {
    batches: VecDeque<Vec<Event>>,
    senders: usize,
    receiver_gone: bool,
    /// The receiver sleeps on `ready`: a batch or the last sender's end must wake it.
    waiting: bool,
}

/// A new queue with one sender (clone it for each reader).
pub fn event_queue() -> (EventSender, EventReceiver) {
    let q = Arc::new(EventQueue::default());
    lock(&q.state).senders = 1;
    (EventSender(Arc::clone(&q)), EventReceiver(q))
}

impl Clone for EventSender {
    fn clone(&self) -> EventSender {
        lock(&self.0.state).senders += 1;
        EventSender(Arc::clone(&self.0))
    }
}

impl Drop for EventSender {
    fn drop(&mut self) {
        let mut s = lock(&self.0.state);
        s.senders -= 1;
        if s.senders == 0 && s.waiting {
            self.0.ready.notify_one();
        }
    }
}

impl Drop for EventReceiver {
    fn drop(&mut self) {
        lock(&self.0.state).receiver_gone = true;
    }
}

impl Handoff for EventSender {
    fn hand_over(&self, batch: Vec<Event>) -> bool {
        let mut s = lock(&self.0.state);
        if s.receiver_gone {
            return false;
        }
        s.batches.push_back(batch);
        if s.waiting {
            self.0.ready.notify_one();
        }
        true
    }
}

/// The readers' tests collect what a reader hands over in a plain channel.
#[cfg(test)]
impl Handoff for crossbeam_channel::Sender<Vec<Event>> {
    fn hand_over(&self, batch: Vec<Event>) -> bool {
        self.send(batch).is_ok()
    }
}

/// What [`EventReceiver::recv_timeout`] found.
#[derive(Debug)]
pub enum Received {
    Batch(Vec<Event>),
    Timeout,
    /// Every sender is gone and every batch was taken.
    Closed,
}

impl EventReceiver {
    /// A batch already queued, without waiting.
    pub fn try_recv(&self) -> Option<Vec<Event>> {
        lock(&self.0.state).batches.pop_front()
    }

    /// The next batch, waiting up to `timeout` for one.
    pub fn recv_timeout(&self, timeout: Duration) -> Received {
        let deadline = Instant::now() + timeout;
        let mut s = lock(&self.0.state);
        loop {
            if let Some(batch) = s.batches.pop_front() {
                return Received::Batch(batch);
            }
            if s.senders == 0 {
                return Received::Closed;
            }
            let now = Instant::now();
            if now >= deadline {
                return Received::Timeout;
            }
            s.waiting = true;
            s = self
                .0
                .ready
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            s.waiting = false;
        }
    }
}

fn stderr_loop(stderr: impl Read, log: File, echo: Option<String>, tail: &Mutex<VecDeque<String>>) {
    let mut lines = Lines::new(stderr, MAX_STDERR_LINE, MAX_STDERR_LINE);
    let mut log = BufWriter::new(log);
    let line = |piece: Piece<'_>, log: &mut BufWriter<File>| {
        let (bytes, cut) = match piece {
            Piece::Line(bytes) => (bytes, 0),
            Piece::TooLong(kept, len) => (kept, len - kept.len()),
        };
        let mut text = String::from_utf8_lossy(bytes).into_owned();
        if cut > 0 {
            text.push_str(&format!(" [… {cut} more bytes cut by kafka-workload]"));
        }
        let _ = writeln!(log, "{text}");
        if let Some(name) = &echo {
            eprintln!("[{name}] {text}");
        }
        let mut tail = lock(tail);
        if tail.len() == TAIL {
            tail.pop_front();
        }
        tail.push_back(text);
    };
    loop {
        while let Some(piece) = lines.buffered() {
            line(piece, &mut log);
        }
        let _ = log.flush();
        if !lines.fill() {
            break;
        }
    }
    if let Some(piece) = lines.last() {
        line(piece, &mut log);
    }
    let _ = log.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::Receiver;

    fn names() -> Names {
        Names::new(vec!["n0".into()])
    }

    const REPLY: &str =
        r#"{"src":"n0","dest":"c1","body":{"type":"send_ok","in_reply_to":1,"offset":0}}"#;

    /// A pipe that takes `room` more bytes, then would block; or is broken.
    #[derive(Debug, Default)]
    struct FakePipe {
        written: Vec<u8>,
        room: usize,
        broken: bool,
    }

    impl Write for &mut FakePipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.broken {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            // At most 3 bytes a call: partial writes must be continued, not dropped.
            let n = buf.len().min(self.room).min(3);
            self.written.extend_from_slice(&buf[..n]);
            self.room -= n;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn stdin_keeps_what_a_full_pipe_refused_and_writes_it_first_in_order() {
        let mut pipe = FakePipe {
            room: 4,
            ..FakePipe::default()
        };
        let mut stdin = Stdin::new(&mut pipe);
        stdin.send(b"abcdefghij");
        assert!(stdin.held_back());
        stdin.pipe.as_mut().unwrap().room = 3;
        // The backlog goes first; what does not fit queues behind it.
        stdin.send(b"XY");
        assert!(stdin.held_back());
        assert!(stdin.retry(), "the pipe is full again");
        stdin.pipe.as_mut().unwrap().room = 100;
        stdin.send(b"Z");
        assert!(!stdin.held_back());
        assert!(!stdin.retry());
        stdin.send(b"!");
        assert_eq!(pipe.written, b"abcdefghijXYZ!");
    }

    #[test]
    fn stdin_drops_everything_once_the_pipe_breaks() {
        let mut pipe = FakePipe::default();
        let mut stdin = Stdin::new(&mut pipe);
        stdin.send(b"held");
        assert!(stdin.held_back());
        stdin.pipe.as_mut().unwrap().broken = true;
        assert!(!stdin.retry(), "a broken pipe holds nothing back");
        stdin.send(b"more");
        assert!(!stdin.held_back());
        assert!(stdin.pipe.is_none());
    }

    #[test]
    fn event_queue_hands_batches_over_in_order_and_closes_with_its_last_sender() {
        let (tx, rx) = event_queue();
        let tx2 = tx.clone();
        assert!(rx.try_recv().is_none());
        assert!(matches!(
            rx.recv_timeout(Duration::from_millis(1)),
            Received::Timeout
        ));
        assert!(tx.hand_over(vec![Event::Eof { node: 0 }]));
        assert!(tx2.hand_over(vec![Event::Eof { node: 1 }]));
        drop(tx);
        drop(tx2);
        // Batches sent before the senders left still come, then the end.
        let nodes: Vec<usize> = (0..2)
            .map(|_| match rx.recv_timeout(Duration::from_secs(60)) {
                Received::Batch(b) => match b[..] {
                    [Event::Eof { node }] => node,
                    _ => panic!("{b:?}"),
                },
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(nodes, [0, 1]);
        assert!(matches!(
            rx.recv_timeout(Duration::from_secs(60)),
            Received::Closed
        ));
    }

    #[test]
    fn event_queue_wakes_a_sleeping_receiver_and_refuses_batches_once_it_is_gone() {
        let (tx, rx) = event_queue();
        let sender = thread::spawn(move || {
            // Whether the receiver is asleep yet or not, the batch must reach it.
            thread::sleep(Duration::from_millis(20));
            assert!(tx.hand_over(vec![Event::Eof { node: 7 }]));
            tx
        });
        // Not a timing assertion: an hour is "forever"; the batch must end the wait.
        match rx.recv_timeout(Duration::from_secs(3600)) {
            Received::Batch(b) => assert!(matches!(b[..], [Event::Eof { node: 7 }])),
            other => panic!("{other:?}"),
        }
        let tx = sender.join().unwrap();
        drop(rx);
        assert!(!tx.hand_over(Vec::new()));
    }

    /// Runs the stdout reader over `input` and returns every event it produced, and the tail.
    fn read_all(input: &[u8]) -> (Vec<Event>, Vec<String>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let shared = Stdout {
            epoch: Instant::now(),
            unsent: AtomicU64::new(IDLE),
            tail: Mutex::new(VecDeque::new()),
        };
        read_loop(0, input, &names(), &tx, &shared);
        drop(tx);
        assert_eq!(shared.unsent.load(Ordering::SeqCst), IDLE);
        let tail = lock(&shared.tail).iter().cloned().collect();
        (rx.iter().flatten().collect(), tail)
    }

    fn kinds(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                Event::Line { .. } => "line".to_owned(),
                Event::Invalid { reason, .. } => format!("invalid: {reason}"),
                Event::Eof { .. } => "eof".to_owned(),
            })
            .collect()
    }

    #[test]
    fn a_line_that_is_not_utf8_is_an_invalid_line_and_the_pipe_is_drained() {
        let mut input = Vec::new();
        for line in [REPLY.as_bytes(), b"{\"src\":\"n0\xff\"}", REPLY.as_bytes()] {
            input.extend_from_slice(line);
            input.push(b'\n');
        }
        let (events, tail) = read_all(&input);
        let kinds = kinds(&events);
        assert_eq!(kinds.len(), 3, "{kinds:?}");
        assert_eq!(kinds[0], "line");
        assert!(
            kinds[1].starts_with("invalid: stdout line is not UTF-8 (invalid byte at offset 10)"),
            "{kinds:?}"
        );
        // Nothing after the invalid line is delivered, but the reader read on to the end.
        assert_eq!(kinds[2], "eof");
        assert_eq!(tail.len(), 3, "{tail:?}");
    }

    #[test]
    fn a_line_over_the_bound_is_an_invalid_line_and_is_not_held_whole() {
        let mut lines = Lines::new(&b"0123456789\nabc\n"[..], 4, 4);
        assert!(lines.fill());
        assert_eq!(lines.buffered(), Some(Piece::TooLong(b"0123", 10)));
        assert_eq!(lines.buffered(), Some(Piece::Line(b"abc")));
        assert_eq!(lines.buffered(), None);

        let mut input = vec![b' '; MAX_STDOUT_LINE + 1];
        input.push(b'\n');
        input.extend_from_slice(REPLY.as_bytes());
        let (events, tail) = read_all(&input);
        let kinds = kinds(&events);
        assert_eq!(
            kinds,
            [
                format!(
                    "invalid: stdout line of {} bytes, longer than the runner's limit of {MAX_STDOUT_LINE}",
                    MAX_STDOUT_LINE + 1
                ),
                "eof".to_owned()
            ]
        );
        assert!(
            tail[0].len() <= TAIL_LINE + '…'.len_utf8(),
            "{}",
            tail[0].len()
        );
    }

    /// A reader that returns its input a few bytes at a time, so lines span reads.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// Every piece `Lines` makes of `input` (lines of at most 10 bytes), in order, as text.
    fn pieces(input: Trickle<'_>) -> Vec<String> {
        let mut lines = Lines::new(input, 10, 10);
        let mut got = Vec::new();
        loop {
            while let Some(piece) = lines.buffered() {
                got.push(format!("{piece:?}"));
            }
            if !lines.fill() {
                break;
            }
        }
        if let Some(piece) = lines.last() {
            got.push(format!("{piece:?}"));
        }
        got
    }

    #[test]
    fn lines_spanning_reads_are_gathered_and_bounded() {
        let input = b"abcdefgh\nijklmnopqrstu\nvw\nxyz";
        let got = pieces(Trickle(input, 3));
        let want = [
            Piece::Line(b"abcdefgh"),
            Piece::TooLong(b"ijklmnopqr", 13),
            Piece::Line(b"vw"),
            Piece::Line(b"xyz"),
        ]
        .map(|p| format!("{p:?}"));
        assert_eq!(got, want);
    }

    /// Every way of ending lines, read through every size of read: the same lines as
    /// Java's line reader gives, and as [`java_lines`] splits them.
    #[test]
    fn a_carriage_return_ends_a_line_and_a_line_feed_right_after_it_ends_the_same_one() {
        let input = b"a\nb\r\nc\rd\r\re\n\r\nf\r";
        let want: Vec<&[u8]> = vec![b"a", b"b", b"c", b"d", b"", b"e", b"", b"f"];
        assert_eq!(java_lines(input).collect::<Vec<_>>(), want);
        assert_eq!(java_lines(b"x\r\ny").collect::<Vec<_>>(), [b"x", b"y"]);
        for chunk in 1..=input.len() {
            let got = pieces(Trickle(input, chunk));
            let want: Vec<String> = want
                .iter()
                .map(|l| format!("{:?}", Piece::Line(l)))
                .collect();
            assert_eq!(got, want, "reads of {chunk} bytes");
        }
        // A reply whose line ends in `\r\n` is read; a carriage return inside one ends it
        // there, and both halves are lines of their own (the first is no JSON).
        let (events, _) = read_all(format!("{REPLY}\r\n{REPLY}").as_bytes());
        assert_eq!(kinds(&events), ["line", "line", "eof"]);
        let split = REPLY.replacen(",", ",\r", 1);
        let (events, _) = read_all(split.as_bytes());
        assert!(
            kinds(&events)[0].starts_with("invalid: stdout line is not JSON"),
            "{:?}",
            kinds(&events)
        );
    }

    #[test]
    fn valid_lines_are_stamped_and_handed_over() {
        let before = Instant::now();
        let input = format!("{REPLY}\n{REPLY}");
        let (events, _) = read_all(input.as_bytes());
        assert_eq!(kinds(&events), ["line", "line", "eof"]);
        for e in &events {
            if let Event::Line { read_at, .. } = e {
                assert!(*read_at >= before);
            }
        }
    }

    #[test]
    fn long_stderr_lines_are_cut_in_the_log_and_the_tail() {
        let dir =
            std::env::temp_dir().join(format!("kafka-workload-stderr-{}", std::process::id()));
        let path = dir.with_extension("log");
        let mut input = vec![b'x'; MAX_STDERR_LINE + 10];
        input.extend_from_slice(b"\nshort\n");
        let tail = Mutex::new(VecDeque::new());
        stderr_loop(&input[..], File::create(&path).unwrap(), None, &tail);
        let log = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 2, "{}", log.len());
        assert!(lines[0].ends_with(" [… 10 more bytes cut by kafka-workload]"));
        assert_eq!(
            lines[0].len(),
            MAX_STDERR_LINE + " [… 10 more bytes cut by kafka-workload]".len()
        );
        assert_eq!(lines[1], "short");
        assert_eq!(lock(&tail).len(), 2);
    }

    #[test]
    fn a_line_read_but_not_handed_over_holds_the_horizon_back() {
        /// Returns one reply, then blocks until told to end.
        struct Once(Option<&'static [u8]>, Receiver<()>);
        impl Read for Once {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                match self.0.take() {
                    Some(bytes) => {
                        buf[..bytes.len()].copy_from_slice(bytes);
                        Ok(bytes.len())
                    }
                    None => {
                        let _ = self.1.recv();
                        Ok(0)
                    }
                }
            }
        }
        // A rendezvous channel: the reader holds its batch until this test takes it.
        let (tx, rx) = crossbeam_channel::bounded(0);
        let (end_tx, end_rx) = crossbeam_channel::bounded::<()>(0);
        let shared = Arc::new(Stdout {
            epoch: Instant::now(),
            unsent: AtomicU64::new(IDLE),
            tail: Mutex::new(VecDeque::new()),
        });
        let line: &'static [u8] = Box::leak(format!("{REPLY}\n").into_bytes().into_boxed_slice());
        let reader = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || read_loop(0, Once(Some(line), end_rx), &names(), &tx, &shared))
        };
        // Until the reader has read the line and waits to hand it over: a sender waiting on the
        // rendezvous channel makes a receive ready. `ready` may return spuriously, `try_ready`
        // does not (it looks without receiving).
        let mut waiting = crossbeam_channel::Select::new();
        waiting.recv(&rx);
        while waiting.try_ready().is_err() {
            waiting.ready();
        }
        let horizon = shared.handed_over_before();
        let batch = rx.recv().unwrap();
        let Some(Event::Line { read_at, .. }) = batch.first() else {
            panic!("{batch:?}");
        };
        assert!(
            horizon <= *read_at,
            "a line not handed over was read before the horizon"
        );
        drop(end_tx);
        assert!(matches!(rx.recv().unwrap()[..], [Event::Eof { .. }]));
        reader.join().unwrap();
        assert!(shared.handed_over_before() >= *read_at);
    }
}
