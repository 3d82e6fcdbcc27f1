//! Writer thread: the only owner of stdout. Writes whole reply lines and decides when to flush.

use std::io::{self, BufWriter, Write};
use std::ops::Range;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::budget::ByteBudget;
use crate::doorbell::BellReceiver;
use crate::limits::{IO_BUFFER, RECYCLE_MAX};
use crate::shared::Shared;

/// Reply lines from one worker, built for one batch of requests (or part of one).
#[derive(Debug, Default)]
pub(crate) struct Replies {
    /// Whole reply lines, each ending in a newline.
    pub(crate) bytes: Vec<u8>,
    /// When the reader read the batch's first request: the reply deadline counts from here.
    pub(crate) read_at: Option<Instant>,
    /// The lines the deadline does not apply to (`init_ok`, replies to other nodes).
    pub(crate) exempt: Vec<Range<usize>>,
    /// Bytes taken from the byte budget for this buffer, given back once it is written (0 for
    /// the replication thread's messages, which its own bounded queue paces).
    pub(crate) taken: usize,
}

impl Replies {
    fn clear(&mut self) {
        self.bytes.clear();
        self.read_at = None;
        self.exempt.clear();
        self.taken = 0;
    }
}

/// What the writer works with.
#[derive(Debug)]
pub(crate) struct Lanes<'a> {
    /// Reply buffers, from the workers.
    pub(crate) replies: &'a BellReceiver<Replies>,
    /// Written buffers, cleared, back to the workers.
    pub(crate) empty_buffers: &'a Sender<Replies>,
    /// The bytes the workers took for each buffer, given back once it is written.
    pub(crate) budget: &'a ByteBudget,
}

/// Ends the byte budget when the writer returns, however it returns, so that no worker waits for
/// bytes that will never be given back.
struct CloseOnDrop<'a>(&'a ByteBudget);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Writes every buffer of reply lines to `output` until the workers are done, then flushes.
///
/// It flushes whenever no more replies are waiting: a reply must never sit in a buffer while the
/// pipe is idle (Maelstrom's client gives up after 5 s, and `init_ok` has a 10 s deadline), and
/// under load many replies share one `write` system call.
///
/// A buffer whose requests were read longer than `deadline` ago has its client replies dropped
/// (counted, and noted on stderr): the clients have given up, and a reply to a client Maelstrom
/// has replaced would stop it reading our stdout.
///
/// Written buffers go back to the workers, cleared, through `empty_buffers`, unless they grew past
/// [`RECYCLE_MAX`] (after a huge reply), so memory use stays what steady traffic needs.
pub(crate) fn run(
    lanes: &Lanes<'_>,
    shared: &Shared,
    deadline: Duration,
    output: impl Write,
) -> io::Result<()> {
    let _close = CloseOnDrop(lanes.budget);
    let mut output = BufWriter::with_capacity(IO_BUFFER, output);
    while let Some(mut lines) = lanes.replies.recv() {
        match lines.read_at.map(|t| t.elapsed()) {
            Some(age) if age > deadline => {
                for range in &lines.exempt {
                    output.write_all(&lines.bytes[range.clone()])?;
                }
                let dropped = memchr::memchr_iter(b'\n', &lines.bytes).count() - lines.exempt.len();
                if dropped > 0 {
                    shared.dropped(dropped as u64, age, || {
                        format!("{dropped} replies waiting for stdout")
                    });
                }
            }
            _ => output.write_all(&lines.bytes)?,
        }
        lanes.budget.give_back(lines.taken);
        if lines.bytes.capacity() <= RECYCLE_MAX {
            lines.clear();
            // A full pool just means this buffer is freed instead.
            let _ = lanes.empty_buffers.try_send(lines);
        }
        if lanes.replies.is_empty() {
            output.flush()?;
        }
    }
    output.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doorbell;

    #[test]
    fn late_client_replies_are_dropped_and_counted_and_exempt_ones_written() {
        let (tx, rx) = doorbell::channel(4);
        let (empty_tx, _empty_rx) = crossbeam_channel::bounded(4);
        let budget = ByteBudget::new(1 << 20);
        let shared = Shared::with_node_id("n0");
        let exempt = b"{\"to\":\"n1\"}\n".as_slice();
        let long_ago = Instant::now().checked_sub(Duration::from_secs(10));
        let late = Replies {
            bytes: [b"{\"a\":1}\n".as_slice(), exempt, b"{\"b\":2}\n"].concat(),
            read_at: long_ago,
            exempt: std::iter::once(8..8 + exempt.len()).collect(),
            taken: 0,
        };
        // Read an hour from now: its age is zero however long this thread is descheduled
        // before the writer looks, so the test does not depend on the machine's speed.
        let on_time = Replies {
            bytes: b"{\"c\":3}\n".to_vec(),
            read_at: Instant::now().checked_add(Duration::from_secs(3600)),
            exempt: Vec::new(),
            taken: 0,
        };
        for mut replies in [late, on_time] {
            replies.taken = replies.bytes.len();
            assert!(budget.take(replies.taken));
            tx.send(replies).unwrap();
        }
        drop(tx);
        let mut out = Vec::new();
        let lanes = Lanes {
            replies: &rx,
            empty_buffers: &empty_tx,
            budget: &budget,
        };
        run(&lanes, &shared, Duration::from_secs(1), &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"to\":\"n1\"}\n{\"c\":3}\n"
        );
        assert_eq!(shared.dropped_replies(), 2);
        // Every byte taken was given back.
        assert_eq!(budget.in_flight(), 0);
    }
}
