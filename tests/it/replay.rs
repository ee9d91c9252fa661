//! `dispel replay` on real captures: tshark's decoding agrees, goldens hold, bad files are
//! survived, and a recorded live session replays to the same wire-level events.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{check_golden, dispel, py_client, repo, Server, Trace};

pub fn replay_jsonl(file: &Path, extra: &[&str]) -> Trace {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.jsonl");
    let status = dispel()
        .arg("replay")
        .arg(file)
        .args(["--format", "jsonl", "--out"])
        .arg(&out)
        .args(extra)
        .status()
        .unwrap();
    assert!(status.success(), "dispel replay {} failed", file.display());
    Trace::read(&out)
}

fn captures() -> Vec<PathBuf> {
    crate::util::committed(&[".pcap", ".pcapng"])
}

/// A frame's fields as one comparable line; tshark's truth and dispel's trace name the length
/// and the key differently.
fn frame_line(f: &Value, len_key: &str, mask_key: &str) -> String {
    format!(
        "fin={} rsv1={} op={} masked={} len={} form={} key={}",
        f["fin"],
        f["rsv1"],
        f["opcode"],
        f["masked"],
        f[len_key],
        f["length_form"].as_str().unwrap_or("?"),
        f[mask_key].as_str().unwrap_or("null")
    )
}

/// Every WebSocket frame tshark decoded (minus the bytes it wrongly took for frames) is one of
/// ours, field for field, in the same order per connection and direction.
#[test]
fn frames_match_tsharks_decoding_of_the_reference_captures() {
    for name in ["python_client_websocket", "node_client_polling_upgrade"] {
        let pcap = repo().join(format!("traces/reference/{name}.pcap"));
        let truth: Value = serde_json::from_str(
            &std::fs::read_to_string(repo().join(format!("traces/reference/{name}.truth.json")))
                .unwrap(),
        )
        .unwrap();
        let trace = replay_jsonl(&pcap, &[]);
        let conn_of: BTreeMap<String, u64> = trace
            .stage("tcp.accept")
            .iter()
            .map(|e| {
                (
                    e["fields"]["client"].as_str().unwrap().to_string(),
                    e["conn"].as_u64().unwrap(),
                )
            })
            .collect();
        let mut compared = 0;
        for stream in truth["tcp_streams"].as_array().unwrap() {
            let conn = conn_of[stream["client"].as_str().unwrap()];
            for (truth_dir, dir) in [("client->server", "c2s"), ("server->client", "s2c")] {
                let theirs: Vec<String> = stream["websocket_frames"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|f| {
                        f["direction"] == truth_dir && f.get("not_a_websocket_frame").is_none()
                    })
                    .map(|f| frame_line(f, "payload_length", "masking_key"))
                    .collect();
                let ours: Vec<String> = trace
                    .stage("ws.frame")
                    .iter()
                    .filter(|e| e["conn"] == conn && e["dir"] == dir)
                    .map(|e| frame_line(&e["fields"], "payload_len", "mask_key"))
                    .collect();
                assert_eq!(ours, theirs, "{name} stream {} {dir}", stream["stream"]);
                compared += ours.len();
            }
            // Messages: our inflated text equals the independent reassembly + inflate.
            let derived = stream["derived"]["websocket_messages"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let theirs: Vec<&str> = derived
                .iter()
                .filter_map(|m| m["payload"]["text"].as_str())
                .collect();
            let ours: Vec<String> = trace
                .stage("ws.message")
                .iter()
                .filter(|e| e["conn"] == conn)
                .filter_map(|e| e["fields"]["text"].as_str().map(String::from))
                .collect();
            assert_eq!(ours, theirs, "{name} stream {} messages", stream["stream"]);
        }
        assert!(compared > 20, "{name}: only {compared} frames compared");
    }
}

/// Each committed capture replays to its committed JSONL trace (DISPEL_BLESS=1 rewrites them).
#[test]
fn golden_traces() {
    let mut failures = Vec::new();
    for pcap in captures() {
        let trace = replay_jsonl(&pcap, &[]);
        let got: String = trace.events.iter().map(|e| format!("{e}\n")).collect();
        failures.extend(check_golden(&pcap.with_extension("trace.jsonl"), &got));
    }
    assert!(
        failures.is_empty(),
        "golden traces differ (DISPEL_BLESS=1 to accept):\n{}",
        failures.join("\n")
    );
}

#[test]
fn bad_files_give_clear_errors_and_keep_what_they_can() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pcap");
    std::fs::write(&junk, b"this is not a capture at all, just text").unwrap();
    let out = dispel().arg("replay").arg(&junk).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("junk.pcap"),
        "{out:?}"
    );
    let out = dispel()
        .args(["replay", "/nonexistent/capture.pcap"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // A capture cut in the middle of a record: what came before is decoded, exit 0.
    let full = std::fs::read(repo().join("traces/reference/python_client_websocket.pcap")).unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &full[..full.len() * 2 / 3]).unwrap();
    let trace = replay_jsonl(&cut, &[]);
    assert!(!trace.stage("sio.packet").is_empty());
    assert!(
        trace.errors().iter().any(|e| e.contains("capture")),
        "{:?}",
        trace.errors()
    );
}

