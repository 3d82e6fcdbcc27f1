//! Command line: Maelstrom's `test` options, parsed as strictly as Maelstrom parses them,
//! plus a few of our own for tests and tuning, and the [`Config`] the run is driven by.
//!
//! As with Maelstrom (Jepsen's CLI on tools.cli): options may come in any order, an
//! unknown option is an error that names it (exit 254), and every positional argument
//! becomes an argument of the node binary (`--` ends the options, so a node argument may
//! start with `-`). Maelstrom options that change nothing in a kafka test are accepted and
//! ignored, as Maelstrom ignores them; the ones that would change the test but are not
//! implemented here are refused by name rather than silently dropped.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::error::Error;
use crate::network::{Dist, Latency};

const NOT_SUPPORTED: &str =
    "Maelstrom options kafka-workload does not support (refused with exit 254 rather than ignored)";
const NO_EFFECT: &str =
    "Maelstrom options with no effect on a kafka test (accepted and ignored, as by Maelstrom)";
const OURS: &str = "kafka-workload's own options (not in Maelstrom)";

#[derive(Debug, Parser)]
#[command(
    name = "kafka-workload",
    version,
    about = "A Maelstrom-compatible runner and checker for the kafka workload (Gossip Glomers 5a, 5b, 5c)",
    after_help = "Exit codes, as Maelstrom's: 0 valid, 1 invalid, 2 unknown, 254 bad arguments, 255 internal error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs a test, like `maelstrom test`.
    Test(Box<TestOpts>),
    /// Browses the store's runs over HTTP, like `maelstrom serve`.
    Serve(ServeOpts),
    /// Re-judges a stored history without running anything: a run directory or
    /// `history.jsonl` of ours, or a `history.edn` written by Maelstrom. The results go to a
    /// new run directory in the store, as a test's do.
    Check(CheckOpts),
}

/// `kafka-workload check`.
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Exit codes, as `test`: 0 valid, 1 invalid, 2 unknown, 254 bad arguments or an unreadable history, 255 internal error."
)]
pub struct CheckOpts {
    /// A run directory (`store/kafka/<time>/`, `store/latest`, or a Maelstrom run's
    /// directory), or a history file: `history.jsonl` (ours) or `history.edn` (Jepsen's).
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// Root of the store: the results go to STORE/kafka/TIMESTAMP/, and STORE/latest links
    /// there. The judged run's own files are left as they were.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
}

/// `kafka-workload serve`. A repeated option keeps its last value, as for `test`.
#[derive(Debug, Clone, Args)]
#[command(args_override_self = true)]
pub struct ServeOpts {
    /// The store to serve (what `test --store` wrote to).
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// Port to listen on; 0 takes any free one (the address is printed).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on. Loopback unless told otherwise: the store holds node logs.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Parsed {
    Test(Box<Config>),
    Serve(ServeOpts),
    Check(CheckOpts),
}

/// A repeated option keeps its last value (`--rate 500 --rate 40` runs at 40/s), as
/// Jepsen's command line does.
#[derive(Debug, Clone, Args)]
#[command(
    args_override_self = true,
    after_help = "Positional arguments go to the node binary, as in Maelstrom; put them after `--` if they start with `-`.\nExit codes: 0 valid, 1 invalid, 2 unknown, 254 bad arguments, 255 internal error."
)]
pub struct TestOpts {
    /// The workload; only `kafka` exists here.
    #[arg(short = 'w', long = "workload", default_value = "kafka")]
    pub workload: String,
    /// The node binary (required). Positional arguments are passed to it.
    #[arg(long, value_name = "FILE")]
    pub bin: PathBuf,
    /// Number of nodes, named n0…n{N-1}. Unset means Maelstrom's default: n1…n5.
    #[arg(long, value_name = "NUM")]
    pub node_count: Option<usize>,
    /// Client threads: an integer, or an integer followed by `n` (times the node count).
    #[arg(long, default_value = "1n", value_name = "NUMBER")]
    pub concurrency: String,
    /// Seconds of the main phase (Maelstrom takes whole seconds; fractions work here).
    #[arg(long, default_value_t = 60.0, value_name = "SECONDS")]
    pub time_limit: f64,
    /// Target operations per second across all clients.
    #[arg(long, default_value_t = 5.0, value_name = "RATE")]
    pub rate: f64,
    /// Number of keys active at once.
    #[arg(long, default_value_t = 10, value_name = "INT")]
    pub key_count: usize,
    /// Sends per key before the key is retired.
    #[arg(long, default_value_t = 16, value_name = "INT")]
    pub max_writes_per_key: i64,
    /// Mean latency in ms of messages between nodes and between nodes and services
    /// (messages to or from clients have none, as in Maelstrom).
    #[arg(long, default_value_t = 0, value_name = "MILLIS")]
    pub latency: u64,
    /// Latency distribution: constant, uniform (0 to twice the mean) or exponential.
    #[arg(long, default_value = "constant", value_name = "TYPE")]
    pub latency_dist: String,
    /// Faults to inject, comma-separated; the only one is `partition`.
    #[arg(long, value_name = "FAULTS")]
    pub nemesis: Option<String>,
    /// Mean seconds between nemesis operations (each wait uniform in 0 to twice this).
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub nemesis_interval: f64,
    /// Fraction of operations that must succeed: a number in [0, 1], or `total`.
    /// Unset, availability is reported but never invalidates the run.
    #[arg(long, value_name = "EXPECTED")]
    pub availability: Option<String>,
    /// Echo node stderr to the console.
    #[arg(long)]
    pub log_stderr: bool,
    /// Log every message as it is sent, on stderr.
    #[arg(long)]
    pub log_net_send: bool,
    /// Log every message as it is delivered, on stderr.
    #[arg(long)]
    pub log_net_recv: bool,

