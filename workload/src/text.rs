//! Cutting text short for messages and reports, without splitting a character.

/// The longest prefix of `s` that is at most `max` bytes and ends on a character boundary.
pub(crate) fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    // A UTF-8 character is at most 4 bytes, so this steps back at most 3 times.
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `s` itself if it fits in `max` bytes, else its [`prefix`] followed by `…`.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        s.to_owned()
    } else {
        format!("{}…", prefix(s, max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_on_a_character_boundary() {
        assert_eq!(prefix("abc", 5), "abc");
        assert_eq!(prefix("abc", 2), "ab");
        // "é" is two bytes: a cut through it backs off to before it.
        assert_eq!(prefix("aé", 2), "a");
        assert_eq!(prefix("🦀", 3), "");
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip("abc", 3), "abc");
    }
}
