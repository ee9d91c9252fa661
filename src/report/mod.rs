//! `dispel report INPUT`: a capture or a JSONL trace turned into a document for students.
//!
//! The events come from the same pipeline as `dispel replay` (a capture goes through
//! `replay::read_capture` -> `TraceSink` -> `Tracer` with a collecting sink) or from a JSONL
//! trace read back line by line. Both end up as [`Ev`], the JSON schema of
//! docs/trace-format.md, so a capture and its trace give the same report.
//!
//! - [`model`]: the document (sections of blocks); [`md`] and [`html`] render it.
//! - [`sections`]: one section per stage of the chosen connection, the entry points, the diagram.
//! - [`explain`]: the "how it works" text, taken from `docs/stages/*.md` (one source for both).
//! - [`diagram`]: the frame header bit diagram and the Mermaid sequence diagram.

pub mod diagram;
pub mod explain;
pub mod html;
pub mod md;
pub mod model;
pub mod sections;

use std::io::{Read, Write};
use std::process::ExitCode;

use serde_json::{Map, Value};

use crate::cli::{ReportArgs, ReportFormat, VersionSet};
use crate::trace::{Dir, Stage};

/// One trace event as read back from its JSON form.
#[derive(Debug, Clone, PartialEq)]
pub struct Ev {
    pub seq: u64,
    pub t: f64,
    pub conn: Option<u64>,
    pub dir: Option<Dir>,
    pub stage: Stage,
    pub summary: String,
    pub fields: Map<String, Value>,
    pub links: Vec<String>,
}

