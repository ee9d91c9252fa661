//! WebSocket frames (RFC 6455 §5.2): the header, field by field, and unmasking.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! | Masking-key (continued)       |          Payload Data         |
//! +-------------------------------- - - - - - - - - - - - - - - - +
//! ```

use std::fmt;

/// The 4-bit opcode (RFC 6455 §5.2, §11.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
    /// 0x3-0x7 (data) and 0xB-0xF (control) are reserved.
    Reserved(u8),
}

impl OpCode {
    pub fn from_u8(v: u8) -> OpCode {
        match v {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            other => OpCode::Reserved(other),
        }
    }

    pub fn as_u8(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
            OpCode::Reserved(v) => v,
        }
    }

    /// Control frames have the high bit of the opcode set (§5.5).
    pub fn is_control(self) -> bool {
        self.as_u8() & 0x8 != 0
    }

    /// Lower-case name, also the `kind` used to pick source links.
    pub fn name(self) -> &'static str {
        match self {
            OpCode::Continuation => "continuation",
            OpCode::Text => "text",
            OpCode::Binary => "binary",
            OpCode::Close => "close",
            OpCode::Ping => "ping",
            OpCode::Pong => "pong",
            OpCode::Reserved(_) => "reserved",
        }
    }
}

impl OpCode {
    /// The name as traces show it (`TEXT`); `RESERVED` for the reserved codes, whose number
    /// `Display` adds.
    pub fn upper_name(self) -> &'static str {
        match self {
            OpCode::Continuation => "CONTINUATION",
            OpCode::Text => "TEXT",
            OpCode::Binary => "BINARY",
            OpCode::Close => "CLOSE",
            OpCode::Ping => "PING",
            OpCode::Pong => "PONG",
            OpCode::Reserved(_) => "RESERVED",
        }
    }
}

impl fmt::Display for OpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpCode::Reserved(v) => write!(f, "RESERVED(0x{v:x})"),
            other => f.write_str(other.upper_name()),
        }
    }
}

/// How the payload length was written (§5.2 "Payload length").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthForm {
    /// 0-125 in the 7-bit field.
    Bits7,
    /// 126, then a 16-bit length.
    Bits16,
    /// 127, then a 64-bit length.
    Bits64,
}

impl LengthForm {
    pub fn name(self) -> &'static str {
        match self {
            LengthForm::Bits7 => "7-bit",
            LengthForm::Bits16 => "16-bit",
            LengthForm::Bits64 => "64-bit",
        }
    }
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub fin: bool,
    pub rsv1: bool,
    pub rsv2: bool,
    pub rsv3: bool,
    pub opcode: OpCode,
    pub mask: Option<[u8; 4]>,
    pub payload_len: u64,
    pub length_form: LengthForm,
    /// 2 to 14 bytes.
    pub header_len: usize,
}

/// A header that can never be valid, whoever sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// §5.2: "the most significant bit MUST be 0" in the 64-bit length.
    LengthHighBitSet,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::LengthHighBitSet => {
                f.write_str("64-bit payload length with its top bit set (RFC 6455 §5.2)")
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// Rules a frame breaks in context (who sent it, what was negotiated). The frame is still
/// decodable; the receiver must fail the connection with the close code given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameViolation {
    /// §5.1: a client MUST mask every frame it sends.
    UnmaskedClientFrame,
    /// §5.1: a server MUST NOT mask any frame it sends.
    MaskedServerFrame,
    /// §5.2: RSV bits MUST be 0 unless an extension defines them.
    ReservedBitsSet,
    /// §5.2: opcodes 0x3-0x7 and 0xB-0xF are reserved.
    ReservedOpcode,
    /// §5.5: control frames are at most 125 bytes and never fragmented.
    BadControlFrame,
}

impl FrameViolation {
    /// The status code for the Close frame (§7.4.1): all protocol errors are 1002.
    pub fn close_code(self) -> u16 {
        1002
    }
}

