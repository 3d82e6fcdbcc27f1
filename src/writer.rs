//! Writer thread: the only owner of stdout. Writes whole reply lines and decides when to flush.

use std::io::{self, BufWriter, Write};

use crossbeam_channel::Sender;

use crate::doorbell::BellReceiver;

/// Largest reply buffer worth keeping for reuse.
const RECYCLE_MAX: usize = 256 << 10;

/// Writes every buffer of reply lines to `output` until the workers are done, then flushes.
///
/// It flushes whenever no more replies are waiting: a reply must never sit in a buffer while the
/// pipe is idle (Maelstrom's client gives up after 5 s, and `init_ok` has a 10 s deadline), and
/// under load many replies share one `write` system call.
///
/// Written buffers go back to the workers, cleared, through `empty_buffers`, unless they grew past
/// [`RECYCLE_MAX`] (after a huge reply), so memory use stays what steady traffic needs.
pub(crate) fn run(
    replies: &BellReceiver<Vec<u8>>,
    empty_buffers: &Sender<Vec<u8>>,
    output: impl Write,
) -> io::Result<()> {
    let mut output = BufWriter::with_capacity(64 * 1024, output);
    while let Some(mut lines) = replies.recv() {
        output.write_all(&lines)?;
        if lines.capacity() <= RECYCLE_MAX {
            lines.clear();
            // A full pool just means this buffer is freed instead.
            let _ = empty_buffers.try_send(lines);
        }
        if replies.is_empty() {
            output.flush()?;
        }
    }
    output.flush()
}
