//! The report's sections: the exchange at a glance, one section per stage present on the
//! chosen connection (how it works, what this trace shows, the Python chain), and the entry
//! points of the student's own code.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use crate::cli::VersionSet;
use crate::links::{self, StepLink};
use crate::report::diagram::Step;
use crate::report::explain;
use crate::report::model::*;
use crate::report::{Ev, Input};
use crate::trace::{Dir, Stage};
use crate::wire::{handshake, socketio, ws_frame};

mod calls;
mod chain;
mod eio;
mod entries;
mod fromsource;
mod glance;
mod handin;
mod sio;
mod tcp_http;
mod ws;
pub mod yours;

use chain::*;
use eio::*;
use entries::*;
pub(crate) use glance::DRAWN_BROADCASTS;
use glance::*;
use sio::*;
use tcp_http::*;
use ws::*;

/// Table rows shown before "... N more".
const MAX_ROWS: usize = 12;
/// Bytes of a payload worked through by hand.
const UNMASK_BYTES: usize = 8;

struct Ctx<'a> {
    all: &'a [Ev],
    installed: Option<&'a links::site::Installed>,
    /// The events of the chosen connection (and broadcasts that reach it), in trace order.
    evs: Vec<&'a Ev>,
    /// Every Socket.IO EVENT the server sent, by event name, in time order: where a broadcast's
    /// deliveries are looked up (a capture of a busy class has thousands of broadcasts).
    sent: HashMap<&'a str, Vec<&'a Ev>>,
    conn: u64,
    /// The connections of the chosen connection's Engine.IO session (`conn` among them).
    session: &'a [u64],
    /// The version set and async mode the links come from.
    stack: links::Stack,
    /// How the report knows the async mode.
    mode_known: &'static str,
    /// See `Options::ran`.
    ran: Option<&'a str>,
}

/// One TCP connection of the client, and what it carried.
struct Carried<'a> {
    conn: u64,
    accept: &'a Ev,
    /// HTTP requests on it (a WebSocket's upgrade request among them).
    requests: usize,
    /// Long-polling requests among them.
    polls: usize,
    websocket: bool,
    close: Option<&'a Ev>,
}

/// In words, what the client's connections carried, when there were several: "This client's
/// Engine.IO session used 5 TCP connections: 4 carried one long-polling request each; this
/// one carried the WebSocket, from its upgrade request to the end."
fn connections_sentence(ctx: &Ctx) -> Option<String> {
    let conns = ctx.connections();
    if conns.len() < 2 {
        return None;
    }
    let main = ctx.main_conn();
    let others: Vec<&Carried> = conns.iter().filter(|c| c.conn != main).collect();
    let count = |n: usize, what: &str| match n {
        1 => format!("1 carried {what}"),
        n => format!("{n} carried {what}"),
    };
    let mut parts = Vec::new();
    let polling: Vec<&&Carried> = others.iter().filter(|c| c.polls > 0).collect();
    if !polling.is_empty() {
        let polls: usize = polling.iter().map(|c| c.polls).sum();
        parts.push(if polls == polling.len() {
            count(polling.len(), "one long-polling request each")
        } else {
            count(
                polling.len(),
                &format!("{polls} long-polling requests between them"),
            )
        });
    }
    let pages = others
        .iter()
        .filter(|c| c.polls == 0 && c.requests > 0)
        .count();
    if pages > 0 {
        parts.push(count(pages, "requests for the page and its files"));
    }
    parts.push(
        if conns.iter().any(|c| c.conn == main && c.websocket) {
            "this one carried the WebSocket, from its upgrade request to the end"
        } else {
            "this one is followed here"
        }
        .to_string(),
    );
    // Why each long-polling request needs a connection of its own is the stage's "how it
    // works" text, just above wherever this is said.
    Some(format!(
        "This client's Engine.IO session used {} TCP connections: {}.",
        conns.len(),
        parts.join("; ")
    ))
}

