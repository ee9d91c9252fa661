use super::*;
use crate::wire::ws_frame::LengthForm;

/// One frame's bytes, masked when a key is given.
fn frame(opcode: OpCode, fin: bool, rsv1: bool, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    ws_frame::encode_frame(opcode, fin, rsv1, mask, payload)
}

fn client_frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    frame(opcode, fin, false, Some([0x11, 0x22, 0x33, 0x44]), payload)
}

fn server_frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    frame(opcode, true, false, None, payload)
}

/// A websocket-only Socket.IO conversation: handshake, OPEN, CONNECT, an event, a binary event
/// in two fragments, the broadcast back, a close.
fn conversation() -> Vec<(Dir, Vec<u8>)> {
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let req = format!(
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
    );
    let resp = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    let open = r#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
    let mut binary_first = client_frame(
        OpCode::Text,
        true,
        br#"451-["upload",{"_placeholder":true,"num":0}]"#,
    );
    binary_first.extend(client_frame(OpCode::Binary, false, &[1, 2]));
    binary_first.extend(client_frame(OpCode::Ping, true, b"")); // control frame between fragments
    binary_first.extend(client_frame(OpCode::Continuation, true, &[3]));
    let big = format!("42[\"replaced values\",\"{}\"]", "x".repeat(300));
    vec![
        (Dir::C2S, req.into_bytes()),
        (Dir::S2C, resp.as_bytes().to_vec()),
        (Dir::S2C, server_frame(OpCode::Text, open.as_bytes())),
        (Dir::C2S, client_frame(OpCode::Text, true, b"40")),
        (Dir::S2C, server_frame(OpCode::Text, br#"40{"sid":"s1"}"#)),
        (
            Dir::C2S,
            client_frame(OpCode::Text, true, br#"42["replace old value",{"bid":12}]"#),
        ),
        (Dir::S2C, server_frame(OpCode::Text, big.as_bytes())),
        (Dir::C2S, binary_first),
        (Dir::C2S, client_frame(OpCode::Close, true, &[0x03, 0xE8])),
        (Dir::S2C, server_frame(OpCode::Close, &[0x03, 0xE8])),
    ]
}

fn run(chunks: &[(Dir, Vec<u8>)], split: Option<usize>) -> Vec<Event> {
    let mut s = Session::new(1, Limits::default());
    let mut out = Vec::new();
    for (dir, bytes) in chunks {
        match split {
            Some(n) if n > 0 && n < bytes.len() => {
                s.data(*dir, 0.0, &bytes[..n], &mut out);
                s.data(*dir, 0.0, &bytes[n..], &mut out);
            }
            _ => s.data(*dir, 0.0, bytes, &mut out),
        }
    }
    s.close(0.0, "fin", &mut out);
    out
}

fn stages(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.stage.as_str()).collect()
}

#[test]
fn websocket_conversation_stage_sequence() {
    let events = run(&conversation(), None);
    let errors: Vec<_> = events.iter().filter(|e| e.stage == Stage::Error).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let st = stages(&events);
    assert_eq!(&st[..3], &["http.request", "http.response", "ws.handshake"]);
    let hs = &events[2];
    assert_eq!(hs.fields["accept_ok"], true);
    assert_eq!(
        hs.fields["extension_note"],
        "permessage-deflate offered, declined"
    );
    let sio: Vec<_> = events
        .iter()
        .filter(|e| e.stage == Stage::SioPacket)
        .collect();
    assert_eq!(sio.len(), 5);
    assert_eq!(sio[2].fields["event"], "replace old value");
    assert_eq!(sio[3].fields["type"], "EVENT");
    assert_eq!(sio[4].fields["type"], "BINARY_EVENT");
    assert_eq!(sio[4].fields["data"][1]["_binary"], 3);
    assert_eq!(sio[4].fields["data"][1]["hex"], "010203");
    let binmsg: Vec<_> = events
        .iter()
        .filter(|e| e.stage == Stage::WsMessage && e.fields["opcode"] == 2)
        .collect();
    assert_eq!(binmsg[0].fields["fragments"], 2);
    let frames: Vec<_> = events
        .iter()
        .filter(|e| e.stage == Stage::WsFrame)
        .collect();
    assert!(frames
        .iter()
        .any(|f| f.fields["length_form"] == LengthForm::Bits16.name()));
    let closes: Vec<_> = events
        .iter()
        .filter(|e| e.stage == Stage::WsClose)
        .collect();
    assert_eq!(closes.len(), 2);
    assert_eq!(closes[0].fields["code"], 1000);
    assert_eq!(st.last(), Some(&"tcp.close"));
    let open = events
        .iter()
        .find(|e| e.stage == Stage::EioPacket && e.fields["type"] == "OPEN")
        .unwrap();
    assert_eq!(open.fields["sid"], "abc");
    assert_eq!(open.fields["pingInterval"], 25000);
}

#[test]
fn any_split_point_gives_the_same_events() {
    let whole = run(&conversation(), None);
    for n in 0..400 {
        assert_eq!(run(&conversation(), Some(n)), whole, "split at {n}");
    }
}

#[test]
fn byte_by_byte_gives_the_same_events() {
    let whole = run(&conversation(), None);
    let mut s = Session::new(1, Limits::default());
    let mut out = Vec::new();
    for (dir, bytes) in conversation() {
        for b in bytes {
            s.data(dir, 0.0, &[b], &mut out);
        }
    }
    s.close(0.0, "fin", &mut out);
    assert_eq!(out, whole);
}

#[test]
fn polling_handshake_and_post() {
    let mut s = Session::new(7, Limits::default());
    let mut out = Vec::new();
    s.data(
        Dir::C2S,
        0.0,
        b"GET /socket.io/?EIO=4&transport=polling&t=x HTTP/1.1\r\nHost: a\r\n\r\n",
        &mut out,
    );
    let open = r#"0{"sid":"S1","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
    let resp = format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: {}\r\n\r\n{open}", open.len());
    s.data(Dir::S2C, 0.1, resp.as_bytes(), &mut out);
    let body = "40\x1e42[\"replace old value\",{\"bid\":1}]";
    let post = format!("POST /socket.io/?EIO=4&transport=polling&sid=S1 HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    s.data(Dir::C2S, 0.2, post.as_bytes(), &mut out);
    s.data(
        Dir::S2C,
        0.3,
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        &mut out,
    );
    // Chunked response body with two packets.
    s.data(
        Dir::C2S,
        0.4,
        b"GET /socket.io/?EIO=4&transport=polling&sid=S1 HTTP/1.1\r\n\r\n",
        &mut out,
    );
    s.data(Dir::S2C, 0.5, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n2\x1e6\x1e\r\n7\r\n42[\"x\"]\r\n0\r\n\r\n", &mut out);
    assert_eq!(
        stages(&out),
        [
            "http.request",
            "http.response",
            "eio.packet",
            "http.request",
            "eio.packet",
            "sio.packet",
            "eio.packet",
            "sio.packet",
            "http.response",
            "http.request",
            "http.response",
            "eio.packet",
            "eio.packet",
            "eio.packet",
            "sio.packet",
        ]
    );
    assert_eq!(out[0].kind, Some(Kind::PollingOpen));
    assert_eq!(out[2].fields["transport"], "polling");
    assert_eq!(out[7].fields["event"], "replace old value");
    assert_eq!(out[7].fields["sid"], "S1");
    assert_eq!(out[13].fields["type"], "MESSAGE");
}

#[test]
fn bad_input_is_reported_not_fatal() {
    // Garbage instead of HTTP.
    let mut s = Session::new(1, Limits::default());
    let mut out = Vec::new();
    s.data(
        Dir::C2S,
        0.0,
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
        &mut out,
    );
    assert_eq!(stages(&out), ["error", "tcp.data"]);
    // After the server's Close, HTTP written onto the socket is not decoded as frames.
    let mut chunks = conversation();
    chunks.push((Dir::S2C, b"HTTP/1.1 400 BAD REQUEST\r\n\r\n".to_vec()));
    chunks.push((Dir::C2S, client_frame(OpCode::Text, true, b"3")));
    let events = run(&chunks, None);
    let tail: Vec<_> = events
        .iter()
        .rev()
        .take(3)
        .map(|e| e.stage.as_str())
        .collect();
    assert_eq!(tail, ["tcp.close", "eio.packet", "ws.message"]);
    // The HTTP page is reported as bytes, as soon as it comes; the client's well-formed data
    // frame after its own Close is decoded, with an error naming the rule.
    let data = events.iter().find(|e| e.stage == Stage::TcpData).unwrap();
    assert_eq!(data.dir, Some(Dir::S2C));
    assert!(data.text("reason").unwrap().starts_with("HTTP written"));
    assert!(events.iter().any(|e| e.stage == Stage::Error
        && e.fields["rule"]
            .as_str()
            .unwrap()
            .contains("after this side's Close")));
    // Unmasked client frame and invalid UTF-8 are errors naming the rule; decoding continues.
    let mut chunks = conversation();
    chunks.truncate(3);
    chunks.push((Dir::C2S, server_frame(OpCode::Text, b"40")));
    chunks.push((Dir::C2S, client_frame(OpCode::Text, true, &[0x34, 0xff])));
    chunks.push((Dir::C2S, client_frame(OpCode::Text, true, b"42[oops")));
    chunks.push((Dir::C2S, client_frame(OpCode::Text, true, b"41")));
    let events = run(&chunks, None);
    let rules: Vec<String> = events
        .iter()
        .filter(|e| e.stage == Stage::Error)
        .map(|e| e.fields["rule"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(rules.len(), 3, "{rules:?}");
    assert!(rules[0].contains("§5.1"));
    assert!(rules[1].contains("UTF-8"));
    assert!(rules[2].contains("JSON"));
    assert!(events
        .iter()
        .any(|e| e.stage == Stage::SioPacket && e.fields["type"] == "DISCONNECT"));
}

#[test]
fn oversized_frames_are_skipped() {
    let limits = Limits {
        max_message: 100,
        ..Limits::default()
    };
    let mut s = Session::new(1, limits);
    let mut out = Vec::new();
    let c = conversation();
    for (dir, b) in &c[..3] {
        s.data(*dir, 0.0, b, &mut out);
    }
    out.clear();
    s.data(
        Dir::C2S,
        0.0,
        &client_frame(OpCode::Binary, true, &[0u8; 500]),
        &mut out,
    );
    s.data(
        Dir::C2S,
        0.0,
        &client_frame(OpCode::Text, true, b"3"),
        &mut out,
    );
    assert_eq!(
        stages(&out),
        ["ws.frame", "error", "ws.frame", "ws.message", "eio.packet"]
    );
}

#[test]
fn midstream_start_finds_frames_and_heads() {
    let mut s = Session::new_midstream(1, Limits::default());
    let mut out = Vec::new();
    s.data(Dir::S2C, 0.0, &server_frame(OpCode::Text, b"2"), &mut out);
    s.data(
        Dir::C2S,
        0.0,
        &client_frame(OpCode::Text, true, b"3"),
        &mut out,
    );
    assert_eq!(
        stages(&out),
        [
            "ws.frame",
            "ws.message",
            "eio.packet",
            "ws.frame",
            "ws.message",
            "eio.packet"
        ]
    );
    let mut s = Session::new_midstream(2, Limits::default());
    out.clear();
    s.data(Dir::C2S, 0.0, b"GET /auctions HTTP/1.1\r\n\r\n", &mut out);
    assert_eq!(stages(&out), ["http.request"]);
}

/// permessage-deflate both ways: the client's compressed message split over three frames (RSV1
/// on the first only, RFC 7692 §6.1), the server's without context takeover, so each of its
/// messages inflates on its own.
#[test]
fn compressed_messages_fragmented_and_without_context_takeover() {
    use flate2::{Compress, Compression, FlushCompress};
    fn deflate(c: &mut Compress, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 64);
        c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
        out.truncate(out.len() - 4);
        out
    }
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let req = format!(
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
    );
    let resp = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_max_window_bits=10\r\n\r\n";
    let mut s = Session::new(1, Limits::default());
    let mut out = Vec::new();
    s.data(Dir::C2S, 0.0, req.as_bytes(), &mut out);
    s.data(Dir::S2C, 0.0, resp.as_bytes(), &mut out);
    // Client: context takeover (two messages share a window), the second split in three.
    let mut client = Compress::new(Compression::default(), false);
    let first = deflate(
        &mut client,
        br#"42["replace old value",{"item":"lamp","bid":1}]"#,
    );
    let second = deflate(
        &mut client,
        br#"42["replace old value",{"item":"lamp","bid":2}]"#,
    );
    let key_bytes = [9, 8, 7, 6];
    let masked = |opcode: OpCode, fin: bool, rsv1: bool, p: &[u8]| {
        frame(opcode, fin, rsv1, Some(key_bytes), p)
    };
    s.data(
        Dir::C2S,
        0.1,
        &masked(OpCode::Text, true, true, &first),
        &mut out,
    );
    let (a, rest) = second.split_at(second.len() / 3);
    let (b, c) = rest.split_at(rest.len() / 2);
    s.data(
        Dir::C2S,
        0.2,
        &masked(OpCode::Text, false, true, a),
        &mut out,
    );
    s.data(
        Dir::C2S,
        0.2,
        &masked(OpCode::Continuation, false, false, b),
        &mut out,
    );
    s.data(
        Dir::C2S,
        0.2,
        &masked(OpCode::Continuation, true, false, c),
        &mut out,
    );
    // Server: no context takeover, a fresh compressor per message.
    for bid in [1, 2] {
        let mut server = Compress::new(Compression::default(), false);
        let z = deflate(
            &mut server,
            format!(r#"42["replaced values",{{"bid":{bid}}}]"#).as_bytes(),
        );
        s.data(
            Dir::S2C,
            0.3,
            &frame(OpCode::Text, true, true, None, &z),
            &mut out,
        );
    }
    let errors: Vec<_> = out.iter().filter(|e| e.stage == Stage::Error).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let messages: Vec<_> = out.iter().filter(|e| e.stage == Stage::WsMessage).collect();
    assert_eq!(messages.len(), 4);
    assert_eq!(messages[1].fields["fragments"], 3);
    assert!(messages.iter().all(|m| m.fields["compressed"] == true));
    assert_eq!(
        messages[1].fields["text"],
        r#"42["replace old value",{"item":"lamp","bid":2}]"#
    );
    assert_eq!(
        messages[3].fields["text"],
        r#"42["replaced values",{"bid":2}]"#
    );
    let hs = out.iter().find(|e| e.stage == Stage::WsHandshake).unwrap();
    assert_eq!(hs.fields["extension_note"], "permessage-deflate accepted");
}

/// A decompression bomb in a capture: a tiny compressed frame that would inflate to a
/// megabyte. It is refused at the limit (never inflated further), reported, and the
/// connection's other traffic still decodes.
#[test]
fn decompression_bomb_is_refused_at_the_limit() {
    use flate2::{Compress, Compression, FlushCompress};
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let req = format!(
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
    );
    let resp = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\r\n";
    let limits = Limits {
        max_message: 64 * 1024,
        ..Limits::default()
    };
    let mut s = Session::new(1, limits);
    let mut out = Vec::new();
    s.data(Dir::C2S, 0.0, req.as_bytes(), &mut out);
    s.data(Dir::S2C, 0.0, resp.as_bytes(), &mut out);
    let mut c = Compress::new(Compression::best(), false);
    let mut bomb = Vec::with_capacity(8192);
    c.compress_vec(&vec![b'4'; 1 << 20], &mut bomb, FlushCompress::Sync)
        .unwrap();
    bomb.truncate(bomb.len() - 4);
    assert!(bomb.len() < 4096, "{} bytes", bomb.len());
    let text_frame = |p: &[u8], rsv1: bool| frame(OpCode::Text, true, rsv1, None, p);
    out.clear();
    s.data(Dir::S2C, 0.1, &text_frame(&bomb, true), &mut out);
    let rules: Vec<&str> = out
        .iter()
        .filter(|e| e.stage == Stage::Error)
        .filter_map(|e| e.fields["rule"].as_str())
        .collect();
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert!(rules[0].contains("limit"), "{rules:?}");
    // No context takeover: the next message inflates on its own.
    let mut c = Compress::new(Compression::default(), false);
    let mut ok = Vec::with_capacity(64);
    c.compress_vec(b"2", &mut ok, FlushCompress::Sync).unwrap();
    ok.truncate(ok.len() - 4);
    out.clear();
    s.data(Dir::S2C, 0.2, &text_frame(&ok, true), &mut out);
    assert!(
        out.iter()
            .any(|e| e.stage == Stage::EioPacket && e.fields["type"] == "PING"),
        "{out:#?}"
    );
}

/// A one-sided capture (only the client's packets) of a long keep-alive connection: the
/// requests waiting for a response are capped, not accumulated.
#[test]
fn requests_without_responses_do_not_pile_up() {
    let mut s = Session::new(1, Limits::default());
    let mut out = Vec::new();
    for _ in 0..10_000 {
        s.data(
            Dir::C2S,
            0.0,
            b"GET /socket.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\n\r\n",
            &mut out,
        );
    }
    assert_eq!(out.len(), 10_000);
    assert_eq!(s.pending.len(), MAX_PENDING_REQUESTS);
}

#[test]
fn an_events_preview_is_the_start_of_its_arguments_json() {
    let long = "é\"x".repeat(200);
    let args = [
        json!("short"),
        json!(long),
        json!({"item": "lot \"1\"", "note": long, "n": 3}),
    ];
    let texts: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let raws: Vec<Box<RawValue>> = texts
        .iter()
        .map(|t| RawValue::from_string(t.clone()).unwrap())
        .collect();
    for n in 0..=raws.len() {
        let items: Vec<&RawValue> = raws[..n].iter().map(|r| &**r).collect();
        let full = format!("[{}]", texts[..n].join(","));
        let p = super::preview_items(&items);
        assert!(full.starts_with(&p), "{p} is not the start of {full}");
        assert!(p.len() == full.len() || p.len() > 90, "{p} cut too early");
    }
}

/// A Python client escapes every non-ASCII character (`json.dumps` defaults); the trace keeps
/// the data as sent, and the summary shows the characters.
#[test]
fn escaped_unicode_is_kept_in_data_and_shown_in_the_summary() {
    let mut s = Session::new(1, Limits::default());
    let mut out = Vec::new();
    let text = r#"42["bid",{"item":"caf\u00e9 \u2615"}]"#;
    s.data(Dir::C2S, 0.0, b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", &mut out);
    s.data(Dir::S2C, 0.0, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", &mut out);
    s.data(
        Dir::C2S,
        0.1,
        &client_frame(OpCode::Text, true, text.as_bytes()),
        &mut out,
    );
    let sio = out
        .iter()
        .find(|e| e.stage == Stage::SioPacket)
        .expect("a Socket.IO event");
    assert_eq!(
        sio.fields.json_text("data").unwrap(),
        r#"["bid",{"item":"caf\u00e9 \u2615"}]"#
    );
    assert!(sio.summary.contains("café ☕"), "{}", sio.summary);
    assert_eq!(sio.fields["event"], "bid");
}

/// What a server writes to one client of a busy room: its own OPEN and CONNECT, then frames
/// every client gets alike (broadcasts, pings), and frames that change the decoder's state (a
/// binary event and its attachment, a fragmented message, a frame breaking a rule).
fn recipient(sid: &str) -> Vec<(Dir, Vec<u8>)> {
    let req = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let resp = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    let open = format!(
        r#"0{{"sid":"{sid}","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}}"#
    );
    let bid = br#"42["replaced values",{"item":"lamp","bid":3,"note":"caf\u00e9 <b>"}]"#;
    let s2c = |b: &[u8]| (Dir::S2C, server_frame(OpCode::Text, b));
    let mut fragmented = frame(OpCode::Text, false, false, None, b"42[\"replaced ");
    fragmented.extend(frame(
        OpCode::Continuation,
        true,
        false,
        None,
        b"values\",1]",
    ));
    vec![
        (Dir::C2S, req.as_bytes().to_vec()),
        (Dir::S2C, resp.as_bytes().to_vec()),
        s2c(open.as_bytes()),
        s2c(format!(r#"40{{"sid":"io-{sid}"}}"#).as_bytes()),
        s2c(bid),
        s2c(b"2"),
        s2c(br#"451-["photo",{"_placeholder":true,"num":0}]"#),
        (Dir::S2C, server_frame(OpCode::Binary, &[1, 2, 3])),
        s2c(bid),
        (Dir::S2C, fragmented),
        (Dir::S2C, frame(OpCode::Text, true, true, None, b"42[1]")),
        s2c(bid),
        (Dir::S2C, server_frame(OpCode::Binary, &[1, 2, 3])),
        s2c(b"6"),
    ]
}

fn decode(conn: u64, interest: u32, chunks: &[(Dir, Vec<u8>)]) -> Vec<Event> {
    decode_with(None, conn, interest, chunks)
}

fn decode_with(
    memo: Option<&crate::flow::SharedMemo>,
    conn: u64,
    interest: u32,
    chunks: &[(Dir, Vec<u8>)],
) -> Vec<Event> {
    let mut s = Session::new(conn, Limits::default());
    if let Some(m) = memo {
        s = s.with_memo(m.clone());
    }
    s.set_interest(interest);
    let mut out = Vec::new();
    for (dir, bytes) in chunks {
        s.data(*dir, conn as f64, bytes, &mut out);
    }
    out
}

#[test]
fn copies_of_a_frame_decode_as_if_each_were_the_first() {
    let all = u32::MAX;
    let sio_only = Stage::SioPacket.bit() | Stage::Error.bit();
    // A connection whose OPEN was not seen (a capture that starts late) knows no session id;
    // the others must still get theirs in the events it left in the memo.
    let mut unnamed = recipient("zzzz");
    unnamed.remove(2);
    // One upgraded from polling: its WebSocket request names the session, no OPEN follows.
    let mut upgraded = recipient("uuuu");
    upgraded.remove(2);
    upgraded[0].1 = String::from_utf8(upgraded[0].1.clone())
        .unwrap()
        .replace("EIO=4&", "EIO=4&sid=uuuu&")
        .into_bytes();
    let room = [
        (6, all, unnamed),
        (1, all, recipient("aaaa")),
        (2, all, recipient("bbbb")),
        (3, sio_only, recipient("cccc")),
        (4, all, recipient("dddd")),
        // The same OPEN again (the same session on a second connection): it must still name
        // the session.
        (5, all, recipient("dddd")),
        (7, all, upgraded),
    ];
    // One memo serves the whole room, as the server's or the replay's does.
    let memo = crate::flow::Memo::shared();
    let together: Vec<Vec<Event>> = room
        .iter()
        .map(|(conn, interest, chunks)| decode_with(Some(&memo), *conn, *interest, chunks))
        .collect();
    for ((conn, interest, chunks), events) in room.iter().zip(&together) {
        assert_eq!(
            *events,
            decode(*conn, *interest, chunks),
            "connection {conn}"
        );
    }
    // The memo was used: the next recipient holds the first one's fields of the broadcast, and
    // its own session id. (The third, with other interests, takes other places in the memo.)
    let broadcast = |events: &[Event]| -> Vec<Event> {
        events
            .iter()
            .filter(|e| e.summary.contains("replaced values") && e.stage == Stage::SioPacket)
            .cloned()
            .collect()
    };
    let (first, second) = (broadcast(&together[1]), broadcast(&together[2]));
    assert_eq!(first.len(), 4, "three whole copies and the fragmented one");
    for whole in [0, 1, 3] {
        assert!(first[whole].fields.shares_with(&second[whole].fields));
    }
    assert!(
        !first[2].fields.shares_with(&second[2].fields),
        "a fragmented message is decoded each time"
    );
    assert_eq!(
        (&first[0].fields["sid"], &second[0].fields["sid"]),
        (&"aaaa".into(), &"bbbb".into())
    );
    // The attachment after the binary event is one; the same bytes later are a plain binary
    // message: the binary event was not taken from the memo without its state.
    let attachments = |events: &[Event]| {
        events
            .iter()
            .filter(|e| e.stage == Stage::SioPacket && e.summary.contains("photo"))
            .count()
    };
    assert_eq!(attachments(&together[4]), 1);
}

/// After both Close frames, a client that still sends bytes gets Werkzeug's error page: with a
/// status line, or (an "HTTP/0.9" request line) the bare HTML. Both are named as HTTP on the
/// upgraded socket, which the diagnosis reads; other bytes are only "not a frame".
#[test]
fn an_http_page_after_the_close_is_named_as_one() {
    for (page, named) in [
        (&b"HTTP/1.0 400 Bad request\r\n\r\n<html>"[..], true),
        (&b"<!DOCTYPE HTML>\n<html lang=\"en\">"[..], true),
        (&b"\xff\xff\xff"[..], false),
    ] {
        let mut chunks = conversation();
        chunks.push((Dir::C2S, client_frame(OpCode::Text, true, b"1")));
        chunks.push((Dir::S2C, page.to_vec()));
        let out = run(&chunks, None);
        let data = out
            .iter()
            .find(|e| e.stage == Stage::TcpData && e.dir == Some(Dir::S2C))
            .expect("the page is kept as undecoded bytes");
        let reason = data.text("reason").unwrap_or("");
        assert_eq!(
            reason.starts_with("HTTP written onto an upgraded socket"),
            named,
            "{reason}"
        );
    }
}
