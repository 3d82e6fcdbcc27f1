//! The scheduler's rules on simulated time: the runner's own code (phases, pump, clients,
//! router) driven by a [`SimClock`] that moves only when the scheduler waits, against
//! scripted nodes ([`SimNodes`]) that answer requests after chosen delays. No process is
//! started and nothing sleeps, so a 2-minute run takes milliseconds.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::clients::TimeoutQueue;
use super::io::Received;
use super::{Clock, InitFailed, MS, Pipes, Runner, SEC, SetupError};
use crate::cli::{self, Config};
use crate::client::Pending;
use crate::generator::GenOp;
use crate::history::{F, KeyId, Line, OpType, OpValue};
use crate::node::Event;
use crate::protocol::{self, Names};
use crate::services;

/// Simulated time, shared by the runner and the scripted nodes.
#[derive(Debug, Clone)]
struct SimClock {
    origin: Instant,
    now: Rc<Cell<u64>>,
    /// A run that goes on past this broke a rule that should have ended a phase.
    limit: u64,
}

impl SimClock {
    fn new(limit_secs: u64) -> SimClock {
        SimClock {
            origin: Instant::now(),
            now: Rc::new(Cell::new(0)),
            limit: limit_secs * SEC,
        }
    }

    fn advance_to(&self, t: u64) {
        assert!(
            t <= self.limit,
            "simulated time ran past {} s: a phase did not end",
            self.limit / SEC
        );
        self.now.set(self.now.get().max(t));
    }

    /// The instant a reader would have stamped at simulated time `t`.
    fn instant(&self, t: u64) -> Instant {
        self.origin + Duration::from_nanos(t)
    }
}

impl Clock for SimClock {
    fn now(&self) -> u64 {
        self.now.get()
    }

    fn since_origin(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.origin).as_nanos() as u64
    }

    fn sleep(&self, ns: u64) {
        self.advance_to(self.now() + ns);
    }
}

/// One request a scripted node read.
#[derive(Debug, Clone)]
struct Request {
    time: u64,
    node: usize,
    /// The client, `c<N>`.
    src: String,
    body: Value,
}

/// What a scripted node does with a request: answer with this body after this many ns, or
/// say nothing.
type Script = Box<dyn FnMut(&Request) -> Option<(u64, Value)>>;

/// Nodes that answer by script. A reply becomes a line read at its time; the runner gets
/// it when it next looks at or waits for its pipes.
struct SimNodes {
    clock: SimClock,
    names: Names,
    script: Script,
    /// Lines printed and not yet handed over, by (read at, order printed).
    printed: BTreeMap<(u64, u64), (usize, String)>,
    printed_count: u64,
    /// Every request any node got, in order.
    requests: Rc<RefCell<Vec<Request>>>,
    /// Waits in a row that returned at once with nothing: a scheduler that spins.
    idle_waits: u32,
    /// Per node, a stdin pipe of bounded size that the node reads slowly; without it every
    /// line is read the moment it is written.
    slow: Option<Vec<SlowStdin>>,
    /// Each node tells the next one about every client request it reads, so that peer
    /// messages share the nodes' inboxes with client requests.
    gossip: bool,
}

/// A node's stdin pipe holding `capacity` bytes, which the node empties into its own
/// buffer every `gap` ns, handling at most one whole line each time, and what the runner
/// could not write into the pipe yet (its `Stdin` backlog).
#[derive(Debug, Default)]
struct SlowStdin {
    capacity: usize,
    gap: u64,
    pipe: Vec<u8>,
    /// What the node took from the pipe and has not handled yet.
    taken: Vec<u8>,
    /// Before this time the node reads every 0.1 ms, whatever `gap` says.
    slow_from: u64,
    backlog: Vec<u8>,
    /// When the node reads its next line, if the pipe holds one by then.
    next_read: u64,
    /// (time, client requests with some bytes in the backlog) after every write.
    held: Vec<(u64, usize)>,
}

impl SlowStdin {
    fn new(capacity: usize, gap: u64) -> SlowStdin {
        SlowStdin {
            capacity,
            gap,
            ..SlowStdin::default()
        }
    }

    /// The runner writes: the pipe takes what fits, the rest stays behind.
    fn write(&mut self, now: u64, bytes: &[u8]) -> bool {
        let idle = self.next().is_none();
        self.backlog.extend_from_slice(bytes);
        let n = self.backlog.len().min(self.capacity - self.pipe.len());
        self.pipe.extend(self.backlog.drain(..n));
        if idle {
            self.next_read = self.next_read.max(now);
        }
        // Client requests with bytes behind: the runner writes whole lines, so each ends
        // in the backlog, and only peer messages end in their type, gossip.
        let requests = self
            .backlog
            .split(|b| *b == b'\n')
            .filter(|line| !line.is_empty() && !line.ends_with(b"\"gossip\"}}"))
            .count();
        self.held.push((now, requests));
        !self.backlog.is_empty()
    }

    /// When the node next reads, if it has anything to read.
    fn next(&self) -> Option<u64> {
        (!self.pipe.is_empty() || self.taken.contains(&b'\n')).then_some(self.next_read)
    }

    /// The node empties the pipe and handles a line if it has a whole one.
    fn read(&mut self) -> Option<String> {
        self.taken.append(&mut self.pipe);
        self.next_read += if self.next_read < self.slow_from {
            MS / 10
        } else {
            self.gap
        };
        let end = self.taken.iter().position(|b| *b == b'\n')? + 1;
        let line = self.taken.drain(..end).collect();
        Some(String::from_utf8(line).expect("the runner writes UTF-8"))
    }
}

