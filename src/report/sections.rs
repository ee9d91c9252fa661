//! The report's sections: the exchange at a glance, one section per stage present on the
//! chosen connection (how it works, what this trace shows, the Python chain), and the entry
//! points of the student's own code.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use super::diagram::Step;
use super::explain;
use super::model::*;
use super::{Ev, Input};
use crate::cli::VersionSet;
use crate::links::{self, StepLink};
use crate::trace::{Dir, Stage};
use crate::wire::{handshake, socketio, ws_frame};

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
    set: VersionSet,
}

impl<'a> Ctx<'a> {
    fn of(&self, stage: Stage) -> impl Iterator<Item = &'a Ev> + '_ {
        self.evs.iter().copied().filter(move |e| e.stage == stage)
    }

    /// Is `conn` one of the client's connections (its session's)?
    fn mine(&self, conn: Option<u64>) -> bool {
        conn.is_some_and(|c| self.session.contains(&c))
    }
}

/// What a report is made with, besides its input.
pub struct Options<'a> {
    /// The built-in version set the links start from.
    pub set: VersionSet,
    /// The input's file name.
    pub name: &'a str,
    /// What the report calls its input instead ("the app chat.py, watched").
    pub title: Option<&'a str>,
    /// The app's source, quoted in "Your code".
    pub app: Option<&'a std::path::Path>,
    /// The installed versions to link instead of the built-in ones.
    pub installed: Option<&'a links::site::Installed>,
}

