//! Engine.IO v4 server sessions: the sid table, the polling and WebSocket transports, the
//! upgrade between them, and the heartbeat.
//!
//! Each session has one bounded outgoing queue. Whichever transport is active drains it: a
//! parked polling GET, or the WebSocket writer. A client that does not drain it fast enough
//! fills it and is dropped, so it can never slow the others (a [`Flight`] does not wait for
//! it either).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch, Notify};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use crate::trace::{Event, Stage, Tracer};
use crate::wire::engineio::{self, Data, OpenInfo, PacketType, RequestError};

use super::tap::Tap;
use super::Clock;

/// One Engine.IO packet as it will be written: text (type digit included) or binary. The text
/// is reference-counted: a broadcast's recipients share it down to the WebSocket writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WirePacket {
    Text(Utf8Bytes),
    Binary(Vec<u8>),
}

impl WirePacket {
    fn polling_text(&self) -> String {
        match self {
            WirePacket::Text(t) => t.as_str().to_string(),
            WirePacket::Binary(b) => engineio::Packet::from_binary(b.clone()).encode_text(),
        }
    }
}

/// Packets that must be sent together and in order (a Socket.IO binary event and its
/// attachments). Shared between all recipients of a broadcast.
pub type OutItem = Arc<Vec<WirePacket>>;

/// The longest a sender waits for its broadcast to land (see [`Flight`]).
pub const FLIGHT_WAIT: Duration = Duration::from_secs(1);

/// A client whose queue holds this many packets is not waited for (see [`Flight`]).
const KEEPING_UP: usize = 8;

/// How many broadcasts of one sender may be on their way before reading from it waits (see
/// [`Flight`]). A few let a fast sender's broadcasts share the recipients' writes; an
/// acknowledged event waits for its own broadcast whatever this is.
const IN_FLIGHT: usize = 4;

/// One broadcast on its way out, so that its sender can wait for it to land.
///
/// A broadcast has landed once every recipient's connection has taken it from its queue. The
/// sender waits for it in two ways:
/// - what the handler sends its own client next (the ack of `bid-with-ack`) is written after
///   the broadcast has landed: an ack-paced sender cannot run ahead of the room, so a busy
///   room has one broadcast in flight per sender instead of several queued behind each other
///   (each recipient's delay is one fan-out, not several);
/// - with [`IN_FLIGHT`] of its broadcasts on their way, nothing more is read from the sender
///   until the oldest lands: a client sending events flat out is slowed to the pace the room
///   takes them (its excess waits in its own TCP buffers) instead of filling every other
///   client's queue.
///
/// Node's socket.io gets the first effect by writing into every socket before the handler
/// returns (a backlog then grows in its memory); python-socketio queues and goes on at once.
///
/// A recipient that is not keeping up (its queue already holding [`KEEPING_UP`] packets, its
/// WebSocket write waiting for room in its socket, or, on polling, no GET waiting) is not
/// waited for, so a client that stops reading never holds the sender back; and the wait is
/// capped at [`FLIGHT_WAIT`] whatever happens.
pub struct Flight {
    /// One clone per waited-for recipient's queued copy, and this one until [`Flight::landed`].
    share: Arc<Share>,
    landed: Landed,
}

/// Held by a queued copy of a broadcast: when the last share goes (the copy taken by the
/// writer, or discarded with its connection), the flight has landed.
struct Share(Arc<Landing>);

impl Drop for Share {
    fn drop(&mut self) {
        self.0.done.store(true, Ordering::Release);
        self.0.notify.notify_waiters();
    }
}

#[derive(Default)]
struct Landing {
    done: AtomicBool,
    notify: Notify,
}

/// What a sender waits for: its broadcast landing.
#[derive(Clone)]
pub struct Landed(Arc<Landing>);

impl Landed {
    fn is_done(&self) -> bool {
        self.0.done.load(Ordering::Acquire)
    }

