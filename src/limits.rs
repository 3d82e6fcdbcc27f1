//! Every retention and buffer threshold of the node in one place, each with the reason or the
//! measurement behind its value. Settings a run may change are in [`crate::config`]; these are
//! fixed.
//!
//! Two kinds: *bounds*, which cap what traffic (or a hostile client or peer) can make the node
//! hold, and *retention* thresholds, past which a buffer grown by one outsized request is freed
//! instead of kept for reuse, so the node's memory returns to what steady traffic needs.

// What a client may ask of the node.

/// Most nodes an `init` may name. The replication keeps, for every key, a link of about 100
/// bytes per node (88: what we sent, and what we know), and sends each peer a line every
/// period: at 64 nodes a key's state is about 6 KiB, and 180,000 keys (a 60 s run at 100k
/// ops/s) about 1 GB, where 5 nodes take 80 MB.
/// Maelstrom's kafka runs use 1 to 5 nodes (Fly.io's challenges: 1 and 2). Before this bound,
/// nothing stopped an `init` naming a million.
pub(crate) const MAX_NODES: usize = 64;

// Queues between the threads.

/// Batches in flight between reader and workers, and between workers and writer; also the size
/// of the two recycling pools. Bounded, so a stalled stdout slows the reader down instead of
/// growing memory without limit. 64 (with [`RECYCLE_MAX`]) held the same throughput as 256 with
/// less memory (long-log replay at 8 workers: 124 MiB peak, not 181 MiB).
pub(crate) const CHANNEL_BATCHES: usize = 64;

/// Peers' replication messages queued for the replication thread. Each peer sends about one a
/// period, so this is never near full unless that thread is stuck.
pub(crate) const PEER_MESSAGES: usize = 1024;

/// Most bytes of replies in flight between the workers and the writer (see `budget.rs`). Steady
/// traffic keeps a few MiB there (buffers are handed over at [`HANDOFF_BYTES`]); the bound is
/// what holds when replies are huge and stdout is slow: one 16 MB message polled 200 times with
/// stdout read slowly peaked at 1.1 GB without it (issue 9).
pub(crate) const REPLY_BYTES_IN_FLIGHT: usize = 32 << 20;

/// Most bytes of request lines queued for the workers (the same `budget.rs` type, between
/// reader and workers). A parsed request takes about three times its line (a poll's keys are
/// 32 bytes each in `Keys`), and Maelstrom's final phase sends polls of every key, megabytes
/// each: 64 of them queued took the node to 600 MB.
pub(crate) const REQUEST_BYTES_IN_FLIGHT: usize = 32 << 20;

/// Most bytes of peers' `replicate` lines queued for the replication thread, as
/// [`REQUEST_BYTES_IN_FLIGHT`] bounds clients' requests: [`PEER_MESSAGES`] alone let 1,024
/// lines of up to the line limit (16 MiB) wait at once, and a decoded line takes about as much
/// again as its text. A peer sends about one line a period, far below a MiB in steady traffic.
pub(crate) const PEER_BYTES_IN_FLIGHT: usize = 32 << 20;

// Buffers.

/// The capacity of the reader's and the writer's buffers on stdin and stdout: a Linux pipe's
/// default capacity, so one `read` can take, and one `write` can fill, a whole pipe.
pub(crate) const IO_BUFFER: usize = 64 << 10;

/// Reply bytes after which a worker hands its buffer to the writer without finishing the batch,
/// so that a large reply (a final-phase poll of many keys) does not wait for the rest of its
/// batch, and stdout is written in pieces of about [`IO_BUFFER`].
pub(crate) const HANDOFF_BYTES: usize = 64 << 10;

// Retention.

/// A line's buffers (the reader's gathered line, the parser's padded copy, tape and structural
/// index) that grew past this for one long line are freed after it rather than kept: a parse
/// takes over 20 bytes per byte of line at worst (`Config::max_line`), so a 16 MiB line left
/// hundreds of MiB behind. Steady requests are far shorter (under 1 KiB, but for final-phase
/// polls naming every key, a few MiB each), so the buffers of ordinary lines are kept.
pub(crate) const SHRINK_ABOVE: usize = 1 << 20;

/// Entries of the reused map that finds repeated keys in a long key list (`protocol.rs`) past
/// which it is freed after the request: Maelstrom's final phase names every key of the run,
/// 180,000 after 60 s at 100k ops/s, which fits and is reused from poll to poll; a map for a
/// hostile list of millions of keys is not kept for the rest of the run.
pub(crate) const KEY_MAP_RETAIN: usize = 1 << 20;

/// Largest reply buffer kept for reuse (see [`CHANNEL_BATCHES`] for the measurement); a buffer
/// that held a huge reply is freed once written.
pub(crate) const RECYCLE_MAX: usize = 256 << 10;

/// Largest key list (in keys, 32 bytes each) worth keeping in a recycled batch: a batch that
/// held a poll of every key (the final phase) is freed instead; kept in the pool, 64 of them
/// held 600 MB of key lists.
pub(crate) const RECYCLE_KEYS: usize = 8192;

/// Ranges from one sender for one key that arrived before the ranges below them; more are
/// dropped (the sender resends everything unacknowledged, so nothing is lost, only delayed).
/// 64 ranges of 16 bytes, per peer and key, at most; a sender has at most one range in flight
/// per period and key, and resends from what was acknowledged after its retry, a few periods.
pub(crate) const PENDING_MAX: usize = 64;

// Diagnostics.

/// Notes on stderr queued for the `diag` thread (`diag.rs`); past this, a note is dropped and
/// counted rather than wait for a stderr nobody reads. A note is a line of a few hundred bytes
/// at most (a bad line is quoted up to 200), so the queue holds well under 1 MiB.
pub(crate) const NOTE_QUEUE: usize = 1024;

/// Notes written at once before the rate limit applies: more than any ordinary run writes in
/// all (a clean Maelstrom run writes none; a test of bad input, a few dozen).
pub(crate) const NOTE_BURST: u32 = 200;

/// Notes a second, once the burst is spent: enough to see that something keeps going wrong
/// and what, while a flood of bad lines (a million a second from a hostile peer) costs a
/// counter increment each.
pub(crate) const NOTE_RATE: u32 = 20;