impl SimNodes {
    /// `node` reads `line` at `time`, and answers by its script.
    fn read_line(&mut self, node: usize, line: &str, time: u64) {
        let v: Value = serde_json::from_str(line).expect("the runner writes JSON lines");
        let request = Request {
            time,
            node,
            src: v["src"].as_str().unwrap_or_default().to_owned(),
            body: v["body"].clone(),
        };
        if let Some((delay, mut body)) = (self.script)(&request) {
            body["in_reply_to"] = request.body["msg_id"].clone();
            let reply = json!({
                "src": self.names.node_ids()[node],
                "dest": request.src,
                "body": body,
            });
            self.printed_count += 1;
            self.printed.insert(
                (request.time + delay, self.printed_count),
                (node, reply.to_string()),
            );
        }
        let ids = self.names.node_ids();
        if self.gossip && request.src.starts_with('c') {
            let to = &ids[(node + 1) % ids.len()];
            let gossip = json!({"src": ids[node], "dest": to, "body": {"type": "gossip"}});
            self.printed_count += 1;
            self.printed
                .insert((time, self.printed_count), (node, gossip.to_string()));
        }
        self.requests.borrow_mut().push(request);
    }

    /// The slow nodes' next read, if any: (time, node).
    fn next_read(&self) -> Option<(u64, usize)> {
        let slow = self.slow.as_ref()?;
        (0..slow.len())
            .filter_map(|i| Some((slow[i].next()?, i)))
            .min()
    }

    /// The slow nodes read every line they would have read by `until`, in time order;
    /// the clock moves to each read.
    fn read_until(&mut self, until: u64) {
        while let Some((t, node)) = self.next_read().filter(|(t, _)| *t <= until) {
            self.clock.advance_to(t);
            if let Some(line) = self.slow.as_mut().expect("slow")[node].read() {
                self.read_line(node, line.trim_end(), t);
            }
        }
    }

    /// Every line due by now, as the readers would hand them over.
    fn take_due(&mut self) -> Vec<Event> {
        let now = self.clock.now();
        let mut batch = Vec::new();
        while let Some(entry) = self.printed.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((read_at, _), (node, line)) = entry.remove_entry();
            let event = match protocol::parse_line(&line, &self.names) {
                Ok(msg) => Event::Line {
                    node,
                    msg,
                    body: Some(protocol::envelope_body(&line).unwrap_or(&line).to_owned()),
                    read_at: self.clock.instant(read_at),
                },
                Err(e) => Event::Invalid {
                    node,
                    line,
                    reason: e.0,
                },
            };
            batch.push(event);
        }
        batch
    }
}

impl Pipes for SimNodes {
    fn nodes(&self) -> usize {
        self.names.node_ids().len()
    }

    fn retry(&mut self, node: usize) -> bool {
        let now = self.clock.now();
        self.slow
            .as_mut()
            .is_some_and(|slow| slow[node].write(now, &[]))
    }

    fn send(&mut self, node: usize, bytes: &[u8]) -> bool {
        let now = self.clock.now();
        if let Some(slow) = &mut self.slow {
            return slow[node].write(now, bytes);
        }
        let text = std::str::from_utf8(bytes).expect("the runner writes UTF-8");
        for line in text.lines() {
            self.read_line(node, line, now);
        }
        false
    }
    fn recv(&mut self, now: u64, until: u64) -> Received {
        // Reads due before the next reply is printed happen first: they may print earlier.
        loop {
            let printed = self.printed.keys().next().map_or(u64::MAX, |k| k.0);
            match self.next_read() {
                Some((t, _)) if t <= printed.min(until.max(now)) => self.read_until(t),
                _ => break,
            }
        }
        let next = self.printed.keys().next().map(|k| k.0);
        match next {
            Some(t) if t <= until.max(now) => {
                self.idle_waits = 0;
                self.clock.advance_to(t);
                Received::Batch(self.take_due())
            }
            _ if until > now => {
                self.idle_waits = 0;
                self.clock.advance_to(until);
                Received::Timeout
            }
            _ => {
                self.idle_waits += 1;
                assert!(
                    self.idle_waits < 10_000,
                    "the scheduler spins: it keeps waiting until a time already past"
                );
                Received::Timeout
            }
        }
    }

    fn try_recv(&mut self) -> Option<Vec<Event>> {
        self.read_until(self.clock.now());
        let batch = self.take_due();
        (!batch.is_empty()).then_some(batch)
    }

    fn handed_over_before(&self, _node: usize) -> Instant {
        // Lines are handed over the moment they are read.
        self.clock.instant(self.clock.now())
    }

    fn exited(&mut self, _node: usize) -> bool {
        false
    }
}

/// A correct kafka node (one log per key, shared by every node), answering after `delay`
/// ns. `send`s of a message in `silent` get no answer.
fn kafka(delay: impl Fn(&Request) -> u64 + 'static) -> Script {
    kafka_paged(delay, usize::MAX)
}

/// [`kafka`] whose polls return at most `page` pairs a key.
fn kafka_paged(delay: impl Fn(&Request) -> u64 + 'static, page: usize) -> Script {
    let mut logs: HashMap<String, Vec<Value>> = HashMap::new();
    Box::new(move |r| {
        let body = match r.body["type"].as_str()? {
            "init" => json!({"type": "init_ok"}),
            "send" => {
                let log = logs.entry(r.body["key"].as_str()?.to_owned()).or_default();
                log.push(r.body["msg"].clone());
                json!({"type": "send_ok", "offset": log.len() - 1})
            }
            "poll" => {
                let mut msgs = serde_json::Map::new();
                for (k, from) in r.body["offsets"].as_object()? {
                    let from = from.as_u64()? as usize;
                    let log = logs.get(k).map_or(&[][..], Vec::as_slice);
                    let pairs: Vec<Value> = (from..log.len().min(from.saturating_add(page)))
                        .map(|o| json!([o, log[o].clone()]))
                        .collect();
                    msgs.insert(k.clone(), pairs.into());
                }
                json!({"type": "poll_ok", "msgs": msgs})
            }
            "commit_offsets" => json!({"type": "commit_offsets_ok"}),
            "list_committed_offsets" => json!({"type": "list_committed_offsets_ok", "offsets": {}}),
            _ => return None,
        };
        Some((delay(r), body))
    })
}

