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

/// Text longer than this is cut in trace fields (the field `truncated` says so).
const FIELD_TEXT_MAX: usize = 4096;
/// Binary shown as hex up to this many bytes.
const FIELD_HEX_MAX: usize = 256;

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

/// A Socket.IO binary packet waiting for its attachments.
#[derive(Debug)]
struct PendingBinary {
    packet: socketio::Packet<Box<RawValue>>,
    attachments: Vec<Vec<u8>>,
}

#[derive(Debug)]
struct Side {
    buf: Vec<u8>,
    mode: Mode,
    body: Vec<u8>,
    assembly: Option<Assembly>,
    inflater: Option<Inflater>,
    sio_binary: Option<PendingBinary>,
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
}

/// Cuts `s` to at most `max` bytes on a char boundary.
fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn short(s: &str) -> Short<'_> {
    Short(s)
}

/// Text cut to 80 bytes for a summary line, `…` when cut (formatted in place, no copy).
struct Short<'a>(&'a str);

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

fn addr(a: SocketAddr) -> String {
    // SocketAddr's Display already writes IPv6 as [addr]:port.
    a.to_string()
}

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
        self.sides[dir.index()].fin = true;
        self.sides.iter().all(|s| s.fin)
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
                    Dir::C2S => HTTP_METHODS.iter().any(|m| buf.starts_with(m)),
                    Dir::S2C => buf.starts_with(b"HTTP/1."),
                };
                let could_become_http = match dir {
                    Dir::C2S => HTTP_METHODS.iter().any(|m| m.starts_with(buf)),
                    Dir::S2C => b"HTTP/1.".starts_with(buf),
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

    fn request_head(&mut self, t: f64, at: usize, out: &mut Vec<Event>) -> Option<usize> {
        let buf = &self.sides[0].buf[at..];
        let head =
            match http::parse_request(buf, self.limits.max_headers, self.limits.max_head_bytes) {
                Ok(Some(h)) => h,
                Ok(None) => return None,
                Err(e) => {
                    // A TLS ClientHello (content type 22, version 3.x) is not garbage: it is
                    // HTTPS, whose bytes no capture can show in the clear.
                    let rule = if buf.starts_with(&[0x16, 0x03]) {
                        "encrypted: this is a TLS handshake, not HTTP; capture the plain HTTP port"
                            .to_string()
                    } else {
                        e.to_string()
                    };
                    self.error(t, Dir::C2S, &rule, Stage::HttpRequest, out);
                    self.sides[0].mode = Mode::Opaque {
                        why: "not an HTTP/1.1 request",
                    };
                    return Some(0);
                }
            };
        let is_eio = head.query("EIO").is_some();
        let upgrade = handshake::is_upgrade_request(&head.headers);
        let kind = if upgrade {
            Kind::Websocket
        } else if is_eio {
            Kind::Polling
        } else {
            Kind::Page
        };
        if let Some(sid) = head.query("sid") {
            if self.sid.is_none() {
                self.name_session(sid);
            }
        }
        // A WebSocket that opens a new session (no sid: no long-polling first) takes another
        // path in python-engineio than the upgrade of an existing one.
        let link_kind = if upgrade && head.query("sid").is_none() {
            Kind::WebsocketNew
        } else {
            kind
        };
        let headers: Vec<Value> = head.headers.iter().map(|(n, v)| json!([n, v])).collect();
        let mut ev = self
            .ev(
                Stage::HttpRequest,
                t,
                Some(Dir::C2S),
                format!(
                    "{} {} HTTP/1.{}",
                    head.method,
                    short(&head.target),
                    head.version
                ),
            )
            .with("method", head.method.as_str())
            .with("target", head.target.as_str())
            .with("version", format!("HTTP/1.{}", head.version))
            .with("headers", headers)
            .kind(link_kind);
        if is_eio {
            for q in ["EIO", "transport", "sid"] {
                if let Some(v) = head.query(q) {
                    ev.fields.insert(q_key(q), v);
                }
            }
        }
        out.push(ev);
        let body = head.body_kind();
        let mut pending = PendingRequest {
            method: head.method.clone(),
            kind,
            ws_key: None,
            offered_extensions: Vec::new(),
        };
        let consumed = head.head_len;
        if upgrade {
            match handshake::check_request(&head.method, head.version, &head.headers) {
                Ok(key) => pending.ws_key = Some(key),
                Err(e) => self.error(t, Dir::C2S, &e.to_string(), Stage::WsHandshake, out),
            }
            pending.offered_extensions = handshake::parse_extensions(&head.headers)
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            self.expect_response(pending);
            self.sides[0].mode = Mode::AwaitUpgrade;
            return Some(consumed);
        }
        self.expect_response(pending);
        let meaning = if is_eio && head.method == "POST" {
            BodyMeaning::EioPayload
        } else {
            BodyMeaning::Other
        };
        self.sides[0].mode = match body {
            Ok(BodyKind::None) | Ok(BodyKind::UntilClose) => Mode::Head,
            Ok(BodyKind::Length(n)) => Mode::Body {
                remaining: n,
                meaning,
            },
            Ok(BodyKind::Chunked) => Mode::Chunked { meaning },
            Err(e) => {
                self.error(t, Dir::C2S, &e.to_string(), Stage::HttpRequest, out);
                Mode::Opaque {
                    why: "after a request with a bad Content-Length",
                }
            }
        };
        Some(consumed)
    }

    /// Remembers a request until its response comes. A capture that holds only the client's
    /// side (or a client pipelining without end) must not make this grow forever: past 64
    /// outstanding requests the oldest is forgotten (its response, if it ever comes, is then
    /// matched with a later request, and shown without its request's kind).
    fn expect_response(&mut self, request: PendingRequest) {
        if self.pending.len() >= MAX_PENDING_REQUESTS {
            self.pending.pop_front();
        }
        self.pending.push_back(request);
    }

    fn response_head(&mut self, t: f64, at: usize, out: &mut Vec<Event>) -> Option<usize> {
        let buf = &self.sides[1].buf[at..];
        let head = match http::parse_response(buf, self.limits.max_headers) {
            Ok(Some(h)) => h,
            Ok(None) => return None,
            Err(e) => {
                self.error(t, Dir::S2C, &e.to_string(), Stage::HttpResponse, out);
                self.sides[1].mode = Mode::Opaque {
                    why: "not an HTTP/1.1 response",
                };
                return Some(0);
            }
        };
        let request = self.pending.pop_front();
        let kind = request.as_ref().map_or(self.last_kind, |r| r.kind);
        self.last_kind = kind;
        let headers: Vec<Value> = head.headers.iter().map(|(n, v)| json!([n, v])).collect();
        let response = self
            .ev(
                Stage::HttpResponse,
                t,
                Some(Dir::S2C),
                format!("{} {} ({kind})", head.status, head.reason),
            )
            .with("status", head.status)
            .with("reason", head.reason.as_str())
            .with("version", format!("HTTP/1.{}", head.version))
            .with("headers", headers)
            .kind(kind);
        let method = request.as_ref().map(|r| r.method.as_str());
        // An error's few words of text say which check failed: the event waits for them.
        let plain = head
            .header("content-type")
            .is_none_or(|c| c.to_ascii_lowercase().starts_with("text/plain"));
        let error_text = head.status >= 400
            && plain
            && match head.body_kind(method) {
                Ok(BodyKind::Length(n)) => n > 0 && n <= ERROR_TEXT_MAX,
                Ok(BodyKind::Chunked) => true,
                _ => false,
            };
        self.flush_held(out);
        if error_text {
            self.held = Some(response);
        } else {
            out.push(response);
        }
        let consumed = head.head_len;
        let was_upgrade = matches!(self.sides[0].mode, Mode::AwaitUpgrade);
        if head.status == 101 {
            self.websocket_opened(t, &head, request.as_ref(), out);
            self.sides[1].mode = Mode::WebSocket;
            if was_upgrade || matches!(self.sides[0].mode, Mode::Head) {
                self.sides[0].mode = Mode::WebSocket;
                // Frames the client sent right after the 101 may be waiting.
                self.process(Dir::C2S, t, out);
            }
            return Some(consumed);
        }
        if was_upgrade {
            self.sides[0].mode = Mode::Head;
            self.process(Dir::C2S, t, out);
        }
        let meaning = if kind == Kind::Polling && method == Some("GET") && head.status == 200 {
            BodyMeaning::EioPayload
        } else if error_text {
            BodyMeaning::ErrorText
        } else {
            BodyMeaning::Other
        };
        self.sides[1].mode = match head.body_kind(method) {
            Ok(BodyKind::None) => Mode::Head,
            Ok(BodyKind::Length(n)) => Mode::Body {
                remaining: n,
                meaning,
            },
            Ok(BodyKind::Chunked) => Mode::Chunked { meaning },
            Ok(BodyKind::UntilClose) => Mode::UntilClose { meaning },
            Err(e) => {
                self.error(t, Dir::S2C, &e.to_string(), Stage::HttpResponse, out);
                Mode::Opaque {
                    why: "after a response with a bad Content-Length",
                }
            }
        };
        Some(consumed)
    }

    fn websocket_opened(
        &mut self,
        t: f64,
        head: &http::ResponseHead,
        request: Option<&PendingRequest>,
        out: &mut Vec<Event>,
    ) {
        let accept = head
            .header("sec-websocket-accept")
            .unwrap_or("")
            .to_string();
        let deflate = handshake::accepted_deflate(&head.headers);
        self.deflate = deflate;
        if let Some(d) = deflate {
            self.sides[0].inflater = Some(Inflater::new(!d.client_no_context_takeover));
            self.sides[1].inflater = Some(Inflater::new(!d.server_no_context_takeover));
        }
        let offered = request
            .map(|r| r.offered_extensions.clone())
            .unwrap_or_default();
        let agreed: Vec<String> = handshake::parse_extensions(&head.headers)
            .into_iter()
            .map(|(n, p)| {
                std::iter::once(n)
                    .chain(
                        p.into_iter()
                            .map(|(k, v)| if v.is_empty() { k } else { format!("{k}={v}") }),
                    )
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .collect();
        let mut ev = self.ev(Stage::WsHandshake, t, Some(Dir::S2C), String::new());
        let ext_note = match (
            offered.iter().any(|o| o == "permessage-deflate"),
            deflate.is_some(),
        ) {
            (true, false) => "permessage-deflate offered, declined",
            (true, true) => "permessage-deflate accepted",
            (false, _) => "no extensions",
        };
        match request.and_then(|r| r.ws_key.as_deref()) {
            Some(key) => {
                let c = handshake::compute_accept(key);
                let ok = c.accept == accept;
                ev.summary = format!(
                    "Sec-WebSocket-Key {key} -> Accept {accept} ({}; {ext_note})",
                    if ok { "matches" } else { "MISMATCH" }
                )
                .into();
                ev = ev
                    .with("key", key)
                    .with("guid", handshake::GUID)
                    .with("sha1", c.sha1_hex)
                    .with("accept", accept.as_str())
                    .with("expected_accept", c.accept.as_str())
                    .with("accept_ok", ok);
                if !ok {
                    self.error(
                        t,
                        Dir::S2C,
                        "Sec-WebSocket-Accept is not base64(SHA-1(key + GUID)) (RFC 6455 §4.2.2)",
                        Stage::WsHandshake,
                        out,
                    );
                }
            }
            None => {
                ev.summary =
                    format!("101 without a request key seen; Accept {accept} ({ext_note})").into();
                ev = ev.with("key", Value::Null).with("accept", accept.as_str());
            }
        }
        out.push(
            ev.with("extensions", agreed)
                .with("offered_extensions", offered)
                .with("extension_note", ext_note),
        );
    }

    fn finish_body(
        &mut self,
        dir: Dir,
        t: f64,
        meaning: BodyMeaning,
        body: Vec<u8>,
        out: &mut Vec<Event>,
    ) {
        if meaning == BodyMeaning::ErrorText {
            if let Some(e) = self.held.take() {
                let body = &body[..body.len().min(ERROR_TEXT_MAX as usize)];
                let text = String::from_utf8_lossy(body).into_owned();
                let first = text.trim().lines().next().unwrap_or("");
                let summary = format!("{}: {}", &*e.summary, short(first));
                let mut e = e.with("body", text);
                e.summary = summary.into();
                out.push(e);
            }
            return;
        }
        // An empty body carries no packet (python-engineio answers a poll of a closing
        // session with one).
        if meaning != BodyMeaning::EioPayload || body.is_empty() {
            return;
        }
        for item in engineio::decode_payload(&body) {
            match item {
                Ok(p) => self.eio_packet(dir, t, "polling", p, out),
                Err(e) => self.error(t, dir, &e.to_string(), Stage::EioPacket, out),
            }
        }
    }

    fn after_close(&mut self, dir: Dir, t: f64, at: usize, out: &mut Vec<Event>) -> Option<usize> {
        let buf = &self.sides[dir.index()].buf[at..];
        let well_formed = match FrameHeader::parse(buf) {
            Ok(Some(h)) => {
                let complete =
                    (buf.len() as u64).saturating_sub(h.header_len as u64) >= h.payload_len;
                if !complete && h.payload_len <= 125 {
                    return None;
                }
                complete
                    && h.violation(dir == Dir::C2S, self.deflate.is_some())
                        .is_none()
                    && !buf.starts_with(b"HTTP/1.")
            }
            Ok(None) => return None,
            Err(_) => false,
        };
        if !well_formed {
            self.sides[dir.index()].mode = Mode::Opaque {
                why: "after this side's Close frame, not a WebSocket frame",
            };
            return Some(0);
        }
        let data_frame = buf.first().is_some_and(|b| b & 0x08 == 0);
        if data_frame {
            self.error(
                t,
                dir,
                "data frame sent after this side's Close frame (RFC 6455 §5.5.1)",
                Stage::WsFrame,
                out,
            );
        }
        let consumed = self.frame(dir, t, at, out);
        // `frame` may have moved the side on (a second Close); stay watchful either way.
        if !matches!(self.sides[dir.index()].mode, Mode::Opaque { .. }) {
            self.sides[dir.index()].mode = Mode::AfterClose;
        }
        consumed
    }

    fn frame(&mut self, dir: Dir, t: f64, at: usize, out: &mut Vec<Event>) -> Option<usize> {
        let buf = &self.sides[dir.index()].buf[at..];
        if dir == Dir::S2C && buf.starts_with(b"HTTP/1.") {
            self.sides[1].mode = Mode::Opaque {
                why: "HTTP written onto an upgraded socket, not WebSocket frames",
            };
            return Some(0);
        }
        let h = match FrameHeader::parse(buf) {
            Ok(Some(h)) => h,
            Ok(None) => return None,
            Err(e) => {
                self.error(t, dir, &e.to_string(), Stage::WsFrame, out);
                self.sides[dir.index()].mode = Mode::Opaque {
                    why: "after an undecodable frame header",
                };
                return Some(0);
            }
        };
        if h.payload_len > self.limits.max_message as u64 {
            if self.wants(Stage::WsFrame) {
                out.push(self.frame_event(dir, t, &h, &hex(&buf[..h.header_len]), None));
            }
            self.error(
                t,
                dir,
                &format!(
                    "frame payload of {} bytes exceeds the {}-byte limit (RFC 6455 §10.4; close 1009)",
                    h.payload_len, self.limits.max_message
                ),
                Stage::WsFrame,
                out,
            );
            self.sides[dir.index()].mode = Mode::SkipPayload {
                remaining: h.payload_len,
            };
            return Some(h.header_len);
        }
        let total = h.header_len + h.payload_len as usize;
        if buf.len() < total {
            return None;
        }
        let memo_key = self.memo_key(dir, &h, &buf[..total]);
        if let Some(key) = &memo_key {
            if memo::recall(
                key,
                &buf[..total],
                self.conn,
                t,
                self.sid_field.as_ref(),
                out,
            ) {
                return Some(total);
            }
        }
        let first = out.len();
        let mut payload = buf[h.header_len..total].to_vec();
        if let Some(key) = h.mask {
            ws_frame::apply_mask(&mut payload, key, 0);
        }
        if self.wants(Stage::WsFrame) {
            out.push(self.frame_event(dir, t, &h, &hex(&buf[..h.header_len]), Some(&payload)));
        }
        if let Some(v) = h.violation(dir == Dir::C2S, self.deflate.is_some()) {
            self.error(
                t,
                dir,
                &format!("{v}; close {}", v.close_code()),
                Stage::WsFrame,
                out,
            );
        }
        self.frame_payload(dir, t, &h, payload, out);
        if let Some(key) = memo_key {
            let side = &self.sides[dir.index()];
            let clean = side.sio_binary.is_none()
                && matches!(side.mode, Mode::WebSocket)
                && out[first..].iter().all(|e| e.stage != Stage::Error);
            if clean {
                let frame = &side.buf[at..at + total];
                memo::remember(
                    key,
                    frame,
                    self.conn,
                    self.sid_field.as_ref(),
                    &mut out[first..],
                );
            }
        }
        Some(total)
    }

    /// The memo key of a whole frame whose events depend only on its bytes (see `memo`), if
    /// it is one.
    fn memo_key(&self, dir: Dir, h: &FrameHeader, frame: &[u8]) -> Option<memo::Key> {
        let side = &self.sides[dir.index()];
        let whole_data = h.fin
            && matches!(h.opcode, OpCode::Text | OpCode::Binary)
            && !(h.rsv1 || h.rsv2 || h.rsv3)
            && h.mask.is_none();
        // An Engine.IO OPEN names the session: decoding it changes the session.
        let open = h.opcode == OpCode::Text && frame.get(h.header_len) == Some(&b'0');
        (whole_data
            && !open
            && frame.len() <= memo::MAX_FRAME
            && side.assembly.is_none()
            && side.sio_binary.is_none())
        .then_some(memo::Key {
            dir,
            interest: self.interest,
            max_message: self.limits.max_message,
        })
    }

    fn frame_event(
        &self,
        dir: Dir,
        t: f64,
        h: &FrameHeader,
        header_hex: &str,
        payload: Option<&[u8]>,
    ) -> Event {
        let mut e = self
            .ev(
                Stage::WsFrame,
                t,
                Some(dir),
                format!(
                    "{}{}{} {} bytes ({}){}",
                    if h.fin { "FIN " } else { "" },
                    h.opcode,
                    if h.rsv1 { " RSV1" } else { "" },
                    h.payload_len,
                    h.length_form.name(),
                    if h.mask.is_some() { " masked" } else { "" }
                ),
            )
            .with("fin", h.fin)
            .with("rsv1", h.rsv1)
            .with("rsv2", h.rsv2)
            .with("rsv3", h.rsv3)
            .with("opcode", h.opcode.as_u8())
            .with("opcode_name", opcode_name(h.opcode))
            .with("masked", h.mask.is_some())
            .with("mask_key", h.mask.map(|k| hex(&k)))
            .with("payload_len", h.payload_len)
            .with("length_form", h.length_form.name())
            .with("header_hex", header_hex)
            .kind(link_kind(dir, h.opcode));
        if let Some(p) = payload {
            e.fields.insert("payload_hex", hex(clip_bytes(p)));
        }
        e
    }

    fn frame_payload(
        &mut self,
        dir: Dir,
        t: f64,
        h: &FrameHeader,
        payload: Vec<u8>,
        out: &mut Vec<Event>,
    ) {
        let max = self.limits.max_message;
        match h.opcode {
            OpCode::Close => {
                let (code, reason) = ws_frame::close_payload(&payload);
                let summary = match code {
                    Some(c) => format!(
                        "{c} {}{}",
                        ws_frame::close_code_meaning(c),
                        if reason.is_empty() {
                            String::new()
                        } else {
                            format!(": {reason}")
                        }
                    ),
                    None => "no status code".to_string(),
                };
                out.push(
                    self.ev(Stage::WsClose, t, Some(dir), summary)
                        .with("code", code)
                        .with("meaning", code.map(ws_frame::close_code_meaning))
                        .with("reason", reason),
                );
                let side = &mut self.sides[dir.index()];
                side.mode = Mode::AfterClose;
            }
            OpCode::Ping | OpCode::Pong | OpCode::Reserved(_) => {}
            OpCode::Text | OpCode::Binary => {
                if self.sides[dir.index()].assembly.is_some() {
                    self.error(
                        t,
                        dir,
                        "new data frame while a fragmented message is unfinished (RFC 6455 §5.4)",
                        Stage::WsFrame,
                        out,
                    );
                }
                let oversized = payload.len() > max;
                self.sides[dir.index()].assembly = Some(Assembly {
                    opcode: h.opcode,
                    compressed: h.rsv1 && self.deflate.is_some(),
                    fragments: 1,
                    data: payload,
                    oversized,
                });
                if h.fin {
                    self.message_done(dir, t, out);
                }
            }
            OpCode::Continuation => {
                let Some(asm) = self.sides[dir.index()].assembly.as_mut() else {
                    self.error(
                        t,
                        dir,
                        "continuation frame without a message to continue (RFC 6455 §5.4)",
                        Stage::WsFrame,
                        out,
                    );
                    return;
                };
                asm.fragments += 1;
                if asm.data.len() + payload.len() > max {
                    asm.oversized = true;
                    asm.data.clear();
                } else if !asm.oversized {
                    asm.data.extend_from_slice(&payload);
                }
                if h.fin {
                    self.message_done(dir, t, out);
                }
            }
        }
    }

    fn message_done(&mut self, dir: Dir, t: f64, out: &mut Vec<Event>) {
        let Some(mut asm) = self.sides[dir.index()].assembly.take() else {
            return;
        };
        let max = self.limits.max_message;
        if asm.oversized {
            self.error(
                t,
                dir,
                &format!("message larger than the {max}-byte limit (RFC 6455 §10.4; close 1009)"),
                Stage::WsMessage,
                out,
            );
            return;
        }
        let compressed_len = asm.data.len();
        let wire = std::mem::take(&mut asm.data);
        let data = if asm.compressed {
            let inflated = match self.sides[dir.index()].inflater.as_mut() {
                Some(inf) => inf.inflate(&wire, max),
                None => Ok(wire),
            };
            match inflated {
                Ok(d) => d,
                Err(e) => {
                    self.error(t, dir, &e.to_string(), Stage::WsMessage, out);
                    return;
                }
            }
        } else {
            wire
        };
        if self.wants(Stage::WsMessage) {
            out.push(self.message_event(dir, t, &asm, compressed_len, &data));
        }
        if asm.opcode == OpCode::Text {
            match String::from_utf8(data) {
                Ok(text) => match engineio::Packet::decode_text(&text) {
                    Ok(p) => self.eio_packet(dir, t, "websocket", p, out),
                    Err(e) => self.error(t, dir, &e.to_string(), Stage::EioPacket, out),
                },
                Err(_) => self.error(
                    t,
                    dir,
                    "text message is not valid UTF-8 (RFC 6455 §8.1; close 1007)",
                    Stage::WsMessage,
                    out,
                ),
            }
        } else {
            self.eio_packet(
                dir,
                t,
                "websocket",
                engineio::Packet::from_binary(data),
                out,
            );
        }
    }

    fn message_event(
        &self,
        dir: Dir,
        t: f64,
        asm: &Assembly,
        compressed_len: usize,
        data: &[u8],
    ) -> Event {
        let mut ev = self
            .ev(Stage::WsMessage, t, Some(dir), String::new())
            .with("opcode", asm.opcode.as_u8())
            .with("opcode_name", opcode_name(asm.opcode))
            .with("fragments", asm.fragments)
            .with("compressed", asm.compressed)
            .with("len", data.len())
            .kind(link_kind(dir, asm.opcode));
        if asm.compressed {
            ev.fields.insert("compressed_len", compressed_len);
        }
        let mut summary = String::with_capacity(128);
        let _ = write!(summary, "{} {} bytes", asm.opcode, data.len());
        if asm.fragments > 1 {
            let _ = write!(summary, " in {} frames", asm.fragments);
        }
        if asm.compressed {
            let _ = write!(summary, ", inflated from {compressed_len}");
        }
        match (asm.opcode, std::str::from_utf8(data)) {
            (OpCode::Text, Ok(text)) => {
                let _ = write!(summary, ": {}", short(text));
                insert_text(&mut ev.fields, "text", text);
            }
            _ => {
                ev.fields.insert("hex", hex(clip_bytes(data)));
            }
        }
        ev.summary = summary.into();
        ev
    }

    fn eio_packet(
        &mut self,
        dir: Dir,
        t: f64,
        transport: &'static str,
        p: engineio::Packet,
        out: &mut Vec<Event>,
    ) {
        // The OPEN packet names the session: remembered whether or not it is shown.
        let open = match (p.ptype, &p.data) {
            (engineio::PacketType::Open, engineio::Data::Text(text)) => match OpenInfo::parse(text)
            {
                Ok(info) => {
                    self.name_session(info.sid.clone());
                    Some(info)
                }
                Err(e) => {
                    self.error(t, dir, &e.to_string(), Stage::EioPacket, out);
                    None
                }
            },
            _ => None,
        };
        if self.wants(Stage::EioPacket) {
            out.push(self.eio_event(dir, t, transport, &p, open));
        }
        if p.ptype == engineio::PacketType::Upgrade
            && dir == Dir::C2S
            && self.wants(Stage::EioUpgrade)
        {
            out.push(
                self.ev(
                    Stage::EioUpgrade,
                    t,
                    Some(dir),
                    "transport upgraded: polling -> websocket".into(),
                )
                .with("from", "polling")
                .with("to", "websocket"),
            );
        }
        if p.ptype == engineio::PacketType::Message {
            match p.data {
                engineio::Data::Text(text) => self.sio_text(dir, t, transport, &text, out),
                engineio::Data::Binary(b) => self.sio_attachment(dir, t, transport, b, out),
            }
        }
    }

    fn eio_event(
        &self,
        dir: Dir,
        t: f64,
        transport: &'static str,
        p: &engineio::Packet,
        open: Option<OpenInfo>,
    ) -> Event {
        let mut ev = self
            .ev(Stage::EioPacket, t, Some(dir), String::new())
            .with("transport", transport)
            .with("type", p.ptype.upper_name())
            .kind(eio_kind(dir, p.ptype, transport));
        match &p.data {
            engineio::Data::Text(text) => {
                ev.summary = format!("{} {}", p.ptype, short(text)).into();
                insert_text(&mut ev.fields, "data", text);
            }
            engineio::Data::Binary(b) => {
                ev.summary = format!("{} (binary, {} bytes)", p.ptype, b.len()).into();
                ev = ev
                    .with("data", Value::Null)
                    .with("binary_len", b.len())
                    .with("binary_hex", hex(clip_bytes(b)));
            }
        }
        if let Some(info) = open {
            ev.fields.insert("sid", info.sid);
            ev = ev
                .with("upgrades", info.upgrades)
                .with("pingInterval", info.ping_interval)
                .with("pingTimeout", info.ping_timeout)
                .with("maxPayload", info.max_payload);
        }
        ev
    }

    fn sio_text(
        &mut self,
        dir: Dir,
        t: f64,
        transport: &'static str,
        text: &str,
        out: &mut Vec<Event>,
    ) {
        if self.sides[dir.index()].sio_binary.is_some() {
            self.error(t, dir, "text packet while binary attachments were still expected (Socket.IO v5 §Packet encoding)", Stage::SioPacket, out);
            self.sides[dir.index()].sio_binary = None;
        }
        match socketio::Packet::decode_raw(text) {
            Ok(p) if p.attachments > 0 => {
                self.sides[dir.index()].sio_binary = Some(PendingBinary {
                    packet: p,
                    attachments: Vec::new(),
                });
            }
            Ok(p) => self.sio_event(dir, t, transport, p, &[], out),
            Err(e) => self.error(t, dir, &e.to_string(), Stage::SioPacket, out),
        }
    }

    fn sio_attachment(
        &mut self,
        dir: Dir,
        t: f64,
        transport: &'static str,
        bytes: Vec<u8>,
        out: &mut Vec<Event>,
    ) {
        let side = &mut self.sides[dir.index()];
        let Some(pending) = side.sio_binary.as_mut() else {
            // A plain Engine.IO binary message (no Socket.IO on top): nothing more to decode.
            return;
        };
        let held: usize = pending.attachments.iter().map(Vec::len).sum();
        if held + bytes.len() > self.limits.max_message {
            side.sio_binary = None;
            let max = self.limits.max_message;
            self.error(
                t,
                dir,
                &format!(
                    "binary attachments of one packet exceed the {max}-byte limit; packet dropped"
                ),
                Stage::SioPacket,
                out,
            );
            return;
        }
        pending.attachments.push(bytes);
        if pending.attachments.len() >= pending.packet.attachments {
            if let Some(done) = side.sio_binary.take() {
                self.sio_event(dir, t, transport, done.packet, &done.attachments, out);
            }
        }
    }

    /// The Socket.IO packet event. Its data is shown as the JSON text that was sent, checked
    /// but not parsed into values, unless binary attachments must be put in their places.
    fn sio_event(
        &mut self,
        dir: Dir,
        t: f64,
        transport: &'static str,
        p: socketio::Packet<Box<RawValue>>,
        attachments: &[Vec<u8>],
        out: &mut Vec<Event>,
    ) {
        if !self.wants(Stage::SioPacket) {
            return;
        }
        let socketio::Packet {
            ptype,
            attachments: count,
            nsp,
            id,
            data,
        } = p;
        // A binary packet's data is parsed to put the attachments in their places; other data
        // stays the JSON text it was sent as.
        let filled: Option<Value> = match &data {
            Some(raw) if ptype.is_binary() || count > 0 => {
                let mut value: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
                socketio::fill_placeholders(&mut value, &mut |i| match attachments.get(i) {
                    Some(b) => json!({"_binary": b.len(), "hex": hex(clip_bytes(b))}),
                    None => json!({"_binary": null, "missing_attachment": i}),
                });
                Some(value)
            }
            _ => None,
        };
        let (event, shown) = match (&filled, &data) {
            (Some(value), _) => sio_value_outline(ptype, value),
            (None, Some(raw)) => sio_raw_outline(ptype, raw),
            (None, None) => (None, String::new()),
        };
        let summary = match &event {
            Some(name) => format!("{ptype} {nsp} {name:?} {}", short(&shown)),
            None => format!(
                "{ptype} {nsp}{} {}",
                id.map(|i| format!(" id={i}")).unwrap_or_default(),
                short(&shown)
            ),
        };
        let mut ev = self
            .ev(Stage::SioPacket, t, Some(dir), summary)
            .with("type", ptype.spec_name())
            .with("nsp", nsp)
            .with("id", id)
            .with("event", event)
            .with("attachments", count);
        match (filled, data) {
            (Some(value), _) => ev.fields.insert("data", value),
            (None, Some(raw)) => ev.fields.insert_raw("data", raw),
            (None, None) => ev.fields.insert("data", Value::Null),
        }
        out.push(ev.kind(sio_kind(dir, ptype, transport)));
    }
}

const HTTP_METHODS: [&[u8]; 9] = [
    b"GET ",
    b"POST ",
    b"PUT ",
    b"HEAD ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
];

/// `TEXT`, or `RESERVED(0x3)` with the number of a reserved opcode.
fn opcode_name(op: OpCode) -> Value {
    match op {
        OpCode::Reserved(_) => op.to_string().into(),
        known => known.upper_name().into(),
    }
}

/// Which source chain explains a frame or message: the server's data frames are written by the
/// encode path (`send`), everything else by the decode path of its opcode.
/// An Engine.IO packet's link kind: a MESSAGE the server sends goes down the send path
/// (queued, written by the writer), not the reader's decode.
fn eio_kind(dir: Dir, ptype: engineio::PacketType, transport: &str) -> Kind {
    use engineio::PacketType as P;
    match (dir, ptype) {
        // An OPEN sent over a WebSocket (a session opened without long-polling) is queued
        // and written by the WebSocket writer, not returned as a polling response.
        (Dir::S2C, P::Open) if transport == "websocket" => Kind::OpenWebsocket,
        (Dir::S2C, P::Message) => Kind::MessageSent,
        (_, P::Open) => Kind::Open,
        (_, P::Close) => Kind::Close,
        (_, P::Ping) => Kind::Ping,
        (_, P::Pong) => Kind::Pong,
        (_, P::Message) => Kind::Message,
        (_, P::Upgrade) => Kind::Upgrade,
        (_, P::Noop) => Kind::Noop,
        (_, P::Unknown(_)) => Kind::Unknown,
    }
}

/// A Socket.IO packet's link kind: what the server sends (an emit, an ack of a return value)
/// is encoded and queued, not decoded and dispatched.
fn sio_kind(dir: Dir, ptype: PacketType, transport: &str) -> Kind {
    use PacketType as P;
    match (dir, ptype) {
        // A CONNECT read from a WebSocket message, not from a long-polling POST.
        (Dir::C2S, P::Connect) if transport == "websocket" => Kind::ConnectWebsocket,
        (Dir::S2C, P::Connect) => Kind::ConnectSent,
        (Dir::S2C, P::Event) => Kind::EventSent,
        (Dir::S2C, P::BinaryEvent) => Kind::BinaryEventSent,
        (Dir::S2C, P::Ack) => Kind::AckSent,
        (Dir::S2C, P::BinaryAck) => Kind::BinaryAckSent,
        (_, P::Connect) => Kind::Connect,
        (_, P::Disconnect) => Kind::Disconnect,
        (_, P::Event) => Kind::Event,
        (_, P::Ack) => Kind::Ack,
        (_, P::ConnectError) => Kind::ConnectError,
        (_, P::BinaryEvent) => Kind::BinaryEvent,
        (_, P::BinaryAck) => Kind::BinaryAck,
        (_, P::Unknown(_)) => Kind::Unknown,
    }
}

fn link_kind(dir: Dir, opcode: OpCode) -> Kind {
    match (dir, opcode) {
        (Dir::S2C, OpCode::Text | OpCode::Binary | OpCode::Continuation) => Kind::Send,
        (_, OpCode::Text) => Kind::Text,
        (_, OpCode::Binary) => Kind::Binary,
        (_, OpCode::Continuation) => Kind::Continuation,
        (_, OpCode::Close) => Kind::Close,
        (_, OpCode::Ping) => Kind::Ping,
        (_, OpCode::Pong) => Kind::Pong,
        (_, OpCode::Reserved(_)) => Kind::Reserved,
    }
}

/// Enough of JSON text for a summary line, which cuts it with [`short`]: one byte more than
/// shown, so a longer text shows as cut, and a large payload is not copied just to be cut.
const PREVIEW: usize = 100;

/// An event's name and the start of what a summary shows of its data: the arguments of an
/// EVENT (the name is shown apart), all the data of other packets.
fn sio_raw_outline(ptype: PacketType, data: &RawValue) -> (Option<String>, String) {
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
fn sio_value_outline(ptype: PacketType, data: &Value) -> (Option<String>, String) {
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
fn preview_items(items: &[&RawValue]) -> String {
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
fn q_key(q: &str) -> &'static str {
    match q {
        "EIO" => "eio",
        "transport" => "transport",
        _ => "sid",
    }
}

fn clip_bytes(b: &[u8]) -> &[u8] {
    &b[..b.len().min(FIELD_HEX_MAX)]
}

fn insert_text(fields: &mut Fields, key: &'static str, text: &str) {
    let c = clip(text, FIELD_TEXT_MAX);
    fields.insert(key, c);
    if c.len() < text.len() {
        fields.insert("truncated", true);
    }
}

/// Bytes as text for a summary, with non-printables as dots.
fn printable(b: &[u8]) -> String {
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

#[cfg(test)]
mod tests;
