//! JSON Lines: one object per event (schema in docs/trace-format.md).

use std::io::{self, BufWriter, Write};

use serde_json::{Map, Value};

use super::{Event, Sink};
use crate::cli::VersionSet;
use crate::links;

pub struct Jsonl {
    out: BufWriter<Box<dyn Write + Send>>,
    versions: VersionSet,
}

impl Jsonl {
    pub fn new(out: Box<dyn Write + Send>, versions: VersionSet) -> Jsonl {
        Jsonl {
            out: BufWriter::with_capacity(64 * 1024, out),
            versions,
        }
    }
}

/// The JSON object of one event.
pub fn to_json(seq: u64, e: &Event, versions: VersionSet) -> Value {
    let mut obj = Map::new();
    obj.insert("seq".into(), seq.into());
    // Microsecond resolution, as captures have.
    obj.insert("t".into(), ((e.t * 1e6).round() / 1e6).into());
    if let Some(c) = e.conn {
        obj.insert("conn".into(), c.into());
    }
    if let Some(d) = e.dir {
        obj.insert("dir".into(), d.as_str().into());
    }
    obj.insert("stage".into(), e.stage.as_str().into());
    obj.insert("summary".into(), e.summary.clone().into());
    obj.insert("fields".into(), Value::Object(e.fields.clone()));
    let urls: Vec<Value> = links::for_event(versions, e.stage, e.kind)
        .iter()
        .map(|l| Value::String(l.url.clone()))
        .collect();
    obj.insert("links".into(), Value::Array(urls));
    Value::Object(obj)
}

impl Sink for Jsonl {
    fn write(&mut self, seq: u64, e: &Event) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, &to_json(seq, e, self.versions))?;
        self.out.write_all(b"\n")
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
