//! JSON Lines: one object per event (schema in docs/trace-format.md).

use std::io::{self, Write};

use serde_json::{Map, Value};

use super::{Event, Kind, Sink, Stage};
use crate::cli::VersionSet;
use crate::links::{AsyncMode, Linker};

pub struct Jsonl {
    out: Box<dyn Write + Send>,
    lines: LineWriter,
    /// Lines are rendered straight into this buffer, written out when it is full.
    buf: Vec<u8>,
}

/// How much of the trace is gathered before one write.
const BUFFER: usize = 256 * 1024;

impl Jsonl {
    pub fn new(out: Box<dyn Write + Send>, versions: impl Into<Linker>) -> Jsonl {
        Jsonl {
            out,
            lines: LineWriter::new(versions),
            buf: Vec::with_capacity(BUFFER + 8192),
        }
    }

    fn write_out(&mut self) -> io::Result<()> {
        let written = self.out.write_all(&self.buf);
        // Cleared either way: a failed output is dropped by the writer, not retried.
        self.buf.clear();
        written
    }
}

/// What is still buffered is written when the sink goes (the writer flushes before that; this
/// is for a sink dropped some other way).
impl Drop for Jsonl {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            let _ = self.write_out();
        }
    }
}

/// Writes events as JSON lines; shared by every sink that speaks JSON.
pub struct LineWriter {
    linker: Linker,
    /// The `links` array of each (stage, kind), serialized once: most of a line's bytes.
    /// Indexed by stage, then a short list of kinds.
    links: Vec<Vec<LinksJson>>,
}

/// The serialized links of one (async mode, kind) of a stage.
type LinksJson = (AsyncMode, Option<Kind>, Box<str>);

impl LineWriter {
    pub fn new(versions: impl Into<Linker>) -> LineWriter {
        LineWriter {
            linker: versions.into(),
            links: vec![Vec::new(); Stage::ALL.len()],
        }
    }

    fn links(&mut self, stage: Stage, kind: Option<Kind>) -> &str {
        // `dispel watch` learns the async mode once the app has started.
        let mode = self.linker.async_mode();
        let kinds = &mut self.links[stage as usize];
        let i = match kinds.iter().position(|(m, k, _)| *m == mode && *k == kind) {
            Some(i) => i,
            None => {
                kinds.push((mode, kind, links_json(&self.linker, stage, kind).into()));
                kinds.len() - 1
            }
        };
        &kinds[i].2
    }

    /// Appends one event as one line of JSON, newline included.
    pub fn write(&mut self, out: &mut Vec<u8>, seq: u64, e: &Event) -> io::Result<()> {
        let links = self.links(e.stage, e.kind);
        out.extend_from_slice(b"{\"seq\":");
        super::json::write_u64(out, seq);
        out.extend_from_slice(b",\"t\":");
        write_micros(out, e.t);
        if let Some(c) = e.conn {
            out.extend_from_slice(b",\"conn\":");
            super::json::write_u64(out, c);
        }
        if let Some(d) = e.dir {
            out.extend_from_slice(b",\"dir\":\"");
            out.extend_from_slice(d.as_str().as_bytes());
            out.push(b'"');
        }
        out.extend_from_slice(b",\"stage\":\"");
        out.extend_from_slice(e.stage.as_str().as_bytes());
        if let Some(k) = e.kind {
            out.extend_from_slice(b"\",\"kind\":\"");
            out.extend_from_slice(k.as_str().as_bytes());
        }
        out.extend_from_slice(b"\",\"summary\":");
        e.summary.write_json(out);
        out.extend_from_slice(b",\"fields\":");
        e.fields.write_json(out);
        out.extend_from_slice(b",\"links\":");
        out.extend_from_slice(links.as_bytes());
        out.extend_from_slice(b"}\n");
        Ok(())
    }
}