impl fmt::Display for FrameViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FrameViolation::UnmaskedClientFrame => {
                "client frame not masked (RFC 6455 §5.1: a client MUST mask all frames)"
            }
            FrameViolation::MaskedServerFrame => {
                "server frame masked (RFC 6455 §5.1: a server MUST NOT mask)"
            }
            FrameViolation::ReservedBitsSet => {
                "RSV bit set without a negotiated extension (RFC 6455 §5.2)"
            }
            FrameViolation::ReservedOpcode => "reserved opcode (RFC 6455 §5.2)",
            FrameViolation::BadControlFrame => {
                "control frame fragmented or longer than 125 bytes (RFC 6455 §5.5)"
            }
        })
    }
}

impl FrameHeader {
    /// Parses a header at the start of `buf`. `Ok(None)` until all of it is there.
    pub fn parse(buf: &[u8]) -> Result<Option<FrameHeader>, FrameError> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        let masked = b1 & 0x80 != 0;
        let (payload_len, length_form, mut pos) = match b1 & 0x7F {
            126 => {
                let Some(ext) = buf.get(2..4) else {
                    return Ok(None);
                };
                (
                    u16::from_be_bytes([ext[0], ext[1]]) as u64,
                    LengthForm::Bits16,
                    4,
                )
            }
            127 => {
                let Some(ext) = buf.get(2..10) else {
                    return Ok(None);
                };
                let mut b = [0u8; 8];
                b.copy_from_slice(ext);
                let len = u64::from_be_bytes(b);
                if len >> 63 != 0 {
                    return Err(FrameError::LengthHighBitSet);
                }
                (len, LengthForm::Bits64, 10)
            }
            n => (n as u64, LengthForm::Bits7, 2),
        };
        let mask = if masked {
            let Some(key) = buf.get(pos..pos + 4) else {
                return Ok(None);
            };
            pos += 4;
            Some([key[0], key[1], key[2], key[3]])
        } else {
            None
        };
        Ok(Some(FrameHeader {
            fin: b0 & 0x80 != 0,
            rsv1: b0 & 0x40 != 0,
            rsv2: b0 & 0x20 != 0,
            rsv3: b0 & 0x10 != 0,
            opcode: OpCode::from_u8(b0 & 0x0F),
            mask,
            payload_len,
            length_form,
            header_len: pos,
        }))
    }

    /// The rules this frame breaks, given who sent it and whether RSV1 means "compressed".
    pub fn violation(&self, from_client: bool, deflate: bool) -> Option<FrameViolation> {
        if from_client && self.mask.is_none() {
            return Some(FrameViolation::UnmaskedClientFrame);
        }
        if !from_client && self.mask.is_some() {
            return Some(FrameViolation::MaskedServerFrame);
        }
        if let OpCode::Reserved(_) = self.opcode {
            return Some(FrameViolation::ReservedOpcode);
        }
        // RFC 7692 §6: RSV1 marks the first frame of a compressed data message.
        let rsv1_ok = deflate && !self.opcode.is_control();
        if (self.rsv1 && !rsv1_ok) || self.rsv2 || self.rsv3 {
            return Some(FrameViolation::ReservedBitsSet);
        }
        if self.opcode.is_control() && (!self.fin || self.payload_len > 125) {
            return Some(FrameViolation::BadControlFrame);
        }
        None
    }

    /// Encodes a header (used to synthesize captures and in tests).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(14);
        let b0 = (self.fin as u8) << 7
            | (self.rsv1 as u8) << 6
            | (self.rsv2 as u8) << 5
            | (self.rsv3 as u8) << 4
            | self.opcode.as_u8() & 0x0F;
        out.push(b0);
        let m = if self.mask.is_some() { 0x80 } else { 0 };
        match self.length_form {
            LengthForm::Bits7 => out.push(m | self.payload_len as u8),
            LengthForm::Bits16 => {
                out.push(m | 126);
                out.extend_from_slice(&(self.payload_len as u16).to_be_bytes());
            }
            LengthForm::Bits64 => {
                out.push(m | 127);
                out.extend_from_slice(&self.payload_len.to_be_bytes());
            }
        }
        if let Some(key) = self.mask {
            out.extend_from_slice(&key);
        }
        out
    }

    /// The shortest length form for `len` (what a conforming sender uses).
    pub fn form_for(len: u64) -> LengthForm {
        match len {
            0..=125 => LengthForm::Bits7,
            126..=0xFFFF => LengthForm::Bits16,
            _ => LengthForm::Bits64,
        }
    }
}

