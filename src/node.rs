//! Wiring: creates the channels, spawns the named threads, and owns the shutdown order.
//!
//! ```text
//! stdin → reader (simd-json) → work channel → worker × N → replies channel → writer → stdout
//!                                                 ↕
//!                      store: DashMap shards (RwLock each) → per-key lock-free logs
//! ```
//!
//! Shutdown is by disconnection: at end of input the reader drops its sender; each worker drains
//! what is queued and drops its reply sender; the writer writes and flushes the last replies and
//! returns. If stdout breaks, the writer returns at once with the error and the others wind down
//! as their sends fail.

use std::io::{self, Write};
use std::sync::Arc;
use std::thread;

use crossbeam_channel::bounded;

use crate::budget::ByteBudget;
use crate::config::Config;
use crate::input::Input;
use crate::limits::{
    CHANNEL_BATCHES, PEER_BYTES_IN_FLIGHT, PEER_MESSAGES, REPLY_BYTES_IN_FLIGHT,
    REQUEST_BYTES_IN_FLIGHT,
};
use crate::shared::Shared;
use crate::{doorbell, reader, replication, worker, writer};

/// Runs the node: reads requests from `input` until it ends, and writes replies to `output`.
///
/// Returns when every reply is written and flushed. An error from `output` (such as a broken
/// pipe) returns at once, without waiting for the reader, which may be blocked on its input.
pub fn run<R, W>(input: R, output: W, config: Config) -> io::Result<()>
where
    R: Input + Send + 'static,
    W: Write + Send + 'static,
{
    // However `run` returns, its last notes reach stderr before the process can end, unless
    // nobody reads stderr (then it gives up after a second).
    let _notes = FlushNotes;
    let (shared, id_setter) = Shared::new();
    let shared = Arc::new(shared);
    let budget = Arc::new(ByteBudget::new(REPLY_BYTES_IN_FLIGHT));
    let work_budget = Arc::new(ByteBudget::new(REQUEST_BYTES_IN_FLIGHT));
    let peer_budget = Arc::new(ByteBudget::new(PEER_BYTES_IN_FLIGHT));
    let config = Arc::new(config.sane());
    let (work_tx, work_rx) = doorbell::channel(CHANNEL_BATCHES);
    let (reply_tx, reply_rx) = doorbell::channel(CHANNEL_BATCHES);
    // Pools that carry spent batches back to the reader and written buffers back to the
    // workers, so steady traffic reuses the same allocations instead of freeing each one on a
    // thread other than the one that allocated it.
    let (empty_batches_tx, empty_batches_rx) = bounded(CHANNEL_BATCHES);
    let (empty_buffers_tx, empty_buffers_rx) = bounded(CHANNEL_BATCHES);
    // Peers' replication messages. Bounded so a stalled replication thread slows the reader
    // instead of growing memory; it never waits on the reader, so this cannot deadlock.
    let (peers_tx, peers_rx) = bounded(PEER_MESSAGES);

    let replication = {
        let shared = Arc::clone(&shared);
        let max_line = config.max_line;
        let replies = reply_tx.clone();
        let peer_budget = Arc::clone(&peer_budget);
        spawn("replication".into(), move || {
            let feed = replication::thread::FeedLane::new(&peers_rx, &peer_budget);
            replication::thread::run(&feed, &shared, max_line, &replies)
        })?
    };
    let reader = {
        let (shared, config) = (Arc::clone(&shared), Arc::clone(&config));
        let work_budget = Arc::clone(&work_budget);
        spawn("reader".into(), move || {
            let lanes = reader::Lanes {
                work: work_tx,
                work_budget,
                empty_batches: empty_batches_rx,
                peers: peers_tx,
                peer_budget,
            };
            reader::run(input, &lanes, &shared, &id_setter, &config)
        })?
    };
    let workers = (0..config.workers)
        .map(|i| {
            let lanes = worker::Lanes {
                work: work_rx.clone(),
                work_budget: Arc::clone(&work_budget),
                empty_batches: empty_batches_tx.clone(),
                replies: reply_tx.clone(),
                empty_buffers: empty_buffers_rx.clone(),
            };
            let (shared, config) = (Arc::clone(&shared), Arc::clone(&config));
            let budget = Arc::clone(&budget);
            spawn(format!("worker-{i}"), move || {
                worker::run(&lanes, &budget, &shared, &config)
            })
        })
        .collect::<io::Result<Vec<_>>>()?;
    // The workers and the replication thread hold the only reply senders now, so the writer ends
    // when the last of them does (the replication thread ends with the reader).
    drop((work_rx, reply_tx, empty_batches_tx, empty_buffers_rx));
    let writer = {
        let deadline = config.reply_deadline();
        let shared = Arc::clone(&shared);
        spawn("writer".into(), move || {
            let lanes = writer::Lanes {
                replies: &reply_rx,
                empty_buffers: &empty_buffers_tx,
                budget: &budget,
            };
            writer::run(&lanes, &shared, deadline, output)
        })?
    };

    join(writer)?;
    for worker in workers {
        join(worker);
    }
    join(replication);
    join(reader)
}

/// Waits for the node's notes on stderr to be written, when dropped (see `diag::finish`).
struct FlushNotes;

impl Drop for FlushNotes {
    fn drop(&mut self) {
        crate::diag::finish(std::time::Duration::from_secs(1));
    }
}

fn spawn<T: Send + 'static>(
    name: String,
    f: impl FnOnce() -> T + Send + 'static,
) -> io::Result<thread::JoinHandle<T>> {
    thread::Builder::new().name(name).spawn(f)
}

/// Joins a thread, re-raising its panic in the caller.
fn join<T>(handle: thread::JoinHandle<T>) -> T {
    match handle.join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
