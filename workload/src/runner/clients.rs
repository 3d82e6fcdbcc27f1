//! The clients: issuing each worker's requests, matching replies to them, timing them out,
//! and replacing a client that ended an op indeterminately.

use super::{Runner, body_text};
use crate::client::{self, FinalState, Pending};
use crate::generator::GenOp;
use crate::history::{History, KeyId, OpType, OpValue, Pairs, PollResult};
use crate::protocol::{self, Encoder, Reply};

impl Runner<'_> {
    pub(super) fn new_client(&mut self) -> u64 {
        self.next_client += 1;
        self.next_client
    }

    pub(super) fn take_free(&mut self) -> usize {
        let i = self.rng.usize(..self.free.len());
        self.free.swap_remove(i)
    }

    pub(super) fn replace_client(&mut self, w: usize) {
        let c = self.new_client();
        self.clients.remove(&self.workers[w].client);
        self.workers[w].replace(c, self.cfg.concurrency as u64);
        self.clients.insert(c, w);
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

    fn key_of(&mut self, k: u64) -> KeyId {
        self.h.tables.key(&k.to_string())
    }

    pub(super) fn start(&mut self, w: usize, op: GenOp, now: u64) {
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

    pub(super) fn start_poll(&mut self, w: usize, now: u64) {
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

    pub(super) fn expire(&mut self, now: u64) {
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
    pub(super) fn fail_pending(&mut self, w: usize, now: u64, error: String, definite: bool) {
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

    pub(super) fn on_reply(&mut self, w: usize, irt: u64, reply: Reply) {
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
}
