//! Deterministic request generators for replay benchmarks: Maelstrom-shaped traffic and a
//! long-log profile, written as JSON lines in Maelstrom's envelope.
//!
//! The generator never talks to a node. It simulates the node's answers itself (offsets are
//! dense per key, so the `n`-th send to a key gets offset `n`), which is enough to produce the
//! polls and commits a Maelstrom client would send, and makes a replay file a pure function of
//! `(profile, requests, seed)`.

use std::fmt::Write as _;
use std::io::{self, Write};

/// Which traffic to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Maelstrom's kafka workload (see `docs/protocol.md` §5): 10 active keys with an
    /// exponential bias toward the newest, half sends and half polls, a key retired after 16
    /// sends, every non-empty poll followed by a `commit_offsets`, assigns that issue a
    /// `list_committed_offsets`, and clients that crash and come back under a new id.
    Maelstrom,
    /// A few keys that grow without bound: sends, polls near the tail (each followed by a
    /// commit), and now and then a poll from offset 0.
    LongLog,
}

impl Profile {
    /// Parses `maelstrom` or `long-log`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "maelstrom" => Some(Self::Maelstrom),
            "long-log" => Some(Self::LongLog),
            _ => None,
        }
    }

    /// The name [`Profile::from_name`] accepts.
    pub fn name(self) -> &'static str {
        match self {
            Self::Maelstrom => "maelstrom",
            Self::LongLog => "long-log",
        }
    }
}

