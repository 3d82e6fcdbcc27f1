//! The atomics and once-cells that the lock-free log is built from, named in one place.
//!
//! `log.rs` reaches its primitives only through `super::sync`.
//! The loom model test (`tests/loom_log.rs`) compiles that same file next to a `sync` module of
//! its own that maps these names to loom's model-checked versions, so the protocol that runs in
//! production is the one loom explores.

pub(crate) use std::sync::OnceLock;
pub(crate) use std::sync::atomic::{AtomicU64, Ordering};
