//! Command line: Maelstrom's `test` options (as far as the kafka workload uses them) plus
//! a few of our own for tests and tuning, and the [`Config`] the run is driven by.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "kafka-workload",
    version,
    about = "A Maelstrom-compatible runner and checker for the kafka workload (Gossip Glomers 5a)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs a test, like `maelstrom test`.
    Test(TestOpts),
}

#[derive(Debug, Clone, Args)]
pub struct TestOpts {
    /// The workload; only `kafka` exists here.
    #[arg(short = 'w', long = "workload", default_value = "kafka")]
    pub workload: String,
    /// The node binary. Arguments after the options are passed to it.
    #[arg(long)]
    pub bin: PathBuf,
    /// Number of nodes, named n0…n{N-1}. Unset means Maelstrom's default: n1…n5.
    #[arg(long)]
    pub node_count: Option<usize>,
    /// Client threads: an integer, or an integer followed by `n` (times the node count).
    #[arg(long, default_value = "1n")]
    pub concurrency: String,
    /// Seconds of the main phase.
    #[arg(long, default_value_t = 60.0)]
    pub time_limit: f64,
    /// Target operations per second across all clients.
    #[arg(long, default_value_t = 5.0)]
    pub rate: f64,
    /// Number of keys active at once.
    #[arg(long, default_value_t = 10)]
    pub key_count: usize,
    /// Sends per key before the key is retired.
    #[arg(long, default_value_t = 16)]
    pub max_writes_per_key: i64,
    /// Seed for the operation generator (default: from the clock).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Echo node stderr to the console.
    #[arg(long)]
    pub log_stderr: bool,
    /// Root of the store: runs go to <store>/kafka/<timestamp>/, <store>/latest links there.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// Chance that an op becomes an `assign`: 1/64 as Maelstrom 0.2.4+, 1/8 as 0.2.3.
    /// A number or a fraction like `1/8`.
    #[arg(long, default_value = "1/64")]
    pub assign_probability: String,
    /// Seconds to sleep between the main and the final phase (Maelstrom: 10).
    #[arg(long, default_value_t = 10.0)]
    pub recovery_sleep: f64,
    /// Cap in seconds on the final catch-up phase (Maelstrom: 10).
    #[arg(long, default_value_t = 10.0)]
    pub final_time_limit: f64,
    /// Client RPC timeout in milliseconds (Maelstrom: 5000).
    #[arg(long, default_value_t = 5000)]
    pub rpc_timeout: u64,
    /// No progress bar on stderr.
    #[arg(long)]
    pub no_progress: bool,
    /// Arguments for the node binary.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// Everything a run needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub opts: TestOpts,
    pub node_ids: Vec<String>,
    pub concurrency: usize,
    pub assign_p: f64,
    pub seed: u64,
}

impl Config {
    pub fn from_opts(opts: TestOpts) -> Result<Config, String> {
        if opts.workload != "kafka" {
            return Err(format!(
                "unsupported workload {:?}: only kafka",
                opts.workload
            ));
        }
        let node_ids: Vec<String> = match opts.node_count {
            Some(0) => return Err("--node-count must be at least 1".into()),
            Some(n) => (0..n).map(|i| format!("n{i}")).collect(),
            None => (1..=5).map(|i| format!("n{i}")).collect(),
        };
        let concurrency = parse_concurrency(&opts.concurrency, node_ids.len())?;
        let assign_p = parse_probability(&opts.assign_probability)?;
        if !(opts.rate > 0.0 && opts.rate.is_finite()) {
            return Err("--rate must be positive".into());
        }
        for (name, v) in [
            ("--time-limit", opts.time_limit),
            ("--recovery-sleep", opts.recovery_sleep),
            ("--final-time-limit", opts.final_time_limit),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(format!("{name} must be a non-negative number of seconds"));
            }
        }
        if opts.key_count == 0 || opts.max_writes_per_key < 1 {
            return Err("--key-count and --max-writes-per-key must be at least 1".into());
        }
        let seed = opts.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
        Ok(Config {
            opts,
            node_ids,
            concurrency,
            assign_p,
            seed,
        })
    }
}

/// `"2n"` → 2 × nodes; `"5"` → 5.
pub fn parse_concurrency(s: &str, nodes: usize) -> Result<usize, String> {
    let bad = || format!("--concurrency {s:?}: expected an integer, optionally followed by n");
    let (digits, per_node) = match s.strip_suffix('n') {
        Some(d) => (d, true),
        None => (s, false),
    };
    let n: usize = digits.parse().map_err(|_| bad())?;
    let c = if per_node { n * nodes } else { n };
    if c == 0 {
        return Err("--concurrency must be at least 1".into());
    }
    Ok(c)
}

/// `"1/64"` or `"0.125"`.
pub fn parse_probability(s: &str) -> Result<f64, String> {
    let bad =
        || format!("--assign-probability {s:?}: expected a number in [0, 1] or a fraction a/b");
    let p = match s.split_once('/') {
        Some((a, b)) => {
            let a: f64 = a.trim().parse().map_err(|_| bad())?;
            let b: f64 = b.trim().parse().map_err(|_| bad())?;
            a / b
        }
        None => s.trim().parse().map_err(|_| bad())?,
    };
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrency_and_probability() {
        assert_eq!(parse_concurrency("2n", 1), Ok(2));
        assert_eq!(parse_concurrency("2n", 3), Ok(6));
        assert_eq!(parse_concurrency("64", 2), Ok(64));
        assert!(parse_concurrency("n", 1).is_err());
        assert!(parse_concurrency("0", 1).is_err());
        assert_eq!(parse_probability("1/64"), Ok(1.0 / 64.0));
        assert_eq!(parse_probability("0.125"), Ok(0.125));
        assert!(parse_probability("2").is_err());
    }

    #[test]
    fn fly_io_command_parses() {
        let cli = Cli::try_parse_from([
            "kafka-workload",
            "test",
            "-w",
            "kafka",
            "--bin",
            "/x/node",
            "--node-count",
            "1",
            "--concurrency",
            "2n",
            "--time-limit",
            "20",
            "--rate",
            "1000",
        ])
        .unwrap();
        let Command::Test(opts) = cli.command;
        let cfg = Config::from_opts(opts).unwrap();
        assert_eq!(cfg.node_ids, vec!["n0"]);
        assert_eq!(cfg.concurrency, 2);
        assert_eq!(cfg.opts.time_limit, 20.0);
        let cli =
            Cli::try_parse_from(["kafka-workload", "test", "--bin", "x", "--", "--flag", "v"])
                .unwrap();
        let Command::Test(opts) = cli.command;
        assert_eq!(opts.args, vec!["--flag", "v"]);
        let cfg = Config::from_opts(opts).unwrap();
        assert_eq!(cfg.node_ids, vec!["n1", "n2", "n3", "n4", "n5"]);
    }
}