impl<'a> Ctx<'a> {
    fn of(&self, stage: Stage) -> impl Iterator<Item = &'a Ev> + '_ {
        self.evs.iter().copied().filter(move |e| e.stage == stage)
    }

    /// Is `conn` one of the client's connections (its session's)?
    fn mine(&self, conn: Option<u64>) -> bool {
        conn.is_some_and(|c| self.session.contains(&c))
    }

    /// The client's TCP connections (its session's), in the order they were opened, each
    /// with what it carried.
    fn connections(&self) -> Vec<Carried<'a>> {
        self.of(Stage::TcpAccept)
            .filter_map(|accept| {
                let conn = accept.conn?;
                let on = |stage: Stage| {
                    self.evs
                        .iter()
                        .filter(move |e| e.stage == stage && e.conn == Some(conn))
                };
                Some(Carried {
                    conn,
                    accept,
                    requests: on(Stage::HttpRequest).count(),
                    polls: on(Stage::HttpRequest)
                        .filter(|r| r.kind.is_some_and(crate::stage::Kind::is_polling))
                        .count(),
                    websocket: on(Stage::WsHandshake).next().is_some(),
                    close: on(Stage::TcpClose).next().copied(),
                })
            })
            .collect()
    }

    /// The first event of `stage` on the connection the report follows, else the first of
    /// the client's.
    fn on_main(&self, stage: Stage) -> Option<&'a Ev> {
        let main = self.main_conn();
        self.of(stage)
            .find(|e| e.conn == Some(main))
            .or_else(|| self.of(stage).next())
    }

    /// The connection the report follows: the one that carried the WebSocket, else the
    /// chosen one.
    fn main_conn(&self) -> u64 {
        self.of(Stage::WsHandshake)
            .find_map(|h| h.conn)
            .unwrap_or(self.conn)
    }

    /// A built-in step, found again in the installed files when the report links those.
    fn relink(&self, l: StepLink) -> StepLink {
        match self.installed {
            Some(inst) => inst.relink(l),
            None => l,
        }
    }

    /// The links of an event of `stage`, at the report's versions.
    fn links(&self, stage: Stage, kind: Option<crate::stage::Kind>) -> Vec<StepLink> {
        match self.installed {
            Some(inst) => inst.relink_all(links::for_event_all(self.stack, stage, kind)),
            None => links::for_event(self.stack, stage, kind).to_vec(),
        }
    }

    /// One step by its id, at the report's versions; none where it does not hold.
    fn step(&self, step_id: &str) -> Option<StepLink> {
        let l = links::step_link(self.stack, step_id)?;
        match self.installed {
            Some(inst) => Some(inst.relink(l)).filter(StepLink::applies),
            None => l.step.builtin_holds().then_some(l),
        }
    }

    /// An entry point of the app's code (`entry:on`...), at the report's versions.
    fn entry(&self, name: &str) -> Option<links::Section> {
        let sec = links::entry_point(self.stack, name).ok().flatten()?.clone();
        Some(match self.installed {
            Some(inst) => inst.relink_section(sec),
            None => sec.builtin(),
        })
    }
}

/// What a report is made with, besides its input.
pub struct Options<'a> {
    /// The built-in version set the links start from, and the server's async mode.
    pub stack: links::Stack,
    /// How the async mode is known ("given", the app's source...).
    pub mode_known: &'static str,
    /// The input's file name.
    pub name: &'a str,
    /// What the report calls its input instead ("the app chat.py, watched").
    pub title: Option<&'a str>,
    /// The app's source, quoted in "Your code".
    pub app: Option<&'a std::path::Path>,
    /// The installed versions to link instead of the built-in ones.
    pub installed: Option<&'a links::site::Installed>,
    /// The document a student hands in, instead of the full walk through every stage.
    pub hand_in: bool,
    /// The versions a watched app ran, when the links cannot follow them (its interpreter is
    /// not on this machine).
    pub ran: Option<&'a str>,
}

