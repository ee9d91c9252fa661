//! "Your code" from the app's source, for a capture (no `dispel watch`): each handler, route
//! and `SocketIO(...)` the source has (`pysource`), matched to the Socket.IO packets the
//! capture shows for the reported client. What the capture cannot say (which function really
//! ran) is inferred from names and timing, and said to be.

use std::collections::BTreeSet;

use super::calls::CallKind;
use crate::report::model::*;
use crate::report::pysource::{Function, Kind, Scan};
use crate::report::Ev;
use crate::trace::{Dir, Stage};

/// How long after an event the packets it caused may still go out.
const WINDOW: f64 = 1.0;

/// A packet the client sent that a handler would receive: its event (`connect` for CONNECT).
struct Incoming<'a> {
    ev: &'a Ev,
    event: String,
    nsp: String,
    id: Option<u64>,
}

fn incoming(evs: &[Ev]) -> Vec<Incoming<'_>> {
    evs.iter()
        .filter(|e| e.stage == Stage::SioPacket && e.dir == Some(Dir::C2S))
        .filter_map(|e| {
            let nsp = e.str("nsp").unwrap_or("/").to_string();
            let event = match e.str("type")? {
                "EVENT" | "BINARY_EVENT" => e.str("event")?.to_string(),
                "CONNECT" => "connect".to_string(),
                _ => return None,
            };
            Some(Incoming {
                ev: e,
                event,
                nsp,
                id: e.u64("id"),
            })
        })
        .collect()
}

fn handles(f: &Function, i: &Incoming) -> bool {
    f.kind == Kind::Handler && f.event == i.event && (f.nsp == i.nsp || f.nsp == "?")
}

fn title(f: &Function) -> String {
    let head = f
        .source
        .first()
        .map(|l| l.trim().to_string())
        .unwrap_or_default();
    let shown = if head.starts_with('@') {
        head
    } else {
        f.name.clone()
    };
    format!("Your code: {shown} ({}:{})", f.file, f.first_line)
}

fn numbered(f: &Function) -> String {
    let mut out = String::new();
    for (k, l) in f.source.iter().enumerate() {
        out.push_str(&format!("{:>4}  {l}\n", f.first_line + k));
    }
    out
}

/// What went out to the same client on the handler's namespace after `inc`, before the
/// client's next packet (or [`WINDOW`]); for a CONNECT, until its answer at least.
fn followed<'a>(inc: &Incoming, evs: &'a [Ev]) -> Vec<&'a Ev> {
    let session = inc.ev.str("sid");
    let same = |e: &Ev| e.str("sid") == session && e.str("nsp").unwrap_or("/") == inc.nsp;
    let answer = (inc.event == "connect")
        .then(|| {
            evs.iter()
                .find(|e| {
                    e.seq > inc.ev.seq
                        && e.stage == Stage::SioPacket
                        && e.dir == Some(Dir::S2C)
                        && matches!(e.str("type"), Some("CONNECT" | "CONNECT_ERROR"))
                        && same(e)
                })
                .map(|e| e.t)
        })
        .flatten();
    let next_in = evs
        .iter()
        .filter(|e| {
            e.stage == Stage::SioPacket
                && e.dir == Some(Dir::C2S)
                && e.seq > inc.ev.seq
                && e.str("sid") == session
        })
        .map(|e| e.t)
        .next();
    let until = match (next_in, answer) {
        (Some(n), Some(a)) => Some(n.max(a)),
        (n, None) => n,
        (None, a) => a,
    };
    evs.iter()
        .filter(|e| e.stage == Stage::SioPacket && e.dir == Some(Dir::S2C) && same(e))
        .filter(|e| e.seq > inc.ev.seq && e.t - inc.ev.t <= WINDOW)
        .filter(|e| until.is_none_or(|n| e.t <= n))
        .take(12)
        .collect()
}

