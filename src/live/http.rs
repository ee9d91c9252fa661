//! One TCP connection of `dispel serve`: HTTP/1.1 requests, routing, and the hand-over to
//! Engine.IO polling or to a WebSocket. Answers are written as the mimicked server writes them:
//! as Werkzeug's development server (one request per connection) for the auction, as Node's
//! http server (keep-alive) for `--app conformance`.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::wire::handshake;
use crate::wire::http::{self, BodyKind, HttpError, RequestHead};

use super::engineio::{Answer, Body, EioServer, Flavor, Request, Upgrade};
use super::reply::Reply;
use super::tap::Tap;
use super::Server;

/// An idle keep-alive connection is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

const PAGE: &str = include_str!("page.html");

enum ReadError {
    Http(HttpError),
    Closed,
    TimedOut { partial: bool },
}

async fn read_head(
    tap: &mut Tap,
    buf: &mut Vec<u8>,
    srv: &Server,
) -> Result<RequestHead, ReadError> {
    let mut chunk = [0u8; 4096];
    // The whole head must arrive within the request timeout of its first byte, however slowly
    // it trickles in (slowloris).
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        match http::parse_request(buf, srv.config.max_headers, srv.config.max_head_bytes) {
            Ok(Some(head)) => return Ok(head),
            Ok(None) => {}
            Err(e) => return Err(ReadError::Http(e)),
        }
        let until = match deadline {
            Some(d) => d,
            None if buf.is_empty() => tokio::time::Instant::now() + IDLE_TIMEOUT,
            None => *deadline.insert(tokio::time::Instant::now() + srv.config.request_timeout),
        };
        match tokio::time::timeout_at(until, tap.read(&mut chunk)).await {
            Err(_) => {
                return Err(ReadError::TimedOut {
                    partial: !buf.is_empty(),
                })
            }
            Ok(Ok(0)) | Ok(Err(_)) => return Err(ReadError::Closed),
            Ok(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                if deadline.is_none() {
                    deadline = Some(tokio::time::Instant::now() + srv.config.request_timeout);
                }
            }
        }
    }
}

/// A body as read: whole, or declared over the limit and left unread.
enum ReadBody {
    Whole(Vec<u8>),
    TooLong,
}