/// What the sections are built from: the chosen connection's session and its events, and
/// every EVENT the server sent (where a broadcast's deliveries are looked up).
fn context<'a>(input: &'a Input, conn: u64, opts: &Options<'a>) -> Ctx<'a> {
    let session: &[u64] = if input.session.contains(&conn) {
        &input.session
    } else {
        std::slice::from_ref(&input.conn)
    };
    let evs: Vec<&Ev> = input
        .events
        .iter()
        .filter(|e| session.iter().any(|&c| e.touches(c)))
        .collect();
    let mut sent: HashMap<&str, Vec<&Ev>> = HashMap::new();
    for e in &input.events {
        if e.stage == Stage::SioPacket && e.dir == Some(Dir::S2C) && e.str("type") == Some("EVENT")
        {
            if let Some(name) = e.str("event") {
                sent.entry(name).or_default().push(e);
            }
        }
    }
    for list in sent.values_mut() {
        // Stable: events at the same time stay in trace order.
        list.sort_by(|a, b| a.t.total_cmp(&b.t));
    }
    Ctx {
        all: &input.events,
        installed: opts.installed,
        evs,
        sent,
        conn,
        session,
        stack: opts.stack,
        mode_known: opts.mode_known,
        ran: opts.ran,
    }
}

pub fn build(input: &Input, conn: u64, opts: &Options) -> Doc {
    if opts.hand_in {
        return handin::build(input, conn, opts);
    }
    let (name, app) = (opts.name, opts.app);
    let ctx = context(input, conn, opts);
    let mut sections = Vec::new();
    if !input.diagnoses.is_empty() {
        sections.push(Section {
            title: "What went wrong".into(),
            blocks: diagnoses(&ctx, &input.diagnoses),
        });
    }
    let mut doc = Doc {
        title: format!(
            "How Flask-SocketIO works: connection #{conn} of {}{}",
            opts.title.unwrap_or(name),
            match ctx.session.len() {
                0 | 1 => String::new(),
                2 => ", and the client's other connection".to_string(),
                n => format!(", and the client's {} other connections", n - 1),
            }
        ),
        intro: intro(&ctx, input, name, opts.title),
        sections,
    };
    doc.sections.push(Section {
        title: "The exchange at a glance".into(),
        blocks: glance(&ctx),
    });
    let mut n = 0;
    for &stage in explain::ORDER {
        if ctx.of(stage).next().is_none() {
            continue;
        }
        n += 1;
        doc.sections.push(Section {
            title: format!("{n}. {stage}: {}", stage_title(stage)),
            blocks: stage_section(&ctx, stage),
        });
    }
    if !input.sites.is_empty() {
        // The app was watched: its own handlers and calls, as they ran.
        let src = yours::AppSource::new(app);
        doc.sections
            .extend(yours::sections(&input.sites, &input.events, conn, &src));
        // What the trace cannot show of the app's start, from its source when given.
        if let Some(scan) = app.and_then(|a| crate::report::pysource::scan(a).ok()) {
            doc.sections
                .extend(fromsource::startup_sections(&scan, &ctx, true));
        }
    } else if let Some(app) = app {
        // A capture and the app's source: the source's handlers, matched to the packets.
        match crate::report::pysource::scan(app) {
            Ok(scan) if !scan.functions.is_empty() || scan.socketio.is_some() => doc
                .sections
                .extend(fromsource::sections(&scan, &input.events, &ctx)),
            Ok(scan) => doc.sections.push(Section {
                title: "Your code".into(),
                blocks: vec![text_para(format!(
                    "No Flask-SocketIO handler was found in {} (@socketio.on(...), @socketio.event, a Namespace class): nothing of the source can be matched to this capture.",
                    if scan.files.is_empty() { "the files given".to_string() } else { scan.files.join(", ") }
                ))],
            }),
            Err(e) => doc.sections.push(Section {
                title: "Your code".into(),
                blocks: vec![text_para(format!("The app's source could not be read: {e}"))],
            }),
        }
    } else if input.auction {
        doc.sections.extend(entry_sections(&ctx));
    } else {
        doc.sections.push(Section {
            title: "Your code".into(),
            blocks: vec![text_para(
                "A capture shows what crossed the wire, not which of your functions ran: the handlers and emits of your app are not in it. Give the app's source (--app app.py, or its folder) and its handlers are matched to the packets here; watched while it runs (dispel watch), your app's own handlers and Socket.IO calls get sections of their own, each with the chain of calls it really made.",
            )],
        });
    }
    doc
}

