//! Diagnostics: the one way the node writes to stderr.
//!
//! `eprintln!` panics when stderr is gone (a closed pipe), which on the reader thread would lose
//! the requests it holds. A diagnostic is worth less than the node, so a failed write is ignored.

use std::io::Write;

/// Writes `maelstrom-kafka: <message>` and a newline to stderr, ignoring any error.
pub(crate) fn write(message: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "maelstrom-kafka: {message}");
}

/// `note!(…)` is `diag::write(format_args!(…))`.
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::diag::write(format_args!($($arg)*))
    };
}
pub(crate) use note;
