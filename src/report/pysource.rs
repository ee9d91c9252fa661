//! A student's Flask-SocketIO source, read for what a report about a capture can match: the
//! handlers (`@socketio.on('event', namespace=...)`, `@socketio.event`, the `on_<event>`
//! methods of a `Namespace` class and the namespace `on_namespace` gives it), the HTTP routes
//! and background tasks that emit, and the Socket.IO calls inside each (`emit`, `send`,
//! rooms, `disconnect`, a `return` that becomes the ack, a `ConnectionRefusedError`).
//!
//! Not a Python parser: the lines are read by indentation, decorators and the first string
//! literal of a call, which is how Flask-SocketIO apps are written. What it cannot read (a
//! handler registered with a computed name, say) it leaves out rather than guess.

use std::path::{Path, PathBuf};

/// Files read at most from a folder, and lines kept from a handler.
const MAX_FILES: usize = 200;
const MAX_BODY: usize = 40;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A Socket.IO event handler (`connect` and `disconnect` included).
    Handler,
    /// An HTTP route whose body makes Socket.IO calls.
    Route(String),
    /// A function the app starts with `start_background_task(f)`: where, and the statement.
    Task { line: usize, text: String },
}

/// One Socket.IO call in a function's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub line: usize,
    /// `emit`, `send`, `join_room`, `socketio.emit`, `self.emit`, `return`, `raise`...
    pub name: String,
    /// The event it emits, when it names one.
    pub event: Option<String>,
    /// The statement, dedented (a few lines at most).
    pub text: String,
    /// Inside a function defined in the body (a background task's, typically).
    pub nested: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub kind: Kind,
    /// The file, as given or relative to the folder given.
    pub file: String,
    /// The event (handlers), else empty.
    pub event: String,
    pub nsp: String,
    /// `on_join`, or `Lobby.on_ping`.
    pub name: String,
    /// First line of its decorators (or its `def`), and its `def` line (from 1).
    pub first_line: usize,
    pub def_line: usize,
    /// The decorators, the `def` and the body, as written (at most [`MAX_BODY`] lines).
    pub source: Vec<String>,
    pub calls: Vec<Call>,
}

#[derive(Debug, Clone, Default)]
pub struct Scan {
    pub functions: Vec<Function>,
    /// Where `SocketIO(...)` is made: file, line, statement.
    pub socketio: Option<(String, usize, String)>,
    /// Where the server is started (`socketio.run(app)`): file, line, statement.
    pub run: Option<(String, usize, String)>,
    pub files: Vec<String>,
    /// The functions started with `start_background_task(f, ...)`: name, line, statement.
    pub tasks: Vec<(String, usize, String)>,
    /// The `Namespace` classes registered with `on_namespace(...)`: class, file, line,
    /// statement.
    pub namespaces: Vec<(String, String, usize, String)>,
    /// The names the app gives its `SocketIO` objects (`socketio = SocketIO(app)`): only their
    /// decorators are handlers (a python-socketio client's `@sio.on` in the same folder is
    /// not). Empty: any receiver is taken.
    pub names: Vec<String>,
}

/// The names bound to `SocketIO(...)` in `text`.
fn socketio_names(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let (lhs, rhs) = l.split_once('=')?;
            let rhs = rhs.trim_start();
            let name = lhs.trim();
            let ok = (rhs.starts_with("SocketIO(") || rhs.starts_with("flask_socketio.SocketIO("))
                && !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '.');
            ok.then(|| name.to_string())
        })
        .collect()
}