    /// Seed for the operation generator, latencies and the nemesis (default: from the clock).
    #[arg(long, help_heading = OURS)]
    pub seed: Option<u64>,
    /// Root of the store: runs go to STORE/kafka/TIMESTAMP/, and STORE/latest links there.
    #[arg(long, default_value = "store", help_heading = OURS)]
    pub store: PathBuf,
    /// Chance that an op becomes an `assign`: 1/64 as Maelstrom 0.2.4+, 1/8 as 0.2.3.
    /// A number or a fraction like `1/8`.
    #[arg(long, default_value = "1/64", help_heading = OURS)]
    pub assign_probability: String,
    /// Seconds to sleep between the main and the final phase (Maelstrom: 10).
    #[arg(long, default_value_t = 10.0, help_heading = OURS)]
    pub recovery_sleep: f64,
    /// Seconds each node has to answer `init` before the setup fails (Maelstrom: 10).
    #[arg(long, default_value_t = 10.0, help_heading = OURS)]
    pub init_timeout: f64,
    /// Cap in seconds on the final catch-up phase (Maelstrom: 10).
    #[arg(long, default_value_t = 10.0, help_heading = OURS)]
    pub final_time_limit: f64,
    /// Client RPC timeout in milliseconds (Maelstrom: 5000).
    #[arg(long, default_value_t = 5000, help_heading = OURS)]
    pub rpc_timeout: u64,
    /// No progress bar on stderr.
    #[arg(long, help_heading = OURS)]
    pub no_progress: bool,

    /// Node names, one per flag (Jepsen's). Use --node-count.
    #[arg(short = 'n', long = "node", value_name = "HOSTNAME", help_heading = NOT_SUPPORTED)]
    pub node: Vec<String>,
    /// Comma-separated node names (Jepsen's). Use --node-count.
    #[arg(long, value_name = "NODE_LIST", help_heading = NOT_SUPPORTED)]
    pub nodes: Option<String>,
    /// File of node names (Jepsen's). Use --node-count.
    #[arg(long, value_name = "FILENAME", help_heading = NOT_SUPPORTED)]
    pub nodes_file: Option<String>,
    /// Repeat the test; run kafka-workload several times instead.
    #[arg(long, value_name = "NUMBER", help_heading = NOT_SUPPORTED)]
    pub test_count: Option<String>,
    /// Leave the nodes running after the test.
    #[arg(long, help_heading = NOT_SUPPORTED)]
    pub leave_db_running: bool,
    /// JSON structured output in Jepsen's log (there is no jepsen.log here).
    #[arg(long, help_heading = NOT_SUPPORTED)]
    pub logging_json: bool,

