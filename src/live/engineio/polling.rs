//! Engine.IO requests: the handshake, long-polling GETs and POSTs, and the checks before a
//! WebSocket. Two handlers, one per server dispel can answer as:
//!
//! - [`EioServer::handle_python`] follows python-engineio's `Server.handle_request` (4.15), the
//!   same checks in the same order with the same answers: JSON-string bodies such as
//!   `"Invalid session <sid>"`, `OK` for a POST, the Origin check against
//!   `cors_allowed_origins`, gzip for answers of 1024 bytes or more.
//! - [`EioServer::handle_node`] follows Node's engine.io, which the official protocol suites
//!   test: JSON error objects (`{"code":1,"message":"Session ID unknown"}`), `ok` for a POST.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::wire::engineio::{self, PacketType, RequestError};
use crate::wire::http::RequestHead;

use super::super::reply::Reply;
use super::websocket::Upgrade;
use super::{wait_closed, Closer, EioServer, EioSession, Flavor, Origins, Transport, WirePacket};

/// A request body as the connection read it.
pub enum Body {
    Bytes(Vec<u8>),
    /// Declared longer than maxPayload: not read.
    TooLong,
}

/// An Engine.IO request (`/socket.io/...`).
pub struct Request<'a> {
    pub conn: u64,
    pub head: &'a RequestHead,
    pub body: Body,
}

/// What to do with an Engine.IO request.
pub enum Answer {
    Reply(Reply),
    /// Answer the WebSocket handshake (101) and run the transport.
    Upgrade(Upgrade),
}

/// python-engineio's answers.
fn ok_packets(body: String) -> Reply {
    Reply::new(200, "OK", "text/plain; charset=UTF-8", body).chunked()
}

fn ok_text() -> Reply {
    Reply::new(200, "OK", "text/plain", "OK").chunked()
}

/// `_bad_request`: 400 with the message as a JSON string.
fn bad_request(message: &str) -> Reply {
    let body = serde_json::to_string(message).unwrap_or_default();
    Reply::new(400, "BAD REQUEST", "text/plain", body).chunked()
}

fn method_not_found() -> Reply {
    Reply::new(405, "METHOD NOT FOUND", "text/plain", "Method Not Found").chunked()
}

const UNSUPPORTED: &str =
    "The client is using an unsupported version of the Socket.IO or Engine.IO protocols";

/// A query parameter as Python's `parse_qs` sees it: blank values do not count.
fn param(head: &RequestHead, name: &str) -> Option<String> {
    head.query(name).filter(|v| !v.is_empty())
}

/// Answers of this size or more are compressed when the client accepts it
/// (python-engineio's `compression_threshold`).
const COMPRESSION_THRESHOLD: usize = 1024;