    /// Waits until the broadcast has landed, or until `deadline`.
    async fn wait_until(&self, deadline: tokio::time::Instant) {
        let landing = async {
            loop {
                let notified = self.0.notify.notified();
                tokio::pin!(notified);
                // Registered before the check: a landing in between is not missed.
                notified.as_mut().enable();
                if self.is_done() {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout_at(deadline, landing).await;
    }

    /// Waits until the broadcast has landed, at most [`FLIGHT_WAIT`].
    async fn wait(&self) {
        self.wait_until(tokio::time::Instant::now() + FLIGHT_WAIT)
            .await
    }
}

impl Flight {
    pub fn new() -> Flight {
        let landing = Arc::new(Landing::default());
        Flight {
            share: Arc::new(Share(landing.clone())),
            landed: Landed(landing),
        }
    }

    /// The broadcast, as queued for one recipient.
    pub fn copy(&self, session: &EioSession, item: &OutItem) -> Queued {
        Queued {
            item: item.clone(),
            _share: session.keeping_up().then(|| self.share.clone()),
            after: None,
        }
    }

    /// Every copy is queued: what the sender waits for.
    pub fn landed(self) -> Landed {
        self.landed
    }
}

impl Default for Flight {
    fn default() -> Flight {
        Flight::new()
    }
}

/// What goes through a session's queue.
pub struct Queued {
    pub item: OutItem,
    /// Held while this copy of a broadcast is queued ([`Flight`]).
    _share: Option<Arc<Share>>,
    /// Written only after this broadcast has landed (or [`FLIGHT_WAIT`]).
    pub after: Option<Landed>,
}

impl From<OutItem> for Queued {
    fn from(item: OutItem) -> Queued {
        Queued {
            item,
            _share: None,
            after: None,
        }
    }
}

impl Queued {
    /// Waits, if this packet must follow a broadcast.
    async fn wait_turn(&mut self) {
        if let Some(after) = self.after.take() {
            after.wait().await;
        }
    }
}

pub fn text_item(ptype: PacketType, data: &str) -> OutItem {
    Arc::new(vec![WirePacket::Text(
        engineio::Packet::text(ptype, data).encode_text().into(),
    )])
}

/// What runs on top of Engine.IO: the Socket.IO server, or a plain echo.
pub trait EioHandler: Send + Sync {
    fn on_open(&self, session: &Arc<EioSession>);
    fn on_message(&self, session: &Arc<EioSession>, conn: u64, data: Data);
    fn on_close(&self, session: &Arc<EioSession>, reason: &str);
}

#[derive(Debug, Clone, Copy)]
pub struct EioConfig {
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub max_payload: usize,
    pub max_queue: usize,
}

/// Why a packet could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    Closed,
    /// The client is not reading: it has been dropped.
    Full,
}

pub struct EioSession {
    pub sid: String,
    /// The connection that last carried this session's traffic (for the trace).
    conn: AtomicU64,
    tx: mpsc::Sender<Queued>,
    rx: tokio::sync::Mutex<mpsc::Receiver<Queued>>,
    /// A write to the client is waiting for room in its socket (it is not reading, or not as
    /// fast as it is sent to).
    blocked: AtomicBool,
    /// This client's broadcasts not yet landed, oldest first: with [`IN_FLIGHT`] of them, its
    /// next packets are read once the oldest has landed ([`Flight`]).
    flights: Mutex<VecDeque<Landed>>,
    upgraded: AtomicBool,
    upgrading: AtomicBool,
    /// Set when the client itself sent CLOSE (a parked GET then gets a NOOP, not a CLOSE).
    client_closed: AtomicBool,
    closed_tx: watch::Sender<bool>,
    pong: Notify,
    /// When the unanswered PING was sent, if one is outstanding.
    ping_sent: Mutex<Option<tokio::time::Instant>>,
    /// A polling GET is parked on the queue right now.
    polling: AtomicBool,
    server: std::sync::Weak<EioServer>,
}

impl EioSession {
    pub fn conn(&self) -> u64 {
        self.conn.load(Ordering::Relaxed)
    }

    /// Is this client taking what is queued for it as it comes (see [`Flight`])? On WebSocket:
    /// no write to it is waiting for room in its socket; on polling: a GET is waiting for it.
    fn keeping_up(&self) -> bool {
        let backlog = self.tx.max_capacity() - self.tx.capacity();
        let ready = if self.upgraded.load(Ordering::Acquire) {
            !self.blocked.load(Ordering::Relaxed)
        } else {
            self.polling.load(Ordering::Acquire)
        };
        ready && backlog < KEEPING_UP
    }

    /// A broadcast of this client's is on its way ([`Flight`]).
    pub fn in_flight(&self, landed: Landed) {
        if let Ok(mut f) = self.flights.lock() {
            f.retain(|l| !l.is_done());
            f.push_back(landed);
        }
    }

    /// What reading from this client waits for, if anything: its oldest broadcast, when
    /// [`IN_FLIGHT`] are on their way.
    fn hold(&self) -> Option<Landed> {
        let mut f = self.flights.lock().ok()?;
        f.retain(|l| !l.is_done());
        (f.len() >= IN_FLIGHT).then(|| f.front().cloned()).flatten()
    }

    /// Stops waiting for a broadcast that has not landed within [`FLIGHT_WAIT`].
    fn give_up(&self, landed: &Landed) {
        if let Ok(mut f) = self.flights.lock() {
            f.retain(|l| !Arc::ptr_eq(&l.0, &landed.0));
        }
    }

    /// Queues packets for the client without waiting. A full queue drops the client.
    pub fn send(self: &Arc<Self>, item: impl Into<Queued>) -> Result<(), SendError> {
        match self.tx.try_send(item.into()) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SendError::Closed),
            Err(mpsc::error::TrySendError::Full(_)) => {
                if let Some(server) = self.server.upgrade() {
                    server.tracer.emit(
                        Event::new(
                            Stage::Error,
                            server.clock.now(),
                            Some(self.conn()),
                            None,
                            format!("client {} is not reading: its queue of {} packets is full; dropped", self.sid, server.config.max_queue),
                        )
                        .with("rule", "slow client: bounded send queue full")
                        .with("where", "sio.broadcast")
                        .with("sid", self.sid.as_str()),
                    );
                    server.close(self, "slow client dropped");
                }
                Err(SendError::Full)
            }
        }
    }

