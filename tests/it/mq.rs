//! Several server processes through Redis, as Flask-SocketIO's `message_queue` makes them: two
//! `dispel serve` and a real Flask-SocketIO 5.7.0 worker on one real `redis-server`, with
//! python-socketio clients on each and `dispel emit` publishing from outside any server.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::oracle::{free_port, Flask};
use crate::util::{dispel, repo, Server};

/// A `redis-server` of the test's own, on a free port, without persistence.
pub struct Redis {
    child: Child,
    pub port: u16,
}

impl Redis {
    /// `None` (the test skips, saying so) when redis-server is not installed.
    pub fn start() -> Option<Redis> {
        Redis::start_on(free_port())
    }

    pub fn start_on(port: u16) -> Option<Redis> {
        let child = match Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(_) => {
                eprintln!("SKIP: redis-server is not installed (tests/setup.sh installs it)");
                return None;
            }
        };
        let r = Redis { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while r.command("PING").as_deref() != Some("+PONG\r\n") {
            assert!(
                Instant::now() < deadline,
                "redis-server never answered PING"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(r)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// One inline command; its raw answer.
    pub fn command(&self, line: &str) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(format!("{line}\r\n").as_bytes()).ok()?;
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// Publishes raw bytes on a channel (RESP, so any byte goes).
    pub fn publish(&self, channel: &str, payload: &[u8]) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut cmd = format!(
            "*3\r\n$7\r\nPUBLISH\r\n${}\r\n{channel}\r\n${}\r\n",
            channel.len(),
            payload.len()
        )
        .into_bytes();
        cmd.extend_from_slice(payload);
        cmd.extend_from_slice(b"\r\n");
        s.write_all(&cmd).unwrap();
        let mut buf = [0u8; 64];
        let _ = s.read(&mut buf);
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs one of the queue's client scripts (tests/clients/) with the Redis URL, dispel's binary
/// and the servers' URLs; its JSON result. Panics with its stderr if it fails.
fn clients(script: &str, redis_url: &str, servers: &[&str]) -> Value {
    let out = Command::new(repo().join("tests/.venv/bin/python"))
        .arg(repo().join("tests/clients").join(script))
        .arg(redis_url)
        .arg(env!("CARGO_BIN_EXE_dispel"))
        .args(servers)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn without_host_id(payload: &str) -> Value {
    let mut v: Value = serde_json::from_str(payload).unwrap();
    v["host_id"] = Value::Null;
    v["data"] = Value::Null;
    v
}

/// A bid made on any process reaches every client of every process exactly once, in order
/// per sender; `dispel emit` reaches everyone, or one sid wherever it is connected; and what
/// dispel publishes is what Flask-SocketIO publishes, byte for byte but the host and data.
#[test]
fn dispel_and_flask_socketio_processes_act_as_one_through_redis() {
    if !crate::util::have(&[crate::util::Need::Python]) {
        return;
    }
    let Some(redis) = Redis::start() else { return };
    let url = redis.url();
    let Some(flask) = Flask::start(&["--message-queue", &url]) else {
        return;
    };
    let a = Server::start(&["--message-queue", &url]);
    let b = Server::start(&["--message-queue", &url]);
    let flask_url = format!("http://{}", flask.addr);
    let result = clients("mq_clients.py", &url, &[&a.url, &b.url, &flask_url]);
    let bids = result["bids"].as_array().unwrap();
    for (i, got) in result["got"].as_array().unwrap().iter().enumerate() {
        let got = got.as_array().unwrap();
        let replaced: Vec<&Value> = got
            .iter()
            .filter(|e| e[0] == "replaced values")
            .map(|e| &e[1])
            .collect();
        // Exactly once each; client 0's three bids in the order it made them.
        assert_eq!(replaced.len(), bids.len(), "client {i}: {got:?}");
        for bid in bids {
            assert_eq!(
                replaced.iter().filter(|r| **r == bid).count(),
                1,
                "client {i}: {got:?}"
            );
        }
        let mine: Vec<&Value> = replaced
            .iter()
            .copied()
            .filter(|r| r["bidder"] == "c0")
            .collect();
        assert_eq!(mine, bids[..3].iter().collect::<Vec<_>>(), "client {i}");
        let notices: Vec<&Value> = got
            .iter()
            .filter(|e| e[0] == "notice")
            .map(|e| &e[1])
            .collect();
        // Everyone got the notice to everyone; only the last client (on Flask) its own.
        let expected: &[&str] = if i == 2 {
            &["everyone", "just you"]
        } else {
            &["everyone"]
        };
        assert_eq!(notices, expected, "client {i}");
    }
    // Byte for byte: dispel's broadcast message and Flask-SocketIO's, but for host and data.
    let published: Vec<&str> = result["published"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let by = |bidder: &str| {
        published
            .iter()
            .find(|p| p.contains(&format!("\"bidder\": \"{bidder}\"")))
            .copied()
            .unwrap_or_else(|| panic!("no message for {bidder}: {published:?}"))
    };
    let (from_dispel, from_flask) = (by("c0"), by("c2"));
    assert_eq!(without_host_id(from_dispel), without_host_id(from_flask));
    let keys = |p: &str| -> Vec<String> {
        serde_json::from_str::<serde_json::Map<String, Value>>(p)
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    assert_eq!(keys(from_dispel), keys(from_flask));
    assert!(from_dispel.starts_with("{\"method\": \"emit\", \"event\": \"replaced values\", \"data\": [{\"item\": \"lamp\", \"bid\": 1, \"bidder\": \"c0\"}], \"binary\": false"), "{from_dispel}");
    // dispel's trace: each hop, with the RESP bytes.
    let trace = a.stop();
    let publishes = trace.stage("mq.publish");
    assert_eq!(publishes.len(), 3, "{publishes:#?}");
    assert!(publishes[0]["fields"]["resp"]
        .as_str()
        .unwrap()
        .starts_with("*3\\r\\n$7\\r\\nPUBLISH\\r\\n$14\\r\\nflask-socketio\\r\\n"));
    let delivered: Vec<&Value> = trace
        .stage("mq.message")
        .into_iter()
        .filter(|m| m["fields"]["method"] == "emit" && m["fields"]["own"] == false)
        .collect();
    // Two bids from the other processes and the two notices (one reached nobody here).
    assert_eq!(delivered.len(), 4, "{delivered:#?}");
    assert!(delivered.iter().all(|m| m["fields"]["resp"]
        .as_str()
        .unwrap()
        .starts_with("*3\\r\\n$7\\r\\nmessage\\r\\n")));
    let reached: Vec<usize> = delivered
        .iter()
        .map(|m| m["fields"]["reached"].as_array().unwrap().len())
        .collect();
    assert_eq!(reached, [1, 1, 1, 0]);
    drop(b);
}

/// Faults: Redis down at start (refused, or served locally when asked), a foreign or
/// pickle-era message (an error event, never a crash), Redis lost and back (local clients go
/// on; the queue comes back).
#[test]
fn the_queue_survives_what_goes_wrong() {
    if !crate::util::have(&[crate::util::Need::Python]) {
        return;
    }
    let port = free_port();
    // Nothing listens there: dispel refuses to start, and says how to go on.
    let out = dispel()
        .args(["serve", "--port", "0", "--message-queue"])
        .arg(format!("redis://127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach Redis at redis://127.0.0.1:"),
        "{err}"
    );
    assert!(err.contains("--message-queue-optional"), "{err}");
    // A bad URL is an error too, not a panic.
    let out = dispel()
        .args(["emit", "--message-queue", "http://nope", "e", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // Optional: it serves, and joins Redis once it is there.
    let server = Server::start(&[
        "--message-queue",
        &format!("redis://127.0.0.1:{port}"),
        "--message-queue-optional",
    ]);
    let Some(redis) = Redis::start_on(port) else {
        return;
    };
    let subscribed = || {
        redis
            .command("PUBSUB NUMSUB flask-socketio")
            .is_some_and(|a| a.ends_with(":1\r\n"))
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while !subscribed() {
        assert!(Instant::now() < deadline, "dispel never subscribed");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Foreign, malformed and pickle-era messages.
    redis.publish("flask-socketio", b"hello");
    redis.publish("flask-socketio", b"\x80\x04\x95\x10\x00");
    redis.publish("flask-socketio", br#"{"method": "emit", "event": "e", "data": [[{"_placeholder": true, "num": 5}]], "binary": true, "host_id": "x"}"#);
    // Killing Redis while dispel has not read them yet would lose them (a reset discards
    // unread bytes); nothing observable says dispel has, so give it a moment.
    std::thread::sleep(Duration::from_millis(500));
    // Redis lost: local clients keep working.
    drop(redis);
    crate::util::py_client(&server.url, "bid", "websocket");
    // Redis back on the same port: the queue returns, a message flows again.
    let Some(redis) = Redis::start_on(port) else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !redis
        .command("PUBSUB NUMSUB flask-socketio")
        .is_some_and(|a| a.ends_with(":1\r\n"))
    {
        assert!(Instant::now() < deadline, "dispel never came back to Redis");
        std::thread::sleep(Duration::from_millis(100));
    }
    redis.publish(
        "flask-socketio",
        br#"{"method": "emit", "event": "e", "data": [1], "namespace": "/", "host_id": "other"}"#,
    );
    server.wait_for("the message after Redis came back", |t| {
        t.stage("mq.message")
            .iter()
            .any(|m| m["fields"]["host_id"] == "other")
    });
    let trace = server.stop();
    let errors = trace.errors();
    let said = |needle: &str| errors.iter().any(|e| e.contains(needle));
    assert!(said("not JSON"), "{errors:#?}");
    assert!(said("a Python pickle"), "{errors:#?}");
    assert!(said("placeholder names no attachment"), "{errors:#?}");
    assert!(said("lost the connection to Redis"), "{errors:#?}");
    // The bid while Redis was down: delivered locally, and said not to be published.
    assert!(!trace.stage("sio.broadcast").is_empty());
    assert!(said("not published"), "{errors:#?}");
    // After it came back: subscribed again, and the message arrived.
    assert!(trace
        .stage("mq.message")
        .iter()
        .any(|m| m["fields"]["host_id"] == "other"));
}

/// A capture that holds the Redis traffic too (traces/mq/README.md): replay shows the same
/// hops as serve does live, and ties each message to the frames another process sent for it.
#[test]
fn a_capture_with_the_redis_traffic_shows_each_hop() {
    let trace = crate::replay::replay_jsonl(&repo().join("traces/mq/two_processes.pcap"), &[]);
    let publishes = trace.stage("mq.publish");
    // Three bids on dispel, one on Flask-SocketIO, two notices from dispel emit.
    assert_eq!(publishes.len(), 6, "{publishes:#?}");
    assert!(publishes.iter().all(|p| p["fields"]["resp"]
        .as_str()
        .unwrap()
        .starts_with("*3\\r\\n$7\\r\\nPUBLISH\\r\\n")));
    let messages = trace.stage("mq.message");
    let subscribes = messages
        .iter()
        .filter(|m| m["fields"]["method"] == "subscribe")
        .count();
    // dispel, the Flask-SocketIO worker, and the client script's own subscriber.
    assert_eq!(subscribes, 3);
    let pushed = messages
        .iter()
        .filter(|m| m["dir"] == "s2c" && m["fields"]["method"] == "emit")
        .count();
    assert_eq!(pushed, 6 * 3, "each message pushed to each subscriber");
    let delivered: Vec<Vec<u64>> = messages
        .iter()
        .filter(|m| m["fields"]["inferred"] == true)
        .map(|m| {
            m["fields"]["reached"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_u64().unwrap())
                .collect()
        })
        .collect();
    // dispel's clients are on #4, Flask-SocketIO's on #5: each bid reaches the other
    // process's client; the notice to everyone both; the notice to one sid its client.
    assert_eq!(
        delivered,
        [vec![5], vec![5], vec![5], vec![4], vec![4, 5], vec![5]],
        "{messages:#?}"
    );
    assert!(trace.errors().iter().all(|e| !e.contains("RESP")));
}

/// What a Flask-SocketIO worker does to a client of another process goes through the queue:
/// a room it puts dispel's client in (and takes it out of, and closes), an emit that skips it,
/// a question with a callback (the answer comes back over the queue), and a disconnect.
#[test]
fn a_flask_socketio_worker_reaches_a_dispel_client_through_the_queue() {
    let Some(redis) = Redis::start() else { return };
    let url = redis.url();
    let Some(flask) = Flask::start(&["--message-queue", &url]) else {
        return;
    };
    let server = Server::start(&["--message-queue", &url]);
    let flask_url = format!("http://{}", flask.addr);
    let result = clients("mq_rooms.py", &url, &[&server.url, &flask_url]);
    assert_eq!(
        result["seen"]["d"],
        serde_json::json!(["vip only"]),
        "{result}"
    );
    assert_eq!(
        result["seen"]["f"],
        serde_json::json!(["skipping you"]),
        "{result}"
    );
    assert_eq!(
        result["answers"],
        serde_json::json!([["forty-two"]]),
        "{result}"
    );
    assert_eq!(result["disconnected"], true);
    let trace = server.stop();
    let methods: Vec<&str> = trace
        .stage("mq.message")
        .iter()
        .filter(|m| m["fields"]["own"] == false)
        .filter_map(|m| m["fields"]["method"].as_str())
        .collect();
    for m in [
        "enter_room",
        "leave_room",
        "close_room",
        "emit",
        "disconnect",
    ] {
        assert!(methods.contains(&m), "{m} missing: {methods:?}");
    }
    let callbacks: Vec<&Value> = trace
        .stage("mq.publish")
        .into_iter()
        .filter(|p| p["fields"]["method"] == "callback")
        .collect();
    assert_eq!(callbacks.len(), 1, "{callbacks:#?}");
}

/// `dispel watch` of a Flask-SocketIO worker on the queue: what the app's manager publishes
/// (with the chain from the app's call) and what its listener does with another process's
/// messages (and which of its clients that reached), beside a `dispel serve` on the same Redis.
#[test]
fn a_watched_worker_shows_its_queue_hops() {
    let Some(redis) = Redis::start() else { return };
    let url = redis.url();
    let Some(w) = crate::util::Watched::start(&[], &["--message-queue", &url]) else {
        return;
    };
    let other = Server::start(&["--message-queue", &url]);
    clients("mq_clients.py", &url, &[&w.url, &other.url]);
    let (_, trace) = w.stop();
    // Client 0, on the watched app, bid three times: three publishes, each with the chain
    // from the app's handler to PubSubManager.emit, which publishes.
    let publishes = trace.stage("mq.publish");
    assert_eq!(publishes.len(), 3, "{publishes:#?}");
    for p in &publishes {
        assert_eq!(p["fields"]["event"], "replaced values");
        let frames = p["fields"]["observed"].as_array().expect("observed chain");
        let has = |name: &str| frames.iter().any(|f| f["function"].as_str() == Some(name));
        assert!(has("handle_new_value") && has("PubSubManager.emit"), "{p}");
    }
    // The other process's bid and the two notices arrived through the listener: the bid
    // and the notice to everyone reached the watched app's client, the one to a sid of the
    // other process reached nobody here.
    let messages: Vec<&Value> = trace
        .stage("mq.message")
        .into_iter()
        .filter(|m| m["fields"]["method"] == "emit")
        .collect();
    assert_eq!(messages.len(), 3, "{messages:#?}");
    let reached: Vec<usize> = messages
        .iter()
        .map(|m| m["fields"]["reached"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(reached, [1, 1, 0], "{messages:#?}");
    drop(other);
}
