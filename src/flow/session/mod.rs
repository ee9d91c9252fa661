//! The per-connection state machine: HTTP/1.1, then either Engine.IO polling bodies or the
//! WebSocket handshake and frames, then Engine.IO and Socket.IO packets.
//!
//! Sans-IO: bytes and their time go in through [`Session::data`], events come out into the
//! caller's vector. Each direction has its own buffer and mode; the server's 101 response
//! switches both directions to WebSocket framing.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::memo;
use super::present::*;
use crate::trace::{Dir, Event, Fields, Kind, Shared, Stage};
use crate::wire::deflate::Inflater;
use crate::wire::engineio::{self, OpenInfo};
use crate::wire::handshake::{self, DeflateParams};
use crate::wire::hex;
use crate::wire::http::{self, BodyKind};
use crate::wire::socketio::{self, PacketType};
use crate::wire::ws_frame::{self, FrameHeader, OpCode};

/// Decoding limits. Anything larger is reported and skipped, never buffered.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_headers: usize,
    pub max_head_bytes: usize,
    /// Largest HTTP body, WebSocket frame payload or message decoded.
    pub max_message: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_headers: 128,
            max_head_bytes: 64 * 1024,
            max_message: 16 * 1024 * 1024,
        }
    }
}

/// Requests remembered while their responses are outstanding.
const MAX_PENDING_REQUESTS: usize = 64;

/// Buffer capacity a connection keeps between messages.
const RETAINED_BUFFER: usize = 16 * 1024;

/// What a body is, so that it can be decoded when complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyMeaning {
    /// An Engine.IO polling payload.
    EioPayload,
    /// The short text of an error response (`Invalid session`, `Not an accepted origin.`):
    /// its `http.response` waits for it and carries it as `body`.
    ErrorText,
    /// Anything else (the page, a long body).
    Other,
}

/// Error bodies longer than this are not carried (a server's HTML error page is shown by
/// its status alone).
const ERROR_TEXT_MAX: u64 = 2048;

#[derive(Debug)]
enum Mode {
    /// Waiting for a request (c2s) or response (s2c) head.
    Head,
    /// Not known yet: a capture that starts mid-connection.
    Sniff,
    /// In a body of known length.
    Body {
        remaining: u64,
        meaning: BodyMeaning,
    },
    Chunked {
        meaning: BodyMeaning,
    },
    /// A response body that ends with the connection.
    UntilClose {
        meaning: BodyMeaning,
    },
    /// c2s after an upgrade request: whether the bytes that follow are frames depends on the
    /// server's answer.
    AwaitUpgrade,
    WebSocket,
    /// After this side's Close frame (RFC 6455 §5.5.1): nothing more should come. A well-formed
    /// frame is still shown (with an error); anything else is reported as bytes, never
    /// decoded as a bogus frame.
    AfterClose,
    /// Skipping the payload of a frame too large to decode.
    SkipPayload {
        remaining: u64,
    },
    /// Nothing more here can be decoded: report bytes as they come.
    Opaque {
        why: &'static str,
    },
}

#[derive(Debug)]
struct PendingRequest {
    method: String,
    kind: Kind,
    ws_key: Option<String>,
    offered_extensions: Vec<String>,
}

/// A data message being assembled from frames.
#[derive(Debug)]
struct Assembly {
    opcode: OpCode,
    compressed: bool,
    fragments: usize,
    data: Vec<u8>,
    oversized: bool,
}

#[derive(Debug)]
struct Side {
    buf: Vec<u8>,
    mode: Mode,
    body: Vec<u8>,
    assembly: Option<Assembly>,
    inflater: Option<Inflater>,
    sio_binary: Option<socketio::Assembly<Box<RawValue>>>,
    /// This side sent its FIN.
    fin: bool,
}

impl Side {
    fn new(mode: Mode) -> Side {
        Side {
            buf: Vec::new(),
            mode,
            body: Vec::new(),
            assembly: None,
            inflater: None,
            sio_binary: None,
            fin: false,
        }
    }
}

