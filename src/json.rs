//! Small JSON tools that simd-json does not offer: the raw text of one member of a document,
//! and writing strings and numbers into a reply.
//!
//! The raw text is how a `msg` goes back out byte for byte: simd-json parses numbers into
//! `i64`/`f64`, and printing those again can change the text (`1e2` becomes `100.0`), while the
//! checker compares values exactly.

use std::ops::Range;

/// The byte range of the value at `path` (a chain of object member names from the root) in the
/// JSON document `doc`, or `None` if there is none.
///
/// The first member of a given name wins, as with simd-json's lookups. `doc` should already be
/// known to be valid JSON (the reader calls this only after simd-json accepted the line); on
/// anything else this returns some answer or `None`, and never panics or loops.
pub fn raw_member(doc: &[u8], path: &[&str]) -> Option<Range<usize>> {
    let mut cursor = Cursor { doc, pos: 0 };
    let mut span = cursor.value()?;
    for name in path {
        cursor.pos = span.start;
        span = cursor.member(name)?;
    }
    Some(span)
}

/// [`raw_member`] for a document simd-json has just parsed, guided by its structural indexes
/// (the positions of every `{}[]:,` and of the first byte of every scalar and string), so it
/// visits a few dozen positions instead of every byte.
///
/// Falls back to [`raw_member`] whenever the walk meets something it does not expect, such as an
/// escaped key, so its answer is always the byte scanner's.
pub fn raw_member_indexed(doc: &[u8], structurals: &[u32], path: &[&str]) -> Option<Range<usize>> {
    walk_structurals(doc, structurals, path).unwrap_or_else(|| raw_member(doc, path))
}

/// `Some(answer)` when the structural walk reached a definite answer, `None` to fall back.
fn walk_structurals(
    doc: &[u8],
    structurals: &[u32],
    path: &[&str],
) -> Option<Option<Range<usize>>> {
    let pos = |i: usize| structurals.get(i).map(|&p| p as usize);
    let byte = |i: usize| pos(i).and_then(|p| doc.get(p).copied());
    // Index, in `structurals`, of whatever follows the value starting at index `i`.
    let skip = |mut i: usize| -> Option<usize> {
        if !matches!(byte(i)?, b'{' | b'[') {
            return Some(i + 1);
        }
        let mut depth = 0usize;
        loop {
            match byte(i)? {
                b'{' | b'[' => depth += 1,
                b'}' | b']' => depth = depth.checked_sub(1)?,
                _ => {}
            }
            i += 1;
            if depth == 0 {
                return Some(i);
            }
        }
    };
    let mut i = 0;
    for (level, name) in path.iter().enumerate() {
        if byte(i)? != b'{' {
            return Some(None);
        }
        i += 1;
        loop {
            match byte(i)? {
                b'}' => return Some(None),
                b'"' => {}
                _ => return None,
            }
            // The key runs from after its quote to the quote before the `:` that follows it.
            let key_start = pos(i)? + 1;
            let colon = pos(i + 1)?;
            let key_end = doc[..colon].iter().rposition(|&b| b == b'"')?;
            let key = doc.get(key_start..key_end)?;
            if key.contains(&b'\\') || byte(i + 1)? != b':' {
                return None;
            }
            let value = i + 2;
            if key == name.as_bytes() {
                if level + 1 < path.len() {
                    i = value;
                    break;
                }
                let start = pos(value)?;
                let after = skip(value)?;
                let end = if matches!(byte(value)?, b'{' | b'[') {
                    pos(after - 1)? + 1
                } else {
                    // A scalar or string ends before the white space ahead of the next structural.
                    let next = pos(after).unwrap_or(doc.len()).min(doc.len());
                    start + doc[start..next].trim_ascii_end().len()
                };
                return Some(Some(start..end));
            }
            i = skip(value)?;
            match byte(i)? {
                b',' => i += 1,
                b'}' => return Some(None),
                _ => return None,
            }
        }
    }
    Some(None)
}

