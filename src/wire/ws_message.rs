//! WebSocket messages for the server side of a connection (RFC 6455, with RFC 7692
//! permessage-deflate), on `ws_frame` and `deflate`: frames assembled into messages and checked
//! as Flask-SocketIO's WebSocket layer (simple-websocket over wsproto) checks them, in the same
//! order, failing with the same Close codes and reasons; and messages encoded into frames,
//! every one compressed once permessage-deflate is agreed.
//!
//! Sans-IO like the rest of `wire`: bytes in through [`Decoder::feed`], messages out of
//! [`Decoder::next_message`]; [`Encoder::encode`] appends a message's frame to a buffer. `dispel
//! serve`'s Engine.IO transport does the reading and writing.

use crate::wire::deflate::{Deflater, Inflater};
use crate::wire::handshake::DeflateParams;
use crate::wire::ws_frame::{self, FrameHeader, LengthForm, OpCode};

/// A whole message or control frame from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong,
    /// The client's Close: its code (none when the payload was empty) and reason.
    Close(Option<u16>, String),
}

/// The rule the client broke: the Close frame the server answers with (RFC 6455 §7.1.7, "fail
/// the WebSocket connection"). The reasons are wsproto's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: u16,
    pub reason: String,
}

impl Failure {
    fn protocol(reason: impl Into<String>) -> Failure {
        Failure {
            code: 1002,
            reason: reason.into(),
        }
    }
}

