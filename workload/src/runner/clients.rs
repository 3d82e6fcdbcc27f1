//! The clients: the worker table, which client ids are on the network, the timeout queue;
//! issuing each worker's requests, matching replies to them, timing them out, and replacing
//! a client that ended an op indeterminately.

use std::collections::{HashMap, VecDeque};

use super::router::Later;
use super::{Clock, InitState, Pipes, Runner, body_text};
use crate::client::{self, FinalState, Pending, Worker};
use crate::generator::GenOp;
use crate::history::{History, KeyId, OpType, OpValue, PollResult};
use crate::network::Payload;
use crate::protocol::{self, Encoder, Reply};

/// The `msg_id` of the one request an init client sends.
pub(super) const INIT_MSG_ID: u64 = 1;

/// The workers and their clients.
#[derive(Debug)]
pub(super) struct Clients {
    /// One per concurrency slot (Jepsen's worker threads), indexed by slot.
    pub(super) workers: Vec<Worker>,
    /// Live client id → worker.
    pub(super) live: HashMap<u64, usize>,
    /// Init client id → node, while init is under way.
    pub(super) init: HashMap<u64, usize>,
    pub(super) timeouts: TimeoutQueue,
    /// Workers with nothing in flight, main phase only: the rate limiter and the crash
    /// schedule only ever pick one of these.
    pub(super) free: Vec<usize>,
    /// Ops in flight.
    pub(super) busy: usize,
    /// Replies that matched no waiting request, which the client ignored.
    pub(super) dropped_replies: u64,
    /// The last client id given out: ids are `c1`, `c2`, … for the whole run.
    next_client: u64,
    /// Per worker, its pending request if it was sent but not encoded yet (it waits for its
    /// node's stdin in [`NodeSlot::later`](super::router::NodeSlot::later) or in the
    /// network): its bytes are made from the worker's state when its turn comes.
    pub(super) unsent: Vec<Option<Unsent>>,
    /// Requests that were encoded before their turn, because their worker stopped waiting
    /// for them (an answer or a timeout changes the state they are made from), by worker
    /// and [`Worker::seq`]. They are still written when their turn comes, as any request
    /// that timed out is.
    pub(super) early: HashMap<(usize, u64), Vec<u8>>,
}

/// A client request sent but not encoded yet: worker `worker`'s request of sequence number
/// `seq`, envelope id `id`. Only final-phase polls and commits wait like this: each names
/// every key, so 64 clients' requests held as bytes grew with the run (tens of bytes a
/// key, 64 times over), where the offsets they are made from are kept anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Unsent {
    pub(super) worker: usize,
    pub(super) seq: u64,
    pub(super) id: u64,
}

impl Clients {
    pub(super) fn new(concurrency: usize) -> Clients {
        Clients {
            workers: Vec::with_capacity(concurrency),
            live: HashMap::new(),
            init: HashMap::new(),
            timeouts: TimeoutQueue::default(),
            free: Vec::new(),
            busy: 0,
            dropped_replies: 0,
            next_client: 0,
            unsent: Vec::new(),
            early: HashMap::new(),
        }
    }

    /// A client id no client had before.
    pub(super) fn new_client(&mut self) -> u64 {
        self.next_client += 1;
        self.next_client
    }

    /// One of the free workers, at random (Jepsen hands an op to whichever worker thread
    /// asks first), taken off the free list.
    pub(super) fn take_free(&mut self, rng: &mut fastrand::Rng) -> usize {
        let i = rng.usize(..self.free.len());
        self.free.swap_remove(i)
    }

    /// Worker `w` gets a new client (and with it a new process): the old id leaves the
    /// network, so a reply to it from now on is an invalid destination.
    fn replace_client(&mut self, w: usize, concurrency: usize) {
        let c = self.new_client();
        self.live.remove(&self.workers[w].client);
        self.workers[w].replace(c, concurrency as u64);
        self.live.insert(c, w);
    }

    /// Worker `w`'s op ended indeterminately: its process is over, but its client stays on
    /// the network until the worker invokes its next operation ([`Clients::fresh_client`]).
    /// Maelstrom closes a client only then (Jepsen reopens a worker's client when the
    /// process of the op it invokes differs), so a reply that arrives in between is taken
    /// and ignored by the old client, and only one that arrives later has no destination.
    pub(super) fn retire(&mut self, w: usize) {
        self.workers[w].retired = true;
    }