struct Cursor<'a> {
    doc: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.doc.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        self.skip_ws();
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    /// Skips one value (after leading white space) and returns its span.
    ///
    /// Containers are skipped with a stack of their closing brackets rather than by recursion,
    /// so any depth is followed (one byte of stack per level): this scanner is also what reads
    /// `src` and `msg_id` out of a line simd-json refused for its depth, to answer it.
    fn value(&mut self) -> Option<Range<usize>> {
        self.skip_ws();
        let start = self.pos;
        let mut open: Vec<u8> = Vec::new();
        loop {
            // At the start of a value.
            self.skip_ws();
            match self.peek()? {
                b'"' => {
                    self.string()?;
                }
                opener @ (b'{' | b'[') => {
                    let close = if opener == b'{' { b'}' } else { b']' };
                    self.pos += 1;
                    if self.eat(close).is_none() {
                        open.push(close);
                        if close == b'}' {
                            self.member_name()?;
                        }
                        continue;
                    }
                }
                _ => {
                    // A number, true, false or null: runs to the next delimiter.
                    let from = self.pos;
                    while !matches!(
                        self.peek(),
                        None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                    ) {
                        self.pos += 1;
                    }
                    if self.pos == from {
                        return None;
                    }
                }
            }
            // A value ended: close every container it ends, then go on to the next value.
            loop {
                let Some(&close) = open.last() else {
                    return Some(start..self.pos);
                };
                self.skip_ws();
                match self.peek()? {
                    b',' => {
                        self.pos += 1;
                        if close == b'}' {
                            self.member_name()?;
                        }
                        break;
                    }
                    b if b == close => {
                        self.pos += 1;
                        open.pop();
                    }
                    _ => return None,
                }
            }
        }
    }

    /// Skips a member's name and its colon.
    fn member_name(&mut self) -> Option<()> {
        self.skip_ws();
        self.string()?;
        self.eat(b':')
    }

    /// Skips a string starting at the cursor and returns the span of its contents (no quotes).
    fn string(&mut self) -> Option<Range<usize>> {
        if self.peek()? != b'"' {
            return None;
        }
        self.pos += 1;
        let start = self.pos;
        loop {
            match self.peek()? {
                b'"' => break,
                b'\\' => self.pos += 2,
                _ => self.pos += 1,
            }
        }
        let contents = start..self.pos;
        self.pos += 1;
        Some(contents)
    }

    /// With the cursor on an object, the span of its first member called `name`.
    fn member(&mut self, name: &str) -> Option<Range<usize>> {
        self.eat(b'{')?;
        if self.eat(b'}').is_some() {
            return None;
        }
        loop {
            self.skip_ws();
            let key = self.string()?;
            self.eat(b':')?;
            let value = self.value()?;
            if key_is(&self.doc[key], name) {
                return Some(value);
            }
            self.skip_ws();
            match self.peek()? {
                b',' => self.pos += 1,
                _ => return None,
            }
        }
    }
}

/// Whether the raw contents of a JSON string equal `name` once unescaped.
fn key_is(raw: &[u8], name: &str) -> bool {
    if !raw.contains(&b'\\') {
        return raw == name.as_bytes();
    }
    // Escaped keys are rare enough to take the slow, obviously correct path.
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    serde_json::from_slice::<String>(&quoted).is_ok_and(|key| key == name)
}

/// Appends `s` to `out` as a JSON string literal.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut plain_from = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[plain_from..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        plain_from = i + 1;
    }
    out.extend_from_slice(&bytes[plain_from..]);
    out.push(b'"');
}