fn function_section(
    f: &Function,
    incs: &[Incoming],
    evs: &[Ev],
    ctx: &super::Ctx,
    explained: &mut BTreeSet<CallKind>,
) -> Section {
    let conn = ctx.conn;
    let mut blocks = vec![code("python", numbered(f))];
    let mine: Vec<&Incoming> = incs.iter().filter(|i| handles(f, i)).collect();
    match &f.kind {
        Kind::Route(path) => blocks.push(text_para(format!(
            "An HTTP route ({path}) that makes Socket.IO calls: a request to it is not a Socket.IO packet, so this capture's client shows only what it received from them."
        ))),
        Kind::Task { line, text } => blocks.push(para(vec![
            Inline::Text(format!("A background task, started at line {line} by ")),
            Inline::Code(text.lines().next().unwrap_or("").trim().to_string()),
            Inline::Text(format!(". {}", CallKind::Task.what())),
        ])),
        Kind::Handler if mine.is_empty() => blocks.push(text_para(format!(
            "Not exercised by the client this report follows (connection #{conn} and its session): it sent no {} to {}. Other clients of the capture may have; a report of one of their connections shows them.",
            if f.event == "connect" { "CONNECT".to_string() } else { format!("event {:?}", f.event) },
            f.nsp
        ))),
        Kind::Handler => {
            let seqs: Vec<String> = mine.iter().take(8).map(|i| format!("#{}", i.ev.seq)).collect();
            blocks.push(text_para(format!(
                "In this capture: {} packet(s) for it ({}{}). python-socketio calls this function for each (matched by event name and namespace: the bytes do not name functions).",
                mine.len(),
                seqs.join(", "),
                if mine.len() > seqs.len() { ", ..." } else { "" }
            )));
            for first in mine.iter().take(4) {
                let after = followed(first, evs);
                let acked = after.iter().any(|e| {
                    matches!(e.str("type"), Some("ACK" | "BINARY_ACK")) && e.u64("id") == first.id
                });
                if let (Some(id), false) = (first.id, acked) {
                    blocks.push(text_para(format!(
                        "The client asked for an acknowledgement (id {id}) and none came back within {WINDOW} s: the handler raised (the server's console has the traceback; nothing is sent for an exception), or it was still running."
                    )));
                }
                if after.is_empty() {
                    blocks.push(text_para(format!(
                        "After event #{}, nothing went out to this client before its next packet.",
                        first.ev.seq
                    )));
                } else {
                    let mut rows = Vec::new();
                    for e in after {
                        let ty = e.str("type").unwrap_or("?");
                        let name = e.str("event");
                        let cause = match (ty, name) {
                            ("ACK" | "BINARY_ACK", _) if e.u64("id") == first.id => f
                                .calls
                                .iter()
                                .find(|c| c.name == "return" && c.nested.is_none())
                                .map_or_else(
                                    || "python-socketio's ack (the handler returned None)".to_string(),
                                    |c| format!("the return value, line {}", c.line),
                                ),
                            ("CONNECT_ERROR", _) => f
                                .calls
                                .iter()
                                .find(|c| c.name.starts_with("raise"))
                                .map_or_else(
                                    || "a refusal (the handler returned False?)".to_string(),
                                    |c| format!("the refusal, line {}", c.line),
                                ),
                            ("CONNECT", _) => "python-socketio accepts the connection once the handler returns".to_string(),
                            (_, Some(n)) => {
                                let named: Vec<_> = f
                                    .calls
                                    .iter()
                                    .filter(|c| c.event.as_deref() == Some(n))
                                    .collect();
                                match named.iter().find(|c| !c.text.contains("include_self=False")) {
                                    Some(c) => format!("{}, line {}", c.name, c.line),
                                    None if !named.is_empty() => format!(
                                        "not from line {}: its include_self=False leaves this client out, so another client's event made it",
                                        named[0].line
                                    ),
                                    None => "not from this function's own lines (another handler, a background task or another process)".to_string(),
                                }
                            }
                            _ => String::new(),
                        };
                        rows.push(vec![
                            vec![Inline::Text(format!("#{}", e.seq))],
                            vec![Inline::Code(e.summary.clone())],
                            vec![Inline::Text(cause)],
                        ]);
                    }
                    blocks.push(text_para(format!(
                        "What went out to this client after event #{} (inferred from names and timing: within {WINDOW} s and before its next packet):",
                        first.ev.seq
                    )));
                    blocks.push(Block::Table {
                        head: vec!["packet".into(), "sent".into(), "from your line".into()],
                        rows,
                    });
                }
            }
        }
    }
    let calls: Vec<Vec<Inline>> = f
        .calls
        .iter()
        .map(|c| {
            let mut line = vec![
                Inline::Text(format!("line {}: ", c.line)),
                Inline::Code(c.text.clone()),
            ];
            let what = match c.name.as_str() {
                "return" => Some("its value is sent back as the ACK when the client asked for one".to_string()),
                n if n.starts_with("raise") => Some("refuses the connection: the client gets CONNECT_ERROR with the exception's argument".into()),
                n if n.ends_with("join_room") || n.ends_with("leave_room") || n.ends_with("close_room") => Some("changes a room in the server's memory: nothing goes on the wire".into()),
                n if n.ends_with("disconnect") => Some("the server sends DISCONNECT and forgets the client".into()),
                n if n.ends_with("start_background_task") => Some("runs a function on its own thread or greenlet".into()),
                _ => c.reach().map(|r| format!("reaches {r}")),
            };
            if let Some(w) = what {
                line.push(Inline::Text(format!(": {w}")));
            }
            if let Some(n) = &c.nested {
                line.push(Inline::Text(format!(" (inside {n}, not the handler itself)")));
            }
            line
        })
        .collect();
    if !calls.is_empty() {
        blocks.push(text_para("Its Socket.IO calls:"));
        blocks.push(Block::List {
            ordered: false,
            items: calls,
        });
    }
    // The library chain of each kind of call, the first time the app makes one. A task is
    // started elsewhere: its chain goes where it is started.
    let mut kinds: Vec<(CallKind, super::calls::Form)> = Vec::new();
    if matches!(f.kind, Kind::Task { .. }) {
        kinds.push((CallKind::Task, super::calls::Form::PLAIN));
    }
    for c in &f.calls {
        if c.nested.is_some() {
            continue;
        }
        if let Some(k) = CallKind::in_function(c, f).filter(|k| *k != CallKind::Task) {
            kinds.push((k, super::calls::Form::of(c)));
        }
    }
    for (kind, method) in kinds {
        if !explained.insert(kind) {
            continue;
        }
        let links = kind.links(ctx, method);
        if links.is_empty() {
            continue;
        }
        blocks.push(para(vec![
            Inline::Strong(format!("{}.", kind.title_for(method))),
            Inline::Text(format!(
                " {} The library code it goes through:",
                kind.what()
            )),
        ]));
        blocks.push(super::chain::link_list(&links));
    }
    Section {
        title: title(f),
        blocks,
    }
}