impl EioServer {
    /// python-engineio's `handle_request`.
    pub async fn handle_python(self: &Arc<Self>, req: Request<'_>) -> Answer {
        let head = req.head;
        // Before anything else, the Origin (python-engineio: "important for WebSocket more
        // than for HTTP, since browsers only apply CORS controls to HTTP").
        let allowed = self.allowed_origins(head);
        if let (Some(origin), Some(allowed)) = (head.header("origin"), &allowed) {
            if self.config.origins != Origins::Disabled && !allowed.iter().any(|a| a == origin) {
                return Answer::Reply(bad_request("Not an accepted origin."));
            }
        }
        let transport = param(head, "transport").unwrap_or_else(|| "polling".into());
        if transport != "polling" && transport != "websocket" {
            return Answer::Reply(bad_request("Invalid transport"));
        }
        let sid = param(head, "sid");
        if sid.is_none() && param(head, "EIO").as_deref() != Some("4") {
            return Answer::Reply(bad_request(UNSUPPORTED));
        }
        let jsonp = match head.query("j") {
            None => None,
            Some(j) => match j.parse::<i64>() {
                Ok(i) => Some(i),
                Err(_) => {
                    return Answer::Reply(
                        self.finish_python(head, bad_request("Invalid JSONP index number")),
                    )
                }
            },
        };
        let upgrade_header = head.header("upgrade").map(str::to_ascii_lowercase);
        let reply = match head.method.as_str() {
            "GET" => match sid {
                None => {
                    if transport == "polling" || upgrade_header.as_deref() == Some("websocket") {
                        if transport == "websocket" {
                            return Answer::Upgrade(Upgrade::new_session());
                        }
                        let s = self.open_session(req.conn, Transport::Polling);
                        self.poll_python(&s, jsonp).await
                    } else {
                        bad_request("Invalid websocket upgrade")
                    }
                }
                Some(sid) => match self.lookup(&sid) {
                    None => bad_request(&format!("Invalid session {sid}")),
                    Some(s) if s.is_closed() => {
                        self.forget(&s);
                        bad_request(&format!("'Session is disconnected' {sid}"))
                    }
                    Some(s) if s.transport() == Transport::WebSocket => {
                        bad_request("Unexpected HTTP request")
                    }
                    Some(_)
                        if transport != "polling"
                            && Some(&transport) != upgrade_header.as_ref() =>
                    {
                        bad_request("Invalid transport")
                    }
                    Some(s) => {
                        s.conn.store(req.conn, Ordering::Relaxed);
                        let connection_upgrade = head.header("connection").is_some_and(|c| {
                            c.split(',')
                                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
                        });
                        if connection_upgrade && upgrade_header.as_deref() == Some("websocket") {
                            return Answer::Upgrade(Upgrade::of(s));
                        }
                        let reply = if s.transport() == Transport::Upgrading {
                            ok_packets(engineio::Packet::text(PacketType::Noop, "").encode_text())
                        } else {
                            self.poll_python(&s, jsonp).await
                        };
                        if s.is_closed() {
                            self.forget(&s);
                        }
                        reply
                    }
                },
            },
            "POST" => match sid.as_deref().and_then(|sid| self.lookup(sid)) {
                None => bad_request(&format!(
                    "Invalid session {}",
                    sid.as_deref().unwrap_or("None")
                )),
                // python-engineio's `_get_socket` raises for a closed session here, and nothing
                // catches it: Werkzeug answers 500.
                Some(s) if s.is_closed() => {
                    self.forget(&s);
                    return Answer::Reply(Reply::werkzeug_internal_error());
                }
                Some(s) if s.transport() == Transport::WebSocket => {
                    bad_request("Unexpected HTTP request")
                }
                Some(s) => {
                    s.conn.store(req.conn, Ordering::Relaxed);
                    match req.body {
                        // `ContentTooLongError`: the session is ended.
                        Body::TooLong => {
                            self.close(&s, "payload over maxPayload", Closer::Server);
                            self.post_never_answered(req.conn);
                            bad_request("Bad Request")
                        }
                        Body::Bytes(body) => {
                            if self.post_python(&s, req.conn, &body).is_err() {
                                self.close(&s, "a packet the client may not send", Closer::Server);
                                self.post_never_answered(req.conn);
                                bad_request("Bad Request")
                            } else {
                                s.wait_for_flights().await;
                                ok_text()
                            }
                        }
                    }
                }
            },
            "OPTIONS" => ok_text(),
            _ => method_not_found(),
        };
        Answer::Reply(self.finish_python(head, reply))
    }

    fn post_never_answered(&self, conn: u64) {
        self.fidelity_note(
            conn,
            "python-engineio ends the session and then never answers this POST (its close waits for a queue that never empties); dispel answers 400 as it means to (docs/fidelity.md)".to_string(),
        );
    }

