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
    fn value(&mut self) -> Option<Range<usize>> {
        self.skip_ws();
        let start = self.pos;
        match self.peek()? {
            b'"' => {
                self.string()?;
            }
            open @ (b'{' | b'[') => {
                let close = if open == b'{' { b'}' } else { b']' };
                self.pos += 1;
                if self.eat(close).is_none() {
                    loop {
                        if open == b'{' {
                            self.skip_ws();
                            self.string()?;
                            self.eat(b':')?;
                        }
                        self.value()?;
                        self.skip_ws();
                        match self.peek()? {
                            b',' => self.pos += 1,
                            b if b == close => {
                                self.pos += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
            }
            _ => {
                // A number, true, false or null: runs to the next delimiter.
                while !matches!(
                    self.peek(),
                    None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                ) {
                    self.pos += 1;
                }
                if self.pos == start {
                    return None;
                }
            }
        }
        Some(start..self.pos)
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
    fn escaped_keys_match_their_unescaped_name() {
        let doc = r#"{"body":{"m\u0073g":-0.5}}"#;
        assert_eq!(raw(doc, &["body", "msg"]), Some("-0.5"));
    }

    #[test]
    fn never_panics_on_garbage() {
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
            let _ = raw(doc, &["body", "msg"]);
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
        }
    }
}
