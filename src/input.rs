//! The node's input: bytes to read, and, where the input can say so, whether more will come
//! within a short time.
//!
//! The reader hands a batch to the workers whenever no complete line is left in its buffer, so a
//! request never waits for company that may not come. In a live run at high rate, though, each
//! read brings a few lines, and each hand-off wakes a sleeping worker and then the sleeping
//! writer: those wakes, not the work, were most of the node's CPU (BENCHMARKS.md, "Live runs").
//! An input that can wait with a timeout lets the reader hold a small batch for a bounded time
//! while more lines are on their way (`Config::hold_us`), so one hand-off carries the lines of
//! several reads.

use std::fs::File;
use std::io::{Cursor, Read};
use std::time::Duration;

/// Input the node reads requests from.
pub trait Input: Read {
    /// Waits at most `timeout` for something to read (bytes, the end of the input, or an
    /// error), and says whether there is. The default cannot wait and says no at once, so the
    /// reader hands over what it has: right for input that is all there already.
    fn ready_within(&self, timeout: Duration) -> bool {
        let _ = timeout;
        false
    }
}

impl Input for File {
    /// `poll(2)` on the descriptor. A pipe (Maelstrom's) waits; a regular file is always ready.
    /// An error from `poll` (an interrupt) says no: the reader then hands over, as without a wait.
    fn ready_within(&self, timeout: Duration) -> bool {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let Ok(timeout) = Timespec::try_from(timeout) else {
            return false;
        };
        let mut fds = [PollFd::new(self, PollFlags::IN)];
        // Any event counts: readable, hung up, or an error, which the next read then reports.
        poll(&mut fds, Some(&timeout)).is_ok_and(|ready| ready > 0)
    }
}

impl<T: AsRef<[u8]>> Input for Cursor<T> {}

impl Input for &[u8] {}
