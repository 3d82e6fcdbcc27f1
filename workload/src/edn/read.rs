//! Reading EDN: enough of it for the histories Jepsen writes with `prn`, one operation a
//! line (`history.edn`), as plain maps or as `#jepsen.history.Op{…}` records.
//!
//! Our own reader rather than a crate: the EDN crates we looked at either call themselves
//! experimental (`edn-rs`), are unmaintained (`edn`), or read maps into sorted maps and
//! recurse without a bound (`clojure-reader`), and a history is input we do not control:
//! nesting here is bounded ([`MAX_DEPTH`]) so a hostile file cannot overflow the stack.
//!
//! What is read: `nil`, booleans, integers (with a trailing `N`), floats (with a trailing
//! `M`, and `##Inf`, `##-Inf`, `##NaN`), ratios (`1/3`, read as a float), strings with
//! their escapes, characters (`\a`, `\newline`, `\u00e9`), keywords, symbols, lists,
//! vectors, maps, sets, tagged elements (`#tag form`, read as the tag and the form, which
//! is how Clojure records print), `#_` discards, `;` comments, and commas as whitespace.

use super::Edn;

/// How deeply collections may nest.
pub const MAX_DEPTH: usize = 256;

/// Why a text is not EDN, and where (a byte offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    pub at: usize,
    pub what: String,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at byte {}: {}", self.at, self.what)
    }
}

impl std::error::Error for ReadError {}

/// Every form in `text`, in order.
pub fn read_all(text: &str) -> Result<Vec<Edn>, ReadError> {
    let mut r = Reader { s: text, pos: 0 };
    let mut out = Vec::new();
    loop {
        r.skip_space(0)?;
        if r.pos >= r.s.len() {
            return Ok(out);
        }
        out.push(r.form(0)?);
    }
}

/// The one form in `text`: an error if there is none or more than one.
pub fn read_one(text: &str) -> Result<Edn, ReadError> {
    let mut forms = read_all(text)?;
    match forms.len() {
        1 => Ok(forms.pop().unwrap_or(Edn::Nil)),
        n => Err(ReadError {
            at: 0,
            what: format!("expected one form, found {n}"),
        }),
    }
}

struct Reader<'a> {
    s: &'a str,
    pos: usize,
}

/// Characters that end a token (a number, symbol, keyword or character).
fn delimits(c: char) -> bool {
    c.is_whitespace() || matches!(c, ',' | '(' | ')' | '[' | ']' | '{' | '}' | '"' | ';')
}