pub fn build(input: &Input, conn: u64, opts: &Options) -> Doc {
    let (set, name, app) = (opts.set, opts.name, opts.app);
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
    let ctx = Ctx {
        all: &input.events,
        installed: opts.installed,
        evs,
        sent,
        conn,
        session,
        set,
    };
    let mut sections = Vec::new();
    if !input.diagnoses.is_empty() {
        sections.push(Section {
            title: "What went wrong".into(),
            blocks: diagnoses(&ctx, &input.diagnoses),
        });
    }
    let mut doc = Doc {
        title: format!(
            "How Flask-SocketIO works: connection #{conn} of {}",
            opts.title.unwrap_or(name)
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
        let src = super::yours::AppSource::new(app);
        doc.sections.extend(super::yours::sections(
            &input.sites,
            &input.events,
            conn,
            &src,
        ));
    } else if let Some(app) = app {
        // A capture and the app's source: the source's handlers, matched to the packets.
        match super::pysource::scan(app) {
            Ok(scan) if !scan.functions.is_empty() || scan.socketio.is_some() => doc
                .sections
                .extend(super::fromsource::sections(&scan, &input.events, conn, set)),
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
        doc.sections.extend(entry_sections(set));
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
        if let Some(l) = step.and_then(|s| links::deciding_line(ctx.set, s)) {
            let l = match ctx.installed {
                Some(inst) => inst.relink(l),
                None => l,
            };
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
        Stage::TcpData | Stage::Error | Stage::Diagnosis => "other",
    }
}

/// Which versions the links point at, and how the report knows them.
fn versions_text(ctx: &Ctx) -> String {
    // The packages of the chain, in the order the chain first meets them.
    let mut packages: Vec<(String, String)> = Vec::new();
    for step in links::chain(ctx.set)
        .into_iter()
        .flatten()
        .flat_map(|c| c.steps.iter())
    {
        if !packages.iter().any(|(p, _)| p == &step.package) {
            packages.push((step.package.clone(), step.version.clone()));
        }
    }
    match ctx.installed {
        Some(inst) => {
            let list: Vec<String> = packages
                .iter()
                .filter_map(|(p, _)| {
                    if p == "cpython" {
                        return inst.python_version.as_ref().map(|v| format!("Python {v}"));
                    }
                    let d = inst.dists.get(&links::site::normalize(p))?;
                    Some(format!("{} {}", d.name, d.version))
                })
                .collect();
            format!(
                "the versions installed with your app ({}), each line found again in the installed files",
                list.join(", ")
            )
        }
        None => {
            let list: Vec<String> = packages.iter().map(|(p, v)| format!("{p} {v}")).collect();
            format!(
                "dispel's built-in {} versions ({}), not necessarily the ones your app runs",
                match ctx.set {
                    VersionSet::Current => "current",
                    VersionSet::Seed => "course-seed",
                },
                list.join(", ")
            )
        }
    }
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
        format!(
            " (connection #{}, and with it the rest of the client's Engine.IO session: its {} connections {}, long-polling requests and the WebSocket)",
            ctx.conn,
            ctx.session.len(),
            list.join(", ")
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
// The sequence diagram

/// The broadcasts whose copies to the other recipients the diagram draws: the diagram shows
/// only its first `diagram::MAX_ARROWS` arrows anyway, and a busy capture has thousands of
/// broadcasts. A capture's report keeps the deliveries of these only (`super::Keep`).
pub(super) const DRAWN_BROADCASTS: usize = 64;

fn glance(ctx: &Ctx) -> Vec<Block> {
    let me = format!("C{}", ctx.conn);
    let name = if ctx.session.len() > 1 {
        let list: Vec<String> = ctx.session.iter().map(u64::to_string).collect();
        format!("Client (conns {})", list.join(", "))
    } else {
        format!("Client (conn {})", ctx.conn)
    };
    let mut participants = vec![(me.clone(), name)];
    participants.push(("S".to_string(), "Server".to_string()));
    let mut drawn: HashSet<u64> = HashSet::new();
    // Deliveries of broadcasts to the other recipients.
    let mut items: Vec<&Ev> = ctx.evs.clone();
    let mut added: HashSet<*const Ev> = items.iter().map(|e| *e as *const Ev).collect();
    for b in ctx.of(Stage::SioBroadcast).take(DRAWN_BROADCASTS) {
        for d in deliveries(ctx, b) {
            if !ctx.mine(d.conn) {
                if let Some(c) = d.conn {
                    if drawn.insert(c) {
                        participants.push((format!("C{c}"), format!("Client (conn {c})")));
                    }
                }
                if added.insert(d as *const Ev) {
                    items.push(d);
                }
            }
        }
    }
    items.sort_by(|a, b| a.t.total_cmp(&b.t).then(a.seq.cmp(&b.seq)));
    let mut steps = Vec::new();
    let mut heartbeats = 0usize;
    let both = format!("{me},S");
    for e in items {
        // The client's own connections share its lane.
        let client = e
            .conn
            .filter(|_| !ctx.mine(e.conn))
            .map(|c| format!("C{c}"))
            .unwrap_or_else(|| me.clone());
        let (from, to) = match e.dir {
            Some(Dir::S2C) => ("S".to_string(), client.clone()),
            _ => (client.clone(), "S".to_string()),
        };
        let arrow = |label: String| Step::Arrow {
            from: from.clone(),
            to: to.clone(),
            label,
        };
        let is_heartbeat = e.stage == Stage::EioPacket
            && matches!(e.str("type"), Some("PING") | Some("PONG"))
            && e.str("data").unwrap_or("") != "probe";
        if is_heartbeat {
            heartbeats += 1;
            // The first PING and PONG are drawn, the rest are counted.
            if heartbeats > 2 {
                continue;
            }
        } else if heartbeats > 2 {
            steps.push(Step::Note {
                over: both.clone(),
                text: format!("heartbeat: {} more PING/PONG packets", heartbeats - 2),
            });
            heartbeats = 0;
        } else {
            heartbeats = 0;
        }
        match e.stage {
            Stage::TcpAccept => steps.push(Step::Note {
                over: both.clone(),
                text: "TCP connection opened (SYN, SYN-ACK, ACK)".into(),
            }),
            Stage::HttpRequest => steps.push(arrow(format!(
                "HTTP {} {}",
                e.str("method").unwrap_or("?"),
                shorten(e.str("target").unwrap_or(""), 50)
            ))),
            Stage::HttpResponse => steps.push(arrow(format!(
                "HTTP {} {}",
                e.u64("status").unwrap_or(0),
                e.str("reason").unwrap_or("")
            ))),
            Stage::EioPacket => {
                let ty = e.str("type").unwrap_or("?");
                if ty == "MESSAGE" {
                    continue; // drawn as the Socket.IO packet it carries
                }
                let extra = match ty {
                    "OPEN" => format!(" sid={}", e.str("sid").unwrap_or("?")),
                    _ => e
                        .str("data")
                        .filter(|d| !d.is_empty())
                        .map(|d| format!(" {}", shorten(d, 20)))
                        .unwrap_or_default(),
                };
                steps.push(arrow(format!(
                    "Engine.IO {ty}{extra} ({})",
                    e.str("transport").unwrap_or("?")
                )));
            }
            Stage::SioPacket => {
                let ty = e.str("type").unwrap_or("?");
                let what = match e.str("event") {
                    Some(ev) => format!(" {ev}"),
                    None => format!(" {}", e.str("nsp").unwrap_or("/")),
                };
                let to_other = !ctx.mine(e.conn);
                steps.push(arrow(format!(
                    "Socket.IO {ty}{what}{}",
                    if to_other { " (broadcast copy)" } else { "" }
                )));
            }
            Stage::SioBroadcast => steps.push(Step::Note {
                over: "S".into(),
                text: format!(
                    "broadcast {} to connections {}",
                    e.str("event").unwrap_or("?"),
                    recipients(e)
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
            Stage::SioDispatch => steps.push(Step::Note {
                over: "S".into(),
                text: format!("handler {} called", e.str("handler").unwrap_or("(none)")),
            }),
            Stage::WsClose => steps.push(arrow(format!(
                "WebSocket Close {}",
                e.u64("code")
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "(no code)".into())
            ))),
            Stage::TcpClose => steps.push(Step::Note {
                over: both.clone(),
                text: format!("TCP closed: {}", e.str("how").unwrap_or("?")),
            }),
            _ => {}
        }
    }
    if heartbeats > 2 {
        steps.push(Step::Note {
            over: both,
            text: format!("heartbeat: {} more PING/PONG packets", heartbeats - 2),
        });
    }
    vec![
        text_para("The connection's exchange, one arrow per HTTP message, Engine.IO packet or Socket.IO packet (WebSocket frames are in their own section). Repeated heartbeats are collapsed."),
        Block::Sequence { participants, steps },
    ]
}

fn recipients(e: &Ev) -> Vec<u64> {
    e.fields
        .get("recipients")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

/// The Socket.IO EVENT packets that carried a broadcast to its recipients: on each recipient,
/// the first one with the broadcast's event name within half a second of it.
fn deliveries<'a>(ctx: &Ctx<'a>, b: &Ev) -> Vec<&'a Ev> {
    let to: HashSet<u64> = recipients(b).into_iter().collect();
    let Some(sent) = b.str("event").and_then(|name| ctx.sent.get(name)) else {
        return Vec::new();
    };
    let from = sent.partition_point(|e| e.t < b.t - 1e-6);
    let mut found: Vec<&Ev> = sent[from..]
        .iter()
        .take_while(|e| e.t <= b.t + 0.5)
        .copied()
        .filter(|e| e.conn.is_some_and(|c| to.contains(&c)))
        .collect();
    found.sort_by_key(|e| e.seq);
    let mut seen = HashSet::new();
    found.retain(|e| seen.insert(e.conn));
    found
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
        Stage::SioEmit
        | Stage::SioRoom
        | Stage::MqPublish
        | Stage::MqMessage
        | Stage::TcpData
        | Stage::Error
        | Stage::Diagnosis => (Vec::new(), None),
    };
    blocks.extend(shown);
    if let Some(rep) = rep.or_else(|| ctx.of(stage).next()) {
        blocks.extend(chain_blocks(ctx, stage, rep));
    }
    blocks
}

/// The Python chain behind one event of the stage, numbered, shallow to deep.
fn chain_blocks(ctx: &Ctx, stage: Stage, rep: &Ev) -> Vec<Block> {
    let kind = rep.kind;
    let links = links::for_event(ctx.set, stage, kind);
    // `dispel links` accepts a kind only where the table distinguishes kinds.
    let listed = kind.filter(|k| stage.kinds().contains(k));
    let name = match listed {
        Some(k) => format!("{stage}:{k}"),
        None => stage.to_string(),
    };
    let mut blocks = vec![Block::Heading(format!("The code that does it ({name})"))];
    if links.is_empty() {
        blocks.push(text_para("No Python code is linked to this stage."));
        return blocks;
    }
    blocks.push(para(vec![t(format!(
        "For {}, outermost call first:",
        rep.summary.chars().take(60).collect::<String>()
    ))]));
    match ctx.installed {
        Some(inst) => {
            let relinked: Vec<StepLink> = links.iter().map(|l| inst.relink(l.clone())).collect();
            blocks.push(link_list(&relinked));
        }
        None => blocks.push(link_list(links)),
    }
    blocks
}

pub(crate) fn link_list(links: &[StepLink]) -> Block {
    Block::List {
        ordered: true,
        items: links.iter().map(link_item).collect(),
    }
}

fn link_item(l: &StepLink) -> Vec<Inline> {
    let s = &l.step;
    let lines = if s.line_end > s.line_start {
        format!(
            "{}:{}-{}",
            links::installed_path(&s.path),
            s.line_start,
            s.line_end
        )
    } else {
        format!("{}:{}", links::installed_path(&s.path), s.line_start)
    };
    let mut out = vec![
        b(format!("{} {}", s.package, s.version)),
        t(" "),
        c(lines),
        t(" "),
        c(s.symbol.clone()),
    ];
    if let Some(p) = l.phase {
        out.push(t(format!(" ({p})")));
    }
    out.push(t(format!(": {} ", s.what)));
    match &l.status {
        Some(links::StepStatus::NotFound { reason }) => {
            out.push(t(format!(
                "(not in your installed version: {reason}; the link is to the built-in version) "
            )));
        }
        Some(links::StepStatus::Function { .. }) => {
            out.push(t(
                "(this line changed in your version: the link is to the whole function) ",
            ));
        }
        _ => {}
    }
    out.push(link("source", l.url.clone()));
    out
}

// ---------------------------------------------------------------------------------------------
// What each stage shows

type Shown<'a> = (Vec<Block>, Option<&'a Ev>);

fn tcp_accept<'a>(ctx: &Ctx<'a>) -> Shown<'a> {
    let Some(e) = ctx.of(Stage::TcpAccept).next() else {
        return (Vec::new(), None);
    };
    let mut rows = vec![
        vec![
            vec![t("client (address:port)")],
            vec![c(e.str("client").unwrap_or("?"))],
        ],
        vec![
            vec![t("server (address:port)")],
            vec![c(e.str("server").unwrap_or("?"))],
        ],
        vec![vec![t("time")], vec![t(fmt_t(e.t))]],
    ];
    if e.flag("midstream") {
        rows.push(vec![
            vec![t("note")],
            vec![t(
                "the capture began after the SYN: the handshake itself is not in it",
            )],
        ]);
    }
    (
        vec![
            text_para("The client's ephemeral port and the server's listening port name this connection for the rest of its life; every event below belongs to this 4-tuple."),
            table(&["", "value"], rows),
        ],
        Some(e),
    )
}

fn request_head(e: &Ev) -> String {
    let mut s = format!(
        "{} {} {}\r\n",
        e.str("method").unwrap_or("?"),
        e.str("target").unwrap_or("?"),
        e.str("version").unwrap_or("HTTP/1.1")
    );
    push_headers(&mut s, e);
    s
}

fn push_headers(s: &mut String, e: &Ev) {
    if let Some(hs) = e.fields.get("headers").and_then(Value::as_array) {
        for h in hs {
            let name = h.get(0).and_then(Value::as_str).unwrap_or("");
            let value = h.get(1).and_then(Value::as_str).unwrap_or("");
            s.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    s.push_str("\r\n");
}

/// CRLF shown as the text `\r\n` at the end of each line, so students see the line ends.
fn show_crlf(head: &str) -> String {
    head.replace("\r\n", "\\r\\n\n")
}

fn query_params(target: &str) -> Vec<(String, String)> {
    let Some((_, q)) = target.split_once('?') else {
        return Vec::new();
    };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (p.to_string(), String::new()),
        })
        .collect()
}

fn param_meaning(k: &str, v: &str) -> String {
    match k {
        "EIO" => format!("Engine.IO protocol version {v} (v4 is Socket.IO v3/v4's)"),
        "transport" if v == "websocket" => "open a WebSocket for this session".into(),
        "transport" => format!("use the {v} transport"),
        "sid" => "the Engine.IO session this request belongs to (from the OPEN packet)".into(),
        "t" => {
            "a cache buster: a new value per request so no proxy or browser answers from its cache"
                .into()
        }
        _ => "application-defined".into(),
    }
}

fn http_request<'a>(ctx: &Ctx<'a>) -> Shown<'a> {
    let reqs: Vec<&Ev> = ctx.of(Stage::HttpRequest).collect();
    let Some(e) = reqs.first().copied() else {
        return (Vec::new(), None);
    };
    let mut blocks = vec![
        text_para(format!(
            "The request head exactly as the client sent it at {} (each line ends with CR LF, and an empty line ends the head):",
            fmt_t(e.t)
        )),
        code("http", show_crlf(&request_head(e))),
    ];
    let params = query_params(e.str("target").unwrap_or(""));
    if !params.is_empty() {
        blocks.push(text_para(
            "The query string carries the Engine.IO parameters:",
        ));
        blocks.push(table(
            &["parameter", "value", "meaning"],
            params
                .iter()
                .map(|(k, v)| {
                    vec![
                        vec![c(k.clone())],
                        vec![c(v.clone())],
                        vec![t(param_meaning(k, v))],
                    ]
                })
                .collect(),
        ));
    }
    if reqs.len() > 1 {
        blocks.push(text_para(format!(
            "{} more requests followed on this connection (HTTP/1.1 keeps it open).",
            reqs.len() - 1
        )));
    }
    (blocks, Some(e))
}

