//! The replication thread: idle until `init` names several nodes, then applies peers' messages
//! as they come and sends its own every period, until the reader is done or stdout is gone.
//! The only place the replication reads a clock.

use std::time::{Duration, Instant};

use compact_str::CompactString;
use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::wire::Replicate;
use super::{Millis, Replicator, Timing};
use crate::budget::ByteBudget;
use crate::cluster::Cluster;
use crate::doorbell::BellSender;
use crate::shared::Shared;
use crate::writer::Replies;

/// What the reader hands the replication thread.
#[derive(Debug)]
pub(crate) enum Feed {
    /// `init` named a cluster of several nodes: start replicating.
    Start(Cluster),
    /// A `replicate` message from a peer.
    Peer(CompactString, Box<Replicate>),
}

/// The replication thread's end of the reader's lane: the messages, and the budget their
/// bytes were taken from (`reader::Lanes::peer_budget`), given back as each is applied and
/// closed when the thread ends, so the reader never waits for a thread that is gone.
#[derive(Debug)]
pub(crate) struct FeedLane<'a> {
    messages: &'a Receiver<Feed>,
    budget: &'a ByteBudget,
}

impl Drop for FeedLane<'_> {
    fn drop(&mut self) {
        self.budget.close();
    }
}

impl<'a> FeedLane<'a> {
    /// The lane from the reader: `messages`, whose `Peer` line bytes were taken from `budget`.
    pub(crate) fn new(messages: &'a Receiver<Feed>, budget: &'a ByteBudget) -> Self {
        Self { messages, budget }
    }

    /// Gives back a message's bytes, once it has been dealt with.
    fn done(&self, message: &Replicate) {
        self.budget.give_back(message.line_len);
    }
}

/// The milliseconds since `epoch`: the replicator's clock.
fn millis_since(epoch: Instant) -> Millis {
    epoch
        .elapsed()
        .as_millis()
        .try_into()
        .unwrap_or(Millis::MAX)
}

/// Runs the replication thread (see the module docs), writing no line longer than `max_line`.
pub(crate) fn run(
    feed: &FeedLane<'_>,
    shared: &Shared,
    max_line: usize,
    replies: &BellSender<Replies>,
) {
    let cluster = loop {
        match feed.messages.recv() {
            Ok(Feed::Start(cluster)) => break cluster,
            Ok(Feed::Peer(src, message)) => {
                feed.done(&message);
                crate::diag::note!("ignored a replicate message from {src} before init");
            }
            Err(_) => return,
        }
    };
    let timing = Timing::for_nodes(cluster.len());
    let mut replicator = Replicator::new(cluster, timing, max_line);
    let period = timing.period;
    let epoch = Instant::now();
    let mut next: Millis = period;
    loop {
        match feed
            .messages
            .recv_deadline(epoch + Duration::from_millis(next))
        {
            Ok(Feed::Peer(src, message)) => {
                replicator.apply(&src, &message, &shared.store);
                feed.done(&message);
            }
            Ok(Feed::Start(_)) => {}
            Err(RecvTimeoutError::Timeout) => {
                let now = millis_since(epoch);
                let lines = replicator.tick(now, &shared.store);
                // Messages to peers: no reply deadline applies, and no byte budget is taken.
                let lines = Replies {
                    bytes: lines.concat(),
                    ..Replies::default()
                };
                if !lines.bytes.is_empty() && replies.send(lines).is_err() {
                    return;
                }
                next += period;
                if next < now {
                    next = now + period;
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}
