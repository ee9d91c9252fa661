//! The tap: a transparent wrapper around a connection's socket that shows every byte read and
//! written to a [`Session`], the same decoder a capture replay feeds. The server cannot tell it
//! is there; the trace cannot tell the bytes came from a live socket.
//!
//! In teaching mode the tap is also where the stepped connection waits: bytes read are held
//! back from the server, and bytes written are held back from the client, until the user has
//! seen each stage they make.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::flow::{Limits, Session};
use crate::trace::{Dir, Event, Stage, Tracer};

use super::step::Stepper;
use crate::replay::record::Recorder;

/// What every tap of a server shares.
#[derive(Clone)]
pub struct TapConfig {
    pub tracer: Tracer,
    pub start: Instant,
    pub limits: Limits,
    /// The copies of a broadcast are decoded once, for all the server's connections.
    pub memo: crate::flow::SharedMemo,
    pub recorder: Option<Arc<Recorder>>,
    pub stepper: Option<Arc<Stepper>>,
}

struct Observer {
    session: Session,
    tracer: Tracer,
    start: Instant,
    out: Vec<Event>,
}

impl Observer {
    /// Decodes bytes into the trace; returns the previews of the stages they made when the
    /// connection is being stepped.
    fn see(&mut self, dir: Dir, bytes: &[u8], stepper: Option<&Stepper>) -> Vec<String> {
        let t = self.start.elapsed().as_secs_f64();
        self.session.data(dir, t, bytes, &mut self.out);
        let previews = match stepper {
            Some(s) if s.steps(self.session.conn(), &self.out) => {
                self.out.iter().map(|e| s.preview(e)).collect()
            }
            _ => Vec::new(),
        };
        // The events leave as one batch, taking the vector's memory with them: an idle
        // connection keeps none.
        self.tracer.emit_batch(&mut self.out);
        previews
    }
}

type Gate = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A TCP stream whose bytes are decoded into the trace as they pass.
pub struct Tap {
    inner: TcpStream,
    observer: Option<Observer>,
    recorder: Option<(Arc<Recorder>, u64)>,
    stepper: Option<Arc<Stepper>>,
    /// Teaching mode: the wait before the held bytes may pass.
    gate: Option<Gate>,
    /// Bytes read from the client but not yet given to the server (teaching mode).
    held: Vec<u8>,
    held_pos: usize,
    /// How many bytes at the front of the server's next writes were already decoded.
    previewed: usize,
    eof: bool,
    error: Option<io::ErrorKind>,
    start: Instant,
}

impl Tap {
    pub fn new(
        inner: TcpStream,
        conn: u64,
        peers: (SocketAddr, SocketAddr),
        cfg: &TapConfig,
    ) -> Tap {
        let observer = cfg.tracer.enabled().then(|| {
            let mut session = Session::new(conn, cfg.limits).with_memo(cfg.memo.clone());
            session.set_interest(cfg.tracer.interest(Some(conn)));
            let t = cfg.start.elapsed().as_secs_f64();
            cfg.tracer.emit(session.accept_event(t, peers.0, peers.1));
            Observer {
                session,
                tracer: cfg.tracer.clone(),
                start: cfg.start,
                out: Vec::new(),
            }
        });
        let recorder = cfg.recorder.clone().map(|r| {
            let id = r.open(peers.0, peers.1, cfg.start.elapsed());
            (r, id)
        });
        Tap {
            inner,
            observer,
            recorder,
            stepper: cfg.stepper.clone(),
            gate: None,
            held: Vec::new(),
            held_pos: 0,
            previewed: 0,
            eof: false,
            error: None,
            start: cfg.start,
        }
    }

    /// Shows bytes to the recorder and the decoder; in teaching mode, arms the gate when they
    /// made stages the user must see first.
    fn see(&mut self, dir: Dir, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if let Some((r, id)) = &self.recorder {
            r.data(*id, dir, bytes, self.start.elapsed());
        }
        if let Some(o) = self.observer.as_mut() {
            let previews = o.see(dir, bytes, self.stepper.as_deref());
            if let (false, Some(s)) = (previews.is_empty(), &self.stepper) {
                self.gate = Some(Box::pin(s.clone().pause(previews)));
            }
        }
    }