fn http_response<'a>(ctx: &Ctx<'a>) -> Shown<'a> {
    let Some(e) = ctx.of(Stage::HttpResponse).next() else {
        return (Vec::new(), None);
    };
    let mut head = format!(
        "{} {} {}\r\n",
        e.str("version").unwrap_or("HTTP/1.1"),
        e.u64("status").unwrap_or(0),
        e.str("reason").unwrap_or("")
    );
    push_headers(&mut head, e);
    let mut blocks = vec![
        text_para(format!("The response head, at {}:", fmt_t(e.t))),
        code("http", show_crlf(&head)),
    ];
    if e.u64("status") == Some(101) {
        blocks.push(text_para("101 Switching Protocols: after the empty line that ends this head, both directions of the TCP connection carry WebSocket frames instead of HTTP. Flask never saw a route for this; python-engineio answered it from its WSGI middleware."));
    } else {
        let body: Vec<&Ev> = ctx
            .evs
            .iter()
            .copied()
            .filter(|p| p.stage == Stage::EioPacket && p.dir == Some(Dir::S2C) && p.seq > e.seq)
            .take(3)
            .collect();
        if !body.is_empty() {
            blocks.push(text_para("Its body is an Engine.IO polling payload; the packets in it are in the Engine.IO section."));
        }
    }
    (blocks, Some(e))
}

fn ws_handshake<'a>(ctx: &Ctx<'a>) -> Shown<'a> {
    let Some(e) = ctx.of(Stage::WsHandshake).next() else {
        return (Vec::new(), None);
    };
    let key = e.str("key").unwrap_or("");
    (
        accept_blocks(key, e.str("accept").unwrap_or(""), e),
        Some(e),
    )
}