/// How many bytes [`write_str`] writes for `s`: its length, quotes and escapes included.
pub fn str_len(s: &str) -> usize {
    2 + s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

/// Appends the decimal digits of `n` to `out`.
pub fn write_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw<'a>(doc: &'a str, path: &[&str]) -> Option<&'a str> {
        raw_member(doc.as_bytes(), path).map(|r| &doc[r])
    }

    #[test]
    fn finds_nested_members_verbatim() {
        let doc = r#"{"id":1,"src":"c1","body":{"type":"send","msg":1e2,"key":"k"}}"#;
        assert_eq!(raw(doc, &["body", "msg"]), Some("1e2"));
        assert_eq!(raw(doc, &["src"]), Some(r#""c1""#));
        assert_eq!(raw(doc, &["body", "nope"]), None);
        assert_eq!(raw(doc, &["id", "x"]), None);
        let doc = r#" { "body" : { "a" : [1, {"msg": 2}], "msg" : { "x" : [ "]}\"" ] } } } "#;
        assert_eq!(raw(doc, &["body", "msg"]), Some(r#"{ "x" : [ "]}\"" ] }"#));
    }

    #[test]
    fn the_structural_walk_answers_maelstrom_lines_without_falling_back() {
        let line = r#"{"id":12,"src":"c3","dest":"n0","body":{"type":"send","msg_id":7,"key":"5","msg":[1, {"a":"}"}] }}"#;
        let mut copy = line.as_bytes().to_vec();
        let mut buffers = simd_json::Buffers::default();
        simd_json::to_tape_with_buffers(&mut copy, &mut buffers).unwrap();
        let structurals = buffers.structural_indexes();
        let walked = walk_structurals(line.as_bytes(), structurals, &["body", "msg"]);
        assert_eq!(
            walked.flatten().map(|r| &line[r]),
            Some(r#"[1, {"a":"}"}]"#)
        );
        let walked = walk_structurals(line.as_bytes(), structurals, &["body", "key"]);
        assert_eq!(walked.flatten().map(|r| &line[r]), Some(r#""5""#));
        assert_eq!(
            walk_structurals(line.as_bytes(), structurals, &["body", "nope"]),
            Some(None)
        );
    }

    #[test]
    fn escaped_keys_match_their_unescaped_name() {
        let doc = r#"{"body":{"m\u0073g":-0.5}}"#;
        assert_eq!(raw(doc, &["body", "msg"]), Some("-0.5"));
    }

    #[test]
    fn any_nesting_is_followed_without_recursion() {
        // Deep enough to overflow a thread's stack if each level took a frame.
        let deep = format!(
            r#"{{"body":{{"msg":{}1{},"msg_id":5}}}}"#,
            "[{\"a\":".repeat(200_000),
            "}]".repeat(200_000)
        );
        assert_eq!(raw(&deep, &["body", "msg"]).map(str::len), Some(1_600_001));
        assert_eq!(raw(&deep, &["body", "msg_id"]), Some("5"));
        let unbalanced = format!(r#"{{"body":{{"msg":{}1}}}}"#, "[".repeat(1000));
        assert_eq!(raw(&unbalanced, &["body", "msg"]), None);
        assert_eq!(raw(r#"{"body":{"msg":[1}}}"#, &["body", "msg"]), None);
    }

    #[test]
    fn garbage_and_cut_documents_give_none_or_a_cut_answer() {
        for doc in [
            "",
            "{",
            "{\"",
            "{\"body\":",
            "{\"body\":{\"msg\"",
            "\"\\",
            "[1,",
            "}}}",
        ] {
            assert_eq!(raw(doc, &["body", "msg"]), None, "{doc:?}");
        }
        // Every cut of a real line: no panic, and any answer is the start of the true one (a
        // value cut short by the end of the document), never something else.
        let line = r#"{"src":"c1","body":{"key":"k\"","msg":{"a":[1e2,"}"]},"msg_id":7}}"#;
        let whole = raw(line, &["body", "msg"]).unwrap();
        assert_eq!(whole, r#"{"a":[1e2,"}"]}"#);
        for cut in 0..line.len() {
            if let Some(part) = raw(&line[..cut], &["body", "msg"]) {
                assert!(whole.starts_with(part), "cut at {cut}: {part:?}");
            }
        }
    }

    #[test]
    fn strings_round_trip_through_serde_json() {
        for s in [
            "plain",
            "quote\"back\\slash",
            "ctl\u{1}\n\t\r",
            "é ✓ 🦀",
            "",
        ] {
            let mut out = Vec::new();
            write_str(&mut out, s);
            assert_eq!(serde_json::from_slice::<String>(&out).unwrap(), s);
            assert_eq!(str_len(s), out.len(), "{s:?}");
        }
    }
}