/// Writes `requests` lines of `profile` traffic for `seed` to `out`: an `init` first, then
/// `requests - 1` RPCs. The same arguments always give the same bytes.
pub fn generate(
    profile: Profile,
    requests: u64,
    seed: u64,
    out: &mut impl Write,
) -> io::Result<()> {
    let mut generator = Generator::new(profile, seed);
    let mut line = String::with_capacity(256);
    for _ in 0..requests {
        line.clear();
        generator.next_line(&mut line);
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}

/// [`generate`] into memory, for benchmarks.
pub fn generate_vec(profile: Profile, requests: u64, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(usize::try_from(requests).unwrap_or(0) * 96);
    generate(profile, requests, seed, &mut out).expect("writing to a Vec cannot fail");
    out
}

/// splitmix64: tiny, fast, seedable, and the same everywhere: the one copy the node's load
/// generator, its benches and its simulation test share (the workload crate, which shares no
/// code with the node, keeps its own).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 if `n` is 0); the modulo bias is irrelevant at these sizes.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// True with probability `1 / n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

/// Maelstrom's default `--key-count`: keys active at once.
const ACTIVE_KEYS: usize = 10;
/// Maelstrom's default `--max-writes-per-key`.
const SENDS_PER_KEY: u64 = 16;
/// Client threads replayed at once.
const CLIENTS: usize = 8;
/// Keys in the long-log profile.
const LONG_LOG_KEYS: u64 = 3;

/// One simulated Maelstrom client: its id, its next `msg_id`, and its assigned keys with the
/// next offset to poll from each.
#[derive(Debug)]
struct Client {
    id: u64,
    msg_id: u64,
    assigned: Vec<(u64, u64)>,
    /// The commit owed after the last non-empty poll.
    pending_commit: Option<Vec<(u64, u64)>>,
}

impl Client {
    fn new(id: u64) -> Self {
        Self {
            id,
            msg_id: 0,
            assigned: Vec::new(),
            pending_commit: None,
        }
    }
}

/// Produces one request line at a time.
#[derive(Debug)]
pub struct Generator {
    profile: Profile,
    rng: Rng,
    /// Lines written so far; also the envelope's `id`.
    emitted: u64,
    clients: Vec<Client>,
    next_client_id: u64,
    /// Active keys, oldest first (Maelstrom profile), or every key (long-log).
    keys: Vec<u64>,
    next_key: u64,
    /// Sends so far per key number, which is also the key's next offset.
    sent: Vec<u64>,
}

impl Generator {
    /// A generator for `profile` seeded with `seed`.
    pub fn new(profile: Profile, seed: u64) -> Self {
        let key_count = match profile {
            Profile::Maelstrom => ACTIVE_KEYS as u64,
            Profile::LongLog => LONG_LOG_KEYS,
        };
        Self {
            profile,
            rng: Rng::new(seed),
            emitted: 0,
            clients: (1..=CLIENTS as u64).map(Client::new).collect(),
            next_client_id: CLIENTS as u64 + 1,
            keys: (0..key_count).collect(),
            next_key: key_count,
            sent: vec![0; usize::try_from(key_count).expect("few keys")],
        }
    }

    /// Appends the next request line, newline included, to `line`.
    pub fn next_line(&mut self, line: &mut String) {
        if self.emitted == 0 {
            self.emitted = 1;
            line.push_str(
                r#"{"id":0,"src":"c0","dest":"n0","body":{"type":"init","msg_id":1,"node_id":"n0","node_ids":["n0"]}}"#,
            );
            line.push('\n');
            return;
        }
        let c = usize::try_from(self.rng.below(CLIENTS as u64)).expect("few clients");
        let body = match self.profile {
            Profile::Maelstrom => self.maelstrom_body(c),
            Profile::LongLog => self.long_log_body(c),
        };
        let client = &mut self.clients[c];
        client.msg_id += 1;
        let _ = write!(
            line,
            r#"{{"id":{},"src":"c{}","dest":"n0","body":{{{},"msg_id":{}}}}}"#,
            self.emitted, client.id, body, client.msg_id
        );
        line.push('\n');
        self.emitted += 1;
    }

    /// The body fields (without `msg_id`) of client `c`'s next Maelstrom-shaped request.
    fn maelstrom_body(&mut self, c: usize) -> String {
        if let Some(commit) = self.clients[c].pending_commit.take() {
            return commit_body(&commit);
        }
        // A crash makes no RPC; the thread carries on as a fresh client with a new id.
        if self.rng.one_in(2000) {
            self.clients[c] = Client::new(self.next_client_id);
            self.next_client_id += 1;
        }
        let key_idx = self.biased_key();
        let key = self.keys[key_idx];
        // Maelstrom replaces 1/8 (0.2.3) to 1/64 (0.2.4+) of operations with an assign.
        if self.rng.one_in(16) {
            let mut keys = vec![key];
            if self.rng.one_in(3) {
                // Widened with every key that has messages.
                keys.extend(
                    self.keys.iter().copied().filter(|&k| {
                        k != key && self.sent[usize::try_from(k).expect("key fits")] > 0
                    }),
                );
            }
            let client = &mut self.clients[c];
            let fresh: Vec<u64> = keys
                .iter()
                .copied()
                .filter(|k| !client.assigned.iter().any(|(a, _)| a == k))
                .collect();
            client.assigned = keys
                .iter()
                .map(|&k| {
                    let next = client
                        .assigned
                        .iter()
                        .find(|(a, _)| *a == k)
                        .map_or(0, |&(_, next)| next);
                    (k, next)
                })
                .collect();
            if !fresh.is_empty() {
                return list_committed_body(&fresh);
            }
            // Nothing new to look up: the assign made no RPC; carry on with a poll.
        } else if self.rng.one_in(2) {
            return self.send_body(key_idx);
        }
        self.poll_body(c, |_, next| next)
    }

    /// The body fields of client `c`'s next long-log request.
    fn long_log_body(&mut self, c: usize) -> String {
        if let Some(commit) = self.clients[c].pending_commit.take() {
            return commit_body(&commit);
        }
        let key_idx = usize::try_from(self.rng.below(LONG_LOG_KEYS)).expect("few keys");
        if self.clients[c].assigned.is_empty() {
            self.clients[c].assigned = self.keys.iter().map(|&k| (k, 0)).collect();
        }
        if self.rng.below(3) < 2 {
            return self.send_body(key_idx);
        }
        if self.rng.one_in(10_000) {
            // A catch-up read of everything, as in Maelstrom's final phase.
            return self.poll_body(c, |_, _| 0);
        }
        // Near the tail: a client that lags its key by a few messages.
        let lag = self.rng.below(8);
        self.poll_body(c, move |tail, _| tail.saturating_sub(lag))
    }

    /// A send to the key at `key_idx`, retiring it after [`SENDS_PER_KEY`] in the Maelstrom
    /// profile.
    fn send_body(&mut self, key_idx: usize) -> String {
        let key = self.keys[key_idx];
        let sent = &mut self.sent[usize::try_from(key).expect("key fits")];
        *sent += 1;
        let value = *sent;
        if self.profile == Profile::Maelstrom && value == SENDS_PER_KEY {
            self.keys.remove(key_idx);
            self.keys.push(self.next_key);
            self.next_key += 1;
            self.sent.push(0);
        }
        format!(r#""type":"send","key":"{key}","msg":{value}"#)
    }

    /// A poll of client `c`'s assigned keys, each from `from(tail, next)`; queues the commit
    /// that follows a non-empty poll and advances the client's offsets as its reply would.
    fn poll_body(&mut self, c: usize, from: impl Fn(u64, u64) -> u64) -> String {
        let client = &mut self.clients[c];
        let mut body = String::from(r#""type":"poll","offsets":{"#);
        let mut commit = Vec::new();
        for (i, (key, next)) in client.assigned.iter_mut().enumerate() {
            let tail = self.sent[usize::try_from(*key).expect("key fits")];
            let offset = from(tail, *next);
            if i > 0 {
                body.push(',');
            }
            let _ = write!(body, r#""{key}":{offset}"#);
            if tail > offset {
                commit.push((*key, tail - 1));
                *next = (*next).max(tail);
            }
        }
        body.push('}');
        if !commit.is_empty() {
            client.pending_commit = Some(commit);
        }
        body
    }

    /// Index into `keys` of the key an operation picks: the newest with probability 1/2, the
    /// next newest 1/4, and so on (the oldest takes the remainder).
    fn biased_key(&mut self) -> usize {
        let newest = self.keys.len() - 1;
        let skip = (self.rng.next_u64() | 1 << 63).trailing_zeros() as usize;
        newest.saturating_sub(skip)
    }
}

fn commit_body(offsets: &[(u64, u64)]) -> String {
    let mut body = String::from(r#""type":"commit_offsets","offsets":{"#);
    for (i, (key, offset)) in offsets.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        let _ = write!(body, r#""{key}":{offset}"#);
    }
    body.push('}');
    body
}

fn list_committed_body(keys: &[u64]) -> String {
    let mut body = String::from(r#""type":"list_committed_offsets","keys":["#);
    for (i, key) in keys.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        let _ = write!(body, r#""{key}""#);
    }
    body.push(']');
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(profile: Profile, n: u64, seed: u64) -> Vec<String> {
        String::from_utf8(generate_vec(profile, n, seed))
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    #[test]
    fn same_seed_same_bytes() {
        for profile in [Profile::Maelstrom, Profile::LongLog] {
            assert_eq!(
                generate_vec(profile, 5000, 7),
                generate_vec(profile, 5000, 7)
            );
            assert_ne!(
                generate_vec(profile, 5000, 7),
                generate_vec(profile, 5000, 8)
            );
        }
    }

    #[test]
    fn every_line_is_an_envelope_and_init_comes_first() {
        for profile in [Profile::Maelstrom, Profile::LongLog] {
            let lines = lines(profile, 20_000, 1);
            assert_eq!(lines.len(), 20_000);
            assert!(lines[0].contains(r#""type":"init""#));
            for line in &lines {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!(v["dest"], "n0");
                assert!(v["src"].as_str().unwrap().starts_with('c'));
                assert!(v["body"]["msg_id"].is_u64());
            }
        }
    }

    #[test]
    fn maelstrom_keys_retire_after_sixteen_sends_and_polls_are_committed() {
        let lines = lines(Profile::Maelstrom, 50_000, 3);
        let mut per_key = std::collections::HashMap::<String, u64>::new();
        let (mut polls, mut commits, mut lists) = (0, 0, 0);
        for line in &lines {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            match v["body"]["type"].as_str().unwrap() {
                "send" => {
                    let n = per_key
                        .entry(v["body"]["key"].as_str().unwrap().into())
                        .or_default();
                    *n += 1;
                    assert_eq!(v["body"]["msg"], *n);
                }
                "poll" => polls += 1,
                "commit_offsets" => commits += 1,
                "list_committed_offsets" => lists += 1,
                _ => {}
            }
        }
        assert!(per_key.values().all(|&n| n <= SENDS_PER_KEY));
        assert!(per_key.len() > 1000, "{} keys", per_key.len());
        assert!(commits > polls / 4, "{commits} commits for {polls} polls");
        assert!(lists > 0);
    }
}
