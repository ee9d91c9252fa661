//! The report a student hands in (`dispel report --hand-in`): the course's template, about
//! their app. One unbroken path from the socket to their handler and back out to the bytes,
//! each step with what this trace shows, which thread (or green thread) runs it, and the
//! Python lines that do it, no line listed twice; then their own handlers and calls, what
//! went wrong, and the licenses of the code quoted. Written for a grader: no connection
//! numbers, no tool commands or options, no paths of this repository.

use super::calls::{CallKind, Form};
use super::chain::Item;
use super::*;
use crate::report::pysource::Scan;
use crate::stage::Kind;

/// One step of the path: the event that shows it, and what to say of it.
struct Step<'a> {
    title: &'static str,
    stage: Stage,
    ev: &'a Ev,
    /// What this trace shows, in a sentence or two.
    shows: String,
    runner: String,
    /// Code that runs first in the same step (the Engine.IO packet a frame carries out),
    /// by stage and kind.
    also: Vec<(Stage, Option<Kind>)>,
    /// Code that runs after it in the same step (the WebSocket message a frame completes).
    then: Vec<(Stage, Option<Kind>)>,
    /// The kind whose links fit this step, when not the event's own (a capture's EVENT
    /// packet standing for the dispatch to a Namespace class's method).
    kind: Option<Kind>,
}

/// Who runs what, in the server's async mode: the words for a thread of that mode.
struct Runners {
    unit: &'static str,
    accept: &'static str,
    reader: &'static str,
}

fn runners(ctx: &Ctx) -> Runners {
    // gevent-websocket, where it is installed, reads the frames in the connection's greenlet.
    let gevent_websocket = ctx
        .installed
        .is_some_and(|i| i.dists.contains_key("gevent-websocket"));
    match ctx.stack.mode {
        links::AsyncMode::Gevent if gevent_websocket => Runners {
            unit: "greenlet",
            accept: "gevent's pywsgi server accepts the connection and spawns a greenlet for it: one greenlet per connection, all in one OS thread",
            reader: "The connection's own greenlet reads the bytes and parses the frames (gevent-websocket's WebSocket) when python-engineio's loop asks for the next message: there is no reader greenlet",
        },
        links::AsyncMode::Threading => Runners {
            unit: "thread",
            accept: "Werkzeug's server loop accepts the connection and starts a thread for it: one thread per connection (socketserver's ThreadingMixIn)",
            reader: "simple-websocket's reader thread for this WebSocket reads the bytes from the socket, parses the frames (with wsproto) and queues each message; the connection's thread, waiting in python-engineio's loop, takes it from there",
        },
        links::AsyncMode::Eventlet => Runners {
            unit: "green thread",
            accept: "eventlet's WSGI server loop accepts the connection and spawns a green thread for it from its pool: one green thread per connection, all in one OS thread, switching whenever one waits for the network",
            reader: "the connection's own green thread reads the frames (eventlet.websocket) when python-engineio asks for the next message",
        },
        links::AsyncMode::Gevent => Runners {
            unit: "greenlet",
            accept: "gevent's pywsgi server accepts the connection and spawns a greenlet for it: one greenlet per connection, all in one OS thread",
            reader: "simple-websocket's reader, a greenlet, reads the bytes and parses the frames (with wsproto) and queues each message; the connection's greenlet, waiting in python-engineio's loop, takes it from there",
        },
    }
}

/// The "how it works" text of a stage, without what only the tool's own users need.
fn how(stage: Stage) -> Vec<Block> {
    let Some(text) = explain::snippet(stage) else {
        return Vec::new();
    };
    let kept: Vec<&str> = text
        .split_inclusive(". ")
        .filter(|sentence| !sentence.contains("dispel"))
        .collect();
    parse_markdown(&kept.concat())
}

/// A line that runs on the connection's thread when it takes a message simple-websocket's
/// reader queued: simple-websocket's `receive` and python-engineio's driver's `wait`.
fn is_handover(l: &StepLink) -> bool {
    l.step.symbol == "Base.receive" || l.step.symbol.ends_with("WebSocketWSGI.wait")
}

/// The steps a document has listed: by id, and by the lines they cover.
#[derive(Default)]
struct Shown {
    ids: HashSet<String>,
    spans: Vec<(String, String, u32, u32)>,
}

impl Shown {
    /// Whether the step is new (and now listed): not listed, and not inside one that was.
    fn insert(&mut self, l: &StepLink) -> bool {
        let s = &l.step;
        let inside = self.spans.iter().any(|(path, version, a, b)| {
            *path == s.path && *version == s.version && *a <= s.line_start && s.line_end <= *b
        });
        if inside || !self.ids.insert(s.step_id.clone()) {
            return false;
        }
        self.spans
            .push((s.path.clone(), s.version.clone(), s.line_start, s.line_end));
        true
    }
}

/// The first event of `stage` in the session after `after` (by trace order), matching `pick`.
fn next<'a>(ctx: &Ctx<'a>, stage: Stage, after: u64, pick: impl Fn(&Ev) -> bool) -> Option<&'a Ev> {
    ctx.evs
        .iter()
        .copied()
        .find(|e| e.stage == stage && e.seq > after && pick(e))
}