/// One TCP connection, decoded.
#[derive(Debug)]
pub struct Session {
    conn: u64,
    limits: Limits,
    sides: [Side; 2],
    pending: VecDeque<PendingRequest>,
    deflate: Option<DeflateParams>,
    /// The Engine.IO session id, once seen (OPEN packet or `sid` query parameter); set only by
    /// `name_session`, with `sid_field`.
    sid: Option<String>,
    /// `sid` as the first field of this connection's Engine.IO and Socket.IO events, shared
    /// by those the memo makes.
    sid_field: Option<Arc<Shared>>,
    /// Which response a request on this connection is waiting for (for http.response kinds).
    last_kind: Kind,
    /// Bit `1 << stage` set: events of that stage are wanted. Decoding goes on regardless;
    /// only the building of unwanted events (hex, text copies, JSON) is skipped.
    interest: u32,
    /// An error response's `http.response`, waiting for its short body.
    held: Option<Event>,
    /// The caller's memo of frames decoded before (the copies of a broadcast), if it keeps one.
    memo: Option<memo::SharedMemo>,
    /// Which side closed its direction first (replay: the first FIN).
    first_fin: Option<Dir>,
    /// The connection carried a WebSocket (its close takes another path).
    websocket: bool,
    /// A Close frame was seen, either way: the WebSocket ended by its closing handshake.
    close_frame: bool,
}

mod http_exchange;
mod packets;
mod websocket;

impl Session {
    /// A connection whose start (the SYN, the accept) was seen.
    pub fn new(conn: u64, limits: Limits) -> Session {
        Session {
            conn,
            limits,
            sides: [Side::new(Mode::Head), Side::new(Mode::Head)],
            pending: VecDeque::new(),
            deflate: None,
            sid: None,
            sid_field: None,
            last_kind: Kind::Page,
            interest: u32::MAX,
            held: None,
            memo: None,
            first_fin: None,
            websocket: false,
            close_frame: false,
        }
    }

    /// Only build events of these stages (`Tracer::interest` gives the mask for a connection).
    pub fn set_interest(&mut self, mask: u32) {
        self.interest = mask;
    }

    fn wants(&self, stage: Stage) -> bool {
        self.interest & stage.bit() != 0
    }

    /// A connection first seen in the middle (a capture that starts late).
    pub fn new_midstream(conn: u64, limits: Limits) -> Session {
        let mut s = Session::new(conn, limits);
        s.sides = [Side::new(Mode::Sniff), Side::new(Mode::Sniff)];
        s
    }

    /// Shares the caller's memo: a frame byte for byte the same as one decoded before (the
    /// copies of a broadcast) gets that frame's events instead of being decoded again.
    pub fn with_memo(mut self, memo: memo::SharedMemo) -> Session {
        self.memo = Some(memo);
        self
    }

    pub fn conn(&self) -> u64 {
        self.conn
    }

    /// The Engine.IO session id, once known.
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    /// The Engine.IO session id is now known (the OPEN packet, or a request's `sid`).
    fn name_session(&mut self, sid: String) {
        let mut field = Fields::with_capacity(1);
        field.push("sid", sid.as_str());
        self.sid_field = Some(field.share());
        self.sid = Some(sid);
    }

    fn ev(&self, stage: Stage, t: f64, dir: Option<Dir>, summary: String) -> Event {
        let mut e = Event::new(stage, t, Some(self.conn), dir, summary);
        if let Some(sid) = &self.sid {
            if memo::carries_sid(stage) {
                e.fields.insert("sid", sid.clone());
            }
        }
        e
    }

    fn error(&self, t: f64, dir: Dir, rule: &str, at: Stage, out: &mut Vec<Event>) {
        out.push(
            self.ev(Stage::Error, t, Some(dir), format!("{at}: {rule}"))
                .with("rule", rule)
                .with("where", at.as_str()),
        );
    }

