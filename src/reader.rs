//! Reader thread: the only code that touches stdin. Splits it into lines, parses each with
//! simd-json, and hands batches of requests to the workers.

use std::io::{self, BufRead, BufReader};
use std::mem;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::budget::ByteBudget;
use crate::config::Config;
use crate::doorbell::BellSender;
use crate::input::Input;
use crate::limits::{IO_BUFFER, SHRINK_ABOVE};
use crate::protocol::{Body, Incoming, Keys, Parser, Request};
use crate::replication::thread::Feed;
use crate::shared::{IdSetter, Shared};

/// Requests the reader hands to a worker in one go, and the key lists their bodies point into.
///
/// Keeping every poll's, commit's and list's keys in one shared vector, and recycling whole
/// batches between reader and workers, means that in steady state the reader allocates
/// nothing per request (keys and client ids are inline `CompactString`s).
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) requests: Vec<Request>,
    pub(crate) keys: Keys,
    /// When the reader read the first of `requests` from its input: the reply deadline counts
    /// from here (`Config::reply_deadline_ms`).
    pub(crate) read_at: Option<Instant>,
    /// Bytes of the lines `requests` came from, taken by the reader from the byte budget on
    /// requests waiting for a worker (`node.rs`), given back by the worker that takes the batch.
    pub(crate) line_bytes: usize,
}

/// The channels the reader works between.
#[derive(Debug)]
pub(crate) struct Lanes {
    /// Batches of requests, to the workers.
    pub(crate) work: BellSender<Batch>,
    /// Bounds the bytes of requests queued for the workers: a batch's line bytes are taken
    /// before it is sent, so a flood of huge requests (a final-phase poll names every key) waits
    /// here, in the pipe, rather than in memory.
    pub(crate) work_budget: Arc<ByteBudget>,
    /// Batches the workers have emptied, back to be filled again.
    pub(crate) empty_batches: Receiver<Batch>,
    /// Peers' replication messages, and the start signal, to the replication thread.
    pub(crate) peers: Sender<Feed>,
    /// Bounds the bytes of peers' lines queued for the replication thread, as `work_budget`
    /// does for clients' requests: a message's line bytes are taken before it is sent, and
    /// given back once it is applied.
    pub(crate) peer_budget: Arc<ByteBudget>,
}

/// Reads `input` to its end. Returns early, with `Ok`, if every worker is gone.
///
/// The reader holds the node's one [`IdSetter`]: it alone sets the node id, when `init` arrives.
pub(crate) fn run(
    input: impl Input,
    lanes: &Lanes,
    shared: &Shared,
    id_setter: &IdSetter,
    config: &Config,
) -> io::Result<()> {
    let Lanes {
        work,
        work_budget,
        empty_batches,
        peers,
        peer_budget,
    } = lanes;
    let send = |batch: Batch| work_budget.take(batch.line_bytes) && work.send(batch).is_ok();
    let fresh = || empty_batches.try_recv().unwrap_or_default();
    let mut lines = Lines::new(input, config.max_line);
    let mut parser = Parser::default();
    let mut batch = fresh();
    let hold = config.hold();
    while let Some(line) = lines.next()? {
        match line {
            Ok(line) => {
                let line_bytes = line.len();
                let keys = &mut batch.keys;
                match parse_line(&mut parser, line, shared, id_setter, keys) {
                    // A gone replication thread (a closed budget, or a failed send) means the
                    // node is shutting down; the message is dropped.
                    Some(Incoming::Replicate { src, message })
                        if peer_budget.take(message.line_len) =>
                    {
                        let _ = peers.send(Feed::Peer(src, message));
                    }
                    Some(Incoming::Request(request)) => {
                        if let (Body::Init { .. }, Some(cluster)) =
                            (&request.body, shared.cluster())
                            && cluster.len() > 1
                        {
                            let _ = peers.send(Feed::Start(cluster.clone()));
                        }
                        batch.requests.push(request);
                        batch.line_bytes += line_bytes;
                    }
                    Some(Incoming::Replicate { .. }) | None => {}
                }
            }
            Err(len) => crate::diag::note!(
                "skipped a {len}-byte line, longer than the limit of {} bytes \
                 (MAELSTROM_KAFKA_MAX_LINE)",
                config.max_line
            ),
        }
        if batch.read_at.is_none() && !batch.requests.is_empty() {
            // The batch's first request: the line was read with the last read from the input.
            batch.read_at = Some(lines.read_at);
        }
        // Hand over a full batch, or whatever we have once no complete line is buffered: the
        // next read may block, and a request must not wait for company that may never come.
        // But while the input is busy, a batch is held for whole lines that arrive within
        // `hold` of its first (see `Lines::more_within`).
        let queued = batch.requests.len();
        let ready = queued >= config.batch
            || (queued > 0
                && !lines.has_buffered_line()
                && !batch
                    .read_at
                    .is_some_and(|first| lines.more_within(first, hold)));
        if ready && !send(mem::replace(&mut batch, fresh())) {
            return Ok(());
        }
    }
    if !batch.requests.is_empty() {
        send(batch);
    }
    Ok(())
}

