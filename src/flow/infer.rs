//! What a trace can only show by inference, from the events of every connection in time order:
//! broadcasts (one event in, the same packet out to several connections), and one Engine.IO
//! session across connections (the polling requests, then the WebSocket, by sid). Replay runs
//! it over a capture; `dispel watch` over the taps' events, where it also places the events the
//! app's tracer reports on the connection that carries their Engine.IO session.

use std::collections::HashMap;

use serde_json::Value;

use crate::stage::Kind;
use crate::trace::{Dir, Event, Stage};

/// Packets sent to several connections within this many seconds form one broadcast.
const BROADCAST_WINDOW: f64 = 0.5;

/// Sessions remembered at most (a capture with more forgets the old ones: memory stays flat).
const MAX_SESSIONS: usize = 100_000;

struct Group {
    t: f64,
    /// The packet's data: the same data to another connection joins the group.
    data: String,
    event: String,
    nsp: String,
    conns: Vec<u64>,
    /// The Engine.IO sessions of `conns`, where known: the same session on another
    /// connection is the same client seen twice (a reverse proxy's two legs), not another
    /// recipient.
    sids: Vec<String>,
    trigger: Option<(u64, String)>,
    /// The emit came from another process, through the message queue.
    via_queue: bool,
}

#[derive(Default)]
pub struct Inference {
    group: Option<Group>,
    /// The last event a client sent: (t, conn, event name).
    last_incoming: Option<(f64, u64, String)>,
    /// The last emit that arrived through the message queue: (t, event name).
    last_queued: Option<(f64, String)>,
    /// Engine.IO session id -> (the connection where it was first seen, the latest one).
    sessions_by_sid: HashMap<String, (u64, u64)>,
    /// Engine.IO session id -> the latest connection the server's packets can go out on: its
    /// WebSocket, or its latest long-polling GET (never a POST, which only carries the
    /// client's packets in).
    downstream: HashMap<String, u64>,
    /// Inferred broadcasts are left out (`dispel watch` reports the real ones).
    no_broadcasts: bool,
}

impl Inference {
    pub fn new() -> Inference {
        Inference::default()
    }

    /// Sessions only: the broadcasts are known, not inferred.
    pub fn sessions_only() -> Inference {
        Inference {
            no_broadcasts: true,
            ..Inference::default()
        }
    }

    /// One event, in time order: what it lets infer goes to `out` first (a broadcast it shows
    /// is over), then the event itself, linked to its Engine.IO session.
    pub fn push(&mut self, mut e: Event, out: &mut Vec<Event>) {
        self.link_session(&mut e);
        if !self.no_broadcasts {
            // An inferred broadcast is written as soon as its group is known to be over (a new
            // event in, another packet out, or the window passed), so it lands before the event
            // that ended it.
            let next_input =
                e.dir == Some(Dir::C2S) && matches!(e.stage, Stage::WsFrame | Stage::HttpRequest);
            if next_input
                || self
                    .group
                    .as_ref()
                    .is_some_and(|g| e.t - g.t > BROADCAST_WINDOW)
            {
                self.finish_group(out);
            }
            self.observe(&e, out);
        }
        out.push(e);
    }