/// What the server sends.
#[derive(Debug, Clone, Copy)]
pub enum Outgoing<'a> {
    Text(&'a [u8]),
    Binary(&'a [u8]),
    Pong(&'a [u8]),
    Close(Option<u16>, &'a str),
}

struct Partial {
    opcode: OpCode,
    compressed: bool,
    data: Vec<u8>,
}

/// The client's side of a connection: frames in, messages out.
pub struct Decoder {
    buf: Vec<u8>,
    /// Where the unread bytes of `buf` start (drained in bulk).
    pos: usize,
    partial: Option<Partial>,
    inflater: Option<Inflater>,
    /// Largest message accepted, in bytes (Engine.IO's maxPayload); one more byte is already
    /// too many, and nothing beyond it is kept.
    max_message: usize,
    /// Bytes still to come of a frame refused for its size, dropped as they arrive.
    discard: u64,
}

/// The server's side: messages in, frames out.
pub struct Encoder {
    deflater: Option<Deflater>,
}

/// Why the decoder stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A rule of RFC 6455 or 7692 broken: the connection fails with this Close.
    Rule(Failure),
    /// A message over the size limit: Engine.IO ends the session (python-engineio: "packet is
    /// too large"), whose writer then closes the WebSocket normally.
    TooLarge,
}

impl From<Failure> for Refusal {
    fn from(f: Failure) -> Refusal {
        Refusal::Rule(f)
    }
}

/// The two halves of one connection, with what the handshake agreed.
pub fn codec(deflate: Option<DeflateParams>, max_message: usize) -> (Decoder, Encoder) {
    (
        Decoder {
            buf: Vec::new(),
            pos: 0,
            partial: None,
            inflater: deflate.map(|d| Inflater::new(!d.client_no_context_takeover)),
            max_message,
            discard: 0,
        },
        Encoder {
            deflater: deflate.map(|d| {
                Deflater::new(
                    d.server_max_window_bits.unwrap_or(15),
                    !d.server_no_context_takeover,
                )
            }),
        },
    )
}

impl Decoder {
    pub fn feed(&mut self, bytes: &[u8]) {
        let skip = (self.discard.min(bytes.len() as u64)) as usize;
        self.discard -= skip as u64;
        let bytes = &bytes[skip..];
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Forgets what is buffered: after the connection failed or closed, the bytes read with
    /// the last frame are not the start of anything.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.pos = 0;
        self.partial = None;
    }

    /// The next whole message or control frame, `Ok(None)` until one is complete.
    pub fn next_message(&mut self) -> Result<Option<Incoming>, Refusal> {
        loop {
            let rest = &self.buf[self.pos..];
            let header = match FrameHeader::parse(rest) {
                Ok(Some(h)) => h,
                Ok(None) => return Ok(None),
                Err(_) => {
                    return Err(Failure::protocol("8-byte payload length with non-zero MSB").into())
                }
            };
            self.check_header(&header)?;
            let len = header.payload_len as usize;
            // A data frame that would take the message over the limit ends it here, before
            // its payload is kept (python-engineio ends it once whole: the same answer).
            if !header.opcode.is_control() {
                let so_far = self.partial.as_ref().map_or(0, |p| p.data.len());
                if so_far.saturating_add(len) > self.max_message {
                    // The rest of this frame is dropped as it comes, so what follows it (the
                    // client's Close) can still be read.
                    let frame = header.header_len as u64 + header.payload_len;
                    let have = rest.len() as u64;
                    self.discard = frame.saturating_sub(have);
                    self.pos += frame.min(have) as usize;
                    self.partial = None;
                    return Err(Refusal::TooLarge);
                }
            }
            let Some(payload) = rest.get(header.header_len..header.header_len + len) else {
                return Ok(None);
            };
            let mut payload = payload.to_vec();
            if let Some(key) = header.mask {
                ws_frame::apply_mask(&mut payload, key, 0);
            }
            self.pos += header.header_len + len;
            if self.pos > 64 * 1024 {
                self.buf.drain(..self.pos);
                self.pos = 0;
            }
            if let Some(m) = self.frame(header, payload)? {
                return Ok(Some(m));
            }
        }
    }

    /// wsproto's header checks, in its order (`FrameDecoder.parse_header`, then
    /// `_process_extensions`).
    fn check_header(&self, h: &FrameHeader) -> Result<(), Failure> {
        if let OpCode::Reserved(op) = h.opcode {
            return Err(Failure::protocol(format!("Invalid opcode {op:#x}")));
        }
        if h.opcode.is_control() && !h.fin {
            return Err(Failure::protocol(
                "Invalid attempt to fragment control frame",
            ));
        }
        // §5.1: a client MUST mask every frame it sends.
        if h.mask.is_none() {
            return Err(Failure::protocol(
                "server received unexpected unmasked frame",
            ));
        }
        if h.opcode.is_control() && h.payload_len > 125 {
            return Err(Failure::protocol("Control frame with payload len > 125"));
        }
        match h.length_form {
            LengthForm::Bits16 if h.payload_len < 126 => {
                return Err(Failure::protocol(
                    "Payload length used 2 bytes when 1 would have sufficed",
                ))
            }
            LengthForm::Bits64 if h.payload_len <= 0xFFFF => {
                return Err(Failure::protocol(
                    "Payload length used 8 bytes when 2 would have sufficed",
                ))
            }
            _ => {}
        }
        // RFC 7692 §6.1: RSV1 marks the first frame of a compressed data message only.
        if h.rsv1
            && self.inflater.is_some()
            && (h.opcode.is_control() || h.opcode == OpCode::Continuation)
        {
            return Err(Failure::protocol("error in extension"));
        }
        if (h.rsv1 && self.inflater.is_none()) || h.rsv2 || h.rsv3 {
            return Err(Failure::protocol("Reserved bit set unexpectedly"));
        }
        Ok(())
    }

    fn frame(&mut self, h: FrameHeader, payload: Vec<u8>) -> Result<Option<Incoming>, Refusal> {
        match h.opcode {
            OpCode::Ping => return Ok(Some(Incoming::Ping(payload))),
            OpCode::Pong => return Ok(Some(Incoming::Pong)),
            OpCode::Close => return Ok(Some(close_frame(&payload)?)),
            _ => {}
        }
        let mut partial = match (h.opcode, self.partial.take()) {
            (OpCode::Continuation, None) => {
                return Err(Failure::protocol("unexpected CONTINUATION").into())
            }
            (OpCode::Continuation, Some(mut p)) => {
                p.data.extend_from_slice(&payload);
                p
            }
            (op, Some(_)) => {
                let name = if op == OpCode::Text {
                    "TEXT: 1"
                } else {
                    "BINARY: 2"
                };
                return Err(Failure::protocol(format!(
                    "expected CONTINUATION, got <Opcode.{name}>"
                ))
                .into());
            }
            (op, None) => Partial {
                opcode: op,
                compressed: h.rsv1,
                data: payload,
            },
        };
        if !h.fin {
            self.partial = Some(partial);
            return Ok(None);
        }
        if partial.compressed {
            let Some(inflater) = self.inflater.as_mut() else {
                return Err(Failure::protocol("Reserved bit set unexpectedly").into());
            };
            partial.data = match inflater.inflate(&partial.data, self.max_message) {
                Ok(d) => d,
                Err(crate::wire::deflate::InflateError::TooLarge(_)) => {
                    return Err(Refusal::TooLarge)
                }
                Err(_) => {
                    return Err(Failure {
                        code: 1007,
                        reason: "error in extension".into(),
                    }
                    .into())
                }
            };
        }
        match partial.opcode {
            OpCode::Text => match String::from_utf8(partial.data) {
                Ok(s) => Ok(Some(Incoming::Text(s))),
                Err(e) => Err(Failure {
                    code: 1007,
                    reason: utf8_error(e.as_bytes(), e.utf8_error()),
                }
                .into()),
            },
            _ => Ok(Some(Incoming::Binary(partial.data))),
        }
    }
}

impl Encoder {
    /// Whether messages are compressed.
    pub fn deflate(&self) -> bool {
        self.deflater.is_some()
    }

    /// Appends the frame(s) for `msg` to `out`: one unfragmented frame, unmasked (§5.1),
    /// compressed when permessage-deflate was agreed (data frames only, §6).
    pub fn encode(&mut self, msg: Outgoing<'_>, out: &mut Vec<u8>) {
        let (op, payload, compress): (OpCode, std::borrow::Cow<'_, [u8]>, bool) = match msg {
            Outgoing::Text(t) => (OpCode::Text, t.into(), true),
            Outgoing::Binary(b) => (OpCode::Binary, b.into(), true),
            Outgoing::Pong(p) => (OpCode::Pong, p.into(), false),
            Outgoing::Close(code, reason) => {
                let mut p = Vec::new();
                if let Some(c) = code {
                    p.extend_from_slice(&c.to_be_bytes());
                    p.extend_from_slice(reason.as_bytes());
                }
                (OpCode::Close, p.into(), false)
            }
        };
        let (payload, rsv1) = match (&mut self.deflater, compress) {
            (Some(d), true) => (std::borrow::Cow::Owned(d.deflate(&payload)), true),
            _ => (payload, false),
        };
        let header = FrameHeader {
            fin: true,
            rsv1,
            rsv2: false,
            rsv3: false,
            opcode: op,
            mask: None,
            payload_len: payload.len() as u64,
            length_form: FrameHeader::form_for(payload.len() as u64),
            header_len: 0,
        };
        out.extend_from_slice(&header.encode());
        out.extend_from_slice(&payload);
    }
}

/// wsproto's reading of a Close frame's payload (`_process_close`).
fn close_frame(payload: &[u8]) -> Result<Incoming, Failure> {
    match payload {
        [] => Ok(Incoming::Close(None, String::new())),
        [_] => Err(Failure::protocol("CLOSE with 1 byte payload")),
        [a, b, reason @ ..] => {
            let code = u16::from_be_bytes([*a, *b]);
            if !(1000..=4999).contains(&code) {
                return Err(Failure::protocol("CLOSE with invalid code"));
            }
            // 1005, 1006 and 1015 may only be reported locally, never sent (§7.4.1).
            if matches!(code, 1005 | 1006 | 1015) {
                return Err(Failure::protocol("remote CLOSE with local-only reason"));
            }
            let registered = matches!(code, 1000..=1003 | 1007..=1013);
            if !registered && code <= 2999 {
                return Err(Failure::protocol("CLOSE with unknown reserved code"));
            }
            match std::str::from_utf8(reason) {
                Ok(r) => Ok(Incoming::Close(Some(code), r.to_string())),
                Err(e) => Err(Failure {
                    code: 1007,
                    reason: format!("Error decoding CLOSE reason: {}", utf8_error(reason, e)),
                }),
            }
        }
    }
}

/// Python's words for a UTF-8 error (`'utf-8' codec can't decode byte 0x.. in position N:
/// ...`), which wsproto puts in its Close reason.
fn utf8_error(bytes: &[u8], e: std::str::Utf8Error) -> String {
    let at = e.valid_up_to();
    let byte = bytes.get(at).copied().unwrap_or(0);
    let why = match e.error_len() {
        None => "unexpected end of data",
        Some(_) if (0x80..0xC2).contains(&byte) || byte >= 0xF5 => "invalid start byte",
        Some(_) => "invalid continuation byte",
    };
    format!("'utf-8' codec can't decode byte {byte:#04x} in position {at}: {why}")
}

/// Answers the client's Close (RFC 6455 §5.5.1): the same code and reason back (wsproto's
/// `CloseConnection.response()`), or an empty Close when it gave none.
pub fn close_answer(code: Option<u16>, reason: &str) -> Outgoing<'_> {
    Outgoing::Close(code, reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ws_frame::encode_frame;

    const KEY: Option<[u8; 4]> = Some([1, 2, 3, 4]);

    fn decoder() -> Decoder {
        codec(None, 1000).0
    }

    fn read(c: &mut Decoder, bytes: &[u8]) -> Result<Option<Incoming>, Refusal> {
        c.feed(bytes);
        c.next_message()
    }

    fn reason(r: Result<Option<Incoming>, Refusal>) -> String {
        match r {
            Err(Refusal::Rule(f)) => format!("{} {}", f.code, f.reason),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn messages_whole_and_fragmented_byte_by_byte() {
        let mut bytes = encode_frame(OpCode::Text, false, false, KEY, b"42[\"a\",");
        bytes.extend(encode_frame(OpCode::Ping, true, false, KEY, b"hi"));
        bytes.extend(encode_frame(OpCode::Continuation, true, false, KEY, b"1]"));
        bytes.extend(encode_frame(OpCode::Binary, true, false, KEY, &[1, 2]));
        let mut c = decoder();
        let mut got = Vec::new();
        for b in bytes {
            c.feed(&[b]);
            while let Ok(Some(m)) = c.next_message() {
                got.push(m);
            }
        }
        assert_eq!(
            got,
            vec![
                Incoming::Ping(b"hi".to_vec()),
                Incoming::Text("42[\"a\",1]".into()),
                Incoming::Binary(vec![1, 2]),
            ]
        );
    }

    #[test]
    fn broken_rules_get_wsprotos_close() {
        let cases: &[(&[u8], &str)] = &[
            (
                &[0x81, 0x02, b'4', b'0'],
                "1002 server received unexpected unmasked frame",
            ),
            (&[0x83, 0x80, 0, 0, 0, 0], "1002 Invalid opcode 0x3"),
            (
                &[0x09, 0x80, 0, 0, 0, 0],
                "1002 Invalid attempt to fragment control frame",
            ),
            (
                &[0xC1, 0x80, 0, 0, 0, 0],
                "1002 Reserved bit set unexpectedly",
            ),
            (&[0x80, 0x80, 0, 0, 0, 0], "1002 unexpected CONTINUATION"),
            (
                &[0x81, 0xFE, 0, 5, 0, 0, 0, 0],
                "1002 Payload length used 2 bytes when 1 would have sufficed",
            ),
            (
                &[0x88, 0x81, 0, 0, 0, 0, 3],
                "1002 CLOSE with 1 byte payload",
            ),
            (
                &[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xED],
                "1002 remote CLOSE with local-only reason",
            ),
            (
                &[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xEC],
                "1002 CLOSE with unknown reserved code",
            ),
            (
                &[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE4],
                "1002 CLOSE with invalid code",
            ),
            (
                &[0x81, 0x81, 0, 0, 0, 0, 0xFF],
                "1007 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte",
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(reason(read(&mut decoder(), bytes)), *want, "{bytes:?}");
        }
        let mut c = decoder();
        c.feed(&encode_frame(OpCode::Text, false, false, KEY, b"a"));
        assert_eq!(
            reason(read(
                &mut c,
                &encode_frame(OpCode::Text, true, false, KEY, b"b")
            )),
            "1002 expected CONTINUATION, got <Opcode.TEXT: 1>"
        );
    }

    #[test]
    fn too_large_is_noticed_before_the_payload_is_kept() {
        let mut c = codec(None, 10).0;
        // Only the header of an 11-byte frame has arrived.
        assert_eq!(
            read(&mut c, &[0x81, 0x8B, 0, 0, 0, 0]),
            Err(Refusal::TooLarge)
        );
        let mut c = codec(None, 10).0;
        c.feed(&encode_frame(OpCode::Text, false, false, KEY, b"123456"));
        assert_eq!(c.next_message(), Ok(None));
        assert_eq!(
            read(
                &mut c,
                &encode_frame(OpCode::Continuation, true, false, KEY, b"78901")
            ),
            Err(Refusal::TooLarge)
        );
        // The rest of a refused frame is dropped; the Close after it is read.
        let mut c = codec(None, 10).0;
        let big = encode_frame(OpCode::Text, true, false, KEY, &[b'x'; 100]);
        assert_eq!(read(&mut c, &big[..30]), Err(Refusal::TooLarge));
        c.feed(&big[30..]);
        assert_eq!(
            read(
                &mut c,
                &encode_frame(OpCode::Close, true, false, KEY, &[3, 232])
            ),
            Ok(Some(Incoming::Close(Some(1000), String::new())))
        );
    }

    #[test]
    fn deflate_both_ways() {
        let params = DeflateParams {
            server_max_window_bits: Some(10),
            ..DeflateParams::default()
        };
        let (mut server, mut encoder) = codec(Some(params), 1 << 20);
        let mut out = Vec::new();
        encoder.encode(Outgoing::Text(b"3probe"), &mut out);
        encoder.encode(Outgoing::Text(b"3probe"), &mut out);
        assert_eq!(out[0], 0xC1, "FIN, RSV1, TEXT");
        // What a client reads.
        let mut inflate = Inflater::new(true);
        let (h1, _) = (FrameHeader::parse(&out).unwrap().unwrap(), ());
        let first = &out[h1.header_len..h1.header_len + h1.payload_len as usize];
        assert_eq!(inflate.inflate(first, 100).unwrap(), b"3probe");
        // A compressed client message, fragmented.
        let mut d = Deflater::new(15, true);
        let z = d.deflate(b"42[\"replace old value\",1]");
        let (a, b) = z.split_at(3);
        let mut bytes = encode_frame(OpCode::Text, false, true, KEY, a);
        bytes.extend(encode_frame(OpCode::Continuation, true, false, KEY, b));
        assert_eq!(
            read(&mut server, &bytes),
            Ok(Some(Incoming::Text("42[\"replace old value\",1]".into())))
        );
        // RSV1 on a continuation frame is the extension's error.
        let bad = encode_frame(OpCode::Continuation, true, true, KEY, b"x");
        assert_eq!(reason(read(&mut server, &bad)), "1002 error in extension");
    }

    #[test]
    fn close_frames() {
        let close = |p: &[u8]| {
            read(
                &mut decoder(),
                &encode_frame(OpCode::Close, true, false, KEY, p),
            )
        };
        assert_eq!(close(b""), Ok(Some(Incoming::Close(None, String::new()))));
        assert_eq!(
            close(&[0x03, 0xE8, b'b', b'y', b'e']),
            Ok(Some(Incoming::Close(Some(1000), "bye".into())))
        );
        assert_eq!(
            close(&[0x0F, 0xA0]),
            Ok(Some(Incoming::Close(Some(4000), String::new())))
        );
        let mut out = Vec::new();
        let mut encoder = codec(None, 10).1;
        encoder.encode(close_answer(Some(1000), ""), &mut out);
        assert_eq!(out, [0x88, 0x02, 0x03, 0xE8]);
        out.clear();
        encoder.encode(close_answer(None, ""), &mut out);
        assert_eq!(out, [0x88, 0x00]);
    }
}
