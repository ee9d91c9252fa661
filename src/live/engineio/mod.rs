//! Engine.IO v4 server sessions: the sid table, the polling and WebSocket transports, the
//! upgrade between them, and the heartbeat.
//!
//! Each session has one bounded outgoing queue. Whichever transport is active drains it: a
//! parked polling GET, or the WebSocket writer. A client that does not drain it fast enough
//! fills it and is dropped, so it can never slow the others (a [`Flight`] does not wait for
//! it either).
//!
//! Requests are answered the way the server [`Flavor`] names answers them: python-engineio
//! behind Werkzeug (Flask-SocketIO, the default), or Node's engine.io (what the official
//! protocol suites expect). `polling.rs` holds the two request handlers, `websocket.rs` the
//! WebSocket transport, `flight.rs` the broadcast in flight.

mod flight;
mod polling;
mod websocket;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch, Notify};

use crate::trace::{Event, Stage, Tracer};
use crate::wire::engineio::{self, Data, OpenInfo, PacketType};

use super::Clock;

pub use flight::{Flight, Landed, Queued};
pub use polling::{Answer, Body, Request};
pub use websocket::Upgrade;

use flight::{IN_FLIGHT, KEEPING_UP};

/// Whose behaviour `dispel serve` reproduces on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Flask-SocketIO in its default threading mode: Werkzeug's development server,
    /// python-engineio, python-socketio, simple-websocket and wsproto. The auction.
    Python,
    /// Node's engine.io and socket.io, which the official protocol test suites are written
    /// against (`--app conformance`).
    Node,
}

/// Which pages may open a session (python-engineio's `cors_allowed_origins`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origins {
    /// The default: only the server's own origin (`http://` + the request's Host).
    SameOrigin,
    /// `'*'`: any origin.
    Any,
    /// These origins exactly.
    List(Vec<String>),
    /// `[]`: no check and no CORS headers at all.
    Disabled,
}

/// One Engine.IO packet as it will be written: text (type digit included) or binary. The text
/// is reference-counted: a broadcast's recipients share it down to the WebSocket writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WirePacket {
    Text(Arc<str>),
    Binary(Arc<[u8]>),
}

impl WirePacket {
    /// As a polling payload carries it (binary as `b` + base64).
    fn polling_text(&self) -> String {
        match self {
            WirePacket::Text(t) => t.to_string(),
            WirePacket::Binary(b) => engineio::Packet::from_binary(b.to_vec()).encode_text(),
        }
    }
}

/// Packets that must be sent together and in order (a Socket.IO binary event and its
/// attachments). Shared between all recipients of a broadcast.
pub type OutItem = Arc<Vec<WirePacket>>;

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

#[derive(Debug, Clone)]
pub struct EioConfig {
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub max_payload: usize,
    pub max_queue: usize,
    pub flavor: Flavor,
    pub origins: Origins,
}

/// Why a packet could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    Closed,
    /// The client is not reading: it has been dropped.
    Full,
}

/// Which transport carries a session's packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Transport {
    Polling = 0,
    /// The probe is under way on a WebSocket; polling GETs get NOOP.
    Upgrading = 1,
    WebSocket = 2,
}

