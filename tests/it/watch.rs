//! `dispel watch` running the real Flask-SocketIO app: the real clients through it, the trace
//! it writes, what it does when the app misbehaves. (That it changes nothing on the wire is
//! `differential::dispel_watch_changes_nothing_on_the_wire`.)

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::{assert_in_order, dispel, node_client, py_client, repo, Watched};

#[test]
fn the_real_app_narrated_for_real_clients() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("watched.pcap");
    let report = dir.path().join("report.md");
    let Some(w) = Watched::start(
        &[
            "--record",
            pcap.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
        &[],
    ) else {
        return;
    };
    py_client(&w.url, "bid,seed-ack", "websocket");
    py_client(&w.url, "two-clients", "polling,websocket");
    node_client(&w.url, "bid,seed-ack", "default");
    let stderr = w.stderr.clone();
    let (status, trace) = w.stop();
    // SIGTERM reached the app, which stopped; dispel exits with the app's status.
    assert!(
        status.code().is_some(),
        "{status:?}\n{}",
        stderr.lock().unwrap()
    );
    // Every stage of the real app's traffic, decoded from the bytes that passed.
    for stage in [
        "tcp.accept",
        "http.request",
        "http.response",
        "ws.handshake",
        "ws.frame",
        "ws.message",
        "eio.packet",
        "eio.upgrade",
        "sio.packet",
        "ws.close",
        "tcp.close",
    ] {
        assert!(!trace.stage(stage).is_empty(), "no {stage} in the trace");
    }
    // socket.io-client's deflate offer, accepted by the real app (wsproto), shows compressed.
    assert!(trace
        .stage("ws.handshake")
        .iter()
        .any(|h| h["fields"]["extension_note"] == "permessage-deflate accepted"));
    assert!(trace
        .stage("ws.message")
        .iter()
        .any(|m| m["fields"]["compressed"] == true));
    // The real app's acknowledgements and broadcasts, as the clients saw them.
    let sio = trace.stage("sio.packet");
    assert!(sio
        .iter()
        .any(|e| e["dir"] == "s2c" && e["fields"]["type"] == "ACK"));
    assert!(sio
        .iter()
        .any(|e| e["dir"] == "s2c" && e["fields"]["event"] == "replaced values"));
    for conn in trace.conns_sending("replace old value") {
        let stages = trace.conn_stages(conn);
        if stages.iter().any(|s| s == "ws.handshake") {
            assert_in_order(&stages, &["http.request", "ws.handshake", "sio.packet"]);
        }
    }
    // The recording replays to the same wire-level events, connection by connection (how
    // the events of connections open at the same time interleave is a matter of timing).
    let replayed = crate::replay::replay_jsonl(&pcap, &[]);
    let wire = |t: &crate::util::Trace| -> std::collections::BTreeMap<u64, Vec<String>> {
        let mut by_conn: std::collections::BTreeMap<u64, Vec<String>> = Default::default();
        for e in t.events.iter().filter(|e| {
            let s = e["stage"].as_str().unwrap_or("");
            s.starts_with("ws.") || s.starts_with("eio.") || s == "sio.packet"
        }) {
            let mut f = e["fields"].clone();
            if let Some(o) = f.as_object_mut() {
                o.remove("session_conn");
                o.remove("inferred");
            }
            by_conn
                .entry(e["conn"].as_u64().unwrap_or(0))
                .or_default()
                .push(format!("{} {} {}", e["dir"], e["stage"], f));
        }
        by_conn
    };
    let (live, again) = (wire(&trace), wire(&replayed));
    assert_eq!(
        live.keys().collect::<Vec<_>>(),
        again.keys().collect::<Vec<_>>(),
        "the same connections live and replayed"
    );
    for (conn, events) in &live {
        assert!(
            events == &again[conn],
            "connection #{conn}: the recording replays to other events\nlive: {events:#?}\nreplayed: {:#?}",
            again[conn]
        );
    }
    let text = std::fs::read_to_string(&report).expect("report written when the app exits");
    assert!(text.contains("ws.handshake"), "{text}");
}

/// The app's own output passes through; a command that is not there, or an app that dies
/// before listening, gets a clear message and dispel's exit status says how it went.
#[test]
fn bad_commands_and_apps_are_clear_and_do_not_hang() {
    let python = repo().join("tests/.venv/bin/python");
    let run = |args: &[&str]| {
        let start = Instant::now();
        let out = dispel()
            .arg("watch")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run dispel watch");
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{args:?} took too long"
        );
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (status, _, err) = run(&["--", "no-such-program-dispel"]);
    assert_eq!(status.code(), Some(2));
    assert!(
        err.contains("no-such-program-dispel: command not found"),
        "{err}"
    );

    let (status, _, err) = run(&[]);
    assert_eq!(status.code(), Some(2), "no command: {err}");

    if !python.exists() {
        return;
    }
    let py = python.to_str().unwrap();
    // Crashes at start: its traceback passes through, its status is dispel's.
    let (status, _, err) = run(&[
        "--",
        py,
        "-c",
        "import sys; print('boom', file=sys.stderr); sys.exit(3)",
    ]);
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(err.contains("boom"), "{err}");
    assert!(
        err.contains("exited (status 3) before it listened"),
        "{err}"
    );

    // The app's port is taken by someone else: said, and the app is stopped.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let app = format!(
        "import socket, time\ns = socket.socket()\ns.bind(('127.0.0.1', {port}))\ns.listen()\ntime.sleep(30)"
    );
    let (status, _, err) = run(&["--", py, "-c", &app]);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("cannot listen on 127.0.0.1:"), "{err}");
    drop(taken);
}

/// With --port and --app-port the app is started on its own port; a client that connects
/// before the app listens is held until it does, not refused.
#[test]
fn explicit_ports_and_a_client_before_the_app_is_ready() {
    let python = repo().join("tests/.venv/bin/python");
    if !python.exists() {
        return;
    }
    let (public, app) = (crate::oracle::free_port(), crate::oracle::free_port());
    // The app waits two seconds before it listens.
    let script = format!(
        "import socket, time\ntime.sleep(2)\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('127.0.0.1', {app}))\ns.listen()\nc, _ = s.accept()\nc.recv(100)\nc.sendall(b'HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\nhi')\nc.close()\n"
    );
    let mut child = dispel()
        .args([
            "watch",
            "--port",
            &public.to_string(),
            "--app-port",
            &app.to_string(),
        ])
        .args(["--", python.to_str().unwrap(), "-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", public)) {
            use std::io::{Read, Write};
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            break out;
        }
        assert!(
            Instant::now() < deadline,
            "dispel never listened on {public}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.ends_with("hi"), "{answer}");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}