fn parse_line(
    parser: &mut Parser,
    line: &[u8],
    shared: &Shared,
    id_setter: &IdSetter,
    keys: &mut Keys,
) -> Option<Incoming> {
    // Blank lines are skipped quietly. A request starts with `{`, so only a line that starts
    // with white space is scanned for anything else (not every line, on the hot path).
    if line.first().is_none_or(u8::is_ascii_whitespace) && line.iter().all(u8::is_ascii_whitespace)
    {
        return None;
    }
    match parser.parse(line, shared.node_id().is_some(), keys) {
        Ok(incoming) => {
            if let Incoming::Request(Request {
                body: Body::Init { node_id, node_ids },
                ..
            }) = &incoming
            {
                // Set before this init (or anything after it) goes to a worker, so every later
                // request sees it.
                let known = id_setter.set(shared, node_id, node_ids);
                if known != node_id.as_str() {
                    crate::diag::note!("init as {node_id} after init as {known}; keeping {known}");
                }
            }
            Some(incoming)
        }
        Err(e) => {
            crate::diag::note!("ignored a line, {e}: {}", preview(line));
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

/// Splits input into lines, lending each one straight out of the read buffer when it lies
/// there whole (the common case), and gathering it in `long` only when it spans reads.
struct Lines<R> {
    input: BufReader<R>,
    /// When the last read from `input` returned: the line just returned was read then.
    read_at: Instant,
    /// Time between the last two reads from `input`: how busy it is.
    gap: Duration,
    long: Vec<u8>,
    max: usize,
    /// Bytes of the line lent out last time, consumed at the next call.
    lent: usize,
}

impl<R: Input> Lines<R> {
    fn new(input: R, max: usize) -> Self {
        Self {
            input: BufReader::with_capacity(IO_BUFFER, input),
            read_at: Instant::now(),
            gap: Duration::MAX,
            long: Vec::new(),
            max,
            lent: 0,
        }
    }

    /// The next line, without its newline or a trailing `\r`, or `Err(length)` for a line over
    /// the limit (skipped whole). A last line without a newline still counts.
    fn next(&mut self) -> io::Result<Option<Result<&[u8], usize>>> {
        self.input.consume(mem::take(&mut self.lent));
        if self.long.capacity() > SHRINK_ABOVE {
            // Do not hold a long line's memory for the rest of the run.
            self.long = Vec::new();
        }
        self.long.clear();
        let mut total = 0;
        loop {
            match self.fill() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let available = self.input.buffer();
            if available.is_empty() {
                return Ok(match total {
                    0 => None,
                    n if n > self.max => Some(Err(n)),
                    _ => Some(Ok(trim_cr(&self.long))),
                });
            }
            let Some(end) = memchr::memchr(b'\n', available) else {
                let len = available.len();
                total += len;
                if total <= self.max {
                    self.long.extend_from_slice(available);
                } else {
                    self.long.clear();
                }
                self.input.consume(len);
                continue;
            };
            total += end;
            if total > self.max {
                self.input.consume(end + 1);
                return Ok(Some(Err(total)));
            }
            if total == end {
                self.lent = end + 1;
                return Ok(Some(Ok(trim_cr(&self.input.buffer()[..end]))));
            }
            self.long.extend_from_slice(&available[..end]);
            self.input.consume(end + 1);
            return Ok(Some(Ok(trim_cr(&self.long))));
        }
    }

    /// Reads from the input if nothing is left in the buffer (which may block); empty after
    /// this only at the end of the input.
    fn fill(&mut self) -> io::Result<()> {
        // One clock reading per read from the input, not per line.
        if self.input.buffer().is_empty() {
            self.input.fill_buf()?;
            let now = Instant::now();
            self.gap = now.saturating_duration_since(self.read_at);
            self.read_at = now;
        }
        Ok(())
    }

    /// Whether a whole line is already buffered, so that reading it cannot block.
    fn has_buffered_line(&self) -> bool {
        memchr::memchr(b'\n', &self.input.buffer()[self.lent..]).is_some()
    }

    /// Whether, with nothing left in the buffer, a whole line is read before `hold` has passed
    /// since `first`, while the input is busy (its last two reads came less than `hold` apart).
    ///
    /// Waits for the input (at most until `first + hold`) and then reads once, which cannot
    /// block: the input said it was ready. Says no, so that the caller hands its batch over
    /// before the next read that may block, when the input is quiet, the time is up, or that
    /// read brought no whole line (the rest of a long line, say, may be a while coming).
    fn more_within(&mut self, first: Instant, hold: Duration) -> bool {
        self.input.consume(mem::take(&mut self.lent));
        if hold.is_zero() || self.gap >= hold || !self.input.buffer().is_empty() {
            return false;
        }
        let Some(rest) = hold.checked_sub(first.elapsed()).filter(|d| !d.is_zero()) else {
            return false;
        };
        // A read error is left for `next` to meet again and report.
        self.input.get_ref().ready_within(rest) && self.fill().is_ok() && self.has_buffered_line()
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::doorbell;

    /// Input that a test feeds chunk by chunk: each read returns the next chunk, waiting for it;
    /// it is ready while a chunk is queued.
    struct Chunks(crossbeam_channel::Receiver<Vec<u8>>, Vec<u8>);

    impl io::Read for Chunks {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.1.is_empty() {
                match self.0.recv() {
                    Ok(chunk) => self.1 = chunk,
                    Err(_) => return Ok(0),
                }
            }
            let n = buf.len().min(self.1.len());
            buf[..n].copy_from_slice(&self.1[..n]);
            self.1.drain(..n);
            Ok(n)
        }
    }

    impl Input for Chunks {
        fn ready_within(&self, _timeout: Duration) -> bool {
            !self.0.is_empty()
        }
    }

    const INIT: &str = r#"{"src":"c0","dest":"n0","body":{"type":"init","msg_id":1,"node_id":"n0","node_ids":["n0"]}}"#;

    fn send_line(msg_id: u64) -> String {
        format!(
            r#"{{"src":"c1","dest":"n0","body":{{"type":"send","msg_id":{msg_id},"key":"k","msg":1}}}}"#
        )
    }

    /// Runs the reader over `input` on a thread with `hold_us`; returns the batches' request
    /// counts, each as the worker side receives it, through the returned channel.
    fn reader_over(
        input: Chunks,
        hold_us: usize,
    ) -> (
        crossbeam_channel::Receiver<usize>,
        std::thread::JoinHandle<()>,
    ) {
        let (work, work_rx) = doorbell::channel(64);
        let (_empty_tx, empty_batches) = crossbeam_channel::bounded(4);
        let (peers, _feed) = crossbeam_channel::bounded(4);
        let lanes = Lanes {
            work,
            work_budget: Arc::new(ByteBudget::new(1 << 20)),
            empty_batches,
            peers,
            peer_budget: Arc::new(ByteBudget::new(1 << 20)),
        };
        let (counts_tx, counts) = crossbeam_channel::unbounded();
        std::thread::spawn(move || {
            while let Some(batch) = work_rx.recv() {
                let _ = counts_tx.send(batch.requests.len());
            }
        });
        let reader = std::thread::spawn(move || {
            let (shared, id_setter) = Shared::new();
            let config = Config {
                hold_us,
                ..Config::default()
            };
            run(input, &lanes, &shared, &id_setter, &config).unwrap();
        });
        (counts, reader)
    }

    #[test]
    fn a_busy_input_s_lines_share_one_hand_off_and_a_quiet_one_s_do_not() {
        for (hold_us, expected) in [(0, vec![2, 1]), (3_600_000_000, vec![3])] {
            let (chunks, rx) = crossbeam_channel::unbounded();
            chunks
                .send(format!("{INIT}\n{}\n", send_line(2)).into_bytes())
                .unwrap();
            chunks
                .send(format!("{}\n", send_line(3)).into_bytes())
                .unwrap();
            drop(chunks);
            let (counts, reader) = reader_over(Chunks(rx, Vec::new()), hold_us);
            reader.join().unwrap();
            let got: Vec<usize> = counts.iter().collect();
            // Two reads in a row: the second came within the hold of the first, so the input
            // is busy, and the lines of both go to a worker in one batch; without a hold each
            // read's lines are handed over on their own.
            assert_eq!(got, expected, "hold {hold_us} µs");
        }
    }

    #[test]
    fn a_held_batch_is_handed_over_before_a_read_that_may_block() {
        let (chunks, rx) = crossbeam_channel::unbounded();
        chunks
            .send(format!("{INIT}\n{}\n", send_line(2)).into_bytes())
            .unwrap();
        // The start of a line, whose rest comes only after the batch is seen: reading the rest
        // blocks, so the batch must not wait for it, however long the hold.
        let rest = send_line(3);
        let (start, end) = rest.split_at(10);
        chunks.send(start.as_bytes().to_vec()).unwrap();
        let (counts, reader) = reader_over(Chunks(rx, Vec::new()), 3_600_000_000);
        let first = counts.recv_timeout(Duration::from_secs(60));
        chunks.send(format!("{end}\n").into_bytes()).unwrap();
        drop(chunks);
        reader.join().unwrap();
        assert_eq!(first, Ok(2), "the batch waited for the rest of a line");
        assert_eq!(counts.iter().collect::<Vec<_>>(), vec![1]);
    }

    // See: issue 15. Peers' lines waiting for the replication thread were bounded in count
    // (1,024) but not in bytes, where clients' requests waiting for the workers have a byte
    // budget: 1,024 lines of 16 MiB each could wait at once.
    #[test]
    fn peer_lines_waiting_for_the_replication_thread_are_bounded_in_bytes() {
        const MAX: usize = 1 << 20;
        let (work, _work_rx) = doorbell::channel(4);
        let (_empty_tx, empty_batches) = crossbeam_channel::bounded(4);
        let (peers, feed) = crossbeam_channel::bounded(1024);
        let peer_budget = Arc::new(ByteBudget::new(MAX));
        let lanes = Lanes {
            work,
            work_budget: Arc::new(ByteBudget::new(MAX)),
            empty_batches,
            peers,
            peer_budget: Arc::clone(&peer_budget),
        };
        let init = r#"{"src":"c0","dest":"n0","body":{"type":"init","msg_id":1,"node_id":"n0","node_ids":["n0","n1"]}}"#;
        let update = format!(
            r#"{{"src":"n1","dest":"n0","body":{{"type":"replicate","acks":[["{}",1,0]]}}}}"#,
            "k".repeat(100_000)
        );
        let input = format!("{init}\n{}", format!("{update}\n").repeat(50));
        let (shared, id_setter) = Shared::new();
        let config = Config::default();
        let reader = std::thread::spawn(move || {
            run(input.as_bytes(), &lanes, &shared, &id_setter, &config).unwrap();
        });
        // Until the reader waits for bytes to be given back, or has read everything.
        let start = Instant::now();
        while !reader.is_finished() && peer_budget.waiting() == 0 {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the reader is stuck"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let queued: usize = feed
            .try_iter()
            .map(|feed| match feed {
                Feed::Peer(_, message) => message.line_len,
                Feed::Start(_) => 0,
            })
            .sum();
        assert!(
            queued <= MAX,
            "{queued} bytes of peers' lines waiting, over {MAX}"
        );
        peer_budget.close();
        reader.join().unwrap();
    }
}