    /// Before worker `w` invokes an operation: a retired client is closed and a new one
    /// opened.
    pub(super) fn fresh_client(&mut self, w: usize, concurrency: usize) {
        if self.workers[w].retired {
            self.replace_client(w, concurrency);
        }
    }
}

/// How many entries beyond twice the workers the timeout queue may hold before its stale
/// ones are dropped: with one worker, a pass every 64 requests rather than every other.
pub(super) const STALE_MARGIN: usize = 64;

/// A request's deadline, as queued when it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Timeout {
    pub(super) deadline: u64,
    pub(super) worker: usize,
    /// The worker's [`Worker::seq`] then: if it moved on, the request was answered (or the
    /// worker sent another) and this entry is stale.
    pub(super) seq: u64,
}

/// Every request's deadline, in the order they were set. Every request has the same
/// timeout, so that order is deadline order and a FIFO serves as the deadline heap; stale
/// entries are skipped when they come out. Nearly: a request sent while a reply is handled
/// is stamped with the time then, and one the same loop iteration dispatches afterwards
/// with the iteration's start, a little earlier. Such an entry waits behind the other, so
/// its timeout can come late by at most one iteration.
///
/// An entry goes stale as soon as its request is answered, which at 100k ops/s is
/// well before its deadline, so left alone the queue would hold every request of the
/// last 5 s (500,000 entries, 12 to 25 MB at its doubled capacity, kept to the run's
/// end). [`TimeoutQueue::drop_stale`] keeps it to the live entries, one per worker at
/// most, plus what was pushed since it last ran.
#[derive(Debug, Default)]
pub(super) struct TimeoutQueue(VecDeque<Timeout>);

impl TimeoutQueue {
    /// Queues a deadline, normally no earlier than any queued before (see above).
    pub(super) fn push(&mut self, deadline: u64, worker: usize, seq: u64) {
        self.0.push_back(Timeout {
            deadline,
            worker,
            seq,
        });
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// How many entries it has room for without growing.
    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.0.capacity()
    }

    /// Drops the entries `stale` picks, keeping the others in order. Only an entry that
    /// can never be acted on may be dropped: then what comes out of the queue and is acted
    /// on is the same as before, in the same order.
    pub(super) fn drop_stale(&mut self, mut stale: impl FnMut(&Timeout) -> bool) {
        self.0.retain(|t| !stale(t));
    }

    /// The earliest deadline queued, stale or not.
    pub(super) fn next_deadline(&self) -> Option<u64> {
        self.0.front().map(|t| t.deadline)
    }

    /// The earliest entry if its deadline is at or before `now`.
    pub(super) fn pop_due(&mut self, now: u64) -> Option<Timeout> {
        if self.0.front()?.deadline <= now {
            self.0.pop_front()
        } else {
            None
        }
    }
}

/// What a node's line says to a client: an answer to one of its requests.
#[derive(Debug)]
pub(super) struct Answer {
    pub(super) in_reply_to: u64,
    pub(super) reply: Reply,
}