    /// Checked by other workloads only.
    #[arg(long, value_name = "MODELS", help_heading = NO_EFFECT)]
    pub consistency_models: Option<String>,
    /// Used by other workloads only.
    #[arg(long, value_name = "INT", help_heading = NO_EFFECT)]
    pub max_txn_length: Option<String>,
    /// Used by the broadcast workload only.
    #[arg(long, value_name = "SPEC", help_heading = NO_EFFECT)]
    pub topology: Option<String>,
    /// SSH login (Maelstrom's nodes are local processes).
    #[arg(long, value_name = "USER", help_heading = NO_EFFECT)]
    pub username: Option<String>,
    /// SSH password.
    #[arg(long, value_name = "PASS", help_heading = NO_EFFECT)]
    pub password: Option<String>,
    /// SSH host key checking.
    #[arg(long, help_heading = NO_EFFECT)]
    pub strict_host_key_checking: bool,
    /// SSH off (it always is).
    #[arg(long, help_heading = NO_EFFECT)]
    pub no_ssh: bool,
    /// SSH identity file.
    #[arg(long, value_name = "FILE", help_heading = NO_EFFECT)]
    pub ssh_private_key: Option<String>,

    /// Arguments for the node binary.
    #[arg(value_name = "NODE_ARGS")]
    pub args: Vec<String>,
}

/// `--availability`: Maelstrom's availability checker bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Availability {
    /// Every operation must succeed.
    Total,
    /// At least this fraction of invocations must complete ok.
    AtLeast(f64),
}

/// Everything a run needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub opts: TestOpts,
    pub node_ids: Vec<String>,
    pub concurrency: usize,
    pub assign_p: f64,
    pub seed: u64,
    pub latency: Latency,
    /// `--nemesis partition`.
    pub partitions: bool,
    /// Mean ns between nemesis operations.
    pub nemesis_interval: u64,
    pub availability: Option<Availability>,
    /// The command line that runs this test again: as it was typed, with `--seed` added
    /// when it was not given, quoted for a POSIX shell.
    pub command: String,
}

impl Config {
    pub fn from_opts(opts: TestOpts) -> Result<Config, Error> {
        if opts.workload != "kafka" {
            return Err(Error::args(format!(
                "unsupported workload {:?}: only kafka",
                opts.workload
            )));
        }
        refuse_unsupported(&opts)?;
        let node_ids: Vec<String> = match opts.node_count {
            Some(0) => return Err(Error::args("--node-count must be at least 1")),
            Some(n) => (0..n).map(|i| format!("n{i}")).collect(),
            None => (1..=5).map(|i| format!("n{i}")).collect(),
        };
        let concurrency = parse_concurrency(&opts.concurrency, node_ids.len())?;
        let assign_p = parse_probability(&opts.assign_probability)?;
        if !(opts.rate > 0.0 && opts.rate.is_finite()) {
            return Err(Error::args("--rate must be positive"));
        }
        for (name, v) in [
            ("--time-limit", opts.time_limit),
            ("--recovery-sleep", opts.recovery_sleep),
            ("--final-time-limit", opts.final_time_limit),
            ("--init-timeout", opts.init_timeout),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(Error::args(format!(
                    "{name} must be a non-negative number of seconds"
                )));
            }
        }
        // A main phase of no time sends nothing, and a run that tested nothing must not
        // read "Everything looks good!".
        if opts.time_limit == 0.0 {
            return Err(Error::args(
                "--time-limit must be more than 0 s: a run of no time tests nothing",
            ));
        }
        if !(opts.nemesis_interval > 0.0 && opts.nemesis_interval.is_finite()) {
            return Err(Error::args("--nemesis-interval must be positive"));
        }
        if opts.key_count == 0 || opts.max_writes_per_key < 1 {
            return Err(Error::args(
                "--key-count and --max-writes-per-key must be at least 1",
            ));
        }
        let latency = Latency::new(opts.latency, parse_latency_dist(&opts.latency_dist)?);
        let partitions = parse_nemesis(opts.nemesis.as_deref().unwrap_or(""))?;
        let availability = opts
            .availability
            .as_deref()
            .map(parse_availability)
            .transpose()?;
        let seed = opts.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
        Ok(Config {
            nemesis_interval: (opts.nemesis_interval * 1e9) as u64,
            opts,
            node_ids,
            concurrency,
            assign_p,
            seed,
            latency,
            partitions,
            availability,
            command: String::new(),
        })
    }
}

