//! A Redis connection in a capture, as the message queue uses it: RESP both ways
//! (`wire::resp`), the PUBLISH and SUBSCRIBE commands of the servers and the `message` pushes
//! Redis sends them, as `mq.publish` and `mq.message` events; and the tie between a message
//! and the Socket.IO frames another process then sent for it (inferred).

use std::collections::VecDeque;

use serde_json::Value;

use crate::mq::{self, Method};
use crate::stage::Kind;
use crate::trace::{Dir, Event, Stage};
use crate::wire::resp;

/// The most bytes of one RESP value held while it is incomplete.
const MAX_PENDING: usize = 64 * 1024 * 1024;
/// How long after a message arrives the frames it caused may still go out.
const DELIVERY_WINDOW: f64 = 0.2;

/// RESP with its CR and LF written out, for the `resp` field.
pub fn resp_text(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 16);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\r' => s.push_str("\\r"),
                '\n' => s.push_str("\\n"),
                c => s.push(c),
            }
        }
        for b in chunk.invalid() {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s
}

/// The event of one message-queue payload: `mq.publish` (a PUBLISH by a server) or
/// `mq.message` (a push from Redis), or an `error` when it is no python-socketio message.
pub fn payload_event(
    stage: Stage,
    t: f64,
    conn: Option<u64>,
    dir: Option<Dir>,
    channel: &str,
    payload: &[u8],
    raw: &[u8],
) -> Event {
    let m = match mq::parse(payload) {
        Ok(m) => m,
        Err(e) => return foreign_payload(stage, t, conn, dir, channel, payload, &e),
    };
    let verb = if stage == Stage::MqPublish {
        "PUBLISH"
    } else {
        "message on"
    };
    message_event(
        stage,
        t,
        conn,
        dir,
        channel,
        &m,
        raw,
        format!("{verb} {channel}: {}", m.summary()),
    )
}

/// The `error` for a payload on the channel that is no python-socketio message.
pub fn foreign_payload(
    stage: Stage,
    t: f64,
    conn: Option<u64>,
    dir: Option<Dir>,
    channel: &str,
    payload: &[u8],
    e: &mq::ParseError,
) -> Event {
    let shown = String::from_utf8_lossy(&payload[..payload.len().min(80)]).into_owned();
    Event::new(
        Stage::Error,
        t,
        conn,
        dir,
        format!("a message on {channel} was ignored: {e}"),
    )
    .with(
        "rule",
        "python-socketio message-queue messages are JSON objects with a method",
    )
    .with("where", stage.as_str())
    .with("payload", shown)
    .with("pickle", *e == mq::ParseError::Pickle)
}

/// The `mq.*` event of a python-socketio message, with `summary`: its fields, the message
/// and the RESP bytes it travelled in. Replay and the live queue both write it.
#[allow(clippy::too_many_arguments)]
pub fn message_event(
    stage: Stage,
    t: f64,
    conn: Option<u64>,
    dir: Option<Dir>,
    channel: &str,
    m: &mq::Message,
    raw: &[u8],
    summary: String,
) -> Event {
    let mut e = Event::new(stage, t, conn, dir, summary)
        .with("channel", channel)
        .with("method", m.method.as_str())
        .with("message", Value::Object(m.fields().clone()))
        .with("resp", resp_text(raw));
    e.kind = match m.method {
        Method::Emit => Some(Kind::Emit),
        Method::Callback => Some(Kind::Callback),
        _ => None,
    };
    for k in ["event", "namespace", "room", "skip_sid", "host_id"] {
        if let Some(v) = m.fields().get(k) {
            e = e.with(k, v.clone());
        }
    }
    e
}

/// One Redis connection of a capture.
pub struct RedisConn {
    conn: u64,
    bufs: [Vec<u8>; 2],
    broken: [bool; 2],
}

impl RedisConn {
    pub fn new(conn: u64) -> RedisConn {
        RedisConn {
            conn,
            bufs: [Vec::new(), Vec::new()],
            broken: [false, false],
        }
    }