/// The words the report uses that a reader of web applications may not know, explained once,
/// before they are used.
fn glossary(mode: links::AsyncMode) -> Vec<(&'static str, String)> {
    let unit = match mode {
        links::AsyncMode::Threading => "Thread: the server runs each connection (socketserver's ThreadingMixIn starts its thread), each event handler (a connect handler runs inline, in the connection's thread that takes the CONNECT) and each background task on an operating-system thread of its own (a daemon thread: it does not keep the process alive at exit). simple-websocket, wsproto and h11 are the libraries that speak WebSocket for python-engineio here: simple-websocket runs a reader thread per WebSocket, wsproto parses and builds the frames, h11 reads the handshake's HTTP.".to_string(),
        links::AsyncMode::Eventlet => "Green thread: eventlet runs each connection, each event handler and each background task as a green thread, a function that takes turns with the others in one operating-system thread, switching whenever it waits on the network.".to_string(),
        links::AsyncMode::Gevent => "Greenlet: gevent runs each connection, each event handler and each background task as a greenlet, a function that takes turns with the others in one operating-system thread, switching whenever it waits on the network.".to_string(),
    };
    vec![
        ("TCP connection", "the two-way byte stream between the browser (or a Python client) and the server, named by the two address:port pairs; every other layer travels inside it.".into()),
        ("WSGI", "the Python interface between a web server and a web app (PEP 3333): the server calls the app with the request as a dictionary, the environ.".into()),
        ("Middleware", "a WSGI app wrapped around another that sees each request first: Flask-SocketIO puts python-engineio's in front of the Flask app, to take the /socket.io/ requests and pass every other one on.".into()),
        ("Request context", "what Flask sets up while it handles a request, so that request, session and the app's config can be used as if global; Flask-SocketIO makes one for each Socket.IO event, in which request.sid names the client.".into()),
        ("Engine.IO", "the transport under Socket.IO: it opens a session (named by its session id, the sid), carries packets over long-polling or a WebSocket, and checks with PING and PONG that the other side is still there.".into()),
        ("Long-polling", "the transport that works everywhere: the client sends HTTP GET requests that the server holds open until it has packets for it, and sends its own packets in HTTP POST requests.".into()),
        ("WebSocket", "RFC 6455: an HTTP request that asks to switch protocols (the upgrade); after the server's 101 answer the same TCP connection carries frames both ways. The server proves it understood with Sec-WebSocket-Accept: the SHA-1 of the client's Sec-WebSocket-Key joined to a fixed GUID, in base64.".into()),
        ("Frame", "one unit of a WebSocket: a header of 2 to 14 bytes (the opcode, the length, the client's mask) and the payload. Clients mask their payloads; servers never do.".into()),
        ("permessage-deflate", "a WebSocket extension (RFC 7692) that compresses each message; the first frame of a compressed message has its RSV1 bit set.".into()),
        ("Socket.IO", "the protocol the app's code talks: named events with data, namespaces, acknowledgements and rooms, sent as Engine.IO MESSAGE packets.".into()),
        ("Namespace", "a channel of a Socket.IO connection (\"/\" by default, \"/chat\" and so on); each has its own handlers.".into()),
        ("Room", "a group of clients on the server, for emitting to all of them; only the server knows the rooms.".into()),
        ("Acknowledgement (ack)", "the answer to an event that asked for one: the handler's return value, sent back in an ACK packet with the event's id.".into()),
        (match mode {
            links::AsyncMode::Threading => "Thread",
            links::AsyncMode::Eventlet => "Green thread",
            links::AsyncMode::Gevent => "Greenlet",
        }, unit.split_once(": ").map(|(_, m)| m.to_string()).unwrap_or(unit)),
    ]
}

/// For a compressed frame, what its bytes are: ", compressed with permessage-deflate (RSV1
/// set; the message is 68 characters once inflated)"; nothing for a plain one.
fn compression(ctx: &Ctx, f: &Ev) -> String {
    if !f.flag("rsv1") {
        return String::new();
    }
    let message = next(ctx, Stage::WsMessage, f.seq.saturating_sub(1), |m| {
        m.dir == f.dir && m.conn == f.conn
    });
    match message.and_then(|m| m.u64("len")) {
        Some(len) => format!(
            ", compressed with permessage-deflate (RSV1 set; the message is {len} bytes once inflated)"
        ),
        None => ", compressed with permessage-deflate (RSV1 set)".to_string(),
    }
}

/// The last event of `stage` before `before` on the same connection, matching `pick`.
fn before<'a>(ctx: &Ctx<'a>, stage: Stage, at: &Ev, pick: impl Fn(&Ev) -> bool) -> Option<&'a Ev> {
    ctx.evs
        .iter()
        .copied()
        .filter(|e| e.stage == stage && e.seq < at.seq && e.conn == at.conn && pick(e))
        .last()
}