/// The accept computation worked through with the real key.
pub fn accept_blocks(key: &str, sent: &str, e: &Ev) -> Vec<Block> {
    let comp = handshake::compute_accept(key);
    let verdict = if comp.accept == sent {
        "matches: the client accepts the upgrade"
    } else {
        "DOES NOT match: a conforming client must fail the connection"
    };
    let text = format!(
        "key (Sec-WebSocket-Key)     {key}\n\
         + GUID                      {}\n\
         = key + GUID                {key}{}\n\
         SHA-1 of that (hex)         {}\n\
         base64 of the 20 bytes      {}\n\
         Sec-WebSocket-Accept sent   {sent}   ({verdict})\n",
        handshake::GUID,
        handshake::GUID,
        comp.sha1_hex,
        comp.accept,
    );
    let mut blocks = vec![
        text_para("The server proves it read the client's key: it appends the fixed GUID, hashes with SHA-1 and sends the base64 of the digest. Recomputed here from the real key:"),
        code("text", text),
    ];
    let ext = e.str("extension_note").unwrap_or("");
    if !ext.is_empty() {
        let agreed = json_short(e.fields.get("extensions"), 200);
        blocks.push(para(vec![
            t("Extensions: "),
            t(ext.to_string()),
            t(if agreed.is_empty() || agreed == "[]" {
                "."
            } else {
                "; agreed: "
            }),
            if agreed.is_empty() || agreed == "[]" {
                t("")
            } else {
                c(agreed)
            },
        ]));
    }
    blocks
}

/// Hex pairs with spaces, the first `max` bytes (then how many more).
fn hex_spaced(bytes: &[u8], max: usize) -> String {
    let mut out: Vec<String> = bytes.iter().take(max).map(|b| format!("{b:02x}")).collect();
    if bytes.len() > max {
        out.push(format!("… (+{} bytes)", bytes.len() - max));
    }
    out.join(" ")
}

/// The bytes of a frame as they crossed the wire, field by field.
fn frame_strip(f: &Ev, h: &ws_frame::FrameHeader, header: &[u8]) -> Block {
    let mut fields = Vec::new();
    let b0 = header.first().copied().unwrap_or(0);
    let b1 = header.get(1).copied().unwrap_or(0);
    fields.push(ByteField {
        label: "FIN · RSV1-3 · opcode".into(),
        bytes: format!("{b0:02x}"),
        meaning: format!(
            "{b0:08b}: FIN {} · RSV1 {} RSV2 {} RSV3 {} · opcode {:#x} ({}){}",
            u8::from(h.fin),
            u8::from(h.rsv1),
            u8::from(h.rsv2),
            u8::from(h.rsv3),
            h.opcode.as_u8(),
            h.opcode.name(),
            if h.rsv1 {
                "; RSV1: compressed (RFC 7692)"
            } else {
                ""
            }
        ),
    });
    fields.push(ByteField {
        label: "MASK · length".into(),
        bytes: format!("{b1:02x}"),
        meaning: format!(
            "{b1:08b}: MASK {} · 7-bit length {}{}",
            b1 >> 7,
            b1 & 0x7f,
            match b1 & 0x7f {
                126 => ": the real length is in the next 2 bytes",
                127 => ": the real length is in the next 8 bytes",
                _ => "",
            }
        ),
    });
    let ext = match h.length_form {
        ws_frame::LengthForm::Bits16 => 2,
        ws_frame::LengthForm::Bits64 => 8,
        ws_frame::LengthForm::Bits7 => 0,
    };
    if ext > 0 {
        fields.push(ByteField {
            label: format!("{}-bit length", ext * 8),
            bytes: hex_spaced(header.get(2..2 + ext).unwrap_or(&[]), 8),
            meaning: format!("{} bytes of payload, big-endian", h.payload_len),
        });
    }
    let plain = hex_bytes(f.str("payload_hex").unwrap_or(""));
    let mut wire = plain.clone();
    if let Some(key) = h.mask {
        fields.push(ByteField {
            label: "masking key".into(),
            bytes: hex_spaced(&key, 4),
            meaning: "4 random bytes the client chose for this frame; the payload is XORed with them (RFC 6455 §5.3)".into(),
        });
        ws_frame::apply_mask(&mut wire, key, 0);
    }
    let shown_of = if (plain.len() as u64) < h.payload_len {
        format!(
            " (the trace keeps the first {} of {})",
            plain.len(),
            h.payload_len
        )
    } else {
        String::new()
    };
    fields.push(ByteField {
        label: if h.mask.is_some() {
            "payload, masked".into()
        } else if h.rsv1 {
            "payload, compressed".into()
        } else {
            "payload".into()
        },
        bytes: hex_spaced(&wire, 24),
        meaning: if h.mask.is_some() {
            format!("as on the wire: unreadable until unmasked{shown_of}")
        } else if h.rsv1 {
            format!(
                "raw DEFLATE data (RFC 7692 §7.2.1: the final 00 00 ff ff is left off){shown_of}"
            )
        } else {
            format!("the message itself{shown_of}")
        },
    });
    if h.mask.is_some() {
        fields.push(ByteField {
            label: "payload, unmasked".into(),
            bytes: hex_spaced(&plain, 24),
            meaning: match std::str::from_utf8(&plain) {
                _ if h.rsv1 => {
                    "XORed with the key, byte i with key[i mod 4]: still DEFLATE data (RSV1)".into()
                }
                Ok(text) => format!(
                    "XORed with the key, byte i with key[i mod 4]: {}",
                    shorten(text, 120)
                ),
                Err(_) => "XORed with the key, byte i with key[i mod 4]".into(),
            },
        });
    }
    Block::Bytes {
        caption: format!(
            "The whole frame as it crossed the wire, {} header bytes then the payload",
            h.header_len
        ),
        fields,
    }
}

/// An Engine.IO message carrying a Socket.IO packet, character by character:
/// `42/chat,7["event",…]`.
fn packet_strip(text: &str) -> Option<Block> {
    let mut chars = text.char_indices();
    let (_, eio) = chars.next()?;
    let eio_name = match eio {
        '0' => "OPEN",
        '1' => "CLOSE",
        '2' => "PING",
        '3' => "PONG",
        '4' => "MESSAGE",
        '5' => "UPGRADE",
        '6' => "NOOP",
        _ => return None,
    };
    let mut fields = vec![ByteField {
        label: "Engine.IO type".into(),
        bytes: eio.to_string(),
        meaning: format!("{eio}: {eio_name}"),
    }];
    let rest = &text[eio.len_utf8()..];
    if eio != '4' || rest.is_empty() {
        if !rest.is_empty() {
            fields.push(ByteField {
                label: "data".into(),
                bytes: shorten(rest, 80),
                meaning: "the packet's data".into(),
            });
        }
    } else {
        let p = socketio::Packet::decode(rest).ok()?;
        let sio = rest.chars().next()?;
        fields.push(ByteField {
            label: "Socket.IO type".into(),
            bytes: sio.to_string(),
            meaning: format!("{sio}: {}", p.ptype),
        });
        let mut at = sio.len_utf8();
        if p.attachments > 0 {
            let end = rest[at..].find('-').map_or(at, |i| at + i + 1);
            fields.push(ByteField {
                label: "attachments".into(),
                bytes: rest[at..end].to_string(),
                meaning: format!(
                    "{} binary attachments follow as their own messages",
                    p.attachments
                ),
            });
            at = end;
        }
        if rest[at..].starts_with('/') {
            let end = rest[at..].find(',').map_or(rest.len(), |i| at + i + 1);
            fields.push(ByteField {
                label: "namespace".into(),
                bytes: rest[at..end].to_string(),
                meaning: format!("namespace {} (left out for /)", p.nsp),
            });
            at = end;
        }
        let digits = rest[at..].chars().take_while(char::is_ascii_digit).count();
        if digits > 0 {
            fields.push(ByteField {
                label: "ack id".into(),
                bytes: rest[at..at + digits].to_string(),
                meaning: "the sender wants an ACK with this id".into(),
            });
            at += digits;
        }
        if at < rest.len() {
            fields.push(ByteField {
                label: "JSON".into(),
                bytes: shorten(&rest[at..], 100),
                meaning: match p.ptype {
                    socketio::PacketType::Event | socketio::PacketType::BinaryEvent => {
                        "the event's name, then its arguments".into()
                    }
                    socketio::PacketType::Ack | socketio::PacketType::BinaryAck => {
                        "the acknowledgement's arguments".into()
                    }
                    _ => "the packet's data".into(),
                },
            });
        }
    }
    Some(Block::Bytes {
        caption: "The message's text, character by character".into(),
        fields,
    })
}

