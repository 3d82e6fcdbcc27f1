//! A `poll_ok`'s `msgs` as the reader hands it to the scheduler, and the one-pass reading of
//! its common shape.
//!
//! A final-phase poll reply names every key from offset 0: about a megabyte of text and
//! a hundred thousand `[offset, value]` pairs, 256 such replies in a 10 s run at 100k ops/s.
//! Read through serde, each key became a `String` and a vector of 32-byte pairs, which the
//! scheduler then interned and freed. Nearly every value in such a reply is a small
//! non-negative integer, which is its own [`MsgId`], and nearly every key's pairs are a run
//! of consecutive offsets (in a cluster's replies, many have gaps); so [`Runs::read`] reads
//! that shape straight into flat arrays (the keys' text, the values as ids, the offsets of
//! keys that are not runs, and per key its first offset and where each part ends), in one
//! pass and a handful of allocations a reply. Anything else falls back to serde
//! ([`Polled::Raw`], read as Maelstrom reads it: see `protocol::RawMsgs`): the two must
//! agree on every input, which the differential test and the `poll_msgs` fuzz target
//! check ([`crate::fuzz::poll_msgs`]).

use std::hash::BuildHasher as _;

use hashbrown::HashTable;

use crate::history::{FxBuild, MsgId};
use crate::protocol::{RawMsg, RawPolled};

/// A `poll_ok`'s `msgs`, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Polled {
    /// Every pair holds a non-negative offset and a small non-negative integer, and no key
    /// has an escape in it: read in one pass ([`Runs::read`]).
    Runs(Runs),
    /// Anything else, as serde reads it.
    Raw(RawPolled),
}

impl Polled {
    /// The keys and pairs as serde would have read them, in the order the node wrote them.
    pub fn to_raw(&self) -> RawPolled {
        match self {
            Polled::Raw(raw) => raw.clone(),
            Polled::Runs(runs) => runs
                .iter()
                .map(|(k, pairs)| {
                    let int = |m: &MsgId| RawMsg::Int(m.0.into());
                    let pairs = match pairs {
                        // A run's offsets never overflow (`Runs::read` checks), so
                        // `first + i` does not.
                        KeyPairs::Run { first, values } => values
                            .iter()
                            .enumerate()
                            .map(|(i, m)| (first + i as i64, int(m)))
                            .collect(),
                        KeyPairs::Explicit { offsets, values } => offsets
                            .iter()
                            .copied()
                            .zip(values.iter().map(int))
                            .collect(),
                    };
                    (k.to_owned(), pairs)
                })
                .collect(),
        }
    }
}

/// The keys of a poll reply, each with its pairs: the keys' text one after another, every
/// key's values one after another, the offsets of the keys whose pairs are not a run one
/// after another, and per key where each part ends and its first offset.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Runs {
    keys: String,
    values: Vec<MsgId>,
    offsets: Vec<i64>,
    runs: Vec<Run>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    key_end: usize,
    values_end: usize,
    /// Where the key's offsets end in `offsets`: none of its own if its pairs are a run.
    offsets_end: usize,
    /// The first pair's offset; 0 for a key with no pairs, as [`crate::history::Pairs`]
    /// keeps an empty run.
    first: i64,
}

/// One key's pairs in a [`Runs`], as [`crate::history::Pairs`] keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPairs<'a> {
    /// Offsets `first`, `first + 1`, … holding `values`.
    Run { first: i64, values: &'a [MsgId] },
    /// Offsets that are not consecutive (gaps, repeats, disorder), each with its value.
    Explicit {
        offsets: &'a [i64],
        values: &'a [MsgId],
    },
}

