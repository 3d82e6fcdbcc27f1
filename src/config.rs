//! Run-time settings. Maelstrom passes no flags and no environment contract, so every setting
//! has a default that suits a Maelstrom run, and environment variables override them.

use std::num::NonZeroUsize;

/// How the node runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Worker threads. `MAELSTROM_KAFKA_WORKERS`; default: available parallelism.
    pub workers: usize,
    /// Most pairs one poll returns for one key. `MAELSTROM_KAFKA_POLL_MAX`; default 4096.
    ///
    /// Maelstrom's logs hold `--max-writes-per-key` messages (16 by default), so the default
    /// never pages a Maelstrom run, while bounding the reply to a poll from 0 on a long log.
    pub poll_max: usize,
    /// Most requests the reader hands to a worker at once. `MAELSTROM_KAFKA_BATCH`; default 256.
    ///
    /// The reader never waits to fill a batch: it sends what it has whenever no complete line
    /// is buffered, so a lone request is never held back. Under a flood, larger batches mean
    /// fewer hand-offs, and fewer times a worker finds the queue empty and spins before it
    /// sleeps; 256 used about a fifth less CPU than 64 on a 1M-request replay (BENCHMARKS.md).
    pub batch: usize,
    /// Longest line accepted, in bytes. `MAELSTROM_KAFKA_MAX_LINE`; default 16 MiB. A longer
    /// line is skipped with a note on stderr.
    ///
    /// The limit is what bounds the memory one line takes, about 23 bytes per byte of line at
    /// worst: simd-json's tape (24 bytes per value) and structural index (4 bytes per
    /// structural character), three copies of the line (gathered, padded for simd-json, its
    /// string buffer) and the stored `msg`. The worst shape, an array of one-digit numbers,
    /// took the node to 386 MB at 16 MiB and 1.3 GB at 64 MiB (BENCHMARKS.md), so the default
    /// keeps a line under 512 MiB. The parse buffers of a line over 1 MiB are freed after it.
    pub max_line: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            workers: std::thread::available_parallelism().map_or(2, NonZeroUsize::get),
            poll_max: 4096,
            batch: 256,
            max_line: 16 << 20,
        }
    }
}

impl Config {
    /// The defaults, overridden by whichever `MAELSTROM_KAFKA_*` variables are set.
    /// An unusable value is reported on stderr and the default kept.
    pub fn from_env() -> Self {
        let mut config = Self::default();
        for (name, field) in [
            ("MAELSTROM_KAFKA_WORKERS", &mut config.workers),
            ("MAELSTROM_KAFKA_POLL_MAX", &mut config.poll_max),
            ("MAELSTROM_KAFKA_BATCH", &mut config.batch),
            ("MAELSTROM_KAFKA_MAX_LINE", &mut config.max_line),
        ] {
            let Ok(value) = std::env::var(name) else {
                continue;
            };
            match value.trim().parse::<NonZeroUsize>() {
                Ok(n) => *field = n.get(),
                Err(_) => crate::diag::note!(
                    "ignoring {name}={value:?}: not a positive integer; using {field}"
                ),
            }
        }
        config
    }
}