    /// Bytes of one direction, in order.
    pub fn data(&mut self, dir: Dir, t: f64, bytes: &[u8], out: &mut Vec<Event>) {
        let i = dir.index();
        if self.broken[i] {
            return;
        }
        self.bufs[i].extend_from_slice(bytes);
        let mut used = 0;
        loop {
            match resp::decode(&self.bufs[i][used..]) {
                Ok(Some((v, n))) => {
                    let raw = &self.bufs[i][used..used + n];
                    if let Some(e) = self.value(dir, t, &v, raw) {
                        out.push(e);
                    }
                    used += n;
                }
                Ok(None) => break,
                Err(err) => {
                    out.push(
                        Event::new(
                            Stage::Error,
                            t,
                            Some(self.conn),
                            Some(dir),
                            format!("Redis connection: {err}; the rest of this direction is not decoded"),
                        )
                        .with("rule", "RESP (the Redis serialization protocol)")
                        .with("where", "mq.message"),
                    );
                    self.broken[i] = true;
                    self.bufs[i] = Vec::new();
                    return;
                }
            }
        }
        self.bufs[i].drain(..used);
        if self.bufs[i].len() > MAX_PENDING {
            out.push(
                Event::new(
                    Stage::Error,
                    t,
                    Some(self.conn),
                    Some(dir),
                    format!(
                        "Redis connection: a value longer than {MAX_PENDING} bytes; the rest of this direction is not decoded"
                    ),
                )
                .with("rule", "RESP bulk strings are at most 512 MB")
                .with("where", "mq.message"),
            );
            self.broken[i] = true;
            self.bufs[i] = Vec::new();
        }
    }

    fn value(&self, dir: Dir, t: f64, v: &resp::Value, raw: &[u8]) -> Option<Event> {
        let items = v.items()?;
        let word = |k: usize| items.get(k).and_then(resp::Value::bytes);
        let name = String::from_utf8_lossy(word(0)?).to_ascii_lowercase();
        let channel = word(1).map(|c| String::from_utf8_lossy(c).into_owned());
        match (dir, name.as_str(), channel, word(2)) {
            (Dir::C2S, "publish", Some(channel), Some(payload)) => Some(payload_event(
                Stage::MqPublish,
                t,
                Some(self.conn),
                Some(dir),
                &channel,
                payload,
                raw,
            )),
            (Dir::S2C, "message", Some(channel), Some(payload)) => Some(payload_event(
                Stage::MqMessage,
                t,
                Some(self.conn),
                Some(dir),
                &channel,
                payload,
                raw,
            )),
            (Dir::C2S, "subscribe", Some(channel), _) => Some(
                Event::new(
                    Stage::MqMessage,
                    t,
                    Some(self.conn),
                    Some(dir),
                    format!("SUBSCRIBE {channel}: a server listens for the others' messages"),
                )
                .with("channel", channel)
                .with("method", "subscribe")
                .with("resp", resp_text(raw))
                .kind(Kind::Subscribe),
            ),
            _ => None,
        }
    }
}

/// A message's emit, waiting for the Socket.IO frames it causes.
struct Pending {
    t: f64,
    event: String,
    args: Vec<Value>,
    host: String,
    via: Vec<u64>,
    reached: Vec<u64>,
}

/// Ties an emit that arrived through the queue to the EVENT frames that then went out on
/// Socket.IO connections with the same event and arguments, within [`DELIVERY_WINDOW`].
#[derive(Default)]
pub struct Deliveries {
    pending: VecDeque<Pending>,
}

impl Deliveries {
    /// Sees every event, in order; writes the inferred deliveries whose window has passed.
    pub fn push(&mut self, e: &Event, out: &mut Vec<Event>) {
        while self
            .pending
            .front()
            .is_some_and(|p| e.t - p.t > DELIVERY_WINDOW)
        {
            if let Some(p) = self.pending.pop_front() {
                out.push(Self::event(p));
            }
        }
        match (e.stage, e.dir) {
            (Stage::MqMessage, Some(Dir::S2C)) if e.kind == Some(Kind::Emit) => {
                let Some(Value::Object(m)) = e.fields.get("message") else {
                    return;
                };
                let Ok(msg) = mq::parse(Value::Object(m.clone()).to_string().as_bytes()) else {
                    return;
                };
                let Ok((args, _)) = msg.emit_args() else {
                    return;
                };
                let event = msg.event().unwrap_or_default().to_string();
                let host = msg.host_id().unwrap_or_default().to_string();
                let conn = e.conn.unwrap_or(0);
                // The same message pushed to every subscriber: one pending delivery.
                if let Some(p) = self
                    .pending
                    .iter_mut()
                    .find(|p| p.event == event && p.args == args && p.host == host)
                {
                    p.via.push(conn);
                    return;
                }
                if self.pending.len() < 1000 {
                    self.pending.push_back(Pending {
                        t: e.t,
                        event,
                        args,
                        host,
                        via: vec![conn],
                        reached: Vec::new(),
                    });
                }
            }
            (Stage::SioPacket, Some(Dir::S2C)) => {
                let Some(conn) = e.conn else { return };
                if self.pending.is_empty() {
                    return;
                }
                let Some(text) = e.fields.json_text("data") else {
                    return;
                };
                let Ok(Value::Array(data)) = serde_json::from_str::<Value>(&text) else {
                    return;
                };
                let Some((Value::String(name), args)) = data.split_first() else {
                    return;
                };
                if let Some(p) = self
                    .pending
                    .iter_mut()
                    .find(|p| &p.event == name && p.args == args && !p.reached.contains(&conn))
                {
                    p.reached.push(conn);
                }
            }
            _ => {}
        }
    }