/// Maelstrom options that would change the test but are not implemented: an error that
/// names the option, never a silent default.
fn refuse_unsupported(o: &TestOpts) -> Result<(), Error> {
    let given = [
        ("--node", !o.node.is_empty()),
        ("--nodes", o.nodes.is_some()),
        ("--nodes-file", o.nodes_file.is_some()),
        ("--test-count", o.test_count.is_some()),
        ("--leave-db-running", o.leave_db_running),
        ("--logging-json", o.logging_json),
    ];
    match given.iter().find(|(_, set)| *set) {
        Some((name, _)) => Err(Error::args(format!(
            "{name} is a Maelstrom option that kafka-workload does not support (see --help)"
        ))),
        None => Ok(()),
    }
}

/// `"2n"` → 2 × nodes; `"5"` → 5.
pub fn parse_concurrency(s: &str, nodes: usize) -> Result<usize, Error> {
    let bad = || {
        Error::args(format!(
            "--concurrency {s:?}: expected an integer, optionally followed by n"
        ))
    };
    let (digits, per_node) = match s.strip_suffix('n') {
        Some(d) => (d, true),
        None => (s, false),
    };
    let n: usize = digits.parse().map_err(|_| bad())?;
    let c = if per_node { n * nodes } else { n };
    if c == 0 {
        return Err(Error::args("--concurrency must be at least 1"));
    }
    Ok(c)
}

/// `"1/64"` or `"0.125"`.
pub fn parse_probability(s: &str) -> Result<f64, Error> {
    let bad = || {
        Error::args(format!(
            "--assign-probability {s:?}: expected a number in [0, 1] or a fraction a/b"
        ))
    };
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

pub fn parse_latency_dist(s: &str) -> Result<Dist, Error> {
    match s {
        "constant" => Ok(Dist::Constant),
        "uniform" => Ok(Dist::Uniform),
        "exponential" => Ok(Dist::Exponential),
        _ => Err(Error::args(format!(
            "--latency-dist {s:?}: must be constant, uniform, or exponential"
        ))),
    }
}

/// A comma-separated fault list, as Maelstrom's; `partition` is the only fault.
pub fn parse_nemesis(s: &str) -> Result<bool, Error> {
    let mut partition = false;
    for fault in s.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        match fault {
            "partition" => partition = true,
            _ => {
                return Err(Error::args(format!(
                    "--nemesis {fault:?}: must be one of partition"
                )));
            }
        }
    }
    Ok(partition)
}

/// `total` or a number in [0, 1]; Maelstrom reads the number as EDN, so a ratio like `9/10`
/// works too.
pub fn parse_availability(s: &str) -> Result<Availability, Error> {
    if s == "total" {
        return Ok(Availability::Total);
    }
    let number = |t: &str| t.trim().parse::<f64>().ok();
    let a = match s.split_once('/') {
        Some((n, d)) => number(n).zip(number(d)).map(|(n, d)| n / d),
        None => number(s),
    };
    match a {
        Some(a) if (0.0..=1.0).contains(&a) => Ok(Availability::AtLeast(a)),
        _ => Err(Error::args(format!(
            "--availability {s:?}: must be either 'total' or a number between 0 and 1"
        ))),
    }
}

/// Parses a `test` command line: `Err` carries the exit code and the text.
pub fn parse_args<I, T>(args: I) -> Result<Config, (i32, String)>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    match parse(args)? {
        Parsed::Test(cfg) => Ok(*cfg),
        Parsed::Serve(_) | Parsed::Check(_) => {
            Err((254, "kafka-workload: expected `test`\n".into()))
        }
    }
}

/// Parses a command line the way `main` does: `Err` carries the exit code and the text.
pub fn parse<I, T>(args: I) -> Result<Parsed, (i32, String)>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let cli = Cli::try_parse_from(&args).map_err(|e| {
        use clap::error::ErrorKind;
        let code = match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
            // Jepsen exits 254 for every argument error; clap would say 2, which here
            // means "unknown validity".
            _ => 254,
        };
        (code, e.render().to_string())
    })?;
    match cli.command {
        Command::Test(opts) => {
            let seeded = opts.seed.is_some();
            let mut cfg = Config::from_opts(*opts)
                .map_err(|e| (e.exit_code(), format!("kafka-workload: {e}\n")))?;
            cfg.command = reproduce(&args, (!seeded).then_some(cfg.seed));
            Ok(Parsed::Test(Box::new(cfg)))
        }
        Command::Serve(opts) => Ok(Parsed::Serve(opts)),
        Command::Check(opts) => Ok(Parsed::Check(opts)),
    }
}

