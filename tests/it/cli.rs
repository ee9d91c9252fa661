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