/// Reads the app: a `.py` file, or every `.py` file in a folder (not its virtualenvs).
pub fn scan(path: &Path) -> Result<Scan, String> {
    let mut scan = Scan::default();
    let files: Vec<(String, PathBuf)> = if path.is_dir() {
        let mut found = Vec::new();
        collect(path, path, &mut found, 0);
        found.sort();
        found
    } else {
        vec![(
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path.to_path_buf(),
        )]
    };
    let mut texts = Vec::new();
    for (name, file) in files {
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("--app {}: {e}", file.display()))?;
        scan.names.extend(socketio_names(&text));
        texts.push((name, text));
    }
    for (name, text) in texts {
        scan_text(&name, &text, &mut scan);
        scan.files.push(name);
    }
    Ok(scan)
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>, depth: usize) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        if out.len() >= MAX_FILES {
            return;
        }
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            let skip = name.starts_with('.')
                || matches!(
                    name.as_str(),
                    "venv" | "env" | "node_modules" | "__pycache__" | "site-packages"
                );
            if !skip && depth < 4 {
                collect(root, &p, out, depth + 1);
            }
        } else if name.ends_with(".py") {
            let rel = p
                .strip_prefix(root)
                .map(|r| r.to_string_lossy().into_owned())
                .unwrap_or(name);
            out.push((rel, p));
        }
    }
}