/// `serve --record` writes a capture whose replay shows the same wire-level events as the
/// live trace (the invariant that makes replay trustworthy).
#[test]
fn recorded_live_session_replays_to_the_same_events() {
    if !crate::util::have(&[crate::util::Need::Python]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("live.pcap");
    let server = Server::start(&["--record", cap.to_str().unwrap(), "--extras"]);
    let server_port = server.addr.rsplit(':').next().unwrap().to_string();
    py_client(&server.url, "two-clients", "websocket");
    py_client(&server.url, "bid,ack,binary", "polling,websocket");
    let live = server.stop();
    let replayed = replay_jsonl(&cap, &[]);
    // Per connection, in order: two connections' events interleave by when the server's
    // threads and the capture saw them, which may differ by microseconds.
    let wire = |t: &Trace| -> Vec<String> {
        let mut events: Vec<&Value> = t.events.iter().collect();
        events.sort_by_key(|e| e["conn"].as_u64().unwrap_or(0));
        events
            .into_iter()
            .filter(|e| {
                let s = e["stage"].as_str().unwrap();
                s.starts_with("http.")
                    || s.starts_with("ws.")
                    || s.starts_with("eio.")
                    || s == "sio.packet"
                    || s == "tcp.data"
            })
            .map(|e| {
                // What only a capture needs inferring (the Engine.IO session across
                // connections) is not part of the wire-level comparison.
                let mut f = e["fields"].clone();
                if let Some(o) = f.as_object_mut() {
                    o.remove("session_conn");
                    o.remove("inferred");
                }
                format!("#{} {} {} {}", e["conn"], e["dir"], e["stage"], f)
            })
            .collect()
    };
    // Wireshark's decoder reads the recorded file too, and finds the same frames.
    if let Ok(out) = std::process::Command::new("tshark")
        .arg("-r")
        .arg(&cap)
        .args([
            "-d",
            &format!("tcp.port=={},http", server_port),
            "-Y",
            "websocket",
            "-T",
            "fields",
            "-e",
            "websocket.opcode",
        ])
        .output()
    {
        assert!(
            out.status.success(),
            "tshark could not read the recording: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs: usize = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split(',').count())
            .sum();
        assert_eq!(
            theirs,
            replayed.stage("ws.frame").len(),
            "tshark and dispel count different frames"
        );
    }
    let (a, b) = (wire(&live), wire(&replayed));
    assert!(a.len() > 50, "live trace too short: {}", a.len());
    if a != b {
        let i = a
            .iter()
            .zip(&b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len()));
        panic!(
            "live and replay differ at event {i}:\n live:   {:?}\n replay: {:?}",
            a.get(i),
            b.get(i)
        );
    }
}

/// The Flask-SocketIO captures' WebSocket frames agree with tshark's (committed `.tshark.tsv`,
/// made with the command in traces/flask/README.md): same frames, same fields, same order.
/// tshark also takes the HTML page Werkzeug writes after the closing handshake for frames;
/// dispel reports those bytes as `tcp.data`, so tshark may only have extra rows at the end of
/// a connection where dispel shows such bytes.
#[test]
fn flask_capture_frames_match_tshark_fields() {
    let mut checked = 0;
    for pcap in captures()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("traces/flask"))
    {
        let tsv = std::fs::read_to_string(pcap.with_extension("tshark.tsv")).unwrap();
        let mut theirs: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for line in tsv.lines().filter(|l| !l.is_empty()) {
            let cols: Vec<&str> = line.split('\t').collect();
            let stream: u64 = cols[1].parse().unwrap();
            let split = |i: usize| cols[i].split(',').map(str::to_string).collect::<Vec<_>>();
            let (fin, op, mask, len) = (split(2), split(3), split(4), split(5));
            for k in 0..fin.len() {
                theirs.entry(stream).or_default().push(format!(
                    "fin={} op={} mask={} len={}",
                    fin[k], op[k], mask[k], len[k]
                ));
            }
        }
        let trace = replay_jsonl(&pcap, &[]);
        let conns: Vec<u64> = trace
            .stage("tcp.accept")
            .iter()
            .filter_map(|e| e["conn"].as_u64())
            .collect();
        for (stream, rows) in theirs {
            let conn = conns[stream as usize];
            let ours: Vec<String> = trace
                .stage("ws.frame")
                .iter()
                .filter(|e| e["conn"] == conn)
                .map(|e| {
                    let f = &e["fields"];
                    format!(
                        "fin={} op={} mask={} len={}",
                        f["fin"].as_bool().unwrap() as u8,
                        f["opcode"],
                        f["masked"].as_bool().unwrap() as u8,
                        // tshark's websocket.payload_length is the 7-bit field: 126 and 127
                        // stand for the 16- and 64-bit forms.
                        match f["payload_len"].as_u64().unwrap() {
                            n @ 0..=125 => n,
                            126..=0xFFFF => 126,
                            _ => 127,
                        }
                    )
                })
                .collect();
            assert!(
                rows.len() >= ours.len() && rows[..ours.len()] == ours[..],
                "{} stream {stream}:\n ours:   {ours:?}\n tshark: {rows:?}",
                pcap.display()
            );
            if rows.len() > ours.len() {
                assert!(
                    trace.stage("tcp.data").iter().any(|e| e["conn"] == conn),
                    "{} stream {stream}: tshark has {} more frames and dispel shows no undecoded bytes",
                    pcap.display(),
                    rows.len() - ours.len()
                );
            }
            checked += ours.len();
        }
    }
    assert!(checked > 100, "only {checked} frames compared");
}