    /// Stops decoding this connection (the live view's own stream), with one note saying so.
    pub fn detach(&mut self, why: &str) {
        if let Some(o) = self.observer.take() {
            let t = o.start.elapsed().as_secs_f64();
            o.tracer.emit(
                Event::new(
                    Stage::TcpData,
                    t,
                    Some(o.session.conn()),
                    None,
                    why.to_string(),
                )
                .with("reason", why),
            );
        }
    }

    fn poll_gate(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(g) = self.gate.as_mut() {
            ready!(g.as_mut().poll(cx));
            self.gate = None;
        }
        Poll::Ready(())
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        let how = match (self.error, self.eof) {
            (Some(io::ErrorKind::ConnectionReset), _) => "reset by the client",
            (Some(_), _) => "socket error",
            (None, true) => "client closed (EOF)",
            (None, false) => "closed by the server",
        };
        if let Some((r, id)) = &self.recorder {
            r.close(*id, self.start.elapsed());
        }
        if let Some(o) = self.observer.as_mut() {
            let t = o.start.elapsed().as_secs_f64();
            o.session.close(t, how, &mut o.out);
            o.tracer.emit_batch(&mut o.out);
        }
    }
}

impl AsyncRead for Tap {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.stepper.is_none() {
            // The ordinary path: read straight into the caller's buffer, then look.
            let before = buf.filled().len();
            let res = Pin::new(&mut self.inner).poll_read(cx, buf);
            match &res {
                Poll::Ready(Ok(())) => {
                    let new = &buf.filled()[before..];
                    if new.is_empty() {
                        self.eof = true;
                    } else {
                        self.see(Dir::C2S, new);
                    }
                }
                Poll::Ready(Err(e)) => self.error = Some(e.kind()),
                Poll::Pending => {}
            }
            return res;
        }
        // Teaching mode: read into `held`, decode, wait at the gate, then hand over.
        loop {
            ready!(self.poll_gate(cx));
            if self.held_pos < self.held.len() {
                let n = buf.remaining().min(self.held.len() - self.held_pos);
                let start = self.held_pos;
                buf.put_slice(&self.held[start..start + n]);
                self.held_pos += n;
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 8192];
            let mut rb = ReadBuf::new(&mut chunk);
            match ready!(Pin::new(&mut self.inner).poll_read(cx, &mut rb)) {
                Ok(()) if rb.filled().is_empty() => {
                    self.eof = true;
                    return Poll::Ready(Ok(()));
                }
                Ok(()) => {
                    let got = rb.filled().to_vec();
                    self.see(Dir::C2S, &got);
                    self.held = got;
                    self.held_pos = 0;
                }
                Err(e) => {
                    self.error = Some(e.kind());
                    return Poll::Ready(Err(e));
                }
            }
        }
    }
}

impl AsyncWrite for Tap {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.stepper.is_some() {
            // Decode what the server is about to send (only the part not seen yet), and let
            // it go once the user has seen the stages it makes.
            if buf.len() > self.previewed {
                let fresh = buf[self.previewed..].to_vec();
                self.previewed = buf.len();
                self.see(Dir::S2C, &fresh);
            }
            ready!(self.poll_gate(cx));
            let res = Pin::new(&mut self.inner).poll_write(cx, buf);
            match &res {
                Poll::Ready(Ok(n)) => self.previewed = self.previewed.saturating_sub(*n),
                Poll::Ready(Err(e)) => self.error = Some(e.kind()),
                Poll::Pending => {}
            }
            return res;
        }
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        match &res {
            Poll::Ready(Ok(n)) => self.see(Dir::S2C, &buf[..*n]),
            Poll::Ready(Err(e)) => self.error = Some(e.kind()),
            Poll::Pending => {}
        }
        res
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
