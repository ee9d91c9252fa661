//! The WebSocket transport of a session: the upgrade probe, then one loop that reads the
//! client's messages and writes the session's queue, then the end of the connection as the
//! flavor's server ends it.
//!
//! Frames are read and written with `wire::ws_message` over the connection's tap, so the
//! server's own WebSocket layer is the same code the trace decodes with, and behaves as
//! Flask-SocketIO's (simple-websocket over wsproto): permessage-deflate on every message once
//! agreed, wsproto's Close codes and reasons.
//!
//! How a Flask-SocketIO WebSocket ends, as observed (python-engineio 4.15, Werkzeug 3.1): the
//! server answers the client's Close, or sends its own (code 1000), and then never closes the
//! TCP connection itself: Werkzeug goes back to reading the socket for another HTTP request,
//! so the client's FIN comes first. dispel does the same, except that where Werkzeug would
//! write an HTTP error page onto the upgraded socket it closes the connection instead, and says
//! so in the trace (docs/fidelity.md).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc;

use crate::wire::engineio::{self, Data, PacketType};
use crate::wire::handshake::DeflateParams;
use crate::wire::ws_message::{self, Decoder, Encoder, Incoming, Outgoing, Refusal};

use super::super::tap::Tap;
use super::flight::{Queued, FLIGHT_WAIT};
use super::{
    text_item, wait_closed, Closer, EioServer, EioSession, Flavor, Landed, OutItem, Transport,
    WirePacket,
};

/// What a WebSocket request turns into, decided before the 101.
pub struct Upgrade {
    kind: Kind,
}

enum Kind {
    /// A new session, straight on WebSocket.
    New,
    /// The upgrade of a polling session.
    Of(Arc<EioSession>),
    /// Node's engine.io answers the handshake, then closes with this reason (1008).
    Refused(&'static str),
}

impl Upgrade {
    pub(super) fn new_session() -> Upgrade {
        Upgrade { kind: Kind::New }
    }

    /// The upgrade of `s`, under way from now on: the session is marked upgrading before
    /// the 101 is written, so a GET that the client sends once it sees the 101 finds it so.
    pub(super) fn of(s: Arc<EioSession>) -> Upgrade {
        s.set_transport(Transport::Upgrading);
        Upgrade { kind: Kind::Of(s) }
    }

    /// The handshake failed: a session being upgraded stays on polling.
    pub fn abandon(self) {
        if let Kind::Of(s) = self.kind {
            s.set_transport(Transport::Polling);
        }
    }

    pub(super) fn refused(why: &'static str) -> Upgrade {
        Upgrade {
            kind: Kind::Refused(why),
        }
    }
}

/// The reading half: the client's frames.
struct In {
    rd: ReadHalf<Tap>,
    dec: Decoder,
    chunk: Box<[u8]>,
}

enum Read {
    Msg(Incoming),
    Refused(Refusal),
    Eof,
}

impl In {
    /// The next message; cancel-safe (bytes read are decoded before the next wait).
    async fn read(&mut self) -> Read {
        loop {
            match self.dec.next_message() {
                Ok(Some(m)) => return Read::Msg(m),
                Ok(None) => {}
                Err(r) => return Read::Refused(r),
            }
            match self.rd.read(&mut self.chunk).await {
                Ok(0) | Err(_) => return Read::Eof,
                Ok(n) => self.dec.feed(&self.chunk[..n]),
            }
        }
    }
}

/// The writing half: frames out, gathered in one buffer per write.
struct Out {
    wr: WriteHalf<Tap>,
    enc: Encoder,
    buf: Vec<u8>,
}

impl Out {
    fn queue(&mut self, msg: Outgoing<'_>) {
        self.enc.encode(msg, &mut self.buf);
    }

    fn queue_item(&mut self, item: &OutItem) {
        for p in item.iter() {
            match p {
                WirePacket::Text(t) => self.queue(Outgoing::Text(t.as_bytes())),
                WirePacket::Binary(b) => self.queue(Outgoing::Binary(b)),
            }
        }
    }

