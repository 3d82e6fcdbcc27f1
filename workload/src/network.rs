//! The simulated network between nodes, and between nodes and services: latency drawn per
//! message, Maelstrom's delivery discipline, partitions, envelope ids and the message
//! statistics of Maelstrom's journal.
//!
//! Maelstrom gives each destination a priority queue ordered by deadline and one thread
//! that takes the queue's head as soon as there is one, drops it if the receiver is
//! partitioned from its sender at that moment, else sleeps until its deadline and delivers
//! it, then takes the next. So per destination:
//!
//! * messages leave in deadline order among those queued when the previous one was
//!   delivered (ties in send order, so a constant latency keeps each destination FIFO);
//! * a message taken waits for its deadline, and whatever arrives meanwhile waits behind
//!   it, even with an earlier deadline (under random latencies, a long draw holds up the
//!   messages after it);
//! * the partition check happens when a message is taken: at once if the destination was
//!   idle, else when the message before it is delivered. A partition that starts after a
//!   message was taken does not stop it.
//!
//! [`Network`] plays exactly that, one inbox per destination, with no threads: the runner
//! asks [`Network::next_deadline`] when the next delivery is due and collects it with
//! [`Network::pop_due`].
//!
//! Client requests share their node's inbox with zero latency (Maelstrom adds no latency to
//! clients and never partitions them), so a request can wait behind a peer message the node's
//! inbox has taken. When the inbox is idle, which is always the case without server traffic,
//! the runner writes the request straight through ([`Network::is_idle`]). Replies to clients
//! are delivered at once: each client's own inbox only ever holds its one reply.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::lamport::{self, EventKind, MsgEvent};
use crate::nemesis::Grudge;
use crate::protocol;

/// A place on the network other than a client: a node (`0..nodes`) or a service after them.
pub type Addr = usize;

/// `--latency-dist`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dist {
    Constant,
    /// Whole milliseconds, uniform in `[0, 2 × mean)`.
    Uniform,
    /// Exponential with the given mean, truncated to whole milliseconds.
    Exponential,
}

/// `--latency` and `--latency-dist`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    pub mean_ms: u64,
    pub dist: Dist,
}

const MS: u64 = 1_000_000;

impl Latency {
    pub fn new(mean_ms: u64, dist: Dist) -> Latency {
        Latency { mean_ms, dist }
    }

    /// One message's latency in ns. Maelstrom draws whole milliseconds (its latency is a
    /// `long` of ms), so this does too.
    pub fn draw(&self, rng: &mut fastrand::Rng) -> u64 {
        let m = self.mean_ms;
        let ms = match self.dist {
            Dist::Constant => m,
            Dist::Uniform if m == 0 => 0,
            Dist::Uniform => rng.u64(..2 * m),
            Dist::Exponential => {
                // Inverse transform; 1 - f64() is in (0, 1], so the log is finite.
                let u = 1.0 - rng.f64();
                (-(m as f64) * u.ln()) as u64
            }
        };
        ms * MS
    }
}

/// Message counts, as Maelstrom's journal statistics (`:net` in results.edn).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Messages sent (each has its own id, so this is also the distinct-message count).
    pub sends: u64,
    /// Messages delivered.
    pub recvs: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Messages to or from a client.
    pub clients: Counts,
    /// Everything else: node to node, node to service, service to node.
    pub servers: Counts,
    /// Server messages dropped by a partition.
    pub partitioned: u64,
}

impl NetStats {
    pub fn all(&self) -> Counts {
        Counts {
            sends: self.clients.sends + self.servers.sends,
            recvs: self.clients.recvs + self.servers.recvs,
        }
    }
}

/// The width of one [`Network::take_server_sends`] count: 10 ms, finer than any plot's bin.
pub const SERVER_TICK: u64 = 10 * MS;

/// Maelstrom draws only the first events of its journal ([`lamport::EVENT_LIMIT`], init
/// traffic aside); the journal keeps a few more so the diagram can tell that more happened.
pub const JOURNAL_LIMIT: usize = lamport::EVENT_LIMIT + 1_000;

/// What a message carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// A node's or a service's body, as JSON text, forwarded as the sender wrote it.
    Body(Box<str>),
    /// A client request, already encoded as the line the node reads.
    Line(Vec<u8>),
    /// A client request the runner encodes only when the node's stdin takes it: worker
    /// `worker`'s request number `seq` (a final-phase poll or commit names every key, and
    /// 64 of them waiting here as bytes grew with the run).
    Unsent { worker: usize, seq: u64 },
}

