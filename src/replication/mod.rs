//! Replication between the nodes of a cluster: every node's messages reach every other node in
//! periodic batches, and a poll shows only the prefix of a log that no node can still add to.
//!
//! # The protocol
//!
//! Node `i` of `n` hands out only offsets `r·n + i` for a key (its *class*, see
//! [`Class`]), so two nodes never hand out the same offset and a `send` is answered at once,
//! without asking anyone. Each node's log of a key holds every node's messages at their offsets.
//!
//! Per key, each node has a **promise**: the lowest offset of its class it may still hand out.
//! Every offset of its class below the promise is either one of its messages, already stored,
//! or a *hole* it will never use (a round it skipped). A node's promise is the first slot of its
//! class that is not set yet ([`Log::first_unset`]).
//!
//! Every `period`, a node sends each peer one `replicate` message carrying, for each key whose
//! promise (or committed offset) moved since it last told that peer: the range of its class
//! `[from, to)` where `from` is the promise the peer has already been sent and `to` the promise
//! now, the messages of ours in that range, and the committed offset. The receiver stores the
//! messages, and once the range joins what it already knows from that sender (`from` at or
//! below its `known` promise for the sender; earlier ranges that arrived late wait in
//! `pending`), it marks the sender's unset offsets below `to` as holes and moves `known` to `to`.
//! A slot is therefore set only when its message is stored, or when its class's node has promised
//! never to use it and every message it sent below that promise is stored. The log's watermark
//! walks over set slots only ([`Log`]), so a poll returns a prefix that no message will ever be
//! added to: it never skips an offset that exists anywhere.
//!
//! Promises move forward when peers' offsets arrive: a node that learns of offset `o` raises its
//! round counter above `o` ([`Log::raise`], a `fetch_max`), and every round skipped becomes a
//! hole, so its promise passes `o` and its next message tells the others. Offsets stay small:
//! the highest round on any node is at most the number of messages the key received, so every
//! offset is below nodes × messages.
//!
//! **Reliability.** Ranges are idempotent (a message stored twice is the same message; a range
//! already known changes nothing), so loss, duplication and reordering need only resending. The
//! receiver acknowledges, in its own next message to the sender, the promise it knows for each
//! key the sender told it about (and the committed value it holds); the sender keeps, per peer
//! and key, what it sent and what was acknowledged. A key sent but not acknowledged within
//! `retry` is sent again from the acknowledged promise (the whole unacknowledged range), and
//! each expiry doubles the peer's `retry` up to a ceiling, so a partitioned peer costs one
//! message per ceiling, not one per period; any message from the peer resets it, so after a
//! heal what it missed goes at the next tick. Nothing is sent to a peer that is owed nothing.
//!
//! Committed offsets ride along: each update carries the sender's committed value for the key,
//! merged by maximum.
//!
//! **Bounds.** What one line from a peer can make us do is bounded by its length: all its
//! updates together may open at most [`OFFSETS_PER_BYTE`] offsets per byte of it, each charged
//! against its key's round counter as it stood before the line (a correct sender charges itself
//! at least as much and cuts its ranges to fit). An ack outside our class, or above the highest
//! promise we ever sent that peer, is refused, as is a committed value no client could have
//! made. No line we write is longer than what every node accepts (`MAELSTROM_KAFKA_MAX_LINE`,
//! read the same way by all), and lines aim at [`wire::LINE_TARGET`]: a range that does not fit is
//! cut short at a message of ours (a lower promise, with every message of ours below it) and
//! the rest goes next period. A client's message or key that could not travel within the limit
//! is refused before it is stored ([`travels`]).
//!
//! # Threads
//!
//! The reader hands `replicate` messages to the replication thread (`thread.rs`), which applies
//! them to the store and, every `period`, runs [`Replicator::tick`] and hands the messages to
//! the writer like any reply. All the bookkeeping above lives in that one thread; the store is
//! shared with the workers through the per-key logs the workers append to ([`Log`], lock-free).
//! No worker ever waits on a peer.
//!
//! # Layout
//!
//! - `wire.rs`: the `replicate` message ([`Replicate`], [`Update`], [`Ack`]), reading one
//!   ([`decode`]), writing one within the line limit, and whether a client's message can travel
//!   ([`travels`]). The parser (`protocol.rs`) depends on this part alone.
//! - `outbound.rs`: our class, towards each peer: what we sent and what it acknowledged, what to
//!   send at each tick, and when to send it again.
//! - `inbound.rs`: their class, towards us: what we know of each peer's promise, the ranges that
//!   wait, and the checks every update passes.
//! - `thread.rs`: the thread loop, the only part that reads a clock.
//!
//! Time is one unit throughout: [`Millis`], milliseconds on the replication thread's clock.
//!
//! [`Log`]: crate::log::Log
//! [`Log::first_unset`]: crate::log::Log::first_unset
//! [`Log::raise`]: crate::log::Log::raise
//!

mod inbound;
mod outbound;
#[cfg(test)]
mod tests;
pub(crate) mod thread;
pub mod wire;

use std::collections::{BTreeSet, HashMap};

use compact_str::CompactString;

use crate::cluster::Cluster;
use crate::log::Class;
use crate::store::Logs;
use inbound::Known;
use outbound::{Peer, Sent};
use wire::LineLimits;
pub use wire::{Ack, LINE_TARGET, Replicate, TYPE, Update, decode, travels};

/// Milliseconds on the replicator's clock, the one unit of time in replication: the thread
/// counts them from its start, the simulation test from zero.
pub type Millis = u64;

