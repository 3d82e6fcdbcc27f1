//! The two ways of finding a member's raw text agree: the structural-index walk the parser uses
//! must give exactly the byte scanner's answer, on any document and any spacing.

use maelstrom_kafka::json::{raw_member, raw_member_indexed};
use proptest::prelude::*;
use serde_json::Value;

use crate::util::json_value;

/// Writes `v` with white space drawn from `spaces` around every token.
fn render(v: &Value, spaces: &mut impl Iterator<Item = u8>, out: &mut String) {
    fn ws(spaces: &mut impl Iterator<Item = u8>, out: &mut String) {
        for _ in 0..spaces.next().unwrap_or(0) % 3 {
            out.push(' ');
        }
    }
    ws(spaces, out);
    match v {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                render(item, spaces, out);
            }
            ws(spaces, out);
            out.push(']');
        }
        Value::Object(members) => {
            out.push('{');
            for (i, (k, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                ws(spaces, out);
                // An escaped spelling of "msg" now and then, which must still be found.
                if k == "msg" && spaces.next().unwrap_or(0).is_multiple_of(4) {
                    out.push_str(r#""m\u0073g""#);
                } else {
                    out.push_str(&Value::from(k.as_str()).to_string());
                }
                ws(spaces, out);
                out.push(':');
                render(item, spaces, out);
            }
            ws(spaces, out);
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
    ws(spaces, out);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn structural_walk_agrees_with_the_byte_scanner(
        body in json_value("[a-z{}\\[\\]:,\"\\\\ ]{0,8}", prop_oneof![Just("msg".to_owned()), "[a-z]{0,3}".prop_map(String::from)]),
        spaces in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let doc_value = serde_json::json!({"src": "c1", "dest": "n0", "body": body});
        let mut doc = String::new();
        render(&doc_value, &mut spaces.into_iter().cycle(), &mut doc);
        let mut copy = doc.clone().into_bytes();
        let mut buffers = simd_json::Buffers::default();
        simd_json::to_tape_with_buffers(&mut copy, &mut buffers).expect("valid JSON");
        let structurals = buffers.structural_indexes().to_vec();
        for path in [&["body", "msg"][..], &["body"], &["src"], &["body", "a", "msg"], &["nope"]] {
            let slow = raw_member(doc.as_bytes(), path);
            let fast = raw_member_indexed(doc.as_bytes(), &structurals, path);
            prop_assert_eq!(&fast, &slow, "path {:?} in {}", path, doc);
            if let Some(span) = slow {
                // And the span is the member's value, whatever its spelling.
                let found: Value = serde_json::from_str(&doc[span]).unwrap();
                // Compared with the document as serde_json reads it (its float parsing does not
                // always round-trip, so the generated value itself is not the reference).
                let as_read: Value = serde_json::from_str(&doc).unwrap();
                let mut expected = &as_read;
                for name in path {
                    expected = &expected[*name];
                }
                prop_assert_eq!(&found, expected);
            }
        }
    }
}