/// `listens`: where a watched app's own server listened, behind the relay that recorded it.
fn path<'a>(ctx: &Ctx<'a>, handler: Option<&str>, listens: Option<&str>) -> Vec<Step<'a>> {
    let r = runners(ctx);
    let unit = r.unit;
    let mut steps = Vec::new();
    let websocket = ctx.of(Stage::WsHandshake).next().is_some();
    // The connection the path follows: the WebSocket's, when there is one.
    let main = ctx.main_conn();
    let accept = ctx.on_main(Stage::TcpAccept);
    if let Some(e) = accept {
        let (client, server) = (
            e.str("client").unwrap_or("?"),
            e.str("server").unwrap_or("?"),
        );
        let mut shows = match listens {
            Some(listens) => format!(
                "The client ({client}) connected to {server}, the app's address. While this traffic was recorded, the recording tool listened there and passed every byte on, unchanged, to the app's own server, which it had moved to {listens}; that server accepted the tool's connection, and everything below happened on it."
            ),
            None => format!("The client ({client}) connected to the server ({server})."),
        };
        if let Some(more) = connections_sentence(ctx) {
            shows.push(' ');
            shows.push_str(&more);
        }
        steps.push(Step {
            title: "The TCP connection",
            stage: Stage::TcpAccept,
            ev: e,
            shows,
            runner: format!("{}.", r.accept),
            also: Vec::new(),
            then: Vec::new(),
            kind: None,
        });
    }
    // A session that began on long-polling: its opening request, before the upgrade.
    let upgraded = ctx
        .of(Stage::HttpRequest)
        .any(|e| e.kind == Some(Kind::Websocket));
    let opening = ctx
        .of(Stage::HttpRequest)
        .find(|e| e.kind == Some(Kind::PollingOpen));
    if let (true, Some(e)) = (upgraded, opening) {
        let open = ctx
            .of(Stage::EioPacket)
            .find(|p| p.str("type") == Some("OPEN"));
        let fields = |k: &str| open.and_then(|o| o.fields.get(k)).map(|v| v.to_string());
        let connect_polled = ctx.of(Stage::SioPacket).any(|p| {
            p.dir == Some(Dir::C2S) && p.str("type") == Some("CONNECT") && p.conn != Some(main)
        });
        steps.push(Step {
            title: "The session opens on long-polling",
            stage: Stage::HttpRequest,
            ev: e,
            shows: format!(
                "Before any WebSocket, the client opened its Engine.IO session with the long-polling request GET {}; the answer carried the OPEN packet (type 0){}.{}",
                e.str("target").map(|t| shorten(t, 60)).unwrap_or_default(),
                match (fields("sid"), fields("pingInterval"), fields("pingTimeout"), fields("upgrades")) {
                    (Some(sid), Some(pi), Some(pt), Some(up)) => format!(
                        " with the session id {sid}, pingInterval {pi} ms, pingTimeout {pt} ms and the upgrades the server offers, {up}"
                    ),
                    _ => String::new(),
                },
                if connect_polled {
                    " The client sent its Socket.IO CONNECT in a long-polling POST before it asked for the WebSocket."
                } else {
                    ""
                }
            ),
            runner: format!("Each long-polling request is an ordinary HTTP request, run by the {unit} of the connection it came on."),
            also: Vec::new(),
            then: Vec::new(),
            kind: None,
        });
    }
    let request = ctx
        .of(Stage::HttpRequest)
        .find(|e| matches!(e.kind, Some(Kind::Websocket | Kind::WebsocketNew)))
        .or_else(|| ctx.of(Stage::HttpRequest).next());
    if let Some(e) = request {
        steps.push(Step {
            title: if matches!(e.kind, Some(Kind::Websocket | Kind::WebsocketNew)) {
                "The WebSocket request"
            } else {
                "The HTTP request"
            },
            stage: Stage::HttpRequest,
            ev: e,
            shows: format!(
                "The client asked for {} {} ({}).",
                e.str("method").unwrap_or("GET"),
                e.str("target").map(|t| shorten(t, 80)).unwrap_or_default(),
                match e.kind {
                    Some(Kind::WebsocketNew) => "a WebSocket that opens its own Engine.IO session",
                    Some(Kind::Websocket) => "the upgrade of a long-polling session to a WebSocket",
                    _ => "an Engine.IO long-polling request",
                }
            ),
            runner: format!("The connection's {unit} reads the request line and the headers and calls the Flask app, whose Flask-SocketIO middleware hands /socket.io/ to python-engineio."),
            also: Vec::new(),
            then: Vec::new(),
            kind: None,
        });
    }
    if let Some(e) = ctx.of(Stage::WsHandshake).next() {
        steps.push(Step {
            title: "The WebSocket handshake",
            stage: Stage::WsHandshake,
            ev: e,
            shows: format!(
                "The server answered 101 Switching Protocols with Sec-WebSocket-Accept {} (SHA-1 of the client's key and the RFC 6455 GUID, in base64){}.",
                e.str("accept").unwrap_or("?"),
                if e.flag("accept_ok") { ", which the client checks" } else { "" }
            ),
            runner: format!("The same {unit} writes the 101 answer; from here the connection carries WebSocket frames."),
            also: Vec::new(),
            then: Vec::new(),
            kind: None,
        });
    }
    if let Some(u) = ctx.of(Stage::EioUpgrade).next() {
        let probe = ctx
            .of(Stage::EioPacket)
            .find(|p| p.str("type") == Some("PONG") && p.str("data") == Some("probe"));
        let noops = ctx
            .of(Stage::EioPacket)
            .filter(|p| p.str("type") == Some("NOOP") && p.conn != u.conn)
            .count();
        steps.push(Step {
            title: "The upgrade to the WebSocket",
            stage: Stage::EioUpgrade,
            ev: u,
            shows: format!(
                "On the new WebSocket the client sent PING \"probe\" (2probe), the server answered PONG \"probe\" (3probe){}, and the client sent UPGRADE (5) at {:.3} s: from then on the session's packets go over the WebSocket only{}.",
                probe.map(|p| format!(" at {:.3} s", p.t)).unwrap_or_default(),
                u.t,
                match noops {
                    0 => String::new(),
                    1 => "; a long-polling request that came meanwhile was answered with NOOP (6)".to_string(),
                    n => format!("; {n} long-polling requests that came meanwhile were answered with NOOP (6)"),
                }
            ),
            runner: format!("The WebSocket's {unit} runs python-engineio's upgrade: it answers the probe, queues a NOOP for a poll that may be waiting, and waits for UPGRADE."),
            also: Vec::new(),
            then: Vec::new(),
            kind: None,
        });
    }
    // One event of the client's: the first that is not the namespace CONNECT.
    let Some(event) = ctx.of(Stage::SioPacket).find(|e| {
        e.dir == Some(Dir::C2S) && matches!(e.str("type"), Some("EVENT" | "BINARY_EVENT"))
    }) else {
        return steps;
    };
    let name = event.str("event").unwrap_or("?").to_string();
    if websocket {
        if let Some(f) = before(ctx, Stage::WsFrame, event, |f| f.dir == Some(Dir::C2S)) {
            steps.push(Step {
                title: "A frame comes in",
                stage: Stage::WsFrame,
                ev: f,
                shows: format!(
                    "The client's event \"{name}\" arrived as one masked text frame with a payload of {} bytes{}: the client XORs every payload byte with a 4-byte key it chose, and the server undoes it.",
                    f.u64("payload_len").unwrap_or(0),
                    compression(ctx, f)
                ),
                runner: format!("{}.", r.reader),
                also: Vec::new(),
                // The message the frame completes, handed over to python-engineio.
                then: next(ctx, Stage::WsMessage, f.seq, |m| {
                    m.dir == Some(Dir::C2S) && m.conn == f.conn
                })
                .map(|m| (Stage::WsMessage, m.kind))
                .into_iter()
                .collect(),
                kind: None,
            });
        }
    }
    if let Some(p) = before(ctx, Stage::EioPacket, event, |p| p.dir == Some(Dir::C2S)) {
        steps.push(Step {
            title: "The Engine.IO packet",
            stage: Stage::EioPacket,
            ev: p,
            shows: format!(
                "The message is the Engine.IO packet {}: type 4 (MESSAGE), whose data is a Socket.IO packet.",
                p.str("data").map(|d| format!("4{}", shorten(d, 60))).unwrap_or_else(|| "4…".into())
            ),
            runner: if websocket {
                format!("The connection's {unit} runs python-engineio's WebSocket loop: it waits for the next message and decodes it.")
            } else {
                format!("The {unit} of the POST that carried it decodes the payload, packet by packet.")
            },
            also: Vec::new(),
            then: Vec::new(),
            kind: None,
        });
    }
    steps.push(Step {
        title: "The Socket.IO event",
        stage: Stage::SioPacket,
        ev: event,
        shows: format!(
            "The Socket.IO packet is {} named \"{name}\" on the namespace {}{}.",
            match event.str("type") {
                Some("BINARY_EVENT") => "a BINARY_EVENT (an event with binary attachments)",
                _ => "an EVENT",
            },
            event.str("nsp").unwrap_or("/"),
            match event.u64("id") {
                Some(id) => format!(", asking for an acknowledgement (id {id})"),
                None => String::new(),
            }
        ),
        runner: format!("The same {unit} decodes it, and python-socketio starts a new {unit} for the event (async_handlers=True, the default), so a slow handler does not hold up the connection."),
        also: Vec::new(),
        then: Vec::new(),
        kind: None,
    });
    // The handler: the dispatch a watched app showed, else the event itself, when the app's
    // source names a handler for it.
    let dispatch = next(ctx, Stage::SioDispatch, event.seq, |d| {
        d.str("event") == Some(&name)
    });
    // A capture's packet stands for the dispatch: through a Namespace class when the source
    // says the handler is a method of one.
    let through_class =
        handler.is_some_and(|h| h.split(' ').next().is_some_and(|f| f.contains('.')));
    let nsp = event.str("nsp").unwrap_or("/");
    steps.push(Step {
        title: "Your handler",
        stage: Stage::SioDispatch,
        ev: dispatch.unwrap_or(event),
        shows: match (handler, dispatch) {
            (Some(h), Some(_)) => format!("python-socketio finds your handler for \"{name}\", and Flask-SocketIO calls it: {h}."),
            (Some(h), None) => format!("python-socketio finds the handler registered for \"{name}\", and Flask-SocketIO calls it: in the app's source that is {h} (matched by the event's name: the bytes do not show the call)."),
            (None, Some(d)) => format!(
                "python-socketio finds your handler for \"{name}\", and Flask-SocketIO calls it: {}.",
                d.str("handler").unwrap_or("?")
            ),
            (None, None) => format!("python-socketio looks up the handler registered for \"{name}\" on {nsp}, and Flask-SocketIO calls it; which function of the app that is, the traffic alone does not show."),
        },
        runner: format!("python-socketio, in the {unit} that decoded the event, starts a {unit} for it; in that {unit}, inside a Flask request context made for it (so request.sid and emit() know the client), Flask-SocketIO calls the handler."),
        also: Vec::new(),
        then: Vec::new(),
        kind: match dispatch {
            Some(_) => None,
            None if through_class => Some(Kind::Namespace),
            None => Some(Kind::Event),
        },
    });
    // What went back to this client next.
    let answer = next(ctx, Stage::SioPacket, event.seq, |p| {
        p.dir == Some(Dir::S2C) && p.conn == event.conn && p.str("type") != Some("CONNECT")
    });
    if let Some(a) = answer {
        let what = match a.str("type") {
            Some("ACK") => format!(
                "an ACK (id {}) carrying {} (python-socketio puts the handler's return value in it)",
                a.u64("id").unwrap_or(0),
                shorten(
                    &a.fields
                        .get("data")
                        .map(|d| d.to_string())
                        .unwrap_or_default(),
                    60
                )
            ),
            _ => format!("the EVENT \"{}\"", a.str("event").unwrap_or("?")),
        };
        steps.push(Step {
            title: "What goes back",
            stage: Stage::SioPacket,
            ev: a,
            shows: format!("The server sent back {what}."),
            runner: format!("The handler's {unit} encodes the packet and puts it, as an Engine.IO MESSAGE, on the session's queue; it does not write to the socket itself."),
            also: Vec::new(),
            then: Vec::new(),
            kind: None,
        });
        if websocket {
            if let Some(f) = next(ctx, Stage::WsFrame, a.seq.saturating_sub(8), |f| {
                f.dir == Some(Dir::S2C) && f.conn == a.conn && f.seq < a.seq + 8
            }) {
                steps.push(Step {
                    title: "The bytes go out",
                    stage: Stage::WsFrame,
                    ev: f,
                    shows: format!(
                        "It left as one unmasked text frame with a payload of {} bytes{} (servers never mask).",
                        f.u64("payload_len").unwrap_or(0),
                        compression(ctx, f)
                    ),
                    runner: format!("python-engineio's writer, a {unit} of its own per WebSocket session, takes the packet from the queue and sends it."),
                    // The Engine.IO packet the writer takes from the queue, and the message
                    // it hands to the WebSocket, before the frame.
                    also: [
                        before(ctx, Stage::EioPacket, a, |p| p.dir == Some(Dir::S2C))
                            .or_else(|| next(ctx, Stage::EioPacket, a.seq, |p| p.dir == Some(Dir::S2C) && p.conn == a.conn))
                            .map(|p| (Stage::EioPacket, p.kind)),
                        before(ctx, Stage::WsMessage, f, |m| m.dir == Some(Dir::S2C))
                            .map(|m| (Stage::WsMessage, m.kind)),
                    ]
                    .into_iter()
                    .flatten()
                    .collect(),
                    then: Vec::new(),
                    kind: None,
                });
            }
        }
    }
    if let Some(p) = ctx
        .of(Stage::EioPacket)
        .find(|p| p.dir == Some(Dir::S2C) && p.str("type") == Some("PING"))
    {
        steps.push(Step {
            title: "The heartbeat",
            stage: Stage::EioPacket,
            ev: p,
            shows: "The server sent PING (2); the client must answer PONG (3) within pingTimeout, or the session is closed.".into(),
            runner: format!("A background {unit} per session sleeps pingInterval, then queues the PING; the writer sends it."),
            also: Vec::new(),
            then: Vec::new(),
            kind: None,
        });
    }
    steps
}