/// A whole frame: the header for `payload` in its shortest length form, then the payload,
/// masked with `mask` when given (used to synthesize captures and in tests).
pub fn encode_frame(
    opcode: OpCode,
    fin: bool,
    rsv1: bool,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) -> Vec<u8> {
    let header = FrameHeader {
        fin,
        rsv1,
        rsv2: false,
        rsv3: false,
        opcode,
        mask,
        payload_len: payload.len() as u64,
        length_form: FrameHeader::form_for(payload.len() as u64),
        header_len: 0,
    };
    let mut out = header.encode();
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key, 0);
    }
    out
}

/// Unmasks (or masks: XOR is its own inverse) `data` in place, `offset` bytes into the payload
/// (§5.3: octet i is XORed with key[i mod 4]).
pub fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    // Rotate the key so that index 0 lines up with `offset`, then work a word at a time.
    let k = u32::from_ne_bytes([
        key[offset % 4],
        key[(offset + 1) % 4],
        key[(offset + 2) % 4],
        key[(offset + 3) % 4],
    ]);
    let mut chunks = data.chunks_exact_mut(4);
    for c in &mut chunks {
        let w = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) ^ k;
        c.copy_from_slice(&w.to_ne_bytes());
    }
    let rest = chunks.into_remainder();
    let kb = k.to_ne_bytes();
    for (i, b) in rest.iter_mut().enumerate() {
        *b ^= kb[i];
    }
}

/// Decodes a Close frame's payload (§5.5.1): optional 2-byte code, then a UTF-8 reason.
pub fn close_payload(payload: &[u8]) -> (Option<u16>, String) {
    match payload {
        [a, b, rest @ ..] => (
            Some(u16::from_be_bytes([*a, *b])),
            String::from_utf8_lossy(rest).into_owned(),
        ),
        _ => (None, String::new()),
    }
}

