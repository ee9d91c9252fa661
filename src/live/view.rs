//! The live view: the trace in a browser, for the projector next to the auction page.
//!
//! `GET /trace` serves a page; `GET /trace/events?stage=GLOB&conn=N&quiet=1` streams the events
//! as Server-Sent Events (`text/event-stream`), filtered like the terminal's `--stage`, `--conn`
//! and `-q`. While nobody watches, nothing is built for the view; a connection opened while
//! nobody watched is decoded only as far as the terminal needs, so open the view first. The trace writer thread renders each event once into a broadcast channel; a viewer
//! that cannot keep up skips events (it is told how many) and never slows the server.

use std::io;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::sync::broadcast;

use crate::trace::{Event, Filter, LineWriter, Sink, Stage};
use crate::wire::http::RequestHead;

use super::tap::Tap;

/// One rendered event, with what the viewers' filters need.
pub struct Rendered {
    stage: Stage,
    conn: Option<u64>,
    json: String,
}

/// Where rendered events are published. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Arc<Rendered>>,
    /// Open viewers. While there are none, no event is built or rendered for the view.
    viewers: crate::trace::Watched,
}

impl Hub {
    pub fn new() -> Hub {
        let (tx, _) = broadcast::channel(4096);
        Hub {
            tx,
            viewers: Default::default(),
        }
    }

    /// The count the tracer checks before building events for the view.
    pub fn viewers(&self) -> crate::trace::Watched {
        self.viewers.clone()
    }

    /// The writer-side sink that renders events for the viewers.
    pub fn sink(&self, versions: impl Into<crate::links::Linker>) -> HubSink {
        HubSink {
            tx: self.tx.clone(),
            lines: LineWriter::new(versions),
            buf: Vec::new(),
        }
    }
}

impl Default for Hub {
    fn default() -> Hub {
        Hub::new()
    }
}

pub struct HubSink {
    tx: broadcast::Sender<Arc<Rendered>>,
    lines: LineWriter,
    buf: Vec<u8>,
}

impl Sink for HubSink {
    fn write(&mut self, seq: u64, e: &Event) -> io::Result<()> {
        // Nobody watching: no rendering.
        if self.tx.receiver_count() == 0 {
            return Ok(());
        }
        self.buf.clear();
        self.lines.write(&mut self.buf, seq, e)?;
        let json = String::from_utf8_lossy(self.buf.trim_ascii_end()).into_owned();
        let _ = self.tx.send(Arc::new(Rendered {
            stage: e.stage,
            conn: e.conn,
            json,
        }));
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub const PAGE: &str = include_str!("trace.html");

/// The answer to `GET|POST /trace/step?key=KEY[&do=next|free]`: the teaching mode's controls,
/// for the page that shows the key printed at start. GET says what is paused now (empty when
/// nothing is); POST `do=next` goes one stage on, `do=free` lets the connection run. Anyone
/// else gets 403: in a classroom everyone may watch, only the instructor steps.
pub fn step_answer(
    stepper: Option<&super::step::Stepper>,
    head: &RequestHead,
) -> (u16, &'static str, String) {
    let Some(stepper) = stepper else {
        return (
            404,
            "Not Found",
            "not in teaching mode: start dispel with --step\n".into(),
        );
    };
    if !head.query("key").is_some_and(|k| stepper.admits(&k)) {
        return (
            403,
            "Forbidden",
            "stepping is the instructor's: only the page opened with the key printed at start (/trace?key=...) may step; this one can watch\n".into(),
        );
    }
    match (head.method.as_str(), head.query("do").as_deref()) {
        ("GET", _) => (200, "OK", stepper.paused().unwrap_or_default()),
        ("POST", Some("next")) => {
            stepper.control(super::step::Control::Next);
            (200, "OK", "next\n".into())
        }
        ("POST", Some("free")) => {
            stepper.control(super::step::Control::Free);
            (200, "OK", "running freely\n".into())
        }
        _ => (400, "Bad Request", "do=next or do=free, with POST\n".into()),
    }
}

/// The viewer's filter from its query string (same meaning as the command-line flags).
pub(super) fn viewer_filter(head: &RequestHead) -> Result<Filter, String> {
    let stages: Vec<String> = head
        .query("stage")
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.split(',').map(|p| p.trim().to_string()).collect())
        .unwrap_or_default();
    let conns: Vec<u64> = match head.query("conn").filter(|s| !s.trim().is_empty()) {
        Some(c) => c
            .split(',')
            .map(|n| {
                n.trim()
                    .parse::<u64>()
                    .map_err(|_| format!("bad conn {n:?}"))
            })
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let quiet = head.query("quiet").is_some_and(|q| q == "1" || q == "true");
    Filter::new(&conns, &stages, quiet)
}

/// Streams events to one viewer, after the head `live::http` wrote, until it goes away.
pub async fn stream(mut tap: Tap, hub: &Hub, filter: Filter) {
    let mut rx = hub.tx.subscribe();
    // Counted while this stream lives (however it ends).
    struct Viewer(crate::trace::Watched);
    impl Drop for Viewer {
        fn drop(&mut self) {
            self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
    hub.viewers
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let _viewer = Viewer(hub.viewers.clone());
    let hello = ": dispel live view\n\n";
    if tap.write_all(hello.as_bytes()).await.is_err() || tap.flush().await.is_err() {
        return;
    }
    loop {
        let msg = match rx.recv().await {
            Ok(r) if filter.wants(r.stage, r.conn) => format!("data: {}\n\n", r.json),
            Ok(_) => continue,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                format!("event: skipped\ndata: {n}\n\n")
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if tap.write_all(msg.as_bytes()).await.is_err() || tap.flush().await.is_err() {
            return;
        }
    }
}
