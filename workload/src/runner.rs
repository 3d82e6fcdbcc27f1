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

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::cli::Config;
use crate::client::{self, FinalState, Pending, Worker};
use crate::generator::{GenOp, Generator, Stagger};
use crate::history::{History, KeyId, OpType, OpValue, Pairs, PollResult};
use crate::lamport::MsgEvent;
use crate::nemesis::{self, Nemesis};
use crate::network::{Addr, NetStats, Network, Payload};
use crate::node::{Event, Exit, Node};
use crate::progress::Progress;
use crate::protocol::{self, Dest, Encoder, Inbound, Names, Reply};
use crate::services::{self, Services};
use crate::text::clip;

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

    fn new_client(&mut self) -> u64 {
        self.next_client += 1;
        self.next_client
    }

    /// Sends each node its `init` and waits up to 10 s for every `init_ok`.
    fn init(&mut self) -> Option<String> {
        let node_ids = self.cfg.node_ids.clone();
        for (i, name) in node_ids.iter().enumerate() {
            let c = self.new_client();
            self.init_clients.insert(c, i);
            let id = self.net.next_id();
            let client = format!("c{c}");
            let now = self.now();
            let slot = &mut self.nodes[i];
            let from = slot.out.len();
            Encoder::start(&mut slot.out, id, &client, name, "init", 1)
                .str_field("node_id", name)
                .strs_field("node_ids", node_ids.iter().map(String::as_str))
                .finish();
            let line = &slot.out[from..];
            self.net
                .note_client(now, id, &client, name, || body_text(line));
        }
        self.flush();
        // `--init-timeout`: Maelstrom waits 10 s for each node's `init_ok`.
        let deadline = self.now() + (self.cfg.opts.init_timeout * SEC as f64) as u64;
        while self.init_done.iter().any(Option::is_none) && !self.all_crashed {
            let now = self.now();
            if now >= deadline {
                break;
            }
            self.wait(deadline.min(now + 100 * MS));
        }
        // The init clients are closed: a late init_ok is an Invalid dest from here on.
        self.init_clients.clear();
        let mut errors = Vec::new();
        for (i, done) in self.init_done.iter().enumerate() {
            match done {
                Some(Ok(())) => {}
                Some(Err(e)) => errors.push(format!("{}: {e}", node_ids[i])),
                None if self.nodes[i].eof => errors.push(format!(
                    "{}: exited (or closed stdout) before answering init",
                    node_ids[i]
                )),
                None => errors.push(format!(
                    "{}: no init_ok within {} s (--init-timeout)",
                    node_ids[i], self.cfg.opts.init_timeout
                )),
            }
        }
        if errors.is_empty() {
            None
        } else {
            Some(format!("init failed: {}", errors.join("; ")))
        }
    }

    fn main_and_final(&mut self) {
        for thread in 0..self.cfg.concurrency {
            let c = self.new_client();
            self.clients.insert(c, thread);
            self.workers
                .push(Worker::new(thread, thread % self.nodes.len(), c));
            self.free.push(thread);
        }
        let opts = &self.cfg.opts;
        let secs = |s: f64| (s * SEC as f64) as u64;
        let (time_limit, sleep, final_limit) = (
            secs(opts.time_limit),
            secs(opts.recovery_sleep),
            secs(opts.final_time_limit),
        );
        self.timeline.main_start = self.now();
        let main_end = self.timeline.main_start + time_limit;
        if self.cfg.partitions {
            self.nemesis = Some(Nemesis::new(
                self.nodes.len(),
                self.cfg.nemesis_interval,
                self.timeline.main_start,
                sub_seed(self.cfg.seed, 3),
            ));
        }
        self.progress
            .phase("main", self.timeline.main_start, main_end);
        self.pump(Phase::Main, main_end);
        self.timeline.main_end = self.now();
        // Jepsen's final nemesis generator: heal, whatever the state, before the sleep.
        if let Some(mut n) = self.nemesis.take() {
            let op = n.heal();
            self.apply_nemesis(op);
        }
        if self.all_crashed {
            return;
        }
        self.progress.note("Waiting for recovery...");
        let sleep_start = self.now();
        let sleep_end = sleep_start + sleep;
        self.progress.phase("recovery", sleep_start, sleep_end);
        self.pump(Phase::Recovery, sleep_end);
        if self.all_crashed {
            return;
        }
        self.timeline.final_start = self.now();
        let final_end = self.timeline.final_start + final_limit;
        self.progress
            .phase("final", self.timeline.final_start, final_end);
        self.start_final();
        self.pump(Phase::Final, final_end);
        self.timeline.final_end = self.now();
    }

    /// Runs the event loop for one phase. Ops are issued until `end` (main, final) and
    /// then the loop drains what is in flight; the recovery phase just waits until `end`.
    fn pump(&mut self, phase: Phase, end: u64) {
        loop {
            let now = self.now();
            // Replies the readers read before the horizon are in the channel; handle them
            // before timing out anything due before it (a reply counts if it was read in time).
            let horizon = self.handed_over_before(now);
            while let Ok(batch) = self.events.try_recv() {
                self.handle(batch);
            }
            self.expire(horizon);
            let issuing = match phase {
                Phase::Main => now < end,
                Phase::Final => {
                    now < end
                        && self
                            .workers
                            .iter()
                            .any(|w| !matches!(w.fin, FinalState::Done))
                }
                Phase::Recovery => false,
            };
            let mut wake = now + 100 * MS;
            if phase == Phase::Main
                && now < end
                && let Some(n) = &mut self.nemesis
            {
                if n.due() <= now {
                    let op = n.step();
                    self.apply_nemesis(op);
                }
                wake = wake.min(self.nemesis.as_ref().map_or(u64::MAX, Nemesis::due));
            }
            if issuing {
                let due = match phase {
                    Phase::Main => self.dispatch_main(now),
                    _ => self.dispatch_final(now),
                };
                wake = wake.min(due).min(end);
            }
            self.flush();
            self.progress.draw(now, self.h.ops.len(), self.busy);
            if self.all_crashed {
                self.abandon_in_flight(now);
                return;
            }
            match phase {
                Phase::Recovery if now >= end => return,
                Phase::Recovery => wake = wake.min(end),
                _ if !issuing && self.busy == 0 => return,
                _ => {}
            }
            if let Some(&(d, _, _)) = self.timeouts.front() {
                // A deadline held back by a reader still busy with earlier lines: look again soon.
                wake = wake.min(d.max(now + MS));
            }
            self.wait(wake);
        }
    }

    /// Partitions or heals the network, and records it in the history as Jepsen does: an
    /// `:info` invocation and an `:info` completion by the `nemesis` process.
    fn apply_nemesis(&mut self, op: nemesis::Op) {
        let now = self.now();
        let (f, invoke, done) = match &op {
            nemesis::Op::Start(shape, grudge) => {
                self.net.partition(grudge);
                self.timeline.partitions.push((now, u64::MAX));
                (
                    "start-partition",
                    serde_json::json!(shape.name()),
                    grudge.to_json(&self.cfg.node_ids),
                )
            }
            nemesis::Op::Stop => {
                self.net.heal();
                if let Some(span) = self.timeline.partitions.last_mut()
                    && span.1 == u64::MAX
                {
                    span.1 = now;
                }
                (
                    "stop-partition",
                    serde_json::Value::Null,
                    serde_json::json!("network-healed"),
                )
            }
        };
        self.progress.note(&format!("nemesis: {op}"));
        self.h.push_nemesis(now, f, invoke);
        self.h.push_nemesis(now, f, done);
    }

    /// Blocks until events arrive or `until`, then handles everything available.
    fn wait(&mut self, until: u64) {
        let until = until.min(self.net.next_deadline().unwrap_or(u64::MAX));
        let now = self.now();
        let first = if until > now {
            self.events.recv_timeout(Duration::from_nanos(until - now))
        } else {
            self.events
                .try_recv()
                .map_err(|_| RecvTimeoutError::Timeout)
        };
        match first {
            Ok(batch) => self.handle(batch),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                // Every reader is gone: all nodes closed stdout. Sleep so we do not spin.
                std::thread::sleep(Duration::from_nanos(until.saturating_sub(now).min(10 * MS)));
                self.check_crashed();
            }
        }
        while let Ok(batch) = self.events.try_recv() {
            self.handle(batch);
        }
        self.deliver();
        self.flush();
    }

    /// Hands every message that is due to its node or service.
    fn deliver(&mut self) {
        if self.net.next_deadline().is_none() {
            return;
        }
        let now = self.now();
        let nodes = self.nodes.len();
        while let Some(msg) = self.net.pop_due(now) {
            match &msg.payload {
                Payload::Line(line) => self.nodes[msg.dest].out.extend_from_slice(line),
                Payload::Body(body) if msg.dest < nodes => {
                    let (src, dest) = (self.net.name(msg.src), self.net.name(msg.dest));
                    let out = &mut self.nodes[msg.dest].out;
                    crate::network::envelope(out, msg.id, src, dest, body);
                }
                Payload::Body(body) => self.serve(now, msg.src, msg.dest, body),
            }
        }
    }

    /// A request to a service; its reply travels back over the network. A request the
    /// service does not understand gets no reply, as in Maelstrom.
    fn serve(&mut self, now: u64, src: Addr, service: Addr, body: &str) {
        let Ok(body) = serde_json::from_str::<serde_json::Value>(body) else {
            return;
        };
        let (name, node) = (self.net.name(service), self.net.name(src));
        if let Some(reply) = self.services.handle(name, node, &body) {
            self.net
                .send(now, service, src, reply.to_string().into_boxed_str());
        }
    }

    fn handle(&mut self, batch: Vec<Event>) {
        for ev in batch {
            match ev {
                Event::Line {
                    node,
                    msg,
                    body,
                    read_at,
                } => {
                    if self.nodes[node].stdout_dead {
                        continue;
                    }
                    let read_at = read_at.saturating_duration_since(self.origin).as_nanos() as u64;
                    match msg {
                        Inbound::Reply {
                            dest,
                            in_reply_to,
                            reply,
                        } => self.route(node, dest, Some((in_reply_to, reply)), body, read_at),
                        Inbound::Other { dest } => self.route(node, dest, None, body, read_at),
                    }
                }
                Event::Invalid { node, line, reason } => self.kill_stdout(
                    node,
                    "invalid-stdout-line",
                    format!("{reason}: {}", clip(&line, 200)),
                ),
                Event::Eof { node } => {
                    self.nodes[node].eof = true;
                    self.check_crashed();
                }
            }
        }
    }

    /// A time before which every line the nodes printed has been handed to the scheduler
    /// (see [`Node::handed_over_before`]), at most `now`. Nodes whose stdout ended or is dead
    /// have nothing more to say.
    fn handed_over_before(&self, now: u64) -> u64 {
        self.nodes
            .iter()
            .filter(|n| !n.eof && !n.stdout_dead)
            .map(|n| {
                let at = n.node.handed_over_before();
                at.saturating_duration_since(self.origin).as_nanos() as u64
            })
            .fold(now, u64::min)
    }

    /// When every node's stdout hit EOF and the processes exited, nothing can answer any
    /// more: the run stops early instead of waiting out its phases.
    fn check_crashed(&mut self) {
        if self
            .nodes
            .iter_mut()
            .all(|n| n.eof && n.node.exited().is_some())
        {
            self.all_crashed = true;
        }
    }

    fn abandon_in_flight(&mut self, now: u64) {
        for w in 0..self.workers.len() {
            if !matches!(self.workers[w].pending, Pending::Idle) {
                self.fail_pending(w, now, "node crashed".into(), false);
            }
        }
    }

    fn kill_stdout(&mut self, node: usize, kind: &'static str, detail: String) {
        let slot = &mut self.nodes[node];
        if slot.stdout_dead {
            return;
        }
        slot.stdout_dead = true;
        let name = slot.node.name.clone();
        self.progress.note(&format!(
            "Error! {name}'s stdout is dead from now on, as in Maelstrom ({kind}): {detail}"
        ));
        let time = self.now();
        self.faults.push(NodeFault {
            node: name,
            kind,
            detail,
            time,
        });
    }

    fn route(
        &mut self,
        node: usize,
        dest: Dest,
        reply: Option<(u64, Reply)>,
        body: Option<String>,
        read_at: u64,
    ) {
        match dest {
            Dest::Node(to) | Dest::Service(to) => {
                let now = self.now();
                self.net
                    .send(now, node, to, body.unwrap_or_default().into_boxed_str());
            }
            Dest::Client(c) => {
                if let Some(&w) = self.clients.get(&c)
                    && !matches!(self.workers[w].pending, Pending::Idle)
                    && self.workers[w].deadline <= read_at
                {
                    // Read after the client gave up, though the scheduler had not got to the
                    // timeout yet: the op timed out, and the reply goes to a closed client.
                    let now = self.now();
                    self.fail_pending(w, now, "timeout".into(), false);
                }
                let live = self.clients.get(&c).copied();
                let init = self.init_clients.get(&c).copied();
                if live.is_some() || init.is_some() {
                    let id = self.net.next_id();
                    if self.net.wants_client_detail() {
                        let now = self.now();
                        let (src, client) = (&self.nodes[node].node.name, format!("c{c}"));
                        self.net
                            .note_client(now, id, src, &client, || body.unwrap_or_default());
                    } else {
                        self.net.count_client();
                    }
                }
                if let Some(w) = live {
                    match reply {
                        Some((irt, reply)) => self.on_reply(w, irt, reply),
                        None => self.dropped_replies += 1,
                    }
                } else if let Some(n) = init {
                    match reply {
                        Some((1, Reply::InitOk)) => self.init_done[n] = Some(Ok(())),
                        Some((1, other)) => {
                            self.init_done[n] =
                                Some(Err(format!("expected init_ok, got {other:?}")))
                        }
                        _ => self.dropped_replies += 1,
                    }
                } else {
                    self.kill_stdout(
                        node,
                        "invalid-dest",
                        format!("Invalid dest for message: client c{c} is not on the network (it gave up or was replaced)"),
                    );
                }
            }
            Dest::Unknown(name) => {
                let from = &self.nodes[node].node.name;
                let what = clip(body.as_deref().unwrap_or("?"), 200);
                let detail = format!(
                    "Invalid dest for message: {from} sent {what} to {name:?}, which is not on the network"
                );
                self.kill_stdout(node, "invalid-dest", detail);
            }
        }
    }

    fn flush(&mut self) {
        for slot in &mut self.nodes {
            if !slot.out.is_empty() {
                slot.node.send(std::mem::take(&mut slot.out));
            }
        }
    }

    /// Writes one request from worker `w`, registers its timeout, returns its msg_id.
    fn request(
        &mut self,
        w: usize,
        now: u64,
        ty: &str,
        body: impl for<'e> FnOnce(Encoder<'e>, &History) -> Encoder<'e>,
    ) -> u64 {
        let worker = &mut self.workers[w];
        let msg_id = worker.next_request();
        let id = self.net.next_id();
        let slot = &mut self.nodes[worker.node];
        let from = slot.out.len();
        let enc = Encoder::start(
            &mut slot.out,
            id,
            &worker.client_name,
            &slot.node.name,
            ty,
            msg_id,
        );
        body(enc, &self.h).finish();
        worker.deadline = now + self.timeout;
        self.timeouts.push_back((worker.deadline, w, worker.seq));
        let line = &slot.out[from..];
        self.net
            .note_client(now, id, &worker.client_name, &slot.node.name, || {
                body_text(line)
            });
        // Behind a peer message the node's inbox has taken, the request waits its turn.
        if !self.net.is_idle(worker.node) {
            let line = slot.out.split_off(from);
            self.net.queue_client_line(now, id, worker.node, line);
        }
        msg_id
    }

    fn take_free(&mut self) -> usize {
        let i = self.rng.usize(..self.free.len());
        self.free.swap_remove(i)
    }

    /// Issues main-phase ops that are due. Returns when the next one is due.
    fn dispatch_main(&mut self, now: u64) -> u64 {
        if self.crashes.due(now) <= now && !self.free.is_empty() {
            let w = self.take_free();
            self.crash(w, now);
            self.free.push(w);
            self.crashes.issued(now, 0, &mut self.rng);
        }
        while !self.free.is_empty() && self.rate.due(now) <= now {
            let w = self.take_free();
            let op = self.generator.next(&mut self.rng);
            self.start(w, op, now);
            self.rate.issued(now, RATE_SLACK, &mut self.rng);
        }
        let mut due = self.crashes.due(now);
        if !self.free.is_empty() {
            due = due.min(self.rate.due(now));
        }
        due
    }

    fn key_of(&mut self, k: u64) -> KeyId {
        self.h.tables.key(&k.to_string())
    }

    fn start(&mut self, w: usize, op: GenOp, now: u64) {
        self.busy += 1;
        let process = self.workers[w].process;
        match op {
            GenOp::Send { key, msg } => {
                let key = self.key_of(key);
                let m = self.h.tables.msg(&protocol::RawMsg::Int(msg));
                self.h.push(
                    now,
                    process,
                    OpType::Invoke,
                    OpValue::Send {
                        key,
                        offset: None,
                        msg: m,
                    },
                    None,
                );
                let msg_id = self.request(w, now, "send", |e, h| {
                    e.str_field("key", h.tables.key_name(key))
                        .int_field("msg", msg)
                });
                self.workers[w].pending = Pending::Send {
                    key,
                    msg: m,
                    msg_id,
                };
            }
            GenOp::Poll => self.start_poll(w, now),
            GenOp::Assign { key, unseen } => {
                let first = self.key_of(key);
                let mut keys = vec![first];
                keys.extend(unseen.into_iter().filter(|k| *k != first));
                let keys: Box<[KeyId]> = keys.into();
                self.h.push(
                    now,
                    process,
                    OpType::Invoke,
                    OpValue::Assign {
                        keys: keys.clone(),
                        seek_to_beginning: false,
                    },
                    None,
                );
                let msg_id = self.request(w, now, "list_committed_offsets", |e, h| {
                    e.strs_field("keys", keys.iter().map(|k| h.tables.key_name(*k)))
                });
                self.workers[w].pending = Pending::Assign { keys, msg_id };
            }
        }
    }

    fn start_poll(&mut self, w: usize, now: u64) {
        let process = self.workers[w].process;
        self.h
            .push(now, process, OpType::Invoke, OpValue::Poll(None), None);
        let offsets = std::mem::take(&mut self.workers[w].offsets);
        let msg_id = self.request(w, now, "poll", |e, h| {
            e.offsets_field(
                "offsets",
                offsets.iter().map(|(k, o)| (h.tables.key_name(*k), *o)),
            )
        });
        self.workers[w].offsets = offsets;
        self.workers[w].pending = Pending::Poll { msg_id };
    }

    /// A `crash` op: always `:info`, and the worker gets a fresh process and client.
    fn crash(&mut self, w: usize, now: u64) {
        let process = self.workers[w].process;
        self.h
            .push(now, process, OpType::Invoke, OpValue::Crash, None);
        self.h
            .push(now, process, OpType::Info, OpValue::Crash, None);
        self.replace_client(w);
    }

    fn replace_client(&mut self, w: usize) {
        let c = self.new_client();
        self.clients.remove(&self.workers[w].client);
        self.workers[w].replace(c, self.cfg.concurrency as u64);
        self.clients.insert(c, w);
    }

    fn expire(&mut self, now: u64) {
        while let Some(&(deadline, w, seq)) = self.timeouts.front() {
            if deadline > now {
                break;
            }
            self.timeouts.pop_front();
            let worker = &self.workers[w];
            if worker.seq == seq && !matches!(worker.pending, Pending::Idle) {
                self.fail_pending(w, now, "timeout".into(), false);
            }
        }
    }

    /// Ends worker `w`'s op without a usable reply: a definite error fails it, anything
    /// else (timeout, indefinite error, malformed reply) leaves it indeterminate. `assign`
    /// is idempotent in Maelstrom, so it always just fails.
    fn fail_pending(&mut self, w: usize, now: u64, error: String, definite: bool) {
        if let Some((kind, value)) = self.workers[w].give_up(definite) {
            self.complete(w, now, kind, value, Some(error.into()));
        }
    }

    fn complete(
        &mut self,
        w: usize,
        now: u64,
        kind: OpType,
        value: OpValue,
        error: Option<Box<str>>,
    ) {
        let process = self.workers[w].process;
        self.workers[w].seq += 1;
        self.h.push(now, process, kind, value, error);
        if kind == OpType::Info {
            self.replace_client(w);
        }
        self.busy -= 1;
        if matches!(self.workers[w].fin, FinalState::NotStarted) {
            self.free.push(w);
        }
    }

    fn on_reply(&mut self, w: usize, irt: u64, reply: Reply) {
        if self.workers[w].pending.msg_id() != Some(irt) {
            // Maelstrom's client skips replies to anything but its current request.
            self.dropped_replies += 1;
            return;
        }
        let now = self.now();
        let pending = std::mem::replace(&mut self.workers[w].pending, Pending::Idle);
        match (pending, reply) {
            (Pending::Send { key, msg, .. }, Reply::SendOk { offset }) => {
                self.generator.sent_ok(key, offset);
                self.complete(
                    w,
                    now,
                    OpType::Ok,
                    OpValue::Send {
                        key,
                        offset: Some(offset),
                        msg,
                    },
                    None,
                );
            }
            (Pending::Poll { .. }, Reply::PollOk { msgs }) => self.poll_ok(w, now, msgs),
            (Pending::Commit { msgs, .. }, Reply::CommitOffsetsOk) => self.poll_done(w, now, msgs),
            (Pending::Assign { keys, .. }, Reply::ListCommittedOffsetsOk { .. }) => {
                self.workers[w].assigned(&keys);
                self.complete(
                    w,
                    now,
                    OpType::Ok,
                    OpValue::Assign {
                        keys,
                        seek_to_beginning: false,
                    },
                    None,
                );
            }
            (pending, reply) => {
                let (error, definite) = client::reply_error(reply);
                self.workers[w].pending = pending;
                self.fail_pending(w, now, error, definite);
            }
        }
    }

    /// A `poll_ok`: advance the client's offsets, then commit what it read, if anything.
    fn poll_ok(&mut self, w: usize, now: u64, msgs: protocol::RawPolled) {
        let msgs: PollResult = msgs
            .into_iter()
            .map(|(k, pairs)| {
                let key = self.h.tables.key(&k);
                let pairs: Pairs = pairs
                    .iter()
                    .map(|(o, m)| (*o, self.h.tables.msg(m)))
                    .collect();
                (key, pairs)
            })
            .collect();
        let commit = self.workers[w].advance(&msgs);
        if commit.is_empty() {
            self.poll_done(w, now, msgs);
            return;
        }
        let msg_id = self.request(w, now, "commit_offsets", |e, h| {
            e.offsets_field(
                "offsets",
                commit.iter().map(|(k, o)| (h.tables.key_name(*k), *o)),
            )
        });
        self.workers[w].pending = Pending::Commit { msg_id, msgs };
    }

    fn poll_done(&mut self, w: usize, now: u64, msgs: PollResult) {
        for (k, pairs) in msgs.iter() {
            let max = pairs.max_offset().unwrap_or(-1);
            self.generator.polled_ok(*k, max);
        }
        self.workers[w].final_progress(&msgs);
        self.complete(w, now, OpType::Ok, OpValue::Poll(Some(msgs)), None);
    }

    /// Every worker crashes its client, assigns all keys from offset 0 and starts polling.
    fn start_final(&mut self) {
        let now = self.now();
        let targets = self.generator.max_offsets().clone();
        let mut keys: Vec<KeyId> = targets.keys().copied().collect();
        keys.sort();
        let keys: Box<[KeyId]> = keys.into();
        self.free.clear();
        for w in 0..self.workers.len() {
            self.crash(w, now);
            let process = self.workers[w].process;
            let value = OpValue::Assign {
                keys: keys.clone(),
                seek_to_beginning: true,
            };
            self.h
                .push(now, process, OpType::Invoke, value.clone(), None);
            self.workers[w].offsets = keys.iter().map(|k| (*k, 0)).collect();
            self.h.push(now, process, OpType::Ok, value, None);
            self.workers[w].fin = if targets.is_empty() {
                FinalState::Done
            } else {
                FinalState::Polling {
                    targets: targets.clone(),
                    stagger: Stagger::new(FINAL_POLL_MEAN),
                }
            };
        }
    }

    /// Issues final-phase polls that are due. Returns when the next one is due.
    fn dispatch_final(&mut self, now: u64) -> u64 {
        let mut next = u64::MAX;
        for w in 0..self.workers.len() {
            if !matches!(self.workers[w].pending, Pending::Idle) {
                continue;
            }
            let FinalState::Polling { stagger, .. } = &mut self.workers[w].fin else {
                continue;
            };
            let due = stagger.due(now);
            if due <= now {
                stagger.issued(now, 0, &mut self.rng);
                self.busy += 1;
                self.start_poll(w, now);
            } else {
                next = next.min(due);
            }
        }
        next
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