    pub fn server(&self) -> Option<Arc<EioServer>> {
        self.server.upgrade()
    }

    fn closed(&self) -> watch::Receiver<bool> {
        self.closed_tx.subscribe()
    }
}

pub struct EioServer {
    sessions: Mutex<HashMap<String, Arc<EioSession>>>,
    pub config: EioConfig,
    handler: Arc<dyn EioHandler>,
    pub tracer: Tracer,
    pub clock: Clock,
    next_sid: AtomicU64,
    /// Shared part of every sid of this server run, so sids are not guessable across runs.
    sid_salt: u64,
}

/// An HTTP answer from the polling transport: status, content type, body.
pub struct PollingReply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl PollingReply {
    fn ok(body: String) -> PollingReply {
        PollingReply {
            status: 200,
            content_type: "text/plain; charset=UTF-8",
            body: body.into_bytes(),
        }
    }

    pub fn error(e: RequestError) -> PollingReply {
        let status = if e == RequestError::Forbidden {
            403
        } else {
            400
        };
        PollingReply {
            status,
            content_type: "application/json",
            body: e.body().into_bytes(),
        }
    }
}

impl EioServer {
    pub fn new(
        config: EioConfig,
        handler: Arc<dyn EioHandler>,
        tracer: Tracer,
        clock: Clock,
    ) -> Arc<EioServer> {
        let sid_salt = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x5eed);
        Arc::new(EioServer {
            sessions: Mutex::new(HashMap::new()),
            config,
            handler,
            tracer,
            clock,
            next_sid: AtomicU64::new(1),
            sid_salt,
        })
    }

    fn new_sid(&self) -> String {
        use base64::Engine as _;
        let n = self.next_sid.fetch_add(1, Ordering::Relaxed);
        // Not a secret (the course server is local), just unique and opaque like the real ones.
        let mixed = (n ^ self.sid_salt).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut bytes = mixed.to_be_bytes().to_vec();
        bytes.extend_from_slice(&(n as u32).to_be_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    fn lookup(&self, sid: &str) -> Option<Arc<EioSession>> {
        self.sessions.lock().ok()?.get(sid).cloned()
    }

    fn open_session(self: &Arc<Self>, conn: u64) -> Arc<EioSession> {
        let (tx, rx) = mpsc::channel(self.config.max_queue.max(4));
        let (closed_tx, _) = watch::channel(false);
        let session = Arc::new(EioSession {
            sid: self.new_sid(),
            conn: AtomicU64::new(conn),
            tx,
            rx: tokio::sync::Mutex::new(rx),
            blocked: AtomicBool::new(false),
            flights: Mutex::new(VecDeque::new()),
            upgraded: AtomicBool::new(false),
            upgrading: AtomicBool::new(false),
            client_closed: AtomicBool::new(false),
            closed_tx,
            pong: Notify::new(),
            ping_sent: Mutex::new(None),
            polling: AtomicBool::new(false),
            server: Arc::downgrade(self),
        });
        if let Ok(mut map) = self.sessions.lock() {
            map.insert(session.sid.clone(), session.clone());
        }
        tokio::spawn(heartbeat(self.clone(), session.clone()));
        session
    }

    fn open_packet(&self, sid: &str, websocket_only: bool) -> OutItem {
        let info = OpenInfo {
            sid: sid.to_string(),
            upgrades: if websocket_only {
                vec![]
            } else {
                vec!["websocket".into()]
            },
            ping_interval: self.config.ping_interval.as_millis() as u64,
            ping_timeout: self.config.ping_timeout.as_millis() as u64,
            max_payload: Some(self.config.max_payload as u64),
        };
        text_item(PacketType::Open, &info.to_json())
    }

    /// Closes a session once: the transports see the signal and end, the handler is told.
    pub fn close(&self, session: &Arc<EioSession>, reason: &str) {
        let first = session
            .closed_tx
            .send_if_modified(|c| !std::mem::replace(c, true));
        if !first {
            return;
        }
        // A client that POSTs CLOSE with no GET parked gets its NOOP on the next GET, as the
        // reference server does; that GET removes the sid (see `polling`).
        let linger = session.client_closed.load(Ordering::Acquire)
            && !session.upgraded.load(Ordering::Acquire)
            && !session.polling.load(Ordering::Acquire);
        if linger {
            // Not forever: an abandoned one is dropped after one heartbeat period.
            let (weak, s) = (session.server.clone(), session.clone());
            let wait = self.config.ping_interval + self.config.ping_timeout;
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                if let Some(server) = weak.upgrade() {
                    server.forget(&s);
                }
            });
        } else {
            self.forget(session);
        }
        self.handler.on_close(session, reason);
    }

    fn forget(&self, session: &EioSession) {
        if let Ok(mut map) = self.sessions.lock() {
            map.remove(&session.sid);
        }
    }

    /// A PING unanswered for longer than pingTimeout ends the session, even if the heartbeat
    /// task has not woken up yet (python-engineio checks this on every send and poll too).
    fn ping_expired(&self, session: &Arc<EioSession>) -> bool {
        let sent = session.ping_sent.lock().ok().and_then(|p| *p);
        if sent.is_some_and(|t| t.elapsed() >= self.config.ping_timeout) {
            self.ping_timeout(session);
            return true;
        }
        false
    }

    fn ping_timeout(&self, s: &Arc<EioSession>) {
        if *s.closed_tx.borrow() {
            return;
        }
        self.tracer.emit(
            Event::new(
                Stage::Error,
                self.clock.now(),
                Some(s.conn()),
                None,
                format!(
                    "no PONG within pingTimeout ({} ms): session {} closed",
                    self.config.ping_timeout.as_millis(),
                    s.sid
                ),
            )
            .with(
                "rule",
                "heartbeat: PONG must arrive within pingTimeout (Engine.IO v4 §Heartbeat)",
            )
            .with("where", "eio.packet")
            .with("sid", s.sid.as_str()),
        );
        self.close(s, "ping timeout");
    }

    fn packet_in(&self, session: &Arc<EioSession>, conn: u64, packet: engineio::Packet) {
        match packet.ptype {
            PacketType::Pong => session.pong.notify_one(),
            PacketType::Message => self.handler.on_message(session, conn, packet.data),
            PacketType::Close => {
                session.client_closed.store(true, Ordering::Release);
                self.close(session, "client sent CLOSE")
            }
            // A ping from the client is a v3 habit; v4 clients only answer pings.
            _ => {}
        }
    }

    /// A polling request (GET or POST) to the Engine.IO endpoint.
    pub async fn polling(
        self: &Arc<Self>,
        conn: u64,
        method: &str,
        sid: Option<String>,
        body: Vec<u8>,
    ) -> PollingReply {
        let Some(sid) = sid else {
            if method != "GET" {
                return PollingReply::error(RequestError::BadHandshakeMethod);
            }
            let session = self.open_session(conn);
            self.handler.on_open(&session);
            let open = self.open_packet(&session.sid, false);
            return PollingReply::ok(open.iter().map(WirePacket::polling_text).collect());
        };
        let Some(session) = self.lookup(&sid) else {
            return PollingReply::error(RequestError::UnknownSid);
        };
        if *session.closed_tx.borrow() {
            // The lingering session of a client that sent CLOSE: one NOOP, then it is gone.
            self.forget(&session);
            return match method {
                "GET" => {
                    PollingReply::ok(engineio::Packet::text(PacketType::Noop, "").encode_text())
                }
                _ => PollingReply::error(RequestError::UnknownSid),
            };
        }
        if self.ping_expired(&session) {
            return PollingReply::error(RequestError::UnknownSid);
        }
        if session.upgraded.load(Ordering::Acquire) {
            // After the upgrade, polling requests with the same sid are refused.
            return PollingReply::error(RequestError::BadRequest);
        }
        session.conn.store(conn, Ordering::Relaxed);
        match method {
            "GET" => self.poll_get(&session).await,
            "POST" => {
                if body.len() > self.config.max_payload {
                    self.close(&session, "payload too large");
                    return PollingReply {
                        status: 413,
                        content_type: "text/plain",
                        body: b"payload too large".to_vec(),
                    };
                }
                let mut bad = false;
                for p in engineio::decode_payload(&body) {
                    match p {
                        Ok(p) => self.packet_in(&session, conn, p),
                        Err(_) => bad = true,
                    }
                }
                if bad {
                    self.close(&session, "bad packet in a POST");
                    return PollingReply::error(RequestError::BadRequest);
                }
                // The client's next POST waits for its broadcasts to land ([`Flight`]).
                while let Some(landed) = session.hold() {
                    landed.wait().await;
                    session.give_up(&landed);
                }
                PollingReply::ok("ok".into())
            }
            _ => PollingReply::error(RequestError::BadRequest),
        }
    }

    async fn poll_get(self: &Arc<Self>, session: &Arc<EioSession>) -> PollingReply {
        // Engine.IO v4: two concurrent GETs on one session is a protocol error; close it.
        let Ok(mut rx) = session.rx.try_lock() else {
            self.close(session, "concurrent polling GET");
            return PollingReply::error(RequestError::BadRequest);
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
            return PollingReply::ok(engineio::Packet::text(ptype, "").encode_text());
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
        PollingReply::ok(parts.join("\u{1e}"))
    }

    /// A WebSocket connection to the Engine.IO endpoint, after dispel wrote the 101. With a
    /// sid it upgrades an existing polling session (probe, then UPGRADE); without, it opens a
    /// new session directly on WebSocket.
    pub async fn websocket(
        self: Arc<Self>,
        conn: u64,
        sid: Option<String>,
        ws: WebSocketStream<Tap>,
    ) {
        let (mut sink, mut stream) = ws.split();
        let session = match sid {
            None => {
                let s = self.open_session(conn);
                s.upgraded.store(true, Ordering::Release);
                self.handler.on_open(&s);
                let open = self.open_packet(&s.sid, true);
                if send_item(&mut sink, &open).await.is_err() {
                    self.close(&s, "transport error");
                    return;
                }
                s
            }
            Some(sid) => {
                let Some(s) = self.lookup(&sid) else {
                    let _ = sink
                        .send(close_message(CloseCode::Policy, "Session ID unknown"))
                        .await;
                    return;
                };
                if s.upgraded.load(Ordering::Acquire) || s.upgrading.swap(true, Ordering::AcqRel) {
                    // A second WebSocket for the same session is refused.
                    let _ = sink
                        .send(close_message(CloseCode::Policy, "already upgraded"))
                        .await;
                    return;
                }
                match self.probe(&s, &mut sink, &mut stream).await {
                    Ok(()) => {
                        s.conn.store(conn, Ordering::Relaxed);
                        s.upgraded.store(true, Ordering::Release);
                    }
                    Err(reason) => {
                        s.upgrading.store(false, Ordering::Release);
                        let _ = sink.send(close_message(CloseCode::Normal, reason)).await;
                        return;
                    }
                }
                s
            }
        };
        let reason = self.ws_loop(&session, conn, &mut sink, &mut stream).await;
        self.close(&session, reason);
        let _ = sink.close().await;
    }

    /// The upgrade dance (Engine.IO v4 "Upgrade"): client `2probe`, server `3probe`, a NOOP to
    /// release the parked GET, client `5`.
    async fn probe(
        &self,
        s: &Arc<EioSession>,
        sink: &mut WsSink,
        stream: &mut WsStream,
    ) -> Result<(), &'static str> {
        let deadline = tokio::time::sleep(self.config.ping_interval + self.config.ping_timeout);
        tokio::pin!(deadline);
        let mut closed = s.closed();
        loop {
            let msg = tokio::select! {
                m = stream.next() => m,
                _ = &mut deadline => return Err("upgrade timed out"),
                _ = wait_closed(&mut closed) => return Err("session closed during upgrade"),
            };
            let Some(Ok(Message::Text(text))) = msg else {
                return Err("transport closed during upgrade");
            };
            match engineio::Packet::decode_text(text.as_str()) {
                Ok(p) if p.ptype == PacketType::Ping && p.data == Data::Text("probe".into()) => {
                    sink.send(Message::text("3probe"))
                        .await
                        .map_err(|_| "transport error")?;
                    let _ = s.send(text_item(PacketType::Noop, ""));
                }
                Ok(p) if p.ptype == PacketType::Upgrade => return Ok(()),
                _ => return Err("unexpected packet during upgrade"),
            }
        }
    }

    async fn ws_loop(
        &self,
        s: &Arc<EioSession>,
        conn: u64,
        sink: &mut WsSink,
        stream: &mut WsStream,
    ) -> &'static str {
        // Wait for a parked polling GET to hand over the queue.
        let mut rx = s.rx.lock().await;
        let mut closed = s.closed();
        // The oldest of the client's broadcasts in flight, when it has `IN_FLIGHT` of them,
        // until it lands ([`Flight`]): meanwhile nothing more is read from the client, but its
        // own queue is still written.
        let mut holding: Option<(Landed, tokio::time::Instant)> = None;
        loop {
            let landing = holding.clone();
            tokio::select! {
                msg = stream.next(), if holding.is_none() => match msg {
                    Some(Ok(Message::Text(text))) => match engineio::Packet::decode_text(text.as_str()) {
                        Ok(p) => {
                            self.packet_in(s, conn, p);
                            holding = s.hold().map(|l| (l, tokio::time::Instant::now() + FLIGHT_WAIT));
                        }
                        Err(_) => return "bad Engine.IO packet",
                    },
                    Some(Ok(Message::Binary(b))) => {
                        self.packet_in(s, conn, engineio::Packet::from_binary(b.to_vec()));
                        holding = s.hold().map(|l| (l, tokio::time::Instant::now() + FLIGHT_WAIT));
                    }
                    Some(Ok(Message::Close(_))) | None => return "transport close",
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        let (code, reason) = close_for(&e);
                        let _ = sink.send(close_message(code, reason)).await;
                        return reason;
                    }
                },
                item = rx.recv() => match item {
                    Some(q) => {
                        if send_batch(sink, q, &mut rx, &s.blocked).await.is_err() {
                            return "transport error";
                        }
                    }
                    None => return "server shutting down",
                },
                _ = async { if let Some((l, deadline)) = &landing { l.wait_until(*deadline).await } }, if landing.is_some() => {
                    if let Some((l, _)) = holding.take() {
                        s.give_up(&l);
                    }
                    holding = s.hold().map(|l| (l, tokio::time::Instant::now() + FLIGHT_WAIT));
                }
                _ = wait_closed(&mut closed) => {
                    let _ = send_item(sink, &text_item(PacketType::Close, "")).await;
                    return "server closed the session";
                }
            }
        }
    }
}