fn links_json(linker: &Linker, stage: Stage, kind: Option<Kind>) -> String {
    let links = linker.for_event(stage, kind);
    let urls: Vec<&str> = links.iter().map(|l| l.url.as_str()).collect();
    serde_json::to_string(&urls).unwrap_or_else(|_| "[]".into())
}

/// The JSON object of one event (for tests and other consumers; the sink writes the same
/// bytes without building it).
pub fn to_json(seq: u64, e: &Event, versions: VersionSet) -> Value {
    let mut obj = Map::new();
    obj.insert("seq".into(), seq.into());
    obj.insert("t".into(), micros(e.t).into());
    if let Some(c) = e.conn {
        obj.insert("conn".into(), c.into());
    }
    if let Some(d) = e.dir {
        obj.insert("dir".into(), d.as_str().into());
    }
    obj.insert("stage".into(), e.stage.as_str().into());
    if let Some(k) = e.kind {
        obj.insert("kind".into(), k.as_str().into());
    }
    obj.insert("summary".into(), e.summary.to_string().into());
    obj.insert("fields".into(), Value::Object(e.fields.to_map()));
    let links: Value =
        serde_json::from_str(&links_json(&versions.into(), e.stage, e.kind)).unwrap_or_default();
    obj.insert("links".into(), links);
    Value::Object(obj)
}

/// Microsecond resolution, as captures have.
fn micros(t: f64) -> f64 {
    (t * 1e6).round() / 1e6
}

/// Writes `micros(t)` as serde_json would (shortest form, `0.0` for zero) from integers: a
/// number with at most six decimals and fifteen digits in all needs no float formatting.
fn write_micros(out: &mut Vec<u8>, t: f64) {
    let us = (t * 1e6).round();
    if !(0.0..1e15).contains(&us) {
        let _ = serde_json::to_writer(&mut *out, &micros(t));
        return;
    }
    let us = us as u64;
    let (secs, frac) = (us / 1_000_000, us % 1_000_000);
    super::json::write_u64(out, secs);
    out.push(b'.');
    if frac == 0 {
        out.push(b'0');
    } else {
        let mut digits = [b'0'; 6];
        let mut rest = frac;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        let len = 6 - digits.iter().rev().take_while(|d| **d == b'0').count();
        out.extend_from_slice(&digits[..len]);
    }
}

impl Sink for Jsonl {
    fn write(&mut self, seq: u64, e: &Event) -> io::Result<()> {
        self.lines.write(&mut self.buf, seq, e)?;
        if self.buf.len() >= BUFFER {
            self.write_out()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_out()?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Dir;
    use crate::trace::SharedBuf;

    #[test]
    fn written_line_equals_the_json_object() {
        let buf = SharedBuf::default();
        let mut sink = Jsonl::new(Box::new(buf.clone()), VersionSet::Current);
        let e = Event::new(
            Stage::WsFrame,
            1.234_567_89,
            Some(2),
            Some(Dir::C2S),
            "FIN \"TEXT\"".into(),
        )
        .with("fin", true)
        .kind(Kind::Text);
        sink.write(7, &e).unwrap();
        let internal = Event::new(Stage::SioBroadcast, 0.5, None, None, "x".into());
        sink.write(8, &internal).unwrap();
        sink.flush().unwrap();
        let text = buf.text();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0], to_json(7, &e, VersionSet::Current));
        assert_eq!(lines[1], to_json(8, &internal, VersionSet::Current));
        assert_eq!(lines[0]["t"], 1.234568);
        for t in [
            0.0,
            0.5,
            1.234_567_89,
            3.01545,
            12.000_001,
            86_400.25,
            1e-7,
            7.0,
        ] {
            let mut out = Vec::new();
            write_micros(&mut out, t);
            let want = serde_json::to_string(&micros(t)).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), want, "t = {t}");
        }
        assert!(lines[1].get("conn").is_none() && lines[1].get("dir").is_none());
        assert!(!lines[0]["links"].as_array().unwrap().is_empty());
    }
}
