//! The primitives that the lock-free log, the doorbell and the byte budget are built from, named
//! in one place.
//!
//! `log.rs`, `doorbell.rs` and `budget.rs` reach their primitives only through `super::sync`.
//! The loom model tests (`tests/loom_log.rs`, `tests/loom_doorbell.rs`, `tests/loom_budget.rs`,
//! built only with `--cfg loom`) compile those same files next to a `sync` module of their own
//! that maps these names to loom's model-checked versions, so the protocol that runs in
//! production is the one loom explores.

pub(crate) use std::hint::spin_loop;
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};

pub(crate) mod atomic {
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
}

/// The bounded channel under the doorbell.
pub(crate) mod channel {
    pub(crate) use crossbeam_channel::{Receiver, SendError, Sender, TryRecvError, bounded};
}