/// Resolves once the session is closed.
async fn wait_closed(rx: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send; drop it before anything else awaits.
    let _ = rx.wait_for(|c| *c).await.map(|_| ());
}

type WsSink = futures_util::stream::SplitSink<WebSocketStream<Tap>, Message>;
type WsStream = futures_util::stream::SplitStream<WebSocketStream<Tap>>;

async fn send_item(sink: &mut WsSink, item: &OutItem) -> Result<(), tungstenite::Error> {
    feed_item(sink, item).await?;
    sink.flush().await
}

async fn feed_item(sink: &mut WsSink, item: &OutItem) -> Result<(), tungstenite::Error> {
    for p in item.iter() {
        let msg = match p {
            WirePacket::Text(t) => Message::Text(t.clone()),
            WirePacket::Binary(b) => Message::binary(b.clone()),
        };
        sink.feed(msg).await?;
    }
    Ok(())
}

/// Most queued items written with one flush: under a burst of broadcasts a client gets them in
/// a few large writes instead of one system call per message.
const BATCH: usize = 64;

async fn send_batch(
    sink: &mut WsSink,
    first: Queued,
    rx: &mut mpsc::Receiver<Queued>,
    blocked: &AtomicBool,
) -> Result<(), tungstenite::Error> {
    feed_queued(sink, first, blocked).await?;
    for _ in 1..BATCH {
        match rx.try_recv() {
            Ok(q) => feed_queued(sink, q, blocked).await?,
            Err(_) => break,
        }
    }
    flagged(blocked, sink.flush()).await
}

