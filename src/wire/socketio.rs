//! Socket.IO protocol v5 packets, carried in Engine.IO MESSAGE packets.
//!
//! # Format
//! ```text
//! <type>[<attachments>-][<namespace>,][<ack id>][<JSON data>]
//!
//! 0                                  CONNECT to "/"
//! 0/admin,{"token":"x"}              CONNECT to "/admin" with auth
//! 2["replace old value",{"bid":12}]  EVENT
//! 213["bid-with-ack",{"bid":12}]     EVENT asking for ack 13
//! 313[{"ok":true}]                   ACK 13
//! 51-["upload",{"_placeholder":true,"num":0}]   BINARY_EVENT, then 1 binary attachment
//! ```

use std::fmt;

use serde_json::value::RawValue;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    Connect,
    Disconnect,
    Event,
    Ack,
    ConnectError,
    BinaryEvent,
    BinaryAck,
    Unknown(u8),
}

impl PacketType {
    pub fn from_char(c: u8) -> PacketType {
        match c {
            b'0' => PacketType::Connect,
            b'1' => PacketType::Disconnect,
            b'2' => PacketType::Event,
            b'3' => PacketType::Ack,
            b'4' => PacketType::ConnectError,
            b'5' => PacketType::BinaryEvent,
            b'6' => PacketType::BinaryAck,
            other => PacketType::Unknown(other),
        }
    }

    pub fn as_char(self) -> char {
        match self {
            PacketType::Connect => '0',
            PacketType::Disconnect => '1',
            PacketType::Event => '2',
            PacketType::Ack => '3',
            PacketType::ConnectError => '4',
            PacketType::BinaryEvent => '5',
            PacketType::BinaryAck => '6',
            PacketType::Unknown(c) => c as char,
        }
    }

    /// The spec's name: CONNECT, EVENT, BINARY_ACK...
    pub fn spec_name(self) -> &'static str {
        match self {
            PacketType::Connect => "CONNECT",
            PacketType::Disconnect => "DISCONNECT",
            PacketType::Event => "EVENT",
            PacketType::Ack => "ACK",
            PacketType::ConnectError => "CONNECT_ERROR",
            PacketType::BinaryEvent => "BINARY_EVENT",
            PacketType::BinaryAck => "BINARY_ACK",
            PacketType::Unknown(_) => "UNKNOWN",
        }
    }

    /// Lower-case name, the `kind` for source links.
    pub fn name(self) -> &'static str {
        match self {
            PacketType::Connect => "connect",
            PacketType::Disconnect => "disconnect",
            PacketType::Event => "event",
            PacketType::Ack => "ack",
            PacketType::ConnectError => "connect_error",
            PacketType::BinaryEvent => "binary_event",
            PacketType::BinaryAck => "binary_ack",
            PacketType::Unknown(_) => "unknown",
        }
    }

    pub fn is_binary(self) -> bool {
        matches!(self, PacketType::BinaryEvent | PacketType::BinaryAck)
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.spec_name())
    }
}

/// Most binary attachments one packet may announce. Every attachment must be held until the
/// last one arrives, so a limit keeps a hostile peer (or capture) from making a receiver hold
/// an unbounded number of them; real packets carry a handful.
pub const MAX_ATTACHMENTS: usize = 64;

/// A packet; its data a JSON value (`Packet`), or the JSON text as it was sent
/// (`Packet<Box<RawValue>>`, for a trace that shows it without building a tree).
#[derive(Debug, Clone, PartialEq)]
pub struct Packet<D = Value> {
    pub ptype: PacketType,
    /// Binary attachments that follow (BINARY_EVENT / BINARY_ACK only).
    pub attachments: usize,
    pub nsp: String,
    pub id: Option<u64>,
    pub data: Option<D>,
}

/// What a packet's JSON data decodes into, and enough of its shape to check the packet type's
/// rules.
pub trait PacketData: Sized {
    fn parse(json: &str) -> Result<Self, serde_json::Error>;
    fn shape(&self) -> Shape;
}

/// The outline of a JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// An array whose first element is a string (an event's name).
    NamedArray,
    Array,
    Object,
    String,
    Other,
}

impl PacketData for Value {
    fn parse(json: &str) -> Result<Value, serde_json::Error> {
        serde_json::from_str(json)
    }
    fn shape(&self) -> Shape {
        match self {
            Value::Array(a) if a.first().is_some_and(Value::is_string) => Shape::NamedArray,
            Value::Array(_) => Shape::Array,
            Value::Object(_) => Shape::Object,
            Value::String(_) => Shape::String,
            _ => Shape::Other,
        }
    }
}

