//! A byte budget: bounds the bytes in flight between two threads. Three of them: replies between
//! the workers and the writer (below), request lines between the reader and the workers, and
//! peers' lines between the reader and the replication thread.
//!
//! The reply channel is bounded in buffers, not bytes, and a buffer can hold a reply of any size
//! (a poll that returns one 16 MB message): 64 of those waiting on a slow stdout took the node
//! to 1.1 GB. A worker takes a buffer's bytes from the budget before it hands the buffer over,
//! waiting while that would pass the bound; the writer gives them back once it has written them.
//! A buffer larger than the whole budget is let through alone, when nothing else is in flight,
//! so no reply is ever refused.
//!
//! The budget is taken and given back once per buffer, by threads that run at the same time, so
//! its common case is lock-free: a compare-and-swap on the count of bytes in flight. Only a taker
//! that must wait takes the lock, and a giver takes it only when someone waits.
//!
//! # Why no wake-up is lost
//!
//! A taker that finds no room counts itself in `waiting`, then looks at `in_flight` once more,
//! then waits; a giver lowers `in_flight`, then looks at `waiting`. Each side has a `SeqCst` fence
//! between its write and its read, so they cannot both miss the other's write: either the taker's
//! second look finds the room, or the giver sees it waiting and notifies. The giver takes and drops
//! the lock before it notifies, so it cannot slip in between the taker's last look and its wait,
//! which happen under that lock. `tests/loom_budget.rs` compiles this file against loom's
//! primitives and checks that no wake-up is lost; it fails when either fence is removed.

use super::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use super::sync::{Condvar, Mutex, MutexGuard, PoisonError};

#[derive(Debug)]
pub(crate) struct ByteBudget {
    max: usize,
    /// Bytes taken and not given back. Relaxed throughout: a count that publishes nothing (the
    /// bytes it counts travel in a channel, which orders them); the fences order it against
    /// `waiting`.
    in_flight: AtomicUsize,
    /// Takers waiting for room, or about to look once more before they wait.
    waiting: AtomicUsize,
    /// The writer is gone: nothing will be given back. Stored under `lock`, and read under it
    /// where it matters (a taker about to wait), so Relaxed.
    closed: AtomicBool,
    lock: Mutex<()>,
    freed: Condvar,
}

impl ByteBudget {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            in_flight: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            lock: Mutex::new(()),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        // The lock guards no data, only the step from a taker's last look to its wait.
        self.lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes `bytes` if they fit: nothing else is in flight, or these stay within the bound.
    fn try_take(&self, bytes: usize) -> bool {
        // Relaxed: see `in_flight`.
        let mut now = self.in_flight.load(Ordering::Relaxed);
        loop {
            if now > 0 && now.saturating_add(bytes) > self.max {
                return false;
            }
            match self.in_flight.compare_exchange_weak(
                now,
                now + bytes,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => now = actual,
            }
        }
    }

    /// Takes `bytes` from the budget, waiting while other bytes are in flight and these would
    /// pass the bound. False if the writer is gone (the bytes are then not taken).
    pub(crate) fn take(&self, bytes: usize) -> bool {
        // Relaxed: a taker that misses a close just now takes bytes that are never given back,
        // and its send to the gone writer fails, as it would have a moment earlier.
        if self.closed.load(Ordering::Relaxed) {
            return false;
        }
        if self.try_take(bytes) {
            return true;
        }
        let mut guard = self.lock();
        // Relaxed increment, then a SeqCst fence before looking again: pairs with the fence in
        // `give_back` (see the module docs).
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let taken = loop {
            fence(Ordering::SeqCst);
            // Relaxed: `close` stores under the lock, which we hold here.
            if self.closed.load(Ordering::Relaxed) {
                break false;
            }
            if self.try_take(bytes) {
                break true;
            }
            guard = self
                .freed
                .wait(guard)
                .unwrap_or_else(PoisonError::into_inner);
        };
        // Relaxed: a stale count costs a giver one needless notify.
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        drop(guard);
        taken
    }

    /// Gives back `bytes` taken earlier, once they are written.
    pub(crate) fn give_back(&self, bytes: usize) {
        // Relaxed decrement, then a SeqCst fence before the load: pairs with the taker's fence
        // (see the module docs).
        self.in_flight.fetch_sub(bytes, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::Relaxed) > 0 {
            // Taking the lock waits out a taker between its last look and its wait.
            drop(self.lock());
            self.freed.notify_all();
        }
    }

    /// Bytes taken and not given back yet.
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        // Relaxed: tests read it after joining every thread that changed it.
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Takers waiting for bytes to be given back (or about to look once more before they wait:
    /// they found no room).
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        // Relaxed: tests poll it until a taker is blocked; nothing is read through it.
        self.waiting.load(Ordering::Relaxed)
    }

    /// Ends the budget: every waiting and later `take` returns false.
    pub(crate) fn close(&self) {
        let guard = self.lock();
        // Relaxed: stored under the lock that a taker about to wait holds while it looks.
        self.closed.store(true, Ordering::Relaxed);
        drop(guard);
        self.freed.notify_all();
    }
}

// Not under loom: `tests/loom_budget.rs` compiles this file against loom's primitives, where
// these threads would not run.
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn bytes_in_flight_never_pass_the_bound_and_a_huge_buffer_goes_alone() {
        let budget = Arc::new(ByteBudget::new(100));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = crossbeam_channel::unbounded::<usize>();
        let takers: Vec<_> = (0..4)
            .map(|t| {
                let (budget, tx) = (Arc::clone(&budget), tx.clone());
                let (in_flight, peak) = (Arc::clone(&in_flight), Arc::clone(&peak));
                std::thread::spawn(move || {
                    for i in 0..200 {
                        let bytes = if (i + t) % 50 == 0 {
                            250
                        } else {
                            1 + (i * 7 + t) % 60
                        };
                        assert!(budget.take(bytes));
                        // SeqCst: test bookkeeping, off any hot path.
                        let now = in_flight.fetch_add(bytes, Ordering::SeqCst) + bytes;
                        peak.fetch_max(if bytes > 100 { 0 } else { now }, Ordering::SeqCst);
                        tx.send(bytes).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        for bytes in rx {
            // SeqCst: as above.
            in_flight.fetch_sub(bytes, Ordering::SeqCst);
            budget.give_back(bytes);
        }
        for taker in takers {
            taker.join().unwrap();
        }
        assert!(peak.load(Ordering::SeqCst) <= 100, "{peak:?}");
        assert_eq!(budget.in_flight(), 0);
    }

    #[test]
    fn closing_releases_a_waiting_taker() {
        let budget = Arc::new(ByteBudget::new(10));
        assert!(budget.take(10));
        let waiter = {
            let budget = Arc::clone(&budget);
            std::thread::spawn(move || budget.take(1))
        };
        budget.close();
        assert!(!waiter.join().unwrap());
    }
}