/// Feeds one queued item (its turn come: what is fed before it goes out first); taking it
/// releases its hold on a [`Flight`].
async fn feed_queued(
    sink: &mut WsSink,
    mut q: Queued,
    blocked: &AtomicBool,
) -> Result<(), tungstenite::Error> {
    if q.after.is_some() {
        flagged(blocked, sink.flush()).await?;
        q.wait_turn().await;
    }
    flagged(blocked, feed_item(sink, &q.item)).await
}

/// Runs a write, with `blocked` set while it waits for the socket: a write that completes at
/// once never sets it, so a connection whose task is merely not running (a busy machine) is
/// not taken for one whose client does not read.
async fn flagged<F: std::future::Future>(blocked: &AtomicBool, write: F) -> F::Output {
    let mut write = std::pin::pin!(write);
    std::future::poll_fn(|cx| {
        let r = write.as_mut().poll(cx);
        blocked.store(r.is_pending(), Ordering::Relaxed);
        r
    })
    .await
}

fn close_message(code: CloseCode, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.to_string().into(),
    }))
}

/// The close code a read error deserves (RFC 6455 §7.4.1).
fn close_for(e: &tungstenite::Error) -> (CloseCode, &'static str) {
    match e {
        tungstenite::Error::Capacity(_) => (CloseCode::Size, "message too big"),
        tungstenite::Error::Utf8(_) => (CloseCode::Invalid, "invalid UTF-8"),
        tungstenite::Error::Protocol(_) => (CloseCode::Protocol, "protocol error"),
        _ => (CloseCode::Abnormal, "transport error"),
    }
}

