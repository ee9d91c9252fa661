//! Diagnoses of the failures students meet, from a real Flask-SocketIO app misused or
//! misconfigured that way: watched live, and its recording replayed, the same diagnoses both
//! ways, each with its evidence, fix and deciding line. The committed healthy traces stay quiet.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::oracle::Run;
use crate::util::{repo, Trace, Watched};

fn causes(trace: &Trace) -> BTreeSet<String> {
    trace
        .stage("diagnosis")
        .iter()
        .filter(|d| !harmless(d))
        .filter_map(|d| d["fields"]["cause"].as_str())
        .filter(|c| *c != "summary")
        .map(str::to_string)
        .collect()
}

/// The trace's diagnosis of `cause`; the test fails without one.
fn diagnosis<'a>(trace: &'a Trace, cause: &str) -> &'a serde_json::Value {
    trace
        .stage("diagnosis")
        .into_iter()
        .find(|d| d["fields"]["cause"] == cause)
        .unwrap_or_else(|| panic!("no {cause} diagnosis"))
}

/// The error page Werkzeug writes after a WebSocket ended, answering the bytes python-socketio's
/// client sends after its Close frame: named (it explains the stray bytes) but no failure.
fn harmless(d: &serde_json::Value) -> bool {
    d["fields"]["cause"] == "http-page-on-websocket"
        && d["summary"]
            .as_str()
            .is_some_and(|s| s.contains("Harmless: the session was over"))
}

/// Every diagnosis carries its evidence and fix, and the deciding line is a permalink.
fn well_formed(trace: &Trace) {
    for d in trace.stage("diagnosis") {
        if d["fields"]["cause"] == "summary" {
            continue;
        }
        assert!(
            !d["fields"]["evidence"].as_array().unwrap().is_empty(),
            "{d}"
        );
        assert!(
            d["fields"]["fix"].as_str().is_some_and(|f| f.len() > 20),
            "{d}"
        );
        if let Some(url) = d["fields"]["source"]["url"].as_str() {
            // A permalink at a tag: GitHub's, or the host the installed package names.
            assert!(
                (url.contains("/blob/v") || url.contains("/src/tag/v")) && url.contains("#L"),
                "{d}"
            );
        }
    }
}

#[test]
fn a_real_apps_failures_are_diagnosed_live_and_in_its_capture() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("failures.pcap");
    let Some(w) = Watched::start(
        &["--record", pcap.to_str().unwrap()],
        &["--ping-interval", "1", "--ping-timeout", "1"],
    ) else {
        return;
    };
    let run = Run::new(&w.addr);
    // A page of another origin.
    run.request(
        "GET",
        "/socket.io/?EIO=4&transport=polling",
        &["Origin: http://evil.example"],
        b"",
    );
    // A socket.io-client 2.x (Engine.IO v3).
    run.get("/socket.io/?EIO=3&transport=polling");
    // A session another worker opened: a second real Flask-SocketIO process, no message queue,
    // no sticky sessions; its sid's next poll lands on this one.
    let other = crate::oracle::Flask::start(&[]).expect("a second worker");
    let foreign = Run::new(&other.addr).open_polling();
    run.get(&format!(
        "/socket.io/?EIO=4&transport=polling&sid={foreign}"
    ));
    // A proxy that dropped the Upgrade and Connection headers.
    run.get("/socket.io/?EIO=4&transport=websocket");
    // A namespace with no handlers.
    let sid = run.open_polling();
    run.post(
        &format!("/socket.io/?EIO=4&transport=polling&sid={sid}"),
        "40/nope,",
    );
    run.poll(&sid, 1);
    // A client that never answers the server's PING: the server closes it after pingTimeout
    // and tells its next request the session is unknown.
    let silent = run.open_polling();
    run.poll(&silent, 1);
    std::thread::sleep(Duration::from_secs(4));
    run.get(&format!("/socket.io/?EIO=4&transport=polling&sid={silent}"));
    let (_, trace) = w.stop();
    let expected: BTreeSet<String> = [
        "origin-refused",
        "unsupported-version",
        "invalid-session",
        "upgrade-headers-missing",
        "unknown-namespace",
        "ping-timeout",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let live = causes(&trace);
    assert_eq!(live, expected, "{:#?}", trace.stage("diagnosis"));
    well_formed(&trace);
    // The guess is marked: an unknown session may be another worker's or a restart's.
    let unknown = diagnosis(&trace, "invalid-session");
    assert_eq!(unknown["fields"]["guess"], true);
    assert!(unknown["summary"].as_str().unwrap().contains(&foreign));
    let origin = diagnosis(&trace, "origin-refused");
    assert!(origin["summary"]
        .as_str()
        .unwrap()
        .contains("http://evil.example"));
    assert!(origin["fields"]["fix"]
        .as_str()
        .unwrap()
        .contains("cors_allowed_origins"));
    // Watched, the deciding line is in the version the app runs (python-engineio 4.15.1 in
    // tests/.venv); a capture alone cannot say, so replay uses dispel's built-in set.
    assert_eq!(origin["fields"]["source"]["version"], "4.15.1", "{origin}");
    // The capture of the same session, replayed: the same diagnoses.
    let replayed = crate::replay::replay_jsonl(&pcap, &[]);
    assert_eq!(causes(&replayed), expected);
    well_formed(&replayed);
    let replayed_origin = diagnosis(&replayed, "origin-refused");
    assert_eq!(replayed_origin["fields"]["source"]["version"], "4.13.3");
    // And the report of the capture opens with them.
    let report = crate::util::dispel()
        .arg("report")
        .arg(&pcap)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(text.contains("## What went wrong"), "{text}");
    assert!(text.contains("### origin-refused"));
    assert!(text.contains("The line that decides it: **python-engineio"));
}