/// Who ended a session, which decides what its client is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closer {
    /// The client sent CLOSE, or its transport went away: nothing more is sent.
    Client,
    /// The server ended it (a bad packet, a POST over maxPayload): python-engineio queues a
    /// CLOSE packet for the client first.
    Server,
    /// No PONG in time. python-engineio means to send a CLOSE packet but never does (its
    /// `send` checks the ping timeout again and drops the packet); Node's engine.io sends it.
    PingTimeout,
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
    transport: AtomicU8,
    /// Set when the client itself ended the session.
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

    pub fn transport(&self) -> Transport {
        match self.transport.load(Ordering::Acquire) {
            1 => Transport::Upgrading,
            2 => Transport::WebSocket,
            _ => Transport::Polling,
        }
    }

    fn set_transport(&self, t: Transport) {
        self.transport.store(t as u8, Ordering::Release);
    }

    pub fn is_closed(&self) -> bool {
        *self.closed_tx.borrow()
    }

    /// Is this client taking what is queued for it as it comes (see [`Flight`])? On WebSocket:
    /// no write to it is waiting for room in its socket; on polling: a GET is waiting for it.
    fn keeping_up(&self) -> bool {
        let backlog = self.tx.max_capacity() - self.tx.capacity();
        let ready = if self.transport() == Transport::WebSocket {
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

    /// Stops waiting for a broadcast that has not landed within [`flight::FLIGHT_WAIT`].
    fn give_up(&self, landed: &Landed) {
        if let Ok(mut f) = self.flights.lock() {
            f.retain(|l| !l.same(landed));
        }
    }

    /// Waits while this client has too many broadcasts in flight.
    async fn wait_for_flights(&self) {
        while let Some(landed) = self.hold() {
            landed.wait().await;
            self.give_up(&landed);
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
                    server.close(self, "slow client dropped", Closer::Client);
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
    /// The low 24 bits of every id this server draws (python-engineio's `sequence_number`).
    next_id: AtomicU64,
}

impl EioServer {
    pub fn new(
        config: EioConfig,
        handler: Arc<dyn EioHandler>,
        tracer: Tracer,
        clock: Clock,
    ) -> Arc<EioServer> {
        Arc::new(EioServer {
            sessions: Mutex::new(HashMap::new()),
            config,
            handler,
            tracer,
            clock,
            next_id: AtomicU64::new(0),
        })
    }

    pub fn flavor(&self) -> Flavor {
        self.config.flavor
    }

    /// A new session id, drawn the way python-engineio's `generate_id` draws it: 12 bytes from
    /// the operating system's random source and a 3-byte sequence number, in base64 with `-` and
    /// `_` for `+` and `/` (20 characters). The Socket.IO sid of each namespace connection is
    /// drawn the same way, independently: the Engine.IO sid is the session's secret (whoever
    /// knows it can POST into the session), while the Socket.IO sid is shown to other clients.
    pub fn generate_id(&self) -> String {
        use base64::Engine as _;
        let n = self.next_id.fetch_add(1, Ordering::Relaxed) & 0xff_ffff;
        let mut bytes = [0u8; 15];
        if getrandom::fill(&mut bytes[..12]).is_err() {
            // No random source: refuse to hand out guessable ids.
            panic!("bug: the operating system's random source failed");
        }
        bytes[12..].copy_from_slice(&(n as u32).to_be_bytes()[1..]);
        base64::engine::general_purpose::URL_SAFE.encode(bytes)
    }

    fn lookup(&self, sid: &str) -> Option<Arc<EioSession>> {
        self.sessions.lock().ok()?.get(sid).cloned()
    }

    fn open_session(self: &Arc<Self>, conn: u64, transport: Transport) -> Arc<EioSession> {
        let (tx, rx) = mpsc::channel(self.config.max_queue.max(4));
        let (closed_tx, _) = watch::channel(false);
        let session = Arc::new(EioSession {
            sid: self.generate_id(),
            conn: AtomicU64::new(conn),
            tx,
            rx: tokio::sync::Mutex::new(rx),
            blocked: AtomicBool::new(false),
            flights: Mutex::new(VecDeque::new()),
            transport: AtomicU8::new(transport as u8),
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
        // The OPEN packet is the first thing the session's transport sends.
        let open = self.open_packet(&session.sid, transport == Transport::WebSocket);
        let _ = session.send(open);
        self.handler.on_open(&session);
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
        let json = match self.flavor() {
            Flavor::Python => info.to_json_python(),
            Flavor::Node => info.to_json(),
        };
        text_item(PacketType::Open, &json)
    }

    /// Ends a session once: the transports see the signal and end, the handler is told.
    ///
    /// python-engineio keeps a closed session in its table until a request or its service
    /// task finds it (a GET in between gets 400 "'Session is disconnected'"); Node's keeps one
    /// closed by its client until the next GET, which it answers with a NOOP.
    pub fn close(&self, session: &Arc<EioSession>, reason: &str, by: Closer) {
        let by = match (by, self.flavor()) {
            (Closer::PingTimeout, Flavor::Python) => Closer::Client,
            (Closer::PingTimeout, Flavor::Node) => Closer::Server,
            (by, _) => by,
        };
        if by == Closer::Server && self.flavor() == Flavor::Python {
            // Queued before the session is marked closed, so a transport draining the queue
            // sends it (python-engineio's `close(abort=False)`).
            let _ = session.tx.try_send(text_item(PacketType::Close, "").into());
        }
        // Set before the closed signal, which a parked GET wakes on and then reads it.
        if by == Closer::Client && !session.is_closed() {
            session.client_closed.store(true, Ordering::Release);
        }
        let first = session
            .closed_tx
            .send_if_modified(|c| !std::mem::replace(c, true));
        if !first {
            return;
        }
        let linger = match self.flavor() {
            // Until the next request, or python-engineio's service task (within pingTimeout).
            Flavor::Python => Some(self.config.ping_timeout),
            // A client that POSTs CLOSE with no GET parked gets its NOOP on the next GET.
            Flavor::Node => (by == Closer::Client
                && session.transport() != Transport::WebSocket
                && !session.polling.load(Ordering::Acquire))
            .then_some(self.config.ping_interval + self.config.ping_timeout),
        };
        match linger {
            Some(wait) if session.transport() != Transport::WebSocket => {
                let (weak, s) = (session.server.clone(), session.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    if let Some(server) = weak.upgrade() {
                        server.forget(&s);
                    }
                });
            }
            _ => self.forget(session),
        }
        self.handler.on_close(session, reason);
    }

    fn forget(&self, session: &EioSession) {
        if let Ok(mut map) = self.sessions.lock() {
            if map
                .get(&session.sid)
                .is_some_and(|s| std::ptr::eq(Arc::as_ptr(s), session))
            {
                map.remove(&session.sid);
            }
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
        if s.is_closed() {
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
        self.close(s, "ping timeout", Closer::PingTimeout);
    }

    /// A trace note where dispel does on purpose what Flask-SocketIO would not.
    fn fidelity_note(&self, conn: u64, what: String) {
        self.tracer.emit(
            Event::new(
                Stage::Error,
                self.clock.now(),
                Some(conn),
                None,
                format!("Flask-SocketIO differs here: {what}"),
            )
            .with(
                "rule",
                "a Werkzeug quirk dispel explains rather than copies",
            )
            .with("where", "ws.close")
            .with("fidelity", true),
        );
    }

    /// One packet from the client, on either transport. `Err` when the packet type is one a
    /// client may not send here (python-engineio's `UnknownPacketError`).
    fn packet_in(
        &self,
        session: &Arc<EioSession>,
        conn: u64,
        packet: engineio::Packet,
    ) -> Result<(), ()> {
        match packet.ptype {
            PacketType::Pong => {
                session.pong.notify_one();
                Ok(())
            }
            PacketType::Message => {
                self.handler.on_message(session, conn, packet.data);
                Ok(())
            }
            PacketType::Close => {
                self.close(session, "client sent CLOSE", Closer::Client);
                Ok(())
            }
            // python-engineio answers UPGRADE outside the probe with a NOOP.
            PacketType::Upgrade if self.flavor() == Flavor::Python => {
                let _ = session.send(text_item(PacketType::Noop, ""));
                Ok(())
            }
            // A ping from the client is a v3 habit; v4 clients only answer pings.
            _ if self.flavor() == Flavor::Node => Ok(()),
            _ => Err(()),
        }
    }
}

/// Resolves once the session is closed.
async fn wait_closed(rx: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send; drop it before anything else awaits.
    let _ = rx.wait_for(|c| *c).await.map(|_| ());
}

/// Server-side heartbeat (Engine.IO v4): PING every pingInterval; no PONG within pingTimeout
/// closes the session. The times are scheduled from the session's start (and from each PONG),
/// not from when the task happens to wake, so a client that checks them to the millisecond (the
/// protocol suites do) finds the session closed when it should be.
async fn heartbeat(server: Arc<EioServer>, s: Arc<EioSession>) {
    let mut closed = s.closed();
    let mut next = tokio::time::Instant::now() + server.config.ping_interval;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = wait_closed(&mut closed) => return,
        }
        if let Ok(mut p) = s.ping_sent.lock() {
            *p = Some(next);
        }
        if s.send(text_item(PacketType::Ping, "")).is_err() {
            return;
        }
        tokio::select! {
            _ = s.pong.notified() => {
                if let Ok(mut p) = s.ping_sent.lock() {
                    *p = None;
                }
                next = tokio::time::Instant::now() + server.config.ping_interval;
            }
            _ = tokio::time::sleep_until(next + server.config.ping_timeout) => {
                server.ping_timeout(&s);
                return;
            }
            _ = wait_closed(&mut closed) => return,
        }
    }
}

#[cfg(test)]
pub(crate) fn test_server() -> Arc<EioServer> {
    struct Quiet;
    impl EioHandler for Quiet {
        fn on_open(&self, _: &Arc<EioSession>) {}
        fn on_message(&self, _: &Arc<EioSession>, _: u64, _: Data) {}
        fn on_close(&self, _: &Arc<EioSession>, _: &str) {}
    }
    let config = EioConfig {
        ping_interval: Duration::from_secs(25),
        ping_timeout: Duration::from_secs(20),
        max_payload: 1_000_000,
        max_queue: 64,
        flavor: Flavor::Python,
        origins: Origins::SameOrigin,
    };
    EioServer::new(config, Arc::new(Quiet), Tracer::disabled(), Clock::new())
}
