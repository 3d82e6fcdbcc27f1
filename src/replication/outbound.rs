//! Our class, towards each peer: what to send, and when to send it again.
//!
//! Per peer and key we keep what we sent and what it acknowledged ([`Sent`]); every period
//! [`Replicator::tick`] gathers our news ([`Replicator::gather_news`]), decides per peer what is
//! due ([`Replicator::due`]: news, expired ranges, owed acks) and writes the line
//! ([`Replicator::write_line`]).

use std::collections::BTreeSet;

use compact_str::CompactString;

use super::inbound::check_committed;
use super::wire::{Ack, LineWriter, Unfit};
use super::{Millis, OFFSETS_PER_BYTE, Replicator};
use crate::log::Class;
use crate::store::Logs;

/// What we told one peer about one key: our promise and committed value as sent, and as
/// acknowledged.
#[derive(Debug, Clone, Default)]
pub(super) struct Sent {
    /// The promise we last sent it.
    pub(super) sent: u64,
    /// The highest promise we ever sent it (`sent` goes back to `acked` for a resend).
    pub(super) sent_max: u64,
    /// The promise it acknowledged.
    pub(super) acked: u64,
    pub(super) sent_committed: u64,
    pub(super) acked_committed: u64,
    /// When we sent it the oldest range of this key it has not acknowledged: the retry counts
    /// from there.
    pub(super) sent_at: Millis,
}

impl Sent {
    /// Nothing sent yet: our class's first offset, `i`.
    pub(super) fn new(i: u64) -> Self {
        Self {
            sent: i,
            sent_max: i,
            acked: i,
            ..Self::default()
        }
    }

    /// Whether it acknowledged everything we sent it.
    fn all_acked(&self) -> bool {
        self.acked >= self.sent && self.acked_committed >= self.sent_committed
    }
}

/// One peer's bookkeeping.
#[derive(Debug, Clone)]
pub(super) struct Peer {
    /// Keys sent and not yet acknowledged.
    pub(super) unacked: BTreeSet<CompactString>,
    /// Keys it told us about since our last message to it: we owe it an acknowledgement.
    pub(super) owed: BTreeSet<CompactString>,
    /// Keys whose news did not all fit in our last message to it (see `LINE_TARGET` and
    /// [`OFFSETS_PER_BYTE`]): the rest goes in the next.
    pub(super) behind: BTreeSet<CompactString>,
    /// Its current retry delay.
    pub(super) retry: Millis,
}

impl Peer {
    pub(super) fn new(retry: Millis) -> Self {
        Self {
            unacked: BTreeSet::new(),
            owed: BTreeSet::new(),
            behind: BTreeSet::new(),
            retry,
        }
    }
}

impl Replicator {
    /// Takes peer `j`'s acks of what we sent it. One it could not have made is refused with a
    /// line on stderr.
    pub(super) fn apply_acks(&mut self, j: usize, acks: &[Ack]) {
        let src = &self.cluster.ids[j];
        for ack in acks {
            let Some(state) = self.keys.get_mut(ack.key.as_str()) else {
                crate::diag::note!(
                    "ignored an ack from {src} for key {:?}, never sent",
                    ack.key
                );
                continue;
            };
            let link = &mut state.links[j].ours;
            // An ack becomes the `from` of the next resend, and the peer checks that as it
            // checks any update: taking one it could not have sent would stop every resend of
            // the key to it.
            if let Err(why) = check_ack(ack, self.class, link.sent_max) {
                crate::diag::note!("ignored an ack from {src} for key {:?}: {why}", ack.key);
                continue;
            }
            link.acked = link.acked.max(ack.known);
            link.acked_committed = link.acked_committed.max(ack.committed);
            if link.all_acked() {
                self.peers[j].unacked.remove(ack.key.as_str());
            }
        }
    }