/// The function name of a `def` or `async def` line.
fn def_name(t: &str) -> String {
    t.trim_start_matches("async ")
        .trim_start_matches("def ")
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

fn indent(l: &str) -> usize {
    l.len() - l.trim_start().len()
}

fn blank(l: &str) -> bool {
    let t = l.trim();
    t.is_empty() || t.starts_with('#')
}

/// The first string literal after `from` in `s`.
fn first_string(s: &str) -> Option<String> {
    let start = s.find(['\'', '"'])?;
    let q = s[start..].chars().next()?;
    let rest = &s[start + 1..];
    let end = rest.find(q)?;
    Some(rest[..end].to_string())
}

/// [`keyword`], for the report.
pub fn keyword_value(s: &str, key: &str) -> Option<String> {
    keyword(s, key)
}

/// The string value of keyword `key=` in `s`, when it is a literal (`to=room` or
/// `to=data["room"]` name no room the source can tell).
fn keyword(s: &str, key: &str) -> Option<String> {
    let mut from = 0;
    while let Some(i) = s[from..].find(&format!("{key}=")) {
        let at = from + i;
        // `to=` itself, not the end of `goto=` or `room_to=`.
        let whole = s[..at]
            .chars()
            .last()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let value = s[at + key.len() + 1..].trim_start();
        if whole && !value.starts_with('=') {
            return value
                .starts_with(['\'', '"'])
                .then(|| first_string(value))
                .flatten();
        }
        from = at + key.len() + 1;
    }
    None
}

/// The statement starting at line `i`: continued while its brackets are open.
fn statement(lines: &[&str], i: usize) -> String {
    let mut out = Vec::new();
    let mut depth = 0i32;
    for l in lines.iter().skip(i).take(8) {
        depth += l.matches(['(', '[', '{']).count() as i32;
        depth -= l.matches([')', ']', '}']).count() as i32;
        out.push(l.trim().to_string());
        if depth <= 0 {
            break;
        }
    }
    out.join(" ")
}

const CALLS: &[&str] = &[
    "emit",
    "send",
    "join_room",
    "leave_room",
    "close_room",
    "disconnect",
    "start_background_task",
    "sleep",
];

/// The Socket.IO call a line makes, if any: `emit(`, `socketio.emit(`, `self.emit(`...
fn call_on(line: &str) -> Option<String> {
    let t = line.trim_start();
    if t.starts_with("return") && (t.len() == 6 || t[6..].starts_with([' ', '('])) {
        return Some("return".into());
    }
    if t.starts_with("raise ConnectionRefusedError") {
        return Some("raise ConnectionRefusedError".into());
    }
    for name in CALLS {
        let pat = format!("{name}(");
        let mut from = 0;
        while let Some(at) = t[from..].find(&pat) {
            let at = from + at;
            let before = &t[..at];
            let prev = before.chars().last();
            if prev.is_none_or(|c| !(c.is_alphanumeric() || c == '_')) {
                // `socketio.emit(` or `self.emit(`: the receiver is part of the name.
                let recv: String = before
                    .chars()
                    .rev()
                    .skip_while(|c| *c == '.')
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect::<String>()
                    .chars()
                    .rev()
                    .collect();
                let dotted = prev == Some('.');
                // Only the SocketIO object's sleep: not time.sleep, eventlet's or gevent's.
                if *name == "sleep"
                    && (!dotted
                        || matches!(
                            recv.as_str(),
                            "" | "time" | "eventlet" | "gevent" | "asyncio"
                        ))
                {
                    from = at + pat.len();
                    continue;
                }
                return Some(if dotted && !recv.is_empty() {
                    format!("{recv}.{name}")
                } else {
                    (*name).to_string()
                });
            }
            from = at + pat.len();
        }
    }
    None
}

/// Reads one file's text into `scan`.
pub fn scan_text(file: &str, text: &str, scan: &mut Scan) {
    let lines: Vec<&str> = text.lines().collect();
    if scan.names.is_empty() {
        scan.names = socketio_names(text);
    }
    let names = scan.names.clone();
    let ours = |d: &str| {
        let recv = d.trim_start_matches('@').split(".on(").next().unwrap_or("");
        let recv = recv
            .strip_suffix(".event()")
            .or_else(|| recv.strip_suffix(".event"))
            .unwrap_or(recv);
        names.is_empty() || names.iter().any(|n| n == recv)
    };
    // Namespace classes registered with on_namespace(Class('/ns')).
    let mut registered: Vec<(String, String)> = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if let Some(at) = l.find("on_namespace(") {
            let rest = &l[at + "on_namespace(".len()..];
            let class: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if let Some(ns) = first_string(rest) {
                if !l.trim_start().starts_with('#') {
                    scan.namespaces.push((
                        class.clone(),
                        file.to_string(),
                        i + 1,
                        statement(&lines, i),
                    ));
                }
                registered.push((class, ns));
            }
        }
        if let Some(at) = l.find("start_background_task(") {
            let rest = &l[at + "start_background_task(".len()..];
            let rest = rest
                .trim_start()
                .strip_prefix("target=")
                .unwrap_or(rest)
                .trim_start();
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && !l.trim_start().starts_with('#') {
                scan.tasks.push((name, i + 1, statement(&lines, i)));
            }
        }
        if scan.socketio.is_none() && l.contains("SocketIO(") && !l.trim_start().starts_with('#') {
            scan.socketio = Some((file.to_string(), i + 1, statement(&lines, i)));
        }
        let code = l.trim_start();
        let runs = |name: &str| code.starts_with(&format!("{name}.run("));
        let started = if scan.names.is_empty() {
            runs("socketio")
        } else {
            scan.names.iter().any(|n| runs(n))
        };
        if scan.run.is_none() && started {
            scan.run = Some((file.to_string(), i + 1, statement(&lines, i)));
        }
    }
    // (class name, its indent, its namespace) while inside a Namespace class.
    let mut class: Option<(String, usize, String)> = None;
    let mut decorators: Vec<(usize, String)> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if blank(l) {
            i += 1;
            continue;
        }
        let ind = indent(l);
        let t = l.trim();
        if class.as_ref().is_some_and(|(_, ci, _)| ind <= *ci) {
            class = None;
        }
        if t.starts_with("class ") && t.contains("Namespace") {
            let name: String = t[6..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let ns = registered
                .iter()
                .find(|(c, _)| *c == name)
                .map_or_else(|| "?".to_string(), |(_, n)| n.clone());
            class = Some((name, ind, ns));
            decorators.clear();
            i += 1;
            continue;
        }
        if t.starts_with('@') {
            decorators.push((i, t.to_string()));
            i += 1;
            continue;
        }
        if t.starts_with("def ") || t.starts_with("async def ") {
            let name = def_name(t);
            let end = body_end(&lines, i, ind);
            let mut what: Option<(Kind, String, String)> = None;
            for (_, d) in &decorators {
                if let Some(rest) = d.split_once(".on(").map(|(_, r)| r) {
                    if d.contains(".on_error") || !ours(d) {
                        continue;
                    }
                    if let Some(ev) = first_string(rest) {
                        let ns = keyword(rest, "namespace").unwrap_or_else(|| "/".into());
                        what = Some((Kind::Handler, ev, ns));
                    }
                } else if (d.ends_with(".event") || d.ends_with(".event()")) && ours(d) {
                    let ns = keyword(d, "namespace").unwrap_or_else(|| "/".into());
                    what = Some((Kind::Handler, name.clone(), ns));
                } else if let Some(rest) = d.split_once(".route(").map(|(_, r)| r) {
                    if let Some(path) = first_string(rest) {
                        what = Some((Kind::Route(path), String::new(), String::new()));
                    }
                }
            }
            if what.is_none() {
                if let Some((_, ci, ns)) = &class {
                    if let (true, Some(ev)) = (ind > *ci, name.strip_prefix("on_")) {
                        what = Some((Kind::Handler, ev.to_string(), ns.clone()));
                    }
                }
            }
            if what.is_none() && class.is_none() {
                if let Some((_, line, text)) = scan.tasks.iter().find(|(n, _, _)| *n == name) {
                    let kind = Kind::Task {
                        line: *line,
                        text: text.clone(),
                    };
                    what = Some((kind, String::new(), String::new()));
                }
            }
            if let Some((kind, event, nsp)) = what {
                let first = decorators.first().map_or(i, |(d, _)| *d);
                let mut calls = body_calls(&lines, i, end, ind);
                if matches!(kind, Kind::Route(_) | Kind::Task { .. }) {
                    // A view's return is its HTTP answer, a task's is nobody's: not an ack.
                    calls.retain(|c| c.name != "return" && !c.name.starts_with("raise"));
                }
                let keep = !(matches!(kind, Kind::Route(_)) && calls.is_empty());
                if keep {
                    let fname = match &class {
                        Some((c, ci, _)) if ind > *ci => format!("{c}.{name}"),
                        _ => name.clone(),
                    };
                    scan.functions.push(Function {
                        kind,
                        file: file.to_string(),
                        event,
                        nsp,
                        name: fname,
                        first_line: first + 1,
                        def_line: i + 1,
                        source: lines[first..end.min(first + MAX_BODY)]
                            .iter()
                            .map(|s| s.to_string())
                            .collect(),
                        calls,
                    });
                }
            }
            decorators.clear();
            // The function's body is read: on to what follows it.
            i = end;
            continue;
        }
        decorators.clear();
        i += 1;
    }
}

