//! The router: what the nodes print goes to a client, a node or a service; what is due
//! is delivered; a node that breaks the protocol loses its stdout.

use super::{NodeFault, Runner};
use crate::client::Pending;
use crate::network::{Addr, Payload};
use crate::node::Event;
use crate::protocol::{Dest, Inbound, Reply};
use crate::text::clip;

impl Runner<'_> {
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
    /// (see [`Node::handed_over_before`](crate::node::Node::handed_over_before)), at most
    /// `now`. Nodes whose stdout ended or is dead have nothing more to say.
    pub(super) fn handed_over_before(&self, now: u64) -> u64 {
        self.nodes
            .iter()
            .filter(|n| !n.eof && !n.stdout_dead)
            .map(|n| {
                let at = n.node.handed_over_before();
                at.saturating_duration_since(self.origin).as_nanos() as u64
            })
            .fold(now, u64::min)
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

    /// Hands every message that is due to its node or service.
    pub(super) fn deliver(&mut self) {
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

    pub(super) fn flush(&mut self) {
        for slot in &mut self.nodes {
            if !slot.out.is_empty() {
                slot.node.send(std::mem::take(&mut slot.out));
            }
        }
    }
}
