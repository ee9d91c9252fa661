//! Raw sockets for the tests that play a broken or hostile client.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use tokio_tungstenite::tungstenite::{self, Message};

pub type Ws = tungstenite::WebSocket<TcpStream>;

/// An Engine.IO client on a WebSocket, OPEN packet read.
pub fn eio_client(addr: &str) -> Ws {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tungstenite::client::client(url.as_str(), stream).unwrap();
    let open = ws.read().unwrap();
    assert!(open.to_text().unwrap().starts_with("0{"), "{open:?}");
    ws
}

/// A Socket.IO client on a raw WebSocket, connected to "/".
pub fn sio_client(addr: &str) -> Ws {
    let mut ws = eio_client(addr);
    ws.send(Message::text("40")).unwrap();
    expect(&mut ws, "40{", 1);
    ws
}

/// Reads until `n` messages starting with `prefix` have arrived.
pub fn expect(ws: &mut Ws, prefix: &str, n: usize) {
    let mut seen = 0;
    while seen < n {
        let m = ws.read().unwrap();
        if m.to_text().unwrap_or("").starts_with(prefix) {
            seen += 1;
        }
    }
}

/// Sends one bid with ack id `id` and reads until its ack: returns how long the ack took and how
/// many `replaced values` broadcasts arrived meanwhile.
pub fn bid_with_ack(ws: &mut Ws, id: usize, bid: &str) -> (Duration, usize) {
    let sent = Instant::now();
    ws.send(Message::text(format!(
        r#"42{id}["replace old value",{bid}]"#
    )))
    .unwrap();
    let ack = format!("43{id}[");
    let mut broadcasts = 0;
    loop {
        let m = ws.read().unwrap();
        let text = m.to_text().unwrap_or("");
        if text.starts_with("42[\"replaced values\"") {
            broadcasts += 1;
        } else if text.starts_with(&ack) {
            return (sent.elapsed(), broadcasts);
        }
    }
}

/// Reads until the server's Close frame (or the end) and returns its code.
pub fn close_code(ws: &mut Ws) -> Option<u16> {
    loop {
        match ws.read() {
            Ok(Message::Close(Some(f))) => return Some(f.code.into()),
            Ok(Message::Close(None)) => return None,
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

/// Everything the server sends until it closes (or 10 s pass).
pub fn read_all(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).to_string()
}

/// Sends raw bytes on a new connection and returns the whole answer.
pub fn raw_http(addr: &str, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    let _ = s.write_all(bytes);
    read_all(&mut s)
}

/// A GET on a new connection (Werkzeug answers one request per connection): the whole answer.
pub fn http_get(addr: &str, target: &str) -> String {
    raw_http(
        addr,
        format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(),
    )
}

/// A well-behaved client still gets its own broadcast back.
pub fn still_works(addr: &str) {
    let mut ws = sio_client(addr);
    ws.send(Message::text(
        r#"42["replace old value",{"item":"ok","bid":1}]"#,
    ))
    .unwrap();
    expect(&mut ws, r#"42["replaced values""#, 1);
}

/// The Engine.IO session id in an OPEN packet's text (`..."sid":"..."...`).
pub fn sid_in(text: &str) -> String {
    let after = text
        .split("\"sid\":\"")
        .nth(1)
        .expect("no sid in the OPEN packet");
    after.split('"').next().unwrap_or_default().to_string()
}
