//! Socket.IO v5 packets: decoding, the round trip decode(encode(p)) == p, and the trace's
//! raw decoding (data kept as JSON text) agreeing with the value decoding on every input.
#![no_main]

use dispel::wire::socketio::{self, Packet};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let raw = Packet::decode_raw(text);
    let p = match Packet::decode(text) {
        Ok(p) => p,
        Err(e) => {
            let _ = e.to_string();
            // The same rule broken (serde_json words a JSON error differently per mode).
            let raw_err = raw.err().map(|r| std::mem::discriminant(&r));
            assert_eq!(
                raw_err,
                Some(std::mem::discriminant(&e)),
                "{text:?}: raw and value decoding disagree"
            );
            return;
        }
    };
    match raw {
        Ok(r) => {
            assert_eq!(
                (r.ptype, r.attachments, &r.nsp, r.id),
                (p.ptype, p.attachments, &p.nsp, p.id)
            );
            let parsed = r
                .data
                .map(|d| serde_json::from_str::<Value>(d.get()).unwrap());
            assert_eq!(parsed, p.data, "{text:?}: raw data is not the value's JSON");
        }
        Err(e) => panic!("{text:?} decodes as values but not raw: {e}"),
    }
    let encoded = p.encode();
    match Packet::decode(&encoded) {
        Ok(q) => assert_eq!(q, p, "{text:?} -> {encoded:?}"),
        Err(e) => panic!("{text:?} decoded, but its encoding {encoded:?} does not: {e}"),
    }
    let _ = p.event_name();
    let _ = p.args();
    if let Some(mut d) = p.data.clone() {
        let mut seen = Vec::new();
        let n = socketio::fill_placeholders(&mut d, &mut |i| {
            seen.push(i);
            Value::from(i as u64)
        });
        assert_eq!(n, seen.len());
        // Filling again finds nothing left to fill.
        assert_eq!(socketio::fill_placeholders(&mut d, &mut |_| Value::Null), 0);
    }
});