/// Which client the path follows, how it used the transports, and how many others the
/// traffic holds.
fn followed(ctx: &Ctx, input: &Input) -> String {
    let requests: Vec<&Ev> = ctx.of(Stage::HttpRequest).collect();
    let how = if requests.iter().any(|e| e.kind == Some(Kind::WebsocketNew)) {
        "It opened its Engine.IO session directly on a WebSocket (transport=websocket in its first request, as a client told to use only WebSocket does); a browser's Socket.IO client starts on long-polling and then upgrades, so its first requests take the long-polling code before the WebSocket's."
    } else if requests.iter().any(|e| e.kind == Some(Kind::Websocket)) {
        "It started on long-polling and then upgraded to a WebSocket, as a browser's Socket.IO client does."
    } else if requests.is_empty() {
        ""
    } else {
        "It used long-polling only: every packet travelled in HTTP requests."
    };
    // The other clients: other Engine.IO sessions (a connection without one counts alone).
    let mut sessions = HashSet::new();
    for c in &input.conns {
        if ctx.session.contains(&c.id) {
            continue;
        }
        if c.eio || c.handshake {
            sessions.insert(c.sid.clone().unwrap_or_else(|| format!("#{}", c.id)));
        }
    }
    let listed = if input.diagnoses.is_empty() {
        ""
    } else {
        "; what went wrong for any client is listed near the end"
    };
    let others = match sessions.len() {
        0 => String::new(),
        1 => format!(" The traffic holds one other Socket.IO client{listed}."),
        n => format!(" The traffic holds {n} other Socket.IO clients{listed}."),
    };
    format!("{how}{others}")
}