/// The app's own start, from its source: `SocketIO(...)` and `socketio.run(...)`, each with
/// what it does and its library chain; and, with `tasks`, each background task, with how it
/// is started.
pub(super) fn startup_sections(scan: &Scan, ctx: &super::Ctx, tasks: bool) -> Vec<Section> {
    let mut out = Vec::new();
    if let Some((file, line, text)) = &scan.socketio {
        let mut blocks = vec![code("python", format!("{text}\n"))];
        let mut said = vec![
            "Flask-SocketIO builds python-socketio's Server, and python-engineio's under it, and wraps the Flask app's WSGI callable so that /socket.io/ requests reach them.".to_string(),
        ];
        said.push(match crate::report::pysource::keyword_value(text, "async_mode") {
            Some(m) => format!("async_mode={m:?}: the server runs on {m} (its threads or greenlets run the handlers)."),
            None if text.contains("async_mode") => "async_mode is given by an expression: the mode is whatever it holds when the app starts.".into(),
            None => "No async_mode: python-engineio picks the first that imports of eventlet, gevent and threading.".into(),
        });
        if text.contains("message_queue") {
            said.push("message_queue: the processes share a queue (a redis:// URL gives python-socketio's RedisManager); every emit is published for the others.".into());
        }
        if text.contains("cors_allowed_origins") {
            said.push("cors_allowed_origins: the pages of those origins may connect; by default only the server's own.".into());
        }
        blocks.push(text_para(said.join(" ")));
        if let Some(sec) = super::calls::socketio_links(ctx, text) {
            if !sec.links.is_empty() {
                blocks.push(text_para("The library code it runs:"));
                blocks.push(super::chain::link_list(&sec.links));
            }
        }
        out.push(Section {
            title: format!("Your code: SocketIO(...) ({file}:{line})"),
            blocks,
        });
    }
    if let Some((file, line, text)) = &scan.run {
        let mut blocks = vec![code("python", format!("{text}\n"))];
        if let Some(sec) = ctx.entry("entry:run") {
            blocks.push(text_para(super::calls::run_text(ctx.stack.mode)));
            if !sec.links.is_empty() {
                blocks.push(super::chain::link_list(&sec.links));
            }
        }
        out.push(Section {
            title: format!(
                "Your code: {} ({file}:{line})",
                text.lines().next().unwrap_or("run")
            ),
            blocks,
        });
    }
    for f in scan.functions.iter().filter(|_| tasks) {
        let Kind::Task { line, text } = &f.kind else {
            continue;
        };
        let mut blocks = vec![
            code("python", numbered(f)),
            para(vec![
                Inline::Text(format!(
                    "A background task of yours, started at line {line} by "
                )),
                Inline::Code(text.lines().next().unwrap_or("").trim().to_string()),
                Inline::Text(format!(". {}", CallKind::Task.what())),
            ]),
        ];
        let links = CallKind::Task.links(ctx, super::calls::Form::PLAIN);
        if !links.is_empty() {
            blocks.push(text_para("How it is started:"));
            blocks.push(super::chain::link_list(&links));
        }
        out.push(Section {
            title: format!(
                "Your background task {} ({}:{})",
                f.name, f.file, f.def_line
            ),
            blocks,
        });
    }
    out
}