/// A server that offers no upgrade (allow_upgrades=False, or no WebSocket server installed):
/// the client stays on long-polling, which the OPEN packet already says.
#[test]
fn a_server_without_websocket_is_diagnosed_from_its_open_packet() {
    if !crate::util::have(&[crate::util::Need::Python]) {
        return;
    }
    // A short heartbeat: the client's disconnect waits for its held long-poll, which the
    // server may otherwise keep for the whole default pingInterval (25 s) on a busy machine.
    let Some(w) = Watched::start(&[], &["--no-upgrades", "--ping-interval", "2"]) else {
        return;
    };
    crate::util::py_client(&w.url, "bid", "polling");
    let (_, trace) = w.stop();
    assert_eq!(
        causes(&trace),
        BTreeSet::from(["no-websocket".to_string()]),
        "{:#?}",
        trace.stage("diagnosis")
    );
    well_formed(&trace);
}

/// No false alarms: the committed captures of healthy sessions give no diagnosis; those that
/// hold real failures give exactly those.
#[test]
fn healthy_captures_stay_quiet() {
    for path in crate::util::committed(&[".pcap", ".pcapng"]) {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let trace = crate::replay::replay_jsonl(&path, &[]);
        let expected: &[&str] = match name.as_str() {
            // The client asks for /nope on purpose.
            "node_namespaces.pcap" => &["unknown-namespace"],
            // The client is killed mid-session; the server times it out.
            "node_client_polling_upgrade.pcap" => &["ping-timeout"],
            // The client drops its WebSocket without a Close (its scenario's point).
            "py_ping_abrupt.pcap" => &["transport-closed"],
            // Made to show them (traces/diagnoses/README.md).
            "failures.pcap" => &[
                "origin-refused",
                "unsupported-version",
                "invalid-session",
                "upgrade-headers-missing",
                "unknown-namespace",
                "ping-timeout",
            ],
            "oversized.pcap" => &["payload-too-large", "http-page-on-websocket"],
            "proxy_no_upgrade.pcap" => &["proxy-dropped-upgrade", "proxy-changed-host"],
            "two_workers.pcap" => &["no-message-queue"],
            "blocked.pcap" => &["server-stopped-pinging"],
            _ => &[],
        };
        let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
        assert_eq!(causes(&trace), expected, "{name}");
        // python-socketio's client writes after its Close frame; Werkzeug answers with a page
        // (with a status line, or the bare HTML of an "HTTP/0.9" request): named every time.
        if name == "py_websocket_bid.pcap" {
            assert!(
                trace.stage("diagnosis").iter().any(|d| harmless(d)),
                "{name}: the page after the Close"
            );
        }
    }
}

