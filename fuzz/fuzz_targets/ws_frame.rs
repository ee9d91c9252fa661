//! WebSocket frame headers, masking, Close payloads and permessage-deflate inflation.
#![no_main]

use dispel::wire::deflate::{InflateError, Inflater};
use dispel::wire::ws_frame::{self, FrameHeader};
use libfuzzer_sys::fuzz_target;

/// A small inflate limit, so that decompression bombs show up as errors quickly.
const MAX_INFLATED: usize = 4096;

fuzz_target!(|data: &[u8]| {
    match FrameHeader::parse(data) {
        Ok(Some(h)) => {
            assert!((2..=14).contains(&h.header_len));
            assert!(h.header_len <= data.len());
            // The header re-encodes to the bytes it was parsed from.
            assert_eq!(h.encode(), &data[..h.header_len]);
            for from_client in [false, true] {
                for deflate in [false, true] {
                    if let Some(v) = h.violation(from_client, deflate) {
                        let _ = v.to_string();
                        assert_eq!(v.close_code(), 1002);
                    }
                }
            }
            let payload = &data[h.header_len..];
            let key = h.mask.unwrap_or([0x37, 0xfa, 0x21, 0x3d]);
            let mut whole = payload.to_vec();
            ws_frame::apply_mask(&mut whole, key, 0);
            // Masking in two pieces (the second at its offset) equals masking at once.
            let cut = usize::from(data[0]).min(payload.len());
            let mut pieces = payload.to_vec();
            let (a, b) = pieces.split_at_mut(cut);
            ws_frame::apply_mask(a, key, 0);
            ws_frame::apply_mask(b, key, cut);
            assert_eq!(whole, pieces);
            // XOR is its own inverse.
            ws_frame::apply_mask(&mut whole, key, 0);
            assert_eq!(whole, payload);
            let (code, _reason) = ws_frame::close_payload(payload);
            if let Some(c) = code {
                let _ = ws_frame::close_code_meaning(c);
            }
        }
        Ok(None) => {}
        Err(e) => {
            let _ = e.to_string();
        }
    }

    // permessage-deflate: the first byte picks context takeover and where the input is cut
    // into two messages.
    if let Some((&ctl, rest)) = data.split_first() {
        let mut inflater = Inflater::new(ctl & 1 != 0);
        let cut = usize::from(ctl >> 1).min(rest.len());
        for message in [&rest[..cut], &rest[cut..]] {
            match inflater.inflate(message, MAX_INFLATED) {
                Ok(out) => assert!(out.len() <= MAX_INFLATED),
                Err(InflateError::TooLarge(n)) => assert_eq!(n, MAX_INFLATED),
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        }
    }
});
