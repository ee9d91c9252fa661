//! How a session's events read: summary lines cut to size, previews of Socket.IO data,
//! field text and hex clipped to their limits. Presentation only; the decoding is in
//! [`super::session`].

use std::net::SocketAddr;

use serde_json::value::RawValue;
use serde_json::Value;

use crate::trace::Fields;
use crate::wire::socketio::PacketType;
use crate::wire::ws_frame::OpCode;

/// Text longer than this is cut in trace fields (the field `truncated` says so).
pub(crate) const FIELD_TEXT_MAX: usize = 4096;
/// Binary shown as hex up to this many bytes.
pub(crate) const FIELD_HEX_MAX: usize = 256;

/// Cuts `s` to at most `max` bytes on a char boundary.
pub(crate) fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

pub(crate) fn short(s: &str) -> Short<'_> {
    Short(s)
}

/// Text cut to 80 bytes for a summary line, `…` when cut (formatted in place, no copy).
pub(crate) struct Short<'a>(&'a str);

impl std::fmt::Display for Short<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = clip(self.0, 80);
        f.write_str(c)?;
        if c.len() < self.0.len() {
            f.write_str("…")?;
        }
        Ok(())
    }
}

pub(crate) fn addr(a: SocketAddr) -> String {
    // SocketAddr's Display already writes IPv6 as [addr]:port.
    a.to_string()
}

/// `TEXT`, or `RESERVED(0x3)` with the number of a reserved opcode.
pub(crate) fn opcode_name(op: OpCode) -> Value {
    match op {
        OpCode::Reserved(_) => op.to_string().into(),
        known => known.upper_name().into(),
    }
}

/// Enough of JSON text for a summary line, which cuts it with [`short`]: one byte more than
/// shown, so a longer text shows as cut, and a large payload is not copied just to be cut.
pub(crate) const PREVIEW: usize = 100;

/// An event's name and the start of what a summary shows of its data: the arguments of an
/// EVENT (the name is shown apart), all the data of other packets.
pub(crate) fn sio_raw_outline(ptype: PacketType, data: &RawValue) -> (Option<String>, String) {
    // `\u00e9` escapes (Python clients write all non-ASCII so) are for machines: a summary
    // shows the characters, so such data takes the slower way through a value.
    if data.get().contains("\\u") {
        if let Ok(value) = serde_json::from_str::<Value>(data.get()) {
            return sio_value_outline(ptype, &value);
        }
    }
    if !matches!(ptype, PacketType::Event | PacketType::BinaryEvent) {
        return (None, clip(data.get(), PREVIEW + 1).to_string());
    }
    // The top-level elements, each still as text.
    let items: Vec<&RawValue> = serde_json::from_str(data.get()).unwrap_or_default();
    let event = items
        .first()
        .and_then(|name| serde_json::from_str(name.get()).ok());
    (event, preview_items(items.get(1..).unwrap_or_default()))
}

/// [`sio_raw_outline`] of data held as a value (a binary packet's, attachments in place).
pub(crate) fn sio_value_outline(ptype: PacketType, data: &Value) -> (Option<String>, String) {
    let text = match (ptype, data) {
        (PacketType::Event | PacketType::BinaryEvent, Value::Array(a)) => {
            let event = a.first().and_then(Value::as_str).map(str::to_string);
            let args = Value::Array(a.get(1..).unwrap_or_default().to_vec());
            return (event, clip(&args.to_string(), PREVIEW + 1).to_string());
        }
        (_, d) => d.to_string(),
    };
    (None, clip(&text, PREVIEW + 1).to_string())
}

/// A JSON array of `items` (each the JSON text it was sent as), as far as a summary shows it.
pub(crate) fn preview_items(items: &[&RawValue]) -> String {
    let mut p = String::with_capacity(PREVIEW + 8);
    p.push('[');
    for (i, item) in items.iter().enumerate() {
        if p.len() > PREVIEW {
            break;
        }
        if i > 0 {
            p.push(',');
        }
        p.push_str(clip(item.get(), PREVIEW + 1));
    }
    p.push(']');
    clip(&p, PREVIEW + 1).to_string()
}

/// The field name of an Engine.IO query parameter.
pub(crate) fn q_key(q: &str) -> &'static str {
    match q {
        "EIO" => "eio",
        "transport" => "transport",
        _ => "sid",
    }
}

pub(crate) fn clip_bytes(b: &[u8]) -> &[u8] {
    &b[..b.len().min(FIELD_HEX_MAX)]
}

pub(crate) fn insert_text(fields: &mut Fields, key: &'static str, text: &str) {
    let c = clip(text, FIELD_TEXT_MAX);
    fields.insert(key, c);
    if c.len() < text.len() {
        fields.insert("truncated", true);
    }
}

/// Bytes as text for a summary, with non-printables as dots.
pub(crate) fn printable(b: &[u8]) -> String {
    b.iter()
        .take(48)
        .map(|&c| {
            if (0x20..0x7f).contains(&c) {
                c as char
            } else {
                '.'
            }
        })
        .collect()
}