/// "What went wrong": each diagnosis with its evidence, the fix and the deciding line, at the
/// report's versions (the installed ones when given).
fn diagnoses(ctx: &Ctx, list: &[Ev]) -> Vec<Block> {
    let mut blocks = vec![text_para(
        "These failures were recognised in the traffic. Each names what the bytes show; where the cause is one of several, it says so.",
    )];
    for d in list {
        let cause = d.str("cause").unwrap_or("?");
        let at = match d.conn {
            Some(c) => format!(" (connection #{c}, {:.3} s)", d.t),
            None => format!(" ({:.3} s)", d.t),
        };
        blocks.push(Block::Heading(format!("{cause}{at}")));
        blocks.push(text_para(d.summary.clone()));
        let evidence: Vec<Vec<Inline>> = d
            .fields
            .get("evidence")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|v| {
                let conn = v["conn"]
                    .as_u64()
                    .map_or(String::new(), |c| format!("#{c} "));
                vec![
                    t(format!(
                        "{conn}{:.3} s {}: ",
                        v["t"].as_f64().unwrap_or(0.0),
                        v["stage"].as_str().unwrap_or("?")
                    )),
                    c(v["summary"].as_str().unwrap_or("")),
                ]
            })
            .collect();
        if !evidence.is_empty() {
            blocks.push(text_para("The evidence:"));
            blocks.push(Block::List {
                ordered: false,
                items: evidence,
            });
        }
        if let Some(fix) = d.str("fix") {
            blocks.push(para(vec![b("The fix"), t(format!(": {fix}"))]));
        }
        let step = d
            .fields
            .get("source")
            .and_then(|s| s.get("step"))
            .and_then(Value::as_str);
        if let Some(l) = step.and_then(|s| links::deciding_line(ctx.stack, s)) {
            let l = ctx.relink(l);
            let mut line = vec![t("The line that decides it: ")];
            line.extend(link_item(&l));
            blocks.push(para(line));
        }
    }
    blocks
}

fn stage_title(stage: Stage) -> &'static str {
    match stage {
        Stage::TcpAccept => "the TCP connection is accepted",
        Stage::HttpRequest => "the HTTP request",
        Stage::HttpResponse => "the HTTP response",
        Stage::WsHandshake => "the WebSocket opening handshake",
        Stage::WsFrame => "WebSocket frames",
        Stage::WsMessage => "WebSocket messages",
        Stage::EioPacket => "Engine.IO packets",
        Stage::EioUpgrade => "the Engine.IO transport upgrade",
        Stage::SioPacket => "Socket.IO packets",
        Stage::SioDispatch => "dispatch to your handler",
        Stage::SioBroadcast => "the broadcast",
        Stage::SioEmit => "what your code asked Socket.IO to send",
        Stage::SioRoom => "rooms",
        Stage::WsClose => "the WebSocket closing handshake",
        Stage::TcpClose => "the TCP connection closes",
        Stage::MqPublish => "publishing on the message queue",
        Stage::MqMessage => "a message from the queue",
        Stage::TcpData | Stage::Error | Stage::Diagnosis | Stage::App => "other",
    }
}

