//! permessage-deflate (RFC 7692): inflating compressed WebSocket messages, and deflating the
//! ones `dispel serve` sends.
//!
//! A compressed message is raw DEFLATE (RFC 1951) with the final empty stored block's tail
//! `00 00 FF FF` removed (§7.2.1); the receiver appends it back before inflating (§7.2.2).
//! With "context takeover" (the default) the LZ77 window carries over from one message to the
//! next, so one decompressor lives as long as the connection; with `*_no_context_takeover`
//! it starts afresh for every message.

use std::fmt;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The tail the sender removed (RFC 7692 §7.2.1).
pub const TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InflateError {
    /// The data is not valid DEFLATE (RFC 1951), e.g. after a missed message broke the window.
    Corrupt(String),
    /// The message inflates to more than the limit: a decompression bomb, or just too big.
    TooLarge(usize),
}

impl fmt::Display for InflateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InflateError::Corrupt(e) => write!(f, "invalid DEFLATE data (RFC 7692 §7.2.2): {e}"),
            InflateError::TooLarge(n) => {
                write!(
                    f,
                    "inflated message exceeds the {n}-byte limit (a decompression bomb, or just too big)"
                )
            }
        }
    }
}

impl std::error::Error for InflateError {}

/// One direction's decompressor.
pub struct Inflater {
    inner: Decompress,
    context_takeover: bool,
}

impl fmt::Debug for Inflater {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inflater")
            .field("context_takeover", &self.context_takeover)
            .finish()
    }
}

impl Inflater {
    /// `context_takeover`: false when the sender's `*_no_context_takeover` was agreed.
    /// A window smaller than 15 bits only limits the compressor, so one 32 KiB window
    /// inflates every `*_max_window_bits` setting.
    pub fn new(context_takeover: bool) -> Inflater {
        Inflater {
            inner: Decompress::new(false),
            context_takeover,
        }
    }

    /// Inflates one whole message (all its frames' payloads, concatenated).
    pub fn inflate(&mut self, compressed: &[u8], max_len: usize) -> Result<Vec<u8>, InflateError> {
        if !self.context_takeover {
            self.inner.reset(false);
        }
        let mut out = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        for input in [compressed, &TAIL[..]] {
            let mut pos = 0;
            loop {
                let (in_before, out_before) = (self.inner.total_in(), self.inner.total_out());
                let status = self
                    .inner
                    .decompress(&input[pos..], &mut chunk, FlushDecompress::Sync)
                    .map_err(|e| InflateError::Corrupt(e.to_string()))?;
                let consumed = (self.inner.total_in() - in_before) as usize;
                let produced = (self.inner.total_out() - out_before) as usize;
                pos += consumed;
                if out.len() + produced > max_len {
                    return Err(InflateError::TooLarge(max_len));
                }
                out.extend_from_slice(&chunk[..produced]);
                let input_done = pos >= input.len() && produced < chunk.len();
                if status == Status::StreamEnd || input_done || (consumed == 0 && produced == 0) {
                    break;
                }
            }
        }
        Ok(out)
    }
}

/// One direction's compressor (the sender's side of RFC 7692 §7.2.1).
pub struct Deflater {
    inner: Compress,
    context_takeover: bool,
}

impl fmt::Debug for Deflater {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deflater")
            .field("context_takeover", &self.context_takeover)
            .finish()
    }
}

impl Deflater {
    /// `window_bits`: the agreed `*_max_window_bits` (9 to 15; zlib itself makes 8 into 9).
    /// `context_takeover`: false when this side's `*_no_context_takeover` was agreed.
    pub fn new(window_bits: u8, context_takeover: bool) -> Deflater {
        Deflater {
            inner: Compress::new_with_window_bits(
                Compression::default(),
                false,
                window_bits.clamp(9, 15),
            ),
            context_takeover,
        }
    }

    /// Compresses one whole message: raw DEFLATE ending in a sync flush, whose empty stored
    /// block's `00 00 FF FF` is then removed (§7.2.1).
    pub fn deflate(&mut self, message: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(message.len() / 2 + 64);
        let mut input = message;
        loop {
            let before = self.inner.total_in();
            if self
                .inner
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .is_err()
            {
                // zlib only fails on a misused stream; start afresh rather than send garbage.
                self.inner.reset();
                out.clear();
                input = message;
                continue;
            }
            input = &input[(self.inner.total_in() - before) as usize..];
            // Done when all input is taken and the flush fitted (zlib left room unused).
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
            out.reserve(out.capacity().max(256));
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if !self.context_takeover {
            self.inner.reset();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compresses like a permessage-deflate sender: sync flush, tail removed.
    fn compress(c: &mut Compress, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 64);
        c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
        assert!(out.ends_with(&TAIL));
        out.truncate(out.len() - 4);
        out
    }

    #[test]
    fn rfc_7692_hello() {
        // RFC 7692 §7.2.3.1: "Hello" compressed with no context takeover.
        let mut i = Inflater::new(false);
        let data = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(i.inflate(&data, 100).unwrap(), b"Hello");
        assert_eq!(i.inflate(&data, 100).unwrap(), b"Hello");
        // §7.2.3.2: the second "Hello" with context takeover refers back to the first.
        let mut i = Inflater::new(true);
        assert_eq!(i.inflate(&data, 100).unwrap(), b"Hello");
        assert_eq!(
            i.inflate(&[0xf2, 0x00, 0x11, 0x00, 0x00], 100).unwrap(),
            b"Hello"
        );
    }

    #[test]
    fn context_takeover_round_trip() {
        let mut c = Compress::new(Compression::default(), false);
        let mut i = Inflater::new(true);
        for n in 0..20 {
            let msg = format!("42[\"replaced values\",{{\"item\":\"lamp\",\"bid\":{n}}}]");
            let z = compress(&mut c, msg.as_bytes());
            assert_eq!(i.inflate(&z, 1 << 20).unwrap(), msg.as_bytes());
        }
    }

    #[test]
    fn deflater_round_trips_with_and_without_context_takeover() {
        for (bits, takeover) in [(15, true), (10, true), (9, false), (15, false)] {
            let mut d = Deflater::new(bits, takeover);
            let mut i = Inflater::new(takeover);
            for n in 0..50 {
                let msg = format!("42[\"replaced values\",{{\"item\":\"lamp\",\"bid\":{n}}}]");
                let z = d.deflate(msg.as_bytes());
                assert!(!z.ends_with(&TAIL));
                assert_eq!(i.inflate(&z, 1 << 20).unwrap(), msg.as_bytes());
            }
            let big = "x".repeat(300_000) + "end";
            let z = d.deflate(big.as_bytes());
            assert_eq!(i.inflate(&z, 1 << 20).unwrap(), big.as_bytes());
            assert_eq!(i.inflate(&d.deflate(b""), 10).unwrap(), b"");
        }
    }

    #[test]
    fn large_and_bomb() {
        let big = vec![b'a'; 300_000];
        let mut c = Compress::new(Compression::default(), false);
        let z = compress(&mut c, &big);
        assert!(z.len() < 2000);
        assert_eq!(Inflater::new(true).inflate(&z, 1 << 20).unwrap(), big);
        assert_eq!(
            Inflater::new(true).inflate(&z, 1000),
            Err(InflateError::TooLarge(1000))
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for junk in [&b"\xff\xff\xff\xff"[..], b"\x07", b"hello world"] {
            let _ = Inflater::new(true).inflate(junk, 1000);
        }
        assert!(matches!(
            Inflater::new(true).inflate(b"\xff\xff\xff\xff", 1000),
            Err(InflateError::Corrupt(_))
        ));
    }
}