/// A test's options: `args` (split at spaces) after `test --bin sim --seed 1`.
fn config(args: &str) -> Config {
    let base = "kafka-workload test --bin sim --seed 1 --no-progress";
    cli::parse_args(base.split(' ').chain(args.split(' '))).expect("test options parse")
}

struct Sim<'a> {
    runner: Runner<'a, SimClock, SimNodes>,
    clock: SimClock,
    requests: Rc<RefCell<Vec<Request>>>,
}

/// A runner on simulated time against nodes that follow `script`; the clock refuses to
/// pass `limit_secs`.
fn sim(cfg: &Config, script: Script, limit_secs: u64) -> Sim<'_> {
    let clock = SimClock::new(limit_secs);
    let names = Names::with_services(
        cfg.node_ids.clone(),
        services::NAMES.iter().map(|s| s.to_string()).collect(),
    );
    let requests = Rc::new(RefCell::new(Vec::new()));
    let nodes = SimNodes {
        clock: clock.clone(),
        names: names.clone(),
        script,
        printed: BTreeMap::new(),
        printed_count: 0,
        requests: Rc::clone(&requests),
        idle_waits: 0,
        slow: None,
        gossip: false,
    };
    Sim {
        runner: Runner::new(cfg, clock.clone(), nodes, &names),
        clock,
        requests,
    }
}

/// The whole run after setup: init, then every phase.
fn run(cfg: &Config, script: Script, limit_secs: u64) -> Sim<'_> {
    let mut s = sim(cfg, script, limit_secs);
    s.runner.init().expect("the scripted nodes answer init");
    s.runner.main_and_final();
    s
}

/// The history's invocations and completions, in order.
fn ops<'s>(s: &'s Sim<'_>) -> Vec<Line<'s>> {
    s.runner.history.lines().collect()
}

/// Client invocations other than crashes, with their times.
fn invocations<'s>(s: &'s Sim<'_>) -> Vec<Line<'s>> {
    ops(s)
        .into_iter()
        .filter(|o| o.kind == OpType::Invoke && o.f() != F::Crash)
        .collect()
}

#[test]
fn the_timeout_queue_gives_deadlines_in_order_and_only_when_due() {
    let mut q = TimeoutQueue::default();
    assert_eq!(q.next_deadline(), None);
    q.push(10, 0, 1);
    q.push(10, 1, 1);
    q.push(25, 0, 2);
    assert_eq!(q.next_deadline(), Some(10));
    assert_eq!(q.pop_due(9), None, "nothing is due before its deadline");
    assert_eq!(q.pop_due(10).map(|t| t.worker), Some(0));
    assert_eq!(q.pop_due(10).map(|t| (t.worker, t.seq)), Some((1, 1)));
    assert_eq!(q.pop_due(24), None);
    assert_eq!(q.pop_due(u64::MAX).map(|t| t.deadline), Some(25));
    assert_eq!(q.pop_due(u64::MAX), None);
}

/// The timeout queue drops entries whose requests were answered, so it holds about one
/// entry per worker rather than every request of the last 5 s, and the requests that are
/// never answered still time out, each once, among thousands that are answered at once.
#[test]
fn the_timeout_queue_keeps_only_live_entries_and_still_times_out_each_unanswered_request() {
    let cfg = config(
        "--node-count 1 --concurrency 8 --rate 2000 --time-limit 20 --recovery-sleep 0 --final-time-limit 0",
    );
    // The first two sends a node reads from 5 s and from 12 s on are never answered;
    // everything else is, after 1 ms, so the other six workers go on meanwhile. A send is
    // its key and message (each key's messages are 1, 2, ...).
    let silenced = Rc::new(RefCell::new(Vec::new()));
    let mut node = kafka(|_| MS);
    let script: Script = Box::new({
        let silenced = Rc::clone(&silenced);
        move |r| {
            let n = silenced.borrow().len();
            let due = [5 * SEC, 12 * SEC].iter().filter(|t| r.time >= **t).count();
            if r.body["type"] == "send" && n < 2 * due {
                let send = (r.body["key"].as_str()?.to_owned(), r.body["msg"].as_u64()?);
                silenced.borrow_mut().push(send);
                return None;
            }
            node(r)
        }
    });
    let s = run(&cfg, script, 60);
    let silenced = silenced.borrow();
    let (mut answered, mut timed_out) = (0, 0);
    for op in s.runner.history.ops.iter() {
        let OpValue::Send { key, msg, .. } = op.value else {
            continue;
        };
        let send = (
            s.runner.history.tables.key_name(key).to_owned(),
            s.runner.history.tables.msg_value(msg).as_u64().unwrap(),
        );
        let error = s.runner.history.error(op);
        if silenced.contains(&send) {
            assert_eq!(
                (op.kind, error),
                (OpType::Info, Some("timeout")),
                "{send:?}"
            );
            // At its deadline (simulated time), not later, e.g. at the run's end.
            let (invoked, _) = s.runner.history.invoked_at(op).unwrap();
            let late = op.time - (invoked + 5 * SEC);
            assert!(
                late <= MS,
                "{send:?} timed out {late} ns after its deadline"
            );
            timed_out += 1;
        } else {
            assert_eq!((op.kind, error), (OpType::Ok, None), "{send:?}");
            answered += 1;
        }
    }
    assert_eq!(
        timed_out,
        silenced.len(),
        "each unanswered send times out once"
    );
    assert!(
        answered > 5_000 && timed_out == 4,
        "{answered} answered, {timed_out} timed out"
    );
    // Without dropping stale entries, 5 s of requests at about 2,000/s would be queued.
    let cap = s.runner.clients.timeouts.capacity();
    assert!(cap <= 256, "the timeout queue grew to {cap} entries");
}