/// Which versions the links point at, and how the report knows them.
fn versions_text(ctx: &Ctx) -> String {
    let list = linked_versions(ctx).join(", ");
    match ctx.installed {
        Some(_) => format!(
            "the versions installed with your app ({list}), each line found again in the installed files, {}",
            mode_text(ctx)
        ),
        None => format!(
            "dispel's built-in {} versions ({list}), {}, {}",
            match ctx.stack.set {
                VersionSet::Current => "current",
                VersionSet::Seed => "course-seed",
            },
            match ctx.ran {
                Some(ran) => format!("not the ones your app ran ({ran}, as the trace records; the interpreter that ran it is not on this machine, so the installed files cannot be read)"),
                None => "not necessarily the ones your app runs".to_string(),
            },
            mode_text(ctx)
        ),
    }
}

/// The packages the links point at, with their versions (installed ones when relinked), in
/// the order the chain first meets them.
fn linked_versions(ctx: &Ctx) -> Vec<String> {
    let mut packages: Vec<(String, String)> = Vec::new();
    for step in links::chain(ctx.stack)
        .into_iter()
        .flatten()
        .flat_map(|c| c.steps.iter())
        .filter(|s| s.holds_for(ctx.stack.mode))
        // The releases linked: as installed, else the set as installed by itself.
        .filter(|s| match (&s.only_if, ctx.installed) {
            (None, _) => true,
            (Some(c), _) if !c.asked_in(ctx.stack.mode) => true,
            (Some(c), Some(inst)) => inst.holds(c),
            (Some(c), None) => c.builtin,
        })
    {
        if !packages.iter().any(|(p, _)| p == &step.package) {
            packages.push((step.package.clone(), step.version.clone()));
        }
    }
    match ctx.installed {
        Some(inst) => packages
            .iter()
            .filter_map(|(p, _)| {
                if p == "cpython" {
                    return inst.python_version.as_ref().map(|v| format!("Python {v}"));
                }
                let d = inst.dists.get(&links::site::normalize(p))?;
                Some(format!("{} {}", d.name, d.version))
            })
            .collect(),
        None => packages.iter().map(|(p, v)| format!("{p} {v}")).collect(),
    }
}

/// Which async mode's server code the links follow, and how the report knows it.
fn mode_text(ctx: &Ctx) -> String {
    let server = match ctx.stack.mode {
        links::AsyncMode::Threading => "Werkzeug's development server and simple-websocket",
        links::AsyncMode::Eventlet => "eventlet's WSGI server and WebSocket",
        links::AsyncMode::Gevent => "gevent's pywsgi server",
    };
    format!(
        "for the {} async mode ({}: {})",
        ctx.stack.mode, ctx.mode_known, server
    )
}

fn intro(ctx: &Ctx, input: &Input, name: &str, title: Option<&str>) -> Vec<Block> {
    let mut first = vec![t("This report follows one TCP connection of ")];
    match title {
        Some(title) => first.push(t(title)),
        None => {
            first.push(t(format!("the {} ", input.what)));
            first.push(c(name));
        }
    }
    let which = if ctx.session.len() > 1 {
        let list: Vec<String> = ctx.session.iter().map(|c| format!("#{c}")).collect();
        let websocket = ctx.of(Stage::WsHandshake).next().is_some();
        format!(
            " (connection #{}, and with it the rest of the client's Engine.IO session: its {} connections {}, {})",
            ctx.conn,
            ctx.session.len(),
            list.join(", "),
            if websocket {
                "long-polling requests and the WebSocket"
            } else {
                "all long-polling requests: the session never moved to a WebSocket"
            }
        )
    } else {
        format!(" (connection #{})", ctx.conn)
    };
    first.push(t(format!(
                "{which} through every stage it went through, in the order it lived. For each stage: how it works, what this trace shows, and the numbered chain of Python source lines that do the same step in a Flask-SocketIO server. The source links point at {}.",
                versions_text(ctx)
            )));
    let mut blocks = vec![para(first)];
    let mut rows = Vec::new();
    for conn in &input.conns {
        let c = conn.id;
        let client = conn.client.as_deref().unwrap_or("?");
        let first = conn
            .request
            .as_ref()
            .map(|(method, target)| format!("{method} {}", shorten(target, 60)))
            .unwrap_or_else(|| "(no HTTP request)".into());
        let marker = if c == ctx.conn {
            " (this report)"
        } else if ctx.session.contains(&c) {
            " (same session)"
        } else {
            ""
        };
        rows.push(vec![
            vec![t(format!("#{c}{marker}"))],
            vec![c_(client)],
            vec![c_(&first)],
            vec![t(conn.events.to_string())],
        ]);
    }
    if rows.len() > 1 {
        blocks.push(text_para("The input holds these connections:"));
        let total = rows.len();
        rows.truncate(MAX_ROWS);
        blocks.push(table(
            &["connection", "client", "first request", "events"],
            rows,
        ));
        if total > MAX_ROWS {
            blocks.push(text_para(format!(
                "... and {} more connections.",
                total - MAX_ROWS
            )));
        }
    }
    if !input.problems.is_empty() {
        let mut items: Vec<Vec<Inline>> = input
            .problems
            .iter()
            .take(MAX_ROWS)
            .map(|p| vec![t(p.clone())])
            .collect();
        if input.problems.len() > MAX_ROWS {
            items.push(vec![t(format!(
                "... {} more",
                input.problems.len() - MAX_ROWS
            ))]);
        }
        blocks.push(text_para(
            "Problems in the input (skipped, the rest was used):",
        ));
        blocks.push(Block::List {
            ordered: false,
            items,
        });
    }
    blocks
}