fn hex_bytes(s: &str) -> Vec<u8> {
    s.as_bytes()
        .chunks_exact(2)
        .filter_map(|p| {
            std::str::from_utf8(p)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

fn printable(b: u8) -> String {
    if b.is_ascii_graphic() {
        (b as char).to_string()
    } else if b == b' ' {
        "space".into()
    } else {
        "·".into()
    }
}

fn ws_frames<'a>(ctx: &Ctx<'a>) -> Shown<'a> {
    let frames: Vec<&Ev> = ctx.of(Stage::WsFrame).collect();
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for f in &frames {
        *counts
            .entry((
                dir_text(f.dir).to_string(),
                f.str("opcode_name").unwrap_or("?").to_string(),
            ))
            .or_default() += 1;
    }
    let mut blocks = vec![
        text_para(format!("{} frames on this connection:", frames.len())),
        table(
            &["direction", "opcode", "frames"],
            counts
                .iter()
                .map(|((d, o), n)| {
                    vec![
                        vec![t(d.clone())],
                        vec![c(o.clone())],
                        vec![t(n.to_string())],
                    ]
                })
                .collect(),
        ),
    ];
    // A client frame (masked), preferably one carrying a Socket.IO event.
    let masked: Vec<&Ev> = frames
        .iter()
        .copied()
        .filter(|f| f.flag("masked") && f.u64("payload_len").unwrap_or(0) > 0)
        .collect();
    // A compressed frame's payload says nothing: the message it carries does.
    let carries_event = |f: &Ev| {
        f.str("payload_hex").is_some_and(|h| h.starts_with("3432"))
            || (f.flag("rsv1")
                && ctx
                    .of(Stage::WsMessage)
                    .find(|m| m.seq > f.seq && m.dir == f.dir)
                    .and_then(|m| m.str("text"))
                    .is_some_and(|t| t.starts_with("42")))
    };
    let pick = masked
        .iter()
        .copied()
        .find(|f| carries_event(f))
        .or_else(|| masked.first().copied())
        .or_else(|| frames.first().copied());
    let Some(f) = pick else {
        return (blocks, None);
    };
    blocks.extend(frame_worked(f));
    if f.flag("rsv1") {
        // Compressed: the message it carries, inflated, is the next ws.message that way.
        let inflated = ctx
            .of(Stage::WsMessage)
            .find(|m| m.seq > f.seq && m.dir == f.dir)
            .and_then(|m| m.str("text"));
        if let Some(text) = inflated {
            blocks.push(para(vec![
                t("Still compressed after unmasking (RSV1). Inflated (RFC 7692 §7.2.2: append 00 00 ff ff, then DEFLATE) it is the message "),
                c(shorten(text, 200)),
            ]));
            blocks.extend(packet_strip(text));
        }
    }
    if let Some(s) = frames
        .iter()
        .find(|f| f.dir == Some(Dir::S2C) && !f.flag("masked"))
    {
        blocks.push(para(vec![
            t(format!(
                "Frames from the server are never masked. Event #{}: header ",
                s.seq
            )),
            c(s.str("header_hex").unwrap_or("")),
            t(format!(
                " = FIN {}, RSV1 {}, opcode {}, MASK 0, payload length {}{}.",
                u8::from(s.flag("fin")),
                u8::from(s.flag("rsv1")),
                s.str("opcode_name").unwrap_or("?"),
                s.u64("payload_len").unwrap_or(0),
                if s.flag("rsv1") {
                    " (RSV1 set: the payload is compressed, see the messages section)"
                } else {
                    ""
                }
            )),
        ]));
    }
    (blocks, Some(f))
}

/// One frame's header drawn and its unmasking worked through.
pub fn frame_worked(f: &Ev) -> Vec<Block> {
    let header = hex_bytes(f.str("header_hex").unwrap_or(""));
    let Some(h) = ws_frame::FrameHeader::parse(&header).ok().flatten() else {
        return vec![text_para(
            "(this frame's header could not be decoded again)",
        )];
    };
    let mut blocks = vec![para(vec![
        t(format!(
            "Event #{} ({}, {}): the header bytes ",
            f.seq,
            dir_text(f.dir),
            fmt_t(f.t)
        )),
        c(f.str("header_hex").unwrap_or("").to_string()),
        t(" drawn as RFC 6455 §5.2's diagram, with the bits that were on the wire:"),
    ])];
    if let Some(d) = super::diagram::frame_bit_diagram(&header) {
        blocks.push(code("text", d));
    }
    blocks.push(frame_strip(f, &h, &header));
    let opcode = h.opcode;
    let mut rows = vec![
        vec![
            vec![t("FIN")],
            vec![c(u8::from(h.fin).to_string())],
            vec![t(if h.fin {
                "last (here: only) frame of the message"
            } else {
                "more frames of this message follow"
            })],
        ],
        vec![
            vec![t("RSV1")],
            vec![c(u8::from(h.rsv1).to_string())],
            vec![t(if h.rsv1 {
                "permessage-deflate: the message is compressed (RFC 7692 §6)"
            } else {
                "not compressed"
            })],
        ],
        vec![
            vec![t("RSV2, RSV3")],
            vec![c(format!("{} {}", u8::from(h.rsv2), u8::from(h.rsv3)))],
            vec![t("reserved for extensions, 0")],
        ],
        vec![
            vec![t("opcode")],
            vec![c(format!("{:#x}", opcode.as_u8()))],
            vec![t(format!("{opcode} frame"))],
        ],
        vec![
            vec![t("MASK")],
            vec![c(u8::from(h.mask.is_some()).to_string())],
            vec![t(if h.mask.is_some() {
                "masked: every client-to-server frame must be (§5.1)"
            } else {
                "not masked: server-to-client frames never are"
            })],
        ],
        vec![
            vec![t("payload length")],
            vec![c(h.payload_len.to_string())],
            vec![t(format!("{} form", h.length_form.name()))],
        ],
    ];
    if let Some(k) = h.mask {
        rows.push(vec![
            vec![t("masking key")],
            vec![c(crate::wire::hex(&k))],
            vec![t("chosen at random by the client for this frame")],
        ]);
    }
    blocks.push(table(&["field", "value", "meaning"], rows));
    if let Some(key) = h.mask {
        let plain = hex_bytes(f.str("payload_hex").unwrap_or(""));
        let mut wire = plain.clone();
        ws_frame::apply_mask(&mut wire, key, 0);
        let n = plain.len().min(UNMASK_BYTES);
        blocks.push(text_para("Unmasking (§5.3): byte i of the payload is XORed with byte i mod 4 of the key. The first bytes:"));
        let rows = (0..n)
            .map(|i| {
                vec![
                    vec![t(i.to_string())],
                    vec![c(format!("{:02x}", wire[i]))],
                    vec![c(format!("{:02x}", key[i % 4]))],
                    vec![c(format!("{:02x}", plain[i]))],
                    vec![c(printable(plain[i]))],
                ]
            })
            .collect();
        blocks.push(table(
            &["i", "on the wire", "key[i mod 4]", "XOR = unmasked", "char"],
            rows,
        ));
        if let Ok(text) = std::str::from_utf8(&plain) {
            blocks.push(para(vec![
                t("The whole payload unmasked: "),
                c(shorten(text, 200)),
            ]));
            blocks.extend(packet_strip(text));
        }
    }
    blocks
}

fn ws_messages<'a>(ctx: &Ctx<'a>) -> Shown<'a> {
    let msgs: Vec<&Ev> = ctx.of(Stage::WsMessage).collect();
    let mut rows = Vec::new();
    for m in msgs.iter().take(MAX_ROWS) {
        let size = match (m.flag("compressed"), m.u64("compressed_len")) {
            (true, Some(cl)) => format!("{} (inflated from {cl})", m.u64("len").unwrap_or(0)),
            _ => m.u64("len").unwrap_or(0).to_string(),
        };
        rows.push(vec![
            vec![t(format!("#{}", m.seq))],
            vec![t(dir_text(m.dir))],
            vec![c(m.str("opcode_name").unwrap_or("?"))],
            vec![t(m.u64("fragments").unwrap_or(1).to_string())],
            vec![t(size)],
            vec![c(shorten(m.str("text").or(m.str("hex")).unwrap_or(""), 60))],
        ]);
    }
    let mut blocks = vec![table(
        &["event", "direction", "opcode", "frames", "bytes", "content"],
        rows,
    )];
    if msgs.len() > MAX_ROWS {
        blocks.push(text_para(format!(
            "... and {} more messages.",
            msgs.len() - MAX_ROWS
        )));
    }
    let compressed = msgs.iter().copied().find(|m| m.flag("compressed"));
    if let Some(m) = compressed {
        blocks.push(para(vec![
            t(format!(
                "permessage-deflate was agreed: message #{} travelled as {} compressed bytes and was inflated to {} bytes, ",
                m.seq,
                m.u64("compressed_len").unwrap_or(0),
                m.u64("len").unwrap_or(0)
            )),
            c(shorten(m.str("text").unwrap_or(""), 60)),
            t(". Compression pays off on long, repetitive messages and costs bytes on tiny ones."),
        ]));
    }
    (
        blocks,
        compressed.or_else(|| {
            msgs.iter()
                .copied()
                .find(|m| m.str("opcode_name") == Some("TEXT"))
        }),
    )
}

