//! A classroom that tries to break the server: slow heads and bodies, floods of connections and
//! of abandoned sessions, thousands of namespaces and acks, huge declared lengths. Each test
//! shows the server stays up, answers the offender as the protocol says, keeps its memory
//! bounded, and keeps serving a well-behaved client.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use tokio_tungstenite::tungstenite::Message;

use crate::raw::{eio_client, expect, read_all};
use crate::util::Server;

fn still_serves(addr: &str) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(
        out.starts_with("HTTP/1.1 200") && out.contains("\"sid\""),
        "{out}"
    );
}

#[test]
fn slowloris_heads_and_bodies_time_out() {
    let server = Server::start(&["--request-timeout", "500"]);
    let a = server.addr.clone();
    // A head that trickles in, a byte at a time, never finishing.
    let mut head = TcpStream::connect(&a).unwrap();
    let started = Instant::now();
    let trickle = std::thread::spawn(move || {
        for b in b"GET /auctions HTTP/1.1\r\nX-Slow: "
            .iter()
            .cycle()
            .take(40)
        {
            if head.write_all(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        read_all(&mut head)
    });
    // A body that never arrives.
    let mut body = TcpStream::connect(&a).unwrap();
    body.write_all(
        b"POST /socket.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\nContent-Length: 100\r\n\r\n40",
    )
    .unwrap();
    still_serves(&a);
    assert!(read_all(&mut body).starts_with("HTTP/1.1 408"));
    let reply = trickle.join().unwrap();
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the trickle was cut at the deadline"
    );
    still_serves(&a);
}

#[test]
fn a_flood_of_connections_gets_503_beyond_the_limit() {
    let server = Server::start(&["--max-connections", "5"]);
    let a = server.addr.clone();
    let held: Vec<TcpStream> = (0..5).map(|_| TcpStream::connect(&a).unwrap()).collect();
    server.wait_for("the five connections accepted", |t| {
        t.stage("tcp.accept").len() >= 5
    });
    let mut extra = TcpStream::connect(&a).unwrap();
    let reply = read_all(&mut extra);
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    drop(held);
    server.wait_for("the five connections closed", |t| {
        t.stage("tcp.close").len() >= 5
    });
    still_serves(&a);
    let trace = server.stop();
    assert!(trace
        .errors()
        .iter()
        .any(|e| e.contains("connection limit")));
}

#[test]
fn thousands_of_abandoned_sessions_expire() {
    let server = Server::start(&[
        "--ping-interval",
        "200",
        "--ping-timeout",
        "200",
        "--stage",
        "error",
    ]);
    let a = server.addr.clone();
    let before = server.rss_kib();
    let mut sids = Vec::new();
    for _ in 0..3000 {
        let text = crate::raw::http_get(&a, "/socket.io/?EIO=4&transport=polling");
        sids.push(crate::raw::sid_in(&text));
    }
    let opened = server.rss_kib();
    // Nobody answers the PINGs: a heartbeat period later every session is closed, and after
    // pingTimeout more (python-engineio's reaper) forgotten.
    std::thread::sleep(Duration::from_millis(1500));
    for sid in [&sids[0], &sids[1500], &sids[2999]] {
        let text = crate::raw::http_get(
            &a,
            &format!("/socket.io/?EIO=4&transport=polling&sid={sid}"),
        );
        assert!(
            text.starts_with("HTTP/1.1 400") && text.contains("Invalid session"),
            "{text}"
        );
    }
    still_serves(&a);
    let after = server.rss_kib();
    assert!(
        opened < before + 64 * 1024,
        "3000 sessions took {} KiB",
        opened - before
    );
    assert!(
        after <= opened + 8 * 1024,
        "memory kept growing: {before} -> {opened} -> {after} KiB"
    );
    let trace = server.stop();
    let timeouts = trace
        .errors()
        .iter()
        .filter(|e| e.contains("no PONG"))
        .count();
    assert_eq!(timeouts, 3000);
}

#[test]
fn thousands_of_namespaces_and_acks() {
    let server = Server::start(&["--stage", "error", "--extras"]);
    let a = server.addr.clone();
    // A client that reads its answers gets every one of them.
    let mut ws = eio_client(&a);
    for batch in 0..30 {
        for i in 0..100 {
            ws.send(Message::text(format!("40/ns{batch}-{i},")))
                .unwrap();
        }
        expect(&mut ws, "44/ns", 100);
    }
    ws.send(Message::text("40/admin,")).unwrap();
    for batch in 0..10 {
        for i in 0..500 {
            let id = batch * 500 + i;
            ws.send(Message::text(format!(r#"42/admin,{id}["ping-me",{id}]"#)))
                .unwrap();
        }
        expect(&mut ws, "43/admin,", 500);
    }
    // One that floods without reading fills its queue and is dropped; nobody else notices.
    let mut flood = eio_client(&a);
    for i in 0..5000 {
        if flood.send(Message::text(format!("40/x{i},"))).is_err() {
            break;
        }
    }
    still_serves(&a);
    assert!(server.rss_kib() < 64 * 1024, "{} KiB", server.rss_kib());
    let errors = server.stop().errors();
    assert!(
        errors.iter().all(|e| e.contains("is not reading")),
        "{errors:?}"
    );
}

#[test]
fn huge_declared_lengths_are_refused_at_once() {
    let server = Server::start(&[]);
    let a = server.addr.clone();
    let mut s = TcpStream::connect(&a).unwrap();
    s.write_all(b"POST /socket.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n").unwrap();
    // Answered without reading the body (python-engineio: the sid is checked first).
    let answer = read_all(&mut s);
    assert!(
        answer.starts_with("HTTP/1.1 400") && answer.contains("Invalid session x"),
        "{answer}"
    );
    let mut s = TcpStream::connect(&a).unwrap();
    s.write_all(b"POST /auctions HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n")
        .unwrap();
    assert!(read_all(&mut s).starts_with("HTTP/1.1 413"));
    // A WebSocket frame announcing 2^62 bytes: the session ends before a byte of it is read,
    // and the WebSocket closes normally (python-engineio's "packet is too large").
    let mut ws = eio_client(&a);
    let mut frame = vec![0x82, 0xFF];
    frame.extend_from_slice(&(1u64 << 62).to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    ws.get_mut().write_all(&frame).unwrap();
    let code = loop {
        match ws.read() {
            Ok(Message::Close(Some(f))) => break Some(u16::from(f.code)),
            Ok(_) => continue,
            Err(_) => break None,
        }
    };
    assert_eq!(code, Some(1000));
    still_serves(&a);
}

#[test]
fn a_client_flooding_events_is_slowed_to_the_pace_of_the_room() {
    // Queues of 16 packets: a client that fell 16 broadcasts behind a flooder would be dropped.
    let server = Server::start(&["--max-queue", "16", "--stage", "error"]);
    let a = server.addr.clone();
    // Few enough that what the server writes to a reader fits its socket buffers (about 60 KB)
    // even if the reader's thread does not run for a while on a busy machine: it is then
    // still keeping up, as far as the server can tell.
    let bids = 1000;
    // Three clients that read everything, each on its own thread.
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let mut ws = crate::raw::sio_client(&a);
            std::thread::spawn(move || expect(&mut ws, "42[\"replaced values\"", bids))
        })
        .collect();
    // A script bidding flat out, not waiting for anything, then reading its own copies.
    let mut flooder = crate::raw::sio_client(&a);
    for i in 0..bids {
        let bid = format!(r#"42["replace old value",{{"item":"lot","bid":{i}}}]"#);
        flooder.send(Message::text(bid)).unwrap();
    }
    expect(&mut flooder, "42[\"replaced values\"", bids);
    for r in readers {
        r.join().expect("every reader got every broadcast");
    }
    still_serves(&a);
    // Nobody was dropped: the server read the flooder no faster than the room took its bids.
    let errors = server.stop().errors();
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn several_bidders_at_once_never_wait_on_each_other() {
    // Each bid's ack waits for its broadcast to reach the room, and each bidder is in the
    // others' rooms: the waits must not close a circle (it would show as acks at the server's
    // one-second cap).
    let server = Server::start(&["--stage", "error"]);
    let a = server.addr.clone();
    let (bidders, bids) = (4, 150);
    let mut clients: Vec<_> = (0..bidders).map(|_| crate::raw::sio_client(&a)).collect();
    let threads: Vec<_> = clients
        .drain(..)
        .enumerate()
        .map(|(who, mut ws)| {
            std::thread::spawn(move || {
                let (mut slowest, mut broadcasts) = (Duration::ZERO, 0);
                for i in 0..bids {
                    let bid = format!(r#"{{"item":"lot{who}","bid":{i},"bidder":"b{who}"}}"#);
                    let (took, seen) = crate::raw::bid_with_ack(&mut ws, i, &bid);
                    slowest = slowest.max(took);
                    broadcasts += seen;
                }
                // The others' last broadcasts may still be on their way.
                let _ = ws
                    .get_ref()
                    .set_read_timeout(Some(Duration::from_millis(500)));
                while broadcasts < bidders * bids {
                    match ws.read() {
                        Ok(m)
                            if m.to_text()
                                .unwrap_or("")
                                .starts_with("42[\"replaced values\"") =>
                        {
                            broadcasts += 1
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
                (slowest, broadcasts)
            })
        })
        .collect();
    for t in threads {
        let (slowest, broadcasts) = t.join().unwrap();
        assert!(
            slowest < Duration::from_millis(500),
            "an ack took {slowest:?}"
        );
        assert_eq!(broadcasts, bidders * bids, "every bidder sees every bid");
    }
    let errors = server.stop().errors();
    assert!(errors.is_empty(), "{errors:?}");
}

/// The Socket.IO sid is public (every `40{"sid":...}`, and rooms show it to others); the
/// Engine.IO sid is the session's secret. Knowing a victim's Socket.IO sid, or anything derived
/// from it, must not let anyone POST into the victim's session.
#[test]
fn a_socketio_sid_does_not_open_the_engineio_session() {
    let server = Server::start(&[]);
    let mut victim = eio_client(&server.addr);
    victim.send(Message::text("40")).unwrap();
    let answer = victim.read().unwrap();
    let text = answer.to_text().unwrap().to_string();
    let sio_sid = crate::raw::sid_in(&text);
    assert!(!sio_sid.is_empty(), "{text}");
    let forged = r#"42["replace old value",{"item":"lamp","bid":1,"bidder":"forged"}]"#;
    // The sid itself, and the part before a '-' (what an Engine.IO sid with a suffix would be).
    let mut guesses = vec![sio_sid.clone()];
    if let Some((head, _)) = sio_sid.rsplit_once('-') {
        guesses.push(head.to_string());
    }
    for guess in guesses {
        let post = format!(
            "POST /socket.io/?EIO=4&transport=polling&sid={guess} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{forged}",
            server.addr,
            forged.len()
        );
        let answer = crate::raw::raw_http(&server.addr, post.as_bytes());
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "a POST with sid {guess:?} (from the Socket.IO sid {sio_sid:?}) was accepted:\n{answer}"
        );
        assert!(answer.contains("Invalid session"), "{answer}");
    }
    // Nothing forged reached the victim.
    victim
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    while let Ok(m) = victim.read() {
        assert!(!m.to_text().unwrap_or("").contains("forged"), "{m:?}");
    }
}