/// An assign's keys are kept in the history to the run's end, at their size: a third of
/// the assigns name every key with unseen messages (hundreds on three nodes).
#[test]
fn an_assigns_keys_are_kept_at_their_size() {
    let cfg = config("--node-count 1 --concurrency 1");
    let mut s = sim(&cfg, kafka(|_| 0), 60);
    s.runner.init().unwrap();
    s.runner.open_clients();
    s.runner.clients.free.clear();
    let unseen: Vec<KeyId> = (0..100)
        .map(|k| s.runner.history.tables.key(&k.to_string()))
        .collect();
    let t0 = s.clock.now();
    s.runner.start(0, GenOp::Assign { key: 7, unseen }, t0);
    let Some(OpValue::Assign { keys, .. }) = ops(&s).pop().map(|o| o.value.into_owned()) else {
        panic!("an assign was invoked");
    };
    assert_eq!(keys.len(), 100, "key 7 named once");
    assert!(
        keys.capacity() <= 101,
        "{} keys held in room for {}",
        keys.len(),
        keys.capacity()
    );
}

/// Maelstrom's client waits 5 s; then the op is indeterminate (`:info`) and the worker's
/// process is over, but its client stays on the network until the worker invokes its next
/// operation: a reply in between is ignored, harmlessly. The next operation gets a new
/// process and a new client.
#[test]
fn a_reply_after_the_timeout_but_before_the_workers_next_op_is_ignored() {
    let cfg = config("--node-count 1 --concurrency 1");
    // Sends are answered, but after 6 s; polls at once.
    let script = kafka(|r| if r.body["type"] == "send" { 6 * SEC } else { 0 });
    let mut s = sim(&cfg, script, 60);
    s.runner.init().unwrap();
    s.runner.open_clients();
    let t0 = s.clock.now();
    let (old_client, old_process) = {
        let w = &s.runner.clients.workers[0];
        (w.client, w.process)
    };
    s.runner.clients.free.clear();
    s.runner.start(0, GenOp::Send { key: 0, msg: 1 }, t0);
    s.runner.flush();

    s.runner.expire(t0 + 5 * SEC - 1);
    assert_eq!(ops(&s).len(), 1, "still waiting 1 ns before the deadline");
    s.runner.expire(t0 + 5 * SEC);
    let done = ops(&s).pop().unwrap();
    assert_eq!(
        (
            done.kind,
            done.f(),
            done.error.map(|e| s.runner.history.tables.error_text(e))
        ),
        (OpType::Info, F::Send, Some("timeout"))
    );
    let w = &s.runner.clients.workers[0];
    assert!(matches!(w.pending, Pending::Idle));
    assert!(w.retired);
    assert_eq!(w.client, old_client, "closed only at the next invocation");
    assert!(s.runner.clients.live.contains_key(&old_client));

    // The node answers at 6 s: the old client takes the reply and ignores it.
    s.runner.wait(t0 + 7 * SEC);
    assert!(s.runner.faults.is_empty(), "{:?}", s.runner.faults);
    assert_eq!(s.runner.clients.dropped_replies, 1);
    assert!(!s.runner.nodes[0].stdout_dead);

    // The worker's next operation: a new process (+ concurrency) and a new client.
    let t1 = s.clock.now();
    s.runner.start(0, GenOp::Poll, t1);
    let invoke = ops(&s).pop().unwrap();
    assert_eq!(
        (invoke.kind, invoke.process),
        (OpType::Invoke, u32::try_from(old_process + 1).unwrap())
    );
    let w = &s.runner.clients.workers[0];
    assert_ne!(w.client, old_client);
    assert!(!w.retired);
    assert!(!s.runner.clients.live.contains_key(&old_client));
    assert!(s.runner.clients.live.contains_key(&w.client));
}

/// Once the worker has invoked its next operation, the old client is off the network, and
/// a reply to it has no destination: the node's stdout dies, as in Maelstrom.
#[test]
fn a_reply_after_the_workers_next_op_kills_the_nodes_stdout() {
    let cfg = config("--node-count 1 --concurrency 1");
    let script = kafka(|r| if r.body["type"] == "send" { 6 * SEC } else { 0 });
    let mut s = sim(&cfg, script, 60);
    s.runner.init().unwrap();
    s.runner.open_clients();
    let t0 = s.clock.now();
    s.runner.clients.free.clear();
    s.runner.start(0, GenOp::Send { key: 0, msg: 1 }, t0);
    s.runner.flush();
    s.runner.expire(t0 + 5 * SEC);
    assert!(s.runner.faults.is_empty());
    // At 5.5 s the worker polls (answered at once) with a new client.
    s.clock.advance_to(t0 + 5 * SEC + 500 * MS);
    s.runner.start(0, GenOp::Poll, s.clock.now());
    s.runner.flush();
    // The poll's reply, then the send's at 6 s, which finds no client.
    while s.clock.now() < t0 + 7 * SEC {
        s.runner.wait(t0 + 7 * SEC);
    }
    assert_eq!(s.runner.faults.len(), 1, "{:?}", s.runner.faults);
    assert_eq!(s.runner.faults[0].kind, "invalid-dest");
    assert!(s.runner.nodes[0].stdout_dead);
}

/// A reply counts if the reader read it before the deadline, however late the scheduler
/// gets to it; one read at the deadline is too late.
#[test]
fn a_reply_read_before_the_deadline_counts_even_when_handled_after_it() {
    let cfg = config("--node-count 1 --concurrency 2");
    // msg 1 is answered 1 ns before the deadline, msg 2 at it.
    let script = kafka(|r| match r.body["msg"].as_i64() {
        Some(1) => 5 * SEC - 1,
        Some(_) => 5 * SEC,
        None => 0,
    });
    let mut s = sim(&cfg, script, 60);
    s.runner.init().unwrap();
    s.runner.open_clients();
    let t0 = s.clock.now();
    s.runner.clients.free.clear();
    for (w, msg) in [(0, 1), (1, 2)] {
        s.runner.start(w, GenOp::Send { key: 0, msg }, t0);
    }
    s.runner.flush();
    // The scheduler was busy: it looks again only 1 ms after both deadlines.
    s.clock.advance_to(t0 + 5 * SEC + MS);
    s.runner.collect(s.clock.now());
    let done: Vec<(u32, OpType)> = ops(&s)
        .iter()
        .filter(|o| o.kind != OpType::Invoke)
        .map(|o| (o.process, o.kind))
        .collect();
    assert_eq!(done, [(0, OpType::Ok), (1, OpType::Info)]);
    // The reply at the deadline came too late for its op, but its client was still on the
    // network (its worker had invoked nothing since), which ignored it.
    assert!(s.runner.faults.is_empty(), "{:?}", s.runner.faults);
    assert_eq!(s.runner.clients.dropped_replies, 1);
}

