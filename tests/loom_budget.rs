//! Loom model test of the byte budget: `src/budget.rs` itself, compiled against loom's atomics,
//! fences, mutex and condition variable, with every interleaving (up to a preemption bound)
//! explored.
//!
//! What is checked: a taker that waits for room is always woken once the bytes in its way are
//! given back (a lost wake-up leaves it blocked, which loom reports as a deadlock), whichever of
//! the lock-free take and give-back runs first; and closing the budget releases a waiting taker.
//! Removing either `SeqCst` fence in `budget.rs` makes the first check fail.

// The budget's API is broader than what the model exercises.
#![allow(dead_code, unreachable_pub)]

/// The names `budget.rs` imports, mapped onto loom.
mod sync {
    pub use loom::sync::{Condvar, Mutex, MutexGuard};
    pub use std::sync::PoisonError;

    pub mod atomic {
        pub use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
    }
}

#[path = "../src/budget.rs"]
mod budget;

use budget::ByteBudget;
use loom::sync::Arc;
use loom::thread;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    // Bounded preemptions keep the run short; a lost wake-up needs only one or two.
    builder.preemption_bound = Some(3);
    builder.check(f);
}

#[test]
fn loom_a_waiting_taker_is_woken_when_bytes_come_back() {
    model(|| {
        let budget = Arc::new(ByteBudget::new(10));
        assert!(budget.take(8));
        let taker = {
            let budget = Arc::clone(&budget);
            // 8 + 5 passes the bound: this waits until the 8 come back.
            thread::spawn(move || budget.take(5))
        };
        let giver = {
            let budget = Arc::clone(&budget);
            thread::spawn(move || budget.give_back(8))
        };
        giver.join().unwrap();
        assert!(taker.join().unwrap());
        assert_eq!(budget.in_flight(), 5);
    });
}

#[test]
fn loom_closing_releases_a_waiting_taker() {
    model(|| {
        let budget = Arc::new(ByteBudget::new(10));
        assert!(budget.take(10));
        let taker = {
            let budget = Arc::clone(&budget);
            thread::spawn(move || budget.take(1))
        };
        budget.close();
        assert!(!taker.join().unwrap());
    });
}