fn c_(s: &str) -> Inline {
    c(s)
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

fn fmt_t(t: f64) -> String {
    format!("{t:.3} s")
}

fn dir_text(d: Option<Dir>) -> &'static str {
    match d {
        Some(Dir::C2S) => "client → server",
        Some(Dir::S2C) => "server → client",
        None => "server-internal",
    }
}

fn json_short(v: Option<&Value>, max: usize) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => shorten(s, max),
        Some(v) => shorten(&v.to_string(), max),
    }
}

// ---------------------------------------------------------------------------------------------
// One stage

fn stage_section(ctx: &Ctx, stage: Stage) -> Vec<Block> {
    let mut blocks = vec![Block::Heading("How it works".into())];
    blocks.extend(explain::how(stage));
    blocks.push(Block::Heading("What this trace shows".into()));
    let (shown, rep) = match stage {
        Stage::TcpAccept => tcp_accept(ctx),
        Stage::HttpRequest => http_request(ctx),
        Stage::HttpResponse => http_response(ctx),
        Stage::WsHandshake => ws_handshake(ctx),
        Stage::WsFrame => ws_frames(ctx),
        Stage::WsMessage => ws_messages(ctx),
        Stage::EioPacket => eio_packets(ctx),
        Stage::EioUpgrade => eio_upgrade(ctx),
        Stage::SioPacket => sio_packets(ctx),
        Stage::SioDispatch => sio_dispatch(ctx),
        Stage::SioBroadcast => sio_broadcast(ctx),
        Stage::WsClose => ws_close(ctx),
        Stage::TcpClose => tcp_close(ctx),
        Stage::SioEmit | Stage::SioRoom => sio_calls(ctx, stage),
        Stage::MqPublish
        | Stage::MqMessage
        | Stage::TcpData
        | Stage::Error
        | Stage::Diagnosis
        | Stage::App => (Vec::new(), None),
    };
    blocks.extend(shown);
    if let Some(rep) = rep.or_else(|| ctx.of(stage).next()) {
        blocks.extend(chain_blocks(ctx, stage, rep));
    }
    blocks
}

// ---------------------------------------------------------------------------------------------
// What each stage shows

