//! HTTP/1.1 heads, body framing, chunked bodies, query parameters and the WebSocket
//! handshake checks on whatever headers parse.
#![no_main]

use dispel::wire::{handshake, http};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Small limits reach the "too large" paths; the defaults reach the rest.
    let _ = http::parse_request(data, 4, 64);
    if let Ok(Some(head)) = http::parse_request(data, 128, 64 * 1024) {
        assert!(head.head_len <= data.len());
        let _ = head.path();
        let _ = head.query("EIO");
        let _ = head.query("sid");
        let _ = head.body_kind();
        let _ = head.keep_alive();
        if handshake::is_upgrade_request(&head.headers) {
            let _ = handshake::check_request(&head.method, head.version, &head.headers);
        }
        let _ = handshake::parse_extensions(&head.headers);
    }
    if let Ok(Some(head)) = http::parse_response(data, 128) {
        assert!(head.head_len <= data.len());
        for method in [None, Some("GET"), Some("HEAD"), Some("POST")] {
            let _ = head.body_kind(method);
        }
        let _ = handshake::accepted_deflate(&head.headers);
        let _ = handshake::parse_extensions(&head.headers);
    }
    const MAX_BODY: usize = 4096;
    if let Ok(Some((body, used))) = http::decode_chunked(data, MAX_BODY) {
        assert!(used <= data.len());
        assert!(body.len() <= MAX_BODY);
        // What was consumed is a complete chunked body on its own.
        assert_eq!(
            http::decode_chunked(&data[..used], MAX_BODY),
            Ok(Some((body, used)))
        );
    }
    if let Ok(text) = std::str::from_utf8(data) {
        // The first line names the parameter, the rest is the target.
        let (name, target) = text.split_once('\n').unwrap_or(("sid", text));
        let _ = http::query_param(target, name);
        let _ = http::query_param(target, "sid");
        let _ = handshake::compute_accept(text);
    }
});