/// `replay --python`: the links point at the versions installed for that interpreter (found
/// again in its files), not at dispel's built-in ones.
#[test]
fn replay_links_the_versions_installed_for_an_interpreter() {
    let python = repo().join("tests/.venv/bin/python");
    if !python.exists() {
        eprintln!("SKIP: tests/.venv is missing (tests/setup.sh)");
        return;
    }
    let pcap = repo().join("traces/flask/chromium_page.pcap");
    let builtin = replay_jsonl(&pcap, &[]);
    let installed = replay_jsonl(&pcap, &["--python", python.to_str().unwrap()]);
    let urls = |t: &Trace| -> Vec<String> {
        t.events
            .iter()
            .flat_map(|e| e["links"].as_array().cloned().unwrap_or_default())
            .filter_map(|u| u.as_str().map(str::to_string))
            .collect()
    };
    let (b, i) = (urls(&builtin), urls(&installed));
    assert!(b
        .iter()
        .any(|u| u.contains("python-socketio/blob/v5.16.3/")));
    assert!(
        i.iter().any(|u| u.contains("/v5.18.1/")),
        "{:?}",
        &i[..5.min(i.len())]
    );
    assert!(!i.iter().any(|u| u.contains("v5.16.3")));
    // The events are the same; only where they point changed.
    assert_eq!(builtin.events.len(), installed.events.len());
}