/// Which versions the links point at, and how that is known, in the report's own words.
fn versions(ctx: &Ctx) -> String {
    let list = linked_versions(ctx);
    let list = list.join(", ");
    match (ctx.installed, ctx.ran) {
        (Some(_), _) => format!("the versions installed with the app ({list}), {}", mode_text(ctx)),
        (None, Some(ran)) => format!(
            "released versions that are not the ones the app ran: the links are at {list}, while the app ran {ran} (the interpreter that ran it is not on this machine, so its files cannot be read), {}",
            mode_text(ctx)
        ),
        (None, None) => format!(
            "a set of released versions that may differ from the app's ({list}), {}",
            mode_text(ctx)
        ),
    }
}

/// The app's own handlers and the Socket.IO calls in them, from its source: each with its
/// line, what the traffic showed of it, and, once, the chain every emit goes down.
fn your_code(
    ctx: &Ctx,
    scan: Option<&Scan>,
    shown: &mut Shown,
    lines: &mut Vec<(String, Vec<StepLink>)>,
) -> Option<Section> {
    let scan = scan?;
    if scan.functions.is_empty() {
        return None;
    }
    // Only the followed client's events are all in the report's input.
    let received = |event: &str, nsp: &str| {
        ctx.evs
            .iter()
            .filter(|e| {
                e.stage == Stage::SioPacket
                    && e.dir == Some(Dir::C2S)
                    && e.str("event") == Some(event)
                    && (nsp == "?" || e.str("nsp").unwrap_or("/") == nsp)
            })
            .count()
    };
    let mut items = Vec::new();
    // Each kind of call the app makes, in the order first met, with whether it is a method.
    let mut kinds: Vec<(CallKind, Form)> = Vec::new();
    for f in &scan.functions {
        let what = match &f.kind {
            crate::report::pysource::Kind::Handler => {
                let n = match f.event.as_str() {
                    "connect" | "disconnect" => String::new(),
                    ev => match received(ev, &f.nsp) {
                        0 => "; the client followed here did not send it".to_string(),
                        1 => "; the client followed here sent it once".to_string(),
                        n => format!("; the client followed here sent it {n} times"),
                    },
                };
                format!("handles \"{}\" on {}{n}", f.event, f.nsp)
            }
            crate::report::pysource::Kind::Route(route) => format!("the HTTP route {route}"),
            crate::report::pysource::Kind::Task { line, .. } => {
                if !kinds.iter().any(|(k, _)| *k == CallKind::Task) {
                    kinds.push((CallKind::Task, Form::PLAIN));
                }
                format!("a background task, started at line {line}")
            }
        };
        let mut item = vec![
            c(f.name.clone()),
            t(format!(" ({}, line {}): {what}.", f.file, f.def_line)),
        ];
        let calls: Vec<Vec<Inline>> = f
            .calls
            .iter()
            .filter_map(|call| {
                let kind = CallKind::in_function(call, f)?;
                // An emit kind once for each way in the app uses (emit or send, the
                // module-level function or the SocketIO object's method).
                let form = Form::of(call);
                let emits = matches!(kind, CallKind::EmitTo | CallKind::EmitAll);
                if !kinds
                    .iter()
                    .any(|(k, f)| *k == kind && (!emits || *f == form))
                {
                    kinds.push((kind, form));
                }
                let what = match kind {
                    CallKind::Ack => "the acknowledgement".to_string(),
                    CallKind::Refuse => "the refusal".to_string(),
                    _ => call.reach().map(|r| format!("to {r}")).unwrap_or_default(),
                };
                Some(vec![
                    t(format!("line {}, ", call.line)),
                    c(call.text.lines().next().unwrap_or("").trim()),
                    t(match (&call.nested, what.is_empty()) {
                        (Some(n), true) => format!(", inside {n}, a function the handler defines"),
                        (Some(n), false) => {
                            format!(": {what}, inside {n}, a function the handler defines")
                        }
                        (None, true) => String::new(),
                        (None, false) => format!(": {what}"),
                    }),
                ])
            })
            .collect();
        for (i, call) in calls.into_iter().enumerate() {
            item.push(t(if i == 0 {
                " Its Socket.IO calls: "
            } else {
                "; "
            }));
            item.extend(call);
        }
        if item.len() > 2 {
            item.push(t("."));
        }
        items.push(item);
    }
    let mut blocks = vec![
        text_para("The functions of the app that Flask-SocketIO calls, found in its source, and the Socket.IO calls each makes:"),
        Block::List { ordered: false, items },
    ];
    // Then each kind of call once: what it does and the library lines it goes through,
    // without those the path above already listed. The app's own start first.
    let mut entries: Vec<(String, String, Vec<StepLink>)> = Vec::new();
    if let Some((file, line, text)) = &scan.socketio {
        if let Some(e) = super::calls::socketio_links(ctx, text) {
            entries.push((
                format!(
                    "{} ({file}, line {line})",
                    text.lines().next().unwrap_or("").trim()
                ),
                e.summary,
                e.links,
            ));
        }
    }
    if let Some((file, line, text)) = &scan.run {
        if let Some(e) = ctx.entry("entry:run") {
            entries.push((
                format!(
                    "{} ({file}, line {line})",
                    text.lines().next().unwrap_or("").trim()
                ),
                super::calls::run_text(ctx.stack.mode),
                e.links,
            ));
        }
    }
    // The connect and disconnect handlers: called from the CONNECT packet (inline, before the
    // answer) and when the client leaves the namespace.
    for (event, what) in [
        ("connect", "python-socketio calls it inline, before it answers, in the thread that takes the client's CONNECT for the namespace from the transport (the connection's thread on a WebSocket, the POST's on long-polling): its auth argument is the CONNECT's data; raising ConnectionRefusedError or returning False refuses the connection, anything else accepts it."),
        ("disconnect", "python-socketio calls it when the client leaves the namespace: its DISCONNECT packet, or the end of its Engine.IO session (a closed WebSocket, a ping timeout, the server's own disconnect()); python-socketio 5.12 and later pass the reason."),
    ] {
        for f in scan
            .functions
            .iter()
            .filter(|f| f.kind == crate::report::pysource::Kind::Handler && f.event == event)
        {
        let class = f.name.contains('.');
        let links = match (event, class) {
            ("connect", false) => ctx.links(Stage::SioDispatch, Some(Kind::Connect)),
            ("connect", true) => ctx.links(Stage::SioDispatch, Some(Kind::NamespaceConnect)),
            _ => ctx.links(Stage::SioPacket, Some(Kind::Disconnect)),
        };
        entries.push((
            format!(
                "Your {event} handler {} ({}, line {}) on {}",
                f.name, f.file, f.def_line, f.nsp
            ),
            what.to_string(),
            links,
        ));
        }
    }
    // How a decorated handler is registered, and found again when its event comes: shown on
    // an event's handler (a connect handler is called from the CONNECT instead).
    let decorated = |f: &&crate::report::pysource::Function| {
        f.kind == crate::report::pysource::Kind::Handler && !f.name.contains('.')
    };
    let example = scan
        .functions
        .iter()
        .filter(decorated)
        .find(|f| !matches!(f.event.as_str(), "connect" | "disconnect"))
        .or_else(|| scan.functions.iter().find(decorated));
    if let Some(f) = example {
        if let Some(e) = ctx.entry("entry:on") {
            entries.push((
                format!(
                    "@socketio.on(...), as on {} ({}, line {})",
                    f.name, f.file, f.first_line
                ),
                "At import time the decorator wraps the function and stores it under its namespace and event name; when an EVENT comes, python-socketio looks it up there and calls it.".into(),
                e.links,
            ));
        }
    }
    // An HTTP route: Flask reaches it through the Socket.IO middleware, which lets every path
    // but /socket.io/ through.
    if let Some(f) = scan
        .functions
        .iter()
        .find(|f| matches!(f.kind, crate::report::pysource::Kind::Route(_)))
    {
        if let (crate::report::pysource::Kind::Route(route), Some(e)) =
            (&f.kind, ctx.entry("entry:route"))
        {
            entries.push((
                format!("@app.route(\"{route}\"), as on {} ({}, line {})", f.name, f.file, f.first_line),
                "At import time Flask maps the URL rule to the function; a request for it passes python-engineio's middleware (which takes only /socket.io/ paths) to Flask's own wsgi_app, which dispatches the matched rule.".into(),
                e.links,
            ));
        }
    }
    if let Some(f) = scan
        .functions
        .iter()
        .find(|f| f.kind == crate::report::pysource::Kind::Handler && f.name.contains('.'))
    {
        let class = f.name.split('.').next().unwrap_or("?");
        let registered = scan
            .namespaces
            .iter()
            .find(|(c, ..)| c == class)
            .map(|(_, file, line, text)| {
                format!(
                    ", registered at {file}, line {line}: {}",
                    text.lines().next().unwrap_or("").trim()
                )
            })
            .unwrap_or_default();
        entries.push((
            format!("The Namespace class {class}, on {}{registered}", f.nsp),
            "socketio.on_namespace registers the object for its namespace; its on_<event> methods are handlers too: python-socketio finds no decorated handler for the event, gives it to the Namespace object registered for the namespace, and Flask-SocketIO's Namespace calls the method of that name inside a request context, as for a decorated handler. An event's method runs on a thread of its own, as below; the class's on_connect runs inline, as its connect handler's entry shows.".into(),
            ctx.entry("entry:namespace")
                .map(|e| e.links)
                .unwrap_or_default()
                .into_iter()
                .chain(ctx.links(Stage::SioDispatch, Some(Kind::Namespace)))
                .collect(),
        ));
    }
    for (kind, form) in kinds {
        let title = kind.title_for(form);
        let emits = matches!(kind, CallKind::EmitAll | CallKind::EmitTo);
        let what = if form.own_namespace && emits {
            "A Namespace class's self.emit (or self.send) calls the SocketIO object's emit (or send) with the class's namespace: room= (not to=) picks the room or one client's sid, and without it the event goes to every client of the namespace, the sender too; from there it goes the way of the SocketIO object's emit.".to_string()
        } else if form.send && emits {
            "send() is an emit of the event \"message\" (\"json\" with json=True): Flask-SocketIO's send takes the same to=, broadcast and include_self arguments and calls the SocketIO object's send, which emits; from there it goes the way of the emit above.".to_string()
        } else {
            kind.what().to_string()
        };
        entries.push((title.to_string(), what, kind.links(ctx, form)));
    }
    for (title, what, links) in entries {
        let chain = with_gaps(links, |l| shown.insert(l));
        let fresh: Vec<StepLink> = chain.iter().filter_map(Item::link).cloned().collect();
        blocks.push(para(vec![b(format!("{title}.")), t(format!(" {what}"))]));
        if fresh.is_empty() {
            blocks.push(text_para("Its library code is all in the steps above."));
        } else {
            blocks.push(text_para("Its library code, in the order it runs:"));
            blocks.push(link_chain(&chain));
            lines.push((title, fresh));
        }
    }
    Some(Section {
        title: "Your handlers and calls".into(),
        blocks,
    })
}

