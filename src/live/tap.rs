//! The tap: a transparent wrapper around a connection's socket that shows every byte read and
//! written to a [`Session`], the same decoder a capture replay feeds. The server cannot tell it
//! is there; the trace cannot tell the bytes came from a live socket.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::flow::{Limits, Session};
use crate::trace::{Dir, Event, Tracer};

use super::record::Recorder;

struct Observer {
    session: Session,
    tracer: Tracer,
    start: Instant,
    out: Vec<Event>,
}

impl Observer {
    fn see(&mut self, dir: Dir, bytes: &[u8]) {
        let t = self.start.elapsed().as_secs_f64();
        self.session.data(dir, t, bytes, &mut self.out);
        self.tracer.emit_all(self.out.drain(..));
        // One write can carry a batch of 64 broadcasts (256 events); do not keep room for that
        // in every idle connection.
        if self.out.capacity() > 64 {
            self.out.shrink_to(16);
        }
    }
}

/// A TCP stream whose bytes are decoded into the trace as they pass.
pub struct Tap {
    inner: TcpStream,
    observer: Option<Observer>,
    recorder: Option<(Arc<Recorder>, u64)>,
    eof: bool,
    error: Option<io::ErrorKind>,
    start: Instant,
}

impl Tap {
    pub fn new(
        inner: TcpStream,
        conn: u64,
        peers: (SocketAddr, SocketAddr),
        tracer: &Tracer,
        start: Instant,
        limits: Limits,
        recorder: Option<Arc<Recorder>>,
    ) -> Tap {
        let observer = tracer.enabled().then(|| {
            let session = Session::new(conn, limits);
            let t = start.elapsed().as_secs_f64();
            tracer.emit(session.accept_event(t, peers.0, peers.1));
            Observer {
                session,
                tracer: tracer.clone(),
                start,
                out: Vec::new(),
            }
        });
        let recorder = recorder.map(|r| {
            let id = r.open(peers.0, peers.1, start.elapsed());
            (r, id)
        });
        Tap {
            inner,
            observer,
            recorder,
            eof: false,
            error: None,
            start,
        }
    }

    fn see(&mut self, dir: Dir, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if let Some((r, id)) = &self.recorder {
            r.data(*id, dir, bytes, self.start.elapsed());
        }
        if let Some(o) = self.observer.as_mut() {
            o.see(dir, bytes);
        }
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
            o.tracer.emit_all(o.out.drain(..));
        }
    }
}

impl AsyncRead for Tap {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
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
        res
    }
}

impl AsyncWrite for Tap {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
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