    /// The `tcp.accept` event for this connection.
    pub fn accept_event(&self, t: f64, client: SocketAddr, server: SocketAddr) -> Event {
        self.ev(
            Stage::TcpAccept,
            t,
            None,
            format!("{} -> {}", addr(client), addr(server)),
        )
        .with("client", addr(client))
        .with("server", addr(server))
    }

    /// Bytes that went one way, in order, with the time they were seen.
    pub fn data(&mut self, dir: Dir, t: f64, bytes: &[u8], out: &mut Vec<Event>) {
        self.sides[dir.index()].buf.extend_from_slice(bytes);
        self.process(dir, t, out);
    }

    /// `len` bytes of `dir` were never seen (a capture lost them).
    pub fn gap(&mut self, dir: Dir, t: f64, len: u64, out: &mut Vec<Event>) {
        self.flush_held(out);
        out.push(
            self.ev(
                Stage::TcpData,
                t,
                Some(dir),
                format!("gap: {len} bytes missing from the capture"),
            )
            .with("gap", len),
        );
        let side = &mut self.sides[dir.index()];
        side.buf.clear();
        side.assembly = None;
        side.mode = match side.mode {
            // HTTP can find its feet again at the next head; frames cannot.
            Mode::Head | Mode::Body { .. } | Mode::Chunked { .. } | Mode::Sniff => Mode::Sniff,
            _ => Mode::Opaque {
                why: "after a gap, frame boundaries are lost",
            },
        };
    }

    /// One side sent its FIN. Returns true when both sides have.
    pub fn half_close(&mut self, dir: Dir) -> bool {
        if self.sides.iter().all(|s| !s.fin) {
            self.first_fin = Some(dir);
        }
        self.sides[dir.index()].fin = true;
        self.sides.iter().all(|s| s.fin)
    }

    /// Which side sent the first FIN, once one has.
    pub fn first_fin(&self) -> Option<Dir> {
        self.first_fin
    }

    /// A held error response goes out as it is (its body did not come whole).
    fn flush_held(&mut self, out: &mut Vec<Event>) {
        if let Some(e) = self.held.take() {
            out.push(e);
        }
    }

    /// The connection ended. `how`: "fin", "rst", "closed", "end of capture"...
    pub fn close(&mut self, t: f64, how: &str, out: &mut Vec<Event>) {
        self.flush_held(out);
        for dir in [Dir::C2S, Dir::S2C] {
            let side = &mut self.sides[dir.index()];
            if let Mode::UntilClose { meaning } = side.mode {
                let body = std::mem::take(&mut side.body);
                side.mode = Mode::Head;
                self.finish_body(dir, t, meaning, body, out);
            }
            let left = self.sides[dir.index()].buf.len();
            if left > 0 {
                out.push(
                    self.ev(
                        Stage::TcpData,
                        t,
                        Some(dir),
                        format!("{left} bytes left undecoded at close (incomplete message)"),
                    )
                    .with("len", left)
                    .with("hex", hex(clip_bytes(&self.sides[dir.index()].buf)))
                    .with("reason", "incomplete at close"),
                );
                self.sides[dir.index()].buf.clear();
            }
        }
        out.push(
            self.ev(
                Stage::TcpClose,
                t,
                None,
                format!("connection closed ({how})"),
            )
            .with("how", how),
        );
        if self.websocket {
            if let Some(e) = out.last_mut() {
                e.kind = Some(if self.close_frame {
                    Kind::Websocket
                } else {
                    Kind::WebsocketAbrupt
                });
            }
        }
    }

    fn process(&mut self, dir: Dir, t: f64, out: &mut Vec<Event>) {
        let mut consumed = 0;
        loop {
            let progress = self.step(dir, t, consumed, out);
            match progress {
                Some(n) => consumed += n,
                None => break,
            }
            if consumed >= self.sides[dir.index()].buf.len() {
                // Modes that wait for the close or for the other side still get a chance to
                // act on an empty buffer only when new bytes come.
                break;
            }
        }
        let buf = &mut self.sides[dir.index()].buf;
        if consumed >= buf.len() {
            buf.clear();
        } else if consumed > 0 {
            buf.drain(..consumed);
        }
        // One big message must not pin its buffer's size for the life of the connection:
        // with thousands of connections that is where replay memory would creep up.
        if buf.capacity() > RETAINED_BUFFER && buf.len() <= RETAINED_BUFFER / 2 {
            buf.shrink_to(RETAINED_BUFFER);
        }
    }