fn eio_field_meaning(k: &str) -> &'static str {
    match k {
        "sid" => "the session id: every later request of this client names it",
        "upgrades" => "transports the client may upgrade to from this one",
        "pingInterval" => "ms between the server's PINGs",
        "pingTimeout" => "ms the server waits for the PONG before dropping the client",
        "maxPayload" => "the largest payload (bytes) the server accepts",
        _ => "",
    }
}

fn eio_packets<'a>(ctx: &Ctx<'a>) -> Shown<'a> {
    let packets: Vec<&Ev> = ctx.of(Stage::EioPacket).collect();
    let mut blocks = Vec::new();
    // The OPEN of this session: on this connection, or on the polling request that began it.
    let sid = ctx.of(Stage::HttpRequest).find_map(|r| {
        query_params(r.str("target").unwrap_or(""))
            .into_iter()
            .find(|(k, _)| k == "sid")
            .map(|(_, v)| v)
    });
    let open = packets
        .iter()
        .copied()
        .find(|p| p.str("type") == Some("OPEN"))
        .or_else(|| {
            let sid = sid.as_deref()?;
            ctx.all.iter().find(|p| {
                p.stage == Stage::EioPacket
                    && p.str("type") == Some("OPEN")
                    && p.str("sid") == Some(sid)
            })
        });
    if let Some(o) = open {
        if o.conn != Some(ctx.conn) {
            blocks.push(text_para(format!(
                "This connection continues a session opened by HTTP long-polling on connection #{}: its OPEN packet came there, at {}.",
                o.conn.unwrap_or(0),
                fmt_t(o.t)
            )));
        }
        blocks.push(para(vec![
            t("The OPEN packet: type "),
            c("0"),
            t(" then a JSON object, "),
            c(format!("0{}", shorten(o.str("data").unwrap_or(""), 200))),
            t(":"),
        ]));
        let rows = [
            "sid",
            "upgrades",
            "pingInterval",
            "pingTimeout",
            "maxPayload",
        ]
        .iter()
        .filter_map(|k| {
            let v = o.fields.get(*k)?;
            Some(vec![
                vec![c(k.to_string())],
                vec![c(json_short(Some(v), 60))],
                vec![t(eio_field_meaning(k))],
            ])
        })
        .collect();
        blocks.push(table(&["field", "value", "meaning"], rows));
    }
    let mut rows = Vec::new();
    for p in packets.iter().take(MAX_ROWS) {
        let ty = p.str("type").unwrap_or("?");
        rows.push(vec![
            vec![t(format!("#{}", p.seq))],
            vec![t(fmt_t(p.t))],
            vec![t(dir_text(p.dir))],
            vec![t(p.str("transport").unwrap_or("?"))],
            vec![c(format!("{} {ty}", eio_type_char(ty)))],
            match p.str("data").filter(|d| !d.is_empty()) {
                Some(d) => vec![c(shorten(d, 50))],
                None => vec![t("(none)")],
            },
        ]);
    }
    if !rows.is_empty() {
        blocks.push(text_para(
            "The Engine.IO packets of this connection (the first character of each is its type):",
        ));
        blocks.push(table(
            &["event", "time", "direction", "transport", "type", "data"],
            rows,
        ));
        if packets.len() > MAX_ROWS {
            blocks.push(text_para(format!(
                "... and {} more packets.",
                packets.len() - MAX_ROWS
            )));
        }
    }
    let pings: Vec<&Ev> = packets
        .iter()
        .copied()
        .filter(|p| p.str("type") == Some("PING") && p.str("data") != Some("probe"))
        .collect();
    if let Some(p) = pings.first() {
        let pong = packets.iter().find(|q| {
            q.str("type") == Some("PONG") && q.seq > p.seq && q.str("data") != Some("probe")
        });
        blocks.push(text_para(format!(
            "Heartbeat: {} PING packets from the server; the first at {}{}. These are Engine.IO packets inside WebSocket TEXT frames, not WebSocket ping frames.",
            pings.len(),
            fmt_t(p.t),
            pong.map(|q| format!(", answered by the client's PONG {:.1} ms later", (q.t - p.t) * 1000.0)).unwrap_or_default()
        )));
    }
    let rep = open
        .filter(|o| o.conn == Some(ctx.conn))
        .or_else(|| {
            packets
                .iter()
                .copied()
                .find(|p| p.str("type") == Some("MESSAGE"))
        })
        .or_else(|| packets.first().copied());
    (blocks, rep)
}