impl Runs {
    /// Each key in the order written, with its pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, KeyPairs<'_>)> + '_ {
        let ends = |r: &Run| (r.key_end, r.values_end, r.offsets_end);
        let starts = std::iter::once((0, 0, 0)).chain(self.runs.iter().map(ends));
        starts.zip(&self.runs).map(|((key, values, offsets), r)| {
            let values = &self.values[values..r.values_end];
            let pairs = if offsets == r.offsets_end {
                KeyPairs::Run {
                    first: r.first,
                    values,
                }
            } else {
                KeyPairs::Explicit {
                    offsets: &self.offsets[offsets..r.offsets_end],
                    values,
                }
            };
            (&self.keys[key..r.key_end], pairs)
        })
    }

    /// How many keys (each once: [`Runs::read`] takes no text that writes one twice).
    pub fn len(&self) -> usize {
        self.runs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Reads `msgs`, JSON text that serde_json has already accepted as one value, if it
    /// is an object whose every key has no escape and is written once, and whose every
    /// value is an array of `[offset, value]` pairs, the offsets non-negative integers and
    /// the values integers that are their own [`MsgId`]. `None` for anything else (which
    /// the caller reads with serde instead), and for anything this reading is unsure of:
    /// an escape, a minus sign, a fraction or exponent, a number past its range, a key
    /// written twice (which holds the pairs written last in Maelstrom's map of the reply).
    ///
    /// Because the text is valid JSON, what this accepts needs no further check: a string
    /// without a backslash is its bytes between the quotes, digits without a sign,
    /// fraction or exponent are the integer serde would read.
    pub fn read(msgs: &str) -> Option<Runs> {
        let mut c = Cursor::new(msgs);
        let out = Runs::read_value(&mut c)?;
        c.skip_ws();
        (c.at == msgs.len()).then_some(out)
    }

    /// [`Runs::read`] of the object at the cursor (after any whitespace), leaving the
    /// cursor after it. The text need not have been checked: anything this takes is JSON
    /// serde_json takes (strings without escapes or control characters, digits without a
    /// leading zero, JSON's whitespace), so a reader of a whole line can take `msgs` in
    /// the same pass.
    pub(crate) fn read_value(c: &mut Cursor<'_>) -> Option<Runs> {
        // Sized by what is left of the text: the line's rest is mostly `msgs`.
        let left = c.text.len() - c.at;
        let mut out = Runs {
            keys: String::with_capacity(left / 16),
            values: Vec::with_capacity(left / 8),
            offsets: Vec::new(),
            runs: Vec::new(),
        };
        // Where each key sits, once there are too many to compare with one by one.
        let mut index = HashTable::new();
        c.expect(b'{')?;
        if !c.eat(b'}') {
            loop {
                let key = c.string()?;
                // A key written twice holds the pairs written last in Maelstrom's map of
                // the reply: rare enough to leave to serde, which keeps that.
                if out.has_key(key, &mut index) {
                    return None;
                }
                out.keys.push_str(key);
                c.expect(b':')?;
                let first = out.run(c)?;
                out.runs.push(Run {
                    key_end: out.keys.len(),
                    values_end: out.values.len(),
                    offsets_end: out.offsets.len(),
                    first,
                });
                if c.eat(b'}') {
                    break;
                }
                c.expect(b',')?;
            }
        }
        Some(out)
    }

    /// Whether `key` is among the keys read so far; if not, it is added to `index` (which
    /// holds every key read so far once there are [`Runs::LIST`] of them, else nothing).
    fn has_key(&self, key: &str, index: &mut HashTable<usize>) -> bool {
        let key_at = |i: usize| {
            let start = i.checked_sub(1).map_or(0, |p| self.runs[p].key_end);
            &self.keys[start..self.runs[i].key_end]
        };
        let hash = |k: &str| FxBuild.hash_one(k);
        let n = self.runs.len();
        if n < Self::LIST {
            return (0..n).any(|i| key_at(i) == key);
        }
        if index.is_empty() {
            for i in 0..n {
                index.insert_unique(hash(key_at(i)), i, |&j| hash(key_at(j)));
            }
        }
        let h = hash(key);
        if index.find(h, |&j| key_at(j) == key).is_some() {
            return true;
        }
        index.insert_unique(h, n, |&j| hash(key_at(j)));
        false
    }

    /// Up to how many keys a new one is compared with one by one: a main-phase poll
    /// names a few keys, a final-phase one every key.
    const LIST: usize = 16;

    /// One key's `[[offset, value], …]`, its values pushed, and its offsets too once they
    /// are not a run; the first offset.
    fn run(&mut self, c: &mut Cursor<'_>) -> Option<i64> {
        c.expect(b'[')?;
        if c.eat(b']') {
            return Some(0);
        }
        let values_start = self.values.len();
        let mut first = None;
        let mut next = None;
        let mut explicit = false;
        loop {
            let (offset, value) = match c.tight_pair() {
                Some(pair) => pair,
                None => c.pair()?,
            };
            let offset = i64::try_from(offset).ok()?;
            let value = MsgId::small(value)?;
            // A run as `Pairs` keeps one: each offset one past the last, without
            // overflowing. The first pair that breaks it makes every pair explicit.
            match first {
                None => first = Some(offset),
                Some(f) if !explicit && next != Some(offset) => {
                    explicit = true;
                    let run = self.values.len() - values_start;
                    self.offsets.extend((0..run).map(|i| f + i as i64));
                }
                Some(_) => {}
            }
            next = offset.checked_add(1);
            if explicit {
                self.offsets.push(offset);
            }
            self.values.push(value);
            // The separator, most often right after the pair.
            match c.text.as_bytes().get(c.at) {
                Some(b',') => c.at += 1,
                Some(b']') => {
                    c.at += 1;
                    return first;
                }
                _ if c.eat(b']') => return first,
                _ => c.expect(b',')?,
            }
        }
    }
}