    /// The end: the last inferred broadcast.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        self.finish_group(out);
    }

    /// The connection that carries an Engine.IO session now (its latest).
    pub fn conn_of(&self, sid: &str) -> Option<u64> {
        self.sessions_by_sid.get(sid).map(|(_, latest)| *latest)
    }

    /// The connection a packet to an Engine.IO session goes out on now: its WebSocket, or the
    /// long-polling GET it holds (not the POST that brought its last event in).
    pub fn conn_to(&self, sid: &str) -> Option<u64> {
        self.downstream
            .get(sid)
            .copied()
            .or_else(|| self.conn_of(sid))
    }

    /// One Engine.IO session spans several TCP connections (the polling requests, then the
    /// WebSocket). A capture cannot say so; the shared `sid` can: events on a later
    /// connection get `session_conn` (where the session began) and `inferred: true`.
    fn link_session(&mut self, e: &mut Event) {
        let (Some(conn), Some(sid)) = (e.conn, e.sid()) else {
            return;
        };
        if self.sessions_by_sid.len() > MAX_SESSIONS {
            self.sessions_by_sid.clear();
            self.downstream.clear();
        }
        let outward = e.dir == Some(Dir::S2C)
            || (e.stage == Stage::HttpRequest && e.text("method") == Some("GET"));
        if outward {
            self.downstream.insert(sid.to_string(), conn);
        }
        let first = match self.sessions_by_sid.get_mut(sid) {
            Some((first, latest)) => {
                *latest = conn;
                *first
            }
            None => {
                self.sessions_by_sid.insert(sid.to_string(), (conn, conn));
                conn
            }
        };
        if first != conn {
            e.fields.insert("session_conn", first);
            e.fields.insert("inferred", true);
        }
    }

    /// Watches Socket.IO events go by to infer broadcasts.
    fn observe(&mut self, e: &Event, out: &mut Vec<Event>) {
        // A page request (an HTTP route of the app, not Engine.IO) may be what emits next:
        // `socketio.emit(...)` in a Flask view.
        if e.stage == Stage::HttpRequest && e.kind == Some(Kind::Page) {
            if let (Some(conn), Some(method), Some(target)) =
                (e.conn, e.text("method"), e.text("target"))
            {
                self.last_incoming = Some((e.t, conn, format!("{method} {target}")));
            }
            return;
        }
        if e.stage == Stage::MqMessage && e.dir == Some(Dir::S2C) && e.kind == Some(Kind::Emit) {
            if let Some(event) = e.event_name() {
                self.last_queued = Some((e.t, event.to_string()));
            }
            return;
        }
        if e.stage != Stage::SioPacket || e.packet_type() != Some("EVENT") {
            return;
        }
        let (Some(conn), Some(event)) = (e.conn, e.event_name()) else {
            return;
        };
        if e.dir == Some(Dir::C2S) {
            self.finish_group(out);
            self.last_incoming = Some((e.t, conn, event.to_string()));
            return;
        }
        let nsp = e.nsp();
        let sid = e.sid();
        // As the JSON text that was sent: no copy, no parsing.
        let data = e.fields.json_text("data").unwrap_or_default();
        if let Some(g) = self.group.as_mut() {
            if g.nsp == nsp
                && g.data == *data
                && e.t - g.t <= BROADCAST_WINDOW
                && !g.conns.contains(&conn)
            {
                if sid.is_some_and(|s| g.sids.iter().any(|x| x == s)) {
                    return;
                }
                g.conns.push(conn);
                g.sids.extend(sid.map(str::to_string));
                return;
            }
        }
        self.finish_group(out);
        // An emit that came through the queue after the last client event is another
        // process's, not an answer to that event.
        let via_queue = self.last_queued.as_ref().is_some_and(|(tq, ev)| {
            ev == event
                && e.t - tq <= 1.0
                && self
                    .last_incoming
                    .as_ref()
                    .is_none_or(|(ti, _, _)| tq >= ti)
        });
        let trigger = self
            .last_incoming
            .as_ref()
            .filter(|(t, _, _)| e.t - t <= 1.0 && !via_queue)
            .map(|(_, c, ev)| (*c, ev.clone()));
        self.group = Some(Group {
            t: e.t,
            data: data.into_owned(),
            event: event.to_string(),
            nsp: nsp.to_string(),
            conns: vec![conn],
            sids: sid.map(str::to_string).into_iter().collect(),
            trigger,
            via_queue,
        });
    }

    fn finish_group(&mut self, out: &mut Vec<Event>) {
        let Some(g) = self.group.take() else { return };
        if g.conns.len() < 2 {
            return;
        }
        // The bytes show one EVENT to several clients, not how the app asked: everyone in the
        // namespace (broadcast=True) or a room's members look the same.
        let summary = match &g.trigger {
            Some((c, ev)) => format!(
                "{:?} to {} connections after {ev:?} from #{c} (inferred: a broadcast or an emit to a room, the bytes cannot say which)",
                g.event,
                g.conns.len()
            ),
            None if g.via_queue => format!(
                "{:?} to {} connections, from another process through the message queue (inferred)",
                g.event,
                g.conns.len()
            ),
            None => format!(
                "{:?} to {} connections (inferred: a broadcast or an emit to a room, the bytes cannot say which)",
                g.event,
                g.conns.len()
            ),
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
        .with("broadcast", Value::Null)
        .with("recipients", g.conns.clone())
        .with("count", g.conns.len())
        .with("inferred", true)
        .kind(Kind::Fanout);
        if let Some((_, ev)) = &g.trigger {
            e.fields.insert("after_event", ev.clone());
        }
        if g.via_queue {
            e.fields.insert("via_queue", true);
        }
        out.push(e);
    }
}