    /// What python-engineio adds to an answer that got past the first checks: compression,
    /// then the CORS headers.
    fn finish_python(&self, head: &RequestHead, mut reply: Reply) -> Reply {
        if reply.body.len() >= COMPRESSION_THRESHOLD {
            let accepted = head.header("accept-encoding").unwrap_or("");
            for enc in accepted
                .split(',')
                .map(|e| e.split(';').next().unwrap_or("").trim())
            {
                let compressed = match enc {
                    "gzip" => {
                        let mut z =
                            flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(9));
                        z.write_all(&reply.body).and_then(|_| z.finish()).ok()
                    }
                    "deflate" => {
                        let mut z = flate2::write::ZlibEncoder::new(
                            Vec::new(),
                            flate2::Compression::default(),
                        );
                        z.write_all(&reply.body).and_then(|_| z.finish()).ok()
                    }
                    _ => continue,
                };
                if let Some(c) = compressed {
                    reply.body = c;
                    reply.headers.push(("Content-Encoding", enc.to_string()));
                    break;
                }
            }
        }
        if self.config.origins == Origins::Disabled {
            return reply;
        }
        let allowed = self.allowed_origins(head);
        if let Some(origin) = head.header("origin") {
            if allowed
                .as_ref()
                .is_none_or(|a| a.iter().any(|x| x == origin))
            {
                reply
                    .headers
                    .push(("Access-Control-Allow-Origin", origin.to_string()));
            }
        }
        if head.method == "OPTIONS" {
            reply
                .headers
                .push(("Access-Control-Allow-Methods", "OPTIONS, GET, POST".into()));
        }
        if let Some(h) = head.header("access-control-request-headers") {
            reply
                .headers
                .push(("Access-Control-Allow-Headers", h.to_string()));
        }
        reply
            .headers
            .push(("Access-Control-Allow-Credentials", "true".into()));
        reply
    }

    /// python-engineio's `_cors_allowed_origins`: `None` means any origin.
    fn allowed_origins(&self, head: &RequestHead) -> Option<Vec<String>> {
        match &self.config.origins {
            Origins::Any => None,
            Origins::List(l) => Some(l.clone()),
            Origins::Disabled => Some(Vec::new()),
            Origins::SameOrigin => {
                let mut v = Vec::new();
                if let Some(host) = head.header("host") {
                    v.push(format!("http://{host}"));
                    let proto = head.header("x-forwarded-proto");
                    let fhost = head.header("x-forwarded-host");
                    if proto.is_some() || fhost.is_some() {
                        let first = |s: &str| s.split(',').next().unwrap_or("").trim().to_string();
                        v.push(format!(
                            "{}://{}",
                            proto.map_or_else(|| "http".to_string(), first),
                            fhost.map_or_else(|| host.to_string(), first)
                        ));
                    }
                }
                Some(v)
            }
        }
    }

    /// A long-polling GET (python-engineio's `Socket.poll`): waits for the first packet (at
    /// most pingInterval + pingTimeout), then takes everything queued behind it.
    async fn poll_python(self: &Arc<Self>, s: &Arc<EioSession>, jsonp: Option<i64>) -> Reply {
        // A second GET waits behind the first (python-engineio's queue has one reader at a time).
        let mut rx = s.rx.lock().await;
        let mut closed = s.closed();
        s.polling.store(true, Ordering::Release);
        let wait = self.config.ping_interval + self.config.ping_timeout;
        let first = tokio::select! {
            item = rx.recv() => Ok(item),
            _ = wait_closed(&mut closed) => Ok(None),
            _ = tokio::time::sleep(wait) => Err(()),
        };
        let mut packets = Vec::new();
        let first = match first {
            Ok(Some(q)) => Some(q),
            // Closed: whatever was queued before the end (a CLOSE, when the server ended it).
            Ok(None) => rx.try_recv().ok(),
            Err(()) => {
                s.polling.store(false, Ordering::Release);
                drop(rx);
                // `QueueEmpty`: the session is ended.
                self.close(
                    s,
                    "no packet to send within pingInterval + pingTimeout",
                    Closer::Server,
                );
                return bad_request("Bad Request");
            }
        };
        if let Some(mut q) = first {
            q.wait_turn().await;
            packets.extend(q.item.iter().map(WirePacket::polling_text));
            while let Ok(mut q) = rx.try_recv() {
                q.wait_turn().await;
                packets.extend(q.item.iter().map(WirePacket::polling_text));
            }
        }
        s.polling.store(false, Ordering::Release);
        let payload = packets.join("\u{1e}");
        match jsonp {
            None => ok_packets(payload),
            Some(i) => ok_packets(format!(
                "___eio[{i}](\"{}\");",
                payload.replace('"', "\\\"")
            )),
        }
    }

    /// A POST's packets (python-engineio's `handle_post_request`). A payload that does not
    /// decode is dropped whole and answered OK (python-engineio logs it and goes on); a packet
    /// a client may not send ends the session (`Err`).
    fn post_python(&self, s: &Arc<EioSession>, conn: u64, body: &[u8]) -> Result<(), ()> {
        let Ok(text) = std::str::from_utf8(body) else {
            return Ok(());
        };
        if text.is_empty() {
            return Ok(());
        }
        let parts: Vec<&str> = text.split('\u{1e}').collect();
        // python-engineio's `Payload.max_decode_packets`.
        if parts.len() > 16 {
            return Ok(());
        }
        let mut packets = Vec::with_capacity(parts.len());
        for p in parts {
            match engineio::Packet::decode_text(p) {
                Ok(p) => packets.push(p),
                // An unknown type digit decodes in Python and fails when received.
                Err(engineio::EioError::UnknownPacketType(c)) if c.is_ascii_digit() => {
                    packets.push(engineio::Packet::text(PacketType::Unknown(c as u8), ""))
                }
                Err(_) => return Ok(()),
            }
        }
        for p in packets {
            self.packet_in(s, conn, p)?;
        }
        Ok(())
    }

    /// Node engine.io's `handleRequest`, as the official protocol suites expect it.
    pub async fn handle_node(self: &Arc<Self>, req: Request<'_>) -> Answer {
        let head = req.head;
        let transport = match node_checks(head) {
            Ok(t) => t,
            Err(e) => return Answer::Reply(node_error(e)),
        };
        let sid = head.query("sid");
        if transport == "websocket" {
            return Answer::Upgrade(match sid {
                None => Upgrade::new_session(),
                Some(sid) => match self.lookup(&sid) {
                    Some(s) if s.transport() == Transport::Polling && !s.is_closed() => {
                        Upgrade::of(s)
                    }
                    // A second WebSocket for the same session.
                    Some(_) => Upgrade::refused("already upgraded"),
                    None => Upgrade::refused("Session ID unknown"),
                },
            });
        }
        let method = head.method.as_str();
        let Some(sid) = sid else {
            if method != "GET" {
                return Answer::Reply(node_error(RequestError::BadHandshakeMethod));
            }
            let s = self.open_session(req.conn, Transport::Polling);
            let open =
                s.rx.try_lock()
                    .ok()
                    .and_then(|mut rx| rx.try_recv().ok())
                    .map(|q| {
                        q.item
                            .iter()
                            .map(WirePacket::polling_text)
                            .collect::<String>()
                    })
                    .unwrap_or_default();
            return Answer::Reply(node_ok(open));
        };
        let Some(s) = self.lookup(&sid) else {
            return Answer::Reply(node_error(RequestError::UnknownSid));
        };
        if s.is_closed() {
            // The lingering session of a client that sent CLOSE: one NOOP, then it is gone.
            self.forget(&s);
            return Answer::Reply(match method {
                "GET" => node_ok(engineio::Packet::text(PacketType::Noop, "").encode_text()),
                _ => node_error(RequestError::UnknownSid),
            });
        }
        if self.ping_expired(&s) {
            return Answer::Reply(node_error(RequestError::UnknownSid));
        }
        if s.transport() == Transport::WebSocket {
            // After the upgrade, polling requests are refused.
            return Answer::Reply(node_error(RequestError::BadRequest));
        }
        s.conn.store(req.conn, Ordering::Relaxed);
        if method == "GET" && s.transport() == Transport::Upgrading {
            // Node's engine.io answers a GET during the upgrade with a NOOP from its check
            // timer (every 100 ms) unless the upgrade completes first, which ends polling.
            let until = tokio::time::Instant::now() + std::time::Duration::from_millis(100);
            while s.transport() == Transport::Upgrading && tokio::time::Instant::now() < until {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            return Answer::Reply(match s.transport() {
                Transport::WebSocket => node_error(RequestError::BadRequest),
                _ => node_ok(engineio::Packet::text(PacketType::Noop, "").encode_text()),
            });
        }
        Answer::Reply(match (method, req.body) {
            ("GET", _) => self.poll_node(&s).await,
            ("POST", Body::TooLong) => {
                self.close(&s, "payload too large", Closer::Server);
                Reply::new(413, "Payload Too Large", "text/plain", "payload too large")
            }
            ("POST", Body::Bytes(body)) => {
                let mut bad = false;
                for p in engineio::decode_payload(&body) {
                    match p {
                        Ok(p) => {
                            let _ = self.packet_in(&s, req.conn, p);
                        }
                        Err(_) => bad = true,
                    }
                }
                if bad {
                    self.close(&s, "bad packet in a POST", Closer::Server);
                    node_error(RequestError::BadRequest)
                } else {
                    // The client's next POST waits for its broadcasts to land ([`Flight`]).
                    s.wait_for_flights().await;
                    Reply::new(200, "OK", "text/html", "ok")
                }
            }
            _ => node_error(RequestError::BadRequest),
        })
    }

    async fn poll_node(self: &Arc<Self>, session: &Arc<EioSession>) -> Reply {
        // Engine.IO v4: two concurrent GETs on one session is a protocol error; close it.
        let Ok(mut rx) = session.rx.try_lock() else {
            self.close(session, "concurrent polling GET", Closer::Server);
            return node_error(RequestError::BadRequest);
        };
        let mut closed = session.closed();
        session.polling.store(true, Ordering::Release);
        let first = tokio::select! {
            item = rx.recv() => item,
            _ = wait_closed(&mut closed) => None,
        };
        let first = match first {
            Some(mut q) => {
                q.wait_turn().await;
                Some(q.item)
            }
            None => None,
        };
        session.polling.store(false, Ordering::Release);
        let Some(first) = first else {
            // Closed while parked: the reference server releases the GET with a NOOP when the
            // client asked to close, and with a CLOSE when the server ended the session (ping
            // timeout, protocol error). Either way the next request with this sid gets 400.
            let ptype = if session.client_closed.load(Ordering::Acquire) {
                PacketType::Noop
            } else {
                PacketType::Close
            };
            self.forget(session);
            return node_ok(engineio::Packet::text(ptype, "").encode_text());
        };
        let mut parts: Vec<String> = first.iter().map(WirePacket::polling_text).collect();
        let mut size: usize = parts.iter().map(String::len).sum();
        while size < self.config.max_payload {
            match rx.try_recv() {
                Ok(mut q) => {
                    q.wait_turn().await;
                    for p in q.item.iter() {
                        let s = p.polling_text();
                        size += s.len() + 1;
                        parts.push(s);
                    }
                }
                Err(_) => break,
            }
        }
        node_ok(parts.join("\u{1e}"))
    }
}

