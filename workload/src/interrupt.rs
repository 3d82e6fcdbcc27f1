//! SIGINT, SIGTERM and SIGHUP end a run early instead of killing it: the runner notices
//! at its next turn, stops issuing, stops the nodes and judges what was recorded (an
//! unfinished run is at best unknown). A second signal while that happens exits at once
//! (130), as a second Ctrl-C is meant.
//!
//! The handlers are `signal-hook`'s: they only store to atomics, which is what a signal
//! handler may safely do, and keep this crate free of `unsafe`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// The signal that asked the run to end, 0 for none.
static SIGNAL: AtomicUsize = AtomicUsize::new(0);

/// Installs the handlers (for `test` only; `serve` may just die).
pub fn install() {
    let seen = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        // The first registered runs first: with `seen` already set (a second signal), exit.
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&seen));
        let _ = signal_hook::flag::register(sig, Arc::clone(&seen));
        let _ = signal_hook::flag::register_usize(sig, &SIGNAL, sig as usize);
    }
}

/// The name of the signal that asked the run to end, if one did.
pub fn requested() -> Option<&'static str> {
    // Relaxed: the value is the whole message (no other memory is published with it), and
    // the runner polls it every turn, so seeing it a turn late costs nothing.
    match SIGNAL.load(Ordering::Relaxed) {
        0 => None,
        s if s == SIGINT as usize => Some("SIGINT"),
        s if s == SIGTERM as usize => Some("SIGTERM"),
        s if s == SIGHUP as usize => Some("SIGHUP"),
        _ => Some("a signal"),
    }
}
