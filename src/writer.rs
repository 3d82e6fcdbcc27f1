//! Writer thread: the only owner of stdout. Writes whole reply lines and decides when to flush.

use std::io::{self, BufWriter, Write};

use crossbeam_channel::Receiver;

/// Writes every buffer of reply lines to `output` until the workers are done, then flushes.
///
/// It flushes whenever no more replies are waiting: a reply must never sit in a buffer while the
/// pipe is idle (Maelstrom's client gives up after 5 s, and `init_ok` has a 10 s deadline), and
/// under load many replies share one `write` system call.
pub(crate) fn run(replies: &Receiver<Vec<u8>>, output: impl Write) -> io::Result<()> {
    let mut output = BufWriter::with_capacity(64 * 1024, output);
    for lines in replies {
        output.write_all(&lines)?;
        if replies.is_empty() {
            output.flush()?;
        }
    }
    output.flush()
}
