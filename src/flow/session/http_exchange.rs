//! HTTP/1.1 on a connection: request and response heads, bodies (Engine.IO long-polling
//! payloads), and the switch to WebSocket framing on a 101.

use super::*;

impl Session {
    pub(super) fn request_head(
        &mut self,
        t: f64,
        at: usize,
        out: &mut Vec<Event>,
    ) -> Option<usize> {
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
        // Each long-polling request takes its own path in python-engineio: the GET that
        // opens a session, a GET that polls one, the POST that delivers packets.
        let kind = if upgrade {
            Kind::Websocket
        } else if !is_eio {
            Kind::Page
        } else if head.method == "POST" {
            Kind::PollingPost
        } else if head.query("sid").is_none() {
            Kind::PollingOpen
        } else {
            Kind::Polling
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
    pub(super) fn expect_response(&mut self, request: PendingRequest) {
        if self.pending.len() >= MAX_PENDING_REQUESTS {
            self.pending.pop_front();
        }
        self.pending.push_back(request);
    }

    pub(super) fn response_head(
        &mut self,
        t: f64,
        at: usize,
        out: &mut Vec<Event>,
    ) -> Option<usize> {
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
                format!("{} {} ({})", head.status, head.reason, kind.transport()),
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
            self.websocket = true;
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
        let meaning = if matches!(kind, Kind::Polling | Kind::PollingOpen)
            && method == Some("GET")
            && head.status == 200
        {
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

    pub(super) fn websocket_opened(
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
        let ev = ev
            .with("extensions", agreed)
            .with("offered_extensions", offered)
            .with("extension_note", ext_note);
        // Only a handshake that agreed permessage-deflate ran the extension's accept.
        out.push(if deflate.is_some() {
            ev.kind(Kind::Compressed)
        } else {
            ev
        });
    }

    pub(super) fn finish_body(
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

    /// The server writing HTTP where WebSocket frames belong (an error page, or the upgrade
    /// request's own response after the WebSocket): its side is opaque from here, and its bytes
    /// are reported as such (the `http-page-on-websocket` diagnosis reads the reason).
    pub(super) fn http_on_upgraded(&mut self, dir: Dir, at: usize) -> bool {
        let page = dir == Dir::S2C && http_page(&self.sides[1].buf[at..]);
        if page {
            self.sides[1].mode = Mode::Opaque {
                why: "HTTP written onto an upgraded socket, not WebSocket frames",
            };
        }
        page
    }

    pub(super) fn after_close(
        &mut self,
        dir: Dir,
        t: f64,
        at: usize,
        out: &mut Vec<Event>,
    ) -> Option<usize> {
        // Werkzeug's development server answering bytes the client sent after the WebSocket
        // ended, as if they were a new HTTP request.
        if self.http_on_upgraded(dir, at) {
            return Some(0);
        }
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
}

/// Do these bytes, where WebSocket frames should be, start an HTTP answer? A status line, or
/// (http.server's answer to an "HTTP/0.9" request line, which has no head) an HTML page.
pub(super) fn http_page(buf: &[u8]) -> bool {
    let start = |p: &[u8]| buf.len() >= p.len() && buf[..p.len()].eq_ignore_ascii_case(p);
    start(b"HTTP/1.") || start(b"<!DOCTYPE HTML") || start(b"<html")
}
