//! Their class, towards us: what we know of each peer's promise per key, the ranges that wait
//! for the ones below them, and the checks every update passes before it changes anything.

use compact_str::CompactString;

use super::wire::{Replicate, Update};
use super::{OFFSETS_PER_BYTE, Replicator};
use crate::limits::PENDING_MAX;
use crate::log::{CAPACITY, Class, Log};
use crate::store::{Logs, MAX_OFFSET, Msg};

/// What one peer told us about one key of its class.
#[derive(Debug, Clone, Default)]
pub(super) struct Known {
    /// Its promise, as far as we have every message below it.
    pub(super) known: u64,
    /// The highest promise it has sent us, joined or still waiting: it has handed out every
    /// round below that one's.
    pub(super) promised: u64,
    /// Its ranges that arrived before the ones below them: (from, to).
    pub(super) pending: Vec<(u64, u64)>,
}

impl Known {
    /// Nothing heard yet from the node whose class starts at `i`.
    pub(super) fn new(i: u64) -> Self {
        Self {
            known: i,
            promised: i,
            pending: Vec::new(),
        }
    }
}

impl Replicator {
    /// Applies peer `j`'s updates in `message`. One that fails its checks, or would open more
    /// than its line may, gets a line on stderr and changes nothing.
    pub(super) fn apply_updates(&mut self, j: usize, message: &Replicate, store: &Logs) {
        let theirs = self.cluster.class_of(j);
        // What the whole line may open (see `OFFSETS_PER_BYTE`), charged against every key's
        // round counter as it stood before the line.
        let mut budget = (message.line_len as u64).saturating_mul(OFFSETS_PER_BYTE);
        let before: Vec<u64> = message
            .updates
            .iter()
            .map(|update| store.reserved_offsets(&update.key))
            .collect();
        for (update, &ours) in message.updates.iter().zip(&before) {
            let src = &self.cluster.ids[j];
            if let Err(why) = check(update, theirs) {
                crate::diag::note!(
                    "ignored an update from {src} for key {:?}: {why}",
                    update.key
                );
                continue;
            }
            let round = (update.to - theirs.i) / theirs.n;
            let opens = round.saturating_sub(ours).saturating_mul(theirs.n);
            if opens > budget {
                crate::diag::note!(
                    "ignored an update from {src} for key {:?}: its promise {} would open {opens} \
                     offsets, more than the {budget} its {}-byte line has left",
                    update.key,
                    update.to,
                    message.line_len
                );
                continue;
            }
            budget -= opens;
            self.apply_update(j, theirs, update, store);
        }
    }

    fn apply_update(&mut self, j: usize, theirs: Class, update: &Update, store: &Logs) {
        let ours = self.class;
        let key_log = store.get_or_create(&update.key);
        let log: &Log<Msg> = &key_log.log;
        for (offset, msg) in &update.msgs {
            if log.insert(*offset, msg.clone()).is_err() {
                crate::diag::note!(
                    "ignored message at offset {offset} of key {:?} from {}: the slot holds \
                     something else",
                    update.key,
                    self.cluster.ids[j]
                );
            }
        }
        if let Some(&(highest, _)) = update.msgs.last()
            && log.raise(ours, highest)
        {
            self.raised.insert(update.key.clone());
        }
        Logs::merge_commit(&key_log, update.committed);
        let state = self.key_state(&update.key);
        state.committed = state.committed.max(update.committed);
        let link = &mut state.links[j].theirs;
        // A range that joins at once is always taken, however many wait: it is what the sender
        // resends, from what we acknowledged, to get past ranges waiting here.
        link.promised = link.promised.max(update.to);
        let joins = update.from <= link.known;
        if update.to > link.known && (joins || link.pending.len() < PENDING_MAX) {
            link.pending.push((update.from, update.to));
        }
        // Join every range that now starts at or below what we know; each one's messages were
        // stored when it arrived, so its unset slots below its promise are holes.
        loop {
            let known = link.known;
            let Some(at) = link.pending.iter().position(|&(from, _)| from <= known) else {
                break;
            };
            let (_, to) = link.pending.swap_remove(at);
            if to > link.known {
                log.fill_holes(link.known, to, theirs.n);
                link.known = to;
            }
        }
        // Keep up with the sender's round too, not only its messages: then our promise passes
        // whatever it has passed, and a third node that hears only from us can still expose
        // what the sender sent (during a partition between the two). The highest round on any
        // node does not grow this way, so offsets stay below nodes × messages.
        let their_round = (link.known - theirs.i) / theirs.n;
        if log.raise_to(ours, their_round) {
            self.raised.insert(update.key.clone());
        }
        self.peers[j].owed.insert(CompactString::clone(&update.key));
    }
}

/// Whether an update from the node of class `theirs` is well formed: a range of its class, its
/// messages inside that range, ascending, and a committed value a client could have made.
fn check(update: &Update, theirs: Class) -> Result<(), String> {
    let Update {
        from,
        to,
        committed,
        ..
    } = *update;
    if !theirs.owns(from) || !theirs.owns(to) {
        return Err(format!("range {from}..{to} is not of the sender's offsets"));
    }
    if from > to || to > CAPACITY {
        return Err(format!("range {from}..{to} is backwards or too large"));
    }
    check_committed(committed)?;
    let mut last = None;
    for &(offset, _) in &update.msgs {
        if !theirs.owns(offset) || offset < from || offset >= to {
            return Err(format!("offset {offset} is outside its range or class"));
        }
        if last.is_some_and(|last| offset <= last) {
            return Err(format!("offset {offset} is out of order"));
        }
        last = Some(offset);
    }
    // Polls write a message's text out as stored, so text that is not one JSON value on one
    // line would put a broken line on stdout, which Maelstrom never reads past.
    for (offset, text) in &update.msgs {
        if !one_json_value(text) {
            return Err(format!(
                "the message at offset {offset} is not one JSON value"
            ));
        }
    }
    Ok(())
}

/// Whether a committed value (offset plus one, 0 for none) from a peer is one a client could
/// have made: clients commit offsets up to [`MAX_OFFSET`], as `commit_offsets` checks.
pub(super) fn check_committed(committed: u64) -> Result<(), String> {
    if committed > MAX_OFFSET + 1 {
        return Err(format!(
            "committed value {committed} is past any offset (at most {MAX_OFFSET} plus one)"
        ));
    }
    Ok(())
}

/// Whether `text` is what the node stores for a client's `msg`: one JSON value, as the same
/// parser reads it, with no line break (a carriage return between tokens is stored as a space).
fn one_json_value(text: &str) -> bool {
    !text.bytes().any(|b| b == b'\n' || b == b'\r')
        && simd_json::to_tape(&mut text.as_bytes().to_vec()).is_ok()
}
