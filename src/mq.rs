//! The messages python-socketio's message-queue managers (`PubSubManager`, and `RedisManager`
//! under Flask-SocketIO's `message_queue="redis://..."`) publish on their channel, so that
//! several server processes act as one.
//!
//! Since python-socketio 5.14 a message is a JSON object written by Python's `json.dumps`
//! (default separators), with a `method` and the `host_id` of the process that sent it:
//!
//! ```text
//! {"method": "emit", "event": "replaced values", "data": [{"item": "lamp"}], "binary": false,
//!  "namespace": "/", "room": null, "skip_sid": null, "callback": null, "host_id": "9f0c..."}
//! ```
//!
//! `disconnect` (`sid`, `namespace`), `enter_room` / `leave_room` (`sid`, `room`, `namespace`),
//! `close_room` (`room`, `namespace`) and `callback` (`sid`, `namespace`, `id`, `args`: an
//! acknowledgement on its way back to the process that asked for it) have the same shape.
//! Before 5.14 the messages were pickles, which this module recognises and refuses by name.
//!
//! Sans-IO: bytes in, values out; the Redis connection lives in `live::mq`.

use std::fmt;

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::wire::pyjson;
use crate::wire::socketio;

/// Flask-SocketIO's channel when `channel=` is not given (python-socketio's own default is
/// `socketio`).
pub const DEFAULT_CHANNEL: &str = "flask-socketio";

/// What a message asks the other processes to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Emit,
    Disconnect,
    EnterRoom,
    LeaveRoom,
    CloseRoom,
    Callback,
    /// A method python-socketio does not know; its listener ignores it.
    Other(String),
}

impl Method {
    pub fn parse(s: &str) -> Method {
        match s {
            "emit" => Method::Emit,
            "disconnect" => Method::Disconnect,
            "enter_room" => Method::EnterRoom,
            "leave_room" => Method::LeaveRoom,
            "close_room" => Method::CloseRoom,
            "callback" => Method::Callback,
            other => Method::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Emit => "emit",
            Method::Disconnect => "disconnect",
            Method::EnterRoom => "enter_room",
            Method::LeaveRoom => "leave_room",
            Method::CloseRoom => "close_room",
            Method::Callback => "callback",
            Method::Other(s) => s,
        }
    }
}

/// One message on the channel: its method and every field as sent, in the sender's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub method: Method,
    fields: Map<String, Value>,
}

/// Why a payload on the channel is not a message python-socketio would act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// A Python pickle (protocol 2 or later starts with 0x80): a python-socketio older than
    /// 5.14, whose messages newer ones can no longer read.
    Pickle,
    /// Not JSON at all.
    NotJson(String),
    /// JSON, but not an object with a string `method`.
    NoMethod,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Pickle => f.write_str(
                "a Python pickle: a peer running python-socketio older than 5.14, which pickled its messages (5.14 moved to JSON after a remote-code-execution report); upgrade it",
            ),
            ParseError::NotJson(e) => write!(f, "not JSON ({e}): not a python-socketio message"),
            ParseError::NoMethod => {
                f.write_str("JSON without a \"method\": not a python-socketio message")
            }
        }
    }
}

/// Reads a payload from the channel.
pub fn parse(payload: &[u8]) -> Result<Message, ParseError> {
    if payload.first() == Some(&0x80) {
        return Err(ParseError::Pickle);
    }
    let value: Value =
        serde_json::from_slice(payload).map_err(|e| ParseError::NotJson(e.to_string()))?;
    let Value::Object(fields) = value else {
        return Err(ParseError::NoMethod);
    };
    let method = match fields.get("method") {
        Some(Value::String(m)) => Method::parse(m),
        _ => return Err(ParseError::NoMethod),
    };
    Ok(Message { method, fields })
}

/// A fresh `host_id`: 32 lower-case hex digits, as `uuid.uuid4().hex` gives.
pub fn new_host_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // No OS randomness: the clock and the process id still tell processes apart.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        b = (t ^ (u128::from(std::process::id()) << 64)).to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    crate::wire::hex(&b)
}

fn opt(s: Option<&str>) -> Value {
    s.map_or(Value::Null, |s| Value::String(s.to_string()))
}

