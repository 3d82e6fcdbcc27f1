//! The one writer of the envelope every line the node writes starts with:
//! `{"src":…,"dest":…,"body":{"type":"…"`, then the body's own members, then [`end`].
//!
//! Replies (`rpc.rs`) and replication messages (`replication/wire.rs`) both go through it, so
//! the names are escaped the same way everywhere and no line can start differently.

use crate::json::write_str;

/// Writes the start of a message from `src` to `dest` whose body has type `ty`, up to and
/// including the type's closing quote; the caller appends `,"member":…` pairs, then [`end`].
///
/// `ty` is one of the protocol's type names, plain ASCII with nothing to escape.
pub(crate) fn begin(out: &mut Vec<u8>, src: &str, dest: &str, ty: &str) {
    debug_assert!(
        ty.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        "a type name that would need escaping: {ty:?}"
    );
    out.extend_from_slice(b"{\"src\":");
    write_str(out, src);
    out.extend_from_slice(b",\"dest\":");
    write_str(out, dest);
    out.extend_from_slice(b",\"body\":{\"type\":\"");
    out.extend_from_slice(ty.as_bytes());
    out.push(b'"');
}

/// Closes the body and the envelope, and ends the line.
pub(crate) fn end(out: &mut Vec<u8>) {
    out.extend_from_slice(b"}}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_is_one_json_line_with_its_names_escaped() {
        let mut out = Vec::new();
        begin(&mut out, "n\"0", "c\n1", "send_ok");
        out.extend_from_slice(b",\"offset\":3");
        end(&mut out);
        let text = std::str::from_utf8(&out).unwrap();
        assert_eq!(
            text,
            "{\"src\":\"n\\\"0\",\"dest\":\"c\\n1\",\"body\":{\"type\":\"send_ok\",\"offset\":3}}\n"
        );
        let value: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(value["body"]["offset"], 3);
    }
}
