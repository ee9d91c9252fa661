//! JSON text written straight into a line buffer.
//!
//! Escaping strings is the largest single cost of writing a trace (docs/performance.md):
//! strings go through a SIMD escaper (`json-escape-simd`), everything else is written as
//! serde_json writes it. The bytes are serde_json's, which the tests below check.

use serde_json::Value;

/// A JSON string, quotes included.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    // Most strings of a line are short and need no escape (keys, ids, names): copied as they
    // are, without the SIMD escaper's setup, which costs more than the check at this size.
    if b.len() <= SHORT && b.iter().all(|&c| c >= 0x20 && c != b'"' && c != b'\\') {
        out.reserve(b.len() + 2);
        out.push(b'"');
        out.extend_from_slice(b);
        out.push(b'"');
    } else {
        json_escape_simd::escape_into(s, out);
    }
}

/// Strings up to this length are checked for escapes byte by byte.
const SHORT: usize = 64;

/// An unsigned integer, as serde_json writes it.
pub fn write_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

pub fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, k);
                out.push(b':');
                write_value(out, item);
            }
            out.push(b'}');
        }
        // null, booleans and numbers: short, and serde_json's formatting is the reference.
        other => {
            let _ = serde_json::to_writer(&mut *out, other);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn same_bytes_as_serde_json() {
        // Every ASCII character (controls, quote, backslash, DEL), multi-byte UTF-8, long runs.
        let all_ascii: String = (0u8..128).map(char::from).collect();
        let strings = [
            String::new(),
            all_ascii.clone(),
            "é\"x\\y\u{2028}😀</script>".repeat(50),
            "short \"quoted\" \\ \t é".into(),
            "plain-sid_123".into(),
            "ctl\u{1f}del\u{7f}".into(),
            "a".repeat(SHORT),
            "a".repeat(SHORT + 1),
            format!("{}\u{1}{}", "a".repeat(100), "b".repeat(33)),
        ];
        for s in &strings {
            let mut out = Vec::new();
            write_str(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "string {s:?}");
        }
        let v = json!({
            "a": [1, -2.5, 1e300, null, true, {"k\n": all_ascii}],
            "é": {"nested": [[], {}, ""]},
            "big": u64::MAX,
        });
        let mut out = Vec::new();
        write_value(&mut out, &v);
        assert_eq!(out, serde_json::to_vec(&v).unwrap());
    }
}