/// The line after a block that starts at `i` with indentation `ind`.
fn body_end(lines: &[&str], i: usize, ind: usize) -> usize {
    let mut j = i + 1;
    // A signature over several lines.
    while j < lines.len() && !lines[j - 1].trim_end().ends_with(':') && j - i < 10 {
        j += 1;
    }
    let mut last = j;
    while j < lines.len() {
        let l = lines[j];
        if !blank(l) {
            if indent(l) <= ind {
                break;
            }
            last = j + 1;
        }
        j += 1;
    }
    last
}

fn body_calls(lines: &[&str], def: usize, end: usize, ind: usize) -> Vec<Call> {
    let mut out = Vec::new();
    // (name, indent) of a function defined inside the body.
    let mut nested: Option<(String, usize)> = None;
    for (k, l) in lines.iter().enumerate().take(end).skip(def + 1) {
        if blank(l) {
            continue;
        }
        let li = indent(l);
        if nested.as_ref().is_some_and(|(_, ni)| li <= *ni) {
            nested = None;
        }
        let t = l.trim();
        if li > ind && (t.starts_with("def ") || t.starts_with("async def ")) {
            let name = def_name(t);
            nested = Some((name, li));
            continue;
        }
        if let Some(name) = call_on(l) {
            // A `return` inside a nested function is not the handler's ack.
            if name == "return" && nested.is_some() {
                continue;
            }
            let text = statement(lines, k);
            let event = match name.as_str() {
                n if n.ends_with("emit") => {
                    let at = text.find("emit(").map_or(0, |a| a + 5);
                    first_string(&text[at..])
                        .filter(|_| text[at..].trim_start().starts_with(['\'', '"']))
                }
                n if n.ends_with("send") => Some("message".into()),
                _ => None,
            };
            out.push(Call {
                line: k + 1,
                name,
                event,
                text,
                nested: nested.as_ref().map(|(n, _)| n.clone()),
            });
        }
    }
    out
}