/// `--rate R`: one op every 1/R on average, at gaps uniform in [0, 2/R).
#[test]
fn the_rate_limiter_spaces_ops_by_uniform_gaps_below_two_over_the_rate() {
    let cfg = config(
        "--node-count 1 --concurrency 4 --rate 100 --time-limit 30 --recovery-sleep 0 --final-time-limit 0",
    );
    let s = run(&cfg, kafka(|_| 0), 60);
    let main_end = s.runner.timeline.main_end;
    let times: Vec<u64> = invocations(&s)
        .iter()
        .map(|o| o.time)
        .filter(|t| *t < main_end)
        .collect();
    let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let n = times.len();
    assert!((2850..=3150).contains(&n), "{n} ops in 30 s at 100/s");
    let max = *gaps.iter().max().unwrap();
    let min = *gaps.iter().min().unwrap();
    let mean = gaps.iter().sum::<u64>() as f64 / gaps.len() as f64;
    assert!(max < 20 * MS, "a gap of {max} ns, above 2/R");
    assert!(
        max > 19 * MS,
        "the longest gap, {max} ns, should come near 2/R"
    );
    assert!(
        min < MS / 4,
        "the shortest gap, {min} ns, should come near 0"
    );
    assert!(
        (9.7e6..10.3e6).contains(&mean),
        "mean gap {mean} ns, not 1/R"
    );
}

/// An op goes only to a worker whose client has nothing outstanding: with 3 workers and a
/// node that takes 100 ms, at most 3 ops are in flight and the rate is capped at 30/s,
/// whatever `--rate` asks.
#[test]
fn ops_go_only_to_free_workers() {
    let cfg = config(
        "--node-count 1 --concurrency 3 --rate 1000 --time-limit 10 --recovery-sleep 0 --final-time-limit 0",
    );
    let s = run(&cfg, kafka(|_| 100 * MS), 60);
    let mut open: HashMap<u32, u64> = HashMap::new();
    let mut most = 0;
    for op in ops(&s) {
        if op.kind == OpType::Invoke {
            assert!(
                open.insert(op.process, op.time).is_none(),
                "process {} invoked an op with one in flight",
                op.process
            );
        } else {
            open.remove(&op.process);
        }
        most = most.max(open.len());
    }
    assert_eq!(most, 3);
    let main_end = s.runner.timeline.main_end;
    let n = invocations(&s).iter().filter(|o| o.time < main_end).count();
    assert!(
        (270..=300).contains(&n),
        "{n} ops; 3 workers × 10 s / 100 ms = 300"
    );
    // Each client had one request outstanding at a time (a poll's commit follows its reply).
    let mut outstanding: HashMap<String, u64> = HashMap::new();
    for r in s.requests.borrow().iter() {
        if let Some(prev) = outstanding.insert(r.src.clone(), r.time) {
            assert!(r.time >= prev + 100 * MS, "{} sent twice in 100 ms", r.src);
        }
    }
}

/// Maelstrom recycles each client about every 30 s: a `crash` op every 30/concurrency s on
/// average, given to a free worker, which then continues as a new process.
#[test]
fn crashes_come_every_thirty_seconds_over_the_concurrency_and_replace_the_process() {
    let cfg = config(
        "--node-count 1 --concurrency 10 --rate 50 --time-limit 120 --recovery-sleep 0 --final-time-limit 0",
    );
    let s = run(&cfg, kafka(|_| MS), 200);
    let main_end = s.runner.timeline.main_end;
    let lines = ops(&s);
    let crashes: Vec<&Line<'_>> = lines
        .iter()
        .filter(|o| o.f() == F::Crash && o.kind == OpType::Invoke && o.time < main_end)
        .collect();
    assert!(
        (30..=50).contains(&crashes.len()),
        "{} crashes in 120 s; expected about 40",
        crashes.len()
    );
    for c in &crashes {
        // Invoked and ended at once, as :info, by a process with nothing in flight.
        let i = c.index as usize;
        let next = &lines[i + 1];
        assert_eq!(
            (next.process, next.kind, next.f()),
            (c.process, OpType::Info, F::Crash)
        );
        let before = &lines[..i];
        let open = before
            .iter()
            .rfind(|o| o.process == c.process)
            .is_some_and(|o| o.kind == OpType::Invoke);
        assert!(
            !open,
            "a crash of process {} with an op in flight",
            c.process
        );
        // The worker carries on as process + concurrency; the old process does nothing more.
        let after = &lines[i + 2..];
        assert!(after.iter().all(|o| o.process != c.process));
        assert!(after.iter().any(|o| o.process == c.process + 10));
    }
}

