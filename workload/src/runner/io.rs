//! The scheduler's inputs from outside, as two traits: the [`Clock`] it reads the time from
//! and the [`Pipes`] to the nodes. A run uses the wall clock and child processes
//! ([`WallClock`], [`Children`]); the unit tests use simulated time and scripted nodes, so
//! the scheduler's rules (timeouts, the rate, crashes, the phases) are tested in
//! microseconds and without processes, as the node's `Replicator::tick(now)` is.

use std::time::{Duration, Instant};

use crate::node::{self, Event, EventReceiver, Node};

/// Where the scheduler's time comes from. Times are nanoseconds since the run's origin.
pub(crate) trait Clock {
    fn now(&self) -> u64;

    /// An instant another thread stamped (a reader's `read_at`), on the same scale; 0 if
    /// it is before the origin.
    fn since_origin(&self, at: Instant) -> u64;

    /// Waits `ns` nanoseconds. Only used when no node can say anything any more, so the
    /// scheduler does not spin while it notices.
    fn sleep(&self, ns: u64);
}

/// What a wait for the nodes' output gave.
#[derive(Debug)]
pub(crate) enum Received {
    /// A batch a reader handed over.
    Batch(Vec<Event>),
    /// Nothing before the time waited for.
    Timeout,
    /// Every reader is gone: all nodes closed their stdout.
    Closed,
}

/// The nodes' pipes, as the scheduler sees them: bytes in, batches of parsed lines out.
pub(crate) trait Pipes {
    /// How many nodes there are (fewer than asked if spawning stopped early).
    fn nodes(&self) -> usize;

    /// Writes bytes (whole lines) to `node`'s stdin, never blocking: what the pipe does not
    /// take now is kept, in order, for later. True if some bytes are still held back.
    fn send(&mut self, node: usize, bytes: &[u8]) -> bool;

    /// Writes what `node`'s stdin holds back, as far as it goes. True if some is left.
    fn retry(&mut self, node: usize) -> bool;

    /// The next batch the readers hand over, waiting until `until` at most (`now` is the
    /// clock's time now; no wait if `until <= now`).
    fn recv(&mut self, now: u64, until: u64) -> Received;

    /// A batch that is already there, without waiting.
    fn try_recv(&mut self) -> Option<Vec<Event>>;

    /// An instant before which every line `node` printed has been handed over (see
    /// [`Node::handed_over_before`]).
    fn handed_over_before(&self, node: usize) -> Instant;

    /// Whether `node`'s process has exited.
    fn exited(&mut self, node: usize) -> bool;
}

/// The wall clock, from the moment the run started.
#[derive(Debug)]
pub(crate) struct WallClock {
    origin: Instant,
}

impl WallClock {
    pub(crate) fn start() -> WallClock {
        WallClock {
            origin: Instant::now(),
        }
    }
}

impl Clock for WallClock {
    fn now(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    fn since_origin(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.origin).as_nanos() as u64
    }

    fn sleep(&self, ns: u64) {
        std::thread::sleep(Duration::from_nanos(ns));
    }
}

/// The node processes and the channel their readers hand batches over on.
#[derive(Debug)]
pub(crate) struct Children {
    nodes: Vec<Node>,
    events: EventReceiver,
}

impl Children {
    pub(crate) fn new(nodes: Vec<Node>, events: EventReceiver) -> Children {
        Children { nodes, events }
    }

    /// The processes, for CPU accounting and teardown once the run is over.
    pub(crate) fn take_nodes(&mut self) -> Vec<Node> {
        std::mem::take(&mut self.nodes)
    }
}

impl Pipes for Children {
    fn nodes(&self) -> usize {
        self.nodes.len()
    }

    fn send(&mut self, node: usize, bytes: &[u8]) -> bool {
        self.nodes[node].send(bytes);
        self.nodes[node].held_back()
    }

    fn retry(&mut self, node: usize) -> bool {
        self.nodes[node].retry()
    }

    fn recv(&mut self, now: u64, until: u64) -> Received {
        let got = if until > now {
            self.events.recv_timeout(Duration::from_nanos(until - now))
        } else {
            self.events
                .try_recv()
                .map_or(node::Received::Timeout, node::Received::Batch)
        };
        match got {
            node::Received::Batch(batch) => Received::Batch(batch),
            node::Received::Timeout => Received::Timeout,
            node::Received::Closed => Received::Closed,
        }
    }

    fn try_recv(&mut self) -> Option<Vec<Event>> {
        self.events.try_recv()
    }

    fn handed_over_before(&self, node: usize) -> Instant {
        self.nodes[node].handed_over_before()
    }

    fn exited(&mut self, node: usize) -> bool {
        self.nodes[node].exited().is_some()
    }
}
