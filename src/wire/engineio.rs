//! Engine.IO protocol v4 packets and polling payloads.
//!
//! # Format
//! A packet is one type digit and its data: `4hello` is a MESSAGE "hello", `2` a PING,
//! `2probe` the upgrade probe. Over WebSocket each packet is one message; a binary WebSocket
//! message is a MESSAGE packet with binary data. Over HTTP long-polling, a payload carries
//! several packets separated by the record separator `\x1e`, binary ones as `b` + base64:
//!
//! ```text
//! 4hello\x1e4world\x1ebAQIDBA==
//! ```
//!
//! The handshake is the OPEN packet: `0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],
//! "pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`.

use std::fmt;

use base64::Engine as _;
use serde_json::Value;

/// The record separator between packets of a polling payload.
pub const SEPARATOR: u8 = 0x1E;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    Open,
    Close,
    Ping,
    Pong,
    Message,
    Upgrade,
    Noop,
    Unknown(u8),
}

impl PacketType {
    pub fn from_char(c: u8) -> PacketType {
        match c {
            b'0' => PacketType::Open,
            b'1' => PacketType::Close,
            b'2' => PacketType::Ping,
            b'3' => PacketType::Pong,
            b'4' => PacketType::Message,
            b'5' => PacketType::Upgrade,
            b'6' => PacketType::Noop,
            other => PacketType::Unknown(other),
        }
    }

    pub fn as_char(self) -> char {
        match self {
            PacketType::Open => '0',
            PacketType::Close => '1',
            PacketType::Ping => '2',
            PacketType::Pong => '3',
            PacketType::Message => '4',
            PacketType::Upgrade => '5',
            PacketType::Noop => '6',
            PacketType::Unknown(c) => c as char,
        }
    }

    /// Lower-case name, also the `kind` for source links.
    pub fn name(self) -> &'static str {
        match self {
            PacketType::Open => "open",
            PacketType::Close => "close",
            PacketType::Ping => "ping",
            PacketType::Pong => "pong",
            PacketType::Message => "message",
            PacketType::Upgrade => "upgrade",
            PacketType::Noop => "noop",
            PacketType::Unknown(_) => "unknown",
        }
    }
}

impl PacketType {
    /// The name as traces show it (`MESSAGE`).
    pub fn upper_name(self) -> &'static str {
        match self {
            PacketType::Open => "OPEN",
            PacketType::Close => "CLOSE",
            PacketType::Ping => "PING",
            PacketType::Pong => "PONG",
            PacketType::Message => "MESSAGE",
            PacketType::Upgrade => "UPGRADE",
            PacketType::Noop => "NOOP",
            PacketType::Unknown(_) => "UNKNOWN",
        }
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.upper_name())
    }
}

/// A packet's data: text for text packets, bytes for binary MESSAGEs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    Text(String),
    Binary(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub ptype: PacketType,
    pub data: Data,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EioError {
    /// An empty packet has no type (Engine.IO v4 "Encoding").
    EmptyPacket,
    /// The type digit is not 0-6.
    UnknownPacketType(char),
    /// A `b` packet of a polling payload is not valid base64.
    BadBase64,
    /// Packet text is not UTF-8.
    NotUtf8,
    /// The OPEN packet's data is not the handshake JSON object.
    BadOpen(String),
}

impl fmt::Display for EioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EioError::EmptyPacket => f.write_str("empty packet, no type (Engine.IO v4 §Packet encoding)"),
            EioError::UnknownPacketType(c) => write!(
                f,
                "unknown packet type {c:?}, expected 0-6 (Engine.IO v4 §Protocol)"
            ),
            EioError::BadBase64 => f.write_str(
                "binary packet of a polling payload is not base64 (Engine.IO v4 §Packet encoding, HTTP long-polling)",
            ),
            EioError::NotUtf8 => f.write_str("text packet is not UTF-8 (Engine.IO v4 §Packet encoding)"),
            EioError::BadOpen(e) => write!(f, "OPEN packet data is not the handshake object: {e} (Engine.IO v4 §Handshake)"),
        }
    }
}