    /// Writes what is gathered, with `blocked` set while the socket has no room.
    async fn flush(&mut self, blocked: &AtomicBool) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.buf);
        let res = flagged(blocked, self.wr.write_all(&buf)).await;
        self.buf = buf;
        self.buf.clear();
        res?;
        self.wr.flush().await
    }

    async fn send(&mut self, msg: Outgoing<'_>) -> std::io::Result<()> {
        self.queue(msg);
        self.flush(&AtomicBool::new(false)).await
    }
}

/// How the transport loop ended.
enum End {
    /// The client's Close, answered.
    ClientClose,
    /// The client broke a WebSocket rule; the Close saying which was sent.
    Failed,
    /// A message over maxPayload.
    TooLarge,
    /// The client's TCP connection ended without a Close.
    Eof,
    /// The session was ended elsewhere (CLOSE from the client, ping timeout, dropped).
    SessionClosed,
    /// A text message python-engineio cannot decode ("" or not a packet type): the exception
    /// reaches Werkzeug, which writes a 500 page onto the socket.
    Undecodable(String),
    /// Writing failed.
    WriteError,
    /// Node: an Engine.IO packet that does not decode.
    BadPacket,
}

/// How long a connection whose WebSocket ended waits for the client to close it (Werkzeug
/// waits as long as the operating system lets it).
const LINGER: std::time::Duration = std::time::Duration::from_secs(60);

/// Most queued items written with one flush: under a burst of broadcasts a client gets them in
/// a few large writes instead of one system call per message.
const BATCH: usize = 64;

impl EioServer {
    /// Runs the WebSocket transport after the 101 was written: `leftover` is what was read past
    /// the handshake, `deflate` what permessage-deflate parameters were agreed.
    pub async fn websocket(
        self: Arc<Self>,
        conn: u64,
        up: Upgrade,
        tap: Tap,
        leftover: Vec<u8>,
        deflate: Option<DeflateParams>,
    ) {
        let (rd, wr) = tokio::io::split(tap);
        let (mut dec, enc) = ws_message::codec(deflate, self.config.max_payload);
        dec.feed(&leftover);
        let mut inp = In {
            rd,
            dec,
            // Small: one per connection (1000 clients, 4 MiB); a larger message takes several reads.
            chunk: vec![0u8; 4 * 1024].into_boxed_slice(),
        };
        let mut out = Out {
            wr,
            enc,
            buf: Vec::new(),
        };
        let session = match up.kind {
            Kind::Refused(why) => {
                let _ = out.send(Outgoing::Close(Some(1008), why)).await;
                return;
            }
            Kind::New => self.open_session(conn, Transport::WebSocket),
            Kind::Of(s) => {
                match self.probe(&s, &mut inp, &mut out).await {
                    Ok(()) => {
                        s.conn.store(conn, Ordering::Relaxed);
                        s.set_transport(Transport::WebSocket);
                        s
                    }
                    Err(reason) => {
                        s.set_transport(Transport::Polling);
                        match self.flavor() {
                            // python-engineio returns from its handler and sends nothing more:
                            // simple-websocket still answers pings and a Close.
                            Flavor::Python => self.linger(conn, &mut inp, &mut out, false).await,
                            Flavor::Node => {
                                let _ = out.send(Outgoing::Close(Some(1000), reason)).await;
                            }
                        }
                        return;
                    }
                }
            }
        };
        let end = self.ws_loop(&session, conn, &mut inp, &mut out).await;
        let reason = match &end {
            End::ClientClose | End::Eof => "transport close",
            End::Failed => "WebSocket protocol error",
            End::TooLarge => "message over maxPayload",
            End::SessionClosed => "session closed",
            End::Undecodable(_) => "undecodable Engine.IO packet",
            End::WriteError => "transport error",
            End::BadPacket => "bad Engine.IO packet",
        };
        self.close(&session, reason, Closer::Client);
        match (self.flavor(), end) {
            (_, End::Eof | End::WriteError) => {}
            (Flavor::Python, End::Undecodable(what)) => {
                self.fidelity_note(
                    conn,
                    format!("python-engineio cannot decode the message {what:?}; the exception reaches Werkzeug, which writes an HTTP 500 page onto the WebSocket and closes it. dispel closes the connection without the page (docs/fidelity.md)"),
                );
            }
            (Flavor::Python, End::ClientClose | End::Failed) => {
                self.linger(conn, &mut inp, &mut out, false).await;
            }
            (Flavor::Python, End::TooLarge | End::SessionClosed | End::BadPacket) => {
                if out.send(Outgoing::Close(Some(1000), "")).await.is_ok() {
                    self.linger(conn, &mut inp, &mut out, true).await;
                }
            }
            (Flavor::Node, End::ClientClose | End::Failed) => {}
            (Flavor::Node, _) => {
                let _ = out.send(Outgoing::Close(None, "")).await;
            }
        }
    }

