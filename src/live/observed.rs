//! What `dispel watch`'s tracer reports from inside the app (`src/watch/sitecustomize.py`),
//! turned into trace events: each handler call (`sio.dispatch`), each Socket.IO call the app's
//! code makes (`sio.emit`, `sio.room`) and python-socketio's own answers (an acknowledgement, a
//! CONNECT, a refusal: `sio.emit`), every one with the chain of calls observed for it
//! (`observed`: outermost first, at the installed versions' real lines, with permalinks).
//!
//! The tracer knows Engine.IO session ids, not dispel's connection numbers: the events carry
//! `eio_sid` (and `recipient_sids`), and [`Joiner`], in the trace writer, puts each on the
//! connection that carries its session, from the sids the taps decoded.

use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};

use crate::flow::{Diagnoser, Inference};
use crate::links::observed_link;
use crate::stage::Kind;
use crate::trace::{Dir, Event, Processor, Stage};

/// What the tracer said of the app when it started: versions, where each release's source
/// is, the async mode.
#[derive(Debug, Default, Clone)]
pub struct AppInfo {
    pub python: Option<String>,
    pub async_mode: Option<String>,
    /// The folder the app's files are named from.
    pub app_dir: Option<String>,
    /// The app's interpreter (`sys.executable`).
    pub executable: Option<String>,
    pub versions: Vec<(String, String)>,
    /// Project name (lower case) -> its metadata URLs as (label, url).
    pub urls: HashMap<String, Vec<(String, String)>>,
}

impl AppInfo {
    /// Reads the tracer's `hello`.
    pub fn from_hello(msg: &Value) -> AppInfo {
        let mut info = AppInfo {
            python: msg["python"].as_str().map(str::to_string),
            async_mode: msg["async_mode"].as_str().map(str::to_string),
            app_dir: msg["app_dir"].as_str().map(str::to_string),
            executable: msg["executable"].as_str().map(str::to_string),
            ..AppInfo::default()
        };
        if let Some(v) = msg["versions"].as_object() {
            for (name, ver) in v {
                if let Some(ver) = ver.as_str() {
                    info.versions.push((name.clone(), ver.to_string()));
                }
            }
        }
        if let Some(u) = msg["urls"].as_object() {
            for (name, list) in u {
                let pairs = list
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .filter_map(|entry| {
                        let (label, url) = entry.split_once(',')?;
                        Some((label.trim().to_ascii_lowercase(), url.trim().to_string()))
                    })
                    .collect();
                info.urls.insert(name.to_ascii_lowercase(), pairs);
            }
        }
        info
    }

    /// The trace's `app` event: what the app runs, and where its source is (`source`, as
    /// `dispel watch` found it from the command), for a report made from the trace later.
    /// `listens`: where the app's own server listens, behind dispel.
    pub fn event(
        &self,
        t: f64,
        name: &str,
        source: Option<&std::path::Path>,
        listens: std::net::SocketAddr,
    ) -> Event {
        let versions: serde_json::Map<String, Value> = self
            .versions
            .iter()
            .map(|(n, v)| (n.clone(), Value::from(v.as_str())))
            .collect();
        Event::new(
            Stage::App,
            t,
            None,
            None,
            format!("{name}: {}", self.describe()),
        )
        .with("name", name)
        .with("python", self.python.clone())
        .with("async_mode", self.async_mode.clone())
        .with("versions", Value::Object(versions))
        .with("executable", self.executable.clone())
        .with("app_dir", self.app_dir.clone())
        .with("listens", listens.to_string())
        .with("source", source.map(|p| p.to_string_lossy().into_owned()))
    }

    /// One line for the terminal.
    pub fn describe(&self) -> String {
        let versions: Vec<String> = self
            .versions
            .iter()
            .map(|(n, v)| format!("{n} {v}"))
            .collect();
        format!(
            "the app runs {} on Python {}, async mode {}",
            versions.join(", "),
            self.python.as_deref().unwrap_or("?"),
            self.async_mode.as_deref().unwrap_or("?")
        )
    }
}

/// The chains a tracer sent, by number: each sent once, named by the events after it.
pub type Chains = HashMap<u64, Vec<Value>>;