    /// The messages to send at `now`, as whole lines ready for the writer.
    pub fn tick(&mut self, now: Millis, store: &Logs) -> Vec<Vec<u8>> {
        let news = self.gather_news(store);
        let mut lines = Vec::new();
        for j in 0..self.cluster.len() {
            if j == self.cluster.me {
                continue;
            }
            let behind = std::mem::take(&mut self.peers[j].behind);
            let send = self.due(j, &news, &behind, now);
            let owed = std::mem::take(&mut self.peers[j].owed);
            if send.is_empty() && owed.is_empty() {
                self.peers[j].behind = behind;
                continue;
            }
            let (line, written) = self.write_line(j, &send, &owed, now, store);
            // A key still short of its promise or committed value goes again next period;
            // one held back by the acknowledged bound is looked at again then too. A key that
            // expired with nothing left to send (its acknowledgement came meanwhile) is done.
            for key in send.iter().chain(&behind) {
                let state = &self.keys[key.as_str()];
                let link = &state.links[j].ours;
                if state.promise > link.sent || state.committed > link.sent_committed {
                    self.peers[j].behind.insert(key.clone());
                }
                if link.all_acked() {
                    self.peers[j].unacked.remove(key.as_str());
                }
            }
            self.peers[j].unacked.extend(written.iter().cloned());
            if let Some(line) = line {
                lines.push(line);
            }
        }
        lines
    }

    /// Which keys have news of ours since the last tick (local sends and commits, and rounds a
    /// peer's offsets raised), with our promise and committed value brought up to date.
    fn gather_news(&mut self, store: &Logs) -> Vec<CompactString> {
        let mut fresh: BTreeSet<CompactString> = store.changed_keys().collect();
        fresh.append(&mut self.raised);
        let mut news = Vec::new();
        for key in fresh {
            let Some(key_log) = store.get(&key) else {
                continue;
            };
            let promise = self
                .keys
                .get(key.as_str())
                .map_or(self.class.i, |s| s.promise);
            let (promise, committed) = store.take_changes(&key_log, promise);
            drop(key_log);
            let state = self.key_state(&key);
            state.promise = promise;
            state.committed = state.committed.max(committed);
            news.push(key);
        }
        news
    }

    /// The keys due to peer `j` at `now`: the news (and what did not fit last time, `behind`)
    /// it has not been sent, and what it did not acknowledge within its retry, sent again from
    /// what it acknowledged. An expiry doubles the peer's retry, up to the ceiling.
    fn due(
        &mut self,
        j: usize,
        news: &[CompactString],
        behind: &BTreeSet<CompactString>,
        now: Millis,
    ) -> BTreeSet<CompactString> {
        let mut send: BTreeSet<CompactString> = news
            .iter()
            .chain(behind)
            .filter(|key| {
                let state = &self.keys[key.as_str()];
                let link = &state.links[j].ours;
                state.promise > link.sent || state.committed > link.sent_committed
            })
            .cloned()
            .collect();
        let retry = self.peers[j].retry;
        let mut expired = false;
        for key in &self.peers[j].unacked {
            let link = &mut self
                .keys
                .get_mut(key.as_str())
                .expect("sent keys have state")
                .links[j]
                .ours;
            if now >= link.sent_at.saturating_add(retry) {
                // Back to what it acknowledged: the whole unacknowledged range again.
                link.sent = link.acked;
                link.sent_committed = link.acked_committed;
                send.insert(key.clone());
                expired = true;
            }
        }
        if expired {
            self.peers[j].retry = (retry * 2).min(self.timing.retry_max);
        }
        send
    }

    /// A round peer `j`'s counter for a key has surely reached: it raised it to the round of
    /// every promise of ours it acknowledged, and handed out every round below every promise it
    /// made us.
    fn surely_reached(&self, key: &str, j: usize) -> u64 {
        let link = &self.keys[key].links[j];
        let theirs = self.cluster.class_of(j);
        let acked = (link.ours.acked - self.class.i) / self.class.n;
        acked.max((link.theirs.promised - theirs.i) / theirs.n)
    }