impl std::error::Error for EioError {}

impl Packet {
    pub fn text(ptype: PacketType, data: impl Into<String>) -> Packet {
        Packet {
            ptype,
            data: Data::Text(data.into()),
        }
    }

    /// Decodes a text packet (one WebSocket text message, or one item of a polling payload).
    pub fn decode_text(s: &str) -> Result<Packet, EioError> {
        let first = *s.as_bytes().first().ok_or(EioError::EmptyPacket)?;
        match PacketType::from_char(first) {
            PacketType::Unknown(c) => Err(EioError::UnknownPacketType(c as char)),
            ptype => Ok(Packet::text(ptype, &s[1..])),
        }
    }

    /// A binary WebSocket message is a MESSAGE packet whose data is the bytes.
    pub fn from_binary(bytes: Vec<u8>) -> Packet {
        Packet {
            ptype: PacketType::Message,
            data: Data::Binary(bytes),
        }
    }

    /// Text encoding for a WebSocket text message or a polling payload item.
    pub fn encode_text(&self) -> String {
        match &self.data {
            Data::Text(t) => {
                let mut s = String::with_capacity(t.len() + 1);
                s.push(self.ptype.as_char());
                s.push_str(t);
                s
            }
            Data::Binary(b) => {
                format!("b{}", base64::engine::general_purpose::STANDARD.encode(b))
            }
        }
    }
}

/// Splits a polling payload into packets. Each item decodes on its own, so one bad packet
/// is reported without losing its neighbours.
pub fn decode_payload(body: &[u8]) -> Vec<Result<Packet, EioError>> {
    body.split(|&b| b == SEPARATOR)
        .map(|item| {
            if let Some(b64) = item.strip_prefix(b"b") {
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map(Packet::from_binary)
                    .map_err(|_| EioError::BadBase64)
            } else {
                let text = std::str::from_utf8(item).map_err(|_| EioError::NotUtf8)?;
                Packet::decode_text(text)
            }
        })
        .collect()
}

/// Joins packets into one polling payload.
pub fn encode_payload<'a>(packets: impl IntoIterator<Item = &'a Packet>) -> String {
    let mut out = String::new();
    for (i, p) in packets.into_iter().enumerate() {
        if i > 0 {
            out.push(SEPARATOR as char);
        }
        out.push_str(&p.encode_text());
    }
    out
}

/// The handshake data of an OPEN packet (Engine.IO v4 §Handshake).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenInfo {
    pub sid: String,
    pub upgrades: Vec<String>,
    pub ping_interval: u64,
    pub ping_timeout: u64,
    /// Absent in OPEN packets of python-engineio before 4.5 (the seed stack).
    pub max_payload: Option<u64>,
}

impl OpenInfo {
    pub fn parse(data: &str) -> Result<OpenInfo, EioError> {
        let v: Value = serde_json::from_str(data).map_err(|e| EioError::BadOpen(e.to_string()))?;
        let sid = v
            .get("sid")
            .and_then(Value::as_str)
            .ok_or_else(|| EioError::BadOpen("no \"sid\" string".into()))?;
        let num = |k: &str| v.get(k).and_then(Value::as_u64);
        Ok(OpenInfo {
            sid: sid.to_string(),
            upgrades: v
                .get("upgrades")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|u| u.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            ping_interval: num("pingInterval").unwrap_or(0),
            ping_timeout: num("pingTimeout").unwrap_or(0),
            max_payload: num("maxPayload"),
        })
    }

    /// The OPEN data as Node's engine.io writes it (`pingInterval` before `pingTimeout`).
    pub fn to_json(&self) -> String {
        self.json_in_order(&["pingInterval", "pingTimeout"])
    }

    /// The OPEN data as python-engineio writes it (`pingTimeout` before `pingInterval`).
    pub fn to_json_python(&self) -> String {
        self.json_in_order(&["pingTimeout", "pingInterval"])
    }

