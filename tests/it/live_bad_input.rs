//! Hostile and broken clients: each gets the right HTTP error or close code, the trace names the
//! broken rule, and a well-behaved client on the same server carries on.

use std::io::Write;
use std::time::Duration;

use dispel::wire::ws_frame::{encode_frame, OpCode};
use tokio_tungstenite::tungstenite::Message;

use crate::raw::{bid_with_ack, close_code, raw_http, sio_client, still_works};
use crate::util::Server;

fn frame(opcode: u8, fin: bool, rsv1: bool, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    encode_frame(OpCode::from_u8(opcode), fin, rsv1, mask, payload)
}

#[test]
fn bad_http_gets_http_errors() {
    let server = Server::start(&["--max-head-bytes", "2048"]);
    let a = &server.addr;
    assert!(raw_http(
        a,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n"
    )
    .starts_with("HTTP/1.1 400"));
    assert!(raw_http(a, b"\x00\xff\x7f garbage \x01\r\n\r\n").starts_with("HTTP/1.1 400"));
    let big = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(4000));
    assert!(raw_http(a, big.as_bytes()).starts_with("HTTP/1.1 431"));
    let many: String = (0..100).map(|i| format!("X-{i}: y\r\n")).collect();
    assert!(
        raw_http(a, format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()).starts_with("HTTP/1.1 431")
    );
    assert!(
        raw_http(a, b"GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n").starts_with("HTTP/1.1 404")
    );
    // python-engineio's words (tests/it/differential.rs checks every byte against it).
    let r = raw_http(
        a,
        b"GET /socket.io/?EIO=3&transport=polling HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert!(
        r.starts_with("HTTP/1.1 400") && r.contains("unsupported version"),
        "{r}"
    );
    let r = raw_http(
        a,
        b"GET /socket.io/?EIO=4&transport=carrier-pigeon HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert!(r.contains("Invalid transport"), "{r}");
    let r = raw_http(
        a,
        b"GET /socket.io/?EIO=4&transport=polling&sid=nope HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert!(r.contains("Invalid session nope"), "{r}");
    // One request per connection, as Werkzeug's development server: the second is not read.
    let r = raw_http(
        a,
        b"GET /auctions HTTP/1.1\r\n\r\nGET /auctions HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.matches("HTTP/1.1 200 OK").count(), 1);
    assert!(r.contains("Connection: close"), "{r}");
    still_works(a);
    let trace = server.stop();
    let errors = trace.errors();
    assert!(
        errors.iter().any(|e| e.contains("malformed HTTP/1.1 head")),
        "{errors:?}"
    );
    assert!(errors.iter().any(|e| e.contains("431")), "{errors:?}");
}

#[test]
fn bad_frames_get_the_right_close_codes() {
    let server = Server::start(&["--max-payload", "1000"]);
    let a = &server.addr;
    let key = Some([1, 2, 3, 4]);
    let cases: &[(&str, Vec<u8>, u16)] = &[
        (
            "unmasked client frame",
            frame(1, true, false, None, b"42[\"x\"]"),
            1002,
        ),
        ("reserved opcode", frame(3, true, false, key, b"x"), 1002),
        (
            "RSV1 without deflate",
            frame(1, true, true, key, b"x"),
            1002,
        ),
        (
            "invalid UTF-8",
            frame(1, true, false, key, &[0x34, 0xff, 0xfe]),
            1007,
        ),
        // python-engineio ends the session; its writer then closes normally.
        (
            "oversized message",
            frame(1, true, false, key, &[b'4'; 5000]),
            1000,
        ),
    ];
    for (what, bytes, code) in cases {
        let mut ws = sio_client(a);
        ws.get_mut().write_all(bytes).unwrap();
        assert_eq!(close_code(&mut ws), Some(*code), "{what}");
    }
    // Engine.IO and Socket.IO packets that do not decode are dropped, as python-socketio
    // drops them: the session goes on.
    let mut ws = sio_client(a);
    for bad in ["9nine", "42[oops", r#"42{"not":"an array"}"#] {
        ws.send(Message::text(bad)).unwrap();
    }
    ws.send(Message::text(
        r#"42["replace old value",{"item":"after","bid":1}]"#,
    ))
    .unwrap();
    crate::raw::expect(&mut ws, r#"42["replaced values",{"item":"after""#, 1);
    still_works(a);
    let trace = server.stop();
    let errors = trace.errors().join("\n");
    for rule in [
        "§5.1",
        "reserved opcode",
        "RSV bit",
        "UTF-8",
        "exceeds",
        "unknown packet type",
        "not JSON",
        "EVENT's data",
    ] {
        assert!(
            errors.contains(rule),
            "no error naming {rule:?} in:\n{errors}"
        );
    }
}

#[test]
fn a_client_that_stops_reading_is_dropped_and_others_carry_on() {
    let server = Server::start(&[
        "--max-queue",
        "32",
        "--stage",
        "error",
        "--stage",
        "sio.broadcast",
    ]);
    let a = server.addr.clone();
    // The slow client joins and then never reads again.
    let slow = sio_client(&a);
    let mut good = sio_client(&a);
    // Big bids fill the slow client's socket buffers, then its queue.
    let big = "x".repeat(60_000);
    let bids = 300;
    let mut broadcasts = 0;
    let mut slowest = Duration::ZERO;
    for i in 0..bids {
        // Ack-paced, as a person bidding would be: the next bid waits for the last one's ack.
        let bid = format!(r#"{{"item":"i{i}","bid":{i},"note":"{big}"}}"#);
        let (took, seen) = bid_with_ack(&mut good, i, &bid);
        slowest = slowest.max(took);
        broadcasts += seen;
    }
    assert_eq!(broadcasts, bids, "the good client got every broadcast");
    // An ack follows its broadcast to the clients keeping up: the one that stopped reading is
    // never waited for (it would take the server's cap of a second per bid).
    assert!(
        slowest < Duration::from_millis(500),
        "an ack took {slowest:?}"
    );
    drop(slow);
    let trace = server.stop();
    assert!(
        trace.errors().iter().any(|e| e.contains("is not reading")),
        "the slow client was dropped with a trace event: {:?}",
        trace.errors()
    );
    assert_eq!(
        trace.errors().len(),
        1,
        "only the slow client: {:?}",
        trace.errors()
    );
}

#[test]
fn attachments_beyond_max_payload_end_the_session() {
    // What Node's engine.io does (python-engineio has no such limit; dispel drops the packet).
    let server = Server::start(&["--max-payload", "1000", "--app", "conformance"]);
    let a = &server.addr;
    let mut ws = sio_client(a);
    ws.send(Message::text(
        r#"452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
    ))
    .unwrap();
    ws.send(Message::binary(vec![7u8; 900])).unwrap();
    let _ = ws.send(Message::binary(vec![7u8; 900]));
    // The server drops the session: an Engine.IO CLOSE, then the WebSocket closes.
    let mut closed = false;
    for _ in 0..10 {
        match ws.read() {
            Ok(Message::Text(t)) if t.as_str() == "1" => closed = true,
            Ok(Message::Close(_)) | Err(_) => {
                closed = true;
                break;
            }
            Ok(_) => {}
        }
    }
    assert!(closed, "the session should end");
    // More than 64 attachments announced: refused as a bad packet.
    let mut ws = sio_client(a);
    ws.send(Message::text(
        r#"4565-["message",{"_placeholder":true,"num":0}]"#,
    ))
    .unwrap();
    close_code(&mut ws);
    // Others still connect.
    drop(sio_client(a));
    let errors = server.stop().errors().join("\n");
    assert!(errors.contains("attachments"), "{errors}");
}
