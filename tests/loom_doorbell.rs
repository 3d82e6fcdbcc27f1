//! Loom model test of the doorbell: `src/doorbell.rs` itself, compiled against loom's atomics,
//! fences, mutex and condition variable, with every interleaving (up to a preemption bound)
//! explored.
//!
//! The channel under it is a model that promises only what any channel promises: a message is
//! published with a Release store and taken after an Acquire load, so sending happens before
//! receiving, and nothing more. Whatever stronger ordering crossbeam's channel happens to give is
//! left out on purpose, so that the doorbell's own fences are what is tested.
//!
//! What is checked: a receiver that goes to sleep on an empty channel is always woken by the next
//! send, while the sender is still alive (a lost wake-up leaves every thread blocked, which loom
//! reports as a deadlock); and a receiver always sees the channel disconnect when the last sender
//! goes. Removing either `SeqCst` fence in `doorbell.rs` makes the first check fail.

// The doorbell's API is broader than what the model exercises.
#![allow(dead_code, unreachable_pub)]

/// The names `doorbell.rs` imports, mapped onto loom.
mod sync {
    pub use loom::hint::spin_loop;
    pub use loom::sync::{Arc, Condvar, Mutex};
    pub use std::sync::PoisonError;

    pub mod atomic {
        pub use loom::sync::atomic::{AtomicUsize, Ordering, fence};
    }

    /// A channel with no more ordering than sending happens before receiving.
    ///
    /// `ready` counts the messages that are in the queue and not yet claimed: a send pushes under
    /// the queue's lock and then raises `ready` with a Release increment; a receive claims a
    /// message with an Acquire compare-and-swap on `ready` before taking the queue's lock. An
    /// empty channel is found by an Acquire load of `ready` alone, without the lock, so, as with
    /// a lock-free channel, nothing orders that look with a concurrent send but the send's own
    /// Release. Capacity is not modelled: the tests never fill the channel.
    pub mod channel {
        use std::collections::VecDeque;

        use loom::sync::atomic::{AtomicUsize, Ordering};
        use loom::sync::{Arc, Mutex};

        pub use crossbeam_channel::{SendError, TryRecvError};

        #[derive(Debug)]
        struct Chan<T> {
            queue: Mutex<VecDeque<T>>,
            ready: AtomicUsize,
            senders: AtomicUsize,
        }

        #[derive(Debug)]
        pub struct Sender<T>(Arc<Chan<T>>);

        #[derive(Debug)]
        pub struct Receiver<T>(Arc<Chan<T>>);

        pub fn bounded<T>(_cap: usize) -> (Sender<T>, Receiver<T>) {
            let chan = Arc::new(Chan {
                queue: Mutex::new(VecDeque::new()),
                ready: AtomicUsize::new(0),
                senders: AtomicUsize::new(1),
            });
            (Sender(Arc::clone(&chan)), Receiver(chan))
        }

        impl<T> Sender<T> {
            pub fn send(&self, value: T) -> Result<(), SendError<T>> {
                self.0.queue.lock().unwrap().push_back(value);
                self.0.ready.fetch_add(1, Ordering::Release);
                Ok(())
            }
        }

        impl<T> Clone for Sender<T> {
            fn clone(&self) -> Self {
                self.0.senders.fetch_add(1, Ordering::Relaxed);
                Self(Arc::clone(&self.0))
            }
        }

        impl<T> Drop for Sender<T> {
            fn drop(&mut self) {
                self.0.senders.fetch_sub(1, Ordering::Release);
            }
        }

        impl<T> Receiver<T> {
            pub fn try_recv(&self) -> Result<T, TryRecvError> {
                let mut ready = self.0.ready.load(Ordering::Acquire);
                loop {
                    if ready == 0 {
                        // No sender left, and (since a send comes before its sender's drop)
                        // nothing more will come.
                        if self.0.senders.load(Ordering::Acquire) == 0
                            && self.0.ready.load(Ordering::Acquire) == 0
                        {
                            return Err(TryRecvError::Disconnected);
                        }
                        return Err(TryRecvError::Empty);
                    }
                    match self.0.ready.compare_exchange(
                        ready,
                        ready - 1,
                        Ordering::Acquire,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => break,
                        Err(now) => ready = now,
                    }
                }
                let value = self.0.queue.lock().unwrap().pop_front();
                Ok(value.expect("a claimed message is in the queue"))
            }

            pub fn is_empty(&self) -> bool {
                self.0.ready.load(Ordering::Acquire) == 0
            }
        }

        impl<T> Clone for Receiver<T> {
            fn clone(&self) -> Self {
                Self(Arc::clone(&self.0))
            }
        }
    }
}

#[path = "../src/doorbell.rs"]
mod doorbell;

use loom::thread;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    // Bounded preemptions keep the run short; a lost wake-up needs only one or two.
    builder.preemption_bound = Some(3);
    builder.check(f);
}

#[test]
fn loom_a_sleeping_receiver_is_woken_by_a_send() {
    model(|| {
        let (tx, rx) = doorbell::channel::<u32>(4);
        let receiver = thread::spawn(move || rx.recv());
        // The sender is a thread of its own: with the main thread sending, loom explored so few
        // interleavings that removing a fence went unnoticed here. The sender stays alive until
        // the receiver has its message, since dropping it would ring every sleeper and hide a
        // lost wake-up.
        let sender = thread::spawn(move || {
            tx.send(7).unwrap();
            tx
        });
        assert_eq!(receiver.join().unwrap(), Some(7));
        drop(sender.join().unwrap());
    });
}

#[test]
fn loom_two_receivers_each_woken_for_their_message() {
    model(|| {
        let (tx, rx) = doorbell::channel::<u32>(4);
        let receivers: Vec<_> = (0..2)
            .map(|_| {
                let rx = rx.clone();
                thread::spawn(move || rx.recv())
            })
            .collect();
        drop(rx);
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        let mut got: Vec<_> = receivers
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect();
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
        drop(tx);
    });
}

#[test]
fn loom_a_receiver_sees_the_last_sender_go() {
    model(|| {
        let (tx, rx) = doorbell::channel::<u32>(4);
        let receiver = thread::spawn(move || rx.recv());
        let tx2 = tx.clone();
        let sender = thread::spawn(move || drop(tx2));
        drop(tx);
        sender.join().unwrap();
        assert_eq!(receiver.join().unwrap(), None);
    });
}