    fn json_in_order(&self, timers: &[&str; 2]) -> String {
        let mut obj = serde_json::Map::new();
        obj.insert("sid".into(), self.sid.clone().into());
        obj.insert("upgrades".into(), self.upgrades.clone().into());
        for t in timers {
            let v = if *t == "pingInterval" {
                self.ping_interval
            } else {
                self.ping_timeout
            };
            obj.insert((*t).into(), v.into());
        }
        if let Some(m) = self.max_payload {
            obj.insert("maxPayload".into(), m.into());
        }
        Value::Object(obj).to_string()
    }
}

/// Engine.IO error bodies for bad requests (Engine.IO v4 server behaviour, as the
/// reference servers send them: `{"code":N,"message":"..."}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    UnknownTransport,
    UnknownSid,
    BadHandshakeMethod,
    BadRequest,
    Forbidden,
    UnsupportedProtocolVersion,
}

impl RequestError {
    pub fn code(self) -> u8 {
        match self {
            RequestError::UnknownTransport => 0,
            RequestError::UnknownSid => 1,
            RequestError::BadHandshakeMethod => 2,
            RequestError::BadRequest => 3,
            RequestError::Forbidden => 4,
            RequestError::UnsupportedProtocolVersion => 5,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            RequestError::UnknownTransport => "Transport unknown",
            RequestError::UnknownSid => "Session ID unknown",
            RequestError::BadHandshakeMethod => "Bad handshake method",
            RequestError::BadRequest => "Bad request",
            RequestError::Forbidden => "Forbidden",
            RequestError::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }

    pub fn body(self) -> String {
        serde_json::json!({"code": self.code(), "message": self.message()}).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_packets() {
        let p = Packet::decode_text("2probe").unwrap();
        assert_eq!(p, Packet::text(PacketType::Ping, "probe"));
        assert_eq!(p.encode_text(), "2probe");
        assert_eq!(Packet::decode_text(""), Err(EioError::EmptyPacket));
        assert_eq!(
            Packet::decode_text("9x"),
            Err(EioError::UnknownPacketType('9'))
        );
        assert_eq!(
            Packet::decode_text("é"),
            Err(EioError::UnknownPacketType('\u{c3}'))
        );
    }

    #[test]
    fn payloads() {
        let body = b"4hello\x1e4world\x1ebAQIDBA==";
        let packets: Vec<_> = decode_payload(body)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(packets[0], Packet::text(PacketType::Message, "hello"));
        assert_eq!(packets[2], Packet::from_binary(vec![1, 2, 3, 4]));
        assert_eq!(encode_payload(&packets).as_bytes(), body);
        let mixed = decode_payload(b"4ok\x1e\x1ebnot base64!\x1e9");
        assert!(mixed[0].is_ok());
        assert_eq!(mixed[1], Err(EioError::EmptyPacket));
        assert_eq!(mixed[2], Err(EioError::BadBase64));
        assert_eq!(mixed[3], Err(EioError::UnknownPacketType('9')));
        for n in 0..body.len() {
            let _ = decode_payload(&body[..n]);
        }
    }

    #[test]
    fn open_round_trip() {
        let o = OpenInfo::parse(r#"{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#).unwrap();
        assert_eq!(o.sid, "abc");
        assert_eq!(o.max_payload, Some(1_000_000));
        assert_eq!(OpenInfo::parse(&o.to_json()).unwrap(), o);
        let seed = OpenInfo::parse(r#"{"sid":"x","upgrades":[],"pingTimeout":1,"pingInterval":2}"#)
            .unwrap();
        assert_eq!(seed.max_payload, None);
        assert!(OpenInfo::parse("{}").is_err());
        assert!(OpenInfo::parse("nope").is_err());
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            RequestError::UnknownSid.body(),
            r#"{"code":1,"message":"Session ID unknown"}"#
        );
    }
}
