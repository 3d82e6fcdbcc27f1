//! Diagnostics: the one way the node writes to stderr.
//!
//! Three rules, each learnt the hard way:
//! - a note never panics: `eprintln!` panics when stderr is gone (a closed pipe), which on the
//!   reader thread would lose the requests it holds;
//! - a note never blocks the thread that makes it: notes go to a thread of their own (`diag`)
//!   through a bounded queue, and one that finds the queue full is dropped and counted. Before,
//!   a node whose stderr nobody read stopped answering after some 3,000 notes about bad peer
//!   lines filled the pipe, its reader blocked in a write;
//! - notes are rate-limited ([`NOTE_BURST`], then [`NOTE_RATE`] a second), so a flood of bad
//!   input costs little more than the input itself.
//!
//! Notes dropped either way are counted, and the next note written says how many.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};

use crate::limits::{NOTE_BURST, NOTE_QUEUE, NOTE_RATE};

/// The queue to the `diag` thread, and what passed through it.
struct Diag {
    /// `None` if the thread could not be started: notes are then dropped.
    queue: Option<Sender<String>>,
    /// Notes queued, and notes the thread has written (or failed to write): equal when it is
    /// idle.
    queued: AtomicU64,
    written: AtomicU64,
    limiter: Mutex<Limiter>,
}

/// A token bucket: [`NOTE_BURST`] notes at once, refilled at [`NOTE_RATE`] a second.
struct Limiter {
    tokens: f64,
    last: Instant,
    /// Notes dropped since the last one queued.
    dropped: u64,
}

static DIAG: OnceLock<Diag> = OnceLock::new();

fn diag() -> &'static Diag {
    DIAG.get_or_init(|| {
        let (tx, rx) = crossbeam_channel::bounded::<String>(NOTE_QUEUE);
        let queue = std::thread::Builder::new()
            .name("diag".into())
            .spawn(move || {
                for line in rx {
                    // A diagnostic is worth less than the node: a failed write is ignored.
                    let _ = std::io::stderr().lock().write_all(line.as_bytes());
                    // Release: pairs with `finish`'s Acquire load, so a caller that sees the
                    // count has its notes' writes behind it.
                    diag().written.fetch_add(1, Ordering::Release);
                }
            })
            .ok()
            .map(|_| tx);
        Diag {
            queue,
            queued: AtomicU64::new(0),
            written: AtomicU64::new(0),
            limiter: Mutex::new(Limiter {
                tokens: NOTE_BURST as f64,
                last: Instant::now(),
                dropped: 0,
            }),
        }
    })
}

/// Queues `maelstrom-kafka: <message>` and a newline for stderr, unless the rate limit or a full
/// queue drops it. Never blocks on stderr, never panics.
pub(crate) fn write(message: std::fmt::Arguments<'_>) {
    let diag = diag();
    let Some(queue) = &diag.queue else {
        return;
    };
    // The limiter is a few numbers updated whole under the lock; a panic elsewhere cannot leave
    // it half-written.
    let mut limiter = diag.limiter.lock().unwrap_or_else(PoisonError::into_inner);
    let now = Instant::now();
    let refill = now.duration_since(limiter.last).as_secs_f64() * NOTE_RATE as f64;
    limiter.tokens = (limiter.tokens + refill).min(NOTE_BURST as f64);
    limiter.last = now;
    if limiter.tokens < 1.0 {
        limiter.dropped += 1;
        return;
    }
    let mut line = String::new();
    if limiter.dropped > 0 {
        line = dropped_line(limiter.dropped);
    }
    line.push_str(&format!("maelstrom-kafka: {message}\n"));
    // Relaxed: `queued` only has to be counted before the thread can count the note written,
    // and the channel's send orders the two.
    diag.queued.fetch_add(1, Ordering::Relaxed);
    match queue.try_send(line) {
        Ok(()) => {
            limiter.tokens -= 1.0;
            limiter.dropped = 0;
        }
        Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
            // Relaxed: as above; this note will never be counted written.
            diag.queued.fetch_sub(1, Ordering::Relaxed);
            limiter.dropped += 1;
        }
    }
}

/// Waits, at most `timeout`, for every queued note to be written: called as the node ends, so
/// that its last notes are not lost with the process, and bounded, so that a stderr nobody
/// reads cannot keep it from ending.
pub(crate) fn finish(timeout: Duration) {
    let Some(diag) = DIAG.get() else {
        return;
    };
    let dropped = std::mem::take(
        &mut diag
            .limiter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .dropped,
    );
    if dropped > 0
        && let Some(queue) = &diag.queue
    {
        let line = dropped_line(dropped);
        // Relaxed: as in `write`.
        diag.queued.fetch_add(1, Ordering::Relaxed);
        if queue.try_send(line).is_err() {
            diag.queued.fetch_sub(1, Ordering::Relaxed);
        }
    }
    let deadline = Instant::now() + timeout;
    // Acquire: pairs with the `diag` thread's Release, as above.
    while diag.written.load(Ordering::Acquire) < diag.queued.load(Ordering::Relaxed)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The line that says how many notes were dropped.
fn dropped_line(dropped: u64) -> String {
    format!(
        "maelstrom-kafka: {dropped} notes dropped (more than {NOTE_RATE} a second, or stderr not \
         read)\n"
    )
}

/// `note!(…)` is `diag::write(format_args!(…))`.
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::diag::write(format_args!($($arg)*))
    };
}
pub(crate) use note;
