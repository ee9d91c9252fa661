//! Command-line behaviour.

use crate::util::dispel;

#[test]
fn help_shows_examples() {
    let out = dispel().arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains("Examples:") && text.contains("dispel serve"),
        "{text}"
    );
    let out = dispel().args(["serve", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("--host 0.0.0.0") && text.contains("127.0.0.1"),
        "{text}"
    );
}

#[test]
fn bad_arguments_exit_2_with_a_message() {
    let out = dispel()
        .args(["serve", "--stage", "nope.*"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("matches no stage"));
    let out = dispel()
        .args(["serve", "--port", "notaport"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let plain = dispel().args(["links", "ws.handshake"]).output().unwrap();
    assert!(plain.status.success());
    assert!(!plain.stdout.contains(&0x1b), "no ANSI when not a terminal");
    let forced = dispel()
        .args(["links", "ws.handshake", "--color", "always"])
        .output()
        .unwrap();
    assert!(forced.stdout.contains(&0x1b));
    let no_color = dispel()
        .args(["links", "ws.handshake", "--color", "auto"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!no_color.stdout.contains(&0x1b));
}

/// A step of some releases only: the built-in links keep python-engineio 4.13's close (a 200
/// written after the WebSocket); linked to the installed 4.15, the close follows its own
/// path (the wrapper raises ConnectionError) and not the other.
#[test]
fn links_follow_the_path_of_the_installed_release() {
    let ids = |extra: &[&str]| -> Vec<String> {
        let out = dispel()
            .args(["links", "tcp.close:websocket", "--format", "json"])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v[0]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["step_id"].as_str().unwrap().to_string())
            .collect()
    };
    let builtin = ids(&[]);
    assert!(
        builtin.contains(&"disconnect.15".to_string()),
        "{builtin:?}"
    );
    assert!(
        !builtin.contains(&"disconnect.39".to_string()),
        "{builtin:?}"
    );
    let python = crate::util::repo().join("tests/.venv/bin/python");
    if !crate::util::have(&[crate::util::Need::Python]) {
        return;
    }
    let installed = ids(&["--python", python.to_str().unwrap()]);
    assert!(
        installed.contains(&"disconnect.39".to_string()),
        "{installed:?}"
    );
    assert!(
        !installed.contains(&"disconnect.15".to_string()),
        "{installed:?}"
    );
}