/// Messages over the server's maxPayload, on long-polling (a POST answered 400) and on a
/// WebSocket (the server stops reading and the connection ends); and a WebSocket message that
/// is not an Engine.IO packet, which makes Werkzeug write its 500 page onto the socket.
#[test]
fn oversized_and_undecodable_messages_are_diagnosed() {
    let Some(w) = Watched::start(&[], &["--max-payload", "200"]) else {
        return;
    };
    let run = Run::new(&w.addr);
    let big = format!("42[\"chat\",\"{}\"]", "x".repeat(400));
    // Long-polling: one POST over maxPayload.
    let sid = run.open_polling();
    run.post(
        &format!("/socket.io/?EIO=4&transport=polling&sid={sid}"),
        "40",
    );
    run.poll(&sid, 1);
    // As a real client does, with a GET waiting: it gets the session's CLOSE; python-engineio
    // never answers the POST itself (docs/fidelity.md).
    let waiting = run.spawn_get(&format!("/socket.io/?EIO=4&transport=polling&sid={sid}"));
    run.post(
        &format!("/socket.io/?EIO=4&transport=polling&sid={sid}"),
        &big,
    );
    run.join(waiting);
    // WebSocket: one message over maxPayload.
    let mut ws = run.ws("big", "/socket.io/?EIO=4&transport=websocket", None, None);
    ws.recv(1);
    ws.text("40");
    ws.recv(1);
    ws.text(&big);
    ws.until_end(5);
    // WebSocket: an event before the namespace's CONNECT (dropped by python-socketio).
    let mut early = run.ws("early", "/socket.io/?EIO=4&transport=websocket", None, None);
    early.recv(1);
    early.text(r#"42["early",1]"#);
    early.text("40");
    early.recv(1);
    early.close(1000, "");
    // WebSocket: a message that is no Engine.IO packet.
    let mut bad = run.ws("bad", "/socket.io/?EIO=4&transport=websocket", None, None);
    bad.recv(1);
    bad.text("X");
    bad.until_end(5);
    let (_, trace) = w.stop();
    let found = causes(&trace);
    assert!(found.contains("payload-too-large"), "{found:?}");
    assert!(found.contains("http-page-on-websocket"), "{found:?}");
    assert!(found.contains("event-before-connect"), "{found:?}");
    well_formed(&trace);
    let too_large: Vec<&serde_json::Value> = trace
        .stage("diagnosis")
        .into_iter()
        .filter(|d| d["fields"]["cause"] == "payload-too-large")
        .collect();
    // One for the POST (its session), one for the WebSocket (another session).
    assert_eq!(too_large.len(), 2, "{too_large:#?}");
    for d in &too_large {
        let s = d["summary"].as_str().unwrap();
        assert!(s.contains("maxPayload of 200 bytes"), "{s}");
        assert_eq!(d["fields"]["guess"], false);
    }
    let page = diagnosis(&trace, "http-page-on-websocket");
    assert!(page["summary"].as_str().unwrap().contains("500"), "{page}");
}

/// A blocked server: an eventlet handler that computes for seconds without yielding stops the
/// PING task too; the python-socketio client hears nothing for pingInterval + pingTimeout and
/// gives up. The diagnosis is a guess (the bytes show silence, not its cause) and says so.
#[test]
fn a_handler_that_blocks_the_server_is_diagnosed_as_a_guess() {
    let Some(w) = Watched::start_in(".venv-async", "tests/student_app/blocking.py", &[], &[])
    else {
        return;
    };
    let client = format!(
        "import socketio, time\nc = socketio.Client()\nc.connect('{}', transports=['websocket'])\ntime.sleep(1.5)\nc.emit('crunch', 4)\ntime.sleep(6)\nc.disconnect()\n",
        w.url
    );
    let out = std::process::Command::new(repo().join("tests/.venv/bin/python"))
        .args(["-c", &client])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, trace) = w.stop();
    let found: Vec<&serde_json::Value> = trace
        .stage("diagnosis")
        .into_iter()
        .filter(|d| d["fields"]["cause"] == "server-stopped-pinging")
        .collect();
    assert_eq!(found.len(), 1, "{:#?}", trace.stage("diagnosis"));
    assert_eq!(found[0]["fields"]["guess"], true);
    assert!(found[0]["fields"]["fix"]
        .as_str()
        .unwrap()
        .contains("socketio.sleep"));
    well_formed(&trace);
}