    /// The end of the capture.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        while let Some(p) = self.pending.pop_front() {
            out.push(Self::event(p));
        }
    }

    fn event(p: Pending) -> Event {
        let conns: Vec<String> = p.reached.iter().map(|c| format!("#{c}")).collect();
        let host = &p.host[..p.host.len().min(8)];
        let summary = if p.reached.is_empty() {
            format!("emit {:?} from host {host} reached no Socket.IO connection in this capture (inferred: no EVENT with its arguments within {} ms)", p.event, DELIVERY_WINDOW * 1000.0)
        } else {
            format!("emit {:?} from host {host} reached {} connection(s) {} (inferred: the same EVENT went out on them within {} ms of the message)", p.event, p.reached.len(), conns.join(" "), DELIVERY_WINDOW * 1000.0)
        };
        Event::new(Stage::MqMessage, p.t, None, None, summary)
            .with("event", p.event)
            .with("host_id", p.host)
            .with("via", p.via)
            .with("reached", p.reached)
            .with("inferred", true)
            .kind(Kind::Delivered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(payload: &str) -> Vec<u8> {
        resp::encode_command(&["PUBLISH", "flask-socketio", payload])
    }

    #[test]
    fn commands_and_pushes_in_any_split() {
        let payload = r#"{"method": "emit", "event": "e", "data": [1], "namespace": "/", "room": null, "skip_sid": null, "callback": null, "host_id": "abcdef0123"}"#;
        let c2s = [
            resp::encode_command(&["SUBSCRIBE", "flask-socketio"]),
            publish(payload),
        ]
        .concat();
        let s2c = resp::encode_command(&["message", "flask-socketio", payload]);
        for cut in [1, 7, c2s.len() - 1] {
            let mut r = RedisConn::new(3);
            let mut out = Vec::new();
            r.data(Dir::C2S, 0.0, &c2s[..cut], &mut out);
            r.data(Dir::C2S, 0.1, &c2s[cut..], &mut out);
            r.data(Dir::S2C, 0.2, &s2c, &mut out);
            let stages: Vec<(Stage, Option<Kind>)> =
                out.iter().map(|e| (e.stage, e.kind)).collect();
            assert_eq!(
                stages,
                [
                    (Stage::MqMessage, Some(Kind::Subscribe)),
                    (Stage::MqPublish, Some(Kind::Emit)),
                    (Stage::MqMessage, Some(Kind::Emit)),
                ],
                "cut {cut}"
            );
            assert_eq!(
                out[1].summary,
                r#"PUBLISH flask-socketio: emit "e" to / (everyone) from host abcdef01"#
            );
        }
    }

    #[test]
    fn bad_bytes_and_foreign_payloads_are_errors_not_panics() {
        let mut r = RedisConn::new(1);
        let mut out = Vec::new();
        r.data(Dir::C2S, 0.0, &publish("\u{80}not json"), &mut out);
        r.data(Dir::S2C, 0.0, b"?garbage\r\n", &mut out);
        r.data(Dir::S2C, 0.0, b"+more\r\n", &mut out);
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(out.iter().all(|e| e.stage == Stage::Error));
        assert!(out[1].summary.contains("starts no RESP value"));
    }

    #[test]
    fn a_message_is_tied_to_the_frames_it_caused() {
        let payload = r#"{"method": "emit", "event": "e", "data": [{"a": 1}], "host_id": "h"}"#;
        let mut r = RedisConn::new(9);
        let mut events = Vec::new();
        let push = resp::encode_command(&["message", "c", payload]);
        r.data(Dir::S2C, 1.0, &push, &mut events);
        let mut frame = Event::new(
            Stage::SioPacket,
            1.05,
            Some(4),
            Some(Dir::S2C),
            "EVENT".into(),
        );
        frame.fields.insert_raw(
            "data",
            serde_json::value::RawValue::from_string(r#"["e",{"a":1}]"#.into()).unwrap(),
        );
        events.push(frame);
        events.push(Event::new(
            Stage::TcpClose,
            2.0,
            Some(4),
            None,
            "later".into(),
        ));
        let mut d = Deliveries::default();
        let mut out = Vec::new();
        for e in &events {
            d.push(e, &mut out);
        }
        d.finish(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].fields.get("reached"), Some(&serde_json::json!([4])));
        assert_eq!(out[0].fields.get("inferred"), Some(&Value::Bool(true)));
    }
}
