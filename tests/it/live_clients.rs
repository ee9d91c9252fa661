//! The real clients against `dispel serve`, and the stage sequence they leave in the trace.

use crate::util::{assert_in_order, node_client, py_client, Server};

const WS_CONN: &[&str] = &[
    "tcp.accept",
    "http.request",
    "http.response",
    "ws.handshake",
    "ws.frame",
    "ws.message",
    "eio.packet",
    "sio.packet",
    "sio.packet",
    "ws.close",
    "tcp.close",
];

#[test]
fn python_websocket_two_clients_broadcast_to_both() {
    if !crate::util::have(&[crate::util::Need::Python]) {
        return;
    }
    let server = Server::start(&[]);
    py_client(&server.url, "two-clients", "websocket");
    let trace = server.stop();
    assert!(trace.unexpected_errors().is_empty(), "{:?}", trace.errors());
    let broadcasts = trace.stage("sio.broadcast");
    let to_both: Vec<_> = broadcasts
        .iter()
        .filter(|b| b["fields"]["broadcast"] == true)
        .collect();
    assert_eq!(to_both.len(), 2, "A bids, then B bids");
    for b in &to_both {
        assert_eq!(b["fields"]["event"], "replaced values");
        assert_eq!(b["fields"]["count"], 2, "sender included: {b}");
    }
    let dispatch = trace.stage("sio.dispatch");
    assert_eq!(dispatch.len(), 2);
    assert_eq!(dispatch[0]["fields"]["event"], "replace old value");
    // Every connection lived the whole websocket story, in order.
    for conn in trace.conns_sending("replace old value") {
        assert_in_order(&trace.conn_stages(conn), WS_CONN);
    }
    // The broadcast reached both connections as frames decoded from the socket.
    let receivers: std::collections::BTreeSet<u64> = trace
        .stage("sio.packet")
        .iter()
        .filter(|e| e["dir"] == "s2c" && e["fields"]["event"] == "replaced values")
        .filter_map(|e| e["conn"].as_u64())
        .collect();
    assert_eq!(receivers.len(), 2);
    let hs = &trace.stage("ws.handshake")[0];
    assert_eq!(hs["fields"]["accept_ok"], true);
    assert!(
        hs["links"].as_array().is_some_and(|l| !l.is_empty()),
        "links attached"
    );
}