/// tungstenite's limits, from Engine.IO's maxPayload. The read buffer starts at 8 KiB (it grows
/// for a larger message): tungstenite's default of 128 KiB, zero-filled on the first read, was
/// most of the server's memory with 1000 clients (1000 x 128 KiB).
pub fn ws_config(max_payload: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .max_message_size(Some(max_payload))
        .max_frame_size(Some(max_payload))
}

/// Server-side heartbeat (Engine.IO v4): PING every pingInterval; no PONG within pingTimeout
/// closes the session.
async fn heartbeat(server: Arc<EioServer>, s: Arc<EioSession>) {
    let mut closed = s.closed();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(server.config.ping_interval) => {}
            _ = wait_closed(&mut closed) => return,
        }
        if let Ok(mut p) = s.ping_sent.lock() {
            *p = Some(tokio::time::Instant::now());
        }
        if s.send(text_item(PacketType::Ping, "")).is_err() {
            return;
        }
        tokio::select! {
            _ = s.pong.notified() => {
                if let Ok(mut p) = s.ping_sent.lock() {
                    *p = None;
                }
            }
            _ = tokio::time::sleep(server.config.ping_timeout) => {
                server.ping_timeout(&s);
                return;
            }
            _ = wait_closed(&mut closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Quiet;

    impl EioHandler for Quiet {
        fn on_open(&self, _: &Arc<EioSession>) {}
        fn on_message(&self, _: &Arc<EioSession>, _: u64, _: Data) {}
        fn on_close(&self, _: &Arc<EioSession>, _: &str) {}
    }

    fn server() -> Arc<EioServer> {
        let config = EioConfig {
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            max_payload: 1_000_000,
            max_queue: 64,
        };
        EioServer::new(config, Arc::new(Quiet), Tracer::disabled(), Clock::new())
    }

    /// A session on WebSocket, idle.
    fn on_websocket(server: &Arc<EioServer>, conn: u64) -> Arc<EioSession> {
        let s = server.open_session(conn);
        s.upgraded.store(true, Ordering::Release);
        s
    }

    #[tokio::test]
    async fn a_broadcast_lands_when_every_recipient_keeping_up_has_taken_it() {
        let server = server();
        let (a, b) = (on_websocket(&server, 1), on_websocket(&server, 2));
        let item = text_item(PacketType::Message, "2[\"replaced values\"]");
        let flight = Flight::new();
        for s in [&a, &b] {
            s.send(flight.copy(s, &item)).unwrap();
        }
        let done = flight.landed();
        assert!(!done.is_done());
        let taken_a = a.rx.lock().await.try_recv().unwrap();
        drop(taken_a);
        assert!(!done.is_done(), "b has not taken it yet");
        let taken_b = b.rx.lock().await.try_recv().unwrap();
        assert_eq!(taken_b.item, item);
        drop(taken_b);
        assert!(done.is_done());
    }

    #[tokio::test]
    async fn a_recipient_that_is_not_keeping_up_is_not_waited_for() {
        let server = server();
        let (backlogged, blocked, idle) = (
            on_websocket(&server, 1),
            on_websocket(&server, 2),
            on_websocket(&server, 3),
        );
        // On polling, a client is waited for only while a GET of its is waiting.
        let (polling, between_gets) = (server.open_session(4), server.open_session(5));
        polling.polling.store(true, Ordering::Release);
        for _ in 0..KEEPING_UP {
            backlogged.send(text_item(PacketType::Noop, "")).unwrap();
        }
        blocked.blocked.store(true, Ordering::Relaxed);
        let item = text_item(PacketType::Message, "2[\"replaced values\"]");
        let flight = Flight::new();
        for s in [&backlogged, &blocked, &between_gets] {
            s.send(flight.copy(s, &item)).unwrap();
        }
        // Nobody keeping up got it: landed at once, though every copy is still queued.
        assert!(flight.landed().is_done());
        let flight = Flight::new();
        polling.send(flight.copy(&polling, &item)).unwrap();
        let done = flight.landed();
        assert!(!done.is_done());
        drop(polling.rx.lock().await.try_recv().unwrap());
        assert!(done.is_done());
        // An idle recipient is waited for; what it was sent after the broadcast waits too.
        let flight = Flight::new();
        idle.send(flight.copy(&idle, &item)).unwrap();
        let mut answer = Queued::from(text_item(PacketType::Message, "3"));
        answer.after = Some(flight.landed());
        let waiting = tokio::spawn(async move { answer.wait_turn().await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(idle.rx.lock().await.try_recv().unwrap());
        tokio::time::timeout(Duration::from_millis(100), waiting)
            .await
            .expect("the answer's turn comes once the broadcast is taken")
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_is_capped() {
        let server = server();
        let s = on_websocket(&server, 1);
        let flight = Flight::new();
        let item = text_item(PacketType::Message, "2[\"x\"]");
        s.send(flight.copy(&s, &item)).unwrap();
        let mut answer = Queued::from(item);
        answer.after = Some(flight.landed());
        let start = tokio::time::Instant::now();
        answer.wait_turn().await;
        assert_eq!(start.elapsed(), FLIGHT_WAIT);
    }
}
