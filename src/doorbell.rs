//! A bounded crossbeam channel whose receivers sleep on a condition variable when it is empty,
//! instead of in crossbeam's blocking `recv`.
//!
//! crossbeam's `recv` spins, then yields, for a few microseconds before it sleeps. When single
//! requests arrive one at a time (a Maelstrom run), every request sends the worker and the
//! writer through that spin, and with four threads on two cores it cost more CPU than the work:
//! in a 100k ops/s workload run the writer and workers spent most of their samples in `recv`,
//! `sched_yield` and context switches. Here a receiver that finds the channel empty spins briefly
//! without yielding, then sleeps, and a sender rings only when someone sleeps. Measured on the
//! same run (`kafka-workload … --concurrency 64 --time-limit 5 --rate 100000`), the node's CPU
//! fell from 5.1 to 5.6 s to 4.1 s; the highest rate reached was the same within the noise.
//!
//! # Why no wake-up is lost
//!
//! A receiver counts itself in `sleepers`, then looks at the channel once more, then waits; a
//! sender puts its message in the channel, then looks at `sleepers`. Each side has a `SeqCst`
//! fence between its write and its read, so they cannot both miss the other's write: either the
//! receiver's second look finds the message, or the sender sees it counted and rings. The ring
//! takes the lock, so it cannot slip in between the receiver's second look and its wait, which
//! happen under that lock. A sender that goes away rings every sleeper, so they see the channel
//! disconnect.
//!
//! The only thing assumed of the channel is what any channel promises: sending a message
//! happens before receiving it. `tests/loom_doorbell.rs` compiles this file against loom's
//! primitives and a channel that promises no more than that, and checks that no wake-up is lost;
//! it fails when either fence is removed.

use super::sync::atomic::{AtomicUsize, Ordering, fence};
use super::sync::channel::{Receiver, SendError, Sender, TryRecvError, bounded};
use super::sync::{Arc, Condvar, Mutex, PoisonError, spin_loop};

/// Times a receiver looks at an empty channel before it sleeps. Under loom, once: every extra
/// look multiplies the interleavings to explore and adds no new kind of race.
const SPINS: usize = if cfg!(loom) { 1 } else { 64 };

#[derive(Debug, Default)]
struct Bell {
    /// Receivers counted in for sleep (some may be about to look once more).
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    ring: Condvar,
}

impl Bell {
    fn ring_one(&self) {
        // SeqCst fence: orders the message we just sent before the load below (see the module
        // docs); the load itself can then be Relaxed.
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::Relaxed) > 0 {
            let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            self.ring.notify_one();
        }
    }

    fn ring_all(&self) {
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.ring.notify_all();
    }
}

/// A bounded channel of capacity `cap`, with a doorbell.
pub(crate) fn channel<T>(cap: usize) -> (BellSender<T>, BellReceiver<T>) {
    let (tx, rx) = bounded(cap);
    let bell = Arc::new(Bell::default());
    (
        BellSender {
            tx: Some(tx),
            bell: Arc::clone(&bell),
        },
        BellReceiver { rx, bell },
    )
}

/// The sending side: `send` rings the bell if a receiver sleeps; dropping it rings every
/// sleeper.
#[derive(Debug)]
pub(crate) struct BellSender<T> {
    /// Always `Some` until dropped, so that `drop` can let go of it before ringing.
    tx: Option<Sender<T>>,
    bell: Arc<Bell>,
}

impl<T> BellSender<T> {
    /// Sends `value`, waiting for room if the channel is full. Fails only when every receiver
    /// is gone.
    pub(crate) fn send(&self, value: T) -> Result<(), SendError<T>> {
        let Some(tx) = &self.tx else {
            return Err(SendError(value));
        };
        tx.send(value)?;
        self.bell.ring_one();
        Ok(())
    }
}

impl<T> Clone for BellSender<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            bell: Arc::clone(&self.bell),
        }
    }
}

impl<T> Drop for BellSender<T> {
    fn drop(&mut self) {
        // Let go of the sender first: if it was the last one, sleepers woken now see the
        // channel disconnected.
        drop(self.tx.take());
        self.bell.ring_all();
    }
}

/// The receiving side.
#[derive(Debug)]
pub(crate) struct BellReceiver<T> {
    rx: Receiver<T>,
    bell: Arc<Bell>,
}

impl<T> Clone for BellReceiver<T> {
    fn clone(&self) -> Self {
        Self {
            rx: self.rx.clone(),
            bell: Arc::clone(&self.bell),
        }
    }
}

impl<T> BellReceiver<T> {
    /// The next message, sleeping while there is none; `None` once the channel is empty and
    /// every sender is gone.
    pub(crate) fn recv(&self) -> Option<T> {
        loop {
            // A short spin first, without yielding: under load the next message is usually a
            // few hundred nanoseconds away, and a sleep and wake-up costs microseconds.
            for _ in 0..SPINS {
                match self.rx.try_recv() {
                    Ok(value) => return Some(value),
                    Err(TryRecvError::Disconnected) => return None,
                    Err(TryRecvError::Empty) => spin_loop(),
                }
            }
            let guard = self
                .bell
                .lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // Relaxed increment, then a SeqCst fence before looking again: pairs with the fence
            // in `ring_one` (see the module docs).
            self.bell.sleepers.fetch_add(1, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            let looked = self.rx.try_recv();
            let guard = match looked {
                Err(TryRecvError::Empty) => self
                    .bell
                    .ring
                    .wait(guard)
                    .unwrap_or_else(PoisonError::into_inner),
                _ => guard,
            };
            // Relaxed: only a hint to senders, and a stale high value costs one needless ring.
            self.bell.sleepers.fetch_sub(1, Ordering::Relaxed);
            drop(guard);
            match looked {
                Ok(value) => return Some(value),
                Err(TryRecvError::Disconnected) => return None,
                // Woken (or spuriously): look again from the top.
                Err(TryRecvError::Empty) => {}
            }
        }
    }

    /// Whether nothing is waiting in the channel right now.
    pub(crate) fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }
}

// Not under loom: `tests/loom_doorbell.rs` compiles this file against loom's primitives, where
// these threads would not run.
#[cfg(all(test, not(loom)))]
mod tests {
    use std::thread;

    use super::*;

    #[test]
    fn every_message_arrives_and_receivers_end_when_senders_do() {
        const SENDERS: usize = 3;
        const RECEIVERS: usize = 3;
        const EACH: usize = 20_000;
        let (tx, rx) = channel::<usize>(4);
        let received: Vec<Vec<usize>> = thread::scope(|s| {
            let receivers: Vec<_> = (0..RECEIVERS)
                .map(|_| {
                    let rx = rx.clone();
                    s.spawn(move || std::iter::from_fn(|| rx.recv()).collect::<Vec<_>>())
                })
                .collect();
            for sender in 0..SENDERS {
                let tx = tx.clone();
                s.spawn(move || {
                    for i in 0..EACH {
                        tx.send(sender * EACH + i).unwrap();
                        // Now and then let the receivers drain and fall asleep.
                        if i % 1000 == 0 {
                            thread::sleep(std::time::Duration::from_micros(200));
                        }
                    }
                });
            }
            drop(tx);
            receivers.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut all: Vec<usize> = received.into_iter().flatten().collect();
        all.sort_unstable();
        assert_eq!(all, (0..SENDERS * EACH).collect::<Vec<_>>());
    }
}
