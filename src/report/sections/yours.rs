//! "Your code": the app's own handlers and Socket.IO calls, as `dispel watch` observed them
//! inside the running app, each with the student's line, the chain of calls really made (at
//! the installed versions) and what it caused on the wire.
//!
//! The sites are gathered while the input is read ([`Sites::take`]), one per handler, per call
//! site (call and line) and per kind of python-socketio answer, each with its first event in
//! full and a count: a long watch of a busy app holds as many sites as the app has lines that
//! talk to Socket.IO, not one entry per call.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::report::model::*;
use crate::report::Ev;
use crate::trace::{Dir, Stage};

/// Example summaries kept per site.
const EXAMPLES: usize = 3;
/// Library frames listed below a call before "... and N more".
const BELOW_SHOWN: usize = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SiteKind {
    /// A handler the app registered, called for an event.
    Handler,
    /// A handler that raised (a connect handler's `ConnectionRefusedError`).
    Raised,
    /// A Socket.IO call of the app's code: emit, send, rooms, disconnect.
    Call,
    /// What python-socketio sent on the app's behalf: ACKs of return values, CONNECT answers.
    Answer,
}

#[derive(Debug, Clone)]
pub struct Site {
    pub kind: SiteKind,
    /// The first event of the site, in full.
    pub first: Ev,
    pub count: usize,
    /// The connections it ran for (whose event was handled, or who made the call).
    pub conns: BTreeSet<u64>,
    /// The connections what it sent reached.
    pub reached: BTreeSet<u64>,
    pub examples: Vec<String>,
}

/// Every site of the app's own code in the input, in the order first seen.
#[derive(Debug, Default, Clone)]
pub struct Sites {
    pub list: Vec<Site>,
    index: HashMap<String, usize>,
    /// The event each acknowledgement id of a client's answers: (Engine.IO sid, nsp, id) ->
    /// event (by session: on long-polling the event and its ACK ride different connections).
    asked: HashMap<(String, String, u64), String>,
}

/// Acknowledgement ids remembered at most (a long trace forgets the oldest).
const ASKED_KEPT: usize = 10_000;