/// A message in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: u64,
    /// The sender's address; [`CLIENT`] for a client request.
    pub src: Addr,
    pub dest: Addr,
    pub payload: Payload,
}

/// The source address of client requests: never a node, so never partitioned.
pub const CLIENT: Addr = usize::MAX;

#[derive(Debug, PartialEq, Eq)]
struct InFlight {
    deadline: u64,
    msg: Message,
}

impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Ids grow with every send, so equal deadlines leave in send order.
        (self.deadline, self.msg.id).cmp(&(other.deadline, other.msg.id))
    }
}

impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug)]
pub struct Network {
    names: Vec<String>,
    /// How many addresses are nodes (the rest are services, never partitioned).
    nodes: usize,
    latency: Latency,
    rng: fastrand::Rng,
    /// Per destination: messages not yet taken, by deadline.
    inboxes: Vec<BinaryHeap<Reverse<InFlight>>>,
    /// Per destination: whether a taken message waits for its delivery time.
    busy: Vec<bool>,
    /// Taken messages, by delivery time (at most one per destination).
    taken: BinaryHeap<Reverse<InFlight>>,
    /// `cut[dest * nodes + src]`: dest drops messages from src.
    cut: Vec<bool>,
    next_id: u64,
    pub stats: NetStats,
    /// Server messages sent per [`SERVER_TICK`] of run time, for the plot of server
    /// traffic over time (5c is judged on these messages).
    server_sends: Vec<u32>,
    journal: Vec<MsgEvent>,
    log_send: bool,
    log_recv: bool,
}

impl Network {
    /// `names` are the nodes then the services; the first `nodes` of them can be partitioned.
    pub fn new(names: Vec<String>, nodes: usize, latency: Latency, seed: u64) -> Network {
        let addresses = names.len();
        Network {
            names,
            nodes,
            inboxes: (0..addresses).map(|_| BinaryHeap::new()).collect(),
            busy: vec![false; addresses],
            taken: BinaryHeap::new(),
            latency,
            rng: fastrand::Rng::with_seed(seed),
            cut: vec![false; nodes * nodes],
            next_id: 0,
            stats: NetStats::default(),
            server_sends: Vec::new(),
            journal: Vec::new(),
            log_send: false,
            log_recv: false,
        }
    }

    /// `--log-net-send`, `--log-net-recv`: every message on stderr.
    pub fn set_logging(&mut self, send: bool, recv: bool) {
        self.log_send = send;
        self.log_recv = recv;
    }

    pub fn name(&self, a: Addr) -> &str {
        &self.names[a]
    }

    /// A fresh envelope id; Maelstrom numbers every message, client ones included, from 0.
    pub fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Whether the journal still records; callers skip building bodies when it does not.
    pub fn journaling(&self) -> bool {
        self.journal.len() < JOURNAL_LIMIT
    }

    fn record(&mut self, time: u64, kind: EventKind, id: u64, src: &str, dest: &str, body: &str) {
        if self.journaling() {
            self.journal.push(MsgEvent {
                time_ns: time,
                from: src.to_owned(),
                to: dest.to_owned(),
                id,
                body: body.to_owned(),
                kind,
            });
        }
    }

    /// Whether client messages need more than counting (journal or logging); when not,
    /// [`Network::count_client`] is all a client message costs.
    pub fn wants_client_detail(&self) -> bool {
        self.log_send || self.log_recv || self.journaling()
    }

    /// Counts a client message (its send and its receipt) with no detail.
    pub fn count_client(&mut self) {
        self.stats.clients.sends += 1;
        self.stats.clients.recvs += 1;
    }

    /// Counts (and journals) a client message, which the runner delivers itself at once:
    /// a send and its receipt. `body` is only called while the journal records.
    pub fn note_client(
        &mut self,
        time: u64,
        id: u64,
        src: &str,
        dest: &str,
        body: impl FnOnce() -> String,
    ) {
        self.count_client();
        if self.wants_client_detail() {
            let body = body();
            if self.log_send {
                eprintln!("kafka-workload: send {id} {src} -> {dest} {body}");
            }
            if self.log_recv {
                eprintln!("kafka-workload: recv {id} {src} -> {dest} {body}");
            }
            self.record(time, EventKind::Send, id, src, dest, &body);
            self.record(time, EventKind::Recv, id, src, dest, &body);
        }
    }