/// Reads a body into `buf` (which may already hold part of it). A declared length over `max`
/// is not read.
async fn read_body(
    tap: &mut Tap,
    buf: &mut Vec<u8>,
    kind: BodyKind,
    max: usize,
    limit: Duration,
) -> Result<ReadBody, (u16, &'static str)> {
    let mut chunk = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match kind {
            BodyKind::None | BodyKind::UntilClose => return Ok(ReadBody::Whole(Vec::new())),
            BodyKind::Length(n) if n > max as u64 => return Ok(ReadBody::TooLong),
            BodyKind::Length(n) if buf.len() as u64 >= n => {
                let rest = buf.split_off(n as usize);
                return Ok(ReadBody::Whole(std::mem::replace(buf, rest)));
            }
            BodyKind::Chunked => match http::decode_chunked(buf, max) {
                Ok(Some((body, used))) => {
                    buf.drain(..used);
                    return Ok(ReadBody::Whole(body));
                }
                Ok(None) => {}
                Err(_) => return Err((400, "Bad Request")),
            },
            BodyKind::Length(_) => {}
        }
        match tokio::time::timeout_at(deadline, tap.read(&mut chunk)).await {
            Err(_) => return Err((408, "Request Timeout")),
            Ok(Ok(0)) | Ok(Err(_)) => return Err((0, "closed")),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Writes a whole response in Node's style (Content-Length, keep-alive unless asked not to):
/// the live view's and the listener's own answers, and every answer of `--app conformance`.
pub async fn respond(
    tap: &mut Tap,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
    keep_alive: bool,
) -> std::io::Result<()> {
    let mut out = head(status, headers, Some(body.len()), keep_alive).into_bytes();
    out.extend_from_slice(body);
    tap.write_all(&out).await?;
    tap.flush().await
}

/// The head of a reply in dispel's own (Node-like) form: the status line, the headers,
/// `Content-Length` when the length is known, and `Connection: close` unless kept alive.
fn head(
    status: u16,
    headers: &[(&str, String)],
    length: Option<usize>,
    keep_alive: bool,
) -> String {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", Flavor::Node.reason(status));
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    if let Some(len) = length {
        head.push_str(&format!("Content-Length: {len}\r\n"));
    }
    if !keep_alive {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    head
}

/// The live view's event stream: its head (no length: the stream lasts until either side
/// goes), then the view's events. The connection is not traced from here on (its own bytes
/// would otherwise feed the view it is showing).
pub(super) async fn event_stream(mut tap: Tap, hub: &super::view::Hub, request: &RequestHead) {
    tap.detach("live view: this connection's own bytes are not traced");
    let filter = match super::view::viewer_filter(request) {
        Ok(f) => f,
        Err(e) => {
            let _ = respond(&mut tap, 400, &[], format!("{e}\n").as_bytes(), false).await;
            return;
        }
    };
    let headers = [
        ("Content-Type", "text/event-stream".to_string()),
        ("Cache-Control", "no-store".to_string()),
    ];
    let head = head(200, &headers, None, false);
    if tap.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    super::view::stream(tap, hub, filter).await;
}

/// Writes a reply as Werkzeug's development server writes one: `Server` and `Date` first,
/// then the application's headers, the body chunked when it gave no length, and
/// `Connection: close` (one request per connection).
async fn respond_werkzeug(tap: &mut Tap, reply: &Reply) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nServer: dispel/{}\r\nDate: {}\r\n",
        reply.status,
        reply.reason,
        env!("CARGO_PKG_VERSION"),
        httpdate::fmt_http_date(std::time::SystemTime::now())
    );
    for (n, v) in &reply.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    if reply.chunked {
        head.push_str("Transfer-Encoding: chunked\r\n");
    } else if !reply.headers.iter().any(|(n, _)| *n == "Content-Length") {
        head.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut out = head.into_bytes();
    if reply.chunked {
        if !reply.body.is_empty() {
            out.extend_from_slice(format!("{:x}\r\n", reply.body.len()).as_bytes());
            out.extend_from_slice(&reply.body);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
    } else {
        out.extend_from_slice(&reply.body);
    }
    tap.write_all(&out).await?;
    tap.flush().await
}

/// Writes `reply` the way the server being mimicked would.
async fn send(
    tap: &mut Tap,
    flavor: Flavor,
    extra: Vec<(&'static str, String)>,
    reply: Reply,
    keep_alive: bool,
) -> std::io::Result<()> {
    match flavor {
        Flavor::Python => respond_werkzeug(tap, &reply).await,
        Flavor::Node => {
            let mut headers = extra;
            headers.extend(reply.headers);
            respond(tap, reply.status, &headers, &reply.body, keep_alive).await
        }
    }
}

enum Route {
    Page,
    TracePage,
    TraceEvents,
    /// The stepping controls of teaching mode (`--step`), for the page that has the key.
    Step,
    Redirect,
    EngineIo(Arc<EioServer>),
    Preflight,
    NotFound,
}

fn route(srv: &Server, head: &RequestHead) -> Route {
    match (head.method.as_str(), head.path()) {
        ("OPTIONS", _) if srv.config.cors => Route::Preflight,
        ("GET", "/auctions") | ("GET", "/auctions/") => Route::Page,
        ("GET", "/") => Route::Redirect,
        ("GET", "/trace") | ("GET", "/trace/") if srv.hub.is_some() => Route::TracePage,
        ("GET", "/trace/events") if srv.hub.is_some() => Route::TraceEvents,
        ("GET" | "POST", "/trace/step") if srv.hub.is_some() => Route::Step,
        (_, "/socket.io/") | (_, "/socket.io") => Route::EngineIo(srv.socketio.clone()),
        (_, "/engine.io/") | (_, "/engine.io") => match &srv.engineio {
            Some(e) => Route::EngineIo(e.clone()),
            None => Route::NotFound,
        },
        _ => Route::NotFound,
    }
}

fn cors_headers(srv: &Server, head: &RequestHead) -> Vec<(&'static str, String)> {
    if !srv.config.cors {
        return Vec::new();
    }
    match head.header("origin") {
        Some(origin) => vec![
            ("Access-Control-Allow-Origin", origin.to_string()),
            ("Access-Control-Allow-Credentials", "true".to_string()),
        ],
        None => vec![("Access-Control-Allow-Origin", "*".to_string())],
    }
}

fn step_control(srv: &Server, head: &RequestHead) -> Reply {
    let (status, reason, body) = super::view::step_answer(srv.taps.stepper.as_deref(), head);
    Reply::new(status, reason, "text/plain; charset=utf-8", body)
        .header("Cache-Control", "no-store")
}

fn page(body: &'static str) -> Reply {
    Reply::new(200, "OK", "text/html; charset=utf-8", body).header("Cache-Control", "no-store")
}

/// Serves one TCP connection until it closes.
pub async fn connection(mut tap: Tap, conn: u64, srv: Arc<Server>) {
    let flavor = srv.config.flavor;
    let mut buf = Vec::with_capacity(4096);
    loop {
        let head = match read_head(&mut tap, &mut buf, &srv).await {
            Ok(h) => h,
            Err(ReadError::Closed) | Err(ReadError::TimedOut { partial: false }) => return,
            Err(ReadError::TimedOut { partial: true }) => {
                let r = Reply::new(
                    408,
                    flavor.reason(408),
                    "text/plain",
                    "request head not completed in time\n",
                );
                let _ = send(&mut tap, flavor, Vec::new(), r, false).await;
                return;
            }
            Err(ReadError::Http(e)) => {
                let status = match e {
                    HttpError::TooManyHeaders | HttpError::HeadTooLarge => 431,
                    _ => 400,
                };
                let r = Reply::new(
                    status,
                    flavor.reason(status),
                    "text/plain",
                    format!("{e}\n"),
                );
                let _ = send(&mut tap, flavor, Vec::new(), r, false).await;
                return;
            }
        };
        buf.drain(..head.head_len);
        // Werkzeug's development server answers one request per connection.
        let keep_alive = head.keep_alive() && flavor == Flavor::Node;
        let kind = match head.body_kind() {
            Ok(k) => k,
            Err(e) => {
                let r = Reply::new(400, flavor.reason(400), "text/plain", format!("{e}\n"));
                let _ = send(&mut tap, flavor, Vec::new(), r, false).await;
                return;
            }
        };
        let route = route(&srv, &head);
        let body = match read_body(
            &mut tap,
            &mut buf,
            kind,
            srv.config.max_payload,
            srv.config.request_timeout,
        )
        .await
        {
            Ok(ReadBody::Whole(b)) => Body::Bytes(b),
            // Engine.IO answers an oversized POST itself (and ends the session).
            Ok(ReadBody::TooLong) if matches!(route, Route::EngineIo(_)) => Body::TooLong,
            Ok(ReadBody::TooLong) => {
                let r = Reply::new(413, flavor.reason(413), "text/plain", "Payload Too Large\n");
                let _ = send(&mut tap, flavor, Vec::new(), r, false).await;
                return;
            }
            Err((0, _)) => return,
            Err((status, why)) => {
                let r = Reply::new(
                    status,
                    flavor.reason(status),
                    "text/plain",
                    format!("{why}\n"),
                );
                let _ = send(&mut tap, flavor, Vec::new(), r, false).await;
                return;
            }
        };
        let cors = cors_headers(&srv, &head);
        let reply = match route {
            Route::Page => page(PAGE),
            Route::TracePage => page(super::view::PAGE),
            Route::TraceEvents => {
                if let Some(hub) = srv.hub.clone() {
                    event_stream(tap, &hub, &head).await;
                }
                return;
            }
            Route::Step => step_control(&srv, &head),
            Route::Redirect => Reply::new(302, flavor.reason(302), "text/plain", "")
                .header("Location", "/auctions"),
            Route::Preflight => {
                let mut r = Reply::new(204, "No Content", "text/plain", "");
                r.headers.clear();
                r.headers
                    .push(("Access-Control-Allow-Methods", "GET, POST, OPTIONS".into()));
                r.headers.push((
                    "Access-Control-Allow-Headers",
                    head.header("access-control-request-headers")
                        .unwrap_or("content-type")
                        .to_string(),
                ));
                r
            }
            Route::NotFound => match flavor {
                Flavor::Python => Reply::werkzeug_not_found(),
                Flavor::Node => Reply::new(404, "Not Found", "text/plain", "not found\n"),
            },
            Route::EngineIo(eio) => {
                let req = Request {
                    conn,
                    head: &head,
                    body,
                };
                let answer = match flavor {
                    Flavor::Python => eio.handle_python(req).await,
                    Flavor::Node => eio.handle_node(req).await,
                };
                match answer {
                    Answer::Reply(r) => r,
                    Answer::Upgrade(up) => {
                        websocket(tap, conn, &head, buf, eio, up).await;
                        return;
                    }
                }
            }
        };
        let result = send(&mut tap, flavor, cors, reply, keep_alive).await;
        if result.is_err() || !keep_alive {
            return;
        }
    }
}

/// Answers the WebSocket handshake (RFC 6455 §4.2.2) and runs the Engine.IO transport on it.
/// python-engineio's server (wsproto) accepts permessage-deflate with the parameters the client
/// offered; Node's engine.io declines it (its default).
async fn websocket(
    mut tap: Tap,
    conn: u64,
    head: &RequestHead,
    leftover: Vec<u8>,
    eio: Arc<EioServer>,
    up: Upgrade,
) {
    let flavor = eio.flavor();
    let key = match handshake::check_request(&head.method, head.version, &head.headers) {
        Ok(k) => k,
        Err(e) => {
            up.abandon();
            let r = Reply::new(400, flavor.reason(400), "text/plain", format!("{e}\n"));
            let _ = send(&mut tap, flavor, Vec::new(), r, false).await;
            return;
        }
    };
    let accept = handshake::compute_accept(&key).accept;
    let deflate = match flavor {
        Flavor::Python => handshake::answer_deflate_offer(&head.headers),
        Flavor::Node => None,
    };
    let mut resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
    );
    if let Some((answer, _)) = &deflate {
        resp.push_str(&format!("Sec-WebSocket-Extensions: {answer}\r\n"));
    }
    resp.push_str("\r\n");
    if tap.write_all(resp.as_bytes()).await.is_err() || tap.flush().await.is_err() {
        up.abandon();
        return;
    }
    eio.websocket(conn, up, tap, leftover, deflate.map(|(_, p)| p))
        .await;
}