fn observed(e: &Ev) -> &[Value] {
    e.fields
        .get("observed")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

impl Sites {
    /// A client's event that asked for an acknowledgement: its ACK will name the event.
    pub fn asked(&mut self, sid: &str, nsp: &str, id: u64, event: &str) {
        if self.asked.len() >= ASKED_KEPT {
            self.asked.clear();
        }
        self.asked
            .insert((sid.to_string(), nsp.to_string(), id), event.to_string());
    }

    /// One event of the input: kept if it is the app's own activity.
    pub fn take(&mut self, e: &Ev) {
        if observed(e).is_empty() {
            return;
        }
        let s = |k: &str| e.str(k).unwrap_or("");
        let (kind, key) = match e.stage {
            Stage::SioDispatch => (
                SiteKind::Handler,
                format!("handler {} {} {}", s("nsp"), s("event"), s("handler")),
            ),
            Stage::Error => (
                SiteKind::Raised,
                format!("raised {} {}", s("handler"), s("raised")),
            ),
            Stage::SioEmit if e.str("by").is_some() => {
                // An acknowledgement: of which event (so of which handler's return).
                let answers = (s("call") == "ack")
                    .then(|| {
                        let id = e.u64("id")?;
                        self.asked
                            .get(&(e.str("eio_sid")?.to_string(), s("nsp").to_string(), id))
                            .cloned()
                    })
                    .flatten();
                let key = format!(
                    "answer {} {} {}",
                    s("call"),
                    s("nsp"),
                    answers.as_deref().unwrap_or("")
                );
                if let Some(event) = answers {
                    if !self.index.contains_key(&key) {
                        let mut first = e.clone();
                        first.fields.insert("answers".into(), Value::from(event));
                        self.add(SiteKind::Answer, key, &first);
                        return;
                    }
                }
                (SiteKind::Answer, key)
            }
            Stage::SioEmit | Stage::SioRoom => {
                (SiteKind::Call, format!("call {} {}", s("call"), s("line")))
            }
            _ => return,
        };
        self.add(kind, key, e);
    }

    fn add(&mut self, kind: SiteKind, key: String, e: &Ev) {
        let i = *self.index.entry(key).or_insert_with(|| {
            self.list.push(Site {
                kind,
                first: e.clone(),
                count: 0,
                conns: BTreeSet::new(),
                reached: BTreeSet::new(),
                examples: Vec::new(),
            });
            self.list.len() - 1
        });
        let site = &mut self.list[i];
        site.count += 1;
        site.conns.extend(e.conn);
        if let Some(r) = e.fields.get("recipients").and_then(Value::as_array) {
            site.reached.extend(r.iter().filter_map(Value::as_u64));
        }
        if site.examples.len() < EXAMPLES && !site.examples.contains(&e.summary) {
            site.examples.push(e.summary.clone());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// The app's source files, for quoting its lines: a file (its folder is the app's) or a folder.
pub struct AppSource {
    base: Option<PathBuf>,
    files: std::cell::RefCell<HashMap<String, Option<Vec<String>>>>,
}

impl AppSource {
    pub fn new(app: Option<&Path>) -> AppSource {
        let base = app.map(|p| {
            if p.is_file() {
                p.parent().map(Path::to_path_buf).unwrap_or_default()
            } else {
                p.to_path_buf()
            }
        });
        AppSource {
            base,
            files: Default::default(),
        }
    }

    /// Line `n` (from 1) of the app's file `path` (as the trace names it), if it can be read.
    fn line(&self, path: &str, n: u64) -> Option<String> {
        let base = self.base.as_ref()?;
        let mut files = self.files.borrow_mut();
        let lines = files.entry(path.to_string()).or_insert_with(|| {
            // A path outside the app's folder is absolute in the trace; join keeps it so.
            std::fs::read_to_string(base.join(path))
                .ok()
                .map(|t| t.lines().map(str::to_string).collect())
        });
        let i = usize::try_from(n).ok()?.checked_sub(1)?;
        lines.as_ref()?.get(i).cloned()
    }

    /// The statement starting at line `n`: continued while its brackets are open (at most a
    /// few lines), dedented.
    fn statement(&self, path: &str, n: u64) -> Option<String> {
        let mut out = Vec::new();
        let mut depth = 0i32;
        for k in 0..6 {
            let l = self.line(path, n + k)?;
            depth += l.matches(['(', '[', '{']).count() as i32;
            depth -= l.matches([')', ']', '}']).count() as i32;
            out.push(l);
            if depth <= 0 {
                break;
            }
        }
        Some(dedent(&out))
    }

    /// The `return` statements of the function whose `def` is at line `def` (not those of a
    /// function nested in it): (line, statement).
    fn returns(&self, path: &str, def: u64) -> Vec<(u64, String)> {
        let Some(head) = self.line(path, def) else {
            return Vec::new();
        };
        let indent = |l: &str| l.len() - l.trim_start().len();
        let body = indent(&head);
        let mut out = Vec::new();
        let mut nested: Option<usize> = None;
        for n in def + 1..def + 400 {
            let Some(l) = self.line(path, n) else { break };
            if l.trim().is_empty() || l.trim_start().starts_with('#') {
                continue;
            }
            let i = indent(&l);
            if i <= body {
                break;
            }
            if nested.is_some_and(|ni| i <= ni) {
                nested = None;
            }
            let code = l.trim_start();
            if code.starts_with("def ") || code.starts_with("async def ") {
                nested.get_or_insert(i);
            } else if nested.is_none() && (code == "return" || code.starts_with("return ")) {
                out.push((n, code.to_string()));
            }
        }
        out
    }

    /// A function's decorators and its `def` line, from the `def` line.
    fn definition(&self, path: &str, def: u64) -> Option<String> {
        let mut lines = vec![self.line(path, def)?];
        let mut n = def;
        while n > 1 {
            n -= 1;
            match self.line(path, n) {
                Some(l) if l.trim_start().starts_with('@') => lines.insert(0, l),
                _ => break,
            }
        }
        Some(dedent(&lines))
    }
}

fn dedent(lines: &[String]) -> String {
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut s = String::new();
    for l in lines {
        s.push_str(l.get(indent..).unwrap_or(l.trim_start()));
        s.push('\n');
    }
    s
}

/// A frame of an observed chain.
struct Frame<'a> {
    package: Option<&'a str>,
    version: &'a str,
    path: &'a str,
    line: u64,
    function: &'a str,
    url: Option<&'a str>,
}

fn frame(v: &Value) -> Frame<'_> {
    Frame {
        package: v["package"].as_str(),
        version: v["version"].as_str().unwrap_or(""),
        path: v["path"].as_str().unwrap_or("?"),
        line: v["line"].as_u64().unwrap_or(0),
        function: v["function"].as_str().unwrap_or("?"),
        url: v["url"].as_str(),
    }
}

fn frame_item(f: &Frame, src: &AppSource) -> Vec<Inline> {
    let at = format!("{}:{}", f.path, f.line);
    match f.package {
        None => {
            let mut out = vec![b("your code"), t(" "), c(at), t(" "), c(f.function)];
            if let Some(l) = src.line(f.path, f.line) {
                out.push(t(": "));
                out.push(c(l.trim()));
            }
            out
        }
        Some(p) => {
            let mut out = vec![
                b(format!("{p} {}", f.version)),
                t(" "),
                c(at),
                t(" "),
                c(f.function),
            ];
            if let Some(u) = f.url {
                out.push(t(" "));
                out.push(link("source", u));
            }
            out
        }
    }
}

fn frame_list(frames: &[Value], src: &AppSource) -> Block {
    Block::List {
        ordered: true,
        items: frames.iter().map(|v| frame_item(&frame(v), src)).collect(),
    }
}

/// Where the app's own frames end: the index of the innermost one.
fn own_end(frames: &[Value]) -> Option<usize> {
    frames.iter().rposition(|f| f["package"].is_null())
}

/// What the chains say about the app: the versions they ran, and the async mode their outermost
/// frames show (eventlet's or gevent's hub, else threads).
fn observed_versions(sites: &Sites) -> (Vec<(String, String)>, &'static str) {
    let mut versions: BTreeMap<String, String> = BTreeMap::new();
    let mut mode = "threading";
    for site in &sites.list {
        for f in observed(&site.first) {
            let f = frame(f);
            if let Some(p) = f.package {
                versions.insert(p.to_string(), f.version.to_string());
                match p {
                    "eventlet" => mode = "eventlet",
                    "gevent" => mode = "gevent",
                    _ => {}
                }
            }
        }
    }
    (versions.into_iter().collect(), mode)
}

/// The "Your code" sections, from what the app was observed doing.
pub fn sections(sites: &Sites, evs: &[Ev], conn: u64, src: &AppSource) -> Vec<Section> {
    let mut out = Vec::new();
    let (versions, mode) = observed_versions(sites);
    let handlers: Vec<&Site> = sites
        .list
        .iter()
        .filter(|s| s.kind == SiteKind::Handler)
        .collect();
    let calls: Vec<&Site> = sites
        .list
        .iter()
        .filter(|s| s.kind == SiteKind::Call)
        .collect();
    let versions_text: Vec<String> = versions
        .iter()
        .map(|(p, v)| {
            if p == "cpython" {
                format!("Python {v}")
            } else {
                format!("{p} {v}")
            }
        })
        .collect();
    let mut intro = vec![para(vec![t(format!(
        "These sections are about your app as it ran: {} handler(s) of yours were called and your code made {} Socket.IO call(s) from {} line(s). Each chain below was observed inside the running app, outermost call first, at the versions it ran ({}), in async mode {mode}; each library step links to that version's source line.",
        handlers.len(),
        calls.iter().map(|s| s.count).sum::<usize>(),
        calls.len(),
        versions_text.join(", "),
    ))])];
    if src.base.is_none() {
        intro.push(text_para(
            "Your source files were not given to the report, so your lines are named by file and number only.",
        ));
    }
    out.push(Section {
        title: "Your code".into(),
        blocks: intro,
    });
    for h in &handlers {
        out.push(handler_section(h, sites, evs, conn, src));
    }
    for s in sites.list.iter().filter(|s| s.kind == SiteKind::Raised) {
        out.push(raised_section(s, src));
    }
    for c in &calls {
        out.push(call_section(c, &handlers, evs, conn, src));
    }
    let answers: Vec<&Site> = sites
        .list
        .iter()
        .filter(|s| s.kind == SiteKind::Answer)
        .collect();
    if !answers.is_empty() {
        out.push(answers_section(&answers, &handlers, src));
    }
    out
}

fn counted(site: &Site) -> String {
    let times = match site.count {
        1 => "once".to_string(),
        2 => "twice".to_string(),
        n => format!("{n} times"),
    };
    let list = |set: &BTreeSet<u64>| {
        set.iter()
            .map(|c| format!("#{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let ran = if site.conns.is_empty() {
        format!("It ran {times}, outside any client's connection")
    } else {
        format!("It ran {times}, for connection(s) {}", list(&site.conns))
    };
    let shown = match site.examples.len() {
        n if site.count <= n || n == 0 => String::new(),
        1 => " (the first is shown above)".to_string(),
        n => format!(" (the first {n} are shown above)"),
    };
    if site.reached.is_empty() {
        format!("{ran}{shown}.")
    } else {
        format!(
            "{ran}{shown}; what it sent reached {}.",
            list(&site.reached)
        )
    }
}

fn handler_section(h: &Site, sites: &Sites, evs: &[Ev], conn: u64, src: &AppSource) -> Section {
    let e = &h.first;
    let frames = observed(e);
    let name = e.str("handler").unwrap_or("?");
    let event = e.str("event").unwrap_or("?");
    let nsp = e.str("nsp").unwrap_or("/");
    let def = frames.last().map(frame);
    let at = def
        .as_ref()
        .map(|f| format!("{}:{}", f.path, f.line))
        .unwrap_or_default();
    let mut blocks = Vec::new();
    if let Some(text) = def.as_ref().and_then(|f| src.definition(f.path, f.line)) {
        blocks.push(code("python", text));
    }
    let what = match event {
        "connect" => format!("a client connecting to the namespace {nsp}"),
        "disconnect" => format!("a client leaving the namespace {nsp}"),
        _ => format!("the event {event:?} on the namespace {nsp}"),
    };
    blocks.push(para(vec![
        t("Your function "),
        c(name),
        t(format!(" ({at}) handles {what}. {}", counted(h))),
    ]));
    // The packet that called it, on the connection this report follows.
    if let Some(pkt) = trigger(e, evs, conn) {
        blocks.push(para(vec![
            t("On connection #"),
            t(conn.to_string()),
            t(" it was called for the packet "),
            c(pkt.summary.clone()),
            t(format!(" that the client sent at {:.3} s.", pkt.t)),
        ]));
    }
    // What it did: the calls whose chain runs through it.
    let made: Vec<&Site> = sites
        .list
        .iter()
        .filter(|s| s.kind == SiteKind::Call && runs_through(&s.first, def.as_ref()))
        .collect();
    if !made.is_empty() {
        blocks.push(text_para("Inside it, your code called:"));
        blocks.push(Block::List {
            ordered: false,
            items: made
                .iter()
                .map(|s| {
                    let line = s.first.str("line").unwrap_or("?");
                    let what = s.examples.first().map_or(String::new(), |x| {
                        // What the call was, not whom it reached the first time (the call
                        // has its own section, with every recipient).
                        let x = x.replace(&format!(" ({line})"), "");
                        x.split(" -> ").next().unwrap_or("").to_string()
                    });
                    vec![c(line), t(": "), t(what)]
                })
                .collect(),
        });
    }
    blocks.push(para(vec![t(format!(
        "How the call reached it ({} steps, from the thread that runs it down to your function):",
        frames.len()
    ))]));
    if let Some(note) = thread_note(frames) {
        blocks.push(text_para(note));
    }
    blocks.push(frame_list(frames, src));
    Section {
        title: format!("Your handler {name}: {event:?} on {nsp}"),
        blocks,
    }
}

/// Which thread (or greenlet) the chain runs on, from its outermost frames.
fn thread_note(frames: &[Value]) -> Option<&'static str> {
    let first = frames
        .iter()
        .map(frame)
        .find(|f| !(f.package == Some("cpython") && f.path == "Lib/threading.py"))?;
    Some(match (first.package, first.function) {
        (Some("python-socketio"), "Server._handle_event_internal") => {
            "python-socketio runs each event's handler in a thread of its own (async_handlers=True, the default), started by the thread that read the packet (the WebSocket's reader, or the long-polling POST's); that is why this chain begins at a thread's start and not at the socket."
        }
        (Some("cpython"), f) if f.starts_with("ThreadingMixIn.") => {
            "Werkzeug's development server gives each TCP connection a thread of its own (socketserver's ThreadingMixIn): this chain begins there, and for a WebSocket that thread keeps reading the connection's frames for as long as it is open."
        }
        (Some("eventlet"), _) => {
            "Under eventlet every connection and every handler runs in a green thread (a greenlet), switched when it waits on a socket: this chain begins where eventlet's hub started it."
        }
        (Some("gevent"), _) => {
            "Under gevent every connection and every handler runs in a greenlet, switched when it waits on a socket: this chain begins where gevent's hub started it."
        }
        (Some("gunicorn"), _) => {
            "gunicorn's worker process runs this request, in a thread of its pool (the gthread worker) or a greenlet (the eventlet and gevent workers): this chain begins where the worker took the connection."
        }
        _ => return None,
    })
}

/// Does the chain of a call pass through the handler whose `def` is `def`?
fn runs_through(call: &Ev, def: Option<&Frame>) -> bool {
    let Some(def) = def else { return false };
    observed(call).iter().any(|f| {
        let f = frame(f);
        f.package.is_none() && f.path == def.path && f.function == def.function
    })
}

/// The Socket.IO packet from the client that the dispatch `e` handled, on connection `conn`.
fn trigger<'a>(e: &Ev, evs: &'a [Ev], conn: u64) -> Option<&'a Ev> {
    if e.conn != Some(conn) {
        return None;
    }
    let event = e.str("event")?;
    let ty = match event {
        "connect" => "CONNECT",
        "disconnect" => "DISCONNECT",
        _ => "EVENT",
    };
    evs.iter().rev().find(|p| {
        p.conn == Some(conn)
            && p.stage == Stage::SioPacket
            && p.dir == Some(Dir::C2S)
            && p.t <= e.t + 0.001
            && p.str("type").is_some_and(|t| t.starts_with(ty))
            && (ty != "EVENT" || p.str("event") == Some(event))
    })
}

fn raised_section(s: &Site, src: &AppSource) -> Section {
    let e = &s.first;
    let frames = observed(e);
    let name = e.str("handler").unwrap_or("?");
    let mut blocks = vec![para(vec![t(e.summary.clone()), t(". "), t(counted(s))])];
    if e.flag("refused") {
        blocks.push(text_para(
            "Raising ConnectionRefusedError in a connect handler is how Flask-SocketIO refuses a client: python-socketio catches it and answers the CONNECT with a CONNECT_ERROR packet carrying the exception's arguments, and the client's connect fails with that message.",
        ));
    }
    blocks.push(text_para("Where it was raised from:"));
    blocks.push(frame_list(frames, src));
    Section {
        title: format!(
            "Your handler {name} raised {}",
            e.str("raised").unwrap_or("?")
        ),
        blocks,
    }
}

fn call_section(s: &Site, handlers: &[&Site], evs: &[Ev], conn: u64, src: &AppSource) -> Section {
    let e = &s.first;
    let frames = observed(e);
    let line = e.str("line").unwrap_or("?");
    let call = e.str("call").unwrap_or("?");
    let mut blocks = Vec::new();
    let own = own_end(frames);
    if let Some(f) = own.map(|i| frame(&frames[i])) {
        if let Some(text) = src.statement(f.path, f.line) {
            blocks.push(code("python", text));
        }
    }
    blocks.push(para(vec![t(s.examples.join("; ")), t(". "), t(counted(s))]));
    if let Some(note) = call_note(e) {
        blocks.push(text_para(note));
    }
    // Where it was called from: a handler of the app (shown in its own section), or elsewhere.
    let from = handlers.iter().find(|h| {
        let def = observed(&h.first).last().map(frame);
        runs_through(e, def.as_ref())
    });
    let (shown_from, context) = match (from, own) {
        (Some(h), Some(own)) => {
            // The chain above the handler is the handler's own: shown once, in its section.
            let name = h.first.str("handler").unwrap_or("?");
            let start = frames
                .iter()
                .position(|f| f["package"].is_null() && f["function"].as_str() == Some(name))
                .unwrap_or(0)
                .min(own);
            (
                start,
                format!("Called inside your handler {name} (its section shows how the call reached it); from there down:"),
            )
        }
        (None, Some(_)) => (
            0,
            if e.fields.get("sio_sid").is_none_or(Value::is_null) {
                "Called outside any Socket.IO handler (an HTTP route or a background task), with no client being handled; the whole way down:".to_string()
            } else {
                "The whole way down:".to_string()
            },
        ),
        _ => (0, "The chain:".to_string()),
    };
    blocks.push(text_para(context));
    let end = own.map_or(frames.len(), |o| o + 1);
    blocks.push(frame_list(&frames[shown_from..end], src));
    let below = &frames[end.min(frames.len())..];
    if !below.is_empty() {
        blocks.push(text_para(format!(
            "Below your line, the library functions it went into, in the order they were first called ({} in all):",
            below.len()
        )));
        blocks.push(frame_list(&below[..below.len().min(BELOW_SHOWN)], src));
        if below.len() > BELOW_SHOWN {
            blocks.push(text_para(format!(
                "... and {} more.",
                below.len() - BELOW_SHOWN
            )));
        }
    }
    if let Some(pkt) = delivered(e, evs, conn) {
        blocks.push(para(vec![
            t(format!("On connection #{conn} it left as ")),
            c(pkt.summary.clone()),
            t(format!(" at {:.3} s.", pkt.t)),
        ]));
    }
    Section {
        title: format!("Your call {call} at {line}"),
        blocks,
    }
}

/// What a call does that its summary does not say.
fn call_note(e: &Ev) -> Option<&'static str> {
    let call = e.str("call")?;
    Some(match (call, e.str("reach")) {
        ("join_room", _) => "Joining a room only changes python-socketio's table of rooms (its manager); nothing is sent to anyone.",
        ("leave_room", _) => "Leaving a room only changes python-socketio's table of rooms; nothing is sent.",
        ("close_room", _) => "Closing a room removes every member from it in python-socketio's table; nothing is sent.",
        ("disconnect", _) => "The server sends the client a Socket.IO DISCONNECT packet for the namespace and forgets it there.",
        (_, Some("sender")) => "Inside a handler, Flask-SocketIO's emit and send go back to the client whose event is being handled, unless told otherwise.",
        (_, Some("room")) if e.fields.get("include_self") == Some(&Value::Bool(false)) => "To a room: python-socketio looks the room's members up in its manager and sends the packet, encoded once, to each of them but the sender (include_self=False).",
        (_, Some("room")) => "To a room: python-socketio looks the room's members up in its manager and sends the packet, encoded once, to each of them.",
        (_, Some("everyone")) => "To everyone in the namespace: python-socketio sends the packet, encoded once, to every client connected there.",
        _ => return None,
    })
}

