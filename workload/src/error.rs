//! The workload's errors, each mapped to Maelstrom's (Jepsen's) exit codes.

use std::fmt;
use std::path::PathBuf;

/// Why `kafka-workload` could not run a test or finish writing its results.
#[derive(Debug)]
pub enum Error {
    /// A bad command line: an unknown option, a bad value, an unsupported workload.
    Args(String),
    /// Reading or writing the store failed.
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The console could not be written.
    Console(std::io::Error),
    /// A history given to `check` that cannot be read as one.
    History {
        path: PathBuf,
        /// 1-based; 0 when the file as a whole is at fault.
        line: usize,
        what: String,
    },
}

impl Error {
    /// Jepsen's codes: 254 for invalid arguments, 255 for an internal error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Args(_) | Error::History { .. } => 254,
            Error::Io { .. } | Error::Console(_) => 255,
        }
    }

    pub(crate) fn args(msg: impl Into<String>) -> Error {
        Error::Args(msg.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Args(m) => f.write_str(m),
            Error::Io { what, path, source } => {
                write!(f, "{what} {}: {source}", path.display())
            }
            Error::Console(e) => write!(f, "writing the console: {e}"),
            Error::History {
                path,
                line: 0,
                what,
            } => write!(f, "{}: {what}", path.display()),
            Error::History { path, line, what } => {
                write!(f, "{} line {line}: {what}", path.display())
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Args(_) | Error::History { .. } => None,
            Error::Io { source, .. } | Error::Console(source) => Some(source),
        }
    }
}