/// After the main phase: the recovery sleep, then every worker crashes its client,
/// assigns every key seen with seek-to-beginning, and polls from offset 0 until it has
/// read up to the highest offset seen for every key; then the run ends, well before the
/// cap.
#[test]
fn the_final_phase_sleeps_then_reads_every_key_from_zero_until_caught_up() {
    let cfg = config(
        "--node-count 1 --concurrency 2 --rate 100 --time-limit 5 --recovery-sleep 10 --final-time-limit 10",
    );
    let s = run(&cfg, kafka(|_| MS), 60);
    let tl = &s.runner.timeline;
    let slept = tl.final_start - tl.main_end;
    assert!(
        (10 * SEC..10 * SEC + 100 * MS).contains(&slept),
        "slept {slept} ns"
    );
    assert!(
        ops(&s)
            .iter()
            .all(|o| o.time <= tl.main_end || o.time >= tl.final_start),
        "no op during the recovery sleep"
    );
    // Every key any ok op touched, with its highest offset.
    let mut highest: HashMap<KeyId, i64> = HashMap::new();
    for op in ops(&s).iter().filter(|o| o.time < tl.final_start) {
        match &*op.value {
            OpValue::Send {
                key,
                offset: Some(o),
                ..
            } => {
                let h = highest.entry(*key).or_insert(-1);
                *h = (*h).max(*o);
            }
            OpValue::Poll(Some(polled)) => {
                for (k, pairs) in crate::history::reads(polled) {
                    let h = highest.entry(*k).or_insert(-1);
                    *h = (*h).max(pairs.max_offset().unwrap_or(-1));
                }
            }
            _ => {}
        }
    }
    let mut all_keys: Vec<KeyId> = highest.keys().copied().collect();
    all_keys.sort();
    assert!(all_keys.len() > 3);
    let lines = ops(&s);
    let at_start: Vec<&Line<'_>> = lines.iter().filter(|o| o.time == tl.final_start).collect();
    for w in 0..2u32 {
        let mine: Vec<&Line<'_>> = at_start
            .iter()
            .copied()
            .filter(|o| o.process % 2 == w)
            .collect();
        let shape: Vec<(OpType, F)> = mine.iter().map(|o| (o.kind, o.f())).collect();
        assert_eq!(
            shape[..4],
            [
                (OpType::Invoke, F::Crash),
                (OpType::Info, F::Crash),
                (OpType::Invoke, F::Assign),
                (OpType::Ok, F::Assign)
            ]
        );
        let OpValue::Assign {
            keys,
            seek_to_beginning,
        } = &*mine[3].value
        else {
            unreachable!()
        };
        assert!(*seek_to_beginning);
        assert_eq!(&keys[..], &all_keys[..]);
    }
    // Each new client's first poll starts every key at offset 0.
    let requests = s.requests.borrow();
    let final_polls: Vec<&Request> = requests
        .iter()
        .filter(|r| r.time >= tl.final_start && r.body["type"] == "poll")
        .collect();
    let mut first_seen = std::collections::HashSet::new();
    for r in &final_polls {
        if first_seen.insert(r.src.clone()) {
            let offsets = r.body["offsets"].as_object().unwrap();
            assert_eq!(offsets.len(), all_keys.len());
            assert!(offsets.values().all(|o| o == 0), "{offsets:?}");
        }
    }
    assert_eq!(first_seen.len(), 2);
    // Caught up: each worker's final polls read every key up to its highest offset.
    for w in 0..2u32 {
        let mut read: HashMap<KeyId, i64> = HashMap::new();
        for op in ops(&s)
            .iter()
            .filter(|o| o.time >= tl.final_start && o.process % 2 == w)
        {
            if let (OpType::Ok, OpValue::Poll(Some(polled))) = (op.kind, &*op.value) {
                for (k, pairs) in crate::history::reads(polled) {
                    let r = read.entry(*k).or_insert(-1);
                    *r = (*r).max(pairs.max_offset().unwrap_or(-1));
                }
            }
        }
        for (k, h) in &highest {
            assert!(
                read.get(k).copied().unwrap_or(-1) >= *h,
                "key {k:?} not read up to {h}"
            );
        }
    }
    let took = tl.final_end - tl.final_start;
    assert!(
        took < 2 * SEC,
        "the final phase took {took} ns, though all was read"
    );
}

/// A node that never returns anything cannot be caught up with: the final phase stops at
/// `--final-time-limit`.
#[test]
fn the_final_phase_stops_at_its_cap() {
    let cfg = config(
        "--node-count 1 --concurrency 2 --rate 100 --time-limit 2 --recovery-sleep 1 --final-time-limit 10",
    );
    let mut node = kafka(|_| MS);
    let script: Script = Box::new(move |r| {
        if r.body["type"] == "poll" {
            Some((MS, json!({"type": "poll_ok", "msgs": {}})))
        } else {
            node(r)
        }
    });
    let s = run(&cfg, script, 100);
    let tl = &s.runner.timeline;
    let took = tl.final_end - tl.final_start;
    assert!(
        (10 * SEC..10 * SEC + 500 * MS).contains(&took),
        "the final phase took {took} ns"
    );
    let polls = invocations(&s)
        .iter()
        .filter(|o| o.time >= tl.final_start && o.f() == F::Poll)
        .count();
    // Polls every 0.2 s on average, per worker, for 10 s.
    assert!((70..=130).contains(&polls), "{polls} final polls");
}

/// Init: each node must answer its own `init` with `init_ok` within `--init-timeout`; the
/// error says, per node, what it did instead.
#[test]
fn init_reports_each_node_that_did_not_answer_init_ok() {
    let cfg = config("--node-count 3 --concurrency 3");
    // n0 is fine, n1 refuses, n2 says nothing.
    let script: Script = Box::new(|r| match r.node {
        0 => Some((MS, json!({"type": "init_ok"}))),
        1 => Some((MS, json!({"type": "error", "code": 11}))),
        _ => None,
    });
    let mut s = sim(&cfg, script, 60);
    let Err(SetupError::Init(failures)) = s.runner.init() else {
        panic!("init should fail")
    };
    let who: Vec<(&str, &InitFailed)> = failures.iter().map(|f| (&*f.node, &f.why)).collect();
    assert!(
        matches!(
            who[..],
            [
                ("n1", InitFailed::Answered(_)),
                ("n2", InitFailed::NoReply { .. })
            ]
        ),
        "{who:?}"
    );
    let text = SetupError::Init(failures).to_string();
    assert!(
        text.starts_with("init failed: n1: expected init_ok, got Error { code: Some(11)"),
        "{text}"
    );
    assert!(
        text.ends_with("; n2: no init_ok within 10 s (--init-timeout)"),
        "{text}"
    );
    let waited = s.clock.now();
    assert!(
        (10 * SEC..10 * SEC + 100 * MS).contains(&waited),
        "waited {waited} ns"
    );
    // The init clients are closed: n2's init_ok now would be an invalid destination.
    assert!(s.runner.clients.init.is_empty());
}