impl Call {
    /// Who an emit or send reaches, read from its keywords, as Flask-SocketIO decides.
    pub fn reach(&self) -> Option<String> {
        let t = &self.text;
        if !(self.name.ends_with("emit") || self.name.ends_with("send")) {
            return None;
        }
        let to = keyword(t, "to").or_else(|| keyword(t, "room"));
        let to_sender = ["to=request.sid", "room=request.sid"]
            .iter()
            .any(|k| t.replace(' ', "").contains(k));
        if to_sender {
            return Some("the client whose event is being handled (its own sid is a room)".into());
        }
        let to_var = [" to=", "(to=", ",to=", " room=", "(room=", ",room="]
            .iter()
            .any(|k| t.contains(k))
            && to.is_none();
        let skip_self = t.contains("include_self=False");
        let broadcast = t.contains("broadcast=True");
        // Through the SocketIO object (`socketio.emit`, `sio.emit`) or a Namespace class's own
        // method (`self.emit`): without a room, to everyone. Flask-SocketIO's module-level
        // function (`emit`, `flask_socketio.emit`) goes to the sender instead.
        let module_level = self.name.contains('.') && !self.name.starts_with("flask_socketio.");
        Some(match (to, to_var, broadcast, module_level) {
            (Some(r), _, _, _) => format!(
                "the room {r:?}{}",
                if skip_self { ", not the sender" } else { "" }
            ),
            (None, true, _, _) => format!(
                "a room or client named by a variable{}",
                if skip_self { ", not the sender" } else { "" }
            ),
            (None, false, true, _) => format!(
                "every client in the namespace{}",
                if skip_self { " but the sender" } else { "" }
            ),
            (None, false, false, true) => {
                "every client in the namespace (the SocketIO object's emit or send, or a Namespace class's self.emit, without a room)"
                    .into()
            }
            (None, false, false, false) => "the client whose event is being handled".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_socketio_objects_sleep_is_a_call() {
        assert_eq!(
            call_on("    socketio.sleep(0.5)").as_deref(),
            Some("socketio.sleep")
        );
        assert_eq!(call_on("    sio.sleep(1)").as_deref(), Some("sio.sleep"));
        for line in [
            "time.sleep(1)",
            "sleep(1)",
            "eventlet.sleep(0)",
            "gevent.sleep(0)",
        ] {
            assert_eq!(call_on(line), None, "{line}");
        }
    }

    const APP: &str = r#"
from flask_socketio import SocketIO, Namespace, emit, join_room

socketio = SocketIO(app,
                    async_mode="threading")

@app.route("/announce/<text>")
def announce(text):
    socketio.emit("announcement", {"text": text})
    return "sent\n"

@app.route("/plain")
def plain():
    return "no socket.io here"

@socketio.on("connect")
def on_connect(auth):
    if not auth:
        raise ConnectionRefusedError("bad token")
    emit("welcome", {"you": 1}, to=request.sid)

@socketio.on("join")
def on_join(room):
    join_room(room)
    emit("joined", {"room": room}, to=room,
         include_self=False)
    return {"ok": True}

@socketio.on('later', namespace='/x')
def on_later(seconds):
    def tick():
        socketio.emit("tick", {"after": seconds})
        return None
    socketio.start_background_task(tick)

@socketio.event
def shout(text):
    send(text.upper(), broadcast=True)

class Lobby(Namespace):
    def on_connect(self, auth=None):
        emit("lobby", {"hello": 1})

    def on_ping(self, n):
        return n + 1, "pong"

    def helper(self):
        pass

socketio.on_namespace(Lobby("/chat"))

def countdown(n):
    socketio.emit("tick", {"left": n}, to="room1")
    return n

def unrelated():
    socketio.emit("x", {})

socketio.start_background_task(target=countdown, n=3)
"#;

    fn find<'a>(s: &'a Scan, name: &str) -> &'a Function {
        s.functions
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("{name} not found in {:#?}", s.functions))
    }