/// An event that asked for an ack and never got one, from a capture alone: the chat app's
/// `average` handler raises on an empty list (traces/student/chat.pcap), so python-socketio
/// sends no ACK; the bytes show the silence, not the exception, and the diagnosis says so.
#[test]
fn an_ack_that_never_came_is_diagnosed_from_the_capture() {
    let trace = crate::replay::replay_jsonl(&repo().join("traces/student/chat.pcap"), &[]);
    let found: Vec<&serde_json::Value> = trace
        .stage("diagnosis")
        .into_iter()
        .filter(|d| d["fields"]["cause"] == "no-ack")
        .collect();
    assert_eq!(found.len(), 1, "{:#?}", trace.stage("diagnosis"));
    let d = found[0];
    assert!(
        d["summary"].as_str().unwrap().contains("\"average\""),
        "{d}"
    );
    assert_eq!(d["fields"]["guess"], true);
    well_formed(&trace);
}

/// A real nginx with the common configuration (HTTP/1.0 to the app, Upgrade not passed on)
/// in front of the watched app. socket.io-client sends no Origin, so the app gets as far as
/// the upgrade and refuses it; the client stays on long-polling. The watched side sees only
/// the proxy's requests and names the missing header, at the installed python-engineio.
#[test]
fn a_real_proxy_that_drops_the_upgrade_is_diagnosed_live() {
    if !crate::util::have(&[crate::util::Need::Node]) {
        return;
    }
    if !std::path::Path::new("/usr/sbin/nginx").exists() {
        crate::util::skip("nginx (nginx-light)");
        return;
    }
    let Some(w) = Watched::start(&[], &[]) else {
        return;
    };
    let upstream = w.addr.rsplit_once(':').unwrap().1.to_string();
    let port = crate::oracle::free_port();
    /// Stops nginx however the test ends.
    struct Proxy(std::process::Child);
    impl Drop for Proxy {
        fn drop(&mut self) {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &self.0.id().to_string()])
                .status();
            let _ = self.0.wait();
        }
    }
    let proxy = Proxy(
        std::process::Command::new("bash")
            .arg(repo().join("tests/capture/nginx.sh"))
            .args([port.to_string(), upstream])
            .spawn()
            .expect("start tests/capture/nginx.sh"),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "nginx did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The bid scenario expects the upgrade that socket.io-client tries by default: it
    // connects on long-polling, and fails for want of the upgrade.
    let out = std::process::Command::new("node")
        .arg(repo().join("tests/clients/node_client.mjs"))
        .arg(format!("http://127.0.0.1:{port}"))
        .args(["--scenario", "bid", "--timeout", "10"])
        .output()
        .expect("run node_client.mjs");
    drop(proxy);
    let (_, trace) = w.stop();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(r#""kind":"connected""#), "{stdout}");
    assert!(
        stdout.contains("no upgrade to websocket (transport=polling)"),
        "{stdout}"
    );
    let expected: BTreeSet<String> = ["upgrade-headers-missing".to_string()].into();
    assert_eq!(causes(&trace), expected, "{:#?}", trace.stage("diagnosis"));
    well_formed(&trace);
    let d = &trace.stage("diagnosis")[0];
    let summary = d["summary"].as_str().unwrap();
    assert!(
        summary.contains("HTTP/1.0 with Connection: close"),
        "{summary}"
    );
    assert!(d["fields"]["fix"]
        .as_str()
        .unwrap()
        .contains("proxy_set_header Upgrade"));
    assert_eq!(d["fields"]["source"]["step"], "diagnoses.14", "{d}");
    assert_eq!(d["fields"]["source"]["version"], "4.15.1", "{d}");
    // No WebSocket got through.
    assert!(trace.stage("ws.frame").is_empty());
}

/// The committed capture of both legs (client to nginx, nginx to the app): the dropped
/// upgrade and the changed Host are named on the app's side with the client's request as
/// evidence, the client's side gets no diagnosis of its own, and one client seen on two legs
/// is not a broadcast to two. The healthy configuration's capture stays quiet.
#[test]
fn a_proxys_two_legs_name_the_dropped_upgrade_and_the_changed_host() {
    let trace =
        crate::replay::replay_jsonl(&repo().join("traces/diagnoses/proxy_no_upgrade.pcap"), &[]);
    well_formed(&trace);
    let found = trace.stage("diagnosis");
    for d in found.iter().filter(|d| d["fields"]["cause"] != "summary") {
        let evidence = d["fields"]["evidence"].as_array().unwrap();
        let conns: BTreeSet<u64> = evidence.iter().filter_map(|e| e["conn"].as_u64()).collect();
        assert_eq!(conns.len(), 2, "both legs: {d}");
        assert!(conns.contains(&d["conn"].as_u64().unwrap()), "{d}");
    }
    let host = found
        .iter()
        .find(|d| d["fields"]["cause"] == "proxy-changed-host")
        .unwrap();
    assert!(host["fields"]["fix"]
        .as_str()
        .unwrap()
        .contains("$http_host"));
    assert!(trace.stage("sio.broadcast").is_empty());
    let healthy =
        crate::replay::replay_jsonl(&repo().join("traces/diagnoses/proxy_upgrade.pcap"), &[]);
    assert!(causes(&healthy).is_empty());
    assert!(healthy.stage("sio.broadcast").is_empty());
    assert!(
        !healthy.stage("ws.frame").is_empty(),
        "the healthy proxy upgrades"
    );
}

/// Two real Flask-SocketIO workers without a message queue (tests/capture/two_workers.sh):
/// the room emit and the broadcast a client's events cause on one reach nobody on the other,
/// where another client of the same namespace waits. Named as a guess, with the client's
/// event, the emit and the other client's CONNECT as evidence; a capture whose processes
/// talk through Redis (traces/mq) stays quiet (healthy_captures_stay_quiet).
#[test]
fn two_workers_without_a_queue_are_named_as_a_guess() {
    let trace = crate::replay::replay_jsonl(&repo().join("traces/diagnoses/two_workers.pcap"), &[]);
    well_formed(&trace);
    let d = diagnosis(&trace, "no-message-queue");
    assert_eq!(d["fields"]["guess"], true);
    let conns: BTreeSet<u64> = d["fields"]["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["conn"].as_u64())
        .collect();
    assert_eq!(conns.len(), 2, "a client of each process: {d}");
    assert!(d["fields"]["fix"]
        .as_str()
        .unwrap()
        .contains("message_queue="));
    assert_eq!(d["fields"]["source"]["step"], "diagnoses.15");
    assert!(d["summary"].as_str().unwrap().contains("\"said\""), "{d}");
}

/// The chat app's "bye" handler calls disconnect() (traces/student/chat.pcap): the server's
/// DISCONNECT is named with the event that led to it, and why the client stays away.
#[test]
fn a_server_side_disconnect_is_named_with_the_event_before_it() {
    let trace = crate::replay::replay_jsonl(&repo().join("traces/student/chat.pcap"), &[]);
    well_formed(&trace);
    let d = diagnosis(&trace, "server-disconnected");
    let summary = d["summary"].as_str().unwrap();
    assert!(summary.contains("\"bye\""), "{summary}");
    assert!(summary.contains("io server disconnect"), "{summary}");
    assert_eq!(d["fields"]["evidence"].as_array().unwrap().len(), 2);
    assert_eq!(d["fields"]["source"]["symbol"], "Server.disconnect");
}