/// Init ends as soon as every node answered.
#[test]
fn init_ends_when_every_node_answered() {
    let cfg = config("--node-count 2 --concurrency 2");
    let mut s = sim(&cfg, kafka(|_| 3 * MS), 60);
    s.runner.init().unwrap();
    assert_eq!(s.clock.now(), 3 * MS);
}
/// The pump waits for something when every worker is busy; it never spins on a schedule
/// it cannot serve (a crash due while no worker is free).
#[test]
fn a_due_crash_with_no_free_worker_waits_for_one() {
    let cfg = config(
        "--node-count 1 --concurrency 1 --rate 1000 --time-limit 40 --recovery-sleep 0 --final-time-limit 0",
    );
    // A slow node: its one worker is busy nearly all the time.
    let s = run(&cfg, kafka(|_| 400 * MS), 100);
    let crashes = ops(&s).iter().filter(|o| o.f() == F::Crash).count();
    assert!(crashes >= 2, "{crashes}");
}

/// Runs `cfg` against the kafka script answering after 1 ms, each node's stdin a pipe of
/// `capacity` bytes that the node reads every `gap` ns from `slow_from` on; nodes gossip
/// if there are several.
fn run_slow(cfg: &Config, capacity: usize, gap: u64, slow_from: u64, limit_secs: u64) -> Sim<'_> {
    run_slow_with(cfg, kafka(|_| MS), capacity, gap, slow_from, limit_secs)
}

/// [`run_slow`] against nodes that follow `script`.
fn run_slow_with(
    cfg: &Config,
    script: Script,
    capacity: usize,
    gap: u64,
    slow_from: u64,
    limit_secs: u64,
) -> Sim<'_> {
    let mut s = sim(cfg, script, limit_secs);
    s.runner.pipes.gossip = cfg.node_ids.len() > 1;
    let nodes = cfg.node_ids.len();
    let stdin = || SlowStdin {
        slow_from,
        ..SlowStdin::new(capacity, gap)
    };
    s.runner.pipes.slow = Some((0..nodes).map(|_| stdin()).collect());
    s.runner.init().expect("the scripted nodes answer init");
    s.runner.main_and_final();
    s
}

/// Each client's requests, as the nodes read them: (client, msg_id, type), in order.
fn requests_by_client(s: &Sim<'_>, from: u64) -> BTreeMap<String, Vec<(u64, String)>> {
    let mut by: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
    let requests = s.requests.borrow();
    for r in requests
        .iter()
        .filter(|r| r.time >= from && r.src.starts_with('c'))
    {
        let ty = r.body["type"].as_str().unwrap_or_default().to_owned();
        let msg_id = r.body["msg_id"].as_u64().expect("a msg_id");
        by.entry(r.src.clone()).or_default().push((msg_id, ty));
    }
    by
}

/// The final phase's requests name every key, and every client sends one at once: against a
/// node that reads one line at a time from a small pipe, the runner makes a request's
/// bytes only when the pipe has taken what came before it, so at most one request waits
/// in its backlog (its `Stdin`), never every client's. Each client's requests still reach
/// the node whole, once each and in order, and the phase still catches up.
#[test]
fn final_requests_wait_for_the_nodes_stdin_one_at_a_time() {
    final_requests_one_at_a_time(1, 1024, "");
}

/// The same on three nodes whose peer messages (5 ms of latency) keep their inboxes busy:
/// a request that waits behind a peer message in the network is not encoded there either.
#[test]
fn final_requests_wait_their_turn_in_the_network_unencoded() {
    final_requests_one_at_a_time(3, 256, " --latency 5");
}

fn final_requests_one_at_a_time(nodes: usize, pipe: usize, more: &str) {
    let cfg = config(&format!(
        "--node-count {nodes} --concurrency 8 --rate 2000 --time-limit 3 --recovery-sleep 1 --final-time-limit 10 --max-writes-per-key 8{more}"
    ));
    // A pipe far smaller than one final poll (which names a hundred keys or more), read a
    // line every 0.1 ms: the main phase's requests pass at once, the final phase's wait.
    let s = run_slow(&cfg, pipe, MS / 10, 0, 60);
    // While the journal records, requests are encoded at once for their text; a run at
    // 100k ops/s fills it within a second, this one before its final phase.
    assert!(
        !s.runner.net.journaling(),
        "the journal filled up: {} ops",
        ops(&s).len()
    );
    let tl = &s.runner.timeline;
    for (node, slow) in s.runner.pipes.slow.as_ref().unwrap().iter().enumerate() {
        let most = slow
            .held
            .iter()
            .filter(|(t, _)| *t >= tl.final_start)
            .map(|(_, requests)| *requests)
            .max();
        assert_eq!(
            most,
            Some(1),
            "n{node}: at most one final request waits in the backlog, and one did"
        );
    }
    let by = requests_by_client(&s, tl.final_start);
    assert_eq!(by.len(), 8, "every final client was heard: {:?}", by.keys());
    for (client, reqs) in &by {
        let ids: Vec<u64> = reqs.iter().map(|r| r.0).collect();
        let expected: Vec<u64> = (1..=ids.len() as u64).collect();
        assert_eq!(ids, expected, "{client}'s requests, once each and in order");
        assert_eq!(reqs[0].1, "poll", "{client} polls first");
    }
    assert!(
        s.runner
            .clients
            .workers
            .iter()
            .all(|w| matches!(w.fin, crate::client::FinalState::Done)),
        "every worker caught up"
    );
    assert!(s.runner.clients.early.is_empty());
}

