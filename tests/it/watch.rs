//! `dispel watch` running the real Flask-SocketIO app: the real clients through it, the trace
//! it writes, what it does when the app misbehaves. (That it changes nothing on the wire is
//! `differential::dispel_watch_changes_nothing_on_the_wire`.)

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::{assert_in_order, dispel, node_client, py_client, repo, Watched};

#[test]
fn the_real_app_narrated_for_real_clients() {
    if !crate::util::have(&[crate::util::Need::Python, crate::util::Need::Node]) {
        return;
    }
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
                // What the tracer inside the app adds: the emit a packet came from.
                o.remove("emitted_by");
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

/// dispel killed outright (SIGKILL: no chance to stop the app) still takes the app with it,
/// instead of leaving it holding its port.
#[cfg(target_os = "linux")]
#[test]
fn the_app_stops_when_dispel_is_killed() {
    use std::io::BufRead;
    let python = repo().join("tests/.venv/bin/python");
    if !crate::util::have(&[crate::util::Need::Python]) {
        return;
    }
    let mut child = dispel()
        .args(["watch", "--no-tracer", "--"])
        .arg(&python)
        .args([
            "-c",
            "import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(60)",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let app: u32 = line.trim().parse().expect("the app's pid");
    child.kill().unwrap();
    let _ = child.wait();
    // Gone, or a zombie nobody has reaped yet: either way no longer running.
    let running = || {
        std::fs::read_to_string(format!("/proc/{app}/stat"))
            .ok()
            .and_then(|s| s.rsplit(')').next().map(|r| r.trim_start().to_string()))
            .is_some_and(|r| !r.starts_with('Z'))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while running() {
        assert!(Instant::now() < deadline, "the app {app} outlived dispel");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// With --port and --app-port the app is started on its own port; a client that connects
/// before the app listens is held until it does, not refused. The app is not a Flask-SocketIO
/// one, which dispel says.
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
    let child = dispel()
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
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    // Not a Flask-SocketIO app: said, and the wire was still narrated.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("never started Flask-SocketIO"), "{err}");
}

/// A student's own app (tests/student_app/chat.py: rooms, acks, a connect handler that checks
/// a token, a Namespace class, send, emits from a route and a background task, disconnect),
/// watched: every Socket.IO call its code makes is in the trace, with the chain observed for
/// it from the student's line down, at the installed versions.
#[test]
fn a_students_own_calls_each_with_its_observed_chain() {
    watch_the_student_app(".venv", "threading");
}

/// The same app in Flask-SocketIO's eventlet mode: eventlet's green sockets bind and serve,
/// monkey-patched, and dispel still stands in front of them and sees inside.
#[test]
fn the_student_app_under_eventlet() {
    watch_the_student_app(".venv-async", "eventlet");
}

/// And in gevent mode (gevent's pywsgi server, simple-websocket).
#[test]
fn the_student_app_under_gevent() {
    watch_the_student_app(".venv-async", "gevent");
}

/// Threading mode with clients that stay on long-polling: each emit is tied to its packets
/// though they leave on whichever GET the session holds, never on the POST that brought the
/// event in.
#[test]
fn the_student_app_under_gevent_with_gevent_websocket() {
    watch_the_student_app(".venv-gevent-websocket", "gevent");
}

#[test]
fn the_student_app_on_long_polling() {
    watch_the_student_app(".venv", "polling");
}

/// Started by gunicorn, as Flask-SocketIO's deployment docs do it (one gthread worker): the
/// master binds and forks the worker that serves; dispel moves the master's socket and
/// observes the worker.
#[test]
fn the_student_app_in_a_gunicorn_worker() {
    watch_the_student_app(".venv-async", "gunicorn");
}

/// Runs tests/student_app/chat.py under `dispel watch` with the interpreter of `venv`, in
/// async mode `mode` (threading, eventlet, gevent), or in a gunicorn worker ("gunicorn").
fn watch_the_student_app(venv: &str, mode: &str) {
    let python = repo().join("tests").join(venv).join("bin/python");
    let client = repo().join("tests/.venv/bin/python");
    if !python.exists() || !client.exists() {
        crate::util::skip(&format!("tests/{venv}"));
        return;
    }
    let port = crate::oracle::free_port();
    let dir = tempfile::tempdir().unwrap();
    let trace_path = dir.path().join("chat.jsonl");
    let report_path = dir.path().join("chat.md");
    let mut command = dispel();
    command
        .args(["watch", "--format", "jsonl", "--out"])
        .arg(&trace_path)
        .arg("--report")
        .arg(&report_path)
        .arg("--");
    if mode == "gunicorn" {
        command
            .arg(python.with_file_name("gunicorn"))
            .args(["-w", "1", "--threads", "50", "-b"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--chdir")
            .arg(repo().join("tests/student_app"))
            .arg("chat:app");
    } else {
        command
            .arg(&python)
            .arg(repo().join("tests/student_app/chat.py"))
            .args(["--port", &port.to_string(), "--async-mode"])
            .arg(if mode == "polling" { "threading" } else { mode });
    }
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            sink.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !log.lock().unwrap().contains("dispel watch: open http://") {
        assert!(Instant::now() < deadline, "{}", log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = std::process::Command::new(&client)
        .arg(repo().join("tests/student_app/drive.py"))
        .arg(format!("http://127.0.0.1:{port}"))
        .args(if mode == "polling" {
            &["--transports", "polling"][..]
        } else {
            &[]
        })
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Every connection the client opened has been seen to close before the app is stopped.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let t = crate::util::Trace::read_so_far(&trace_path);
        let (opened, closed) = (t.stage("tcp.accept").len(), t.stage("tcp.close").len());
        if opened > 0 && closed >= opened {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{closed} of {opened} connections closed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let log = log.lock().unwrap().clone();
    let async_mode = if mode == "gunicorn" || mode == "polling" {
        "threading"
    } else {
        mode
    };
    assert!(log.contains(&format!("async mode {async_mode}")), "{log}");
    assert!(log.contains("python-socketio 5.18.1"), "{log}");
    let trace = crate::util::Trace::read(&trace_path);
    // The accept and the frames are linked to the server of the mode the app runs on.
    let server = match mode {
        "eventlet" => "eventlet/wsgi.py",
        "gevent" => "gevent/",
        _ => "werkzeug/serving.py",
    };
    if mode != "gunicorn" {
        let accept = &trace.stage("tcp.accept")[0];
        let links = accept["links"].to_string();
        assert!(links.contains(server), "{mode}: {links}");
        for other in ["eventlet/wsgi.py", "gevent/", "werkzeug/serving.py"] {
            assert!(other == server || !links.contains(other), "{mode}: {links}");
        }
    }
    // The WebSocket's handshake is linked to the library that made it: gevent-websocket's
    // handler where it is installed, simple-websocket's otherwise (eventlet has its own).
    let handshake = match trace.stage("ws.handshake").first() {
        Some(h) => h["links"].to_string(),
        None => String::new(),
    };
    let (made, not) = match (venv, mode) {
        (_, "polling") => ("", "/"),
        (".venv-gevent-websocket", _) => ("geventwebsocket/handler.py", "simple_websocket/"),
        (_, "eventlet") => ("eventlet/websocket.py", "simple_websocket/"),
        _ => ("simple_websocket/ws.py", "geventwebsocket/"),
    };
    assert!(handshake.contains(made), "{venv} {mode}: {handshake}");
    assert!(!handshake.contains(not), "{venv} {mode}: {handshake}");
    let source = std::fs::read_to_string(repo().join("tests/student_app/chat.py")).unwrap();
    let site = repo()
        .join("tests")
        .join(venv)
        .join("lib/python3.11/site-packages");
    let find = |stage: &str, needle: &str| -> serde_json::Value {
        trace
            .stage(stage)
            .into_iter()
            .find(|e| e["summary"].as_str().unwrap_or("").contains(needle))
            .unwrap_or_else(|| panic!("no {stage} with {needle:?}"))
            .clone()
    };
    // Each call the student's code makes: its line, what it asked for, where it went.
    let cases = [
        (
            "sio.emit",
            "emit \"welcome\" to the sender (to=request.sid)",
            "emit(\"welcome\"",
        ),
        ("sio.room", "join room \"room1\"", "join_room(room)"),
        (
            "sio.emit",
            "emit \"joined\" to \"room1\", include_self=False",
            "emit(\"joined\"",
        ),
        ("sio.emit", "emit \"said\" to \"room1\"", "emit(\"said\""),
        (
            "sio.emit",
            "send \"message\" to everyone",
            "send(text.upper()",
        ),
        ("sio.room", "leave room \"room1\"", "leave_room(room)"),
        ("sio.room", "close room \"room1\"", "close_room(room)"),
        (
            "sio.emit",
            "\"announcement\" to everyone in / (chat.py:",
            "socketio.emit(\"announcement\"",
        ),
        (
            "sio.emit",
            "\"tick\" to everyone in / (chat.py:",
            "socketio.emit(\"tick\"",
        ),
        ("sio.emit", "disconnect the client", "disconnect()"),
        (
            "sio.emit",
            "emit \"lobby\" to the sender only",
            "emit(\"lobby\"",
        ),
    ];
    for (stage, needle, code) in cases {
        let e = find(stage, needle);
        let line = e["fields"]["line"].as_str().unwrap_or("");
        let n: usize = line
            .strip_prefix("chat.py:")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{needle}: line {line:?}"));
        assert!(
            source.lines().nth(n - 1).unwrap_or("").contains(code),
            "{needle}: chat.py:{n} is not the call {code:?}"
        );
        let observed = e["fields"]["observed"].as_array().unwrap();
        assert!(observed
            .iter()
            .any(|f| f["package"].is_null() && f["path"] == "chat.py"));
        // Below the student's line, the functions the call went into: each at its `def`.
        let own = observed
            .iter()
            .rposition(|f| f["package"].is_null())
            .unwrap();
        for f in &observed[own + 1..] {
            if f["package"] == "cpython" {
                continue;
            }
            let text = std::fs::read_to_string(site.join(f["path"].as_str().unwrap())).unwrap();
            let n = f["line"].as_u64().unwrap() as usize;
            let line = text.lines().nth(n - 1).unwrap_or("").trim_start();
            let name = f["function"].as_str().unwrap().rsplit('.').next().unwrap();
            assert!(
                (line.starts_with("def ")
                    || line.starts_with("async def ")
                    || line.starts_with("class "))
                    && line.contains(name),
                "{needle}: {}:{n} is {line:?}, not the def of {name}",
                f["path"]
            );
        }
        // Library frames at the installed versions, each a real line of the installed file;
        // a function's first line where the chain went down into it.
        for f in observed.iter().filter(|f| f["package"].is_string()) {
            let (path, line) = (f["path"].as_str().unwrap(), f["line"].as_u64().unwrap());
            let text = if f["package"] == "cpython" {
                continue;
            } else {
                std::fs::read_to_string(site.join(path)).unwrap()
            };
            assert!(
                (line as usize) <= text.lines().count(),
                "{path}:{line} is past the end of the installed file"
            );
            assert!(f["url"]
                .as_str()
                .is_some_and(|u| u.ends_with(&format!("#L{line}"))));
            let version = f["version"].as_str().unwrap();
            let package = f["package"].as_str().unwrap();
            if package == "python-socketio" {
                assert_eq!(version, "5.18.1");
            }
            if package == "Flask-SocketIO" {
                assert_eq!(version, "5.7.0");
            }
        }
        if stage == "sio.emit" && e["fields"]["count"].as_u64().unwrap_or(0) > 0 {
            assert!(
                observed
                    .iter()
                    .any(|f| f["function"] == "Server.send_packet"),
                "{needle}: the chain reaches python-engineio's send_packet"
            );
        }
    }
    // Recipients: a room without the sender, a room with both.
    let joined = find(
        "sio.emit",
        "emit \"joined\" to \"room1\", include_self=False",
    );
    let said = find("sio.emit", "emit \"said\" to \"room1\"");
    assert_eq!(said["fields"]["count"], 2, "{said}");
    assert!(joined["fields"]["count"].as_u64().unwrap() <= 1, "{joined}");
    // The packets an emit put on the wire are tied to it: listed on the emit (`wire`) when
    // they came before its report, or marked with it (`emitted_by`) when they came after.
    for emit in [&said, &joined] {
        let line = emit["fields"]["line"].as_str().unwrap();
        let event = emit["fields"]["event"].as_str().unwrap();
        for conn in emit["fields"]["recipients"].as_array().unwrap() {
            let listed = emit["fields"]["wire"]
                .as_array()
                .unwrap()
                .iter()
                .any(|w| w["conn"] == *conn);
            let marked = trace.stage("sio.packet").iter().any(|p| {
                p["conn"] == *conn
                    && p["fields"]["event"] == event
                    && p["fields"]["emitted_by"]["line"] == line
            });
            assert!(
                listed ^ marked,
                "{event} to #{conn}: listed {listed}, marked {marked}: {emit}"
            );
        }
    }
    // The trace is in the order things happened, though the tracer reports a call after its
    // bytes went out: each handler before the acknowledgement it returned, each emit before
    // the packets it made.
    let position = |e: &serde_json::Value| trace.events.iter().position(|x| x == e).unwrap();
    let mut acks = 0;
    for answer in trace.stage("sio.emit") {
        let f = &answer["fields"];
        if f["call"] != "ack" {
            continue;
        }
        // The answer's session: on long-polling its packet leaves on a GET of the session,
        // another connection than the POST that brought the event.
        let packet = trace.stage("sio.packet").into_iter().find(|p| {
            p["dir"] == "s2c"
                && (p["conn"] == answer["conn"] || p["fields"]["sid"] == f["eio_sid"])
                && p["fields"]["type"] == "ACK"
                && p["fields"]["id"] == f["id"]
                && p["fields"]["nsp"] == f["nsp"]
        });
        let packet = packet.unwrap_or_else(|| panic!("no ACK packet for {answer}"));
        assert!(
            position(answer) < position(packet),
            "{mode}: the ACK packet is written before the answer that made it: {answer}"
        );
        acks += 1;
    }
    assert!(acks >= 4, "{mode}: {acks} acknowledgements");
    for packet in trace.stage("sio.packet") {
        let Some(line) = packet["fields"]["emitted_by"]["line"].as_str() else {
            continue;
        };
        let emit = trace.stage("sio.emit").into_iter().find(|e| {
            e["fields"]["line"] == line && e["fields"]["event"] == packet["fields"]["event"]
        });
        let emit = emit.unwrap_or_else(|| panic!("no emit at {line}"));
        assert!(position(emit) < position(packet), "{mode}: {packet}");
    }
    // The way down from a send ends where the packet is queued for the writer: what takes it
    // off the queue runs elsewhere (another thread, or a green thread after a switch).
    // gevent's queue is compiled, so its put is no Python frame.
    for answer in trace.stage("sio.emit") {
        if answer["fields"]["by"] != "python-socketio" {
            continue;
        }
        let observed = answer["fields"]["observed"].as_array().unwrap();
        let send = observed
            .iter()
            .position(|f| f["function"] == "Socket.send")
            .unwrap_or_else(|| panic!("{mode}: no Socket.send in {answer}"));
        let last = observed.last().unwrap();
        let path = |f: &serde_json::Value| f["path"].as_str().unwrap().to_string();
        assert!(
            observed[send..]
                .iter()
                .all(|f| path(f).starts_with("engineio/") || path(f).ends_with("queue.py")),
            "{mode}: past the queue in {}: {observed:?}",
            answer["summary"]
        );
        if mode != "gevent" {
            assert!(
                last["function"].as_str().unwrap().ends_with(".put")
                    && path(last).ends_with("queue.py"),
                "{mode}: the chain of {} ends at {last}",
                answer["summary"]
            );
        }
    }
    // An emit's recipients are the connections its packets can leave on: a WebSocket or a
    // long-polling GET, never a POST (which only brings the client's packets in).
    let posts: Vec<&serde_json::Value> = trace
        .stage("http.request")
        .into_iter()
        .filter(|r| r["fields"]["method"] == "POST")
        .map(|r| &r["conn"])
        .collect();
    for emit in trace.stage("sio.emit") {
        for conn in emit["fields"]["recipients"]
            .as_array()
            .into_iter()
            .flatten()
        {
            assert!(
                !posts.contains(&conn),
                "{mode}: sent to a POST's connection: {emit}"
            );
        }
    }
    // Each emit to a room or everyone is also a broadcast, as serve and replay show one.
    let broadcasts = trace.stage("sio.broadcast");
    let to_room = broadcasts
        .iter()
        .find(|b| b["fields"]["event"] == "said")
        .expect("the room emit's broadcast");
    assert_eq!(to_room["fields"]["room"], "room1");
    assert_eq!(
        to_room["fields"]["recipients"],
        said["fields"]["recipients"]
    );
    assert_eq!(to_room["fields"]["observed"], true);
    assert!(broadcasts.iter().any(|b| b["fields"]["event"] == "joined"
        && b["summary"]
            .as_str()
            .unwrap()
            .contains("include_self=False")));
    assert!(broadcasts
        .iter()
        .any(|b| b["fields"]["event"] == "tick" && b["fields"]["room"].is_null()));
    assert!(!broadcasts.iter().any(|b| b["fields"]["event"] == "welcome"));
    // Handlers, Namespace methods included, end at the student's def line.
    for (needle, def) in [
        ("\"join\" on / -> on_join", "def on_join("),
        ("\"ping\" on /chat -> Lobby.on_ping", "def on_ping("),
        (
            "\"connect\" on /chat -> Lobby.on_connect",
            "def on_connect(",
        ),
    ] {
        let e = find("sio.dispatch", needle);
        let last = e["fields"]["observed"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(last["path"], "chat.py");
        let n = last["line"].as_u64().unwrap() as usize;
        assert!(
            source.lines().nth(n - 1).unwrap().contains(def),
            "{needle}: {last}"
        );
        assert!(e["conn"].is_u64(), "{e}");
    }
    // Acknowledgements with the handlers' return values, and the refused connection.
    for needle in [
        "with [{\"ok\":true,\"room\":\"room1\"}]",
        "with [\"delivered\"]",
        "with [42,\"pong\"]",
        "with [5]",
    ] {
        find("sio.emit", needle);
    }
    let refused = trace
        .stage("error")
        .into_iter()
        .find(|e| e["fields"]["refused"] == true)
        .expect("the refused connection");
    assert!(refused["summary"].as_str().unwrap().contains("bad token"));
    find("sio.emit", "python-socketio refuses the connection to /");
    // The app's own failures, diagnosed: the handler that raised, the emit that reached no one.
    let diagnosis = |cause: &str| -> serde_json::Value {
        trace
            .stage("diagnosis")
            .into_iter()
            .find(|d| d["fields"]["cause"] == cause)
            .unwrap_or_else(|| panic!("no {cause} diagnosis: {:#?}", trace.stage("diagnosis")))
            .clone()
    };
    let raised = diagnosis("handler-raised");
    assert!(
        raised["summary"]
            .as_str()
            .unwrap()
            .contains("on_average raised ZeroDivisionError"),
        "{raised}"
    );
    // Watched, the exception is named: the ack it never sent is not a second diagnosis.
    assert!(
        !trace
            .stage("diagnosis")
            .iter()
            .any(|d| d["fields"]["cause"] == "no-ack"),
        "{:#?}",
        trace.stage("diagnosis")
    );
    let nobody = diagnosis("emit-reached-nobody");
    assert!(
        nobody["summary"]
            .as_str()
            .unwrap()
            .contains("include_self=False"),
        "{nobody}"
    );
    let named = if mode == "gunicorn" {
        "chat:app"
    } else {
        "chat.py"
    };
    check_the_report(&trace, &report_path, async_mode, named);
    // Each call's links start where the call went in: Flask-SocketIO's module-level emit or
    // send, or the SocketIO object's method; then to a room or to everyone.
    for e in trace.stage("sio.emit") {
        let call = e["fields"]["call"].as_str().unwrap_or("");
        let room = e["fields"]["reach"] != "everyone";
        let want = match (call, room) {
            ("emit", true) => "room",
            ("emit", false) => "emit",
            ("send", true) => "send_room",
            ("send", false) => "send",
            ("SocketIO.emit", true) => "method_room",
            ("SocketIO.emit", false) => "method",
            ("SocketIO.send", true) => "method_send_room",
            ("SocketIO.send", false) => "method_send",
            _ => continue,
        };
        assert_eq!(e["kind"], want, "{mode}: {e}");
        let links = e["links"].to_string();
        assert_eq!(
            links.contains("flask_socketio/__init__.py#L9"),
            !call.contains('.') && call == "emit",
            "{mode}: the module-level emit is in the chain of {call} only: {links}"
        );
    }
    // The trace records what the app ran: a report made from it later, with no option,
    // quotes the same source and links the same installed versions and mode.
    let app = &trace.stage("app")[0]["fields"];
    assert_eq!(app["async_mode"], async_mode, "{app}");
    assert_eq!(app["versions"]["python-socketio"], "5.18.1", "{app}");
    let later = dir.path().join("later.md");
    let status = dispel()
        .arg("report")
        .arg(&trace_path)
        .arg("-o")
        .arg(&later)
        .status()
        .unwrap();
    assert!(status.success());
    let later = std::fs::read_to_string(&later).unwrap();
    assert!(
        later.contains("## Your handler on_join: \"join\" on /"),
        "{mode}"
    );
    assert!(later.contains("/tag/v5.18.1/"), "{mode}");
    assert!(!later.contains("/tag/v5.16.3/"), "{mode}");
    assert!(
        later.contains(&format!(
            "for the {async_mode} async mode (reported by the app when it started, as the trace records"
        )),
        "{mode}"
    );
}

/// The report of a watched student app is about that app: a section for each handler that
/// ran and each line of the app that made a Socket.IO call, its source quoted, the chains at
/// the installed versions, and nothing of the auction.
fn check_the_report(
    trace: &crate::util::Trace,
    path: &std::path::Path,
    async_mode: &str,
    named: &str,
) {
    let report = std::fs::read_to_string(path).expect("the report, written when the app stops");
    for title in [
        "## Your code",
        "## Your handler on_connect: \"connect\" on /",
        "## Your handler Lobby.on_connect: \"connect\" on /chat",
        "## Your handler on_join: \"join\" on /",
        "## Your handler Lobby.on_ping: \"ping\" on /chat",
        "## Your handler on_connect raised ConnectionRefusedError",
        "## What python-socketio sent for you",
        "### The acknowledgement of \"join\"",
        "### The acknowledgement of \"ping\"",
        "### The CONNECT_ERROR refusal on /",
        "## Your code: SocketIO(...) (chat.py:",
        "## Your background task countdown (chat.py:",
    ] {
        assert!(report.contains(title), "no {title:?} in the report");
    }
    // Each acknowledgement names the handler's return statement, read from its source.
    assert!(
        report.contains(
            "It carries the return value of your handler `on_join`: `chat.py:107 return {\"ok\": True, \"room\": room}`."
        ),
        "the return line of on_join"
    );
    // Every call the app's code made has its section, titled by its line.
    let mut calls = 0;
    for e in trace.events.iter().filter(|e| {
        (e["stage"] == "sio.emit" || e["stage"] == "sio.room") && e["fields"]["by"].is_null()
    }) {
        let title = format!(
            "## Your call {} at {}",
            e["fields"]["call"].as_str().unwrap(),
            e["fields"]["line"].as_str().unwrap()
        );
        assert!(report.contains(&title), "no {title:?} in the report");
        calls += 1;
    }
    assert!(calls >= 11, "{calls} calls");
    // The student's source, quoted: decorators with the def, the call's statement.
    assert!(report.contains("```python\n@socketio.on(\"join\")\ndef on_join(room):\n```"));
    assert!(report.contains(
        "```python\nemit(\"said\", {\"who\": nicknames.get(request.sid), \"text\": data[\"text\"]}, to=data[\"room\"])\n```"
    ));
    assert!(
        report.contains(&format!("in async mode {async_mode}")),
        "async mode"
    );
    assert!(report.contains("python-socketio 5.18.1"));
    // Every stage's chain at the versions the app runs, found again in its installed files.
    assert!(report.contains(
        "The source links point at the versions installed with your app (Flask-SocketIO 5.7.0, python-socketio 5.18.1"
    ));
    assert!(!report.contains("python-socketio/blob/v5.16.3"));
    assert!(!report.contains("not in your installed version"));
    assert!(report.contains("# How Flask-SocketIO works: connection #"));
    assert!(report.contains(&format!("of the app {named}, watched")));
    // Nothing of the auction.
    for auction in ["replace old value", "replaced values", "/auctions"] {
        assert!(!report.contains(auction), "the report mentions {auction:?}");
    }
}
