//! Sans-IO decoders and encoders for every protocol layer dispel explains.
//!
//! The contract, for every decoder here:
//! - No I/O, no clock, no tokio: bytes in, values out. Time, when needed, is an argument.
//! - Input that ends too early is "incomplete" (`Ok(None)`), never an error: the caller waits
//!   for more bytes and calls again with the longer buffer.
//! - Input that breaks a rule is an error whose variant is named after the rule and whose
//!   message cites the spec section.
//! - No input, however malformed or truncated, panics (every module has a prefix sweep test).
//! - Every on-wire code is an enum with an `Unknown(x)` or `Reserved(x)` arm, so a decoder can
//!   show what it saw even when it cannot accept it.

pub mod deflate;
pub mod engineio;
pub mod handshake;
pub mod http;
pub mod pyjson;
pub mod resp;
pub mod socketio;
pub mod ws_frame;
pub mod ws_message;

/// Lower-case hex of `bytes`, for trace fields.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}