impl Message {
    /// What `PubSubManager.emit` publishes: the arguments as a list; with binary attachments,
    /// `[arguments with placeholders, base64 of each attachment...]` and `binary: true`.
    pub fn emit(
        event: &str,
        args: &[Value],
        attachments: &[Vec<u8>],
        namespace: &str,
        room: Option<&str>,
        skip_sid: Option<&str>,
        host_id: &str,
    ) -> Message {
        let binary = !attachments.is_empty();
        let data = if binary {
            let mut d = vec![Value::Array(args.to_vec())];
            d.extend(
                attachments
                    .iter()
                    .map(|a| Value::String(base64::engine::general_purpose::STANDARD.encode(a))),
            );
            d
        } else {
            args.to_vec()
        };
        let mut f = Map::new();
        f.insert("method".into(), "emit".into());
        f.insert("event".into(), event.into());
        f.insert("data".into(), Value::Array(data));
        f.insert("binary".into(), binary.into());
        f.insert("namespace".into(), namespace.into());
        f.insert("room".into(), opt(room));
        f.insert("skip_sid".into(), opt(skip_sid));
        f.insert("callback".into(), Value::Null);
        f.insert("host_id".into(), host_id.into());
        Message {
            method: Method::Emit,
            fields: f,
        }
    }

    /// What `_return_callback` publishes when a client answered the ack of an emit another
    /// process made: the answer goes to that process (`host_id`), which calls its callback.
    pub fn callback(
        host_id: &str,
        room: &str,
        namespace: &str,
        id: u64,
        args: &[Value],
    ) -> Message {
        let mut f = Map::new();
        f.insert("method".into(), "callback".into());
        f.insert("host_id".into(), host_id.into());
        f.insert("sid".into(), room.into());
        f.insert("namespace".into(), namespace.into());
        f.insert("id".into(), id.into());
        f.insert("args".into(), Value::Array(args.to_vec()));
        Message {
            method: Method::Callback,
            fields: f,
        }
    }

    /// The payload, as python-socketio writes it (`json.dumps`, default separators).
    pub fn encode(&self) -> String {
        pyjson::dumps_spaced(&Value::Object(self.fields.clone()))
    }

    fn str_field(&self, k: &str) -> Option<&str> {
        self.fields.get(k).and_then(Value::as_str)
    }

    pub fn host_id(&self) -> Option<&str> {
        self.str_field("host_id")
    }

    pub fn event(&self) -> Option<&str> {
        self.str_field("event")
    }

    /// The namespace (`/` when absent, as the listener assumes).
    pub fn namespace(&self) -> &str {
        self.str_field("namespace").unwrap_or("/")
    }

    pub fn room(&self) -> Option<&str> {
        self.str_field("room")
    }

    pub fn sid(&self) -> Option<&str> {
        self.str_field("sid")
    }

    /// `skip_sid`: one sid, a list of them, or none.
    pub fn skip_sids(&self) -> Vec<String> {
        match self.fields.get("skip_sid") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(v)) => v
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// `callback`: `[room, namespace, id]` when the emit asks its recipient for an ack.
    pub fn ack_request(&self) -> Option<(String, String, u64)> {
        let v = self.fields.get("callback")?.as_array()?;
        match v.as_slice() {
            [room, nsp, id] => Some((
                room.as_str()?.to_string(),
                nsp.as_str()?.to_string(),
                id.as_u64()?,
            )),
            _ => None,
        }
    }