/// Offsets one `replicate` line may open, in all, per byte of the line.
///
/// An update whose promise `to` is `r` rounds above our round counter for its key opens `r·n`
/// offsets of every node's log of it (n nodes): our counter follows the peer's promise, so our
/// skipped rounds become holes, and the peer's unset offsets below `to` become holes too. A
/// slot takes 32 bytes, and segments double, so an opened offset costs at most 64 bytes, and a
/// line of L bytes at most 64·L (besides what parsing it takes, and its messages' text). Each
/// update is charged against its key's counter as it stood before the line, so that no update
/// builds on what an earlier one in the same line opened. Without it, one lying line of 3.3 KB
/// took a node to 530 MB.
///
/// A correct sender charges itself at least as much (against the round the peer has surely
/// reached: what it acknowledged, or its own promise), and cuts its ranges to fit. Maelstrom-
/// shaped traffic needs far less: at most 0.33 offsets per byte in any line of the simulation
/// test's seeds, at 2, 3 and 5 nodes.
pub const OFFSETS_PER_BYTE: u64 = 1;

/// How often the replication runs, and how long it waits for an acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Between two batches to the same peer.
    pub period: Millis,
    /// Before an unacknowledged key is sent again; doubled at each expiry, up to `retry_max`.
    pub retry: Millis,
    pub retry_max: Millis,
}

impl Timing {
    /// The timing for a cluster of `n`: each node sends each of its `n − 1` peers at most one
    /// message per period, so the cluster sends at most `n(n−1)/period` messages a second. A
    /// period of `n(n−1) · 20 ms` holds that to 50 a second whatever `n` (40 ms for 2 nodes,
    /// 120 ms for 3, 400 ms for 5): 0.05 server messages per operation at 1000 operations a
    /// second.
    pub fn for_nodes(n: usize) -> Self {
        let links = (n * n.saturating_sub(1)).max(1) as u64;
        let period = (links * 20).clamp(20, 1000);
        Self {
            period,
            // A round trip takes a period at each end (the ack waits for the receiver's next
            // batch) plus the network's latency both ways, which Maelstrom's `--latency` puts at
            // up to a few hundred milliseconds.
            retry: period * 2 + 500,
            // Backing off to twice that bounds what an unreachable peer costs (about one message
            // every two seconds at 5 nodes), while a healed link is found again within it.
            retry_max: period * 4 + 1000,
        }
    }
}

/// What this node knows about one key, for one other node: our class towards it, its class
/// towards us.
#[derive(Debug, Clone)]
struct Link {
    ours: Sent,
    theirs: Known,
}

/// One key's replication state.
#[derive(Debug, Clone)]
struct KeyState {
    /// Our promise: the first offset of our class not set yet.
    promise: u64,
    /// Our committed value (offset plus one) as we last looked, merged with peers'.
    committed: u64,
    /// Per node, by index (ours unused).
    links: Box<[Link]>,
}

/// The replication's state machine: apply what peers send, and every period say what is new.
///
/// It owns no thread and reads no clock: `thread.rs` drives it on the replication thread, and
/// the simulation test drives it on a simulated clock. Its halves are `inbound.rs` (updates
/// from peers) and `outbound.rs` (acks from peers, and [`tick`](Self::tick)).
#[derive(Debug)]
pub struct Replicator {
    cluster: Cluster,
    class: Class,
    timing: Timing,
    /// Within the longest line every node of the cluster accepts (`Config::max_line`, which
    /// every node reads the same way): no line we write is longer.
    limits: LineLimits,
    keys: HashMap<CompactString, KeyState, foldhash::fast::FixedState>,
    peers: Vec<Peer>,
    /// Keys whose promise may have moved because a peer's offsets raised our round.
    raised: BTreeSet<CompactString>,
}

impl Replicator {
    /// The replication of `cluster`, with `timing`, writing no line longer than `max_line`
    /// bytes (the longest line every node of the cluster accepts).
    pub fn new(cluster: Cluster, timing: Timing, max_line: usize) -> Self {
        Self {
            class: cluster.class(),
            peers: vec![Peer::new(timing.retry); cluster.len()],
            cluster,
            timing,
            limits: LineLimits::new(max_line),
            keys: HashMap::default(),
            raised: BTreeSet::new(),
        }
    }

    /// The timing in force.
    pub fn timing(&self) -> Timing {
        self.timing
    }

    fn key_state(&mut self, key: &str) -> &mut KeyState {
        let cluster = &self.cluster;
        self.keys.entry(key.into()).or_insert_with(|| KeyState {
            promise: cluster.class().i,
            committed: 0,
            links: (0..cluster.len())
                .map(|j| Link {
                    ours: Sent::new(cluster.class().i),
                    theirs: Known::new(j as u64),
                })
                .collect(),
        })
    }

    /// Applies a `replicate` message from `src`. Anything malformed or unexpected gets a line on
    /// stderr and changes nothing.
    pub fn apply(&mut self, src: &str, message: &Replicate, store: &Logs) {
        let Some(j) = self.cluster.index_of(src).filter(|&j| j != self.cluster.me) else {
            crate::diag::note!("ignored a replicate message from {src}, not a peer");
            return;
        };
        // It reaches us again (after a partition heals, say): back to the quick retry, so what
        // it missed is resent at the next tick instead of after a long backoff.
        self.peers[j].retry = self.timing.retry;
        self.apply_updates(j, message, store);
        self.apply_acks(j, &message.acks);
    }
}