fn node_ok(body: String) -> Reply {
    Reply::new(200, "OK", "text/plain; charset=UTF-8", body).header("Cache-Control", "no-store")
}

fn node_error(e: RequestError) -> Reply {
    let status = if e == RequestError::Forbidden {
        403
    } else {
        400
    };
    let reason = if status == 403 {
        "Forbidden"
    } else {
        "Bad Request"
    };
    Reply::new(status, reason, "application/json", e.body())
}

/// The query checks of an Engine.IO request in Node's engine.io (protocol version, transport).
fn node_checks(head: &RequestHead) -> Result<&'static str, RequestError> {
    match head.query("EIO").as_deref() {
        Some("4") => {}
        _ => return Err(RequestError::UnsupportedProtocolVersion),
    }
    let upgrade = crate::wire::handshake::is_upgrade_request(&head.headers);
    match head.query("transport").as_deref() {
        Some("polling") if !upgrade => Ok("polling"),
        Some("websocket") if upgrade => Ok("websocket"),
        Some("websocket") | Some("polling") => Err(RequestError::BadRequest),
        _ => Err(RequestError::UnknownTransport),
    }
}

impl Flavor {
    /// The reason phrase the server writes for a status of its own (not python-engineio's).
    pub fn reason(self, status: u16) -> &'static str {
        let python = self == Flavor::Python;
        match status {
            200 => "OK",
            204 => "No Content",
            302 if python => "FOUND",
            302 => "Found",
            400 if python => "BAD REQUEST",
            400 => "Bad Request",
            403 => "Forbidden",
            404 if python => "NOT FOUND",
            404 => "Not Found",
            408 if python => "REQUEST TIMEOUT",
            408 => "Request Timeout",
            413 => "Payload Too Large",
            431 => "Request Header Fields Too Large",
            503 if python => "SERVICE UNAVAILABLE",
            503 => "Service Unavailable",
            _ => "Unknown",
        }
    }
}
