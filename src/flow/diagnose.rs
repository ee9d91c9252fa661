//! Diagnoses: the failures students meet with Flask-SocketIO, recognised in the events that
//! show them, each named in one sentence with its evidence, the fix and the line of
//! python-engineio or python-socketio that decided it.
//!
//! A [`Diagnoser`] sees every event once, after `Inference` (so polling requests carry their
//! session), and writes a `diagnosis` event right after the one that completes a pattern. It
//! only says what the bytes support; where the cause is one of several, the event says so
//! (`guess: true`) and names them. Each failure is diagnosed once per session or connection,
//! and at most [`MAX_DIAGNOSES`] times in all: a broken deployment's capture holds the same
//! failure thousands of times, and its first occurrence is the one to read.
//!
//! What a pattern needs is small and forgotten as it goes: the last request of each open
//! connection, the sessions opened (bounded), the PINGs not yet answered.

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::{json, Value};

use crate::trace::{Dir, Event, Processor, Stage};

/// Diagnoses written at most (then only counted).
pub const MAX_DIAGNOSES: usize = 200;
/// Sessions remembered at most; a capture with more forgets them all and starts again.
const MAX_SESSIONS: usize = 100_000;
/// How much longer than pingInterval + pingTimeout a server may stay quiet before it is
/// called stuck: scheduling jitter and a slow machine, not a blocked server.
const QUIET_SLACK: f64 = 0.5;
/// How long an event that asked for an ack waits for it before the silence is named.
const ACK_WAIT: f64 = 5.0;
/// How long a reverse proxy may take to pass a request on, for the two legs to be paired.
const PROXY_DELAY: f64 = 1.0;
/// Engine.IO requests remembered for pairing a proxy's two legs.
const RECENT_REQUESTS: usize = 256;

/// The request a connection is waiting on the answer to.
struct Request {
    ev: Evidence,
    origin: Option<String>,
    host: Option<String>,
    eio: Option<String>,
    sid: Option<String>,
    upgrade_header: bool,
    /// A POST's Content-Length.
    post_len: Option<u64>,
    /// `HTTP/1.0` or `HTTP/1.1`.
    version: String,
    /// The Engine.IO transport asked for.
    transport: Option<String>,
    /// The `Connection` header.
    connection: Option<String>,
    /// A header a proxy adds (`X-Forwarded-For`, `X-Real-IP`, `Forwarded`, `Via`).
    proxy_header: Option<String>,
}

/// An Engine.IO request, kept briefly: the same request arriving at another server address
/// soon after is a reverse proxy passing it on.
struct Recent {
    t: f64,
    conn: u64,
    server: String,
    /// Method and target.
    line: String,
    ev: Evidence,
    host: Option<String>,
    upgrade_header: bool,
}

/// A server's EVENT that followed a client's EVENT on one server process, while clients of
/// another process were connected to the same namespace: if none of them gets it within
/// [`LONE_WINDOW`], the processes share no message queue (a guess).
struct LoneEmit {
    t: f64,
    server: String,
    event: String,
    conn: Option<u64>,
    evidence: Vec<Evidence>,
    others: Vec<u64>,
    other_server: String,
}

/// How long an emit may take to reach another process's clients through a message queue.
const LONE_WINDOW: f64 = 0.5;

/// The client's side of a request a proxy passed on.
#[derive(Clone)]
struct ClientLeg {
    conn: u64,
    server: String,
    ev: Evidence,
    host: Option<String>,
    upgrade_header: bool,
}

#[derive(Clone)]
struct Evidence {
    conn: Option<u64>,
    stage: Stage,
    t: f64,
    summary: String,
}

impl Evidence {
    fn of(e: &Event) -> Evidence {
        Evidence {
            conn: e.conn,
            stage: e.stage,
            t: e.t,
            summary: e.summary.to_string(),
        }
    }

    fn json(&self) -> Value {
        json!({"conn": self.conn, "stage": self.stage.as_str(), "t": self.t, "summary": self.summary})
    }
}

struct Opened {
    ev: Evidence,
    /// pingInterval and pingTimeout, in seconds.
    ping_interval: f64,
    ping_timeout: f64,
    /// maxPayload, in bytes.
    max_payload: Option<u64>,
    /// When the server last showed it was alive: its latest PING, or the OPEN.
    last_ping: f64,
    last_ping_ev: Evidence,
    /// A close was seen: nothing after it is the server's silence.
    ended: bool,
}

/// One failure: what, the evidence, the fix, the deciding line (a `diagnoses.N` step).
struct Finding<'a> {
    cause: &'static str,
    conn: Option<u64>,
    t: f64,
    what: String,
    evidence: Vec<Evidence>,
    fix: &'a str,
    step: Option<&'static str>,
    guess: bool,
}

