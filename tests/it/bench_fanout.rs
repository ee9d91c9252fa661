use serde_json::Value;

use crate::util::{dispel, Server};

#[test]
fn fanout_generator_sees_every_broadcast() {
    let server = Server::start(&["--no-trace"]);
    let out = dispel()
        .args(["bench", "fanout", "--url", &server.url])
        .args(["--clients", "20", "--bids", "50", "--mode", "ack", "--json"])
        .output()
        .expect("run dispel bench fanout");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench fanout failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(r["bids"], 50);
    assert_eq!(r["expected"], 20 * 50);
    assert_eq!(r["delivered"], 20 * 50);
    assert_eq!(r["lost"], 0);
    assert_eq!(r["duplicates"], 0);
    assert_eq!(r["errors"], 0);
    assert!(r["latency_ms"]["p99"].as_f64().is_some_and(|v| v > 0.0));
}