/// The registered meaning of a close code (§7.4.1).
pub fn close_code_meaning(code: u16) -> &'static str {
    match code {
        1000 => "normal closure",
        1001 => "going away",
        1002 => "protocol error",
        1003 => "unsupported data",
        1005 => "no status received",
        1006 => "abnormal closure",
        1007 => "invalid frame payload data",
        1008 => "policy violation",
        1009 => "message too big",
        1010 => "mandatory extension",
        1011 => "internal error",
        1015 => "TLS handshake",
        3000..=3999 => "registered by libraries",
        4000..=4999 => "private use",
        _ => "unassigned",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6455 §5.7: a single-frame masked text message "Hello".
    const MASKED_HELLO: [u8; 11] = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];

    #[test]
    fn rfc_masked_hello() {
        let h = FrameHeader::parse(&MASKED_HELLO).unwrap().unwrap();
        assert!(h.fin);
        assert_eq!(h.opcode, OpCode::Text);
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        assert_eq!((h.payload_len, h.header_len), (5, 6));
        assert_eq!(h.length_form, LengthForm::Bits7);
        let mut p = MASKED_HELLO[6..].to_vec();
        apply_mask(&mut p, h.mask.unwrap(), 0);
        assert_eq!(p, b"Hello");
        assert_eq!(h.violation(true, false), None);
        assert_eq!(
            h.violation(false, false),
            Some(FrameViolation::MaskedServerFrame)
        );
        assert_eq!(h.encode(), MASKED_HELLO[..6]);
    }

    #[test]
    fn every_prefix_of_a_header_is_incomplete() {
        let h = FrameHeader {
            fin: true,
            rsv1: false,
            rsv2: false,
            rsv3: false,
            opcode: OpCode::Binary,
            mask: Some([1, 2, 3, 4]),
            payload_len: 70_000,
            length_form: LengthForm::Bits64,
            header_len: 14,
        };
        let bytes = h.encode();
        assert_eq!(bytes.len(), 14);
        for n in 0..bytes.len() {
            assert_eq!(FrameHeader::parse(&bytes[..n]), Ok(None), "prefix {n}");
        }
        assert_eq!(FrameHeader::parse(&bytes), Ok(Some(h)));
    }

    #[test]
    fn length_forms() {
        // RFC 6455 §5.7: 256 bytes in one unmasked binary frame.
        let h = FrameHeader::parse(&[0x82, 0x7E, 0x01, 0x00])
            .unwrap()
            .unwrap();
        assert_eq!((h.payload_len, h.length_form), (256, LengthForm::Bits16));
        let h = FrameHeader::parse(&[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0])
            .unwrap()
            .unwrap();
        assert_eq!((h.payload_len, h.length_form), (65536, LengthForm::Bits64));
        assert_eq!(
            FrameHeader::parse(&[0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Err(FrameError::LengthHighBitSet)
        );
        assert_eq!(FrameHeader::form_for(125), LengthForm::Bits7);
        assert_eq!(FrameHeader::form_for(126), LengthForm::Bits16);
        assert_eq!(FrameHeader::form_for(65536), LengthForm::Bits64);
    }

    #[test]
    fn violations() {
        let parse = |b: &[u8]| FrameHeader::parse(b).unwrap().unwrap();
        assert_eq!(
            parse(&[0x81, 0x00]).violation(true, false),
            Some(FrameViolation::UnmaskedClientFrame)
        );
        assert_eq!(
            parse(&[0x83, 0x00]).violation(false, false),
            Some(FrameViolation::ReservedOpcode)
        );
        assert_eq!(
            parse(&[0xC1, 0x00]).violation(false, false),
            Some(FrameViolation::ReservedBitsSet)
        );
        assert_eq!(parse(&[0xC1, 0x00]).violation(false, true), None);
        assert_eq!(
            parse(&[0xC9, 0x00]).violation(false, true),
            Some(FrameViolation::ReservedBitsSet)
        );
        assert_eq!(
            parse(&[0x09, 0x00]).violation(false, false),
            Some(FrameViolation::BadControlFrame)
        );
        assert_eq!(
            parse(&[0x89, 0x7E, 0, 200]).violation(false, false),
            Some(FrameViolation::BadControlFrame)
        );
    }

    #[test]
    fn masking_matches_the_definition_at_every_length_and_offset() {
        let key = [0xde, 0xad, 0xbe, 0xef];
        for len in 0..40 {
            for offset in 0..8 {
                let data: Vec<u8> = (0..len as u8).collect();
                let mut fast = data.clone();
                apply_mask(&mut fast, key, offset);
                let slow: Vec<u8> = data
                    .iter()
                    .enumerate()
                    .map(|(i, b)| b ^ key[(i + offset) % 4])
                    .collect();
                assert_eq!(fast, slow, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn close_payloads() {
        assert_eq!(close_payload(&[0x03, 0xE8]), (Some(1000), String::new()));
        assert_eq!(
            close_payload(&[0x03, 0xE9, b'b', b'y', b'e']),
            (Some(1001), "bye".to_string())
        );
        assert_eq!(close_payload(&[]), (None, String::new()));
        assert_eq!(close_payload(&[1]), (None, String::new()));
        assert_eq!(close_code_meaning(1009), "message too big");
    }
}