/// A final request that times out before its node's stdin took it was never encoded: its
/// bytes are made when its worker gives up (from the offsets it was sent with, before the
/// next client forgets them) and still reach the node in their turn, as a request that
/// timed out in Maelstrom's network is still delivered. The node returns two pairs a key
/// a poll, so a final client polls again from offsets it has advanced, and a poll it gave
/// up on carries offsets its next client (which starts again from 0) does not have: made
/// from any later state, they would differ.
#[test]
fn a_final_request_that_times_out_unwritten_still_reaches_the_node() {
    let cfg = config(
        "--node-count 1 --concurrency 4 --rate 2000 --time-limit 3 --recovery-sleep 1 --final-time-limit 30 --max-writes-per-key 8",
    );
    // The final phase starts at 4.001 s. Its first polls and commits pass at once; from
    // 4.1 s on the node takes its stdin's 1 KiB a second, so each later poll (a few KiB,
    // naming every key) takes seconds to get through, and those behind it wait past their
    // timeout, unwritten.
    let s = run_slow_with(&cfg, kafka_paged(|_| MS, 2), 1024, SEC, 4100 * MS, 120);
    assert!(!s.runner.net.journaling(), "the journal filled up");
    let tl = &s.runner.timeline;
    let timed_out = ops(&s)
        .iter()
        .filter(|o| o.time >= tl.final_start && o.kind == OpType::Info && o.f() == F::Poll)
        .count();
    assert!(timed_out > 0, "some final poll timed out");
    let requests = s.requests.borrow();
    // Each key's log: every send the node read (all in the main phase).
    let mut logs: HashMap<&str, u64> = HashMap::new();
    for r in requests.iter().filter(|r| r.body["type"] == "send") {
        *logs
            .entry(r.body["key"].as_str().expect("a key"))
            .or_default() += 1;
    }
    // Each final poll's offsets are its client's: from 0 for its first, and for a later
    // one its last poll's advanced by the pairs the node returned (a client polls again
    // only once answered; one that gave up is replaced by a new client).
    let mut last_poll: HashMap<&str, &Value> = HashMap::new();
    // When the node read each client's last request: a client's next request is sent
    // within 0.4 s of that one's answer (1 ms later), so one read more than 6 s after it
    // was read after its client had given up on it.
    let mut last_read: HashMap<&str, u64> = HashMap::new();
    let mut late_advanced = 0;
    for r in requests.iter().filter(|r| r.time >= tl.final_start) {
        let before = last_read.insert(&r.src, r.time);
        if r.body["type"] != "poll" {
            continue;
        }
        let offsets = r.body["offsets"].as_object().expect("offsets");
        let want = |k: &str| match last_poll.get(r.src.as_str()) {
            None => 0,
            Some(before) => {
                let from = before[k].as_u64().expect("an offset");
                logs.get(k).map_or(from, |&n| n.min(from + 2))
            }
        };
        for (k, o) in offsets {
            assert_eq!(
                o.as_u64(),
                Some(want(k)),
                "{}'s poll of {k}: {}",
                r.src,
                r.body
            );
        }
        let late = before.is_some_and(|t| r.time > t + 6 * SEC);
        late_advanced += usize::from(late && offsets.values().any(|o| o != 0));
        last_poll.insert(&r.src, &r.body["offsets"]);
    }
    assert!(
        late_advanced > 0,
        "a poll from advanced offsets was read by the node after it timed out"
    );
}

/// The `swap-keys` fault on simulated time, so its verdict does not depend on the
/// machine's load (`tests/faults.rs` runs the fixture node's, which strikes only where a
/// live run's replies happen to meet its conditions): a node whose every `poll_ok` trades
/// the pairs of two keys, wherever two keys' pairs differ and each holds only values the
/// other key was sent too (so every value has a writer, and the verdict is not merely
/// unknown). The reading processes then poll a key out of its order: invalid, with
/// `nonmonotonic-poll` or `poll-skip`.
#[test]
fn key_labels_swapped_in_every_poll_are_invalid() {
    let cfg = config(
        "--node-count 1 --concurrency 4 --rate 500 --time-limit 5 --recovery-sleep 0 --final-time-limit 5 --assign-probability 1/8",
    );
    let mut kafka = kafka(|_| MS);
    // The values each key was sent, as the node read them.
    let mut sent: HashMap<String, Vec<Value>> = HashMap::new();
    let swaps = Rc::new(Cell::new(0));
    let counted = Rc::clone(&swaps);
    let script: Script = Box::new(move |r| {
        if r.body["type"] == "send" {
            let key = r.body["key"].as_str()?.to_owned();
            sent.entry(key).or_default().push(r.body["msg"].clone());
        }
        let (delay, mut body) = kafka(r)?;
        let Some(msgs) = body.get_mut("msgs").and_then(Value::as_object_mut) else {
            return Some((delay, body));
        };
        let holds_all = |key: &str, pairs: &Value| {
            let values = sent.get(key).map_or(&[][..], Vec::as_slice);
            pairs
                .as_array()
                .into_iter()
                .flatten()
                .all(|p| values.contains(&p[1]))
        };
        let keys: Vec<String> = msgs.keys().cloned().collect();
        let pair = keys.iter().enumerate().find_map(|(i, a)| {
            keys[i + 1..].iter().find_map(|b| {
                let (pa, pb) = (&msgs[a], &msgs[b]);
                (pa != pb && holds_all(a, pb) && holds_all(b, pa)).then(|| (a.clone(), b.clone()))
            })
        });
        if let Some((a, b)) = pair {
            let pa = msgs[&a].take();
            let pb = std::mem::replace(&mut msgs[&b], pa);
            msgs[&a] = pb;
            counted.set(counted.get() + 1);
        }
        Some((delay, body))
    });
    let s = run(&cfg, script, 60);
    assert!(
        swaps.get() > 10,
        "only {} polls swapped two keys",
        swaps.get()
    );
    let result = crate::checker::check(&s.runner.history);
    assert_eq!(
        result.valid,
        crate::checker::Validity::False,
        "{:?}",
        result.errors.keys()
    );
    assert!(
        result.errors.contains_key("nonmonotonic-poll") || result.errors.contains_key("poll-skip"),
        "{:?}",
        result.errors.keys()
    );
}