    #[test]
    fn handlers_routes_namespaces_and_their_calls() {
        let mut s = Scan::default();
        scan_text("chat.py", APP, &mut s);
        let names: Vec<&str> = s.functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "announce",
                "on_connect",
                "on_join",
                "on_later",
                "shout",
                "Lobby.on_connect",
                "Lobby.on_ping",
                "countdown"
            ]
        );
        assert_eq!(s.socketio.as_ref().unwrap().1, 4);
        assert!(s.socketio.as_ref().unwrap().2.contains("async_mode"));
        let join = find(&s, "on_join");
        assert_eq!((join.event.as_str(), join.nsp.as_str()), ("join", "/"));
        let calls: Vec<(&str, Option<&str>)> = join
            .calls
            .iter()
            .map(|c| (c.name.as_str(), c.event.as_deref()))
            .collect();
        assert_eq!(
            calls,
            [
                ("join_room", None),
                ("emit", Some("joined")),
                ("return", None)
            ]
        );
        assert_eq!(
            join.calls[1].reach().unwrap(),
            "a room or client named by a variable, not the sender"
        );
        assert!(join.calls[1].text.contains("include_self=False"));
        let later = find(&s, "on_later");
        assert_eq!(later.nsp, "/x");
        assert_eq!(later.calls[0].nested.as_deref(), Some("tick"));
        assert_eq!(later.calls.len(), 2, "{:?}", later.calls);
        let connect = find(&s, "on_connect");
        assert_eq!(connect.calls[0].name, "raise ConnectionRefusedError");
        assert_eq!(
            connect.calls[1].reach().unwrap(),
            "the client whose event is being handled (its own sid is a room)"
        );
        assert_eq!(find(&s, "shout").event, "shout");
        // A function started with start_background_task is a task, its return no ack; a
        // function nobody starts is nothing of Socket.IO's.
        let task = find(&s, "countdown");
        assert!(
            matches!(&task.kind, Kind::Task { text, .. } if text.contains("target=countdown")),
            "{:?}",
            task.kind
        );
        assert_eq!(task.calls.len(), 1, "{:?}", task.calls);
        assert!(!s.functions.iter().any(|f| f.name == "unrelated"));
        let mut t = Scan::default();
        scan_text(
            "x.py",
            "@socketio.on('say')\ndef say(data):\n    emit('said', data, to=data[\"room\"])\n",
            &mut t,
        );
        assert_eq!(
            t.functions[0].calls[0].reach().unwrap(),
            "a room or client named by a variable"
        );
        assert_eq!(
            find(&s, "shout").calls[0].reach().unwrap(),
            "every client in the namespace"
        );
        let ping = find(&s, "Lobby.on_ping");
        assert_eq!((ping.event.as_str(), ping.nsp.as_str()), ("ping", "/chat"));
        assert_eq!(
            find(&s, "announce").calls[0].reach().unwrap(),
            "every client in the namespace (the SocketIO object's emit or send, or a Namespace class's self.emit, without a room)"
        );
        assert_eq!(
            find(&s, "announce").kind,
            Kind::Route("/announce/<text>".into())
        );
        assert_eq!(join.first_line, join.def_line - 1);
    }

    #[test]
    fn a_clients_decorators_are_not_the_servers_handlers() {
        let mut s = Scan::default();
        scan_text(
            "both.py",
            "socketio = SocketIO(app)\nc = socketio_client.Client()\n\n@c.on('*')\ndef any(e):\n    pass\n\n@socketio.on('x')\ndef x():\n    emit('y')\n",
            &mut s,
        );
        let events: Vec<&str> = s.functions.iter().map(|f| f.event.as_str()).collect();
        assert_eq!(events, ["x"]);
    }

    #[test]
    fn odd_input_does_not_panic() {
        for text in [
            "",
            "@",
            "def",
            "class X(Namespace):\n  def on_(",
            "@socketio.on(\ndef f():\n",
            "\u{e9}\u{e9}(\"",
            "return",
        ] {
            let mut s = Scan::default();
            scan_text("x.py", text, &mut s);
        }
    }
}