    /// Puts a server message on the network; it is due after one latency draw.
    pub fn send(&mut self, now: u64, src: Addr, dest: Addr, body: Box<str>) -> u64 {
        let id = self.next_id();
        self.stats.servers.sends += 1;
        let tick = (now / SERVER_TICK) as usize;
        if tick >= self.server_sends.len() {
            self.server_sends.resize(tick + 1, 0);
        }
        self.server_sends[tick] = self.server_sends[tick].saturating_add(1);
        if self.log_send {
            eprintln!(
                "kafka-workload: send {id} {} -> {} {body}",
                self.names[src], self.names[dest]
            );
        }
        if self.journaling() {
            let (s, d) = (self.names[src].clone(), self.names[dest].clone());
            self.record(now, EventKind::Send, id, &s, &d, &body);
        }
        let deadline = now + self.latency.draw(&mut self.rng);
        let msg = Message {
            id,
            src,
            dest,
            payload: Payload::Body(body),
        };
        self.inboxes[dest].push(Reverse(InFlight { deadline, msg }));
        self.take(dest, now);
        id
    }

    /// Whether `dest` would take a message at once: nothing waits in its inbox. A client
    /// request to an idle node can be written straight through.
    pub fn is_idle(&self, dest: Addr) -> bool {
        !self.busy[dest] && self.inboxes[dest].is_empty()
    }

    /// Queues a client request (envelope id `id`, already counted with
    /// [`Network::note_client`]) behind what `dest`'s inbox holds; its deadline is now.
    pub fn queue_client(&mut self, now: u64, id: u64, dest: Addr, payload: Payload) {
        let msg = Message {
            id,
            src: CLIENT,
            dest,
            payload,
        };
        self.inboxes[dest].push(Reverse(InFlight { deadline: now, msg }));
        self.take(dest, now);
    }

    /// `dest`'s inbox thread, at time `at`: if it is free, it takes the earliest message,
    /// dropping those its receiver is partitioned from, and waits for that one's deadline.
    fn take(&mut self, dest: Addr, at: u64) {
        if self.busy[dest] {
            return;
        }
        while let Some(Reverse(InFlight { deadline, msg })) = self.inboxes[dest].pop() {
            if self.is_cut(msg.src, dest) {
                self.stats.partitioned += 1;
                continue;
            }
            self.busy[dest] = true;
            self.taken.push(Reverse(InFlight {
                deadline: deadline.max(at),
                msg,
            }));
            return;
        }
    }

    /// When the next delivery is due, if any message is in flight.
    pub fn next_deadline(&self) -> Option<u64> {
        self.taken.peek().map(|Reverse(m)| m.deadline)
    }

    pub fn in_flight(&self) -> usize {
        self.taken.len() + self.inboxes.iter().map(BinaryHeap::len).sum::<usize>()
    }

    /// The next message delivered by `now`. Its destination then takes its next one, as of
    /// the delivery time.
    pub fn pop_due(&mut self, now: u64) -> Option<Message> {
        if self.next_deadline()? > now {
            return None;
        }
        let Reverse(InFlight { deadline, msg }) = self.taken.pop()?;
        self.busy[msg.dest] = false;
        self.take(msg.dest, deadline);
        if let Payload::Body(body) = &msg.payload {
            self.stats.servers.recvs += 1;
            if self.log_recv {
                eprintln!(
                    "kafka-workload: recv {} {} -> {} {body}",
                    msg.id, self.names[msg.src], self.names[msg.dest]
                );
            }
            if self.journaling() {
                let (s, d) = (self.names[msg.src].clone(), self.names[msg.dest].clone());
                self.record(deadline, EventKind::Recv, msg.id, &s, &d, body);
            }
        }
        Some(msg)
    }

    /// Does `dest` drop what `src` sends? Only nodes are ever cut off.
    pub fn is_cut(&self, src: Addr, dest: Addr) -> bool {
        src < self.nodes && dest < self.nodes && self.cut[dest * self.nodes + src]
    }

    /// Applies a grudge: each node drops what the nodes in its entry send it. Replaces
    /// any partition in place (Jepsen heals between two partitions anyway).
    pub fn partition(&mut self, grudge: &Grudge) {
        let n = self.nodes;
        self.heal();
        for (dest, srcs) in grudge.0.iter().enumerate().take(n) {
            for &src in srcs.iter().filter(|s| **s < n) {
                self.cut[dest * n + src] = true;
            }
        }
    }

    /// Every node hears every node again.
    pub fn heal(&mut self) {
        self.cut.iter_mut().for_each(|c| *c = false);
    }

    /// Server messages sent in each [`SERVER_TICK`] since the run's origin.
    pub fn take_server_sends(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.server_sends)
    }

    /// The first [`JOURNAL_LIMIT`] events, in the order they happened.
    pub fn take_journal(&mut self) -> Vec<MsgEvent> {
        let mut j = std::mem::take(&mut self.journal);
        // Receipts are recorded at their deadline, which can precede a send recorded
        // later in the same turn of the runner.
        j.sort_by_key(|e| e.time_ns);
        j
    }
}