#[test]
fn python_polling_then_upgrade() {
    if !crate::util::have(&[crate::util::Need::Python]) {
        return;
    }
    let server = Server::start(&[]);
    py_client(&server.url, "bid", "polling,websocket");
    let trace = server.stop();
    assert!(trace.unexpected_errors().is_empty(), "{:?}", trace.errors());
    let upgrades = trace.stage("eio.upgrade");
    assert_eq!(upgrades.len(), 1);
    let polling: Vec<_> = trace
        .stage("eio.packet")
        .into_iter()
        .filter(|e| e["fields"]["transport"] == "polling")
        .collect();
    assert_eq!(polling[0]["fields"]["type"], "OPEN");
    let sid = polling[0]["fields"]["sid"].as_str().unwrap().to_string();
    let ws_conn = upgrades[0]["conn"].as_u64().unwrap();
    let stages = trace.conn_stages(ws_conn);
    assert_in_order(
        &stages,
        &[
            "http.request",
            "ws.handshake",
            "eio.packet",
            "eio.packet",
            "eio.upgrade",
            "sio.packet",
            "tcp.close",
        ],
    );
    let probe: Vec<_> = trace
        .events
        .iter()
        .filter(|e| e["conn"] == ws_conn && e["stage"] == "eio.packet")
        .take(3)
        .map(|e| {
            format!(
                "{} {}",
                e["fields"]["type"].as_str().unwrap(),
                e["fields"]["data"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(probe, ["PING probe", "PONG probe", "UPGRADE "]);
    assert_eq!(upgrades[0]["fields"]["sid"], sid.as_str());
}

/// The course's app acknowledges its own event when asked, as python-socketio does: the real
/// clients' `call` / callback complete.
#[test]
fn the_seed_event_is_acknowledged_for_both_clients() {
    if !crate::util::have(&[crate::util::Need::Python, crate::util::Need::Node]) {
        return;
    }
    let server = Server::start(&[]);
    py_client(&server.url, "seed-ack", "websocket");
    py_client(&server.url, "seed-ack", "polling");
    node_client(&server.url, "seed-ack", "default");
    let trace = server.stop();
    assert!(trace.unexpected_errors().is_empty(), "{:?}", trace.errors());
    let acks: Vec<_> = trace
        .stage("sio.packet")
        .into_iter()
        .filter(|e| e["dir"] == "s2c" && e["fields"]["type"] == "ACK")
        .collect();
    assert_eq!(acks.len(), 3, "{acks:?}");
    // Without --extras, only the seed's handler exists.
    assert!(trace
        .stage("sio.dispatch")
        .iter()
        .all(|d| d["fields"]["extra"].is_null()));
}

#[test]
fn python_late_joiner_ack_namespace_binary() {
    if !crate::util::have(&[crate::util::Need::Python]) {
        return;
    }
    let server = Server::start(&["--extras"]);
    py_client(&server.url, "late-joiner", "websocket");
    py_client(&server.url, "ack,namespace,binary", "websocket");
    let trace = server.stop();
    assert!(trace.unexpected_errors().is_empty(), "{:?}", trace.errors());
    // Late joiner: an emit to that one client.
    assert!(trace
        .stage("sio.broadcast")
        .iter()
        .any(|b| b["fields"]["broadcast"] == false && b["fields"]["count"] == 1));
    let sio = trace.stage("sio.packet");
    let has = |ty: &str, dir: &str| {
        sio.iter()
            .any(|e| e["fields"]["type"] == ty && e["dir"] == dir)
    };
    assert!(has("ACK", "s2c"), "ack answered");
    assert!(
        has("BINARY_EVENT", "c2s") && has("BINARY_EVENT", "s2c"),
        "binary both ways"
    );
    assert!(sio
        .iter()
        .any(|e| e["fields"]["nsp"] == "/admin" && e["fields"]["type"] == "CONNECT"));
    let bin = sio
        .iter()
        .find(|e| e["fields"]["type"] == "BINARY_EVENT" && e["dir"] == "c2s")
        .unwrap();
    assert_eq!(bin["fields"]["attachments"], 1);
    assert!(
        bin["fields"]["data"][1]["_binary"].as_u64().is_some(),
        "attachment filled in: {bin}"
    );
}

#[test]
fn python_abrupt_and_bad_namespace() {
    if !crate::util::have(&[crate::util::Need::Python]) {
        return;
    }
    let server = Server::start(&[]);
    py_client(&server.url, "abrupt", "websocket");
    py_client(&server.url, "bad-namespace", "websocket");
    let trace = server.stop();
    let closes = trace.stage("tcp.close");
    assert!(
        closes
            .iter()
            .any(|c| c["fields"]["how"].as_str().unwrap_or("").contains("client")),
        "an abrupt close is seen as the client's: {closes:?}"
    );
    assert!(trace
        .stage("sio.packet")
        .iter()
        .any(|e| e["fields"]["type"] == "CONNECT_ERROR" && e["fields"]["nsp"] == "/nope"));
}

#[test]
fn node_default_transports() {
    if !crate::util::have(&[crate::util::Need::Node]) {
        return;
    }
    let server = Server::start(&["--extras"]);
    node_client(&server.url, "two-clients", "default");
    node_client(&server.url, "ack,namespace,binary", "default");
    let trace = server.stop();
    assert!(trace.unexpected_errors().is_empty(), "{:?}", trace.errors());
    // socket.io-client starts with polling and upgrades.
    assert!(trace.stage("eio.upgrade").len() >= 3);
    assert!(trace
        .stage("http.request")
        .iter()
        .any(|e| e["fields"]["method"] == "POST"));
    assert!(trace
        .stage("sio.broadcast")
        .iter()
        .any(|b| b["fields"]["broadcast"] == true && b["fields"]["count"] == 2));
    // Its permessage-deflate offer is accepted, as Flask-SocketIO (wsproto) accepts it, and
    // the trace shows the compressed frames and their inflated messages.
    assert!(trace
        .stage("ws.handshake")
        .iter()
        .all(|h| h["fields"]["extension_note"] == "permessage-deflate accepted"));
    let compressed: Vec<_> = trace
        .stage("ws.message")
        .into_iter()
        .filter(|m| m["fields"]["compressed"] == true)
        .collect();
    // socket.io-client's `ws` compresses only messages of 1024 bytes or more; the server
    // compresses every one.
    assert!(
        compressed.iter().filter(|m| m["dir"] == "s2c").count() > 10,
        "{} compressed messages",
        compressed.len()
    );
    assert!(trace
        .stage("ws.frame")
        .iter()
        .any(|f| f["fields"]["rsv1"] == true));
}

#[test]
fn ping_timeout_closes_a_silent_client() {
    use std::io::{Read, Write};
    let server = Server::start(&["--ping-interval", "200", "--ping-timeout", "200"]);
    // A raw polling client: handshake, then never answers the PING.
    let get = |target: &str| {
        let mut s = std::net::TcpStream::connect(&server.addr).unwrap();
        write!(s, "GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut reply = Vec::new();
        s.read_to_end(&mut reply).unwrap();
        String::from_utf8_lossy(&reply).to_string()
    };
    let sid = crate::raw::sid_in(&get("/socket.io/?EIO=4&transport=polling"));
    std::thread::sleep(std::time::Duration::from_millis(700));
    // python-engineio: a session it closed is "disconnected" until it is reaped, then unknown.
    let reply = get(&format!("/socket.io/?EIO=4&transport=polling&sid={sid}"));
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(
        reply.contains("Invalid session") || reply.contains("Session is disconnected"),
        "{reply}"
    );
    let trace = server.stop();
    assert!(
        trace
            .errors()
            .iter()
            .any(|e| e.contains("no PONG within pingTimeout")),
        "{:?}",
        trace.errors()
    );
}

/// Teaching mode: the stepped connection waits for Enter at each stage while another client
/// goes about its business; `c` lets it run freely.
#[test]
fn step_mode_pauses_one_connection_only() {
    if !crate::util::have(&[crate::util::Need::Python]) {
        return;
    }
    use std::io::Write;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let mut server = Server::start_with_stdin(&["--step"]);
    let mut a = Command::new(crate::util::repo().join("tests/.venv/bin/python"))
        .arg(crate::util::repo().join("tests/clients/py_client.py"))
        .args([
            server.url.as_str(),
            "--scenario",
            "bid",
            "--transports",
            "websocket",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    py_client(&server.url, "bid", "websocket");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the other client was slowed down"
    );
    assert!(
        a.try_wait().unwrap().is_none(),
        "the stepped client should still be paused"
    );
    let stdin = server.stdin.as_mut().unwrap();
    for _ in 0..3 {
        writeln!(stdin).unwrap();
    }
    writeln!(stdin, "c").unwrap();
    stdin.flush().unwrap();
    let status = a.wait().unwrap();
    assert!(
        status.success(),
        "the stepped client finished once released"
    );
    let trace = server.stop();
    // The stepped connection lived its whole story, once released.
    assert_in_order(
        &trace.conn_stages(1),
        &[
            "http.request",
            "ws.handshake",
            "eio.packet",
            "sio.packet",
            "tcp.close",
        ],
    );
    assert!(!trace.stage("sio.dispatch").is_empty());
}

/// Teaching mode from the page: the page with the key printed at start steps the paused
/// connection (`/trace/step`); a page without it, or with a guess, gets 403 and can only watch.
#[test]
fn the_instructors_page_steps_and_a_students_page_cannot() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let server = Server::start_with_stdin(&["--step", "--step-key", "instructor-key"]);
    let run = crate::oracle::Run::new(&server.addr);
    for target in [
        "/trace/step?do=next",
        "/trace/step?key=guess&do=next",
        "/trace/step?key=instructor-ke&do=free",
    ] {
        let r = run.request("POST", target, &[], b"");
        assert!(r.status.contains("403"), "{target}: {}", r.status);
        assert!(r.text().contains("instructor"), "{}", r.text());
    }
    let mut a = Command::new(crate::util::repo().join("tests/.venv/bin/python"))
        .arg(crate::util::repo().join("tests/clients/py_client.py"))
        .args([
            server.url.as_str(),
            "--scenario",
            "bid",
            "--transports",
            "websocket",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let paused = |run: &crate::oracle::Run| {
        run.request("GET", "/trace/step?key=instructor-key", &[], b"")
            .text()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let first = loop {
        let p = paused(&run);
        if p.contains("== paused") {
            break p;
        }
        assert!(Instant::now() < deadline, "nothing paused: {p:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    // The student's page cannot move it on.
    let r = run.request("POST", "/trace/step?do=free", &[], b"");
    assert!(r.status.contains("403"));
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        a.try_wait().unwrap().is_none(),
        "the client went on without the instructor"
    );
    // The instructor's can: one stage, then the next pause is another stage.
    let r = run.request("POST", "/trace/step?key=instructor-key&do=next", &[], b"");
    assert!(r.status.contains("200"), "{}", r.status);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let p = paused(&run);
        if p.contains("== paused") && p != first {
            break;
        }
        assert!(Instant::now() < deadline, "no next pause: {p:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = run.request("POST", "/trace/step?key=instructor-key&do=free", &[], b"");
    assert!(r.status.contains("200"), "{}", r.status);
    assert!(
        a.wait().unwrap().success(),
        "the client finished once released"
    );
    let r = run.request("POST", "/trace/step?key=instructor-key&do=jump", &[], b"");
    assert!(r.status.contains("400"), "{}", r.status);
    drop(server);
}