/// A position in JSON text. What its readers take is valid JSON as far as they read it;
/// anything else, or anything they are unsure of, is `None`.
pub(crate) struct Cursor<'a> {
    text: &'a str,
    pub(crate) at: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Cursor { text, at: 0 }
    }

    /// The text not read yet.
    pub(crate) fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    /// Whether only whitespace is left.
    pub(crate) fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.at == self.text.len()
    }

    /// Skips JSON's whitespace (space, tab, line feed, carriage return).
    pub(crate) fn skip_ws(&mut self) {
        let b = self.text.as_bytes();
        while matches!(b.get(self.at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// Takes `byte` after any whitespace, if it is next.
    pub(crate) fn eat(&mut self, byte: u8) -> bool {
        self.skip_ws();
        let hit = self.text.as_bytes().get(self.at) == Some(&byte);
        self.at += usize::from(hit);
        hit
    }

    pub(crate) fn expect(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    /// A string without escapes or control characters (which JSON writes escaped): its
    /// text between the quotes.
    pub(crate) fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let rest = &self.text.as_bytes()[self.at..];
        let len = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        // A key longer than Jackson takes is left to the reading that measures it.
        if rest[len] != b'"' || len > crate::protocol::MAX_NAME_UNITS {
            return None;
        }
        // Both ends are at ASCII bytes, so on character boundaries.
        let s = &self.text[self.at..self.at + len];
        self.at += len + 1;
        Some(s)
    }

    /// `[offset, value]`, whitespace allowed, each a number of digits alone.
    fn pair(&mut self) -> Option<(u64, u64)> {
        self.expect(b'[')?;
        let offset = self.digits()?;
        self.expect(b',')?;
        let value = self.digits()?;
        self.expect(b']')?;
        Some((offset, value))
    }

    /// [`Cursor::pair`] as nodes write it, `[digits,digits]` without whitespace, read
    /// without the whitespace checks; `None`, having moved nowhere, for anything else.
    fn tight_pair(&mut self) -> Option<(u64, u64)> {
        let b = self.text.as_bytes();
        if b.get(self.at) != Some(&b'[') {
            return None;
        }
        let (offset, at) = digits_at(b, self.at + 1)?;
        if b.get(at) != Some(&b',') {
            return None;
        }
        let (value, at) = digits_at(b, at + 1)?;
        if b.get(at) != Some(&b']') {
            return None;
        }
        self.at = at + 1;
        Some((offset, value))
    }

    /// Digits that fit a u64, after any whitespace. A sign before them is no digit, and a
    /// fraction or exponent after them is not the `,`, `]` or `}` the caller expects
    /// next, so such a number is refused either way.
    pub(crate) fn digits(&mut self) -> Option<u64> {
        self.skip_ws();
        let (n, at) = digits_at(self.text.as_bytes(), self.at)?;
        self.at = at;
        Some(n)
    }
}

/// The number the digits at `b[at..]` write, and where they end; `None` if there are none,
/// they overflow a u64, or they start with a zero that is not the only digit (JSON writes
/// no leading zeros).
fn digits_at(b: &[u8], mut at: usize) -> Option<(u64, usize)> {
    let start = at;
    let mut n: u64 = 0;
    while let Some(&d) = b.get(at).filter(|d| d.is_ascii_digit()) {
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        at += 1;
    }
    let leading_zero = at - start > 1 && b[start] == b'0';
    (at > start && !leading_zero).then_some((n, at))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn raw(text: &str) -> Option<RawPolled> {
        Runs::read(text).map(|r| Polled::Runs(r).to_raw())
    }

    #[test]
    fn reads_runs_of_small_integers_as_written() {
        let text = r#" { "9" : [ [0,1] , [1,2],[2,16]], "":[], "é k":[[7,0]],"10":[[3,4]] } "#;
        let runs = Runs::read(text).expect("the common shape");
        let got: Vec<(&str, i64, Vec<u32>)> = runs
            .iter()
            .map(|(k, pairs)| match pairs {
                KeyPairs::Run { first, values } => (k, first, values.iter().map(|m| m.0).collect()),
                KeyPairs::Explicit { .. } => panic!("{k}: {pairs:?}"),
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("9", 0, vec![1, 2, 16]),
                ("", 0, vec![]),
                ("é k", 7, vec![0]),
                ("10", 3, vec![4]),
            ]
        );
        assert_eq!(runs.len(), 4);
        assert_eq!(raw("{}"), Some(vec![]));
    }

    #[test]
    fn keeps_the_offsets_of_keys_that_are_not_runs() {
        for (text, offsets) in [
            (r#"{"k":[[0,1],[2,2],[3,3]]}"#, vec![0, 2, 3]),
            (r#"{"k":[[1,1],[0,2]]}"#, vec![1, 0]),
            (r#"{"k":[[4,1],[5,2],[5,3]]}"#, vec![4, 5, 5]),
            (
                r#"{"k":[[9223372036854775807,1],[0,2]]}"#,
                vec![i64::MAX, 0],
            ),
        ] {
            let runs = Runs::read(text).expect(text);
            let (_, pairs) = runs.iter().next().unwrap();
            let KeyPairs::Explicit {
                offsets: got,
                values,
            } = pairs
            else {
                panic!("{text}: {pairs:?}");
            };
            assert_eq!((got, values.len()), (&offsets[..], offsets.len()), "{text}");
        }
        // Keys after one that is not a run are runs again.
        let runs = Runs::read(r#"{"a":[[0,1],[2,2]],"b":[[5,3],[6,4]]}"#).unwrap();
        let pairs: Vec<KeyPairs<'_>> = runs.iter().map(|(_, p)| p).collect();
        assert!(matches!(pairs[0], KeyPairs::Explicit { .. }));
        assert!(matches!(pairs[1], KeyPairs::Run { first: 5, values } if values.len() == 2));
    }

    #[test]
    fn leaves_anything_else_to_serde() {
        for text in [
            r#"{"a\"b":[[0,1]]}"#,
            r#"{"a\u0041":[[0,1]]}"#,
            r#"{"k":[[-1,1]]}"#,
            r#"{"k":[[0,-1]]}"#,
            r#"{"k":[[0,1.0]]}"#,
            r#"{"k":[[0,1e2]]}"#,
            r#"{"k":[[1E2,1]]}"#,
            r#"{"k":[[0,"1"]]}"#,
            r#"{"k":[[0,null]]}"#,
            r#"{"k":[[0,2147483648]]}"#,
            r#"{"k":[[9223372036854775808,1]]}"#,
            r#"{"k":[[18446744073709551616,1]]}"#,
            r#"{"k":[[9223372036854775807,1],[-9223372036854775808,2]]}"#,
            r#"{"k":[[0,1,2]]}"#,
            r#"{"k":[[0]]}"#,
            r#"{"k":null}"#,
            r#"{"k":{}}"#,
            r#"[]"#,
            r#"null"#,
            r#"{"k":[[0,1]]"#,
            r#"{"k":[[0,1]]}x"#,
            // A key written twice, among few keys and among many.
            r#"{"k":[[0,1]],"j":[],"k":[[1,2]]}"#,
            &format!(
                "{{{},\"7\":[]}}",
                (0..20)
                    .map(|k| format!(r#""{k}":[[0,1]]"#))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        ] {
            assert_eq!(raw(text), None, "{text}");
        }
        // The edges it does take.
        assert_eq!(
            raw(r#"{"k":[[0,2147483647]]}"#),
            Some(vec![("k".into(), vec![(0, RawMsg::Int(2_147_483_647))])])
        );
        let top = raw(r#"{"k":[[9223372036854775806,1],[9223372036854775807,2]]}"#);
        assert_eq!(
            top,
            Some(vec![(
                "k".into(),
                vec![(i64::MAX - 1, RawMsg::Int(1)), (i64::MAX, RawMsg::Int(2))]
            )])
        );
    }

    /// Text shaped like a poll reply's `msgs`, mostly the common shape, with every kind of
    /// deviation mixed in: escaped and non-ASCII keys, repeated keys, whitespace anywhere,
    /// gaps, repeats and disorder in offsets, negative and huge offsets, values of every
    /// JSON kind and at the edges of the small integers, pairs of the wrong length.
    pub(crate) fn generated(rng: &mut fastrand::Rng) -> String {
        fn ws(rng: &mut fastrand::Rng, out: &mut String) {
            if rng.u8(..4) == 0 {
                out.push_str(["", " ", "\n", "\t ", "\r\n  "][rng.usize(..5)]);
            }
        }
        const KEYS: [&str; 10] = [
            "0", "17", "9", "", "é k", "a\\\"b", "\\u0041", "k\\n", "\\/", "27340",
        ];
        const OFFSETS: [&str; 10] = [
            "18446744073709551617",
            "-9223372036854775809",
            "0",
            "5",
            "9223372036854775806",
            "-1",
            "9223372036854775807",
            "18446744073709551615",
            "-0",
            "1.0",
        ];
        const VALUES: [&str; 19] = [
            "1e400",
            "-18446744073709551617",
            "1.00",
            "2147483647",
            "2147483648",
            "4294967296",
            "9223372036854775808",
            "-1",
            "-0",
            "1.5",
            "1e2",
            "1E0",
            "\"x\"",
            "null",
            "true",
            "[1]",
            "{\"a\":1}",
            "0.0",
            "00",
        ];
        // Half the texts keep to the common shape (whitespace and plain keys aside).
        let clean = rng.bool();
        let odd = |rng: &mut fastrand::Rng, one_in: u8| !clean && rng.u8(..one_in) == 0;
        let mut s = String::new();
        ws(rng, &mut s);
        s.push('{');
        // Now and then more keys than are compared one by one (`Runs::LIST`).
        let keys = if rng.u8(..16) == 0 {
            rng.usize(16..40)
        } else {
            rng.usize(..5)
        };
        let first_key = rng.usize(..5);
        for i in 0..keys {
            if i > 0 {
                s.push(',');
            }
            ws(rng, &mut s);
            s.push('"');
            if keys >= 16 {
                // Distinct keys, now and then one written before.
                let k = if rng.u8(..8) == 0 { rng.usize(..=i) } else { i };
                s.push_str(&format!("k{k}"));
            } else if clean {
                // Distinct: a key written twice is read by serde (see `Runs::read`).
                s.push_str(KEYS[(first_key + i) % 5]);
            } else {
                s.push_str(KEYS[rng.usize(..KEYS.len())]);
            }
            s.push('"');
            ws(rng, &mut s);
            s.push(':');
            ws(rng, &mut s);
            if odd(rng, 16) {
                s.push_str("null");
                continue;
            }
            s.push('[');
            let mut offset: i128 = if clean || rng.bool() {
                0
            } else {
                OFFSETS[rng.usize(..OFFSETS.len())].parse().unwrap_or(3)
            };
            for j in 0..rng.usize(..5) {
                if j > 0 {
                    s.push(',');
                }
                ws(rng, &mut s);
                s.push('[');
                if odd(rng, 8) {
                    s.push_str(OFFSETS[rng.usize(..OFFSETS.len())]);
                } else {
                    s.push_str(&offset.to_string());
                }
                ws(rng, &mut s);
                match if odd(rng, 2) { rng.u8(..3) } else { 3 } {
                    0 => {}
                    1 => s.push_str(",1,2"),
                    2 => {
                        s.push(',');
                        s.push_str(VALUES[rng.usize(..VALUES.len())]);
                    }
                    _ => {
                        s.push(',');
                        ws(rng, &mut s);
                        s.push_str(&rng.u32(..20).to_string());
                    }
                }
                ws(rng, &mut s);
                s.push(']');
                offset += match if odd(rng, 4) { rng.u8(..3) } else { 3 } {
                    0 => 0,
                    1 => 2,
                    2 => -1,
                    _ => 1,
                };
            }
            ws(rng, &mut s);
            s.push(']');
            ws(rng, &mut s);
        }
        s.push('}');
        ws(rng, &mut s);
        s
    }

    /// The differential test: every generated text, and each cut short and with a byte
    /// replaced, read both ways ([`crate::fuzz::poll_msgs`] panics where they differ).
    #[test]
    fn one_pass_and_serde_read_every_text_alike() {
        let mut rng = fastrand::Rng::with_seed(16);
        let (mut texts, mut one_pass) = (0, 0);
        for _ in 0..20_000 {
            let text = generated(&mut rng);
            let mut variants = vec![text.clone()];
            let cut = rng.usize(..=text.len());
            if text.is_char_boundary(cut) {
                variants.push(text[..cut].to_owned());
            }
            let mut bytes = text.clone().into_bytes();
            let at = rng.usize(..bytes.len());
            bytes[at] = b"{}[],:\"-.0e \\1"[rng.usize(..14)];
            variants.push(String::from_utf8_lossy(&bytes).into_owned());
            for v in variants {
                texts += 1;
                one_pass += usize::from(crate::fuzz::poll_msgs(v.as_bytes()));
            }
        }
        // Not vacuous: both paths are taken, often.
        assert!(
            one_pass > texts / 5,
            "{one_pass} of {texts} read in one pass"
        );
        assert!(
            one_pass < texts * 4 / 5,
            "{one_pass} of {texts} read in one pass"
        );
    }

    #[test]
    fn edge_cases_read_alike() {
        for text in [
            r#"{"9":[[0,1],[1,2]],"9":[[2,3]]}"#,
            r#"{"a\"b":[[0,1]]}"#,
            r#"{"\ud83d\ude00":[[0,1]]}"#,
            r#"{"k":[[0,1]],"k":[[0,-1]]}"#,
            r#"{"k":[[9223372036854775807,1],[-9223372036854775808,2]]}"#,
            r#"{"k":[[9223372036854775808,1]]}"#,
            r#"{"k":[[-0,1]]}"#,
            r#"{"k":[[0,-0]]}"#,
            r#"{"k":[[0,18446744073709551615]]}"#,
            r#"{"k":[[0,1.0]]}"#,
            " \t\r\n{ \"k\" : [ [ 0 , 1 ] ] } \n",
            r#"{"k":[[0,1]]}}"#,
            r#"{"k":[[0,1]"#,
            r#"{"k":[[0,1]],}"#,
            r#"[["k",[[0,1]]]]"#,
            r#""k""#,
            "7",
            "",
            "{}",
        ] {
            crate::fuzz::poll_msgs(text.as_bytes());
        }
    }
}
