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

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

#[derive(Debug)]
pub(crate) struct ByteBudget {
    max: usize,
    state: Mutex<State>,
    freed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    in_flight: usize,
    /// Workers waiting for bytes, so the writer only rings when someone listens.
    waiting: usize,
    /// The writer is gone: nothing will be given back.
    closed: bool,
}

impl ByteBudget {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            state: Mutex::default(),
            freed: Condvar::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is two counters and a flag, updated whole under the lock; a panic elsewhere
        // cannot leave it half-written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes `bytes` from the budget, waiting while other bytes are in flight and these would
    /// pass the bound. False if the writer is gone (the bytes are then not taken).
    pub(crate) fn take(&self, bytes: usize) -> bool {
        let mut state = self.state();
        while !state.closed && state.in_flight > 0 && state.in_flight + bytes > self.max {
            state.waiting += 1;
            state = self
                .freed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.waiting -= 1;
        }
        if state.closed {
            return false;
        }
        state.in_flight += bytes;
        true
    }

    /// Gives back `bytes` taken earlier, once they are written.
    pub(crate) fn give_back(&self, bytes: usize) {
        let mut state = self.state();
        state.in_flight -= bytes;
        if state.waiting > 0 {
            self.freed.notify_all();
        }
    }

    /// Bytes taken and not given back yet.
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.state().in_flight
    }

    /// Takers waiting for bytes to be given back.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.state().waiting
    }

    /// Ends the budget: every waiting and later `take` returns false.
    pub(crate) fn close(&self) {
        let mut state = self.state();
        state.closed = true;
        self.freed.notify_all();
    }
}

#[cfg(test)]
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