/// `args` as one shell command line, with `--seed seed` after the subcommand when given.
fn reproduce(args: &[std::ffi::OsString], seed: Option<u64>) -> String {
    let mut words: Vec<String> = args
        .iter()
        .map(|a| shell_quote(&a.to_string_lossy()))
        .collect();
    if let Some(seed) = seed {
        // After `test`: a flag after `--` would go to the node.
        let at = words.len().min(2);
        words.splice(at..at, ["--seed".to_owned(), seed.to_string()]);
    }
    words.join(" ")
}

fn shell_quote(w: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./=:,@%+".contains(c);
    if !w.is_empty() && w.chars().all(plain) {
        w.to_owned()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, (i32, String)> {
        parse_args(["kafka-workload"].iter().chain(args))
    }

    #[test]
    fn the_command_reproduces_the_run_with_its_seed() {
        let cfg = parse(&["test", "--bin", "x", "--rate", "10", "--", "a b"]).unwrap();
        assert_eq!(
            cfg.command,
            format!(
                "kafka-workload test --seed {} --bin x --rate 10 -- 'a b'",
                cfg.seed
            )
        );
        let cfg = parse(&["test", "--bin", "it's", "--seed", "3"]).unwrap();
        assert_eq!(cfg.command, r"kafka-workload test --bin 'it'\''s' --seed 3");
    }

    #[test]
    fn concurrency_and_probability() {
        assert_eq!(parse_concurrency("2n", 1).ok(), Some(2));
        assert_eq!(parse_concurrency("2n", 3).ok(), Some(6));
        assert_eq!(parse_concurrency("64", 2).ok(), Some(64));
        assert!(parse_concurrency("n", 1).is_err());
        assert!(parse_concurrency("0", 1).is_err());
        assert_eq!(parse_probability("1/64").ok(), Some(1.0 / 64.0));
        assert_eq!(parse_probability("0.125").ok(), Some(0.125));
        assert!(parse_probability("2").is_err());
    }

    #[test]
    fn fly_io_command_parses() {
        let cfg = parse(&[
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
        assert_eq!(cfg.node_ids, vec!["n0"]);
        assert_eq!(cfg.concurrency, 2);
        assert_eq!(cfg.opts.time_limit, 20.0);
        assert!(cfg.opts.args.is_empty());
        assert_eq!(cfg.latency, Latency::new(0, Dist::Constant));
        assert!(!cfg.partitions);
        let cfg = parse(&["test", "--bin", "x", "--", "--flag", "v"]).unwrap();
        assert_eq!(cfg.opts.args, vec!["--flag", "v"]);
        assert_eq!(cfg.node_ids, vec!["n1", "n2", "n3", "n4", "n5"]);
    }

    #[test]
    fn options_anywhere_and_positionals_go_to_the_node() {
        // Options after `--bin` are the runner's, not the node's: they used to be swallowed.
        let cfg = parse(&[
            "test",
            "--bin",
            "x",
            "--latency",
            "10",
            "a",
            "--nemesis",
            "partition",
            "b",
            "--latency-dist",
            "exponential",
        ])
        .unwrap();
        assert_eq!(cfg.opts.args, vec!["a", "b"]);
        assert_eq!(cfg.latency, Latency::new(10, Dist::Exponential));
        assert!(cfg.partitions);
        let cfg = parse(&["test", "--node-count", "2", "--bin", "x", "--time-limit=3"]).unwrap();
        assert_eq!(cfg.opts.time_limit, 3.0);
        assert_eq!(cfg.node_ids, vec!["n0", "n1"]);
    }

    #[test]
    fn a_repeated_option_keeps_its_last_value_as_jepsens_cli_does() {
        let cfg = parse(&[
            "test",
            "--bin",
            "x",
            "--rate",
            "500",
            "a",
            "--rate",
            "40",
            "--node-count",
            "3",
            "--node-count=2",
            "--nemesis",
            "partition",
            "--nemesis",
            "partition",
            "b",
            "--no-progress",
            "--no-progress",
            "--bin",
            "y",
        ])
        .unwrap();
        assert_eq!(cfg.opts.rate, 40.0);
        assert_eq!(cfg.node_ids, vec!["n0", "n1"]);
        assert!(cfg.partitions && cfg.opts.no_progress);
        assert_eq!(cfg.opts.bin, std::path::PathBuf::from("y"));
        // Node arguments still gather, wherever they stand.
        assert_eq!(cfg.opts.args, vec!["a", "b"]);
        let Ok(Parsed::Serve(s)) = super::parse(
            ["kafka-workload", "serve", "--port", "1", "--port", "2"].map(std::ffi::OsString::from),
        ) else {
            panic!("serve parses");
        };
        assert_eq!(s.port, 2);
    }

    #[test]
    fn an_unknown_option_is_refused_by_name() {
        for bad in ["--time-limt", "--frobnicate"] {
            let (code, msg) = parse(&["test", "--bin", "x", bad, "1"]).unwrap_err();
            assert_eq!(code, 254, "{msg}");
            assert!(msg.contains(bad), "{msg}");
        }
        // A typo is told the option it is near, not how to hand it to the node.
        let (_, msg) = parse(&["test", "--bin", "x", "--time-limt", "1"]).unwrap_err();
        assert!(
            msg.contains("similar argument exists: '--time-limit'"),
            "{msg}"
        );
        assert!(!msg.contains("-- --time-limt"), "{msg}");
        // A node argument that looks like an option must come after `--`.
        let (code, msg) = parse(&["test", "--bin", "x", "--fault"]).unwrap_err();
        assert_eq!(code, 254);
        assert!(msg.contains("--fault"), "{msg}");
    }

    #[test]
    fn bad_values_and_unsupported_options_exit_254() {
        let cases: &[(&[&str], &str)] = &[
            (&["test"], "--bin"),
            (&["test", "--bin", "x", "-w", "lin-kv"], "only kafka"),
            (&["test", "--bin", "x", "--latency=-1"], "--latency"),
            (&["test", "--bin", "x", "--latency", "-1"], "-1"),
            (
                &["test", "--bin", "x", "--latency-dist", "pareto"],
                "pareto",
            ),
            (&["test", "--bin", "x", "--nemesis", "kill"], "kill"),
            (
                &["test", "--bin", "x", "--availability", "2"],
                "availability",
            ),
            (&["test", "--bin", "x", "--nodes", "a,b"], "--nodes"),
            (&["test", "--bin", "x", "--test-count", "2"], "--test-count"),
            (
                &["test", "--bin", "x", "--nemesis-interval", "0"],
                "interval",
            ),
            (&["frobnicate"], "frobnicate"),
            (&["test", "--bin", "x", "--time-limit", "0"], "--time-limit"),
        ];
        for (args, needle) in cases {
            let (code, msg) = parse(args).unwrap_err();
            assert_eq!(code, 254, "{args:?}: {msg}");
            assert!(msg.contains(needle), "{args:?}: {msg}");
        }
        // Options Maelstrom ignores for kafka are accepted.
        let cfg = parse(&["test", "--bin", "x", "--topology", "tree4", "--no-ssh"]).unwrap();
        assert!(cfg.opts.args.is_empty());
        let cfg = parse(&["test", "--bin", "x", "--availability", "total"]).unwrap();
        assert_eq!(cfg.availability, Some(Availability::Total));
        let cfg = parse(&["test", "--bin", "x", "--availability", "9/10"]).unwrap();
        assert_eq!(cfg.availability, Some(Availability::AtLeast(0.9)));
        assert!(parse(&["test", "--bin", "x", "--availability", "3/2"]).is_err());
    }

    #[test]
    fn help_lists_every_option_and_exits_0() {
        let (code, help) = parse(&["test", "--help"]).unwrap_err();
        assert_eq!(code, 0);
        for opt in [
            "--bin",
            "--workload",
            "--node-count",
            "--concurrency",
            "--time-limit",
            "--rate",
            "--key-count",
            "--max-writes-per-key",
            "--latency",
            "--latency-dist",
            "--nemesis",
            "--nemesis-interval",
            "--availability",
            "--log-stderr",
            "--log-net-send",
            "--log-net-recv",
            "--node",
            "--nodes",
            "--nodes-file",
            "--test-count",
            "--leave-db-running",
            "--logging-json",
            "--consistency-models",
            "--max-txn-length",
            "--topology",
            "--username",
            "--password",
            "--strict-host-key-checking",
            "--no-ssh",
            "--ssh-private-key",
            "--seed",
            "--store",
            "--assign-probability",
            "--recovery-sleep",
            "--final-time-limit",
            "--rpc-timeout",
            "--no-progress",
        ] {
            assert!(help.contains(opt), "--help lacks {opt}:\n{help}");
        }
        assert!(help.contains("does not support"), "{help}");
    }
}