/// A chain the tracer sent: each frame with its permalink.
pub fn chain(frames: &Value, info: &AppInfo) -> Vec<Value> {
    frames
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            let package = f["package"].as_str();
            let version = f["version"].as_str().unwrap_or("");
            let path = f["path"].as_str().unwrap_or("");
            let line = f["line"]
                .as_u64()
                .and_then(|l| u32::try_from(l).ok())
                .unwrap_or(0);
            let url = package.and_then(|p| {
                let urls = info
                    .urls
                    .get(&p.to_ascii_lowercase())
                    .cloned()
                    .unwrap_or_default();
                observed_link(p, version, path, line, &urls)
            });
            json!({
                "package": package,
                "version": package.map(|_| version),
                "path": path,
                "line": line,
                "function": f["function"],
                "url": url,
            })
        })
        .collect()
}

/// The app's own line in a chain: the innermost frame of the app's files.
fn app_line(frames: &[Value]) -> Option<String> {
    frames
        .iter()
        .rev()
        .find(|f| f["package"].is_null())
        .map(|f| format!("{}:{}", f["path"].as_str().unwrap_or("?"), f["line"]))
}

fn brief(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

/// One tracer message as a trace event; `None` for what is not an event (`hello`...).
pub fn event(msg: &Value, t: f64, chains: &Chains) -> Option<Event> {
    match msg["event"].as_str()? {
        "handler" => Some(handler(msg, t, chains)),
        "raised" => Some(raised(msg, t, chains)),
        "call" => Some(call(msg, t, chains)),
        "answer" => Some(answer(msg, t, chains)),
        "mq" => mq(msg, t, chains),
        _ => None,
    }
}

/// A message-queue hop inside the app: what its manager published (with the chain from the
/// app's call), or what its listener did with another process's message (and the sessions it
/// reached, placed on their connections by the joiner). The RESP bytes are not shown: the
/// Redis connection is the app's, not relayed through dispel.
fn mq(msg: &Value, t: f64, chains: &Chains) -> Option<Event> {
    let m = crate::mq::parse(msg["message"].to_string().as_bytes()).ok()?;
    let channel = msg["channel"].as_str().unwrap_or("?");
    let publish = msg["dir"] == "publish";
    let (stage, summary) = if publish {
        (
            Stage::MqPublish,
            format!("PUBLISH {channel}: {}", m.summary()),
        )
    } else {
        (
            Stage::MqMessage,
            format!("message on {channel}: {}", m.summary()),
        )
    };
    let mut e = crate::flow::redis::message_event(stage, t, None, None, channel, &m, b"", summary);
    e.fields.remove("resp");
    e = e.with("own", false);
    if publish {
        let frames = named(&msg["chain"], chains);
        if !frames.is_empty() {
            e = e.with("observed", frames);
        }
    } else {
        e = e.with("recipient_sids", msg["recipients"].clone());
    }
    Some(e)
}

/// The chain an event names (by number).
fn named(v: &Value, chains: &Chains) -> Vec<Value> {
    v.as_u64()
        .and_then(|n| chains.get(&n))
        .cloned()
        .unwrap_or_default()
}

fn handler(msg: &Value, t: f64, chains: &Chains) -> Event {
    let frames = named(&msg["chain"], chains);
    let name = msg["handler"].as_str().unwrap_or("?");
    let message = msg["message"].as_str().unwrap_or("?");
    let nsp = msg["namespace"].as_str().unwrap_or("/");
    let at = app_line(&frames).unwrap_or_default();
    let summary = format!("{message:?} on {nsp} -> {name} ({at})");
    let mut e = Event::new(Stage::SioDispatch, t, None, None, summary)
        .with("event", message)
        .with("nsp", nsp)
        .with("handler", name)
        .with("sio_sid", msg["sid"].clone())
        .with("eio_sid", msg["eio_sid"].clone())
        .with("observed", Value::Array(frames))
        .kind(if message == "connect" && name.contains('.') {
            // A Namespace class's on_connect: inline, through the class.
            Kind::NamespaceConnect
        } else if message == "connect" {
            // Called inline from the CONNECT, not in a task of its own.
            Kind::Connect
        } else if name.contains('.') {
            // `Lobby.on_ping`: a method of a Namespace class.
            Kind::Namespace
        } else {
            Kind::Event
        });
    e.fields.insert("thread", msg["thread"].clone());
    e
}

/// A handler that raised: for a connect handler's `ConnectionRefusedError`, the refusal.
fn raised(msg: &Value, t: f64, chains: &Chains) -> Event {
    let frames = named(&msg["chain"], chains);
    let name = msg["handler"].as_str().unwrap_or("?");
    let what = msg["raised"].as_str().unwrap_or("an exception");
    let args: Vec<String> = msg["args"]
        .as_array()
        .into_iter()
        .flatten()
        .map(brief)
        .collect();
    let refused = what == "ConnectionRefusedError";
    // The app's line that raised (`chat.py:143`): the handler's file, the traceback's line.
    let line = msg["at"].as_u64().and_then(|at| {
        let file = frames.iter().rev().find(|f| f["package"].is_null())?;
        Some(format!("{}:{at}", file["path"].as_str()?))
    });
    let place = line
        .as_ref()
        .map(|l| format!(" at {l}"))
        .unwrap_or_default();
    let summary = if refused {
        format!(
            "{name} raised ConnectionRefusedError({}){place}: the connection is refused",
            args.join(", ")
        )
    } else {
        format!(
            "{name} raised {what}({}){place}: nothing more follows from this event",
            args.join(", ")
        )
    };
    Event::new(Stage::Error, t, None, None, summary)
        .with(
            "rule",
            if refused {
                "a connect handler refused the connection"
            } else {
                "a handler raised"
            },
        )
        .with("where", "sio.dispatch")
        .with("event", msg["message"].clone())
        .with("nsp", msg["namespace"].clone())
        .with("handler", name)
        .with("raised", what)
        .with("refused", refused)
        .with("line", line)
        .with("eio_sid", msg["eio_sid"].clone())
        .with("observed", Value::Array(frames))
}

fn call(msg: &Value, t: f64, chains: &Chains) -> Event {
    let kind = msg["call"].as_str().unwrap_or("?");
    let mut args: Vec<Value> = msg["args"].as_array().cloned().unwrap_or_default();
    // A method's first argument is the SocketIO object.
    if kind.starts_with("SocketIO.") && !args.is_empty() {
        args.remove(0);
    }
    let kwargs = msg["kwargs"].as_object().cloned().unwrap_or_default();
    let kw = |k: &str| kwargs.get(k).cloned().unwrap_or(Value::Null);
    let mut frames = named(&msg["chain"], chains);
    let at = app_line(&frames).unwrap_or_default();
    frames.extend(named(&msg["below"], chains));
    let nsp = kw("namespace")
        .as_str()
        .map(str::to_string)
        .or_else(|| msg["namespace"].as_str().map(str::to_string))
        .unwrap_or_else(|| "/".into());
    let in_handler = !msg["sid"].is_null();
    let (stage, summary, mut fields) = match kind {
        "join_room" | "leave_room" | "close_room" => {
            let room = args.first().cloned().unwrap_or(Value::Null);
            let action = kind.trim_end_matches("_room");
            let sid = kw("sid");
            let who = if sid.is_null() {
                "the sender".to_string()
            } else {
                format!("sid {sid}")
            };
            let summary = match action {
                "close" => format!("close room {room} in {nsp} ({at})"),
                _ => format!("{action} room {room} in {nsp}: {who} ({at})"),
            };
            let mut m: Vec<(&'static str, Value)> = Vec::new();
            m.push(("action", action.into()));
            m.push(("room", room));
            // Whose membership changed: the sid given, or the client being handled.
            m.push((
                "sid",
                if sid.is_null() {
                    msg["sid"].clone()
                } else {
                    sid
                },
            ));
            (Stage::SioRoom, summary, m)
        }
        "disconnect" => {
            let mut m: Vec<(&'static str, Value)> = Vec::new();
            m.push(("silent", kw("silent")));
            (
                Stage::SioEmit,
                format!("disconnect the client from {nsp} ({at})"),
                m,
            )
        }
        _ => {
            let send = kind.ends_with("send");
            let (event, data) = if send {
                (
                    "message".to_string(),
                    args.first().cloned().unwrap_or(Value::Null),
                )
            } else {
                (
                    args.first()
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_string(),
                    Value::Array(args.iter().skip(1).cloned().collect()),
                )
            };
            let to = match (kw("to"), kw("room")) {
                (Value::Null, r) => r,
                (to, _) => to,
            };
            let broadcast = kw("broadcast") == Value::Bool(true);
            // Flask-SocketIO's emit inside a handler goes to the sender unless told otherwise;
            // socketio.emit (the method) goes to everyone.
            let (whom, reach) = if !to.is_null() && to == msg["sid"] {
                ("to the sender (to=request.sid)".to_string(), "sender")
            } else if !to.is_null() {
                // A room, or a client's sid (python-socketio puts each client in a room of its
                // own): the same path either way.
                (format!("to {to}"), "room")
            } else if broadcast || kind.starts_with("SocketIO.") || !in_handler {
                (format!("to everyone in {nsp}"), "everyone")
            } else {
                ("to the sender only".to_string(), "sender")
            };
            let mut extra = String::new();
            if kw("include_self") == Value::Bool(false) {
                extra.push_str(", include_self=False");
            }
            if !kw("skip_sid").is_null() {
                extra.push_str(", skip_sid");
            }
            if !kw("callback").is_null() {
                extra.push_str(", with a callback");
            }
            let place = if in_handler {
                ""
            } else {
                ", outside any handler"
            };
            let summary = format!("{kind} {event:?} {whom}{extra} ({at}{place})");
            let m: Vec<(&'static str, Value)> = vec![
                ("event", event.into()),
                ("data", data),
                ("to", to),
                ("broadcast", broadcast.into()),
                ("reach", reach.into()),
                ("include_self", kw("include_self")),
                ("skip_sid", kw("skip_sid")),
                ("callback", (!kw("callback").is_null()).into()),
            ];
            (Stage::SioEmit, summary, m)
        }
    };
    fields.push(("call", kind.into()));
    fields.push(("nsp", nsp.into()));
    fields.push(("line", at.into()));
    fields.push(("sio_sid", msg["sid"].clone()));
    fields.push(("eio_sid", msg["eio_sid"].clone()));
    fields.push(("recipient_sids", msg["recipients"].clone()));
    fields.push(("thread", msg["thread"].clone()));
    fields.push(("observed", Value::Array(frames)));
    // To one client (the sender's own sid is a room) or a room: python-socketio's room path.
    let reach_room = fields
        .iter()
        .any(|(k, v)| *k == "reach" && matches!(v.as_str(), Some("room" | "sender")));
    let mut e = Event::new(stage, t, None, None, summary).kind(match (stage, kind) {
        (Stage::SioRoom, "join_room") => Kind::Join,
        (Stage::SioRoom, "leave_room") => Kind::Leave,
        (Stage::SioRoom, _) => Kind::CloseRoom,
        (_, "disconnect") => Kind::Disconnect,
        // The way in: the module-level function or the SocketIO object's method, emit or
        // send; then to a room (or one client) or to everyone.
        (_, call) => Kind::of_emit(call.contains('.'), call.ends_with("send"), reach_room),
    });
    for (k, v) in fields {
        e.fields.insert(k, v);
    }
    e
}

fn answer(msg: &Value, t: f64, chains: &Chains) -> Event {
    let kind = msg["answer"].as_str().unwrap_or("?");
    let mut frames = named(&msg["chain"], chains);
    frames.extend(named(&msg["below"], chains));
    let nsp = msg["namespace"].as_str().unwrap_or("/");
    let summary = match kind {
        "ack" => format!(
            "python-socketio acknowledges id {} on {nsp} with {}",
            msg["id"],
            brief(&msg["data"])
        ),
        "connect" => format!("python-socketio accepts the connection to {nsp}"),
        "connect_error" => format!(
            "python-socketio refuses the connection to {nsp}: {}",
            brief(&msg["data"])
        ),
        other => format!("python-socketio sends {other} on {nsp}"),
    };
    Event::new(Stage::SioEmit, t, None, None, summary)
        .with("call", kind)
        .with("by", "python-socketio")
        .with("nsp", nsp)
        .with("id", msg["id"].clone())
        .with("data", msg["data"].clone())
        .with("eio_sid", msg["eio_sid"].clone())
        .with("thread", msg["thread"].clone())
        .with("observed", Value::Array(frames))
        .kind(match kind {
            "ack" => Kind::AckSent,
            "connect" => Kind::ConnectSent,
            "connect_error" => Kind::ConnectError,
            _ => Kind::Emit,
        })
}

/// In the trace writer: places the tracer's events on the connection of their Engine.IO
/// session, and their recipients on theirs, from the sessions the taps decoded.
pub struct Joiner {
    inference: Inference,
    /// Failures recognised, after the events are placed.
    diagnoser: Diagnoser,
    placed: Vec<Event>,
    /// Packets the server sent that an emit's report may yet claim (the frames are written
    /// before the app's call returns, and so before its report comes).
    sent: VecDeque<Sent>,
    /// Emits whose packets to some recipients have not been seen yet.
    waiting: Vec<Waiting>,
}

/// How long a packet and its emit's report wait for each other.
const LINK_WINDOW: f64 = 2.0;
/// Packets remembered at most while they wait.
const SENT_KEPT: usize = 4096;

/// A Socket.IO EVENT the server sent.
struct Sent {
    t: f64,
    conn: u64,
    /// Its Engine.IO session: a long-polling session's packets go out on whichever GET it
    /// holds when they are sent, not always the connection the emit was reported for.
    sid: String,
    event: String,
    nsp: String,
}

/// An emit of the app, waiting for its packets to these recipients.
struct Waiting {
    t: f64,
    line: Value,
    event: String,
    nsp: String,
    targets: Vec<Target>,
}

/// A recipient of an emit: the connection its packet should go out on, and its session.
#[derive(Clone)]
struct Target {
    conn: u64,
    sid: String,
}

impl Target {
    /// Is this packet, on `conn` for the session `sid`, the one for this recipient?
    fn is(&self, conn: u64, sid: &str) -> bool {
        self.conn == conn || (!sid.is_empty() && self.sid == sid)
    }
}

impl Joiner {
    /// `infer_broadcasts`: without the tracer, broadcasts are inferred as in replay.
    pub fn new(infer_broadcasts: bool, versions: impl Into<crate::links::Linker>) -> Joiner {
        Joiner {
            inference: if infer_broadcasts {
                Inference::new()
            } else {
                Inference::sessions_only()
            },
            diagnoser: Diagnoser::new(versions),
            placed: Vec::new(),
            sent: VecDeque::new(),
            waiting: Vec::new(),
        }
    }

    /// A Socket.IO EVENT the server sent: tied to the emit that made it if that emit's
    /// report came first (`emitted_by`), else kept a while for the report to claim.
    fn packet_sent(&mut self, e: &mut Event) {
        let (Some(conn), Some(event)) = (e.conn, e.event_name()) else {
            return;
        };
        let event = event.to_string();
        let nsp = e.nsp().to_string();
        let sid = e.sid().unwrap_or("").to_string();
        let t = e.t;
        self.waiting
            .retain(|w| t - w.t <= LINK_WINDOW && !w.targets.is_empty());
        let mine = |w: &Waiting| {
            w.event == event && w.nsp == nsp && w.targets.iter().any(|r| r.is(conn, &sid))
        };
        if let Some(w) = self.waiting.iter_mut().find(|w| mine(w)) {
            if let Some(i) = w.targets.iter().position(|r| r.is(conn, &sid)) {
                w.targets.remove(i);
            }
            e.fields
                .insert("emitted_by", json!({"line": w.line, "t": w.t}));
            return;
        }
        while self
            .sent
            .front()
            .is_some_and(|s| t - s.t > LINK_WINDOW || self.sent.len() >= SENT_KEPT)
        {
            self.sent.pop_front();
        }
        self.sent.push_back(Sent {
            t,
            conn,
            sid,
            event,
            nsp,
        });
    }

    /// The packets an emit put on the wire, claimed from those already seen: `wire` on the
    /// emit; the others are tied to it as they come.
    fn claim(&mut self, e: &mut Event, targets: &[Target]) {
        let event = e.event_name().unwrap_or("").to_string();
        let nsp = e.nsp().to_string();
        let mut wire = Vec::new();
        let mut missing = Vec::new();
        for target in targets {
            // The oldest unclaimed packet: the app's emits are reported in the order it made
            // them, and their packets go out in that order too (the newest could be the next
            // emit's, whose report has not come yet).
            let found = self.sent.iter().position(|s| {
                target.is(s.conn, &s.sid)
                    && s.event == event
                    && s.nsp == nsp
                    && e.t - s.t <= LINK_WINDOW
            });
            match found.and_then(|i| self.sent.remove(i)) {
                Some(s) => wire.push(json!({"conn": s.conn, "t": s.t})),
                None => missing.push(target.clone()),
            }
        }
        if !missing.is_empty() {
            self.waiting.push(Waiting {
                t: e.t,
                line: e.fields.get("line").cloned().unwrap_or(Value::Null),
                event,
                nsp,
                targets: missing,
            });
        }
        e.fields.insert("wire", Value::Array(wire));
    }

    /// An event through inference, then through the diagnoser.
    fn place(&mut self, e: Event, out: &mut Vec<Event>) {
        self.inference.push(e, &mut self.placed);
        for e in self.placed.drain(..) {
            self.diagnoser.push(e, out);
        }
    }
}

impl Joiner {
    /// The `sio.broadcast` of an observed emit to a room or to everyone.
    fn fan_out(emit: &Event, reach: &str, conns: &[Value]) -> Event {
        let field = |k: &str| emit.fields.get(k).cloned().unwrap_or(Value::Null);
        let event = field("event");
        let nsp = field("nsp");
        let name = event.as_str().unwrap_or("?");
        let nsp_name = nsp.as_str().unwrap_or("/");
        let whom = match (reach, field("to")) {
            ("room", Value::String(room)) => format!("in room {room:?} of {nsp_name}"),
            _ => format!("in {nsp_name}"),
        };
        let mut summary = format!("{name:?} to {} client(s) {whom}", conns.len());
        if field("include_self") == Value::Bool(false) {
            summary.push_str(", the sender skipped (include_self=False)");
        }
        summary.push_str(", observed in the app");
        Event::new(Stage::SioBroadcast, emit.t, emit.conn, None, summary)
            .with("event", event)
            .with("nsp", nsp)
            .with("broadcast", true)
            .with(
                "room",
                if reach == "room" {
                    field("to")
                } else {
                    Value::Null
                },
            )
            .with("recipients", conns.to_vec())
            .with("count", conns.len())
            .with("line", field("line"))
            .with("observed", true)
            .kind(if reach == "room" {
                Kind::Room
            } else {
                Kind::Broadcast
            })
    }
}

impl Processor for Joiner {
    fn needs(&self) -> u32 {
        // The sids come from Engine.IO packets; broadcasts are inferred from Socket.IO ones.
        Stage::EioPacket.bit() | Stage::SioPacket.bit() | Processor::needs(&self.diagnoser)
    }

    fn push(&mut self, mut e: Event, out: &mut Vec<Event>) {
        if e.stage == Stage::SioPacket
            && e.dir == Some(Dir::S2C)
            && e.packet_type() == Some("EVENT")
        {
            self.packet_sent(&mut e);
            self.place(e, out);
            return;
        }
        // A message of another process, reached local sessions: their connections.
        if e.stage == Stage::MqMessage {
            if let Some(sids) = e
                .fields
                .get("recipient_sids")
                .and_then(Value::as_array)
                .cloned()
            {
                e.fields.remove("recipient_sids");
                let conns: Vec<Value> = sids
                    .iter()
                    .filter_map(Value::as_str)
                    .filter_map(|s| self.inference.conn_to(s))
                    .map(Value::from)
                    .collect();
                let to: Vec<String> = conns.iter().map(|c| format!("#{c}")).collect();
                let line = format!(
                    ": delivered to {} local client(s) {}",
                    sids.len(),
                    to.join(" ")
                );
                e.summary.to_mut().push_str(line.trim_end());
                e.fields.insert("reached", Value::Array(conns));
            }
            self.place(e, out);
            return;
        }
        // Only the tracer's events need placing (the taps' own know their connection).
        if !matches!(
            e.stage,
            Stage::SioEmit | Stage::SioRoom | Stage::SioDispatch | Stage::Error
        ) {
            self.place(e, out);
            return;
        }
        if e.conn.is_none() {
            if let Some(sid) = e.text("eio_sid") {
                e.conn = self.inference.conn_of(sid);
            }
        }
        let sids = e
            .fields
            .get("recipient_sids")
            .and_then(Value::as_array)
            .cloned();
        if sids.is_some() {
            e.fields.remove("recipient_sids");
        }
        if let (Stage::SioEmit, Some(sids)) = (e.stage, sids) {
            let conns: Vec<Value> = sids
                .iter()
                .filter_map(Value::as_str)
                .filter_map(|s| self.inference.conn_to(s))
                .map(Value::from)
                .collect();
            let count = sids.len();
            // Who it went to, in the summary too: that is what a reader looks for.
            let to: Vec<String> = conns.iter().map(|c| format!("#{c}")).collect();
            let whom = match count {
                0 => " -> no client".to_string(),
                1 => format!(" -> 1 client {}", to.join(" ")),
                n => format!(" -> {n} clients {}", to.join(" ")),
            };
            let summary = e.summary.to_mut();
            summary.push_str(whom.trim_end());
            // An emit to a room or to everyone is a broadcast, as serve and replay show one:
            // a `sio.broadcast` right after the call that made it.
            let fan_out = match e.text("reach") {
                Some(reach @ ("room" | "everyone")) => Some(Self::fan_out(&e, reach, &conns)),
                _ => None,
            };
            let targets: Vec<Target> = sids
                .iter()
                .filter_map(Value::as_str)
                .filter_map(|s| {
                    Some(Target {
                        conn: self.inference.conn_to(s)?,
                        sid: s.to_string(),
                    })
                })
                .collect();
            if e.fields.get("event").is_some_and(Value::is_string) {
                self.claim(&mut e, &targets);
            }
            e.fields.insert("recipients", Value::Array(conns));
            e.fields.insert("count", count);
            // The tracer's session ids, kept for whoever wants to follow them.
            e.fields.insert("recipient_sids", Value::Array(sids));
            self.place(e, out);
            if let Some(b) = fan_out {
                self.place(b, out);
            }
            return;
        }
        self.place(e, out);
    }

    fn finish(&mut self, out: &mut Vec<Event>) {
        self.inference.finish(&mut self.placed);
        for e in self.placed.drain(..) {
            self.diagnoser.push(e, out);
        }
        self.diagnoser.finish(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(t: f64, conn: u64, event: &str) -> Event {
        Event::new(
            Stage::SioPacket,
            t,
            Some(conn),
            Some(Dir::S2C),
            String::new(),
        )
        .with("type", "EVENT")
        .with("nsp", "/")
        .with("event", event)
    }

    /// Two emits of the same event to the same client, the second's packet already out when
    /// the first's report comes: the first report claims the first packet.
    #[test]
    fn an_emit_claims_the_oldest_packet_it_can_have_made() {
        let mut j = Joiner::new(false, crate::links::VersionSet::Current);
        j.packet_sent(&mut sent(1.000, 2, "status"));
        j.packet_sent(&mut sent(1.043, 2, "status"));
        let mut emit = Event::new(Stage::SioEmit, 1.001, None, None, String::new())
            .with("event", "status")
            .with("nsp", "/");
        let to = |conn: u64| Target {
            conn,
            sid: "S".into(),
        };
        j.claim(&mut emit, &[to(2)]);
        assert_eq!(emit.fields.get("wire").unwrap()[0]["t"], 1.0);
        let mut next = Event::new(Stage::SioEmit, 1.044, None, None, String::new())
            .with("event", "status")
            .with("nsp", "/");
        j.claim(&mut next, &[to(2)]);
        assert_eq!(next.fields.get("wire").unwrap()[0]["t"], 1.043);
    }

    /// A long-polling client: the emit is reported for the GET its session held, and its
    /// packet goes out on the next GET (another connection) of the same session: still its.
    #[test]
    fn a_polling_sessions_packet_is_its_emits_on_any_of_its_gets() {
        let mut j = Joiner::new(false, crate::links::VersionSet::Current);
        let mut emit = Event::new(Stage::SioEmit, 1.0, None, None, String::new())
            .with("event", "welcome")
            .with("nsp", "/")
            .with("line", "app.py:9");
        j.claim(
            &mut emit,
            &[Target {
                conn: 7,
                sid: "S1".into(),
            }],
        );
        assert_eq!(emit.fields.get("wire").unwrap(), &json!([]));
        // Another session's packet on that connection number is not it; its own on conn 9 is.
        let mut other = sent(1.01, 8, "welcome").with("sid", "S2");
        j.packet_sent(&mut other);
        assert!(other.fields.get("emitted_by").is_none());
        let mut later = sent(1.02, 9, "welcome").with("sid", "S1");
        j.packet_sent(&mut later);
        assert_eq!(later.fields.get("emitted_by").unwrap()["line"], "app.py:9");
    }
}
