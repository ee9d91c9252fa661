//! The bridge from reassembled TCP streams to the trace: one `flow::Session` per connection
//! (the same decoder `dispel serve` taps), plus what a capture can only show by inference:
//! broadcasts (one event in, the same packet out to several connections).

use std::collections::HashMap;
use std::net::SocketAddr;

use serde_json::Value;

use crate::flow::{Limits, Session};
use crate::trace::{Dir, Event, Stage, Tracer};

use super::{CloseHow, OpenHow, StreamSink};

/// Packets sent to several connections within this many seconds form one broadcast.
const BROADCAST_WINDOW: f64 = 0.5;

struct Group {
    t: f64,
    /// The packet's data: the same data to another connection joins the group.
    data: String,
    event: String,
    nsp: String,
    conns: Vec<u64>,
    trigger: Option<(u64, String)>,
}

pub struct TraceSink {
    tracer: Tracer,
    limits: Limits,
    sessions: HashMap<u64, Session>,
    out: Vec<Event>,
    /// Events on their way to the writer, sent in batches.
    batch: Vec<Event>,
    group: Option<Group>,
    /// The last event a client sent: (t, conn, event name).
    last_incoming: Option<(f64, u64, String)>,
    /// Engine.IO session id -> the connection where it was first seen.
    sessions_by_sid: HashMap<String, u64>,
    pub problems: u64,
}

impl TraceSink {
    pub fn new(tracer: Tracer, limits: Limits) -> TraceSink {
        TraceSink {
            tracer,
            limits,
            sessions: HashMap::new(),
            out: Vec::new(),
            batch: Vec::new(),
            group: None,
            last_incoming: None,
            sessions_by_sid: HashMap::new(),
            problems: 0,
        }
    }

    fn flush_events(&mut self) {
        let events = std::mem::take(&mut self.out);
        for mut e in events {
            self.link_session(&mut e);
            // An inferred broadcast is written as soon as its group is known to be over (a
            // new event in, another packet out, or the window passed), so it lands before the
            // event that ended it.
            let next_input =
                e.dir == Some(Dir::C2S) && matches!(e.stage, Stage::WsFrame | Stage::HttpRequest);
            if next_input
                || self
                    .group
                    .as_ref()
                    .is_some_and(|g| e.t - g.t > BROADCAST_WINDOW)
            {
                self.finish_group();
            }
            self.observe(&e);
            self.send(e);
        }
    }

    /// One Engine.IO session spans several TCP connections (the polling requests, then the
    /// WebSocket). A capture cannot say so; the shared `sid` can: events on a later
    /// connection get `session_conn` (where the session began) and `inferred: true`.
    fn link_session(&mut self, e: &mut Event) {
        let (Some(conn), Some(sid)) = (e.conn, e.fields.get("sid").and_then(Value::as_str)) else {
            return;
        };
        if self.sessions_by_sid.len() > 100_000 {
            // A capture with more sessions than that: forget the old ones, keep memory flat.
            self.sessions_by_sid.clear();
        }
        let first = match self.sessions_by_sid.get(sid) {
            Some(first) => *first,
            None => {
                self.sessions_by_sid.insert(sid.to_string(), conn);
                conn
            }
        };
        if first != conn {
            e.fields.insert("session_conn", first);
            e.fields.insert("inferred", true);
        }
    }

    /// Watches Socket.IO events go by to infer broadcasts.
    fn observe(&mut self, e: &Event) {
        if e.stage != Stage::SioPacket
            || e.fields.get("type").and_then(Value::as_str) != Some("EVENT")
        {
            return;
        }
        let (Some(conn), Some(event)) = (e.conn, e.fields.get("event").and_then(Value::as_str))
        else {
            return;
        };
        if e.dir == Some(Dir::C2S) {
            self.finish_group();
            self.last_incoming = Some((e.t, conn, event.to_string()));
            return;
        }
        let nsp = e.fields.get("nsp").and_then(Value::as_str).unwrap_or("/");
        // As the JSON text that was sent: no copy, no parsing.
        let data = e.fields.json_text("data").unwrap_or_default();
        if let Some(g) = self.group.as_mut() {
            if g.nsp == nsp
                && g.data == *data
                && e.t - g.t <= BROADCAST_WINDOW
                && !g.conns.contains(&conn)
            {
                g.conns.push(conn);
                return;
            }
        }
        self.finish_group();
        let trigger = self
            .last_incoming
            .as_ref()
            .filter(|(t, _, _)| e.t - t <= 1.0)
            .map(|(_, c, ev)| (*c, ev.clone()));
        self.group = Some(Group {
            t: e.t,
            data: data.into_owned(),
            event: event.to_string(),
            nsp: nsp.to_string(),
            conns: vec![conn],
            trigger,
        });
    }