impl Reader<'_> {
    fn err<T>(&self, what: impl Into<String>) -> Result<T, ReadError> {
        Err(ReadError {
            at: self.pos,
            what: what.into(),
        })
    }

    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Whitespace, commas, `;` comments and `#_` discarded forms (a discarded form counts as
    /// one level deeper, so a run of `#_` is bounded like nesting).
    fn skip_space(&mut self, depth: usize) -> Result<(), ReadError> {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() || c == ',' => {
                    self.bump();
                }
                Some(';') => {
                    let rest = &self.s[self.pos..];
                    self.pos += rest.find('\n').unwrap_or(rest.len());
                }
                Some('#') if self.s[self.pos..].starts_with("#_") => {
                    self.pos += 2;
                    self.form(depth + 1)?;
                }
                _ => return Ok(()),
            }
        }
    }

    fn token(&mut self) -> &str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if delimits(c) {
                break;
            }
            self.bump();
        }
        &self.s[start..self.pos]
    }

    fn form(&mut self, depth: usize) -> Result<Edn, ReadError> {
        if depth > MAX_DEPTH {
            return self.err(format!("nested deeper than {MAX_DEPTH}"));
        }
        self.skip_space(depth)?;
        let Some(c) = self.peek() else {
            return self.err("unexpected end of input");
        };
        match c {
            '(' => self.seq(')', depth).map(Edn::List),
            '[' => self.seq(']', depth).map(Edn::Vector),
            '{' => self.map(depth),
            ')' | ']' | '}' => self.err(format!("unexpected {c:?}")),
            '"' => self.string(),
            '\\' => self.character(),
            ':' => {
                self.bump();
                let name = self.token();
                if name.is_empty() {
                    return self.err("a keyword without a name");
                }
                Ok(Edn::Keyword(name.to_owned()))
            }
            '#' => self.dispatch(depth),
            _ => self.atom(),
        }
    }

    /// Elements up to `close`, after the opening bracket.
    fn seq(&mut self, close: char, depth: usize) -> Result<Vec<Edn>, ReadError> {
        self.bump();
        let mut items = Vec::new();
        loop {
            self.skip_space(depth + 1)?;
            match self.peek() {
                None => return self.err(format!("unclosed collection: expected {close:?}")),
                Some(c) if c == close => {
                    self.bump();
                    return Ok(items);
                }
                Some(_) => items.push(self.form(depth + 1)?),
            }
        }
    }

    fn map(&mut self, depth: usize) -> Result<Edn, ReadError> {
        let items = self.seq('}', depth)?;
        if items.len() % 2 != 0 {
            return self.err("a map with an odd number of forms");
        }
        let mut entries = Vec::with_capacity(items.len() / 2);
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            entries.push((k, v));
        }
        Ok(Edn::Map(entries))
    }

    fn dispatch(&mut self, depth: usize) -> Result<Edn, ReadError> {
        let rest = &self.s[self.pos..];
        if rest.starts_with("#{") {
            self.bump();
            return self.seq('}', depth).map(Edn::Set);
        }
        if let Some(sym) = rest.strip_prefix("##") {
            let name: String = sym.chars().take_while(|c| !delimits(*c)).collect();
            let x = match name.as_str() {
                "Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                "NaN" => f64::NAN,
                _ => return self.err(format!("unknown symbolic value ##{name}")),
            };
            self.pos += 2 + name.len();
            return Ok(Edn::Float(x));
        }
        self.bump();
        let tag = self.token().to_owned();
        if !tag.starts_with(|c: char| c.is_alphabetic()) {
            return self.err(format!("unknown dispatch #{tag}"));
        }
        let form = self.form(depth + 1)?;
        Ok(Edn::Tagged(tag, Box::new(form)))
    }

    fn string(&mut self) -> Result<Edn, ReadError> {
        self.bump();
        let mut out = String::new();
        loop {
            let Some(c) = self.bump() else {
                return self.err("unterminated string");
            };
            match c {
                '"' => return Ok(Edn::Str(out)),
                '\\' => {
                    let e = match self.bump() {
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('r') => '\r',
                        Some('b') => '\u{8}',
                        Some('f') => '\u{c}',
                        Some('"') => '"',
                        Some('\\') => '\\',
                        Some('u') => self.hex4()?,
                        other => return self.err(format!("bad string escape {other:?}")),
                    };
                    out.push(e);
                }
                c => out.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Result<char, ReadError> {
        let hex = self.s.get(self.pos..self.pos + 4).unwrap_or("");
        let code = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32);
        match code {
            Some(c) if hex.len() == 4 => {
                self.pos += 4;
                Ok(c)
            }
            _ => self.err(format!("bad \\u escape {hex:?}")),
        }
    }

    fn character(&mut self) -> Result<Edn, ReadError> {
        self.bump();
        // The first character is taken whatever it is (`\(`, `\ `), then a name may follow.
        let start = self.pos;
        if self.bump().is_none() {
            return self.err("a character literal without a character");
        }
        while let Some(c) = self.peek() {
            if delimits(c) {
                break;
            }
            self.bump();
        }
        let name = &self.s[start..self.pos];
        let c = match name {
            "newline" => '\n',
            "space" => ' ',
            "tab" => '\t',
            "return" => '\r',
            "backspace" => '\u{8}',
            "formfeed" => '\u{c}',
            _ if name.chars().count() == 1 => name.chars().next().unwrap_or(' '),
            _ if name.starts_with('u') && name.len() == 5 => {
                self.pos = start + 1;
                let c = self.hex4()?;
                return Ok(Edn::Char(c));
            }
            _ => return self.err(format!("unknown character \\{name}")),
        };
        Ok(Edn::Char(c))
    }

    /// A number, `nil`, `true`, `false` or a symbol.
    fn atom(&mut self) -> Result<Edn, ReadError> {
        let at = self.pos;
        let t = self.token();
        if t.is_empty() {
            return self.err(format!("unexpected {:?}", self.peek().unwrap_or(' ')));
        }
        let t = t.to_owned();
        match t.as_str() {
            "nil" => return Ok(Edn::Nil),
            "true" => return Ok(Edn::Bool(true)),
            "false" => return Ok(Edn::Bool(false)),
            _ => {}
        }
        let numeric = t.starts_with(|c: char| c.is_ascii_digit())
            || (t.len() > 1
                && t.starts_with(['+', '-'])
                && t[1..].starts_with(|c: char| c.is_ascii_digit()));
        if !numeric {
            return Ok(Edn::Symbol(t));
        }
        number(&t).ok_or(ReadError {
            at,
            what: format!("bad number {t:?}"),
        })
    }
}

fn number(t: &str) -> Option<Edn> {
    if let Some(i) = t.strip_suffix('N') {
        return i.parse().ok().map(Edn::Int);
    }
    if let Some((n, d)) = t.split_once('/') {
        let (n, d): (f64, f64) = (n.parse().ok()?, d.parse().ok()?);
        return Some(Edn::Float(n / d));
    }
    if let Ok(i) = t.parse::<i128>() {
        return Some(Edn::Int(i));
    }
    t.strip_suffix('M')
        .unwrap_or(t)
        .parse()
        .ok()
        .map(Edn::Float)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw(s: &str) -> Edn {
        Edn::kw(s)
    }

    #[test]
    fn reads_scalars() {
        let forms = read_all(
            r#"nil true false 0 -7 +3 12N 1.5 -2.5e3 1.5M 1/4 ##Inf ##NaN "a\"b\n\u00e9" \x \newline \u00e9 :valid? foo/bar"#,
        )
        .unwrap();
        assert_eq!(
            &forms[..12],
            &[
                Edn::Nil,
                Edn::Bool(true),
                Edn::Bool(false),
                Edn::Int(0),
                Edn::Int(-7),
                Edn::Int(3),
                Edn::Int(12),
                Edn::Float(1.5),
                Edn::Float(-2500.0),
                Edn::Float(1.5),
                Edn::Float(0.25),
                Edn::Float(f64::INFINITY),
            ]
        );
        assert!(matches!(forms[12], Edn::Float(x) if x.is_nan()));
        assert_eq!(
            &forms[13..],
            &[
                Edn::str("a\"b\né"),
                Edn::Char('x'),
                Edn::Char('\n'),
                Edn::Char('é'),
                kw("valid?"),
                Edn::Symbol("foo/bar".into()),
            ]
        );
    }

    #[test]
    fn reads_collections_records_comments_and_discards() {
        let e = read_one(
            "#jepsen.history.Op{:index 0, :type :ok, :value [[:poll {9 [[0 1] [1 2]]}]] ; why\n :s #{1 2} :l (a #_ ignored b)}",
        )
        .unwrap();
        let Edn::Tagged(tag, body) = e else {
            panic!("not tagged: {e:?}")
        };
        assert_eq!(tag, "jepsen.history.Op");
        assert_eq!(
            *body,
            Edn::Map(vec![
                (kw("index"), Edn::Int(0)),
                (kw("type"), kw("ok")),
                (
                    kw("value"),
                    Edn::Vector(vec![Edn::Vector(vec![
                        kw("poll"),
                        Edn::Map(vec![(
                            Edn::Int(9),
                            Edn::Vector(vec![
                                Edn::Vector(vec![Edn::Int(0), Edn::Int(1)]),
                                Edn::Vector(vec![Edn::Int(1), Edn::Int(2)]),
                            ])
                        )])
                    ])])
                ),
                (kw("s"), Edn::Set(vec![Edn::Int(1), Edn::Int(2)])),
                (
                    kw("l"),
                    Edn::List(vec![Edn::Symbol("a".into()), Edn::Symbol("b".into())])
                ),
            ])
        );
    }

    #[test]
    fn what_it_writes_it_reads_back() {
        let e = Edn::map([
            (
                "a",
                Edn::Vector(vec![Edn::Int(-1), Edn::Float(0.5), Edn::Nil]),
            ),
            ("b", Edn::Set(vec![Edn::str("x\ty\"")])),
            ("c", Edn::List(vec![kw("d"), Edn::Bool(false)])),
            (
                "e",
                Edn::Map(vec![(Edn::str("9"), Edn::Int(i128::from(u64::MAX)))]),
            ),
        ]);
        assert_eq!(read_one(&e.compact()).unwrap(), e);
        assert_eq!(read_one(&e.pretty()).unwrap(), e);
    }

    #[test]
    fn refuses_what_is_not_edn_and_says_where() {
        for (bad, needle) in [
            ("[1 2", "unclosed"),
            ("{:a}", "odd number"),
            ("\"abc", "unterminated"),
            (")", "unexpected ')'"),
            ("1.2.3", "bad number"),
            ("\"\\q\"", "escape"),
            ("#%x", "dispatch"),
            ("##Foo", "symbolic"),
            (":", "keyword"),
            ("\\nope", "character"),
            ("1 2", "one form"),
            ("", "one form"),
        ] {
            let e = read_one(bad).unwrap_err();
            assert!(e.what.contains(needle), "{bad:?}: {e}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(read_one(&ok).is_ok());
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let e = read_one(&deep).unwrap_err();
        assert!(e.what.contains("nested deeper"), "{e}");
        let tagged = "#t ".repeat(100_000) + "1";
        assert!(read_one(&tagged).is_err());
        let discards = "#_ ".repeat(100_000) + "1";
        assert!(read_one(&discards).is_err());
    }
}