pub struct Diagnoser {
    linker: crate::links::Linker,
    requests: HashMap<u64, Request>,
    opened: HashMap<String, Opened>,
    /// Sessions whose server PING has had no PONG yet: sid -> the PING.
    pings: HashMap<String, Evidence>,
    /// The Engine.IO session each open connection carries.
    session_of: HashMap<u64, String>,
    /// A message over maxPayload a client sent on this connection, before the server closed.
    oversized: HashMap<u64, Evidence>,
    /// Connections that carry WebSocket messages.
    ws_conns: HashSet<u64>,
    /// Connections on which either side said goodbye (a WebSocket Close, an Engine.IO CLOSE,
    /// a Socket.IO DISCONNECT) or a failure was already named.
    goodbye: HashSet<u64>,
    /// The last event of each WebSocket connection, for a connection that just ends.
    last_on: HashMap<u64, Evidence>,
    /// Connections a diagnosis was written for: their end is explained already.
    named: HashSet<u64>,
    /// The last EVENT each connection's client sent: its name and the packet.
    last_event: HashMap<u64, (String, Evidence)>,
    /// The app's last disconnect() calls `dispel watch` saw: (Engine.IO sid, its line, when).
    disconnect_calls: std::collections::VecDeque<(Option<String>, String, f64)>,
    /// (Engine.IO sid, namespace) whose CONNECT the server accepted.
    connected: HashSet<(String, String)>,
    /// Events that asked for an ack not sent yet: (sid, namespace, id) -> (event name, packet).
    awaiting: HashMap<(String, String, u64), (String, Evidence)>,
    /// When `awaiting` was last looked through.
    last_scan: f64,
    /// (cause, session or connection) already diagnosed.
    said: HashSet<(&'static str, String)>,
    made: usize,
    by_cause: Vec<(&'static str, usize)>,
    /// The time of the latest event, for the summary.
    last_t: f64,
    /// The server address of each open connection.
    server_of: HashMap<u64, String>,
    recent: VecDeque<Recent>,
    /// A proxy's connection to the app -> the client's request it passed on.
    upstream: HashMap<u64, ClientLeg>,
    /// Connections from clients to a proxy: what the app decided shows on the proxy's
    /// connection to it, so these get no diagnosis of their own.
    client_legs: HashSet<u64>,
    /// Connections with a Socket.IO namespace accepted: their server address, and the
    /// namespaces with the CONNECT that accepted each.
    sio_conns: HashMap<u64, (String, Vec<(String, Evidence)>)>,
    /// A message queue's connection (Redis) was seen: the processes may share one.
    queue_seen: bool,
    /// The latest EVENT a client sent, and the server address it went to.
    last_client_event: Option<(f64, String, Evidence)>,
    lone: Option<LoneEmit>,
}

impl Diagnoser {
    /// `linker`: where the deciding lines point (a built-in version set, or the installed one).
    pub fn new(linker: impl Into<crate::links::Linker>) -> Diagnoser {
        Diagnoser {
            linker: linker.into(),
            requests: HashMap::new(),
            opened: HashMap::new(),
            pings: HashMap::new(),
            session_of: HashMap::new(),
            oversized: HashMap::new(),
            ws_conns: HashSet::new(),
            goodbye: HashSet::new(),
            last_on: HashMap::new(),
            named: HashSet::new(),
            last_event: HashMap::new(),
            disconnect_calls: std::collections::VecDeque::new(),
            connected: HashSet::new(),
            awaiting: HashMap::new(),
            last_scan: 0.0,
            said: HashSet::new(),
            made: 0,
            by_cause: Vec::new(),
            last_t: 0.0,
            server_of: HashMap::new(),
            recent: VecDeque::new(),
            upstream: HashMap::new(),
            client_legs: HashSet::new(),
            sio_conns: HashMap::new(),
            queue_seen: false,
            last_client_event: None,
            lone: None,
        }
    }

    /// One event, in trace order: it goes to `out`, followed by any diagnosis it completes.
    pub fn push(&mut self, e: Event, out: &mut Vec<Event>) {
        self.last_t = self.last_t.max(e.t);
        if self.lone.as_ref().is_some_and(|l| e.t - l.t > LONE_WINDOW) {
            if let Some(f) = self.lone_emit_reached_nobody() {
                self.write(f, out);
            }
        }
        let found = self.look(&e);
        out.push(e);
        if let Some(f) = found {
            self.write(f, out);
        }
        if !self.awaiting.is_empty() && self.last_t - self.last_scan >= 0.5 {
            self.last_scan = self.last_t;
            for f in self.unanswered(self.last_t) {
                self.write(f, out);
            }
        }
    }

    /// Events that asked for an ack [`ACK_WAIT`] ago or more and got none.
    fn unanswered(&mut self, now: f64) -> Vec<Finding<'static>> {
        let overdue: Vec<(String, String, u64)> = self
            .awaiting
            .iter()
            .filter(|(_, (_, ev))| now - ev.t >= ACK_WAIT)
            .map(|(k, _)| k.clone())
            .collect();
        let mut found = Vec::new();
        for key in overdue {
            let Some((event, ev)) = self.awaiting.remove(&key) else {
                continue;
            };
            let (sid, nsp, id) = key;
            let waited = now - ev.t;
            let (conn, t) = (ev.conn, now);
            if let Some(f) = self.once("no-ack", format!("{sid} {nsp} {id}"), Finding {
                cause: "no-ack",
                conn,
                t,
                what: format!("The client sent {event:?} on {nsp} asking for an acknowledgement (id {id}), and none came back in {waited:.1} s. python-socketio acknowledges every handled event that asks, with the handler's return value (an empty list for None), as soon as the handler returns: so the handler raised (nothing is sent for an exception), is still running, or no handler took the event (an unknown name is dropped without an ack)."),
                evidence: vec![ev],
                fix: "Look for the traceback in the server's console and catch the error in the handler, so that it answers the client; check the event's name and namespace against the app's @socketio.on(...) registrations.",
                step: Some("diagnoses.13"),
                guess: true,
            }) {
                found.push(f);
            }
        }
        found
    }

    /// The end of the trace: a summary of what was diagnosed, if anything was.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        if let Some(f) = self.lone_emit_reached_nobody() {
            self.write(f, out);
        }
        for f in self.unanswered(self.last_t) {
            self.write(f, out);
        }
        if self.made == 0 {
            return;
        }
        let list: Vec<String> = self
            .by_cause
            .iter()
            .map(|(c, n)| format!("{c} x{n}"))
            .collect();
        let t = self.last_t;
        out.push(
            Event::new(
                Stage::Diagnosis,
                t,
                None,
                None,
                format!(
                    "{} diagnos{} in this trace: {}",
                    self.made,
                    if self.made == 1 { "is" } else { "es" },
                    list.join(", ")
                ),
            )
            .with("cause", "summary")
            .with(
                "counts",
                Value::Object(
                    self.by_cause
                        .iter()
                        .map(|(c, n)| (c.to_string(), Value::from(*n)))
                        .collect(),
                ),
            ),
        );
    }

    fn look(&mut self, e: &Event) -> Option<Finding<'static>> {
        if let Some(c) = e.conn {
            let bye = match e.stage {
                Stage::WsClose => true,
                Stage::EioPacket => e.packet_type() == Some("CLOSE"),
                Stage::SioPacket => e.packet_type() == Some("DISCONNECT"),
                _ => false,
            };
            if bye && self.goodbye.len() < MAX_SESSIONS {
                self.goodbye.insert(c);
            }
            if self.ws_conns.contains(&c) && e.stage != Stage::TcpClose {
                self.last_on.insert(c, Evidence::of(e));
            }
        }
        match (e.stage, e.dir) {
            (Stage::TcpAccept, _) => {
                if e.flag("redis") == Some(true) {
                    self.queue_seen = true;
                }
                if let (Some(c), Some(server)) = (e.conn, e.text("server")) {
                    self.server_of.insert(c, server.to_string());
                }
                None
            }
            (Stage::MqPublish | Stage::MqMessage, _) => {
                self.queue_seen = true;
                None
            }
            (Stage::HttpRequest, _) => self.request(e),
            (Stage::HttpResponse, _) => self.response(e),
            (Stage::EioPacket, Some(dir)) => self.eio(e, dir),
            (Stage::SioPacket, Some(Dir::S2C)) => self.sio_sent(e),
            (Stage::SioPacket, Some(Dir::C2S)) => {
                self.asks_for_ack(e);
                let early = self.event_before_connect(e);
                if let (Some(c), Some("EVENT" | "BINARY_EVENT")) = (e.conn, e.packet_type()) {
                    if let Some(server) = self.server_of.get(&c) {
                        self.last_client_event = Some((e.t, server.clone(), Evidence::of(e)));
                    }
                    if self.last_event.len() < MAX_SESSIONS || self.last_event.contains_key(&c) {
                        let name = e.event_name().unwrap_or("?");
                        self.last_event
                            .insert(c, (name.to_string(), Evidence::of(e)));
                    }
                }
                early
            }
            (Stage::WsMessage, Some(dir)) => {
                self.message(e, dir);
                None
            }
            (Stage::WsClose, Some(Dir::S2C)) => self
                .oversized_closed(e)
                .or_else(|| self.closed_by_server(e))
                .or_else(|| self.server_went_quiet(e)),
            (Stage::WsClose, Some(Dir::C2S)) => self.server_went_quiet(e),
            (Stage::TcpClose, _) => {
                let found = self
                    .oversized_closed(e)
                    .or_else(|| self.server_went_quiet(e))
                    .or_else(|| self.transport_closed(e));
                if let Some(c) = e.conn {
                    self.requests.remove(&c);
                    self.server_of.remove(&c);
                    self.upstream.remove(&c);
                    self.client_legs.remove(&c);
                    self.session_of.remove(&c);
                    self.oversized.remove(&c);
                    self.last_event.remove(&c);
                    self.ws_conns.remove(&c);
                    self.sio_conns.remove(&c);
                    self.goodbye.remove(&c);
                    self.last_on.remove(&c);
                    self.named.remove(&c);
                }
                found
            }
            (Stage::TcpData, Some(Dir::S2C)) => self.page_on_websocket(e),
            (Stage::Error, _) => self.raised(e),
            (Stage::SioEmit, _) => {
                if e.text("call") == Some("disconnect") {
                    if self.disconnect_calls.len() >= 64 {
                        self.disconnect_calls.pop_front();
                    }
                    let line = e.text("line").unwrap_or("?").to_string();
                    let sid = e.text("eio_sid").map(str::to_string);
                    self.disconnect_calls.push_back((sid, line, e.t));
                }
                self.emit_to_nobody(e)
            }
            _ => None,
        }
    }

    fn request(&mut self, e: &Event) -> Option<Finding<'static>> {
        let conn = e.conn?;
        let header = |name: &str| -> Option<String> {
            crate::trace::header(e.fields.get("headers"), name).map(str::to_string)
        };
        let field = |k: &str| e.fields.get(k).and_then(Value::as_str).map(str::to_string);
        let upgrade_header = header("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
        let proxy_header = ["x-forwarded-for", "x-real-ip", "forwarded", "via"]
            .into_iter()
            .find_map(|h| header(h).map(|v| format!("{h}: {v}")));
        let proxied = self.pair_legs(e, conn, header("host"), upgrade_header);
        self.requests.insert(
            conn,
            Request {
                ev: Evidence::of(e),
                origin: header("origin"),
                host: header("host"),
                eio: field("eio"),
                sid: field("sid"),
                upgrade_header,
                post_len: (field("method").as_deref() == Some("POST"))
                    .then(|| header("content-length"))
                    .flatten()
                    .and_then(|n| n.trim().parse().ok()),
                version: field("version").unwrap_or_default(),
                transport: field("transport"),
                connection: header("connection"),
                proxy_header,
            },
        );
        proxied.or_else(|| self.post_too_long(e, conn))
    }

    /// Pairs a request with the same one seen just before on a connection to another server
    /// address: a reverse proxy's two legs (client to proxy, proxy to app). The first
    /// diagnosis it allows: the proxy dropped the WebSocket upgrade.
    fn pair_legs(
        &mut self,
        e: &Event,
        conn: u64,
        host: Option<String>,
        upgrade_header: bool,
    ) -> Option<Finding<'static>> {
        let target = e.text("target")?;
        if !target.contains("EIO=") {
            return None;
        }
        let method = e.text("method").unwrap_or("");
        let line = format!("{method} {target}");
        let server = self.server_of.get(&conn).cloned().unwrap_or_default();
        while self.recent.front().is_some_and(|r| e.t - r.t > PROXY_DELAY) {
            self.recent.pop_front();
        }
        let found = self.recent.iter().rposition(|r| {
            r.line == line
                && r.conn != conn
                && r.server != server
                && !self.upstream.contains_key(&r.conn)
        });
        let Some(i) = found else {
            if self.recent.len() >= RECENT_REQUESTS {
                self.recent.pop_front();
            }
            self.recent.push_back(Recent {
                t: e.t,
                conn,
                server,
                line,
                ev: Evidence::of(e),
                host,
                upgrade_header,
            });
            return None;
        };
        let client = self.recent.remove(i)?;
        let leg = ClientLeg {
            conn: client.conn,
            server: client.server,
            ev: client.ev,
            host: client.host,
            upgrade_header: client.upgrade_header,
        };
        self.client_legs.insert(leg.conn);
        self.upstream.insert(conn, leg.clone());
        let websocket = e.text("transport") == Some("websocket");
        if !(leg.upgrade_header && !upgrade_header && websocket) {
            return None;
        }
        let version = e.text("version").unwrap_or("HTTP/1.1");
        let header =
            |name: &str| crate::trace::header(e.fields.get("headers"), name).map(str::to_string);
        let connection = header("connection");
        // python-engineio checks the Origin before the transport: when the page's origin is
        // not the Host the app was given, the upgrade check is never reached.
        let origin_first = match (header("origin"), header("host")) {
            (Some(origin), Some(host)) => {
                origin.split_once("://").map(|(_, h)| h) != Some(host.as_str())
            }
            _ => false,
        };
        let how = match connection {
            Some(c) => format!("{version} with Connection: {c}"),
            None => version.to_string(),
        };
        let app = self.server_of.get(&conn).cloned().unwrap_or_default();
        let evidence = vec![leg.ev.clone(), Evidence::of(e)];
        self.once("proxy-dropped-upgrade", format!("{} proxy", leg.conn), Finding {
            cause: "proxy-dropped-upgrade",
            conn: Some(conn),
            t: e.t,
            what: format!("A reverse proxy dropped the WebSocket upgrade: the client asked {} for Upgrade: websocket (connection #{}), and the proxy passed the same request on to the app at {app} (connection #{conn}) as {how} and no Upgrade header, so the app cannot switch protocols and the client stays on long-polling.{}", leg.server, leg.conn, if origin_first { " Here the app refuses the page's Origin first (see the next diagnosis), so its upgrade check is not even reached; with the Origin fixed, this is what would fail." } else { "" }),
            evidence,
            fix: "Have the proxy pass the upgrade on: in nginx, proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection \"upgrade\"; in the location of /socket.io/ (Apache: mod_proxy_wstunnel; a load balancer: its WebSocket support).",
            // The deciding line only when it is the one that ran.
            step: match (origin_first, target.contains("sid=")) {
                (true, _) => None,
                (false, true) => Some("diagnoses.14"),
                (false, false) => Some("diagnoses.2"),
            },
            guess: false,
        })
    }

    /// A long-polling POST longer than the session's maxPayload. python-engineio refuses it
    /// (`ContentTooLongError`) and ends the session, but never answers the POST (its close
    /// waits for a queue that does not empty), so the decision is read off the request itself.
    fn post_too_long(&mut self, e: &Event, conn: u64) -> Option<Finding<'static>> {
        let req = self.requests.get(&conn)?;
        let len = req.post_len?;
        let sid = req.sid.clone()?;
        let o = self.opened.get(&sid)?;
        let max = o.max_payload.filter(|max| len > *max)?;
        let evidence = vec![o.ev.clone(), req.ev.clone()];
        self.once("payload-too-large", sid, Finding {
            cause: "payload-too-large",
            conn: Some(conn),
            t: e.t,
            what: format!("The client POSTed {len} bytes in one long-polling request, over the server's maxPayload of {max} bytes (in its OPEN packet), so python-engineio refuses it and ends the session: a waiting GET gets CLOSE, and the POST itself is never answered (its handler waits on a queue nobody empties). The client reconnects, and what it sent is lost."),
            evidence,
            fix: "Send less at once (split big data, upload files over plain HTTP), or raise the limit: SocketIO(app, max_http_buffer_size=...).",
            step: Some("diagnoses.9"),
            guess: false,
        })
    }

    fn response(&mut self, e: &Event) -> Option<Finding<'static>> {
        let conn = e.conn?;
        let status = e.number("status")?;
        // A proxy relaying the app's answer: the app's connection carries the decision.
        if status != 400 || self.client_legs.contains(&conn) {
            return None;
        }
        let req = self.requests.get(&conn)?;
        let body = e
            .text("body")
            .unwrap_or("")
            .trim_matches(|c: char| c == '"' || c.is_whitespace())
            .to_string();
        let evidence = vec![req.ev.clone(), Evidence::of(e)];
        let key = |k: &str| format!("{conn} {k}");
        let leg = self.upstream.get(&conn);
        if body.starts_with("Not an accepted origin") {
            let origin = req.origin.clone().unwrap_or_else(|| "(none)".into());
            let host = req.host.clone().unwrap_or_else(|| "?".into());
            if let Some(leg) = leg.filter(|l| l.host.as_ref() != req.host.as_ref()) {
                let asked = leg.host.clone().unwrap_or_else(|| "?".into());
                let mut evidence = vec![leg.ev.clone()];
                evidence.extend(evidence_of(req, e));
                return self.once("proxy-changed-host", key("origin"), Finding {
                    cause: "proxy-changed-host",
                    conn: Some(conn),
                    t: e.t,
                    what: format!("A reverse proxy changed the Host header, so the app refused the page's origin: the client asked for Host {asked} (connection #{}) and the proxy passed Host {host} on, so the page's Origin {origin} no longer matches the server's own origin (http://{host}) and the app answered 400 \"Not an accepted origin.\"", leg.conn),
                    evidence,
                    fix: "Have the proxy pass the client's Host on (nginx: proxy_set_header Host $http_host;), or list the page's origin in SocketIO(app, cors_allowed_origins=[...]).",
                    step: Some("diagnoses.0"),
                    guess: false,
                });
            }
            let through = req.proxy_header.clone().or_else(|| {
                (req.version == "HTTP/1.0")
                    .then(|| "an HTTP/1.0 request, as nginx sends by default".to_string())
            });
            let what = match through {
                Some(sign) => format!("The server refused the page's origin: the request came from Origin {origin}, and Flask-SocketIO accepts only the server's own origin (http://{host}) unless told otherwise, so it answered 400 \"Not an accepted origin.\" The request came through a proxy ({sign}): if the page's origin is the proxy's own, the proxy changed the Host header on the way (nginx sends its upstream's unless told proxy_set_header Host $http_host)."),
                None => format!("The server refused the page's origin: the request came from Origin {origin}, and Flask-SocketIO accepts only the server's own origin (http://{host}) unless told otherwise, so it answered 400 \"Not an accepted origin.\""),
            };
            return self.once("origin-refused", key("origin"), Finding {
                cause: "origin-refused",
                conn: Some(conn),
                t: e.t,
                what,
                evidence,
                fix: "List the page's origin in SocketIO(app, cors_allowed_origins=[\"https://your.site\"]) (\"*\" accepts any, for development only), or serve the page from the same host and port as the Socket.IO server.",
                step: Some("diagnoses.0"),
                guess: false,
            });
        }
        if body.starts_with("The client is using an unsupported version") {
            let eio = req.eio.clone().unwrap_or_else(|| "none".into());
            return self.once("unsupported-version", key("version"), Finding {
                cause: "unsupported-version",
                conn: Some(conn),
                t: e.t,
                what: format!("The client speaks Engine.IO protocol {eio} (EIO={eio} in its request) and the server only v4, so it answered 400 \"unsupported version\": EIO=3 is socket.io-client 2.x or python-socketio 4.x, from before Socket.IO v3."),
                evidence,
                fix: "Use a client of the same generation as the server: socket.io-client 3.x or 4.x in the page (python-socketio 5.x for Python clients) with Flask-SocketIO 5.x; or, for a client that cannot change, Flask-SocketIO 4.x.",
                step: Some("diagnoses.1"),
                guess: false,
            });
        }
        let websocket = req.transport.as_deref() == Some("websocket");
        let refused_upgrade = body.starts_with("Invalid websocket upgrade")
            || (body.starts_with("Invalid transport") && websocket && !req.upgrade_header);
        if refused_upgrade {
            if leg.is_some() {
                // Named with both legs when the proxy's request was seen.
                return None;
            }
            let (answer, step) = if body.starts_with("Invalid transport") {
                ("Invalid transport", "diagnoses.14")
            } else {
                ("Invalid websocket upgrade", "diagnoses.2")
            };
            let how = match &req.connection {
                Some(c) => format!("{} with Connection: {c}", req.version),
                None => req.version.clone(),
            };
            return self.once("upgrade-headers-missing", key("upgrade"), Finding {
                cause: "upgrade-headers-missing",
                conn: Some(conn),
                t: e.t,
                what: format!("A WebSocket request arrived as {how} without Upgrade: websocket, so python-engineio answered 400 \"{answer}\" and the client stays on long-polling. A reverse proxy in front of the app usually drops that header (nginx does unless told to pass it)."),
                evidence,
                fix: "Have the proxy pass the upgrade on: in nginx, proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection \"upgrade\"; for the /socket.io/ location.",
                step: Some(step),
                guess: !req.upgrade_header,
            });
        }
        if body.starts_with("Invalid session") {
            let sid = req.sid.clone().unwrap_or_default();
            // A session the server closed for its unanswered PING (long-polling learns it
            // only at its next request).
            if let Some(f) = self.ping_timed_out(e, Some(&sid)) {
                return Some(f);
            }
            let req = self.requests.get(&conn)?;
            let post = req.ev.summary.starts_with("POST");
            let seen = self.opened.contains_key(&sid);
            let (what, guess) = if seen {
                (format!("The server no longer knows session {sid}, which this trace saw open: it has ended (closed, or timed out), and the client used it after that, so the request got 400 \"Invalid session\"."), false)
            } else {
                (format!("The request names session {sid}, which this server process never opened in this trace, so it got 400 \"Invalid session\". With several server processes (gunicorn -w 2, several containers) the session was most likely opened by another one: long-polling sends each request separately, and without sticky sessions they land on different processes. It can also be a server restarted since the session opened."), true)
            };
            let step = if post { "diagnoses.4" } else { "diagnoses.3" };
            return self.once("invalid-session", format!("{sid} session"), Finding {
                cause: "invalid-session",
                conn: Some(conn),
                t: e.t,
                what,
                evidence,
                fix: "Run one server process, or make the load balancer send every request of a client to the same process (sticky sessions: nginx ip_hash, a cookie), and give the processes a message queue (SocketIO(app, message_queue=\"redis://\")) so emits reach clients on the others. Or let the client skip long-polling: io({transports: [\"websocket\"]}).",
                step: Some(step),
                guess,
            });
        }
        None
    }

    fn eio(&mut self, e: &Event, dir: Dir) -> Option<Finding<'static>> {
        let ty = e.packet_type()?;
        let sid = e.sid().map(str::to_string);
        if let (Some(c), Some(s)) = (e.conn, &sid) {
            self.session_of.entry(c).or_insert_with(|| s.clone());
        }
        match (ty, dir) {
            ("OPEN", Dir::S2C) => {
                let sid = sid?;
                let seconds = |k: &str, default: f64| {
                    e.fields
                        .get(k)
                        .and_then(Value::as_f64)
                        .map_or(default, |ms| ms / 1000.0)
                };
                if self.opened.len() >= MAX_SESSIONS {
                    self.opened.clear();
                }
                self.opened.insert(
                    sid.clone(),
                    Opened {
                        ev: Evidence::of(e),
                        ping_interval: seconds("pingInterval", 25.0),
                        ping_timeout: seconds("pingTimeout", 20.0),
                        max_payload: e.number("maxPayload"),
                        last_ping: e.t,
                        last_ping_ev: Evidence::of(e),
                        ended: false,
                    },
                );
                let transport = e.text("transport");
                let upgrades = e.fields.get("upgrades").and_then(Value::as_array);
                if transport == Some("polling") && upgrades.is_some_and(Vec::is_empty) {
                    return self.once("no-websocket", sid.clone(), Finding {
                        cause: "no-websocket",
                        conn: e.conn,
                        t: e.t,
                        what: format!("The server offered no upgrade to session {sid} (\"upgrades\":[] in its OPEN): the client will stay on HTTP long-polling, a request per message. python-engineio offers WebSocket only when a WebSocket server for its async mode is installed (simple-websocket for threading), and upgrades are allowed."),
                        evidence: vec![Evidence::of(e)],
                        fix: "pip install simple-websocket (threading mode; eventlet and gevent bring their own), and leave allow_upgrades at its default.",
                        step: Some("diagnoses.5"),
                        guess: false,
                    });
                }
                None
            }
            ("PING", Dir::S2C) => {
                let quiet = self.server_went_quiet(e);
                if let Some(sid) = sid {
                    if let Some(o) = self.opened.get_mut(&sid) {
                        o.last_ping = e.t;
                        o.last_ping_ev = Evidence::of(e);
                    }
                    self.pings.entry(sid).or_insert_with(|| Evidence::of(e));
                }
                quiet
            }
            ("PONG", Dir::C2S) => {
                if let Some(sid) = sid {
                    self.pings.remove(&sid);
                }
                None
            }
            ("CLOSE", Dir::S2C) => self.ping_timed_out(e, sid.as_deref()),
            _ => None,
        }
    }

    fn closed_by_server(&mut self, e: &Event) -> Option<Finding<'static>> {
        let sid = self
            .pings
            .iter()
            .find(|(_, p)| p.conn == e.conn)
            .map(|(s, _)| s.clone());
        self.ping_timed_out(e, sid.as_deref())
    }

    /// The server closed a session whose PING went unanswered for longer than pingTimeout.
    fn ping_timed_out(&mut self, e: &Event, sid: Option<&str>) -> Option<Finding<'static>> {
        let sid = sid?;
        let ping = self.pings.get(sid)?.clone();
        let timeout = self.opened.get(sid).map_or(20.0, |o| o.ping_timeout);
        let waited = e.t - ping.t;
        if waited < timeout * 0.95 {
            return None;
        }
        self.pings.remove(sid);
        if let Some(o) = self.opened.get_mut(sid) {
            o.ended = true;
        }
        let mut evidence = Vec::new();
        if let Some(o) = self.opened.get(sid) {
            evidence.push(o.ev.clone());
        }
        evidence.push(ping);
        evidence.push(Evidence::of(e));
        self.once("ping-timeout", sid.to_string(), Finding {
            cause: "ping-timeout",
            conn: e.conn,
            t: e.t,
            what: format!("The client did not answer the server's PING for {waited:.1} s (pingTimeout {timeout:.0} s), so the server closed session {sid}: the client was gone, asleep (a background tab, a suspended laptop), or too busy to read, or the network between them dropped the connection silently."),
            evidence,
            fix: "Nothing to fix when the client really left. If live clients are dropped, look for what blocks them (a long synchronous loop in the page, a blocked event loop in a Python client), or raise ping_timeout in SocketIO(app, ping_timeout=...).",
            step: Some("diagnoses.6"),
            guess: true,
        })
    }

    /// A WebSocket message. One from the client over the session's maxPayload: the server
    /// will end the connection.
    fn message(&mut self, e: &Event, dir: Dir) {
        let Some(conn) = e.conn else { return };
        if self.ws_conns.len() < MAX_SESSIONS {
            self.ws_conns.insert(conn);
        }
        if dir != Dir::C2S {
            return;
        }
        let Some(len) = e.number("len") else {
            return;
        };
        let max = self
            .session_of
            .get(&conn)
            .and_then(|sid| self.opened.get(sid))
            .and_then(|o| o.max_payload);
        if max.is_some_and(|m| len > m) {
            self.oversized
                .entry(conn)
                .or_insert_with(|| Evidence::of(e));
        }
    }

    /// The connection of an oversized message ended.
    fn oversized_closed(&mut self, e: &Event) -> Option<Finding<'static>> {
        let conn = e.conn?;
        let message = self.oversized.remove(&conn)?;
        let sid = self.session_of.get(&conn).cloned().unwrap_or_default();
        let max = self
            .opened
            .get(&sid)
            .and_then(|o| o.max_payload)
            .unwrap_or(0);
        let mut evidence = Vec::new();
        if let Some(o) = self.opened.get(&sid) {
            evidence.push(o.ev.clone());
        }
        evidence.push(message);
        evidence.push(Evidence::of(e));
        self.once("payload-too-large", sid, Finding {
            cause: "payload-too-large",
            conn: Some(conn),
            t: e.t,
            what: format!("The client sent a WebSocket message over the server's maxPayload of {max} bytes (in its OPEN packet); python-engineio stops reading a session that does (\"packet is too large\") and the connection ends: the client reconnects, and its message is lost."),
            evidence,
            fix: "Send less at once (split big data, upload files over plain HTTP), or raise the limit: SocketIO(app, max_http_buffer_size=...).",
            step: Some("diagnoses.10"),
            guess: false,
        })
    }

    /// A WebSocket session whose server sent no PING for longer than pingInterval +
    /// pingTimeout though the client had answered the last one: python-engineio's PING task
    /// did not run. Looked for at the session's next sign of life (a PING, a close) or its end.
    fn server_went_quiet(&mut self, e: &Event) -> Option<Finding<'static>> {
        let conn = e.conn?;
        if !self.ws_conns.contains(&conn) {
            // On long-polling a PING waits in the queue for the client's next GET: its time on
            // the wire is the client's, not the server's.
            return None;
        }
        let sid = self.session_of.get(&conn)?.clone();
        if self.pings.contains_key(&sid) {
            // The client owed a PONG: that is a ping timeout, not a quiet server.
            return None;
        }
        let o = self.opened.get_mut(&sid)?;
        if o.ended {
            return None;
        }
        if e.stage != Stage::EioPacket {
            o.ended = true;
        }
        let quiet = e.t - o.last_ping;
        let limit = o.ping_interval + o.ping_timeout;
        if quiet < limit + QUIET_SLACK {
            return None;
        }
        let (interval, timeout, since) = (o.ping_interval, o.ping_timeout, o.last_ping);
        let mut evidence = vec![o.last_ping_ev.clone()];
        // The event the client sent just before the silence: its handler is the likely one.
        let suspect = match self.last_event.get(&conn) {
            Some((name, ev)) if ev.t >= since && ev.t <= e.t => {
                evidence.push(ev.clone());
                format!(" The last event the client sent before the silence was \"{name}\" (at {:.3} s): its handler is the first to look at.", ev.t)
            }
            _ => String::new(),
        };
        evidence.push(Evidence::of(e));
        self.once("server-stopped-pinging", sid.clone(), Finding {
            cause: "server-stopped-pinging",
            conn: Some(conn),
            t: e.t,
            what: format!("The server sent session {sid} no PING for {quiet:.1} s, though the client had answered the last one; it should every {interval:.0} s, and clients give up after {interval:.0} + {timeout:.0} s. A server that stops sending PINGs is stuck: under eventlet or gevent a handler that blocks without yielding (time.sleep without monkey-patching, a long computation, a blocking library call) stops every greenlet, the PING task too.{suspect}"),
            evidence,
            fix: "Find the handler that blocks (the one running when the PINGs stopped): use socketio.sleep() instead of time.sleep(), monkey-patch the standard library first thing (eventlet.monkey_patch()), or move long work to socketio.start_background_task.",
            step: Some("diagnoses.11"),
            guess: true,
        })
    }

    /// An EVENT to a namespace whose CONNECT the server has not accepted (yet, or at all) on a
    /// session seen from its OPEN: python-socketio drops it with a warning in its log.
    fn event_before_connect(&mut self, e: &Event) -> Option<Finding<'static>> {
        if !matches!(e.packet_type(), Some("EVENT" | "BINARY_EVENT")) {
            return None;
        }
        let sid = e.sid()?;
        // Only a session whose beginning the trace holds can be known not to be connected.
        let opened = self.opened.get(sid)?.ev.clone();
        let nsp = e.nsp();
        if self.connected.contains(&(sid.to_string(), nsp.to_string())) {
            return None;
        }
        let event = e.event_name().unwrap_or("?");
        self.once("event-before-connect", format!("{sid} {nsp}"), Finding {
            cause: "event-before-connect",
            conn: e.conn,
            t: e.t,
            what: format!("The client sent the event {event:?} to the namespace {nsp} before the server had accepted its CONNECT to {nsp} (or after refusing it), so python-socketio dropped it: no handler ran, no ack came back, and only the server's log says so (\"is not connected to namespace\")."),
            evidence: vec![opened, Evidence::of(e)],
            fix: "Emit once the client is connected (socket.on(\"connect\", ...) in socket.io-client, after connect() returns in python-socketio), on a socket made for that namespace: io(\"/chat\") connects to /chat, and events on it go there.",
            step: Some("diagnoses.12"),
            guess: false,
        })
    }

    /// Werkzeug's development server wrote an HTTP page onto an upgraded socket.
    fn page_on_websocket(&mut self, e: &Event) -> Option<Finding<'static>> {
        let reason = e.text("reason")?;
        if !reason.starts_with("HTTP written onto an upgraded socket") {
            return None;
        }
        let hex = e.text("hex").unwrap_or("");
        let head: String = (0..hex.len().min(24))
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .map(char::from)
            .collect();
        let conn = e.conn?;
        let status = head
            .strip_prefix("HTTP/1.1 ")
            .or_else(|| head.strip_prefix("HTTP/1.0 "))
            .and_then(|r| r.get(..3));
        // Which server wrote it: the linker follows the app's async mode.
        let server = match self.linker.async_mode() {
            crate::links::AsyncMode::Threading => "Werkzeug's development server",
            crate::links::AsyncMode::Eventlet => "eventlet's WSGI server",
            crate::links::AsyncMode::Gevent => "gevent's pywsgi server",
        };
        let (what, fix) = match status {
            Some(s) if s.starts_with('5') => (
                format!("The app raised while this WebSocket was open (python-engineio could not decode a message the client sent: an empty one, or one that does not start with a packet type digit), and {server} wrote its HTTP {s} error page onto the upgraded socket. The client reads it as garbage frames and the connection ends."),
                "Find what the client sends that is not an Engine.IO packet: the server's console has the traceback.",
            ),
            Some(s) if s.starts_with('2') => (
                format!("After the WebSocket ended, {server} wrote the HTTP {s} response of the WebSocket's own request onto the connection (python-engineio answers the finished request with an empty 200, and this server writes it). Harmless: the session was over."),
                "Nothing to fix in the app: the bytes come after the WebSocket's end.",
            ),
            _ => (
                format!("After the WebSocket ended, the client sent more bytes (python-socketio's client sends its last packets, or a second Close frame, after its first Close frame); {server} read them as a new HTTP request and wrote an HTTP {} error page onto the socket. Harmless: the session was over.", status.unwrap_or("400")),
                "Nothing to fix in the app: the bytes come after the WebSocket's end.",
            ),
        };
        self.once(
            "http-page-on-websocket",
            conn.to_string(),
            Finding {
                cause: "http-page-on-websocket",
                conn: Some(conn),
                t: e.t,
                what,
                evidence: vec![Evidence::of(e)],
                fix,
                // Late bytes read as a request: http.server's loop, under Werkzeug.
                step: (status.is_none_or(|s| s.starts_with('4'))
                    && self.linker.async_mode() == crate::links::AsyncMode::Threading)
                    .then_some("diagnoses.20"),
                guess: false,
            },
        )
    }

    /// A client EVENT with an ack id waits for its ACK (a session's key is its sid).
    fn asks_for_ack(&mut self, e: &Event) {
        if !matches!(e.packet_type(), Some("EVENT" | "BINARY_EVENT")) {
            return;
        }
        let (Some(sid), Some(id)) = (e.sid(), e.number("id")) else {
            return;
        };
        if self.awaiting.len() >= MAX_SESSIONS {
            return;
        }
        let nsp = e.nsp();
        let event = e.event_name().unwrap_or("?");
        self.awaiting.insert(
            (sid.to_string(), nsp.to_string(), id),
            (event.to_string(), Evidence::of(e)),
        );
    }

    fn sio_sent(&mut self, e: &Event) -> Option<Finding<'static>> {
        if matches!(e.packet_type(), Some("ACK" | "BINARY_ACK")) {
            if let (Some(sid), Some(id)) = (e.sid(), e.number("id")) {
                let nsp = e.nsp();
                self.awaiting
                    .remove(&(sid.to_string(), nsp.to_string(), id));
            }
            return None;
        }
        if e.packet_type() == Some("CONNECT") {
            // The namespace is connected for this session from now on.
            if let (Some(sid), Some(nsp)) = (e.sid(), e.text("nsp")) {
                if self.connected.len() < MAX_SESSIONS {
                    self.connected.insert((sid.to_string(), nsp.to_string()));
                }
            }
            if let (Some(c), Some(server)) = (e.conn, e.conn.and_then(|c| self.server_of.get(&c))) {
                let nsp = e.nsp();
                if self.sio_conns.len() < MAX_SESSIONS || self.sio_conns.contains_key(&c) {
                    let server = server.clone();
                    let entry = self
                        .sio_conns
                        .entry(c)
                        .or_insert_with(|| (server, Vec::new()));
                    entry.1.push((nsp.to_string(), Evidence::of(e)));
                }
            }
            return None;
        }
        if matches!(e.packet_type(), Some("EVENT" | "BINARY_EVENT")) {
            self.emitted(e);
            return None;
        }
        if e.packet_type() == Some("DISCONNECT") {
            return self.server_disconnected(e);
        }
        if e.packet_type() != Some("CONNECT_ERROR") {
            return None;
        }
        let nsp = e.nsp().to_string();
        let data = e
            .fields
            .json("data")
            .map(|d| d.to_string())
            .unwrap_or_default();
        let sid = e.sid().unwrap_or("").to_string();
        let evidence = vec![Evidence::of(e)];
        if data == "\"Unable to connect\"" {
            return self.once("unknown-namespace", format!("{sid} {nsp}"), Finding {
                cause: "unknown-namespace",
                conn: e.conn,
                t: e.t,
                what: format!("The client asked to join the namespace {nsp}, for which the server has no handlers (no @socketio.on(..., namespace=\"{nsp}\") and no Namespace class), so python-socketio refused it with \"Unable to connect\"."),
                evidence,
                fix: "Register a handler or a Namespace class for that namespace on the server, or correct the client: io(\"/chat\") asks for the namespace /chat, io(\"http://host:5000\") for /.",
                step: Some("diagnoses.8"),
                guess: false,
            });
        }
        self.once("connection-refused", format!("{sid} {nsp}"), Finding {
            cause: "connection-refused",
            conn: e.conn,
            t: e.t,
            what: if data.contains("Connection refused by server") {
                format!("The server refused the client's connection to the namespace {nsp} with {data}: python-socketio sends that message when the connect handler raises Python's built-in ConnectionRefusedError rather than Flask-SocketIO's (from flask_socketio), whose own message would have reached the client. The client's connect_error handler gets that data; its connect handler never runs.")
            } else if data.contains("Connection rejected by server") {
                format!("The server refused the client's connection to the namespace {nsp} with {data}, python-socketio's default: the app's connect handler returned False, or raised ConnectionRefusedError with no message. The client's connect_error handler gets that data; its connect handler never runs.")
            } else {
                format!("The server refused the client's connection to the namespace {nsp} with {data}, which python-socketio sends when the app's connect handler raises ConnectionRefusedError with that message. The client's connect_error handler gets that data; its connect handler never runs.")
            },
            evidence,
            fix: "If the refusal is wrong, look at the connect handler's condition (the auth data the client sent in its CONNECT packet, the session cookie); on the client, handle connect_error to tell the user.",
            step: Some("diagnoses.7"),
            guess: false,
        })
    }

    /// A handler of the app raised (what `dispel watch` observes inside the app).
    fn raised(&mut self, e: &Event) -> Option<Finding<'static>> {
        let raised = e.text("raised")?;
        if raised == "ConnectionRefusedError" {
            return None;
        }
        let handler = e.text("handler").unwrap_or("?");
        let event = e.event_name().unwrap_or("?");
        // The ack it will never send is this diagnosis's, not a `no-ack` of its own.
        if let Some(sid) = e.text("eio_sid") {
            let nsp = e.nsp();
            self.awaiting
                .retain(|(s, n, _), (name, _)| !(s == sid && n == nsp && name == event));
        }
        let at = e
            .text("line")
            .map(|l| format!(" at {l}"))
            .unwrap_or_default();
        self.once("handler-raised", format!("{handler} {raised}"), Finding {
            cause: "handler-raised",
            conn: e.conn,
            t: e.t,
            what: format!("The handler {handler} raised {raised}{} while handling {event:?}: nothing after the failing line ran, no emit it would have made was sent, and a client waiting for an acknowledgement gets none (its callback never fires). The exception escapes the handler's thread (or green thread), and its traceback is printed on the server's console (\"Exception in thread ...\" under threading; under gevent the traceback and \"<Thread at ...> failed with {raised}\" (python-engineio's Thread is a greenlet); under eventlet the green thread's traceback).", at),
            evidence: vec![Evidence::of(e)],
            fix: "Read the traceback in the server's output; catch the error in the handler and answer the client (return an error value for its acknowledgement) instead of letting it escape, or give the namespace an error handler (@socketio.on_error).",
            step: Some("diagnoses.19"),
            guess: false,
        })
    }

    /// An emit of the app that reached no client (`dispel watch`).
    fn emit_to_nobody(&mut self, e: &Event) -> Option<Finding<'static>> {
        if e.number("count") != Some(0) {
            return None;
        }
        let reach = e.text("reach")?;
        let event = e.event_name().unwrap_or("?");
        let line = e.text("line").unwrap_or("?");
        let nsp = e.nsp();
        let to = e.fields.get("to").map(Value::to_string).unwrap_or_default();
        let skipped_self = e.fields.get("include_self") == Some(&Value::Bool(false));
        let why = match reach {
            "room" if skipped_self => format!("the room {to} held no one but the sender, who include_self=False leaves out"),
            "room" => format!("no client was in the room {to} at that moment (nobody joined it yet, or everyone left, or it is a sid of a client gone)"),
            _ => format!("no client was connected to the namespace {nsp}"),
        };
        self.once("emit-reached-nobody", line.to_string(), Finding {
            cause: "emit-reached-nobody",
            conn: e.conn,
            t: e.t,
            what: format!("The emit of {event:?} at {line} reached no client this time: {why}. Nothing was sent."),
            evidence: vec![Evidence::of(e)],
            fix: if skipped_self {
                "Nothing to fix when the sender was the room's only member (the first to join a room has no one to tell); otherwise check that the others joined the same room, on the same namespace."
            } else {
                "Check the room name against the join_room calls (and the namespace: rooms belong to one namespace), and that clients have connected to that namespace before the emit."
            },
            step: Some("diagnoses.18"),
            guess: false,
        })
    }

    /// A WebSocket connection that ended with no goodbye from either side and no failure
    /// named: python-socketio's "transport close".
    fn transport_closed(&mut self, e: &Event) -> Option<Finding<'static>> {
        let conn = e.conn?;
        if !self.ws_conns.contains(&conn)
            || self.goodbye.contains(&conn)
            || self.named.contains(&conn)
        {
            return None;
        }
        let how = e.text("how").unwrap_or("closed");
        let mut evidence: Vec<Evidence> = self.last_on.get(&conn).cloned().into_iter().collect();
        evidence.push(Evidence::of(e));
        self.once("transport-closed", format!("{conn} transport"), Finding {
            cause: "transport-closed",
            conn: Some(conn),
            t: e.t,
            what: format!("The WebSocket connection ended without a goodbye: no Close frame, no Engine.IO CLOSE and no Socket.IO DISCONNECT from either side, the TCP connection just ended ({how}). python-socketio runs the disconnect handler with the reason \"transport close\", and the client, if it is still there, reconnects with a new session. Something ended the connection from outside Socket.IO: the client's process or tab went away at once, the network dropped, or a proxy or load balancer closed it (an idle timeout)."),
            evidence,
            fix: "If clients drop while still open, look between them and the server: a proxy's idle timeout shorter than pingInterval (nginx proxy_read_timeout is 60 s), a load balancer, a sleeping laptop. A handler that must know why reads the reason in @socketio.on(\"disconnect\") (python-socketio 5.12 and later pass it).",
            step: Some("diagnoses.17"),
            guess: true,
        })
    }

    /// The server sent a Socket.IO DISCONNECT: the app's code disconnected the client, which
    /// does not come back by itself.
    fn server_disconnected(&mut self, e: &Event) -> Option<Finding<'static>> {
        let conn = e.conn?;
        let nsp = e.nsp().to_string();
        let sid = e.sid().unwrap_or("").to_string();
        let mut evidence = Vec::new();
        let mut after = ", which python-socketio sends when the app calls disconnect()".to_string();
        // The app's own call, when the tracer saw it: for this session, just before.
        let call = self
            .disconnect_calls
            .iter()
            .rev()
            .find(|(s, _, t)| {
                e.t - t <= 1.0
                    && s.as_deref()
                        .is_none_or(|s| Some(s) == e.sid() || e.sid().is_none())
            })
            .map(|(_, line, _)| line.clone());
        if let Some((name, ev)) = self.last_event.get(&conn) {
            if e.t - ev.t <= 1.0 {
                after = match &call {
                    Some(line) => format!(" right after the client's \"{name}\" event: its handler called disconnect() at {line}, which makes python-socketio send it"),
                    None => format!(" right after the client's \"{name}\" event: its handler most likely called disconnect(), which makes python-socketio send it"),
                };
                evidence.push(ev.clone());
            }
        } else if let Some(line) = &call {
            after = format!(
                ": the app called disconnect() at {line}, which makes python-socketio send it"
            );
        }
        evidence.push(Evidence::of(e));
        self.once("server-disconnected", format!("{sid} {nsp} {conn}"), Finding {
            cause: "server-disconnected",
            conn: Some(conn),
            t: e.t,
            what: format!("The server disconnected the client from the namespace {nsp}: it sent a Socket.IO DISCONNECT{after}. The client's disconnect reason is \"io server disconnect\" (socket.io-client) or \"server disconnect\", and neither client reconnects by itself after it."),
            evidence,
            fix: "If the disconnect is not meant, find the app's disconnect() call (named above when the app's own calls were seen); if it is, have the client reconnect when it wants to: socket.connect() in its \"disconnect\" handler when the reason is \"io server disconnect\".",
            step: Some("diagnoses.16"),
            guess: false,
        })
    }

    /// A server's EVENT: it answers a lone emit another process's client got too (so the
    /// processes share a queue), or it starts one.
    fn emitted(&mut self, e: &Event) {
        let Some(server) = e.conn.and_then(|c| self.server_of.get(&c)).cloned() else {
            return;
        };
        let event = e.event_name().unwrap_or("");
        if let Some(l) = &self.lone {
            if l.event == event && l.server != server {
                self.lone = None;
            }
            return;
        }
        if self.queue_seen || self.said.iter().any(|(c, _)| *c == "no-message-queue") {
            return;
        }
        let Some((t, from, ev)) = &self.last_client_event else {
            return;
        };
        if e.t - t > LONE_WINDOW || *from != server {
            return;
        }
        let nsp = e.nsp();
        // Clients of another process in the same namespace; a proxy's legs are one client.
        let proxied = |c: &u64| self.client_legs.contains(c) || self.upstream.contains_key(c);
        let mut others: Vec<(u64, String, Evidence)> = self
            .sio_conns
            .iter()
            .filter(|(c, (s, _))| *s != server && !proxied(c))
            .filter_map(|(c, (s, nsps))| {
                let (_, connect) = nsps.iter().find(|(n, _)| n == nsp)?;
                Some((*c, s.clone(), connect.clone()))
            })
            .collect();
        if others.is_empty() || e.conn.is_some_and(|c| proxied(&c)) {
            return;
        }
        others.sort_by_key(|(c, _, _)| *c);
        let other_server = others[0].1.clone();
        let mut evidence = vec![ev.clone(), Evidence::of(e)];
        evidence.push(others[0].2.clone());
        self.lone = Some(LoneEmit {
            t: e.t,
            server,
            event: event.to_string(),
            conn: e.conn,
            evidence,
            others: others.into_iter().map(|(c, _, _)| c).collect(),
            other_server,
        });
    }

    /// A lone emit whose window passed: no client of the other process got it.
    fn lone_emit_reached_nobody(&mut self) -> Option<Finding<'static>> {
        let l = self.lone.take()?;
        let others: Vec<String> = l.others.iter().map(|c| format!("#{c}")).collect();
        let what = format!("Two server processes serve this app ({} and {}), and the capture shows no message queue between them: \"{}\" went out on {} right after a client's event there, and {} on {}, connected to the same namespace, got nothing. If the app emitted it to a room or to everyone, it reached only the clients of the process that ran the handler: without a message queue, python-socketio knows only its own process's clients.", l.server, l.other_server, l.event, l.server, others.join(", "), l.other_server);
        self.once("no-message-queue", "capture".into(), Finding {
            cause: "no-message-queue",
            conn: l.conn,
            t: l.t,
            what,
            evidence: l.evidence,
            fix: "Give every process the same message queue: SocketIO(app, message_queue=\"redis://\") (and pip install redis), with sticky sessions for long-polling; or run one process.",
            step: Some("diagnoses.15"),
            guess: true,
        })
    }

    fn once(
        &mut self,
        cause: &'static str,
        key: String,
        f: Finding<'static>,
    ) -> Option<Finding<'static>> {
        self.said.insert((cause, key)).then_some(f)
    }

    fn write(&mut self, f: Finding, out: &mut Vec<Event>) {
        if let Some(c) = f.conn {
            if self.named.len() < MAX_SESSIONS {
                self.named.insert(c);
            }
        }
        match self.by_cause.iter_mut().find(|(c, _)| *c == f.cause) {
            Some((_, n)) => *n += 1,
            None => self.by_cause.push((f.cause, 1)),
        }
        self.made += 1;
        if self.made > MAX_DIAGNOSES {
            return;
        }
        let source = f
            .step
            .and_then(|id| self.linker.deciding_line(id))
            .map(|l| {
                json!({
                    "step": l.step.step_id,
                    "package": l.step.package,
                    "version": l.step.version,
                    "path": l.step.path,
                    "line": l.step.line_start,
                    "symbol": l.step.symbol,
                    "url": l.url,
                })
            })
            .unwrap_or(Value::Null);
        let what = if f.guess {
            format!("{} (a likely cause, not a certain one)", f.what)
        } else {
            f.what
        };
        out.push(
            Event::new(Stage::Diagnosis, f.t, f.conn, None, what)
                .with("cause", f.cause)
                .with(
                    "evidence",
                    f.evidence.iter().map(Evidence::json).collect::<Vec<_>>(),
                )
                .with("fix", f.fix)
                .with("source", source)
                .with("guess", f.guess),
        );
    }
}

/// A request and the answer that show a decision.
fn evidence_of(req: &Request, answer: &Event) -> Vec<Evidence> {
    vec![req.ev.clone(), Evidence::of(answer)]
}

impl Processor for Diagnoser {
    fn needs(&self) -> u32 {
        Stage::TcpAccept.bit()
            | Stage::WsMessage.bit()
            | Stage::TcpData.bit()
            | Stage::HttpRequest.bit()
            | Stage::HttpResponse.bit()
            | Stage::EioPacket.bit()
            | Stage::SioPacket.bit()
            | Stage::WsClose.bit()
            | Stage::TcpClose.bit()
            | Stage::Error.bit()
            | Stage::SioEmit.bit()
    }

    fn push(&mut self, e: Event, out: &mut Vec<Event>) {
        Diagnoser::push(self, e, out);
    }

    fn finish(&mut self, out: &mut Vec<Event>) {
        Diagnoser::finish(self, out);
    }
}