/// The student's handler for the event, from the app's source: its `def` and where it is.
fn handler_of(scan: Option<&Scan>, event: &str, nsp: &str) -> Option<String> {
    let f = scan?.functions.iter().find(|f| {
        f.kind == crate::report::pysource::Kind::Handler
            && f.event == event
            && (f.nsp == nsp || f.nsp == "?")
    })?;
    Some(format!("{} ({}, line {})", f.name, f.file, f.def_line))
}

pub fn build(input: &Input, conn: u64, opts: &Options) -> Doc {
    let ctx = context(input, conn, opts);
    // The app by its file when its source is given, else what the report is made from.
    let app = opts
        .app
        .and_then(|a| a.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .or_else(|| opts.title.map(str::to_string))
        .unwrap_or_else(|| opts.name.to_string());
    // The app's source, read once.
    let scan = opts.app.and_then(|a| crate::report::pysource::scan(a).ok());
    let first_event = ctx.of(Stage::SioPacket).find(|e| {
        e.dir == Some(Dir::C2S) && matches!(e.str("type"), Some("EVENT" | "BINARY_EVENT"))
    });
    let handler = first_event.and_then(|e| {
        handler_of(
            scan.as_ref(),
            e.str("event").unwrap_or(""),
            e.str("nsp").unwrap_or("/"),
        )
    });
    let steps = path(
        &ctx,
        handler.as_deref(),
        input.watched.as_ref().and_then(|w| w.listens.as_deref()),
    );
    let mut doc = Doc {
        title: format!("How Flask-SocketIO carries the live features of {app}"),
        intro: vec![text_para(format!(
            "This report follows one client of {app} through the stack that serves it, from the moment its TCP connection is accepted to the bytes that carry the answer back. Each step says what the traffic showed, which {} of the server runs it, and the Python source lines that do it, in the order they run; a line listed once is not listed again (a chain marks where it passes through lines listed above), and what each line does is in \"The lines, one by one\" at the end. The links point at {}.",
            runners(&ctx).unit,
            versions(&ctx)
        )), text_para(format!("The client followed is the first in the traffic that sent the server an event over a WebSocket (without one, the first that spoke Engine.IO). {}", followed(&ctx, input)))],
        sections: Vec::new(),
    };
    doc.sections.push(Section {
        title: "Words used here".into(),
        blocks: vec![Block::List {
            ordered: false,
            items: glossary(ctx.stack.mode)
                .into_iter()
                .map(|(word, meaning)| vec![b(word), t(format!(": {meaning}"))])
                .collect(),
        }],
    });
    let mut shown = Shown::default();
    // Every chain's lines with what each does, for the last section.
    let mut lines: Vec<(String, Vec<StepLink>)> = Vec::new();
    let mut explained: HashMap<Stage, usize> = HashMap::new();
    let mut handover: Vec<StepLink> = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let mut blocks = Vec::new();
        // The stage's explanation once, where it first matters; later steps point to it.
        match explained.get(&s.stage) {
            None => {
                explained.insert(s.stage, i + 1);
                blocks.extend(how(s.stage));
            }
            Some(at) => blocks.push(text_para(format!(
                "How {} work is explained in Step {at}.",
                match s.stage {
                    Stage::SioPacket => "Socket.IO packets",
                    Stage::EioPacket => "Engine.IO packets",
                    Stage::WsFrame => "WebSocket frames",
                    Stage::HttpRequest => "HTTP requests",
                    _ => "these",
                }
            ))),
        }
        blocks.push(para(vec![b("In this trace:"), t(format!(" {}", s.shows))]));
        blocks.push(para(vec![b("Who runs it:"), t(format!(" {}", s.runner))]));
        let mut all = Vec::new();
        for (stage, kind) in &s.also {
            all.extend(ctx.links(*stage, *kind));
        }
        all.extend(ctx.links(s.stage, s.kind.or(s.ev.kind)));
        // Where the next step's thread takes over (it waits in python-engineio's loop for
        // the message this step's reader queued), those lines go to that step, after the
        // wait that calls them.
        if !handover.is_empty() {
            let at = all
                .iter()
                .position(|l| l.step.symbol.ends_with("websocket_wait"))
                .map_or(0, |i| i + 1);
            all.splice(at..at, std::mem::take(&mut handover));
        }
        for (stage, kind) in &s.then {
            let (theirs, ours): (Vec<StepLink>, Vec<StepLink>) =
                ctx.links(*stage, *kind).into_iter().partition(is_handover);
            all.extend(ours);
            // The message chain lists them as the reader's hand-off returns (receive, then
            // wait); the connection's thread calls them the other way round.
            handover.extend(theirs.into_iter().rev());
        }
        let chain = with_gaps(all, |l| shown.insert(l));
        let fresh: Vec<StepLink> = chain.iter().filter_map(Item::link).cloned().collect();
        let title = format!("Step {}. {}", i + 1, s.title);
        if fresh.is_empty() {
            blocks.push(text_para("The code is the same as in the steps above."));
        } else {
            blocks.push(text_para("The code, in the order it runs:"));
            blocks.push(link_chain(&chain));
            lines.push((title.clone(), fresh));
        }
        doc.sections.push(Section { title, blocks });
    }
    if let Some(section) = your_code(&ctx, scan.as_ref(), &mut shown, &mut lines) {
        doc.sections.push(section);
    }
    if !input.diagnoses.is_empty() {
        // One item per finding, however many clients showed it.
        let mut seen: Vec<(&str, usize)> = Vec::new();
        for d in &input.diagnoses {
            match seen.iter_mut().find(|(s, _)| *s == d.summary) {
                Some((_, n)) => *n += 1,
                None => seen.push((&d.summary, 1)),
            }
        }
        let items: Vec<Vec<Inline>> = seen
            .iter()
            .filter_map(|(summary, n)| input.diagnoses.iter().find(|d| d.summary == *summary).map(|d| (d, *n)))
            .map(|(d, n)| {
                let mut item = vec![t(d.summary.clone())];
                if n > 1 {
                    item.push(t(format!(" ({n} times.)")));
                }
                // The handler that raised, where the source shows it.
                // Unless the summary names the line that raised (a watched app's).
                let named = d
                    .summary
                    .split(" while handling")
                    .next()
                    .is_some_and(|head| head.contains(" at "));
                let raised_in = (d.str("cause") == Some("handler-raised") && !named)
                    .then(|| d.summary.strip_prefix("The handler ")?.split_once(" raised"))
                    .flatten()
                    .and_then(|(name, _)| {
                        scan.as_ref()?.functions.iter().find(|f| f.name == name)
                    });
                if let Some(f) = raised_in {
                    item.push(t(format!(
                        " In the app's code: {}, defined at {} line {} (the traceback on the server's console names the line that raised).",
                        f.name, f.file, f.def_line
                    )));
                }
                if let Some(reached) = reached_other_times(input, d) {
                    item.push(t(format!(" The same line reached {reached} at other times in this traffic, so the emit works; it had no one to reach here.")));
                }
                if let Some((line, text)) = scan.as_ref().and_then(|s| deciding_call(s, d)) {
                    item.push(t(format!(" In the app's code, line {line}: ")));
                    item.push(c(text.clone()));
                    item.push(t("."));
                    let generic = d.summary.contains("Connection refused by server");
                    let with_message = text.contains("ConnectionRefusedError(") && !text.contains("ConnectionRefusedError()");
                    if generic && with_message {
                        item.push(t(" The client got python-socketio's generic message, not this one: the ConnectionRefusedError raised is Python's built-in exception of that name, which python-socketio catches apart and answers with \"Connection refused by server\". Flask-SocketIO's own (from flask_socketio import ConnectionRefusedError) carries its message to the client."));
                    }
                }
                let fix: String = d
                    .str("fix")
                    .unwrap_or("")
                    .split_inclusive(". ")
                    .filter(|s| !s.contains("dispel"))
                    .collect();
                if !fix.trim().is_empty() {
                    item.extend([t(" "), b("Fix:"), t(format!(" {}", fix.trim()))]);
                }
                item
            })
            .collect();
        doc.sections.push(Section {
            title: "What went wrong, or was refused".into(),
            blocks: vec![
                text_para("Found in the whole traffic, every client's and not only the one followed above:"),
                Block::List {
                    ordered: false,
                    items,
                },
            ],
        });
    }
    doc.sections.push(Section {
        title: "Sources and licenses".into(),
        blocks: vec![text_para(format!(
            "The code linked above belongs to its projects and is quoted here by reference, each link at the tag of the release: {}. The protocols are RFC 9293 (TCP), RFC 9112 (HTTP/1.1), RFC 6455 (WebSocket), RFC 7692 (permessage-deflate), and the Engine.IO v4 and Socket.IO v5 protocol documents.",
            licenses(lines.iter().flat_map(|(_, l)| l.iter().map(|l| l.step.package.as_str())))
        ))],
    });
    if !lines.is_empty() {
        let mut blocks = vec![text_para(
            "Each line linked in the chains above, with what it does there, in the order of the chains.",
        )];
        for (title, links) in lines {
            blocks.push(Block::Heading(title));
            blocks.push(link_list(&links));
        }
        doc.sections.push(Section {
            title: "The lines, one by one".into(),
            blocks,
        });
    }
    doc
}

