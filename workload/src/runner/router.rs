//! The router: what the nodes print goes to a client, a node or a service; what is due
//! is delivered; a node that breaks the protocol loses its stdout.

use std::collections::VecDeque;

use super::clients::{Answer, Unsent};
use super::{Clock, NodeFault, Pipes, Runner};
use crate::network::{Addr, Payload};
use crate::node::Event;
use crate::protocol::{Dest, Inbound};
use crate::text::clip;

/// The scheduler's view of one node's pipes.
#[derive(Debug, Default)]
pub(super) struct NodeSlot {
    /// Bytes queued for stdin during this scheduler iteration.
    pub(super) out: Vec<u8>,
    /// What waits behind `out`, in order, to be written once the node's stdin has taken
    /// everything before it: requests not encoded yet (the final phase's, which name every
    /// key), and whatever came for the node after them.
    pub(super) later: VecDeque<Later>,
    /// The node printed an invalid line or wrote to a name not on the network: as in
    /// Maelstrom, nothing it prints is read any more.
    pub(super) stdout_dead: bool,
    /// Its stdout ended.
    pub(super) eof: bool,
}

/// Something for a node's stdin that waits its turn in [`NodeSlot::later`].
#[derive(Debug)]
pub(super) enum Later {
    /// A line, as it will be written.
    Line(Vec<u8>),
    /// A client's request, encoded when its turn comes.
    Request(Unsent),
}

impl NodeSlot {
    /// What was written to `out` from `from` on goes behind what waits in `later`, if
    /// anything does: lines reach the node in the order they were sent.
    pub(super) fn keep_order(&mut self, from: usize) {
        if !self.later.is_empty() {
            let line = self.out.split_off(from);
            self.later.push_back(Later::Line(line));
        }
    }
}

impl<C: Clock, P: Pipes> Runner<'_, C, P> {
    pub(super) fn handle(&mut self, batch: Vec<Event>) {
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
                    let read_at = self.clock.since_origin(read_at);
                    match msg {
                        Inbound::Reply {
                            dest,
                            in_reply_to,
                            reply,
                        } => {
                            let answer = Answer { in_reply_to, reply };
                            self.route(node, dest, Some(answer), body, read_at)
                        }
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
    /// (see [`Node::handed_over_before`](crate::node::Node::handed_over_before)), at most
    /// `now`. Nodes whose stdout ended or is dead have nothing more to say.
    pub(super) fn handed_over_before(&self, now: u64) -> u64 {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| !n.eof && !n.stdout_dead)
            .map(|(i, _)| self.clock.since_origin(self.pipes.handed_over_before(i)))
            .fold(now, u64::min)
    }

    /// One valid line from `node`, read at `read_at`: to a client (an answer, or an
    /// invalid destination once the client is gone), over the network to a node or a
    /// service, or nowhere, which kills the node's stdout.
    fn route(
        &mut self,
        node: usize,
        dest: Dest,
        answer: Option<Answer>,
        body: Option<String>,
        read_at: u64,
    ) {
        match dest {
            Dest::Node(to) | Dest::Service(to) => {
                let now = self.now();
                self.net
                    .send(now, node, to, body.unwrap_or_default().into_boxed_str());
            }
            Dest::Client(c) => self.line_to_client(node, c, answer, body, read_at),
            Dest::Unknown(name) => {
                let from = &self.cfg.node_ids[node];
                let what = clip(body.as_deref().unwrap_or("?"), 200);
                let detail = format!(
                    "Invalid dest for message: {from} sent {what} to {name:?}, which is not on the network"
                );
                self.kill_stdout(node, "invalid-dest", detail);
            }
        }
    }

    /// Hands every message that is due to its node or service.
    pub(super) fn deliver(&mut self) {
        if self.net.next_deadline().is_none() {
            return;
        }
        let now = self.now();
        let nodes = self.nodes.len();
        while let Some(msg) = self.net.pop_due(now) {
            let from = self.nodes.get(msg.dest).map_or(0, |s| s.out.len());
            match &msg.payload {
                Payload::Line(line) => self.nodes[msg.dest].out.extend_from_slice(line),
                &Payload::Unsent { worker, seq } => {
                    let u = Unsent {
                        worker,
                        seq,
                        id: msg.id,
                    };
                    self.nodes[msg.dest].later.push_back(Later::Request(u));
                    continue;
                }
                Payload::Body(body) if msg.dest < nodes => {
                    let (src, dest) = (self.net.name(msg.src), self.net.name(msg.dest));
                    let out = &mut self.nodes[msg.dest].out;
                    crate::network::envelope(out, msg.id, src, dest, body);
                }
                Payload::Body(body) => {
                    self.serve(now, msg.src, msg.dest, body);
                    continue;
                }
            }
            self.nodes[msg.dest].keep_order(from);
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

    /// Maelstrom's fatal quirk: after this, nothing `node` prints is read. Recorded as a
    /// node fault, once.
    pub(super) fn kill_stdout(&mut self, node: usize, kind: &'static str, detail: String) {
        let slot = &mut self.nodes[node];
        if slot.stdout_dead {
            return;
        }
        slot.stdout_dead = true;
        let name = self.cfg.node_ids[node].clone();
        self.progress.note(&format!(
            "Error! {name}'s stdout is dead from now on, as in Maelstrom ({kind}): {detail}"
        ));
        let time = self.now();
        self.faults.push(NodeFault {
            node: name,
            kind: kind.into(),
            detail,
            time,
        });
    }

    /// Hands what this iteration queued for each node to its stdin, keeping the buffer for
    /// the next iteration. True if some node's stdin still holds back bytes (its pipe was
    /// full): the loop then looks again soon.
    ///
    /// What waits in [`NodeSlot::later`] is written only once the pipe has taken all that
    /// came before it, a request encoded only then: a node that reads one large request at
    /// a time has at most one of them waiting as bytes in the runner, not every client's.
    pub(super) fn flush(&mut self) -> bool {
        let mut any_held = false;
        for i in 0..self.nodes.len() {
            let mut held = self.send_out(i);
            while !held && let Some(next) = self.nodes[i].later.pop_front() {
                held = match next {
                    Later::Line(line) => self.pipes.send(i, &line),
                    // Encoded into `out` (never empty then) unless it was made earlier.
                    Later::Request(u) => match self.encode_unsent(i, u) {
                        Some(line) => self.pipes.send(i, &line),
                        None => self.send_out(i),
                    },
                };
            }
            any_held |= held;
        }
        any_held
    }

    /// Sends what node `i`'s `out` holds and empties it, or, when it holds nothing, offers
    /// the pipe what it held back before. Whether the pipe still holds some back.
    fn send_out(&mut self, i: usize) -> bool {
        let slot = &mut self.nodes[i];
        let held = if slot.out.is_empty() {
            self.pipes.retry(i)
        } else {
            self.pipes.send(i, &slot.out)
        };
        slot.out.clear();
        held
    }
}