/// Over every committed trace: a packet the server sent is linked by a send-side kind (its
/// chain encodes and queues), one the client sent by a receive-side kind (its chain decodes
/// and dispatches). `links::tests` checks that those kinds' chains hold no step of the other
/// direction. And each long-polling request is linked to its own path (open, poll, post),
/// and a connection's close to the WebSocket's code only when it carried one.
#[test]
fn every_committed_event_is_linked_by_its_direction_and_transport() {
    let mut checked = 0;
    // The URLs of a kind's steps, as `dispel links` lists them.
    let urls = |name: &str| -> std::collections::BTreeSet<String> {
        let out = dispel()
            .args(["links", name, "--format", "json"])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v[0]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["url"].as_str().unwrap().to_string())
            .collect()
    };
    let (open, poll, post) = (
        urls("http.request:polling_open"),
        urls("http.request:polling"),
        urls("http.request:polling_post"),
    );
    let only = |a: &std::collections::BTreeSet<String>,
                others: [&std::collections::BTreeSet<String>; 2]| {
        let set: Vec<String> = a
            .iter()
            .filter(|u| !others.iter().any(|o| o.contains(*u)))
            .cloned()
            .collect();
        assert!(!set.is_empty());
        set
    };
    let (open_only, poll_only, post_only) = (
        only(&open, [&poll, &post]),
        only(&poll, [&open, &post]),
        only(&post, [&open, &poll]),
    );
    let (read, posted) = (
        urls("eio.packet:message"),
        urls("eio.packet:message_polling"),
    );
    let (read_only, posted_only) = (
        only(&read, [&posted, &posted]),
        only(&posted, [&read, &read]),
    );
    let has = |e: &Value, urls: &[String]| {
        let links = e["links"].to_string();
        urls.iter().any(|u| links.contains(u.as_str()))
    };
    let websocket_code = |e: &Value| e["links"].to_string().contains("simple_websocket");
    for path in crate::util::committed(&[".trace.jsonl"]) {
        let trace = Trace::read(&path);
        // Each long-polling request is linked to its own path: the GET that opens a session
        // never to the POST's, a poll never to the opening's; a connection that carried no
        // WebSocket never closes through WebSocket code.
        let websockets: Vec<&Value> = trace
            .stage("ws.handshake")
            .into_iter()
            .map(|h| &h["conn"])
            .collect();
        for e in &trace.events {
            let (stage, kind) = (e["stage"].as_str().unwrap_or(""), e["kind"].as_str());
            let target = e["fields"]["target"].as_str().unwrap_or("");
            let method = e["fields"]["method"].as_str().unwrap_or("");
            match (stage, kind) {
                ("http.request", Some("polling_open")) => {
                    assert!(method == "GET" && !target.contains("sid="), "{e}");
                    assert!(has(e, &open_only), "{e}");
                    assert!(!has(e, &poll_only) && !has(e, &post_only), "{e}");
                }
                ("http.request", Some("polling")) => {
                    assert!(method == "GET" && target.contains("sid="), "{e}");
                    assert!(has(e, &poll_only), "{e}");
                    assert!(!has(e, &open_only) && !has(e, &post_only), "{e}");
                }
                ("http.request", Some("polling_post")) => {
                    assert!(method == "POST" && target.contains("sid="), "{e}");
                    assert!(has(e, &post_only), "{e}");
                    assert!(!has(e, &open_only) && !has(e, &poll_only), "{e}");
                }
                ("ws.frame" | "ws.message", kind)
                    if matches!(e["fields"]["opcode"].as_u64(), Some(0..=2)) =>
                {
                    // Compressed or not: the inflate and deflate steps only where they ran.
                    let compressed = match stage {
                        "ws.message" => e["fields"]["compressed"] == true,
                        // A continuation carries no RSV1: its message's first frame does.
                        _ => e["fields"]["rsv1"] == true || kind == Some("compressed"),
                    };
                    let deflate = e["links"].to_string().contains("extensions.py");
                    let from_client = e["dir"] == "c2s";
                    if from_client {
                        assert_eq!(kind == Some("compressed"), compressed, "{e}");
                    } else if stage == "ws.frame" {
                        assert_eq!(kind == Some("send_compressed"), compressed, "{e}");
                    }
                    if from_client || stage == "ws.frame" {
                        assert_eq!(deflate, compressed, "{e}");
                    }
                }
                ("eio.packet", kind) if e["dir"] == "c2s" && e["fields"]["type"] == "MESSAGE" => {
                    // A MESSAGE in a long-polling POST is decoded from its payload, one from
                    // a WebSocket by its reader.
                    let polling = e["fields"]["transport"] == "polling";
                    assert_eq!(kind == Some("message_polling"), polling, "{e}");
                    let (mine, other) = if polling {
                        (&posted_only, &read_only)
                    } else {
                        (&read_only, &posted_only)
                    };
                    assert!(has(e, mine) && !has(e, other), "{e}");
                }
                ("ws.handshake", kind) => {
                    // The extension's accept ran only when the handshake agreed it.
                    let agreed = e["fields"]["extension_note"] == "permessage-deflate accepted";
                    assert_eq!(kind == Some("compressed"), agreed, "{e}");
                    assert_eq!(
                        e["links"].to_string().contains("extensions.py"),
                        agreed,
                        "{e}"
                    );
                }
                ("tcp.close", kind) => {
                    let carried = websockets.contains(&&e["conn"]);
                    let closed = trace
                        .stage("ws.close")
                        .iter()
                        .any(|c| c["conn"] == e["conn"]);
                    let want = match (carried, closed) {
                        (false, _) => None,
                        (true, true) => Some("websocket"),
                        (true, false) => Some("websocket_abrupt"),
                    };
                    assert_eq!(kind, want, "{e}");
                    assert_eq!(websocket_code(e), carried, "{e}");
                }
                _ => continue,
            }
            checked += 1;
        }
        for e in trace.events {
            let (stage, d, ty) = (
                e["stage"].as_str().unwrap_or(""),
                e["dir"].as_str().unwrap_or(""),
                e["fields"]["type"].as_str().unwrap_or(""),
            );
            let kind = e["kind"].as_str().unwrap_or("");
            let want = match (stage, d, ty) {
                ("sio.packet", "s2c", "EVENT") => "event_sent",
                ("sio.packet", "s2c", "ACK") => "ack_sent",
                ("sio.packet", "s2c", "CONNECT") => "connect_sent",
                ("sio.packet", "c2s", "EVENT") => "event",
                ("sio.packet", "c2s", "ACK") => "ack",
                ("eio.packet", "s2c", "MESSAGE") => "message_sent",
                ("eio.packet", "c2s", "MESSAGE") if e["fields"]["transport"] == "polling" => {
                    "message_polling"
                }
                ("eio.packet", "c2s", "MESSAGE") => "message",
                _ => continue,
            };
            assert_eq!(kind, want, "{}: {e}", path.display());
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} packets checked");
}