/// For an emit that reached nobody: how many clients the same line of the app reached at
/// other times ("2 clients"), when it did.
fn reached_other_times(input: &Input, d: &Ev) -> Option<String> {
    if d.str("cause") != Some("emit-reached-nobody") {
        return None;
    }
    let line = d
        .summary
        .split_once(" at ")
        .and_then(|(_, rest)| rest.split_once(" reached no client"))
        .map(|(line, _)| line)?;
    // The app's own sites hold every connection's calls, the report's events only the
    // followed client's.
    let reached = input
        .sites
        .list
        .iter()
        .filter(|s| s.first.stage == Stage::SioEmit && s.first.str("line") == Some(line))
        .map(|s| s.reached.len())
        .max()
        .filter(|&n| n > 0)?;
    Some(match reached {
        1 => "a client".to_string(),
        n => format!("{n} clients"),
    })
}

/// The license of each package the document links, grouped: "Flask-SocketIO, python-socketio
/// and python-engineio (MIT License), Werkzeug (BSD-3-Clause) and ...".
fn licenses<'a>(packages: impl Iterator<Item = &'a str>) -> String {
    const KNOWN: &[(&str, &str, &str)] = &[
        ("flask-socketio", "Flask-SocketIO", "MIT License"),
        ("python-socketio", "python-socketio", "MIT License"),
        ("python-engineio", "python-engineio", "MIT License"),
        ("flask", "Flask", "BSD-3-Clause"),
        ("werkzeug", "Werkzeug", "BSD-3-Clause"),
        ("simple-websocket", "simple-websocket", "MIT License"),
        ("wsproto", "wsproto", "MIT License"),
        ("h11", "h11", "MIT License"),
        ("eventlet", "eventlet", "MIT License"),
        ("gevent", "gevent", "MIT License"),
        ("gevent-websocket", "gevent-websocket", "Apache License 2.0"),
        ("cpython", "the Python standard library", "PSF License"),
    ];
    let used: HashSet<String> = packages.map(str::to_ascii_lowercase).collect();
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for (key, name, license) in KNOWN {
        if !used.contains(*key) {
            continue;
        }
        match groups.iter_mut().find(|(l, _)| l == license) {
            Some((_, names)) => names.push(name),
            None => groups.push((license, vec![name])),
        }
    }
    let and = |items: &[String]| match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    };
    let parts: Vec<String> = groups
        .iter()
        .map(|(license, names)| {
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            format!("{} ({license})", and(&names))
        })
        .collect();
    and(&parts)
}