/// The "Your code" sections for a capture read with the app's source.
pub(super) fn sections(scan: &Scan, evs: &[Ev], ctx: &super::Ctx) -> Vec<Section> {
    let incs = incoming(evs);
    // A task's own section below says how it is started.
    let mut out = startup_sections(scan, ctx, false);
    let mut explained = BTreeSet::new();
    for f in &scan.functions {
        out.push(function_section(f, &incs, evs, ctx, &mut explained));
    }
    if let Some(first) = out
        .iter_mut()
        .find(|s| s.title.contains("@") || s.title.contains('.'))
    {
        if let Some(sec) = ctx.entry("entry:on") {
            first.blocks.push(text_para(format!(
                "From the packet to a handler (every handler of your app goes this way): {}",
                sec.summary
            )));
            if !sec.links.is_empty() {
                first.blocks.push(super::chain::link_list(&sec.links));
            }
        }
    }
    let unhandled: Vec<&Incoming> = incs
        .iter()
        .filter(|i| i.event != "connect" && !scan.functions.iter().any(|f| handles(f, i)))
        .collect();
    if !unhandled.is_empty() {
        let mut names: Vec<String> = unhandled
            .iter()
            .map(|i| format!("{:?} on {} (#{})", i.event, i.nsp, i.ev.seq))
            .collect();
        names.dedup();
        out.push(Section {
            title: "Your code: events no handler of your source takes".into(),
            blocks: vec![
                text_para(format!(
                    "The client sent {} with no matching @socketio.on(...) or Namespace method in {}. python-socketio ignores an event nobody handles: no error, and no ACK, so a client callback waiting for one never fires. Check the name's spelling and the namespace, or the file that registers the handler if it is not among these.",
                    names.join(", "),
                    scan.files.join(", ")
                )),
            ],
        });
    }
    out
}