type Shown<'a> = (Vec<Block>, Option<&'a Ev>);

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(b: &Block) -> Vec<(String, String)> {
        match b {
            Block::Bytes { fields, .. } => fields
                .iter()
                .map(|f| (f.label.clone(), f.bytes.clone()))
                .collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn a_packet_is_cut_into_its_fields() {
        let b = packet_strip(r#"42/chat,7["e",1]"#).unwrap();
        let got = labels(&b);
        let want = [
            ("Engine.IO type", "4"),
            ("Socket.IO type", "2"),
            ("namespace", "/chat,"),
            ("ack id", "7"),
            ("JSON", r#"["e",1]"#),
        ];
        assert_eq!(got.len(), want.len(), "{got:?}");
        for ((l, v), (wl, wv)) in got.iter().zip(want) {
            assert_eq!((l.as_str(), v.as_str()), (wl, wv));
        }
        let bin = labels(&packet_strip(r#"451-["up",{"_placeholder":true,"num":0}]"#).unwrap());
        assert_eq!(bin[2], ("attachments".to_string(), "1-".to_string()));
        assert_eq!(labels(&packet_strip("3").unwrap()).len(), 1);
        assert!(packet_strip("x").is_none());
        assert!(packet_strip("4garbage").is_none());
    }

    fn ev(stage: &str, fields: Value) -> Ev {
        Ev::from_json(
            &serde_json::json!({"seq": 7, "stage": stage, "dir": "c2s", "fields": fields}),
        )
        .unwrap()
    }

    fn code_text(blocks: &[Block]) -> String {
        blocks
            .iter()
            .filter_map(|b| match b {
                Block::Code { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn accept_computation_uses_rfc6455_example() {
        // RFC 6455 §1.3: this key gives this accept value.
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let e = ev(
            "ws.handshake",
            serde_json::json!({"extension_note": "no extensions"}),
        );
        let blocks = accept_blocks(key, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", &e);
        let text = code_text(&blocks);
        assert!(
            text.contains("dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11"),
            "{text}"
        );
        assert!(
            text.contains("b37a4f2cc0624f1690f64606cf385945b2bec4ea"),
            "{text}"
        );
        assert!(
            text.contains("base64 of the 20 bytes      s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            "{text}"
        );
        assert!(text.contains("(matches"), "{text}");
        let bad = code_text(&accept_blocks(key, "AAAA", &e));
        assert!(bad.contains("DOES NOT match"), "{bad}");
    }

    #[test]
    fn frame_unmasking_worked_through_rfc6455_hello() {
        let f = ev(
            "ws.frame",
            serde_json::json!({"header_hex": "818537fa213d", "payload_hex": "48656c6c6f", "masked": true}),
        );
        let blocks = frame_worked(&f);
        let rows = blocks.iter().find_map(|b| match b {
            Block::Table { head, rows } if head[0] == "i" => Some(rows.clone()),
            _ => None,
        });
        let rows = rows.expect("unmasking table");
        assert_eq!(rows.len(), 5);
        // §5.7: 0x7f ^ 0x37 = 0x48 'H'.
        assert_eq!(rows[0][1], vec![c("7f")]);
        assert_eq!(rows[0][2], vec![c("37")]);
        assert_eq!(rows[0][3], vec![c("48")]);
        assert_eq!(rows[0][4], vec![c("H")]);
        assert_eq!(rows[4][1], vec![c("58")]);
        // Garbage header: a note, no panic.
        let g = ev(
            "ws.frame",
            serde_json::json!({"header_hex": "8", "payload_hex": "zz"}),
        );
        assert_eq!(frame_worked(&g).len(), 1);
    }

    #[test]
    fn event_packet_taken_apart() {
        let p = ev("sio.packet", serde_json::json!({}));
        let blocks = take_apart(&p, "2/admin,12[\"bid\",{\"a\":1}]");
        let Some(Block::Table { rows, .. }) = blocks.get(1) else {
            panic!("{blocks:?}")
        };
        assert_eq!(rows[2][0], vec![c("/admin,")]);
        assert_eq!(rows[3][0], vec![c("12")]);
        assert_eq!(rows[4][0], vec![c("[\"bid\",{\"a\":1}]")]);
        assert!(take_apart(&p, "2[").is_empty() || !take_apart(&p, "2[").is_empty());
        assert!(take_apart(&p, "").is_empty());
    }
}
