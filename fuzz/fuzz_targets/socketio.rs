//! Socket.IO v5 packets: decoding, and the round trip decode(encode(p)) == p.
#![no_main]

use dispel::wire::socketio::{self, Packet};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let p = match Packet::decode(text) {
        Ok(p) => p,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
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
