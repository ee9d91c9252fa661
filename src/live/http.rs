//! One TCP connection of `dispel serve`: HTTP/1.1 requests (keep-alive), routing, and the
//! hand-over to Engine.IO polling or to a WebSocket.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use crate::wire::engineio::RequestError;
use crate::wire::handshake;
use crate::wire::http::{self, BodyKind, HttpError, RequestHead};

use super::engineio::{ws_config, EioServer, PollingReply};
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

/// Reads a body into `buf` (which may already hold part of it). Returns the body.
async fn read_body(
    tap: &mut Tap,
    buf: &mut Vec<u8>,
    kind: BodyKind,
    max: usize,
    limit: Duration,
) -> Result<Vec<u8>, (u16, &'static str)> {
    let mut chunk = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match kind {
            BodyKind::None | BodyKind::UntilClose => return Ok(Vec::new()),
            BodyKind::Length(n) if n > max as u64 => return Err((413, "Payload Too Large")),
            BodyKind::Length(n) if buf.len() as u64 >= n => {
                let rest = buf.split_off(n as usize);
                return Ok(std::mem::replace(buf, rest));
            }
            BodyKind::Chunked => match http::decode_chunked(buf, max) {
                Ok(Some((body, used))) => {
                    buf.drain(..used);
                    return Ok(body);
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

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        302 => "Found",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Writes a whole response.
pub async fn respond(
    tap: &mut Tap,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
    keep_alive: bool,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    if !keep_alive {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    tap.write_all(&out).await?;
    tap.flush().await
}

enum Route {
    Page,
    TracePage,
    TraceEvents,
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

/// Serves one TCP connection until it closes.
pub async fn connection(mut tap: Tap, conn: u64, srv: Arc<Server>) {
    let mut buf = Vec::with_capacity(4096);
    loop {
        let head = match read_head(&mut tap, &mut buf, &srv).await {
            Ok(h) => h,
            Err(ReadError::Closed) | Err(ReadError::TimedOut { partial: false }) => return,
            Err(ReadError::TimedOut { partial: true }) => {
                let _ = respond(
                    &mut tap,
                    408,
                    &[],
                    b"request head not completed in time\n",
                    false,
                )
                .await;
                return;
            }
            Err(ReadError::Http(e)) => {
                let status = match e {
                    HttpError::TooManyHeaders | HttpError::HeadTooLarge => 431,
                    _ => 400,
                };
                let _ = respond(
                    &mut tap,
                    status,
                    &[("Content-Type", "text/plain".into())],
                    format!("{e}\n").as_bytes(),
                    false,
                )
                .await;
                return;
            }
        };
        buf.drain(..head.head_len);
        let keep_alive = head.keep_alive();
        let kind = match head.body_kind() {
            Ok(k) => k,
            Err(e) => {
                let _ = respond(&mut tap, 400, &[], format!("{e}\n").as_bytes(), false).await;
                return;
            }
        };
        let body = match read_body(
            &mut tap,
            &mut buf,
            kind,
            srv.config.max_payload,
            srv.config.request_timeout,
        )
        .await
        {
            Ok(b) => b,
            Err((0, _)) => return,
            Err((status, why)) => {
                let _ = respond(&mut tap, status, &[], format!("{why}\n").as_bytes(), false).await;
                return;
            }
        };
        let cors = cors_headers(&srv, &head);
        let result = match route(&srv, &head) {
            Route::Page => {
                let headers = [
                    ("Content-Type", "text/html; charset=utf-8".to_string()),
                    ("Cache-Control", "no-store".to_string()),
                ];
                respond(&mut tap, 200, &headers, PAGE.as_bytes(), keep_alive).await
            }
            Route::TracePage => {
                let headers = [
                    ("Content-Type", "text/html; charset=utf-8".to_string()),
                    ("Cache-Control", "no-store".to_string()),
                ];
                respond(
                    &mut tap,
                    200,
                    &headers,
                    super::view::PAGE.as_bytes(),
                    keep_alive,
                )
                .await
            }
            Route::TraceEvents => {
                if let Some(hub) = srv.hub.clone() {
                    super::view::stream(tap, &hub, &head).await;
                }
                return;
            }
            Route::Redirect => {
                respond(
                    &mut tap,
                    302,
                    &[("Location", "/auctions".into())],
                    b"",
                    keep_alive,
                )
                .await
            }
            Route::Preflight => {
                let mut headers = cors;
                headers.push(("Access-Control-Allow-Methods", "GET, POST, OPTIONS".into()));
                headers.push((
                    "Access-Control-Allow-Headers",
                    head.header("access-control-request-headers")
                        .unwrap_or("content-type")
                        .to_string(),
                ));
                respond(&mut tap, 204, &headers, b"", keep_alive).await
            }
            Route::NotFound => {
                respond(
                    &mut tap,
                    404,
                    &[("Content-Type", "text/plain".into())],
                    b"not found\n",
                    keep_alive,
                )
                .await
            }
            Route::EngineIo(eio) => {
                match eio_checks(&head) {
                    Err(e) => {
                        let reply = PollingReply::error(e);
                        let mut headers = cors;
                        headers.push(("Content-Type", reply.content_type.to_string()));
                        respond(&mut tap, reply.status, &headers, &reply.body, keep_alive).await
                    }
                    Ok(Transport::WebSocket) => {
                        let key = match handshake::check_request(
                            &head.method,
                            head.version,
                            &head.headers,
                        ) {
                            Ok(k) => k,
                            Err(e) => {
                                let _ =
                                    respond(&mut tap, 400, &[], format!("{e}\n").as_bytes(), false)
                                        .await;
                                return;
                            }
                        };
                        // dispel's own handshake: permessage-deflate is declined by not echoing
                        // it, so every frame stays readable in the trace.
                        let accept = handshake::compute_accept(&key).accept;
                        let resp = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n");
                        if tap.write_all(resp.as_bytes()).await.is_err()
                            || tap.flush().await.is_err()
                        {
                            return;
                        }
                        let leftover = std::mem::take(&mut buf);
                        let ws = WebSocketStream::from_partially_read(
                            tap,
                            leftover,
                            Role::Server,
                            Some(ws_config(srv.config.max_payload)),
                        )
                        .await;
                        eio.websocket(conn, head.query("sid"), ws).await;
                        return;
                    }
                    Ok(Transport::Polling) => {
                        let reply = eio
                            .polling(conn, &head.method, head.query("sid"), body)
                            .await;
                        let mut headers = cors;
                        headers.push(("Content-Type", reply.content_type.to_string()));
                        headers.push(("Cache-Control", "no-store".to_string()));
                        respond(&mut tap, reply.status, &headers, &reply.body, keep_alive).await
                    }
                }
            }
        };
        if result.is_err() || !keep_alive {
            return;
        }
    }
}

enum Transport {
    Polling,
    WebSocket,
}

/// The query checks of an Engine.IO request (protocol version, transport).
fn eio_checks(head: &RequestHead) -> Result<Transport, RequestError> {
    match head.query("EIO").as_deref() {
        Some("4") => {}
        _ => return Err(RequestError::UnsupportedProtocolVersion),
    }
    match head.query("transport").as_deref() {
        Some("polling") if !handshake::is_upgrade_request(&head.headers) => Ok(Transport::Polling),
        Some("websocket") if handshake::is_upgrade_request(&head.headers) => {
            Ok(Transport::WebSocket)
        }
        Some("websocket") | Some("polling") => Err(RequestError::BadRequest),
        _ => Err(RequestError::UnknownTransport),
    }
}