    /// One decoding step at `at` in the direction's buffer. `Some(n)`: consumed n bytes (n may
    /// be 0 after a mode change); `None`: needs more bytes.
    fn step(&mut self, dir: Dir, t: f64, at: usize, out: &mut Vec<Event>) -> Option<usize> {
        let side = &self.sides[dir.index()];
        let buf = &side.buf[at..];
        match side.mode {
            Mode::Sniff => {
                let looks_http = match dir {
                    Dir::C2S => http::starts_request(buf),
                    Dir::S2C => http::starts_response(buf),
                };
                let could_become_http = match dir {
                    Dir::C2S => http::could_start_request(buf),
                    Dir::S2C => http::could_start_response(buf),
                };
                if buf.is_empty() || (could_become_http && !looks_http) {
                    return None;
                }
                self.sides[dir.index()].mode = if looks_http {
                    Mode::Head
                } else {
                    Mode::WebSocket
                };
                Some(0)
            }
            Mode::Head => match dir {
                Dir::C2S => self.request_head(t, at, out),
                Dir::S2C => self.response_head(t, at, out),
            },
            Mode::Body { remaining, meaning } => {
                let take = (buf.len() as u64).min(remaining) as usize;
                let side = &mut self.sides[dir.index()];
                if side.body.len() + take <= self.limits.max_message {
                    side.body.extend_from_slice(&side.buf[at..at + take]);
                }
                let remaining = remaining - take as u64;
                if remaining == 0 {
                    side.mode = Mode::Head;
                    let body = std::mem::take(&mut side.body);
                    self.finish_body(dir, t, meaning, body, out);
                } else {
                    side.mode = Mode::Body { remaining, meaning };
                }
                Some(take)
            }
            Mode::Chunked { meaning } => match http::decode_chunked(buf, self.limits.max_message) {
                Ok(Some((body, used))) => {
                    self.sides[dir.index()].mode = Mode::Head;
                    self.finish_body(dir, t, meaning, body, out);
                    Some(used)
                }
                Ok(None) => None,
                Err(e) => {
                    self.error(t, dir, &e.to_string(), Stage::HttpRequest, out);
                    self.sides[dir.index()].mode = Mode::Opaque {
                        why: "after a bad chunked body",
                    };
                    Some(0)
                }
            },
            Mode::UntilClose { .. } => {
                // Kept (up to the limit) for decoding at close; a stream longer than that
                // (an event stream, a download) is passed over, not buffered without end.
                let n = buf.len();
                let side = &mut self.sides[dir.index()];
                if side.body.len() + n <= self.limits.max_message {
                    side.body.extend_from_slice(&side.buf[at..at + n]);
                }
                Some(n)
            }
            Mode::AwaitUpgrade => None,
            Mode::WebSocket => self.frame(dir, t, at, out),
            Mode::AfterClose => self.after_close(dir, t, at, out),
            Mode::SkipPayload { remaining } => {
                let take = (buf.len() as u64).min(remaining);
                let remaining = remaining - take;
                self.sides[dir.index()].mode = if remaining == 0 {
                    Mode::WebSocket
                } else {
                    Mode::SkipPayload { remaining }
                };
                Some(take as usize)
            }
            Mode::Opaque { why } => {
                let n = buf.len();
                out.push(
                    self.ev(
                        Stage::TcpData,
                        t,
                        Some(dir),
                        format!("{n} bytes not decoded ({why}): {}", printable(buf)),
                    )
                    .with("len", n)
                    .with("hex", hex(clip_bytes(buf)))
                    .with("reason", why),
                );
                Some(n)
            }
        }
    }
}

#[cfg(test)]
mod tests;