fn eio_type_char(ty: &str) -> &'static str {
    match ty {
        "OPEN" => "0",
        "CLOSE" => "1",
        "PING" => "2",
        "PONG" => "3",
        "MESSAGE" => "4",
        "UPGRADE" => "5",
        "NOOP" => "6",
        _ => "?",
    }
}

fn eio_upgrade<'a>(ctx: &Ctx<'a>) -> Shown<'a> {
    let Some(u) = ctx.of(Stage::EioUpgrade).next() else {
        return (Vec::new(), None);
    };
    let steps: Vec<Vec<Vec<Inline>>> = ctx
        .of(Stage::EioPacket)
        .filter(|p| {
            p.seq <= u.seq && (p.str("data") == Some("probe") || p.str("type") == Some("UPGRADE"))
        })
        .map(|p| {
            vec![
                vec![t(format!("#{}", p.seq))],
                vec![t(fmt_t(p.t))],
                vec![t(dir_text(p.dir))],
                vec![c(format!(
                    "{}{}",
                    eio_type_char(p.str("type").unwrap_or("")),
                    p.str("data").unwrap_or("")
                ))],
            ]
        })
        .collect();
    let mut blocks = vec![text_para(format!(
        "Session {} moved from {} to {} at {}. The probe exchange on the new WebSocket:",
        u.str("sid").unwrap_or("?"),
        u.str("from").unwrap_or("?"),
        u.str("to").unwrap_or("?"),
        fmt_t(u.t)
    ))];
    blocks.push(table(&["event", "time", "direction", "packet"], steps));
    (blocks, Some(u))
}

/// The raw text of an Engine.IO MESSAGE that carried a Socket.IO packet: `4` + the packet.
fn sio_raw(ctx: &Ctx, p: &Ev) -> Option<String> {
    let eio = ctx.evs.iter().rev().find(|e| {
        e.stage == Stage::EioPacket
            && e.seq < p.seq
            && e.dir == p.dir
            && e.str("type") == Some("MESSAGE")
    })?;
    eio.str("data").map(String::from)
}

fn sio_type_meaning(ty: &str) -> &'static str {
    match ty {
        "CONNECT" => "0 CONNECT: join a namespace",
        "DISCONNECT" => "1 DISCONNECT: leave a namespace",
        "EVENT" => "2 EVENT: an event name and its arguments",
        "ACK" => "3 ACK: the answer to an event that asked for one",
        "CONNECT_ERROR" => "4 CONNECT_ERROR: the namespace refused the client",
        "BINARY_EVENT" => "5 BINARY_EVENT: an event with binary attachments",
        "BINARY_ACK" => "6 BINARY_ACK: an ack with binary attachments",
        _ => "unknown",
    }
}

fn sio_packets<'a>(ctx: &Ctx<'a>) -> Shown<'a> {
    let packets: Vec<&Ev> = ctx.of(Stage::SioPacket).collect();
    let mut blocks = Vec::new();
    let event = packets
        .iter()
        .copied()
        .find(|p| p.str("type") == Some("EVENT") && p.dir == Some(Dir::C2S))
        .or_else(|| {
            packets
                .iter()
                .copied()
                .find(|p| p.str("type") == Some("EVENT"))
        });
    if let Some(p) = event {
        if let Some(raw) = sio_raw(ctx, p) {
            blocks.extend(take_apart(p, &raw));
        }
    }
    let rows: Vec<Vec<Vec<Inline>>> = packets
        .iter()
        .take(MAX_ROWS)
        .map(|p| {
            vec![
                vec![t(format!("#{}", p.seq))],
                vec![t(dir_text(p.dir))],
                vec![t(sio_type_meaning(p.str("type").unwrap_or("")))],
                vec![c(p.str("nsp").unwrap_or("/"))],
                vec![t(p
                    .u64("id")
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "-".into()))],
                vec![c(json_short(p.fields.get("data"), 60))],
            ]
        })
        .collect();
    blocks.push(text_para("All Socket.IO packets of this connection:"));
    blocks.push(table(
        &["event", "direction", "type", "namespace", "ack id", "data"],
        rows,
    ));
    if packets.len() > MAX_ROWS {
        blocks.push(text_para(format!(
            "... and {} more packets.",
            packets.len() - MAX_ROWS
        )));
    }
    (blocks, event.or_else(|| packets.first().copied()))
}

/// An event packet taken apart character by character: `4` `2` [nsp,] [id] JSON.
pub fn take_apart(p: &Ev, eio_data: &str) -> Vec<Block> {
    let Ok(pkt) = socketio::Packet::decode(eio_data) else {
        return Vec::new();
    };
    let type_char = pkt.ptype.as_char().to_string();
    let att = if pkt.ptype.is_binary() {
        format!("{}-", pkt.attachments)
    } else {
        String::new()
    };
    let nsp = if pkt.nsp == "/" {
        String::new()
    } else {
        format!("{},", pkt.nsp)
    };
    let id = pkt.id.map(|i| i.to_string()).unwrap_or_default();
    let prefix = format!("{type_char}{att}{nsp}{id}");
    let Some(json) = eio_data.strip_prefix(&prefix) else {
        return Vec::new();
    };
    let mut rows = vec![
        vec![
            vec![c("4")],
            vec![t(
                "Engine.IO packet type 4 = MESSAGE: the rest is for the layer above",
            )],
        ],
        vec![
            vec![c(type_char)],
            vec![t(format!(
                "Socket.IO packet type {}",
                sio_type_meaning(pkt.ptype.spec_name())
            ))],
        ],
    ];
    if !att.is_empty() {
        rows.push(vec![
            vec![c(att.clone())],
            vec![t(format!(
                "{} binary attachments follow as separate binary messages",
                pkt.attachments
            ))],
        ]);
    }
    rows.push(vec![
        vec![if nsp.is_empty() {
            t("(nothing)")
        } else {
            c(nsp.clone())
        }],
        vec![t(if nsp.is_empty() {
            "namespace: none written, so the default namespace /".to_string()
        } else {
            format!("namespace {}", pkt.nsp)
        })],
    ]);
    rows.push(vec![
        vec![if id.is_empty() {
            t("(nothing)")
        } else {
            c(id.clone())
        }],
        vec![t(if id.is_empty() {
            "ack id: none, the sender does not wait for an answer".to_string()
        } else {
            format!("ack id {id}: the receiver answers with an ACK packet carrying the same id")
        })],
    ]);
    let name = pkt.event_name().unwrap_or("?").to_string();
    rows.push(vec![
        vec![c(shorten(json, 80))],
        vec![t(format!(
            "JSON array: the event name {name:?} then {} argument(s), what the handler receives",
            pkt.args().len()
        ))],
    ]);
    vec![
        para(vec![
            t(format!("Event #{} ({}) taken apart. On the wire (inside a WebSocket TEXT frame, or a polling body) it is ", p.seq, dir_text(p.dir))),
            c(format!("4{}", shorten(eio_data, 100))),
            t(":"),
        ]),
        table(&["characters", "meaning"], rows),
    ]
}