/// The packet an emit put on connection `conn`, if it reached it.
fn delivered<'a>(e: &Ev, evs: &'a [Ev], conn: u64) -> Option<&'a Ev> {
    let reached = e
        .fields
        .get("recipients")
        .and_then(Value::as_array)
        .is_some_and(|r| r.iter().any(|c| c.as_u64() == Some(conn)));
    if !reached {
        return None;
    }
    let event = e.str("event")?;
    let nsp = e.str("nsp").unwrap_or("/");
    // The frames are written before the call returns, and the call is reported after: the
    // delivery is the latest matching packet before it, or the first after.
    let matching = |p: &&Ev| {
        p.conn == Some(conn)
            && p.stage == Stage::SioPacket
            && p.dir == Some(Dir::S2C)
            && p.str("event") == Some(event)
            && p.str("nsp").unwrap_or("/") == nsp
            && (p.t - e.t).abs() < 1.0
    };
    evs.iter()
        .rev()
        .filter(matching)
        .find(|p| p.t <= e.t)
        .or_else(|| evs.iter().find(matching))
}

fn answers_section(answers: &[&Site], handlers: &[&Site], src: &AppSource) -> Section {
    let mut blocks = vec![text_para(
        "Some packets are sent for your app by python-socketio itself, from what your handlers did: the answer to each CONNECT (accepted when the connect handler returns, refused when it raises ConnectionRefusedError or returns False), and an ACK carrying a handler's return value when the client asked for one.",
    )];
    for s in answers {
        let e = &s.first;
        let answered = e.str("answers");
        blocks.push(Block::Heading(match (e.str("call"), answered) {
            (Some("ack"), Some(event)) => format!("The acknowledgement of {event:?}"),
            (Some("ack"), None) => "An acknowledgement of a handler's return value".into(),
            (Some("connect"), _) => {
                format!("The CONNECT answer on {}", e.str("nsp").unwrap_or("/"))
            }
            (Some("connect_error"), _) => {
                format!(
                    "The CONNECT_ERROR refusal on {}",
                    e.str("nsp").unwrap_or("/")
                )
            }
            (other, _) => format!("python-socketio's {}", other.unwrap_or("answer")),
        }));
        blocks.push(para(vec![t(s.examples.join("; ")), t(". "), t(counted(s))]));
        // The handler whose return value it carries, and its return statements.
        let nsp = e.str("nsp").unwrap_or("/");
        let handler = answered.and_then(|event| {
            handlers.iter().find(|h| {
                h.first.str("event") == Some(event) && h.first.str("nsp").unwrap_or("/") == nsp
            })
        });
        if let Some(h) = handler {
            let name = h.first.str("handler").unwrap_or("?");
            let def = observed(&h.first).last().map(frame);
            let returns = def
                .as_ref()
                .map(|d| src.returns(d.path, d.line))
                .unwrap_or_default();
            let readable = def
                .as_ref()
                .is_some_and(|d| src.line(d.path, d.line).is_some());
            let mut line = vec![t("It carries the return value of your handler "), c(name)];
            match (returns.as_slice(), def.as_ref()) {
                ([], _) if readable => line.push(t(
                    " (it has no return statement: None, an ACK with no data)",
                )),
                ([], _) => {}
                (rs, Some(d)) => {
                    let at: Vec<String> = rs
                        .iter()
                        .map(|(n, text)| format!("{}:{n} {text}", d.path))
                        .collect();
                    line.push(t(": "));
                    line.push(c(at.join("; ")));
                }
                _ => {}
            }
            line.push(t("."));
            blocks.push(para(line));
        }
        let frames = observed(e);
        // How the packet got to python-socketio is the handler's story, told above: from
        // python-socketio's first frame down.
        let start = frames
            .iter()
            .position(|f| f["package"].as_str() == Some("python-socketio"))
            .unwrap_or(0);
        blocks.push(frame_list(&frames[start..], src));
    }
    Section {
        title: "What python-socketio sent for you".into(),
        blocks,
    }
}