/// The app's own statement behind a diagnosis, from its source: the `raise
/// ConnectionRefusedError` of a refused connection, the `disconnect()` that ended one.
fn deciding_call(scan: &crate::report::pysource::Scan, d: &Ev) -> Option<(usize, String)> {
    let cause = d.str("cause")?;
    let wanted = |call: &crate::report::pysource::Call| match cause {
        "connection-refused" => {
            call.text.contains("ConnectionRefusedError") || call.text.trim() == "return False"
        }
        "server-disconnected" => call.name == "disconnect",
        _ => false,
    };
    // The namespace the diagnosis names, when it names one.
    let nsp = d
        .summary
        .split_once("namespace ")
        .and_then(|(_, r)| r.split([' ', ',', ':']).next());
    let calls = |f: &crate::report::pysource::Function| {
        f.calls
            .iter()
            .filter(|c| wanted(c))
            .map(|c| {
                (
                    c.line,
                    c.text.lines().next().unwrap_or("").trim().to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    let found: Vec<(usize, String)> = scan
        .functions
        .iter()
        .filter(|f| cause != "connection-refused" || f.event == "connect")
        .filter(|f| nsp.is_none_or(|n| f.nsp == n || f.nsp == "?"))
        .flat_map(calls)
        .collect();
    // Only when the source says which line it was.
    match found.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}