fn sio_dispatch<'a>(ctx: &Ctx<'a>) -> Shown<'a> {
    let d: Vec<&Ev> = ctx.of(Stage::SioDispatch).collect();
    let rows = d
        .iter()
        .take(MAX_ROWS)
        .map(|e| {
            vec![
                vec![t(fmt_t(e.t))],
                vec![c(e.str("event").unwrap_or("?"))],
                vec![c(e.str("handler").unwrap_or("(no handler: ignored)"))],
                vec![c(json_short(e.fields.get("args"), 60))],
            ]
        })
        .collect();
    (
        vec![table(&["time", "event", "handler", "arguments"], rows)],
        d.first().copied(),
    )
}

fn sio_broadcast<'a>(ctx: &Ctx<'a>) -> Shown<'a> {
    let all: Vec<&Ev> = ctx.of(Stage::SioBroadcast).collect();
    let mut blocks = Vec::new();
    let Some(first) = all.first().copied() else {
        return (blocks, None);
    };
    blocks.push(text_para(if first.flag("inferred") {
        format!(
            "{} event(s) sent to several clients at once reached this connection (inferred from the capture: the same packet to several connections within half a second; whether the app broadcast it or emitted it to a room, the bytes cannot say). The first one:",
            all.len()
        )
    } else {
        format!("{} broadcast(s) reached this connection. The first one:", all.len())
    }));
    let rows = deliveries(ctx, first)
        .iter()
        .map(|d| {
            let sender = first.conn.is_some() && d.conn == first.conn;
            vec![
                vec![t(format!("#{}", d.conn.unwrap_or(0)))],
                vec![t(fmt_t(d.t))],
                vec![t(if sender {
                    "yes: the sender gets its own broadcast"
                } else {
                    "no"
                })],
                vec![c(json_short(d.fields.get("data"), 60))],
            ]
        })
        .collect();
    blocks.push(para(vec![
        t("Event "),
        c(first.str("event").unwrap_or("?")),
        t(format!(
            ", namespace {}, after {} from connection #{}; recipients:",
            first.str("nsp").unwrap_or("/"),
            first
                .str("after_event")
                .map(|s| format!("{s:?}"))
                .unwrap_or_else(|| "an event".into()),
            first.conn.unwrap_or(0)
        )),
    ]));
    blocks.push(table(
        &["connection", "delivered at", "is the sender", "data"],
        rows,
    ));
    (blocks, Some(first))
}

fn ws_close<'a>(ctx: &Ctx<'a>) -> Shown<'a> {
    let closes: Vec<&Ev> = ctx.of(Stage::WsClose).collect();
    let rows = closes
        .iter()
        .map(|e| {
            vec![
                vec![t(fmt_t(e.t))],
                vec![t(dir_text(e.dir))],
                vec![c(e
                    .u64("code")
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "(none)".into()))],
                vec![t(e.str("meaning").unwrap_or(""))],
                vec![c(e.str("reason").unwrap_or(""))],
            ]
        })
        .collect();
    let mut blocks = Vec::new();
    if let Some(first) = closes.first() {
        blocks.push(text_para(format!(
            "The {} sent the first Close frame; the other side answered with its own.",
            if first.dir == Some(Dir::C2S) {
                "client"
            } else {
                "server"
            }
        )));
    }
    blocks.push(table(
        &["time", "direction", "code", "meaning", "reason"],
        rows,
    ));
    (blocks, closes.first().copied())
}

fn tcp_close<'a>(ctx: &Ctx<'a>) -> Shown<'a> {
    let Some(e) = ctx.of(Stage::TcpClose).next() else {
        return (Vec::new(), None);
    };
    let mut blocks = vec![para(vec![
        t(format!("At {}: ", fmt_t(e.t))),
        b(e.str("how").unwrap_or("?").to_string()),
        t("."),
    ])];
    let leftover: Vec<&Ev> = ctx.of(Stage::TcpData).collect();
    if let Some(d) = leftover.first() {
        blocks.push(text_para(format!(
            "Before that, {} bytes were not decoded: {}.",
            d.u64("len").unwrap_or(0),
            d.str("reason").unwrap_or("unknown reason")
        )));
    }
    (blocks, Some(e))
}

// ---------------------------------------------------------------------------------------------
// The student's code

const ENTRIES: [(&str, &str, &str); 4] = [
    (
        "entry:socketio",
        "socketio = SocketIO(app)",
        "Your code: SocketIO(app)",
    ),
    (
        "entry:route",
        "@app.route('/auctions')",
        "Your code: @app.route('/auctions')",
    ),
    (
        "entry:on",
        "@socketio.on('replace old value')",
        "Your code: @socketio.on('replace old value')",
    ),
    (
        "entry:emit",
        "emit('replaced values', message, broadcast=True)",
        "Your code: emit(..., broadcast=True)",
    ),
];

fn entry_sections(set: VersionSet) -> Vec<Section> {
    let mut out = Vec::new();
    for (name, line, title) in ENTRIES {
        let Ok(Some(sec)) = links::entry_point(set, name) else {
            continue;
        };
        let mut blocks = vec![
            code("python", format!("{line}\n")),
            para(vec![b(sec.title.clone()), t(format!(". {}", sec.summary))]),
        ];
        if sec.links.is_empty() {
            blocks.push(text_para("No Python code is linked to this entry point."));
        } else {
            blocks.push(text_para("The chain, numbered:"));
            blocks.push(link_list(&sec.links));
        }
        out.push(Section {
            title: title.to_string(),
            blocks,
        });
    }
    out
}

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