    /// The upgrade dance (Engine.IO v4 "Upgrade"): client `2probe`, server `3probe`, a NOOP to
    /// release the parked GET, client `5`.
    async fn probe(
        &self,
        s: &Arc<EioSession>,
        inp: &mut In,
        out: &mut Out,
    ) -> Result<(), &'static str> {
        let deadline = tokio::time::sleep(self.config.ping_interval + self.config.ping_timeout);
        tokio::pin!(deadline);
        let mut closed = s.closed();
        let mut probed = false;
        loop {
            let msg = tokio::select! {
                m = inp.read() => m,
                _ = &mut deadline => return Err("upgrade timed out"),
                _ = wait_closed(&mut closed) => return Err("session closed during upgrade"),
            };
            let text = match msg {
                Read::Msg(Incoming::Text(t)) => t,
                Read::Msg(Incoming::Ping(p)) => {
                    out.send(Outgoing::Pong(&p))
                        .await
                        .map_err(|_| "transport error")?;
                    continue;
                }
                Read::Msg(Incoming::Pong) => continue,
                _ => return Err("transport closed during upgrade"),
            };
            match engineio::Packet::decode_text(&text) {
                Ok(p)
                    if !probed
                        && p.ptype == PacketType::Ping
                        && p.data == Data::Text("probe".into()) =>
                {
                    out.send(Outgoing::Text(b"3probe"))
                        .await
                        .map_err(|_| "transport error")?;
                    // Releases the parked GET. python-engineio queues it whatever; Node's
                    // engine.io sends it to a GET that is waiting (a later one gets its own).
                    if self.flavor() == Flavor::Python || s.polling.load(Ordering::Acquire) {
                        let _ = s.send(text_item(PacketType::Noop, ""));
                    }
                    probed = true;
                }
                Ok(p) if probed && p.ptype == PacketType::Upgrade => return Ok(()),
                _ => return Err("unexpected packet during upgrade"),
            }
        }
    }

    async fn ws_loop(&self, s: &Arc<EioSession>, conn: u64, inp: &mut In, out: &mut Out) -> End {
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
                msg = inp.read(), if holding.is_none() => {
                    match msg {
                        Read::Msg(Incoming::Text(text)) => {
                            let packet = match engineio::Packet::decode_text(&text) {
                                Ok(p) => p,
                                // Python: only a type that is not a digit (or nothing) fails to
                                // decode; an unknown digit is dropped when received.
                                Err(engineio::EioError::UnknownPacketType(c))
                                    if self.flavor() == Flavor::Python && c.is_ascii_digit() => continue,
                                Err(_) if self.flavor() == Flavor::Python => return End::Undecodable(text),
                                Err(_) => return End::BadPacket,
                            };
                            // A packet a client may not send here is ignored on WebSocket.
                            let _ = self.packet_in(s, conn, packet);
                        }
                        Read::Msg(Incoming::Binary(b)) => {
                            let _ = self.packet_in(s, conn, engineio::Packet::from_binary(b));
                        }
                        Read::Msg(Incoming::Ping(p)) => {
                            out.queue(Outgoing::Pong(&p));
                            if out.flush(&s.blocked).await.is_err() {
                                return End::WriteError;
                            }
                            continue;
                        }
                        Read::Msg(Incoming::Pong) => continue,
                        Read::Msg(Incoming::Close(code, reason)) => {
                            let _ = out.send(ws_message::close_answer(code, &reason)).await;
                            return End::ClientClose;
                        }
                        Read::Refused(Refusal::Rule(f)) => {
                            let _ = out.send(Outgoing::Close(Some(f.code), &f.reason)).await;
                            return End::Failed;
                        }
                        Read::Refused(Refusal::TooLarge) => return End::TooLarge,
                        Read::Eof => return End::Eof,
                    }
                    holding = s.hold().map(|l| (l, tokio::time::Instant::now() + FLIGHT_WAIT));
                }
                item = rx.recv() => match item {
                    Some(q) => {
                        if send_batch(out, q, &mut rx, &s.blocked).await.is_err() {
                            return End::WriteError;
                        }
                    }
                    None => return End::SessionClosed,
                },
                _ = async { if let Some((l, deadline)) = &landing { l.wait_until(*deadline).await } }, if landing.is_some() => {
                    if let Some((l, _)) = holding.take() {
                        s.give_up(&l);
                    }
                    holding = s.hold().map(|l| (l, tokio::time::Instant::now() + FLIGHT_WAIT));
                }
                _ = wait_closed(&mut closed) => {
                    // What was queued before the end goes out first: for python-engineio, the
                    // CLOSE packet of a session the server ended.
                    while let Ok(q) = rx.try_recv() {
                        out.queue_item(&q.item);
                    }
                    if self.flavor() == Flavor::Node {
                        out.queue_item(&text_item(PacketType::Close, ""));
                    }
                    if out.flush(&s.blocked).await.is_err() {
                        return End::WriteError;
                    }
                    return End::SessionClosed;
                }
            }
        }
    }

    /// After the WebSocket: the connection stays open until the client closes it, as under
    /// Werkzeug. A Close the client still owes (`awaiting_close`) and pings are handled as
    /// simple-websocket would; any other byte is where Werkzeug would answer with an HTTP error
    /// page, so the connection is closed, with a note in the trace.
    async fn linger(&self, conn: u64, inp: &mut In, out: &mut Out, mut awaiting_close: bool) {
        if !awaiting_close {
            // What came with the last frame was read by simple-websocket, not by Werkzeug.
            inp.dec.clear();
        }
        let deadline = tokio::time::Instant::now() + LINGER;
        loop {
            let msg = match tokio::time::timeout_at(deadline, inp.read()).await {
                Ok(m) => m,
                Err(_) => return,
            };
            match msg {
                Read::Eof => return,
                Read::Msg(Incoming::Close(..)) if awaiting_close => awaiting_close = false,
                Read::Msg(Incoming::Ping(p)) if awaiting_close => {
                    if out.send(Outgoing::Pong(&p)).await.is_err() {
                        return;
                    }
                }
                Read::Msg(_) | Read::Refused(Refusal::TooLarge) if awaiting_close => {}
                _ => {
                    self.fidelity_note(
                        conn,
                        "the client sent more after the WebSocket ended. Werkzeug would read these bytes as a new HTTP request and write an HTTP 400 page onto the socket; dispel closes the connection instead (docs/fidelity.md)".to_string(),
                    );
                    return;
                }
            }
        }
    }
}

async fn send_batch(
    out: &mut Out,
    first: Queued,
    rx: &mut mpsc::Receiver<Queued>,
    blocked: &AtomicBool,
) -> std::io::Result<()> {
    feed_queued(out, first, blocked).await?;
    for _ in 1..BATCH {
        match rx.try_recv() {
            Ok(q) => feed_queued(out, q, blocked).await?,
            Err(_) => break,
        }
    }
    out.flush(blocked).await
}

/// Gathers one queued item (its turn come: what is gathered before it goes out first); taking
/// it releases its hold on a [`Flight`].
async fn feed_queued(out: &mut Out, mut q: Queued, blocked: &AtomicBool) -> std::io::Result<()> {
    if q.after.is_some() {
        out.flush(blocked).await?;
        q.wait_turn().await;
    }
    out.queue_item(&q.item);
    Ok(())
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
