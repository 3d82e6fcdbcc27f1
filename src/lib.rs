//! A node for Maelstrom's `kafka` workload (Fly.io Gossip Glomers challenges 5a, 5b and 5c): a
//! Kafka-style set of append-only logs, served by a multithreaded pipeline, on one node or
//! replicated over several (see [`replication`]).
//!
//! Only the per-key logs are lock-free (see [`log`] for the one place where an append may wait).
//! The key map is lock-sharded (a `DashMap`, an `RwLock` per shard), idle workers and the writer
//! sleep on a `Mutex` and `Condvar` (`doorbell`), the bytes in flight between threads (replies
//! to the writer, request lines to the workers, peers' lines to the replication thread) are an
//! atomic count, but a sender that must wait for room sleeps on a `Mutex` and `Condvar`
//! (`budget`), the bounded channels block a sender when they are full, and notes on stderr pass
//! a `Mutex` (`diag`).
//!
//! # Layout
//!
//! In reading order; each module has one job.
//!
//! - [`config`]: run-time settings, from the environment.
//! - `limits`: every retention and buffer threshold, with the reason for each.
//! - `budget`: a bound on bytes in flight between threads (replies to the writer, and request
//!   lines to the workers).
//! - `node`: wiring; spawns the threads and owns the shutdown order ([`run`]).
//! - [`shared`]: the state every thread sees: the node id and cluster (set by the reader alone),
//!   the store, the poll cursor and the count of dropped replies.
//! - [`input`]: what the node reads, and whether more is coming soon.
//! - `reader`: the reader thread, the only code that reads stdin; the batches it hands on.
//! - [`protocol`]: wire types only, and turning a parsed line into a [`protocol::Incoming`].
//! - [`json`]: raw member spans and string escaping, which simd-json does not offer.
//! - `worker`: the worker threads' loop, between the reader's batches and the writer.
//! - [`rpc`]: one arm per RPC, run against the store; writes the reply line as bytes.
//! - `envelope`: the start of every line the node writes, replies and replication alike.
//! - [`store`]: every key's log and committed offset, in a `DashMap`; no I/O, no JSON.
//! - [`log`]: one key's lock-free append-only log, with its publish watermark.
//! - [`cluster`]: the nodes `init` names, and which offsets are ours.
//! - [`replication`]: several nodes: the protocol's documentation, then one job a file (the
//!   wire, our class outbound, their class inbound, the thread).
//! - `sync`: the primitives `log` and `doorbell` are built from, swappable for loom's in the model
//!   tests (`tests/loom.rs`, built only with `--cfg loom`).
//! - `writer`: the writer thread, the only owner of stdout; the reply buffers it takes.
//! - [`error`]: Maelstrom error codes.
//! - `diag`: diagnostics on stderr, which never panic.
//! - `doorbell`: the pipeline's channels, whose idle receivers sleep without spinning.
//!
//! See ARCHITECTURE.md for the invariants that hold these together.

mod budget;
pub mod cluster;
pub mod config;
mod diag;
mod doorbell;
mod envelope;
pub mod error;
pub mod input;
pub mod json;
mod limits;
pub mod log;
#[cfg(test)]
mod log_tests;
mod node;
pub mod protocol;
mod reader;
pub mod replication;
pub mod rpc;
pub mod shared;
pub mod store;
mod sync;
mod worker;
mod writer;

pub use config::Config;
pub use input::Input;
pub use node::run;
pub use shared::Shared;