    /// Writes the line to peer `j` carrying `send` and the acks for `owed`, records what was
    /// sent, and returns the line (none if it carries nothing) with the keys it carries an
    /// update of.
    ///
    /// The line stays within the limits ([`LineWriter`]): acks past their share are owed
    /// again, a key's range is cut short at the first message that does not fit (a lower
    /// promise is still a promise, as every message of ours below it goes along), and keys that
    /// do not fit at all wait for the next period. What the line may open on the peer grows
    /// with its bytes ([`OFFSETS_PER_BYTE`]), and is charged as the peer will charge it.
    fn write_line(
        &mut self,
        j: usize,
        send: &BTreeSet<CompactString>,
        owed: &BTreeSet<CompactString>,
        now: Millis,
        store: &Logs,
    ) -> (Option<Vec<u8>>, Vec<CompactString>) {
        let mut line = LineWriter::new(self.limits, self.cluster.my_id(), &self.cluster.ids[j]);
        for key in owed {
            let state = &self.keys[key.as_str()];
            if !line.ack(key, state.links[j].theirs.known, state.committed) {
                // Acks that do not fit go next time; one that fits no line at all is for a key
                // no correct peer sends (`travels` refuses it to clients).
                if line.has_acks() {
                    self.peers[j].owed.insert(key.clone());
                } else {
                    crate::diag::note!(
                        "dropped the ack for key {key:?} to {}: it fits no line",
                        self.cluster.ids[j]
                    );
                }
            }
        }
        let class = self.class;
        let step = class.n;
        // Offsets this line opens on the peer, as it will charge them.
        let mut opened = 0u64;
        let mut written = Vec::new();
        for key in send {
            let state = &self.keys[key.as_str()];
            let sent = state.links[j].ours.sent;
            // The peer charges each update from its round counter, which has surely reached
            // `surely_reached`, and has reached the round of what we sent it last unless that
            // line was lost (then this one may be refused, and the resend, from what it
            // acknowledged, is charged from there).
            let base = self.surely_reached(key, j).max((sent - class.i) / step);
            let reach = |len: usize| reach(class, base, opened, len);
            // Never below what it was sent: a promise only moves forward. Messages past what
            // even a full line could open are not looked at this time.
            let limit = state.promise.min(reach(self.limits.max)).max(sent);
            match line.open(key, sent) {
                Ok(()) => {}
                Err(Unfit::Later) => continue,
                Err(Unfit::Never) => {
                    // A key no client could have sent or committed (`travels`).
                    crate::diag::note!("key {key:?} fits no line to {}", self.cluster.ids[j]);
                    continue;
                }
            }
            let mut to = limit;
            if let Some(key_log) = store.get(key) {
                // A message goes only if the line, with it, may open past it.
                let stop = key_log.log.visit_every(sent, limit, step, |offset, msg| {
                    line.message(offset, msg, |len| reach(len) > offset)
                });
                if let Some(stop) = stop {
                    to = stop;
                }
            }
            // Within what the whole line may open: still past every message it carries, as each
            // went only if it was.
            let to = to.min(reach(line.len())).max(sent);
            let state = self.keys.get_mut(key.as_str()).expect("news has state");
            let committed = state.committed;
            let link = &mut state.links[j].ours;
            if to == link.sent && committed == link.sent_committed {
                line.drop_open();
                continue;
            }
            line.close(to, committed);
            // The retry counts from the oldest range not acknowledged: a key with news every
            // period would otherwise never be resent while it stays busy.
            if link.all_acked() {
                link.sent_at = now;
            }
            opened = opened.saturating_add(((to - class.i) / step).saturating_sub(base) * step);
            link.sent = to;
            link.sent_max = link.sent_max.max(to);
            link.sent_committed = committed;
            written.push(key.clone());
        }
        let carries = line.updates() > 0 || !owed.is_empty();
        (carries.then(|| line.finish()), written)
    }
}

/// The highest promise of class `ours` a line of `len` bytes can carry for a key whose peer
/// charges from round `base`, when the line's earlier updates opened `opened` offsets (see
/// [`OFFSETS_PER_BYTE`]).
fn reach(ours: Class, base: u64, opened: u64, len: usize) -> u64 {
    let rounds = (len as u64)
        .saturating_mul(OFFSETS_PER_BYTE)
        .saturating_sub(opened)
        / ours.n;
    ours.offset(base.saturating_add(rounds)).unwrap_or(u64::MAX)
}

/// Whether an ack for a key we sent is one the peer could have made: a promise of our class
/// (`ours`), at most the highest we ever sent it (`sent_max`), and a committed value a client
/// could have made. A lower promise than the one it acknowledged before is fine: acks reorder.
fn check_ack(ack: &Ack, ours: Class, sent_max: u64) -> Result<(), String> {
    if !ours.owns(ack.known) {
        return Err(format!("{} is not one of our offsets", ack.known));
    }
    if ack.known > sent_max {
        return Err(format!("{} is above anything sent ({sent_max})", ack.known));
    }
    check_committed(ack.committed)
}