    /// An emit's arguments and binary attachments, as `_handle_emit` rebuilds them. Errors
    /// name what is wrong with a malformed message.
    pub fn emit_args(&self) -> Result<(Vec<Value>, Vec<Vec<u8>>), String> {
        let data = match self.fields.get("data") {
            Some(Value::Array(d)) => d.clone(),
            Some(other) => vec![other.clone()],
            None => return Err("an emit without \"data\"".into()),
        };
        if self.fields.get("binary").and_then(Value::as_bool) != Some(true) {
            return Ok((data, Vec::new()));
        }
        let mut it = data.into_iter();
        let args = match it.next() {
            Some(Value::Array(a)) => a,
            Some(other) => vec![other],
            None => return Err("a binary emit without its arguments".into()),
        };
        let mut attachments = Vec::new();
        for a in it {
            let text = a
                .as_str()
                .ok_or("a binary attachment that is not a base64 string")?;
            attachments.push(
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|e| format!("a binary attachment that is not base64: {e}"))?,
            );
        }
        // Every placeholder must name an attachment.
        let mut ok = true;
        let mut check = Value::Array(args.clone());
        socketio::fill_placeholders(&mut check, &mut |i| {
            ok &= i < attachments.len();
            Value::Null
        });
        if !ok {
            return Err("a placeholder names no attachment".into());
        }
        Ok((args, attachments))
    }

    /// One line for the trace: `emit "replaced values" to / (everyone) from host 9f0c…`.
    pub fn summary(&self) -> String {
        let host = self
            .host_id()
            .map(|h| format!(" from host {}", &h[..h.len().min(8)]))
            .unwrap_or_default();
        let ns = self.namespace();
        let to = match self.room() {
            Some(r) => format!("room {r:?}"),
            None => "everyone".into(),
        };
        let skip = match self.skip_sids().as_slice() {
            [] => String::new(),
            s => format!(", skipping {}", s.join(" ")),
        };
        match &self.method {
            Method::Emit => format!(
                "emit {:?} to {ns} ({to}{skip}){host}",
                self.event().unwrap_or("?")
            ),
            Method::Disconnect => {
                format!("disconnect {} from {ns}{host}", self.sid().unwrap_or("?"))
            }
            Method::EnterRoom | Method::LeaveRoom => format!(
                "{} {} {:?} in {ns}{host}",
                self.method.as_str(),
                self.sid().unwrap_or("?"),
                self.room().unwrap_or("?")
            ),
            Method::CloseRoom => format!("close_room {to} in {ns}{host}"),
            Method::Callback => format!(
                "callback (an ack) for {} in {ns}, to host {}",
                self.sid().unwrap_or("?"),
                self.host_id().unwrap_or("?")
            ),
            Method::Other(m) => format!("{m:?} (a method python-socketio ignores){host}"),
        }
    }

    /// The fields, for the trace.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::socketio::placeholder;
    use serde_json::json;

    #[test]
    fn an_emit_is_written_as_python_socketio_writes_it() {
        let m = Message::emit(
            "replaced values",
            &[json!({"item": "lamp", "bid": 12})],
            &[],
            "/",
            None,
            None,
            "0123456789abcdef0123456789abcdef",
        );
        assert_eq!(
            m.encode(),
            r#"{"method": "emit", "event": "replaced values", "data": [{"item": "lamp", "bid": 12}], "binary": false, "namespace": "/", "room": null, "skip_sid": null, "callback": null, "host_id": "0123456789abcdef0123456789abcdef"}"#
        );
        let back = parse(m.encode().as_bytes()).unwrap();
        assert_eq!(back, m);
        assert_eq!(
            back.emit_args().unwrap().0,
            vec![json!({"item": "lamp", "bid": 12})]
        );
    }

    #[test]
    fn binary_attachments_travel_as_base64() {
        let m = Message::emit(
            "up",
            &[placeholder(0)],
            &[vec![1, 2, 3]],
            "/",
            Some("r"),
            Some("s"),
            "h",
        );
        assert!(
            m.encode().contains(
                r#""data": [[{"_placeholder": true, "num": 0}], "AQID"], "binary": true"#
            ),
            "{}",
            m.encode()
        );
        let (args, atts) = parse(m.encode().as_bytes()).unwrap().emit_args().unwrap();
        assert_eq!((args, atts), (vec![placeholder(0)], vec![vec![1, 2, 3]]));
        assert_eq!(m.skip_sids(), ["s"]);
        assert_eq!(m.room(), Some("r"));
    }

    #[test]
    fn foreign_and_old_messages_are_named() {
        assert_eq!(parse(b"\x80\x04\x95..."), Err(ParseError::Pickle));
        assert!(matches!(parse(b"hello"), Err(ParseError::NotJson(_))));
        assert_eq!(parse(b"[1]"), Err(ParseError::NoMethod));
        assert_eq!(parse(br#"{"method": 1}"#), Err(ParseError::NoMethod));
        let m = parse(br#"{"method": "teleport", "host_id": "x"}"#).unwrap();
        assert_eq!(m.method, Method::Other("teleport".into()));
        let bad = parse(br#"{"method": "emit", "event": "e", "data": [[{"_placeholder": true, "num": 3}]], "binary": true}"#).unwrap();
        assert!(bad.emit_args().is_err());
        for e in [ParseError::Pickle, ParseError::NoMethod] {
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn host_ids_look_like_uuid4_hex() {
        let (a, b) = (new_host_id(), new_host_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert_eq!(&a[12..13], "4");
    }

    #[test]
    fn summaries() {
        let m = parse(br#"{"method": "enter_room", "sid": "abc", "room": "r1", "namespace": "/chat", "host_id": "0123456789"}"#).unwrap();
        assert_eq!(
            m.summary(),
            r#"enter_room abc "r1" in /chat from host 01234567"#
        );
        let m = Message::emit("e", &[], &[], "/", Some("sid1"), None, "h");
        assert_eq!(m.summary(), r#"emit "e" to / (room "sid1") from host h"#);
    }
}