    fn finish_group(&mut self) {
        let Some(g) = self.group.take() else { return };
        if g.conns.len() < 2 {
            return;
        }
        let summary = match &g.trigger {
            Some((c, ev)) => format!(
                "{:?} to {} connections after {ev:?} from #{c} (inferred)",
                g.event,
                g.conns.len()
            ),
            None => format!("{:?} to {} connections (inferred)", g.event, g.conns.len()),
        };
        let mut e = Event::new(
            Stage::SioBroadcast,
            g.t,
            g.trigger.as_ref().map(|(c, _)| *c),
            None,
            summary,
        )
        .with("event", g.event.as_str())
        .with("nsp", g.nsp.as_str())
        .with("broadcast", true)
        .with("recipients", g.conns.clone())
        .with("count", g.conns.len())
        .with("inferred", true)
        .kind("broadcast");
        if let Some((_, ev)) = &g.trigger {
            e.fields.insert("after_event", ev.clone());
        }
        self.send(e);
    }

    fn send(&mut self, e: Event) {
        const BATCH: usize = 32;
        if self.batch.capacity() == 0 {
            self.batch.reserve_exact(BATCH);
        }
        self.batch.push(e);
        if self.batch.len() >= BATCH {
            self.tracer.emit_batch(&mut self.batch);
        }
    }

    /// End of the capture: close what is open, emit the last inferred broadcast.
    pub fn finish(&mut self) {
        self.finish_group();
        self.tracer.emit_batch(&mut self.batch);
    }
}

/// Whatever is still batched reaches the writer even if `finish` was not called.
impl Drop for TraceSink {
    fn drop(&mut self) {
        self.tracer.emit_batch(&mut self.batch);
    }
}

impl StreamSink for TraceSink {
    fn open(&mut self, conn: u64, client: SocketAddr, server: SocketAddr, t: f64, how: OpenHow) {
        let session = match how {
            OpenHow::Syn => Session::new(conn, self.limits),
            OpenHow::MidStream => Session::new_midstream(conn, self.limits),
        };
        let mut session = session;
        let mut interest = self.tracer.interest(Some(conn));
        // Broadcasts are inferred from the Socket.IO packets, shown or not.
        if interest & Stage::SioBroadcast.bit() != 0 {
            interest |= Stage::SioPacket.bit();
        }
        session.set_interest(interest);
        let mut e = session.accept_event(t, client, server);
        if how == OpenHow::MidStream {
            e.summary
                .to_mut()
                .push_str(" (capture starts mid-connection)");
            e.fields.insert("midstream", true);
        }
        self.out.push(e);
        self.sessions.insert(conn, session);
        self.flush_events();
    }

    fn data(&mut self, conn: u64, dir: Dir, t: f64, _frame: u64, bytes: &[u8]) {
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.data(dir, t, bytes, &mut self.out);
            self.flush_events();
        }
    }

    fn gap(&mut self, conn: u64, dir: Dir, t: f64, len: u64) {
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.gap(dir, t, len, &mut self.out);
            self.flush_events();
        }
    }

    fn close(&mut self, conn: u64, dir: Option<Dir>, t: f64, how: CloseHow) {
        let how_text = match (how, dir) {
            (CloseHow::Fin, Some(Dir::C2S)) => "FIN from the client",
            (CloseHow::Fin, Some(Dir::S2C)) => "FIN from the server",
            (CloseHow::Fin, None) => "FIN",
            (CloseHow::Rst, _) => "RST",
            (CloseHow::EndOfCapture, _) => "end of capture",
            (CloseHow::Idle, _) => "idle (no packets for a long time)",
            (CloseHow::Reused, _) => "addresses reused by a new connection",
        };
        match dir {
            // One side's FIN: the other may go on. The connection ends at the second FIN.
            Some(d) => {
                let both = self
                    .sessions
                    .get_mut(&conn)
                    .is_some_and(|s| s.half_close(d));
                if both {
                    if let Some(mut s) = self.sessions.remove(&conn) {
                        s.close(t, "FIN from both sides", &mut self.out);
                    }
                }
            }
            None => {
                if let Some(mut s) = self.sessions.remove(&conn) {
                    s.close(t, how_text, &mut self.out);
                }
            }
        }
        self.flush_events();
    }

    fn problem(&mut self, t: Option<f64>, frame: Option<u64>, message: String) {
        self.problems += 1;
        let mut e = Event::new(
            Stage::Error,
            t.unwrap_or(0.0),
            None,
            None,
            format!("capture: {message}"),
        )
        .with("rule", message.as_str())
        .with("where", "capture");
        if let Some(f) = frame {
            e.fields.insert("frame", f);
        }
        self.send(e);
    }
}