impl Ev {
    /// Reads one event object; the error says which key is wrong.
    pub fn from_json(v: &Value) -> Result<Ev, String> {
        let obj = v.as_object().ok_or("not a JSON object")?;
        let stage_name = obj
            .get("stage")
            .and_then(Value::as_str)
            .ok_or("no \"stage\"")?;
        let stage =
            Stage::parse(stage_name).ok_or_else(|| format!("unknown stage {stage_name:?}"))?;
        let dir = match obj.get("dir").and_then(Value::as_str) {
            None => None,
            Some("c2s") => Some(Dir::C2S),
            Some("s2c") => Some(Dir::S2C),
            Some(other) => return Err(format!("unknown dir {other:?}")),
        };
        Ok(Ev {
            seq: obj.get("seq").and_then(Value::as_u64).unwrap_or(0),
            t: obj.get("t").and_then(Value::as_f64).unwrap_or(0.0),
            conn: obj.get("conn").and_then(Value::as_u64),
            dir,
            stage,
            summary: obj
                .get("summary")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            fields: obj
                .get("fields")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            links: obj
                .get("links")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }

    pub fn u64(&self, key: &str) -> Option<u64> {
        self.fields.get(key).and_then(Value::as_u64)
    }

    pub fn flag(&self, key: &str) -> bool {
        self.fields
            .get(key)
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// Does this event concern connection `conn` (its own, or as a broadcast recipient)?
    pub fn touches(&self, conn: u64) -> bool {
        self.conn == Some(conn)
            || (self.stage == Stage::SioBroadcast
                && self
                    .fields
                    .get("recipients")
                    .and_then(Value::as_array)
                    .is_some_and(|r| r.iter().any(|c| c.as_u64() == Some(conn))))
    }
}

/// Parses a JSONL trace. A bad line is reported with its number and skipped, never fatal.
pub fn parse_jsonl(text: &str) -> (Vec<Ev>, Vec<String>) {
    let mut events = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(v) => match Ev::from_json(&v) {
                Ok(e) => events.push(e),
                Err(e) => problems.push(format!("line {}: {e}", i + 1)),
            },
            Err(e) => problems.push(format!("line {}: not JSON ({e})", i + 1)),
        }
    }
    (events, problems)
}

/// The packet kind the links table distinguishes (the `kind` a live event carries), inferred
/// from the fields, so a trace read back from JSONL links like the original.
pub fn kind_of(e: &Ev, http_kind: Option<&'static str>) -> Option<&'static str> {
    fn known(stage: Stage, name: &str) -> Option<&'static str> {
        crate::links::KINDS
            .iter()
            .find(|(s, _)| *s == stage)
            .and_then(|(_, kinds)| kinds.iter().copied().find(|k| *k == name))
    }
    let lower = |key: &str| e.str(key).map(str::to_ascii_lowercase);
    match e.stage {
        Stage::WsFrame | Stage::WsMessage => known(e.stage, &lower("opcode_name")?),
        Stage::EioPacket | Stage::SioPacket => known(e.stage, &lower("type")?),
        Stage::HttpRequest => Some(match e.str("transport") {
            Some("websocket") => "websocket",
            Some(_) => "polling",
            None if e.fields.contains_key("eio") => "polling",
            None => "page",
        }),
        Stage::HttpResponse => {
            if e.u64("status") == Some(101) {
                Some("websocket")
            } else {
                http_kind
            }
        }
        Stage::SioBroadcast => Some(if e.fields.get("broadcast") == Some(&Value::Bool(false)) {
            "emit"
        } else {
            "broadcast"
        }),
        _ => None,
    }
}

/// What the report was made from.
pub struct Input {
    pub events: Vec<Ev>,
    /// Lines of a JSONL trace that could not be read, or capture problems.
    pub problems: Vec<String>,
    /// "capture" or "JSONL trace".
    pub what: &'static str,
}

/// Reads INPUT: a capture (recognised by its magic number) or a JSONL trace.
pub fn load(
    bytes: &[u8],
    server_port: Option<u16>,
    versions: VersionSet,
) -> Result<Input, crate::Error> {
    if crate::replay::is_capture_magic(bytes) {
        return from_capture(bytes, server_port, versions);
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| "neither a pcap/pcapng capture nor a UTF-8 JSONL trace")?;
    let (events, problems) = parse_jsonl(text);
    if events.is_empty() {
        let first = problems
            .first()
            .cloned()
            .unwrap_or_else(|| "empty input".into());
        return Err(format!("not a capture, and no trace events in it ({first})").into());
    }
    Ok(Input {
        events,
        problems,
        what: "JSONL trace",
    })
}

/// The capture through the same decoding as `dispel replay`, collected instead of printed.
fn from_capture(
    bytes: &[u8],
    server_port: Option<u16>,
    versions: VersionSet,
) -> Result<Input, crate::Error> {
    let collect = crate::trace::Collect::new();
    let (tracer, writer) =
        crate::trace::Tracer::start(Box::new(collect.clone()), crate::trace::Filter::default());
    let mut sink = crate::replay::TraceSink::new(tracer, crate::flow::Limits::default());
    let result = crate::replay::read_capture(bytes, server_port, &mut sink);
    sink.finish();
    drop(sink);
    writer.finish()?;
    result?;
    let mut problems = Vec::new();
    let events = collect
        .take()
        .into_iter()
        .filter_map(|(seq, e)| {
            if e.stage == Stage::Error && e.conn.is_none() {
                problems.push(e.summary.clone());
            }
            Ev::from_json(&crate::trace::to_json(seq, &e, versions)).ok()
        })
        .collect();
    Ok(Input {
        events,
        problems,
        what: "capture",
    })
}

/// The connection to explain: one with a WebSocket handshake and a Socket.IO EVENT (sent by
/// the client if possible), else the first with Engine.IO, else the first one at all.
pub fn pick_conn(events: &[Ev]) -> Option<u64> {
    let mut conns: Vec<u64> = Vec::new();
    for e in events {
        if let Some(c) = e.conn {
            if !conns.contains(&c) {
                conns.push(c);
            }
        }
    }
    let has =
        |c: u64, pred: &dyn Fn(&Ev) -> bool| events.iter().any(|e| e.conn == Some(c) && pred(e));
    let event = |e: &Ev| e.stage == Stage::SioPacket && e.str("type") == Some("EVENT");
    let ws_with = |pred: &dyn Fn(&Ev) -> bool| {
        conns
            .iter()
            .copied()
            .find(|&c| has(c, &|e| e.stage == Stage::WsHandshake) && has(c, pred))
    };
    // Best: the client that sent an event (its frames are masked, it triggered the broadcast).
    ws_with(&|e| event(e) && e.dir == Some(Dir::C2S))
        .or_else(|| ws_with(&event))
        .or_else(|| {
            conns
                .iter()
                .copied()
                .find(|&c| has(c, &|e| e.stage == Stage::EioPacket))
        })
        .or_else(|| conns.first().copied())
}

/// `dispel report INPUT [-o FILE] [--format md|html]`.
pub fn run(args: ReportArgs) -> Result<ExitCode, crate::Error> {
    let mut bytes = Vec::new();
    std::fs::File::open(&args.input)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read {}: {e}", args.input.display()))?;
    let input = load(&bytes, args.server_port, args.versions)
        .map_err(|e| format!("{}: {e}", args.input.display()))?;
    for p in &input.problems {
        eprintln!("dispel report: {}: {p}", args.input.display());
    }
    let conn = match args.conn {
        Some(c) if input.events.iter().any(|e| e.conn == Some(c)) => c,
        Some(c) => {
            return Err(format!("connection #{c} is not in {}", args.input.display()).into())
        }
        None => pick_conn(&input.events)
            .ok_or_else(|| format!("{}: no TCP connection in it", args.input.display()))?,
    };
    let name = args
        .input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let doc = sections::build(&input, conn, args.versions, &name);
    let text = match args.format {
        ReportFormat::Md => md::render(&doc),
        ReportFormat::Html => html::render(&doc),
    };
    match &args.out {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_bad_lines_are_reported_with_their_number_and_skipped() {
        let text = concat!(
            "{\"seq\":1,\"t\":0.0,\"conn\":1,\"stage\":\"tcp.accept\",\"summary\":\"a\",\"fields\":{\"client\":\"1.2.3.4:5\"},\"links\":[]}\n",
            "not json at all\n",
            "\n",
            "{\"seq\":2,\"stage\":\"no.such\"}\n",
            "[1,2]\n",
            "{\"seq\":3,\"t\":0.5,\"conn\":1,\"dir\":\"c2s\",\"stage\":\"sio.packet\",\"summary\":\"\",\"fields\":{\"type\":\"EVENT\"},\"links\":[\"https://x.test/a\"]}\n",
            "{\"seq\":4,\"stage\":\"ws.frame\",\"dir\":\"up\"}\n",
        );
        let (events, problems) = parse_jsonl(text);
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].dir, Some(Dir::C2S));
        assert_eq!(events[1].links, vec!["https://x.test/a".to_string()]);
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].starts_with("line 2: not JSON"), "{problems:?}");
        assert!(
            problems[1].starts_with("line 4: unknown stage"),
            "{problems:?}"
        );
        assert!(
            problems[2].starts_with("line 5: not a JSON object"),
            "{problems:?}"
        );
        assert!(
            problems[3].starts_with("line 7: unknown dir"),
            "{problems:?}"
        );
        // Nothing usable at all is an error, not an empty report.
        assert!(load(b"garbage\n", None, VersionSet::Current).is_err());
        assert!(load(&[0xff, 0xfe, 0x00], None, VersionSet::Current).is_err());
    }

    #[test]
    fn kinds_are_inferred_from_fields() {
        let ev = |stage: &str, fields: Value| {
            Ev::from_json(&serde_json::json!({"stage": stage, "fields": fields})).unwrap()
        };
        assert_eq!(
            kind_of(&ev("eio.packet", serde_json::json!({"type": "PING"})), None),
            Some("ping")
        );
        assert_eq!(
            kind_of(
                &ev("ws.frame", serde_json::json!({"opcode_name": "text"})),
                None
            ),
            Some("text")
        );
        assert_eq!(
            kind_of(
                &ev(
                    "http.request",
                    serde_json::json!({"eio": "4", "transport": "websocket"})
                ),
                None
            ),
            Some("websocket")
        );
        assert_eq!(
            kind_of(&ev("http.request", serde_json::json!({})), None),
            Some("page")
        );
        assert_eq!(
            kind_of(
                &ev("http.response", serde_json::json!({"status": 200})),
                Some("polling")
            ),
            Some("polling")
        );
        assert_eq!(
            kind_of(
                &ev("sio.packet", serde_json::json!({"type": "WEIRD"})),
                None
            ),
            None
        );
    }
}
