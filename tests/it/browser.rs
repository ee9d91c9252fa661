//! The auction page and the live trace view in headless Chromium (tests/browser/).

use std::process::Command;

use crate::util::{repo, Server};

#[test]
fn page_and_live_view_in_chromium() {
    if !crate::util::have(&[crate::util::Need::Node]) {
        return;
    }
    let server = Server::start(&["-q"]);
    let out = Command::new("node")
        .arg(repo().join("tests/browser/dispel_page.mjs"))
        .arg(&server.url)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(r#""kind":"pass""#), "{stdout}");
    assert!(stdout.contains(r#""kind":"deflate""#), "{stdout}");
    let trace = server.stop();
    // The browser's bids (one, then one while the view was paused) went through the real
    // protocol path.
    assert!(
        trace.stage("sio.dispatch").len() == 2,
        "{:?}",
        trace.stage("sio.dispatch")
    );
}

#[test]
fn serve_writes_a_report_when_it_stops() {
    if !crate::util::have(&[crate::util::Need::Python]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("session.md");
    let server = Server::start(&["--report", report.to_str().unwrap()]);
    crate::util::py_client(&server.url, "bid", "websocket");
    server.stop();
    let text = std::fs::read_to_string(&report).expect("report written");
    for section in [
        "ws.handshake",
        "sio.broadcast",
        "```mermaid",
        "Your code: SocketIO(app)",
    ] {
        assert!(text.contains(section), "report lacks {section:?}");
    }
    assert!(text.contains("handle_new_value") || text.contains("sio.dispatch"));
}

/// The instructor's case for `dispel watch`: the real Flask-SocketIO app in two Chromium tabs
/// and dispel's live view in a third, narrating the real server's traffic as it happens.
#[test]
fn watched_app_in_chromium_with_the_live_view() {
    if !crate::util::have(&[crate::util::Need::Node]) {
        return;
    }
    let Some(w) = crate::util::Watched::start(&[], &[]) else {
        return;
    };
    let out = Command::new("node")
        .arg(repo().join("tests/browser/watch_page.mjs"))
        .arg(&w.url)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        w.stderr.lock().unwrap()
    );
    assert!(stdout.contains(r#""kind":"pass""#), "{stdout}");
    let (_, trace) = w.stop();
    // The bid went through the real app: its handler, observed inside it, and its emit.
    let dispatch = trace.stage("sio.dispatch");
    assert!(
        dispatch.iter().any(|e| e["summary"]
            .as_str()
            .unwrap_or("")
            .contains("-> handle_new_value (app.py:")),
        "{dispatch:?}"
    );
    let emit = trace
        .stage("sio.emit")
        .into_iter()
        .find(|e| e["fields"]["event"] == "replaced values")
        .expect("the app's emit");
    assert_eq!(emit["fields"]["count"], 2, "{emit}");
}

/// A student's own app (not the auction) in two Chromium tabs under `dispel watch`, its page's
/// socket.io-client joining a room and saying something: the live view shows the student's
/// handler and the room emit it made, and the trace ties the emit to the packets it sent.
#[test]
fn a_students_app_in_chromium_with_its_own_calls_live() {
    if !crate::util::have(&[crate::util::Need::Node]) {
        return;
    }
    let Some(w) = crate::util::Watched::start_app("tests/student_app/chat.py", &[], &[]) else {
        return;
    };
    let out = Command::new("node")
        .arg(repo().join("tests/browser/chat_page.mjs"))
        .arg(&w.url)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        w.stderr.lock().unwrap()
    );
    assert!(stdout.contains(r#""kind":"pass""#), "{stdout}");
    let (_, trace) = w.stop();
    let said = trace
        .stage("sio.emit")
        .into_iter()
        .find(|e| e["fields"]["event"] == "said")
        .expect("the room emit");
    assert_eq!(said["fields"]["count"], 2, "{said}");
    assert!(said["fields"]["line"]
        .as_str()
        .is_some_and(|l| l.starts_with("chat.py:")));
    // Both tabs' sessions went through the WebSocket upgrade, as a browser's do.
    assert!(trace.stage("eio.upgrade").len() >= 2);
}

/// A committed capture's HTML report, opened from its file in Chromium with nothing else to
/// load: the diagram is drawn with one arrow per arrow of the Markdown report's Mermaid
/// source, and the annotated bytes are drawn in coloured fields. With DISPEL_SCREENSHOTS=DIR
/// the page is photographed there (docs/screenshots/ holds the README's).
#[test]
fn the_html_report_draws_offline_in_chromium() {
    if !crate::util::have(&[crate::util::Need::Node]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pcap = repo().join("traces/flask/chromium_page.pcap");
    let html = dir.path().join("report.html");
    let md = dir.path().join("report.md");
    for (path, format) in [(&html, "html"), (&md, "md")] {
        let out = crate::util::dispel()
            .arg("report")
            .arg(&pcap)
            .args(["--format", format, "-o"])
            .arg(path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut cmd = Command::new("node");
    cmd.arg(repo().join("tests/browser/report_page.mjs"))
        .arg(&html);
    if let Some(shots) = std::env::var_os("DISPEL_SCREENSHOTS") {
        cmd.arg("--screenshot").arg(shots);
    }
    let out = cmd.output().expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let diagram: serde_json::Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["kind"] == "diagram")
        .expect("diagram line");
    let markdown = std::fs::read_to_string(&md).unwrap();
    let mermaid = markdown
        .split("```mermaid")
        .nth(1)
        .and_then(|m| m.split("```").next())
        .expect("a mermaid block");
    let arrows = mermaid.lines().filter(|l| l.contains("->>")).count();
    assert!(arrows >= 5, "{mermaid}");
    assert_eq!(diagram["arrows"], arrows, "{stdout}\n{mermaid}");
    assert!(stdout.contains(r#""kind":"pass""#), "{stdout}");
}
