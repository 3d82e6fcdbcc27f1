//! Run-time settings. Maelstrom passes no flags and no environment contract, so every setting
//! has a default that suits a Maelstrom run, and environment variables override them.

use std::num::NonZeroUsize;

/// How the node runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Worker threads. `MAELSTROM_KAFKA_WORKERS`; default: available parallelism; within
    /// [`WORKERS`].
    pub workers: usize,
    /// Most pairs one poll returns for one key. `MAELSTROM_KAFKA_POLL_MAX`; default 4096.
    ///
    /// Maelstrom's logs hold `--max-writes-per-key` messages (16 by default), so the default
    /// never pages a Maelstrom run, while bounding the reply to a poll from 0 on a long log.
    pub poll_max: usize,
    /// Bytes of pairs after which a poll reply stops taking more. `MAELSTROM_KAFKA_POLL_BYTES`;
    /// default 1 MiB.
    ///
    /// On top of `poll_max`: a poll of every key from offset 0 on a long run (Maelstrom's final
    /// phase) would otherwise be answered in one reply of tens of megabytes, which takes longer
    /// than the client's 5 s timeout to travel and be read. The reply always holds at least one
    /// pair when there is one, so it may pass the bound by one message. Which keys a bounded
    /// reply serves rotates from poll to poll (see `rpc.rs`), so that clients polling the same
    /// keys read different ones and together cover them all. In that final phase each poll names
    /// every key (180,000 after 60 s at 100k ops/s), and those requests cost both sides more than
    /// the replies. With 64 KiB, Maelstrom's 64 clients managed three rounds of about 4 s each
    /// in the phase's 10 s and left messages of that run unread (on a loaded 2-core machine);
    /// with 1 MiB their first round covers its 2.8M messages, and 64 such replies are still a
    /// small load. A Fly.io-sized run (a few hundred
    /// keys of at most 16 messages) never reaches it.
    pub poll_bytes: usize,
    /// Most requests the reader hands to a worker at once. `MAELSTROM_KAFKA_BATCH`; default 1024.
    ///
    /// The reader never waits to fill a batch: it sends what it has whenever no complete line
    /// is buffered (or, on a busy input, once [`Config::hold_us`] has passed), so a lone
    /// request is never held back for long. Under a flood, larger batches mean fewer hand-offs,
    /// each of which wakes a sleeping worker and then the sleeping writer; 256 used about a
    /// sixth less CPU than 64 on a 1M-request replay. At 1024, more than one read of stdin
    /// holds (a 64 KiB read is about 570 Maelstrom-sized lines), a flood is handed over once
    /// per read, the most this cap can save: 2048 and 4096 made the same counts in the 1M
    /// replay (BENCHMARKS.md, issue 16). A live run's batches are far smaller (a few reads'
    /// lines, see `hold_us`) and never reach it.
    pub batch: usize,
    /// Longest line accepted, in bytes. `MAELSTROM_KAFKA_MAX_LINE`; default 16 MiB; within
    /// [`MAX_LINE`]. A longer line is skipped with a note on stderr. It is the one cluster-wide
    /// setting: no node writes a `replicate` line longer, so every node must be given the same.
    ///
    /// The limit is what bounds the memory one line takes, about 23 bytes per byte of line at
    /// worst: simd-json's tape (24 bytes per value) and structural index (4 bytes per
    /// structural character), three copies of the line (gathered, padded for simd-json, its
    /// string buffer) and the stored `msg`. The worst shape, an array of one-digit numbers,
    /// took the node to 377 MiB at 16 MiB and 1.43 GiB at 64 MiB (BENCHMARKS.md), so the default
    /// keeps a line under 512 MiB. The parse buffers of a line over 1 MiB are freed after it.
    pub max_line: usize,
    /// Milliseconds after which a reply to a client is dropped instead of sent, counted from
    /// when the reader read the request. `MAELSTROM_KAFKA_REPLY_DEADLINE_MS`; default 4500.
    ///
    /// Maelstrom's client gives up after 5 s and is replaced; a reply to a replaced client is an
    /// "Invalid dest", which stops Maelstrom reading the node's stdout for good. So a reply that
    /// late is worse than none. Each drop is counted and noted on stderr. Replies to other nodes
    /// and `init_ok` (whose deadline is 10 s) are exempt.
    pub reply_deadline_ms: usize,
    /// Longest a batch of requests is held for more lines while the input is busy, in
    /// microseconds, counted from the read that brought its first line.
    /// `MAELSTROM_KAFKA_HOLD_US`; default 100; 0 never holds.
    ///
    /// The reader hands a batch over as soon as no whole line is left to parse. In a live run at
    /// high rate a read brings a few lines, and every hand-off wakes a sleeping worker, which
    /// wakes the sleeping writer: those wakes cost more CPU than the requests (BENCHMARKS.md,
    /// "Live runs"). So when the input's last two reads came less than this apart, the reader
    /// waits up to the rest of this time for more, and one hand-off carries the lines of several
    /// reads. A quiet input (reads further apart, as in a Fly.io-sized run) is never held, and
    /// the time bounds the latency added to a busy one: 64 clients at 100k ops/s wait about
    /// 640 µs each between requests.
    pub hold_us: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            workers: std::thread::available_parallelism().map_or(2, NonZeroUsize::get),
            poll_max: 4096,
            batch: 1024,
            max_line: 16 << 20,
            poll_bytes: 1 << 20,
            reply_deadline_ms: 4500,
            hold_us: 100,
        }
    }
}

