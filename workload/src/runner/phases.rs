//! The run's phases and the event loop that drives each: init, main, recovery sleep, final
//! catch-up; the rate limiter and the crash schedule; waiting for events.

use super::clients::INIT_MSG_ID;
use super::io::Received;
use super::{
    Clock, FINAL_POLL_MEAN, InitFailed, InitFailure, InitState, MS, Phase, Pipes, RATE_SLACK,
    Runner, SEC, SetupError, body_text, sub_seed,
};
use crate::client::{FinalState, Offsets, Pending, Worker};
use crate::generator::Stagger;
use crate::history::{KeyId, OpType, OpValue};
use crate::nemesis::{self, Nemesis};
use crate::protocol::Encoder;

impl<C: Clock, P: Pipes> Runner<'_, C, P> {
    /// Sends each node its `init` and waits up to `--init-timeout` (Maelstrom: 10 s) for
    /// every `init_ok`. The init clients are closed afterwards, whatever happened.
    pub(super) fn init(&mut self) -> Result<(), SetupError> {
        let node_ids = &self.cfg.node_ids;
        for (i, name) in node_ids.iter().enumerate() {
            let c = self.clients.new_client();
            self.clients.init.insert(c, i);
            let id = self.net.next_id();
            let client = format!("c{c}");
            let now = self.now();
            let slot = &mut self.nodes[i];
            let from = slot.out.len();
            Encoder::start(&mut slot.out, id, &client, name, "init", INIT_MSG_ID)
                .str_field("node_id", name)
                .strs_field("node_ids", node_ids.iter().map(String::as_str))
                .finish();
            let line = &slot.out[from..];
            self.net
                .note_client(now, id, &client, name, || body_text(line));
        }
        self.flush();
        let timeout = self.cfg.opts.init_timeout;
        let deadline = self.now() + (timeout * SEC as f64) as u64;
        while self
            .init_done
            .iter()
            .any(|s| matches!(s, InitState::Waiting))
            && !self.all_crashed
        {
            let now = self.now();
            if now >= deadline {
                break;
            }
            self.wait(deadline.min(now + 100 * MS));
        }
        // The init clients are closed: a late init_ok is an Invalid dest from here on.
        self.clients.init.clear();
        let mut failures = Vec::new();
        for (i, state) in std::mem::take(&mut self.init_done).into_iter().enumerate() {
            let why = match state {
                InitState::Ready => continue,
                InitState::Answered(reply) => InitFailed::Answered(reply),
                InitState::Waiting if self.nodes[i].eof => InitFailed::Exited,
                InitState::Waiting => InitFailed::NoReply { timeout },
            };
            let node = self.cfg.node_ids[i].clone();
            failures.push(InitFailure { node, why });
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(SetupError::Init(failures))
        }
    }

    /// One worker per concurrency slot, slot i on node `i mod N`, each with a fresh
    /// client, all free.
    pub(super) fn open_clients(&mut self) {
        for thread in 0..self.cfg.concurrency {
            let c = self.clients.new_client();
            self.clients.live.insert(c, thread);
            self.clients
                .workers
                .push(Worker::new(thread, thread % self.nodes.len(), c));
            self.clients.unsent.push(None);
            self.clients.free.push(thread);
        }
    }

    /// The main phase, the heal, the recovery sleep and the final phase, in order; the
    /// timeline records when each began and ended.
    pub(super) fn main_and_final(&mut self) {
        self.open_clients();
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
        if self.all_crashed || self.interrupted.is_some() {
            return;
        }
        self.progress.note("Waiting for recovery...");
        let sleep_start = self.now();
        let sleep_end = sleep_start + sleep;
        self.progress.phase("recovery", sleep_start, sleep_end);
        self.pump(Phase::Recovery, sleep_end);
        if self.all_crashed || self.interrupted.is_some() {
            return;
        }
        self.timeline.final_start = self.now();
        let final_end = self.timeline.final_start + final_limit;
        self.progress
            .phase("final", self.timeline.final_start, final_end);
        self.start_final();
        self.pump(Phase::Final, final_end);
        self.timeline.final_end = self.now();
        self.progress.note(&format!(
            "final phase took {:.3} s",
            (self.timeline.final_end - self.timeline.final_start) as f64 / SEC as f64
        ));
    }

    /// Runs the event loop for one phase. Ops are issued until `end` (main, final) and
    /// then the loop drains what is in flight; the recovery phase just waits until `end`.
    fn pump(&mut self, phase: Phase, end: u64) {
        loop {
            let now = self.now();
            self.collect(now);
            let issuing = match phase {
                Phase::Main => now < end,
                Phase::Final => {
                    now < end
                        && self
                            .clients
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
            if self.flush() {
                // A node's stdin pipe is full: write the rest as soon as it reads some.
                wake = wake.min(now + MS);
            }
            self.progress
                .draw(now, self.history.len(), self.clients.busy);
            if self.all_crashed {
                self.abandon_in_flight(now, "node crashed");
                return;
            }
            if let Some(signal) = crate::interrupt::requested() {
                self.progress.note(&format!(
                    "{signal}: interrupted; stopping the nodes and judging what was recorded"
                ));
                self.interrupted = Some(signal);
                self.abandon_in_flight(now, "interrupted");
                return;
            }
            match phase {
                Phase::Recovery if now >= end => return,
                Phase::Recovery => wake = wake.min(end),
                _ if !issuing && self.clients.busy == 0 => return,
                _ => {}
            }
            if let Some(d) = self.clients.timeouts.next_deadline() {
                // A deadline held back by a reader still busy with earlier lines: look again soon.
                wake = wake.min(d.max(now + MS));
            }
            self.wait(wake);
        }
    }

    /// Handles what the readers handed over, then times out what is due. Replies the
    /// readers read before the horizon are in the channel, so they are handled before
    /// anything due before it is timed out: a reply counts if it was read in time.
    pub(super) fn collect(&mut self, now: u64) {
        let horizon = self.handed_over_before(now);
        while let Some(batch) = self.pipes.try_recv() {
            self.handle(batch);
        }
        self.expire(horizon);
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
        self.history.push_nemesis(now, f, invoke);
        self.history.push_nemesis(now, f, done);
    }

    /// Blocks until events arrive or `until`, then handles everything available.
    pub(super) fn wait(&mut self, until: u64) {
        let until = until.min(self.net.next_deadline().unwrap_or(u64::MAX));
        let now = self.now();
        match self.pipes.recv(now, until) {
            Received::Batch(batch) => self.handle(batch),
            Received::Timeout => {}
            Received::Closed => {
                // Every reader is gone: all nodes closed stdout. Sleep so we do not spin.
                self.clock.sleep(until.saturating_sub(now).min(10 * MS));
                self.check_crashed();
            }
        }
        while let Some(batch) = self.pipes.try_recv() {
            self.handle(batch);
        }
        self.deliver();
        self.flush();
    }

    /// When every node's stdout hit EOF and the processes exited, nothing can answer any
    /// more: the run stops early instead of waiting out its phases.
    pub(super) fn check_crashed(&mut self) {
        let pipes = &mut self.pipes;
        if self
            .nodes
            .iter()
            .enumerate()
            .all(|(i, n)| n.eof && pipes.exited(i))
        {
            self.all_crashed = true;
        }
    }

    fn abandon_in_flight(&mut self, now: u64, why: &str) {
        self.drop_unsent();
        for w in 0..self.clients.workers.len() {
            if !matches!(self.clients.workers[w].pending, Pending::Idle) {
                self.fail_pending(w, now, why.into(), false);
            }
        }
    }

    /// Issues main-phase ops that are due. Returns when the next one is due.
    fn dispatch_main(&mut self, now: u64) -> u64 {
        if self.crashes.due(now) <= now && !self.clients.free.is_empty() {
            let w = self.clients.take_free(&mut self.rng);
            self.crash(w, now);
            self.clients.free.push(w);
            self.crashes.issued(now, 0, &mut self.rng);
        }
        while !self.clients.free.is_empty() && self.rate.due(now) <= now {
            let w = self.clients.take_free(&mut self.rng);
            let op = self.generator.next(&mut self.rng);
            self.start(w, op, now);
            self.rate.issued(now, RATE_SLACK, &mut self.rng);
        }
        // With no worker free, neither schedule can be served, so neither is a reason to
        // wake: a reply (which frees a worker) or the loop's regular wake-up comes first, and
        // the due op or crash goes out then. Waking for a crash already due would spin.
        if self.clients.free.is_empty() {
            return u64::MAX;
        }
        self.crashes.due(now).min(self.rate.due(now))
    }

    /// A `crash` op: always `:info`, so the worker's next operation gets a fresh process
    /// and client.
    fn crash(&mut self, w: usize, now: u64) {
        self.clients.fresh_client(w, self.cfg.concurrency);
        let process = self.clients.workers[w].process;
        self.history
            .push(now, process, OpType::Invoke, OpValue::Crash, None);
        self.history
            .push(now, process, OpType::Info, OpValue::Crash, None);
        self.clients.retire(w);
    }

    /// Every worker crashes its client, assigns all keys from offset 0 and starts polling.
    fn start_final(&mut self) {
        let now = self.now();
        let max_offsets = self.generator.max_offsets();
        let targets: crate::client::Targets = max_offsets.iter().map(|(k, o)| (*k, *o)).collect();
        let targets = std::sync::Arc::new(targets);
        let mut keys: Vec<KeyId> = max_offsets.keys().copied().collect();
        keys.sort();
        let keys: crate::history::Keys = keys.into();
        self.clients.free.clear();
        for w in 0..self.clients.workers.len() {
            self.crash(w, now);
            // The final assign is the worker's next operation: a new client for it.
            self.clients.fresh_client(w, self.cfg.concurrency);
            let process = self.clients.workers[w].process;
            let value = OpValue::Assign {
                keys: keys.clone(),
                seek_to_beginning: true,
            };
            self.history
                .push(now, process, OpType::Invoke, value.clone(), None);
            self.clients.workers[w].offsets = Offsets::from_sorted(keys.clone());
            self.history.push(now, process, OpType::Ok, value, None);
            self.clients.workers[w].fin =
                FinalState::polling(targets.clone(), Stagger::new(FINAL_POLL_MEAN));
        }
    }

    /// Issues final-phase polls that are due. Returns when the next one is due.
    fn dispatch_final(&mut self, now: u64) -> u64 {
        let mut next = u64::MAX;
        for w in 0..self.clients.workers.len() {
            if !matches!(self.clients.workers[w].pending, Pending::Idle) {
                continue;
            }
            let FinalState::Polling { stagger, .. } = &mut self.clients.workers[w].fin else {
                continue;
            };
            let due = stagger.due(now);
            if due <= now {
                stagger.issued(now, 0, &mut self.rng);
                self.clients.busy += 1;
                self.start_poll(w, now);
            } else {
                next = next.min(due);
            }
        }
        next
    }
}