impl<C: Clock, P: Pipes> Runner<'_, C, P> {
    /// A new request of worker `w`: its msg_id and its envelope id, its timeout running
    /// from `now`.
    fn open_request(&mut self, w: usize, now: u64) -> (u64, u64) {
        let worker = &mut self.clients.workers[w];
        let msg_id = worker.next_request();
        worker.deadline = now + self.timeout;
        self.clients.timeouts.push(worker.deadline, w, worker.seq);
        // A worker's `seq` only ever grows, so an entry whose `seq` its worker has passed
        // is never acted on (`expire`). Each worker has at most one entry that is not
        // stale, so past twice the workers (and a margin) most are: dropping them then
        // costs a pass over a bounded queue every few dozen requests, and keeps the queue
        // from holding every request of the last timeout's span.
        let workers = &self.clients.workers;
        if self.clients.timeouts.len() > 2 * workers.len() + STALE_MARGIN {
            self.clients
                .timeouts
                .drop_stale(|t| workers[t.worker].seq != t.seq);
        }
        (msg_id, self.net.next_id())
    }

    /// Writes one request from worker `w`, registers its timeout, returns its msg_id.
    fn request(
        &mut self,
        w: usize,
        now: u64,
        ty: &str,
        body: impl for<'e> FnOnce(Encoder<'e>, &History) -> Encoder<'e>,
    ) -> u64 {
        let (msg_id, id) = self.open_request(w, now);
        let worker = &self.clients.workers[w];
        let node = &self.cfg.node_ids[worker.node];
        let slot = &mut self.nodes[worker.node];
        let from = slot.out.len();
        let enc = Encoder::start(&mut slot.out, id, &worker.client_name, node, ty, msg_id);
        body(enc, &self.history).finish();
        self.sent(w, now, id, from);
        msg_id
    }

    /// Worker `w`'s request, encoded into its node's `out` from `from` on with envelope id
    /// `id`, is on its way: counted (and journaled), and behind what waits for the node.
    fn sent(&mut self, w: usize, now: u64, id: u64, from: usize) {
        let worker = &self.clients.workers[w];
        let node = &self.cfg.node_ids[worker.node];
        let slot = &mut self.nodes[worker.node];
        let line = &slot.out[from..];
        self.net
            .note_client(now, id, &worker.client_name, node, || body_text(line));
        // Behind a peer message the node's inbox has taken, the request waits its turn.
        if !self.net.is_idle(worker.node) {
            let line = slot.out.split_off(from);
            self.net
                .queue_client(now, id, worker.node, Payload::Line(line));
        } else {
            slot.keep_order(from);
        }
    }

    /// Sends worker `w`'s pending poll or commit (set by `pending` from its msg_id) and
    /// registers its timeout. A final-phase one is not encoded now: it waits for its node's
    /// stdin as an [`Unsent`], and is made from the worker's offsets (a poll) or its poll's
    /// result (a commit) when its turn comes. Its clock starts now either way, as it would
    /// if its bytes waited for the pipe: Maelstrom's client starts its timeout when it puts
    /// the request on the network, however long the node takes to read it.
    fn request_pending(&mut self, w: usize, now: u64, pending: impl FnOnce(u64) -> Pending) {
        let (msg_id, id) = self.open_request(w, now);
        let worker = &mut self.clients.workers[w];
        worker.pending = pending(msg_id);
        let node = worker.node;
        // While the journal records or messages are logged, their text is wanted now.
        if matches!(worker.fin, FinalState::NotStarted) || self.net.wants_client_detail() {
            let slot = &mut self.nodes[node];
            let from = slot.out.len();
            encode_pending(
                worker,
                id,
                &self.cfg.node_ids[node],
                &self.history,
                &mut slot.out,
            );
            self.sent(w, now, id, from);
            return;
        }
        self.net.count_client();
        let u = Unsent {
            worker: w,
            seq: worker.seq,
            id,
        };
        self.clients.unsent[w] = Some(u);
        if self.net.is_idle(node) {
            self.nodes[node].later.push_back(Later::Request(u));
        } else {
            let payload = Payload::Unsent {
                worker: w,
                seq: u.seq,
            };
            self.net.queue_client(now, id, node, payload);
        }
    }

    /// The bytes of `u`, a request for `node` whose turn came: encoded into the node's
    /// `out` now (`None`), or the line made earlier (see [`Clients::early`]).
    pub(super) fn encode_unsent(&mut self, node: usize, u: Unsent) -> Option<Vec<u8>> {
        if self.clients.unsent[u.worker] != Some(u) {
            let line = self.clients.early.remove(&(u.worker, u.seq));
            debug_assert!(line.is_some(), "{u:?} was neither unsent nor made early");
            return Some(line.unwrap_or_default());
        }
        self.clients.unsent[u.worker] = None;
        let worker = &self.clients.workers[u.worker];
        let out = &mut self.nodes[node].out;
        encode_pending(worker, u.id, &self.cfg.node_ids[node], &self.history, out);
        None
    }

    /// Worker `w`'s pending request is about to end (answered, given up): if its bytes were
    /// not made yet, they are made now, from the state that is about to change, and kept
    /// until their turn. A request that timed out still reaches the node, as in Maelstrom.
    fn encode_early(&mut self, w: usize) {
        if let Some(u) = self.clients.unsent[w].take() {
            let worker = &self.clients.workers[w];
            let mut line = Vec::new();
            let node = &self.cfg.node_ids[worker.node];
            encode_pending(worker, u.id, node, &self.history, &mut line);
            self.clients.early.insert((w, u.seq), line);
        }
    }

    /// The run stops: requests not written yet never will be, so none is encoded early.
    pub(super) fn drop_unsent(&mut self) {
        self.clients.unsent.fill(None);
        for slot in &mut self.nodes {
            slot.later.clear();
        }
    }

    fn key_of(&mut self, k: u64) -> KeyId {
        self.history.tables.key(&k.to_string())
    }

    pub(super) fn start(&mut self, w: usize, op: GenOp, now: u64) {
        self.clients.fresh_client(w, self.cfg.concurrency);
        self.clients.busy += 1;
        let process = self.clients.workers[w].process;
        match op {
            GenOp::Send { key, msg } => {
                let key = self.key_of(key);
                let m = self.history.tables.msg(&protocol::RawMsg::Int(msg));
                self.history.push(
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
                self.clients.workers[w].pending = Pending::Send {
                    key,
                    msg: m,
                    msg_id,
                };
            }
            GenOp::Poll => self.start_poll(w, now),
            GenOp::Assign { key, unseen } => {
                let first = self.key_of(key);
                // The list is kept in the history for the run's end, and on three nodes a
                // third of the assigns name a hundred keys or more (`poll-unseen`): sized
                // at once, not left at a doubled vector's capacity.
                let mut keys = Vec::with_capacity(1 + unseen.len());
                keys.push(first);
                keys.extend(unseen.into_iter().filter(|k| *k != first));
                let keys: crate::history::Keys = keys.into();
                self.history.push(
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
                self.clients.workers[w].pending = Pending::Assign { keys, msg_id };
            }
        }
    }

    pub(super) fn start_poll(&mut self, w: usize, now: u64) {
        self.clients.fresh_client(w, self.cfg.concurrency);
        let process = self.clients.workers[w].process;
        self.history
            .push(now, process, OpType::Invoke, OpValue::Poll(None), None);
        self.request_pending(w, now, |msg_id| Pending::Poll { msg_id });
    }

    /// Times out every request whose deadline is at or before `now`: the op ends
    /// indeterminately (an `assign` fails) and the client is replaced.
    pub(super) fn expire(&mut self, now: u64) {
        while let Some(t) = self.clients.timeouts.pop_due(now) {
            let worker = &self.clients.workers[t.worker];
            if worker.seq == t.seq && !matches!(worker.pending, Pending::Idle) {
                self.fail_pending(t.worker, now, "timeout".into(), false);
            }
        }
    }

    /// Ends worker `w`'s op without a usable reply: a definite error fails it, anything
    /// else (timeout, indefinite error, malformed reply) leaves it indeterminate. `assign`
    /// is idempotent in Maelstrom, so it always just fails.
    pub(super) fn fail_pending(&mut self, w: usize, now: u64, error: String, definite: bool) {
        self.encode_early(w);
        if let Some((kind, value)) = self.clients.workers[w].give_up(definite) {
            self.complete(w, now, kind, value, Some(&error));
        }
    }

    fn complete(&mut self, w: usize, now: u64, kind: OpType, value: OpValue, error: Option<&str>) {
        let process = self.clients.workers[w].process;
        self.clients.workers[w].seq += 1;
        self.history.push(now, process, kind, value, error);
        if kind == OpType::Info {
            self.clients.retire(w);
        }
        self.clients.busy -= 1;
        if matches!(self.clients.workers[w].fin, FinalState::NotStarted) {
            self.clients.free.push(w);
        }
    }

    /// A line from `node` to client `c<c>`, read at `read_at`. A client on the network
    /// takes it as the answer to its request (or ignores it: a retired client, whose worker
    /// has not invoked its next operation yet, ignores every line); one that was replaced
    /// is not on the network, so the line kills the node's stdout.
    pub(super) fn line_to_client(
        &mut self,
        node: usize,
        c: u64,
        answer: Option<Answer>,
        body: Option<String>,
        read_at: u64,
    ) {
        if let Some(&w) = self.clients.live.get(&c)
            && !matches!(self.clients.workers[w].pending, Pending::Idle)
            && self.clients.workers[w].deadline <= read_at
        {
            // Read after the client gave up, though the scheduler had not got to the
            // timeout yet: the op timed out, and the retired client ignores the reply.
            let now = self.now();
            self.fail_pending(w, now, "timeout".into(), false);
        }
        let live = self.clients.live.get(&c).copied();
        let init = self.clients.init.get(&c).copied();
        if live.is_some() || init.is_some() {
            let id = self.net.next_id();
            if self.net.wants_client_detail() {
                let now = self.now();
                let (src, client) = (&self.cfg.node_ids[node], format!("c{c}"));
                self.net
                    .note_client(now, id, src, &client, || body.unwrap_or_default());
            } else {
                self.net.count_client();
            }
        }
        if let Some(w) = live {
            match answer {
                Some(a) => self.on_reply(w, a.in_reply_to, a.reply),
                None => self.clients.dropped_replies += 1,
            }
        } else if let Some(n) = init {
            match answer {
                Some(a) if a.in_reply_to == INIT_MSG_ID => {
                    self.init_done[n] = match a.reply {
                        Reply::InitOk => InitState::Ready,
                        other => InitState::Answered(other),
                    }
                }
                _ => self.clients.dropped_replies += 1,
            }
        } else {
            self.kill_stdout(
                node,
                "invalid-dest",
                format!("Invalid dest for message: client c{c} is not on the network (its worker moved on to a new client)"),
            );
        }
    }

    pub(super) fn on_reply(&mut self, w: usize, irt: u64, reply: Reply) {
        if self.clients.workers[w].pending.msg_id() != Some(irt) {
            // Maelstrom's client skips replies to anything but its current request.
            self.clients.dropped_replies += 1;
            return;
        }
        self.encode_early(w);
        let now = self.now();
        let pending = std::mem::replace(&mut self.clients.workers[w].pending, Pending::Idle);
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
                self.clients.workers[w].assigned(&keys);
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
                self.clients.workers[w].pending = pending;
                self.fail_pending(w, now, error, definite);
            }
        }
    }

    /// A `poll_ok`: advance the client's offsets, then commit what it read, if anything.
    fn poll_ok(&mut self, w: usize, now: u64, msgs: crate::polled::Polled) {
        let msgs = self.history.intern_polled(msgs);
        if !self.clients.workers[w].advance(&msgs) {
            self.poll_done(w, now, msgs);
            return;
        }
        self.request_pending(w, now, |msg_id| Pending::Commit { msg_id, msgs });
    }

    fn poll_done(&mut self, w: usize, now: u64, msgs: PollResult) {
        for (k, pairs) in crate::history::reads(&msgs) {
            let max = pairs.max_offset().unwrap_or(-1);
            self.generator.polled_ok(*k, max);
        }
        self.clients.workers[w].final_progress(&msgs);
        self.complete(w, now, OpType::Ok, OpValue::Poll(Some(msgs)), None);
    }
}

/// Writes `worker`'s pending poll or commit to `node` as one line onto `out`: a poll names
/// the worker's offsets, a commit the highest offset its poll read of each key.
fn encode_pending(worker: &Worker, id: u64, node: &str, h: &History, out: &mut Vec<u8>) {
    let name = |k: KeyId| h.tables.key_name(k);
    let client = &worker.client_name;
    match &worker.pending {
        Pending::Poll { msg_id } => Encoder::start(out, id, client, node, "poll", *msg_id)
            .offsets_field("offsets", worker.offsets.iter().map(|(k, o)| (name(k), o))),
        Pending::Commit { msg_id, msgs } => {
            Encoder::start(out, id, client, node, "commit_offsets", *msg_id).offsets_field(
                "offsets",
                client::commit_offsets(msgs).map(|(k, o)| (name(k), o)),
            )
        }
        other => unreachable!("only polls and commits are encoded from the worker: {other:?}"),
    }
    .finish();
}
