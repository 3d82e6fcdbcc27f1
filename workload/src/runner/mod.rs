//! The scheduler: one thread that owns every client, the generator and the history, and
//! drives the run through its phases (init, main, recovery sleep, final catch-up).
//!
//! Clients are state machines, not threads. Each is synchronous, as Maelstrom's are: one
//! request outstanding at a time, a reply matched by `in_reply_to`, a timeout after which
//! the op is indeterminate and the client is replaced (new process, new `c<N>`). Because
//! every request has the same timeout, deadlines are pushed in time order and a FIFO queue
//! serves as the deadline heap; stale entries are skipped by a per-client sequence number.
//!
//! Replies arrive from the node reader threads in batches over one channel. A reply to a
//! client that is no longer on the network (it timed out and was replaced) is an "Invalid
//! dest" and kills the sending node's stdout, exactly Maelstrom's behaviour.
//!
//! # Layout
//!
//! * this file: the run's wiring (spawn the nodes, run the phases, tear down), the
//!   `Runner` that the other files add to, and what a run produced ([`Outcome`]);
//! * `io`: the scheduler's inputs from outside, the clock and the nodes' pipes, as traits
//!   (`Clock`, `Pipes`): the wall clock and child processes in a run, simulated time and
//!   scripted nodes in the unit tests;
//! * `phases`: init, main, recovery sleep and final catch-up, and the event loop (the pump)
//!   that drives each: the rate limiter, the crash schedule, the final phase's rules;
//! * `clients`: the worker table, which client ids are on the network, the timeout queue,
//!   and each worker's requests and reply matching;
//! * `router`: what the nodes print goes to a client, a node or a service; delivery; a
//!   node that breaks the protocol loses its stdout;
//! * `tests`: the scheduler's rules on simulated time.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::cli::Config;
use crate::generator::{Generator, Stagger};
use crate::history::History;
use crate::lamport::MsgEvent;
use crate::nemesis::Nemesis;
use crate::network::{NetStats, Network};
use crate::node::{Exit, Node};
use crate::progress::Progress;
use crate::protocol::{self, Names, Reply};
use crate::services::{self, Services};

mod clients;
mod io;
mod phases;
mod router;
#[cfg(test)]
mod tests;

use clients::Clients;
pub(crate) use io::{Clock, Pipes};
use router::NodeSlot;

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;

/// Final-phase polls: Jepsen's `(gen/stagger 1/5)`.
const FINAL_POLL_MEAN: f64 = 0.2 * SEC as f64;

/// Maelstrom recycles each client about every 30 s.
const CRASH_INTERVAL: f64 = 30.0 * SEC as f64;

/// How far behind the rate schedule the main phase may catch up in a burst (see
/// [`Stagger::issued`]): above a sleep's granularity, far below a second.
const RATE_SLACK: u64 = 5 * MS;

/// Something the node did that breaks the protocol outright.
#[derive(Debug, Clone)]
pub struct NodeFault {
    pub node: String,
    /// The runner names its faults with constants; `check` reads them back from a run's
    /// `results.json`.
    pub kind: std::borrow::Cow<'static, str>,
    pub detail: String,
    pub time: u64,
}

/// Phase boundaries, ns since the run's origin.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    pub main_start: u64,
    pub main_end: u64,
    pub final_start: u64,
    pub final_end: u64,
    pub end: u64,
    /// When the network was partitioned: start and heal.
    pub partitions: Vec<(u64, u64)>,
}

/// Everything a run produced, for the checker and the report.
#[derive(Debug)]
pub struct Outcome {
    pub history: History,
    pub net: NetStats,
    /// Replies that matched no waiting request, which the client ignored.
    pub dropped_replies: u64,
    /// The first journal events, for the Lamport diagram.
    pub journal: Vec<MsgEvent>,
    /// Server messages sent per [`SERVER_TICK`](crate::network::SERVER_TICK).
    pub server_sends: Vec<u32>,
    pub faults: Vec<NodeFault>,
    pub exits: Vec<Exit>,
    /// Set when setup failed (spawn or init): there is no meaningful history.
    pub setup_error: Option<SetupError>,
    pub timeline: Timeline,
    /// The signal (SIGINT, SIGTERM, SIGHUP) that ended the run before its phases did.
    pub interrupted: Option<&'static str>,
    /// CPU seconds used by this process and by each node.
    pub runner_cpu: Option<f64>,
    pub node_cpu: Vec<Option<f64>>,
}