impl PacketData for Box<RawValue> {
    fn parse(json: &str) -> Result<Box<RawValue>, serde_json::Error> {
        // Reading raw JSON skips over values, and skipping accepts what reading them refuses
        // (a number beyond f64, a lone surrogate escape): read them first, keeping nothing,
        // so both decodings accept the same packets (a fuzz target checks it).
        serde_json::from_str::<Readable>(json)?;
        serde_json::from_str(json)
    }
    /// Valid JSON's first characters say what it is.
    fn shape(&self) -> Shape {
        let text = self.get().trim_start();
        match text.as_bytes().first() {
            Some(b'[') if text[1..].trim_start().starts_with('"') => Shape::NamedArray,
            Some(b'[') => Shape::Array,
            Some(b'{') => Shape::Object,
            Some(b'"') => Shape::String,
            _ => Shape::Other,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SioError {
    EmptyPacket,
    /// Type digit not 0-6 (Socket.IO v5 §Exchange protocol).
    UnknownPacketType(char),
    /// `<n>-` attachment count missing or not a number on a binary packet.
    BadAttachmentCount,
    /// More attachments announced than dispel holds for one packet ([`MAX_ATTACHMENTS`]): the
    /// receiver would have to keep them all until the last arrives.
    TooManyAttachments(usize),
    /// A namespace starts with `/` and ends at `,`.
    BadNamespace,
    /// The ack id is not a number that fits in 64 bits.
    BadAckId,
    /// The data is not JSON.
    BadJson(String),
    /// The data does not have the shape its type requires (an EVENT is a non-empty array whose
    /// first element is the event name; an ACK is an array; CONNECT an object).
    BadShape(&'static str),
}

impl fmt::Display for SioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SioError::EmptyPacket => f.write_str("empty packet (Socket.IO v5 §Packet encoding)"),
            SioError::UnknownPacketType(c) => write!(
                f,
                "unknown packet type {c:?}, expected 0-6 (Socket.IO v5 §Exchange protocol)"
            ),
            SioError::BadAttachmentCount => f.write_str(
                "binary packet without a valid `<n>-` attachment count (Socket.IO v5 §Packet encoding)",
            ),
            SioError::TooManyAttachments(n) => write!(
                f,
                "binary packet announces {n} attachments, more than the {MAX_ATTACHMENTS} dispel holds for one packet"
            ),
            SioError::BadNamespace => f.write_str("namespace not terminated by ',' (Socket.IO v5 §Packet encoding)"),
            SioError::BadAckId => f.write_str("acknowledgement id is not a number (Socket.IO v5 §Packet encoding)"),
            SioError::BadJson(e) => write!(f, "payload is not JSON: {e} (Socket.IO v5 §Packet encoding)"),
            SioError::BadShape(what) => write!(f, "{what} (Socket.IO v5 §Exchange protocol)"),
        }
    }
}

impl std::error::Error for SioError {}

/// Any JSON value, read the way a `Value` is (numbers and escapes checked) but not kept.
struct Readable;

impl<'de> serde::Deserialize<'de> for Readable {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Readable, D::Error> {
        d.deserialize_any(Readable)
    }
}

impl<'de> serde::de::Visitor<'de> for Readable {
    type Value = Readable;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Readable, E> {
        Ok(Readable)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Readable, E> {
        Ok(Readable)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Readable, E> {
        Ok(Readable)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Readable, E> {
        Ok(Readable)
    }
    fn visit_str<E>(self, _: &str) -> Result<Readable, E> {
        Ok(Readable)
    }
    fn visit_unit<E>(self) -> Result<Readable, E> {
        Ok(Readable)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Readable, A::Error> {
        while seq.next_element::<Readable>()?.is_some() {}
        Ok(Readable)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Readable, A::Error> {
        while map.next_entry::<Readable, Readable>()?.is_some() {}
        Ok(Readable)
    }
}

impl Packet<Box<RawValue>> {
    /// Decodes a packet keeping its data as the JSON text it was sent as (checked to be JSON
    /// of the right shape, not parsed into values).
    pub fn decode_raw(s: &str) -> Result<Packet<Box<RawValue>>, SioError> {
        Packet::decode_as(s)
    }
}

impl<D: PacketData> Packet<D> {
    /// Decodes a packet from the text of an Engine.IO MESSAGE.
    fn decode_as(s: &str) -> Result<Packet<D>, SioError> {
        let bytes = s.as_bytes();
        let first = *bytes.first().ok_or(SioError::EmptyPacket)?;
        let ptype = match PacketType::from_char(first) {
            PacketType::Unknown(c) => return Err(SioError::UnknownPacketType(c as char)),
            t => t,
        };
        let mut pos = 1;
        let mut attachments = 0;
        if ptype.is_binary() {
            let dash = s[pos..].find('-').ok_or(SioError::BadAttachmentCount)?;
            attachments = s[pos..pos + dash]
                .parse::<usize>()
                .map_err(|_| SioError::BadAttachmentCount)?;
            if attachments > MAX_ATTACHMENTS {
                return Err(SioError::TooManyAttachments(attachments));
            }
            pos += dash + 1;
        }
        let mut nsp = "/".to_string();
        if bytes.get(pos) == Some(&b'/') {
            let comma = s[pos..].find(',');
            match comma {
                Some(c) => {
                    nsp = s[pos..pos + c].to_string();
                    pos += c + 1;
                }
                // "1/admin" (a DISCONNECT with nothing after the namespace) is valid.
                None if s[pos..].bytes().all(|b| b != b'[' && b != b'{') => {
                    nsp = s[pos..].to_string();
                    pos = s.len();
                }
                None => return Err(SioError::BadNamespace),
            }
        }
        let digits = bytes[pos..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let id = if digits > 0 {
            let id = s[pos..pos + digits]
                .parse::<u64>()
                .map_err(|_| SioError::BadAckId)?;
            pos += digits;
            Some(id)
        } else {
            None
        };
        let data = if pos < s.len() {
            Some(D::parse(&s[pos..]).map_err(|e| SioError::BadJson(e.to_string()))?)
        } else {
            None
        };
        let packet = Packet {
            ptype,
            attachments,
            nsp,
            id,
            data,
        };
        packet.check_shape()?;
        Ok(packet)
    }

    fn check_shape(&self) -> Result<(), SioError> {
        let shape = self.data.as_ref().map(PacketData::shape);
        match self.ptype {
            PacketType::Event | PacketType::BinaryEvent => match shape {
                Some(Shape::NamedArray) => Ok(()),
                _ => Err(SioError::BadShape(
                    "an EVENT's data must be an array starting with the event name",
                )),
            },
            PacketType::Ack | PacketType::BinaryAck => match shape {
                Some(Shape::Array | Shape::NamedArray) => Ok(()),
                _ => Err(SioError::BadShape("an ACK's data must be an array")),
            },
            PacketType::Connect => match shape {
                None | Some(Shape::Object) => Ok(()),
                _ => Err(SioError::BadShape("CONNECT data (auth) must be an object")),
            },
            // Without these two rules a number after the type or namespace is ambiguous:
            // "1\n222" would decode as data 222, but re-encodes as "1222", ack id 222.
            PacketType::Disconnect => match shape {
                None => Ok(()),
                Some(_) => Err(SioError::BadShape("a DISCONNECT has no data")),
            },
            PacketType::ConnectError => match shape {
                None | Some(Shape::Object | Shape::String) => Ok(()),
                _ => Err(SioError::BadShape(
                    "CONNECT_ERROR data must be an object (or a message string)",
                )),
            },
            _ => Ok(()),
        }
    }
}

impl Packet {
    pub fn new(ptype: PacketType, nsp: &str, id: Option<u64>, data: Option<Value>) -> Packet {
        Packet {
            ptype,
            attachments: 0,
            nsp: nsp.to_string(),
            id,
            data,
        }
    }

    /// Decodes a packet from the text of an Engine.IO MESSAGE.
    pub fn decode(s: &str) -> Result<Packet, SioError> {
        Packet::decode_as(s)
    }

    /// The event name of an EVENT / BINARY_EVENT.
    pub fn event_name(&self) -> Option<&str> {
        match (self.ptype, &self.data) {
            (PacketType::Event | PacketType::BinaryEvent, Some(Value::Array(a))) => {
                a.first().and_then(Value::as_str)
            }
            _ => None,
        }
    }

    /// The arguments after the event name (EVENT) or all of them (ACK).
    pub fn args(&self) -> &[Value] {
        match (&self.data, self.ptype) {
            (Some(Value::Array(a)), PacketType::Event | PacketType::BinaryEvent) => {
                a.get(1..).unwrap_or(&[])
            }
            (Some(Value::Array(a)), _) => a,
            _ => &[],
        }
    }

    pub fn encode(&self) -> String {
        self.encode_with(Value::to_string)
    }

    /// Encoded as python-socketio encodes it: the data through `json.dumps` (non-ASCII
    /// escaped, Python's float notation; see `wire::pyjson`).
    pub fn encode_python(&self) -> String {
        self.encode_with(super::pyjson::dumps)
    }

    fn encode_with(&self, json: fn(&Value) -> String) -> String {
        let mut s = String::new();
        s.push(self.ptype.as_char());
        if self.ptype.is_binary() {
            s.push_str(&self.attachments.to_string());
            s.push('-');
        }
        if self.nsp != "/" {
            s.push_str(&self.nsp);
            s.push(',');
        }
        if let Some(id) = self.id {
            s.push_str(&id.to_string());
        }
        if let Some(d) = &self.data {
            s.push_str(&json(d));
        }
        s
    }
}

/// A binary packet (BINARY_EVENT, BINARY_ACK) collecting the attachments that follow it, each
/// its own Engine.IO binary message, in order. Sans-IO: the server and the decoder both feed
/// it, and both bound what one packet may make them hold.
#[derive(Debug)]
pub struct Assembly<D = Value> {
    packet: Packet<D>,
    attachments: Vec<Vec<u8>>,
    held: usize,
    max_bytes: usize,
}

/// Where an [`Assembly`] stands after an attachment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// More attachments are announced.
    More,
    /// Every announced attachment is here: take the packet with [`Assembly::into_parts`].
    Complete,
    /// The attachment would take the packet's attachments over the limit; it was not kept,
    /// and the packet should be dropped.
    TooLarge,
}

impl<D> Assembly<D> {
    /// Starts collecting for `packet` (which announces at least one attachment); its
    /// attachments together may not exceed `max_bytes`.
    pub fn new(packet: Packet<D>, max_bytes: usize) -> Assembly<D> {
        Assembly {
            packet,
            attachments: Vec::new(),
            held: 0,
            max_bytes,
        }
    }

    pub fn push(&mut self, bytes: Vec<u8>) -> Progress {
        if self.held + bytes.len() > self.max_bytes {
            return Progress::TooLarge;
        }
        self.held += bytes.len();
        self.attachments.push(bytes);
        if self.attachments.len() >= self.packet.attachments {
            Progress::Complete
        } else {
            Progress::More
        }
    }

    pub fn into_parts(self) -> (Packet<D>, Vec<Vec<u8>>) {
        (self.packet, self.attachments)
    }
}

/// Replaces every `{"_placeholder":true,"num":N}` in `value` with `f(N)`. Returns the number of
/// placeholders seen.
pub fn fill_placeholders(value: &mut Value, f: &mut dyn FnMut(usize) -> Value) -> usize {
    match value {
        Value::Object(map) if map.get("_placeholder") == Some(&Value::Bool(true)) => {
            let num = map.get("num").and_then(Value::as_u64).unwrap_or(u64::MAX);
            *value = f(num as usize);
            1
        }
        Value::Object(map) => map.values_mut().map(|v| fill_placeholders(v, f)).sum(),
        Value::Array(items) => items.iter_mut().map(|v| fill_placeholders(v, f)).sum(),
        _ => 0,
    }
}

/// A value whose placeholders name `attachments`, renumbered the way python-socketio sends it
/// on: each placeholder replaced by its bytes, then the bytes taken out again in the order they
/// appear (depth first), each leaving a placeholder with its new number. `None` when a
/// placeholder names no attachment (python-socketio raises).
pub fn reattach(value: &Value, attachments: &[Vec<u8>]) -> Option<(Value, Vec<Vec<u8>>)> {
    fn walk(v: &Value, attachments: &[Vec<u8>], out: &mut Vec<Vec<u8>>) -> Option<Value> {
        Some(match v {
            Value::Object(map) if map.get("_placeholder") == Some(&Value::Bool(true)) => {
                let num = map.get("num")?.as_u64()? as usize;
                out.push(attachments.get(num)?.clone());
                placeholder(out.len() - 1)
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Some((k.clone(), walk(v, attachments, out)?)))
                    .collect::<Option<_>>()?,
            ),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| walk(v, attachments, out))
                    .collect::<Option<_>>()?,
            ),
            other => other.clone(),
        })
    }
    let mut out = Vec::new();
    let v = walk(value, attachments, &mut out)?;
    Some((v, out))
}

/// A placeholder for attachment `num`.
pub fn placeholder(num: usize) -> Value {
    serde_json::json!({"_placeholder": true, "num": num})
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn examples_from_the_spec() {
        let p = Packet::decode("0").unwrap();
        assert_eq!(p, Packet::new(PacketType::Connect, "/", None, None));
        let p = Packet::decode(r#"0/admin,{"token":"123"}"#).unwrap();
        assert_eq!(p.nsp, "/admin");
        assert_eq!(p.data, Some(json!({"token":"123"})));
        let p = Packet::decode(r#"2["hello",1]"#).unwrap();
        assert_eq!(p.event_name(), Some("hello"));
        assert_eq!(p.args(), &[json!(1)]);
        let p = Packet::decode(r#"2/admin,456["project:delete",123]"#).unwrap();
        assert_eq!((p.nsp.as_str(), p.id), ("/admin", Some(456)));
        let p = Packet::decode(r#"3/admin,456[]"#).unwrap();
        assert_eq!((p.ptype, p.id), (PacketType::Ack, Some(456)));
        let p = Packet::decode(r#"51-["hello",{"_placeholder":true,"num":0}]"#).unwrap();
        assert_eq!((p.ptype, p.attachments), (PacketType::BinaryEvent, 1));
        let p = Packet::decode(r#"61-/admin,456[{"_placeholder":true,"num":0}]"#).unwrap();
        assert_eq!(
            (p.ptype, p.attachments, p.id),
            (PacketType::BinaryAck, 1, Some(456))
        );
        let p = Packet::decode("1/admin,").unwrap();
        assert_eq!(
            (p.ptype, p.nsp.as_str()),
            (PacketType::Disconnect, "/admin")
        );
        let p = Packet::decode("1/admin").unwrap();
        assert_eq!(p.nsp, "/admin");
        let p = Packet::decode(r#"4{"message":"Not authorized"}"#).unwrap();
        assert_eq!(p.ptype, PacketType::ConnectError);
    }

    #[test]
    fn round_trips() {
        for s in [
            "0",
            r#"0/admin,{"token":"123"}"#,
            r#"213["bid-with-ack",{"bid":12}]"#,
            r#"51-["upload",{"_placeholder":true,"num":0}]"#,
            r#"40{"sid":"x"}"#,
        ] {
            let p = Packet::decode(s);
            if let Ok(p) = p {
                assert_eq!(p.encode(), s);
            }
        }
    }

    #[test]
    fn errors_name_the_rule() {
        assert_eq!(Packet::decode(""), Err(SioError::EmptyPacket));
        assert_eq!(Packet::decode("9"), Err(SioError::UnknownPacketType('9')));
        assert_eq!(
            Packet::decode(r#"5["x"]"#),
            Err(SioError::BadAttachmentCount)
        );
        assert_eq!(
            Packet::decode(r#"5999999-["x"]"#),
            Err(SioError::TooManyAttachments(999_999))
        );
        assert!(matches!(
            Packet::decode("2[oops"),
            Err(SioError::BadJson(_))
        ));
        assert!(matches!(
            Packet::decode(r#"2{"a":1}"#),
            Err(SioError::BadShape(_))
        ));
        assert!(matches!(Packet::decode("2[1]"), Err(SioError::BadShape(_))));
        assert!(matches!(
            Packet::decode(r#"2/x["a"]"#),
            Err(SioError::BadNamespace)
        ));
        assert_eq!(
            Packet::decode("299999999999999999999999[\"a\"]"),
            Err(SioError::BadAckId)
        );
    }

    #[test]
    fn every_prefix_decodes_or_errs_without_panic() {
        let s = r#"61-/admin,456[{"_placeholder":true,"num":0},"é"]"#;
        for (i, _) in s.char_indices() {
            let _ = Packet::decode(&s[..i]);
        }
    }

    /// Found by `cargo fuzz run socketio` (fuzz/fuzz_targets/socketio.rs): a DISCONNECT
    /// with JSON data after whitespace decoded as data 222 but re-encoded as "1222", whose
    /// decoding is ack id 222. DISCONNECT carries no data; CONNECT_ERROR an object or string.
    #[test]
    fn raw_and_value_decoding_accept_the_same_packets() {
        for text in [
            r#"2["bid",{"n":1.5e3,"s":"caf\u00e9"}]"#,
            r#"2["bid",999999999999999999999E999]"#,
            r#"2["bid","\ud800"]"#,
            "2\n\n1e999",
            "0-",
            r#"0/admin,{"token":"x"}"#,
            r#"3/x,7[]"#,
        ] {
            let value = Packet::decode(text);
            let raw = Packet::decode_raw(text);
            assert_eq!(value.is_ok(), raw.is_ok(), "{text}: {value:?} / {raw:?}");
            if let (Ok(v), Ok(r)) = (value, raw) {
                let parsed = r
                    .data
                    .map(|d| serde_json::from_str::<Value>(d.get()).unwrap());
                assert_eq!(parsed, v.data);
            }
        }
    }

    #[test]
    fn fuzz_regression_disconnect_with_number_data() {
        const INPUT: [u8; 5] = [0x31, 0x0a, 0x32, 0x32, 0x32];
        let text = std::str::from_utf8(&INPUT).unwrap();
        assert!(matches!(Packet::decode(text), Err(SioError::BadShape(_))));
        assert!(matches!(Packet::decode("4 5"), Err(SioError::BadShape(_))));
        assert!(matches!(
            Packet::decode("1\"bye\""),
            Err(SioError::BadShape(_))
        ));
        // What stays valid.
        let p = Packet::decode(r#"4/nope,"Unable to connect""#).unwrap();
        assert_eq!(Packet::decode(&p.encode()), Ok(p));
        assert_eq!(Packet::decode("1222").unwrap().id, Some(222));
    }

    /// Found by `cargo fuzz run socketio`: a 130-digit integer parsed to a float one ulp away
    /// from the nearest one (serde_json's default fast float parsing), so the packet's data
    /// was not the number on the wire and did not survive a round trip. Fixed by serde_json's
    /// `float_roundtrip` feature.
    #[test]
    fn fuzz_regression_long_number_round_trips() {
        const INPUT: &[u8; 172] = b"51-[\"uploaded\",{\"size\":2623333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333},{\"_placehold\":5}]";
        let p = Packet::decode(std::str::from_utf8(INPUT).unwrap()).unwrap();
        assert_eq!(p.args()[0]["size"], json!(2.6233333333333334e129));
        assert_eq!(Packet::decode(&p.encode()), Ok(p));
    }

    #[test]
    fn reattach_renumbers_in_order() {
        let v =
            json!({"b": {"_placeholder": true, "num": 1}, "a": [{"_placeholder": true, "num": 0}]});
        let (v, atts) = reattach(&v, &[vec![0], vec![1]]).unwrap();
        assert_eq!(
            v,
            json!({"b": {"_placeholder": true, "num": 0}, "a": [{"_placeholder": true, "num": 1}]})
        );
        assert_eq!(atts, vec![vec![1], vec![0]]);
        assert_eq!(
            reattach(&json!({"_placeholder": true, "num": 3}), &[]),
            None
        );
        // Without attachments a placeholder names nothing; plain values pass through.
        assert_eq!(
            reattach(&json!([1, "x"]), &[]).map(|(v, _)| v),
            Some(json!([1, "x"]))
        );
    }

    #[test]
    fn placeholders() {
        let mut v =
            json!(["upload", {"_placeholder": true, "num": 0}, [{"_placeholder": true, "num": 1}]]);
        let n = fill_placeholders(&mut v, &mut |i| json!(format!("bin{i}")));
        assert_eq!(n, 2);
        assert_eq!(v, json!(["upload", "bin0", ["bin1"]]));
    }

    #[test]
    fn attachments_are_assembled_within_their_limit() {
        let p = Packet::decode(
            r#"52-["up",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
        )
        .unwrap();
        let mut a = Assembly::new(p.clone(), 10);
        assert_eq!(a.push(vec![1; 4]), Progress::More);
        assert_eq!(a.push(vec![2; 6]), Progress::Complete);
        let (packet, atts) = a.into_parts();
        assert_eq!((packet.attachments, atts.len()), (2, 2));
        let mut b = Assembly::new(p, 10);
        assert_eq!(b.push(vec![1; 4]), Progress::More);
        assert_eq!(b.push(vec![2; 7]), Progress::TooLarge);
    }
}
