//! Engine.IO v4 packets, polling payloads and the OPEN handshake data.
#![no_main]

use dispel::wire::engineio::{self, OpenInfo, Packet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(p) = Packet::decode_text(text) {
            // A text packet re-encodes to the text it came from.
            assert_eq!(p.encode_text(), text);
        }
        if let Ok(info) = OpenInfo::parse(text) {
            assert_eq!(OpenInfo::parse(&info.to_json()), Ok(info));
        }
    }
    let items = engineio::decode_payload(data);
    assert!(!items.is_empty());
    let packets: Vec<Packet> = items.into_iter().filter_map(Result::ok).collect();
    let encoded = engineio::encode_payload(&packets);
    // Whatever decoded decodes again to the same packets.
    let again: Vec<Packet> = engineio::decode_payload(encoded.as_bytes())
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    if !packets.is_empty() {
        assert_eq!(again, packets);
    }
});