/// Why a run never got to its main phase.
#[derive(Debug)]
pub enum SetupError {
    /// The run directory's `node-logs/` could not be created.
    Logs {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A node's binary could not be started.
    Spawn {
        bin: PathBuf,
        source: std::io::Error,
    },
    /// Some nodes did not answer `init` with `init_ok` (one entry each, in node order).
    Init(Vec<InitFailure>),
}

/// One node that did not become ready.
#[derive(Debug)]
pub struct InitFailure {
    pub node: String,
    pub why: InitFailed,
}

/// How a node failed its `init`.
#[derive(Debug)]
pub enum InitFailed {
    /// It answered the init request with something other than `init_ok`.
    Answered(Reply),
    /// Its stdout ended first.
    Exited,
    /// Nothing within `--init-timeout` (seconds).
    NoReply { timeout: f64 },
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Logs { path, source } => write!(f, "creating {}: {source}", path.display()),
            SetupError::Spawn { bin, source } => {
                write!(f, "could not start {}: {source}", bin.display())
            }
            SetupError::Init(failures) => {
                // Nodes that failed alike are named together: five nodes that each exit at
                // once make one sentence, not five.
                let mut reasons: Vec<(String, Vec<&str>)> = Vec::new();
                for failure in failures {
                    let why = match &failure.why {
                        InitFailed::Answered(reply) => format!("expected init_ok, got {reply:?}"),
                        InitFailed::Exited => {
                            "exited (or closed stdout) before answering init".to_owned()
                        }
                        InitFailed::NoReply { timeout } => {
                            format!("no init_ok within {timeout} s (--init-timeout)")
                        }
                    };
                    match reasons.iter_mut().find(|(w, _)| *w == why) {
                        Some((_, nodes)) => nodes.push(&failure.node),
                        None => reasons.push((why, vec![&failure.node])),
                    }
                }
                f.write_str("init failed: ")?;
                for (i, (why, nodes)) in reasons.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{}: {why}", nodes.join(", "))?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for SetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SetupError::Logs { source, .. } | SetupError::Spawn { source, .. } => Some(source),
            SetupError::Init(_) => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Main,
    Recovery,
    Final,
}

/// The scheduler's state. Its methods are spread over this module's files by job; it reads
/// the time from `clock` and talks to the nodes only through `pipes`.
struct Runner<'a, C, P> {
    cfg: &'a Config,
    clock: C,
    pipes: P,
    /// The client RPC timeout, ns.
    timeout: u64,
    /// Per node: what is queued for its stdin, and what became of its stdout.
    nodes: Vec<NodeSlot>,
    clients: Clients,
    /// Per node, what its init client got.
    init_done: Vec<InitState>,
    history: History,
    rng: fastrand::Rng,
    generator: Generator,
    /// When the next main-phase op is due: Jepsen's `stagger` at the requested rate.
    rate: Stagger,
    /// When the next `crash` op is due.
    crashes: Stagger,
    net: Network,
    services: Services,
    nemesis: Option<Nemesis>,
    faults: Vec<NodeFault>,
    progress: Progress,
    timeline: Timeline,
    /// Every node's stdout ended and every process exited: nothing can answer any more.
    all_crashed: bool,
    /// The signal that ended the run early.
    interrupted: Option<&'static str>,
}

/// What a node's init client has heard.
#[derive(Debug)]
enum InitState {
    Waiting,
    Ready,
    Answered(Reply),
}

/// Runs the whole test against `cfg.opts.bin`, writing node logs under `run_dir`.
pub fn run(cfg: &Config, run_dir: &Path) -> Outcome {
    let clock = io::WallClock::start();
    let runner_cpu_start = crate::cpu::cpu_seconds(None);
    let names = Names::with_services(
        cfg.node_ids.clone(),
        services::NAMES.iter().map(|s| s.to_string()).collect(),
    );
    let (tx, rx) = crate::node::event_queue();
    let (nodes, spawned) = spawn(cfg, run_dir, &names, &tx);
    drop(tx);
    let mut r = Runner::new(cfg, clock, io::Children::new(nodes, rx), &names);
    let mut setup = spawned;
    if setup.is_ok() {
        setup = r.init();
    }
    if setup.is_ok() {
        r.main_and_final();
    }
    r.progress.finish();
    let nodes = r.pipes.take_nodes();
    let node_cpu = nodes
        .iter()
        .map(|n| crate::cpu::cpu_seconds(Some(n.pid())))
        .collect();
    let runner_cpu = crate::cpu::cpu_seconds(None)
        .zip(runner_cpu_start)
        .map(|(b, a)| b - a);
    let mut exits = Vec::new();
    let now = r.now();
    for node in nodes {
        let exit = node.teardown();
        if let Some(status) = exit.crashed {
            r.faults.push(NodeFault {
                node: exit.name.clone(),
                kind: "crashed".into(),
                detail: format!("Node {} crashed with {status}", exit.name),
                time: now,
            });
        }
        if !exit.held_open.is_empty() {
            r.progress.note(&format!(
                "{}'s {} stayed open after it was killed (a process it started holds it?); not waiting for it",
                exit.name,
                exit.held_open.join(", ")
            ));
        }
        exits.push(exit);
    }
    r.timeline.end = r.now();
    Outcome {
        history: r.history,
        net: r.net.stats,
        dropped_replies: r.clients.dropped_replies,
        journal: r.net.take_journal(),
        server_sends: r.net.take_server_sends(),
        faults: r.faults,
        exits,
        setup_error: setup.err(),
        timeline: r.timeline,
        interrupted: r.interrupted,
        runner_cpu,
        node_cpu,
    }
}

/// Starts every node (stopping at the first that cannot be started), each logging its
/// stderr to `node-logs/<node>.log`.
fn spawn(
    cfg: &Config,
    run_dir: &Path,
    names: &Names,
    events: &crate::node::EventSender,
) -> (Vec<Node>, Result<(), SetupError>) {
    let logs = run_dir.join("node-logs");
    if let Err(source) = std::fs::create_dir_all(&logs) {
        return (Vec::new(), Err(SetupError::Logs { path: logs, source }));
    }
    let mut nodes = Vec::new();
    for (i, name) in cfg.node_ids.iter().enumerate() {
        let log = logs.join(format!("{name}.log"));
        match Node::spawn(
            i,
            &cfg.opts.bin,
            &cfg.opts.args,
            names.clone(),
            &log,
            cfg.opts.log_stderr,
            events.clone(),
        ) {
            Ok(node) => nodes.push(node),
            Err(source) => {
                let bin = cfg.opts.bin.clone();
                return (nodes, Err(SetupError::Spawn { bin, source }));
            }
        }
    }
    (nodes, Ok(()))
}

impl<'a, C: Clock, P: Pipes> Runner<'a, C, P> {
    /// A scheduler for `pipes.nodes()` nodes (all of `cfg.node_ids` unless spawning stopped
    /// early), before init.
    fn new(cfg: &'a Config, clock: C, pipes: P, names: &Names) -> Self {
        let concurrency = cfg.concurrency;
        // Its own seed, so turning latency on does not change which operations are generated.
        let mut net = Network::new(
            names.addresses(),
            cfg.node_ids.len(),
            cfg.latency,
            sub_seed(cfg.seed, 1),
        );
        net.set_logging(cfg.opts.log_net_send, cfg.opts.log_net_recv);
        let nodes = (0..pipes.nodes()).map(|_| NodeSlot::default()).collect();
        Runner {
            cfg,
            clock,
            pipes,
            timeout: cfg.opts.rpc_timeout.max(1) * MS,
            nodes,
            clients: Clients::new(concurrency),
            init_done: (0..cfg.node_ids.len())
                .map(|_| InitState::Waiting)
                .collect(),
            history: History::default(),
            rng: fastrand::Rng::with_seed(cfg.seed),
            generator: Generator::new(
                cfg.opts.key_count,
                cfg.opts.max_writes_per_key,
                cfg.assign_p,
            ),
            rate: Stagger::new(SEC as f64 / cfg.opts.rate),
            crashes: Stagger::new(CRASH_INTERVAL / concurrency as f64),
            net,
            services: Services::new(sub_seed(cfg.seed, 2)),
            nemesis: None,
            faults: Vec::new(),
            progress: Progress::new(!cfg.opts.no_progress),
            timeline: Timeline::default(),
            all_crashed: false,
            interrupted: None,
        }
    }

    fn now(&self) -> u64 {
        self.clock.now()
    }
}

/// A seed of its own for each random part of the run (network, services, nemesis), so
/// that turning one on changes nothing in the others. Mixed (splitmix64's finaliser):
/// nearby seeds given to the generator must not give nearby streams. The workload's only
/// copy of splitmix64: it shares no code with the node, which has its own.
fn sub_seed(seed: u64, part: u64) -> u64 {
    let mut z = seed ^ part.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The body of a line the runner wrote, for the journal.
fn body_text(line: &[u8]) -> String {
    let line = std::str::from_utf8(line).unwrap_or_default().trim_end();
    protocol::envelope_body(line).unwrap_or(line).to_owned()
}
