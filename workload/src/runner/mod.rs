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
//! * this file: the run's wiring (spawn the nodes, run the phases, tear down) and its
//!   [`Outcome`];
//! * `phases`: init, main, recovery sleep and final catch-up, and the event loop (the pump)
//!   that drives each;
//! * `clients`: the workers' requests, reply matching, timeouts and client replacement;
//! * `router`: what the nodes print goes to a client, a node or a service; delivery; a
//!   node that breaks the protocol loses its stdout.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::time::Instant;

use crossbeam_channel::Receiver;

use crate::cli::Config;
use crate::client::Worker;
use crate::generator::{Generator, Stagger};
use crate::history::History;
use crate::lamport::MsgEvent;
use crate::nemesis::Nemesis;
use crate::network::{NetStats, Network};
use crate::node::{Event, Exit, Node};
use crate::progress::Progress;
use crate::protocol::{self, Names};
use crate::services::{self, Services};

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
    pub kind: &'static str,
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
    pub faults: Vec<NodeFault>,
    pub exits: Vec<Exit>,
    /// Set when setup failed (spawn or init): there is no meaningful history.
    pub setup_error: Option<String>,
    pub timeline: Timeline,
    /// CPU seconds used by this process and by each node.
    pub runner_cpu: Option<f64>,
    pub node_cpu: Vec<Option<f64>>,
}

#[derive(Debug)]
struct NodeSlot {
    node: Node,
    /// Bytes queued for stdin during this scheduler iteration.
    out: Vec<u8>,
    stdout_dead: bool,
    eof: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Main,
    Recovery,
    Final,
}

struct Runner<'a> {
    cfg: &'a Config,
    origin: Instant,
    timeout: u64,
    nodes: Vec<NodeSlot>,
    events: Receiver<Vec<Event>>,
    workers: Vec<Worker>,
    /// Live client id → worker.
    clients: HashMap<u64, usize>,
    /// Init client id → node, while init is under way.
    init_clients: HashMap<u64, usize>,
    init_done: Vec<Option<Result<(), String>>>,
    timeouts: VecDeque<(u64, usize, u64)>,
    free: Vec<usize>,
    busy: usize,
    rng: fastrand::Rng,
    generator: Generator,
    rate: Stagger,
    crashes: Stagger,
    h: History,
    next_client: u64,
    net: Network,
    services: Services,
    nemesis: Option<Nemesis>,
    dropped_replies: u64,
    faults: Vec<NodeFault>,
    progress: Progress,
    timeline: Timeline,
    all_crashed: bool,
}

mod clients;
mod phases;
mod router;

/// Runs the whole test against `cfg.opts.bin`, writing node logs under `run_dir`.
pub fn run(cfg: &Config, run_dir: &Path) -> Outcome {
    let origin = Instant::now();
    let runner_cpu_start = crate::cpu::cpu_seconds(None);
    let names = Names::with_services(
        cfg.node_ids.clone(),
        services::NAMES.iter().map(|s| s.to_string()).collect(),
    );
    let (tx, rx) = crossbeam_channel::unbounded();
    let logs = run_dir.join("node-logs");
    let mut nodes = Vec::new();
    let mut setup_error = std::fs::create_dir_all(&logs)
        .err()
        .map(|e| format!("creating {}: {e}", logs.display()));
    if setup_error.is_none() {
        for i in 0..cfg.node_ids.len() {
            let log = logs.join(format!("{}.log", cfg.node_ids[i]));
            match Node::spawn(
                i,
                &cfg.opts.bin,
                &cfg.opts.args,
                names.clone(),
                &log,
                cfg.opts.log_stderr,
                tx.clone(),
            ) {
                Ok(node) => nodes.push(NodeSlot {
                    node,
                    out: Vec::new(),
                    stdout_dead: false,
                    eof: false,
                }),
                Err(e) => {
                    setup_error = Some(format!("could not start {}: {e}", cfg.opts.bin.display()));
                    break;
                }
            }
        }
    }
    drop(tx);
    let concurrency = cfg.concurrency;
    // Its own seed, so turning latency on does not change which operations are generated.
    let mut net = Network::new(
        names.addresses(),
        cfg.node_ids.len(),
        cfg.latency,
        sub_seed(cfg.seed, 1),
    );
    net.set_logging(cfg.opts.log_net_send, cfg.opts.log_net_recv);
    let mut r = Runner {
        cfg,
        origin,
        timeout: cfg.opts.rpc_timeout.max(1) * MS,
        nodes,
        events: rx,
        workers: Vec::with_capacity(concurrency),
        clients: HashMap::new(),
        init_clients: HashMap::new(),
        init_done: vec![None; cfg.node_ids.len()],
        timeouts: VecDeque::new(),
        free: Vec::new(),
        busy: 0,
        rng: fastrand::Rng::with_seed(cfg.seed),
        generator: Generator::new(
            cfg.opts.key_count,
            cfg.opts.max_writes_per_key,
            cfg.assign_p,
        ),
        rate: Stagger::new(SEC as f64 / cfg.opts.rate),
        crashes: Stagger::new(CRASH_INTERVAL / concurrency as f64),
        h: History::default(),
        next_client: 0,
        net,
        services: Services::new(sub_seed(cfg.seed, 2)),
        nemesis: None,
        dropped_replies: 0,
        faults: Vec::new(),
        progress: Progress::new(!cfg.opts.no_progress),
        timeline: Timeline::default(),
        all_crashed: false,
    };
    if setup_error.is_none() {
        setup_error = r.init();
    }
    if setup_error.is_none() {
        r.main_and_final();
    }
    r.progress.finish();
    let node_cpu = r
        .nodes
        .iter()
        .map(|n| crate::cpu::cpu_seconds(Some(n.node.pid())))
        .collect();
    let runner_cpu = crate::cpu::cpu_seconds(None)
        .zip(runner_cpu_start)
        .map(|(b, a)| b - a);
    let mut exits = Vec::new();
    let now = r.now();
    for slot in r.nodes.drain(..) {
        let exit = slot.node.teardown();
        if let Some(status) = exit.crashed {
            r.faults.push(NodeFault {
                node: exit.name.clone(),
                kind: "crashed",
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
        history: r.h,
        net: r.net.stats,
        dropped_replies: r.dropped_replies,
        journal: r.net.take_journal(),
        faults: r.faults,
        exits,
        setup_error,
        timeline: r.timeline,
        runner_cpu,
        node_cpu,
    }
}

impl Runner<'_> {
    fn now(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }
}

/// A seed of its own for each random part of the run (network, services, nemesis), so
/// that turning one on changes nothing in the others. Mixed (splitmix64's finaliser):
/// nearby seeds given to the generator must not give nearby streams.
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