/// The range of [`Config::workers`]: at least one, or nothing is served; at most 256. The
/// pipeline has one reader and one writer, so workers past the machine's cores add only
/// hand-offs (BENCHMARKS.md's sweep: 1 to 8 workers on 2 cores), and each is a thread with its
/// own stack: `MAELSTROM_KAFKA_WORKERS=100000` started 32k threads and then aborted.
pub const WORKERS: std::ops::RangeInclusive<usize> = 1..=256;

/// The range of [`Config::max_line`], in bytes. At least 4 KiB: every request a Maelstrom client
/// sends is under 1 KiB but for the final phase's polls of every key, and an `init` naming the
/// most nodes a node serves (`MAX_NODES`, 64) under 1 KiB; below a few hundred bytes a node
/// skipped its own `init` and served nothing. At most 256 MiB: a line may take about 23 bytes of
/// memory per byte while it is parsed, so 6 GiB at that size; and the parser indexes a line with
/// 32-bit positions, which no larger limit could keep within.
pub const MAX_LINE: std::ops::RangeInclusive<usize> = 4 << 10..=256 << 20;

impl Config {
    /// This configuration with every setting within its sane range ([`WORKERS`], [`MAX_LINE`],
    /// and at least 1 for the others), each one moved noted on stderr with the range.
    ///
    /// Every node of a cluster reads the same environment and clamps it the same way, so they
    /// agree on the line limit whatever was set.
    #[must_use]
    pub fn sane(self) -> Self {
        fn clamp(name: &str, value: usize, range: std::ops::RangeInclusive<usize>) -> usize {
            let sane = value.clamp(*range.start(), *range.end());
            if sane != value {
                crate::diag::note!(
                    "{name}={value} is outside {}..={}; using {sane}",
                    range.start(),
                    range.end()
                );
            }
            sane
        }
        Self {
            workers: clamp("MAELSTROM_KAFKA_WORKERS", self.workers, WORKERS),
            max_line: clamp("MAELSTROM_KAFKA_MAX_LINE", self.max_line, MAX_LINE),
            batch: clamp("MAELSTROM_KAFKA_BATCH", self.batch, 1..=usize::MAX),
            poll_max: clamp("MAELSTROM_KAFKA_POLL_MAX", self.poll_max, 1..=usize::MAX),
            poll_bytes: clamp(
                "MAELSTROM_KAFKA_POLL_BYTES",
                self.poll_bytes,
                1..=usize::MAX,
            ),
            ..self
        }
    }

    /// [`Config::hold_us`] as a duration.
    pub fn hold(&self) -> std::time::Duration {
        std::time::Duration::from_micros(self.hold_us as u64)
    }

    /// [`Config::reply_deadline_ms`] as a duration.
    pub fn reply_deadline(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.reply_deadline_ms as u64)
    }

    /// The defaults, overridden by whichever `MAELSTROM_KAFKA_*` variables are set.
    /// An unusable value is reported on stderr and the default kept.
    pub fn from_env() -> Self {
        let mut config = Self::default();
        for (name, field, zero) in [
            ("MAELSTROM_KAFKA_WORKERS", &mut config.workers, false),
            ("MAELSTROM_KAFKA_POLL_MAX", &mut config.poll_max, false),
            ("MAELSTROM_KAFKA_BATCH", &mut config.batch, false),
            ("MAELSTROM_KAFKA_MAX_LINE", &mut config.max_line, false),
            ("MAELSTROM_KAFKA_POLL_BYTES", &mut config.poll_bytes, false),
            (
                "MAELSTROM_KAFKA_REPLY_DEADLINE_MS",
                &mut config.reply_deadline_ms,
                false,
            ),
            ("MAELSTROM_KAFKA_HOLD_US", &mut config.hold_us, true),
        ] {
            let Ok(value) = std::env::var(name) else {
                continue;
            };
            match value.trim().parse::<usize>() {
                Ok(n) if n > 0 || zero => *field = n,
                _ if zero => crate::diag::note!(
                    "ignoring {name}={value:?}: not an integer of 0 or more; using {field}"
                ),
                _ => crate::diag::note!(
                    "ignoring {name}={value:?}: not a positive integer; using {field}"
                ),
            }
        }
        config
    }
}