/// docs/trace-format.md is the schema readers program against: every stage and every field
/// key that the committed golden traces hold is documented in its stage's row (or among the
/// keys every event or every replayed session event may carry), and every kind they hold is
/// one the links tables know.
#[test]
fn the_trace_format_documents_every_stage_and_field_emitted() {
    let doc = std::fs::read_to_string(repo().join("docs/trace-format.md")).unwrap();
    // The identifiers inside backticks of a piece of the document.
    let names = |text: &str| -> std::collections::BTreeSet<String> {
        text.split('`')
            .skip(1)
            .step_by(2)
            .filter_map(|quoted| {
                let id: String = quoted
                    .trim_start_matches('"')
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                (!id.is_empty()).then_some(id)
            })
            .collect()
    };
    let (general, per_stage) = doc.split_once("## Stages and their fields").unwrap();
    let mut anywhere = names(general);
    let mut rows = std::collections::BTreeMap::new();
    for line in per_stage.lines() {
        if let Some(rest) = line.strip_prefix("| `") {
            // The stage table comes first; the kinds table repeats the stage names.
            let stage = rest.split('`').next().unwrap().to_string();
            rows.entry(stage).or_insert_with(|| names(line));
        } else if line.starts_with("| (replay)") {
            anywhere.extend(names(line));
        }
    }
    let mut missing = std::collections::BTreeSet::new();
    let mut traces = 0;
    for path in crate::util::committed(&[".trace.jsonl"]) {
        traces += 1;
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let e: Value = serde_json::from_str(line).unwrap();
            let stage = e["stage"].as_str().unwrap();
            let Some(row) = rows.get(stage) else {
                missing.insert(format!("stage {stage}"));
                continue;
            };
            for key in e["fields"].as_object().unwrap().keys() {
                if !row.contains(key) && !anywhere.contains(key) {
                    missing.insert(format!("{stage}: {key}"));
                }
            }
            if let Some(kind) = e["kind"].as_str() {
                if !doc.contains(&format!("`{kind}`")) {
                    missing.insert(format!("kind {kind}"));
                }
            }
        }
    }
    assert!(traces >= 10, "{traces} golden traces");
    assert!(
        missing.is_empty(),
        "not in docs/trace-format.md: {missing:#?}"
    );
}