/// The line a node reads for a delivered message: Maelstrom's envelope, with its `id`.
pub fn envelope(out: &mut Vec<u8>, id: u64, src: &str, dest: &str, body: &str) {
    out.extend_from_slice(b"{\"id\":");
    out.extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
    out.extend_from_slice(b",\"src\":");
    protocol::write_str(out, src);
    out.extend_from_slice(b",\"dest\":");
    protocol::write_str(out, dest);
    out.extend_from_slice(b",\"body\":");
    out.extend_from_slice(body.as_bytes());
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(latency: Latency) -> Network {
        let names = ["n0", "n1", "n2", "lin-kv"].map(String::from).to_vec();
        Network::new(names, 3, latency, 7)
    }

    fn drain(n: &mut Network, now: u64) -> Vec<(u64, Addr, Addr)> {
        std::iter::from_fn(|| n.pop_due(now))
            .map(|m| (m.id, m.src, m.dest))
            .collect()
    }

    #[test]
    fn latency_distributions_have_their_shapes() {
        let mut rng = fastrand::Rng::with_seed(1);
        let c = Latency::new(100, Dist::Constant);
        assert!((0..100).all(|_| c.draw(&mut rng) == 100 * MS));
        let draws = |l: Latency, rng: &mut fastrand::Rng| -> Vec<u64> {
            (0..20_000).map(|_| l.draw(rng) / MS).collect()
        };
        let u = draws(Latency::new(100, Dist::Uniform), &mut rng);
        assert!(u.iter().all(|&x| x < 200));
        assert!(u.contains(&0) && u.contains(&199));
        let mean = u.iter().sum::<u64>() as f64 / u.len() as f64;
        assert!((95.0..105.0).contains(&mean), "uniform mean {mean}");
        let e = draws(Latency::new(100, Dist::Exponential), &mut rng);
        let mean = e.iter().sum::<u64>() as f64 / e.len() as f64;
        // Truncating to whole ms takes about half a millisecond off the mean.
        assert!((94.0..105.0).contains(&mean), "exponential mean {mean}");
        assert!(e.iter().any(|&x| x > 400), "no long tail");
        let median = {
            let mut s = e.clone();
            s.sort_unstable();
            s[s.len() / 2]
        };
        assert!((60..80).contains(&median), "exponential median {median}");
        for d in [Dist::Constant, Dist::Uniform, Dist::Exponential] {
            assert_eq!(Latency::new(0, d).draw(&mut rng), 0);
        }
    }

    #[test]
    fn delivery_waits_for_the_deadline_and_keeps_fifo_at_constant_latency() {
        let mut n = net(Latency::new(10, Dist::Constant));
        let a = n.send(0, 0, 1, "{\"a\":1}".into());
        let b = n.send(5 * MS, 2, 1, "2".into());
        let c = n.send(5 * MS, 0, 1, "3".into());
        assert_eq!(n.next_deadline(), Some(10 * MS));
        assert_eq!(drain(&mut n, 10 * MS - 1), vec![]);
        assert_eq!(drain(&mut n, 10 * MS), vec![(a, 0, 1)]);
        assert_eq!(drain(&mut n, 20 * MS), vec![(b, 2, 1), (c, 0, 1)]);
        assert_eq!(n.next_deadline(), None);
        assert_eq!(n.stats.servers, Counts { sends: 3, recvs: 3 });
        // All three were sent in the first 10 ms tick: the plot's counts.
        assert_eq!(n.take_server_sends(), vec![3]);
        n.send(25 * MS, 0, 1, "4".into());
        assert_eq!(n.take_server_sends(), vec![0, 0, 1]);
    }

    #[test]
    fn random_latency_delivers_by_deadline_not_by_send_order() {
        let mut n = net(Latency::new(50, Dist::Exponential));
        for i in 0..200 {
            n.send(i * MS, i as usize % 3, (i as usize + 1) % 4, "0".into());
        }
        let mut last = 0;
        let mut reordered = false;
        let mut prev_id = 0;
        let mut t = 0;
        while n.in_flight() > 0 {
            t += MS;
            while let Some(m) = n.pop_due(t) {
                assert!(t >= last);
                last = t;
                reordered |= m.id < prev_id;
                prev_id = m.id;
            }
        }
        assert!(reordered, "exponential latency never reordered anything");
        assert_eq!(n.stats.servers.recvs, 200);
    }

    #[test]
    fn a_partition_drops_what_is_taken_after_it_and_spares_services() {
        let mut n = net(Latency::new(10, Dist::Constant));
        // n1's inbox takes `first` at once; `second` waits behind it.
        let first = n.send(0, 0, 1, "0".into());
        let second = n.send(1, 0, 1, "0".into());
        n.partition(&Grudge(vec![vec![1, 2], vec![0], vec![0]]));
        let to_kv = n.send(2, 0, 3, "0".into());
        let from_kv = n.send(2, 3, 0, "0".into());
        let across = n.send(2, 2, 0, "0".into());
        let within = n.send(2, 1, 2, "0".into());
        let got: Vec<u64> = drain(&mut n, 20 * MS).iter().map(|m| m.0).collect();
        // `first` was taken before the partition: it gets through, as in Maelstrom.
        assert_eq!(got, vec![first, to_kv, from_kv, within]);
        assert!(!got.contains(&second) && !got.contains(&across));
        assert_eq!(n.stats.partitioned, 2);
        n.heal();
        let again = n.send(20 * MS, 0, 1, "0".into());
        assert_eq!(drain(&mut n, 30 * MS), vec![(again, 0, 1)]);
    }

    #[test]
    fn a_taken_message_holds_up_its_inbox() {
        let mut n = net(Latency::new(100, Dist::Uniform));
        // Draw until a long latency is taken, then send one that would be due sooner.
        let mut t = 0;
        let long = loop {
            let id = n.send(t, 0, 1, "0".into());
            if n.next_deadline().unwrap() >= t + 150 * MS {
                break id;
            }
            drain(&mut n, u64::MAX);
            t += 1;
        };
        let due = n.next_deadline().unwrap();
        let short = loop {
            let id = n.send(t + 1, 2, 1, "0".into());
            if n.inboxes[1].peek().unwrap().0.deadline < due {
                break id;
            }
            n.inboxes[1].clear();
        };
        // A client request queued behind them has the earliest deadline (its send time):
        // it leaves first once the taken message is delivered.
        assert!(!n.is_idle(1));
        let id = n.next_id();
        n.queue_client(t + 2, id, 1, Payload::Line(b"x\n".to_vec()));
        assert_eq!(drain(&mut n, due - 1), vec![]);
        let order: Vec<u64> = drain(&mut n, due).iter().map(|m| m.0).collect();
        assert_eq!(order, vec![long, id, short]);
        assert!(n.is_idle(1));
    }

    #[test]
    fn a_grudge_is_one_way() {
        let mut n = net(Latency::new(0, Dist::Constant));
        // n0 drops n2, nobody else drops anything.
        n.partition(&Grudge(vec![vec![2], vec![], vec![]]));
        assert!(n.is_cut(2, 0) && !n.is_cut(0, 2) && !n.is_cut(1, 0));
        n.partition(&Grudge(vec![vec![], vec![0], vec![]]));
        assert!(
            !n.is_cut(2, 0) && n.is_cut(0, 1),
            "a new grudge replaces the old"
        );
    }

    #[test]
    fn ids_count_every_message_and_the_journal_stops_at_its_limit() {
        let mut n = net(Latency::new(0, Dist::Constant));
        let id = n.next_id();
        n.note_client(0, id, "c1", "n0", || "{}".into());
        let id = n.send(0, 0, 1, "{}".into());
        assert_eq!(id, 1);
        assert_eq!(n.stats.clients, Counts { sends: 1, recvs: 1 });
        while n.journaling() {
            let id = n.next_id();
            n.note_client(1, id, "c1", "n0", || "{}".into());
        }
        let mut called = false;
        let id = n.next_id();
        n.note_client(2, id, "c1", "n0", || {
            called = true;
            String::new()
        });
        assert!(!called);
        let j = n.take_journal();
        assert_eq!(j.len(), JOURNAL_LIMIT);
        assert_eq!(j[2].kind, EventKind::Send);
        assert_eq!((j[2].from.as_str(), j[2].to.as_str()), ("n0", "n1"));
    }

    #[test]
    fn envelopes_carry_the_id() {
        let mut out = Vec::new();
        envelope(
            &mut out,
            42,
            "n0",
            "lin-kv",
            "{\"type\":\"read\",\"key\":1}",
        );
        envelope(&mut out, 0, "a\"b", "n1", "null");
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines[0],
            serde_json::json!({"id": 42, "src": "n0", "dest": "lin-kv", "body": {"type": "read", "key": 1}})
        );
        assert_eq!(lines[1]["src"], "a\"b");
    }
}
