//! The terminal view: one aligned line per event, details indented below with `-v`.
//!
//! ```text
//!   0.004 #1  c2s ws.frame      FIN TEXT 35 bytes (7-bit) masked
//! ```

use std::io::{self, BufWriter, Write};

use owo_colors::{OwoColorize, Style};
use serde_json::Value;

use super::{Event, Sink, Stage};
use crate::links::Linker;

pub struct Pretty {
    out: BufWriter<Box<dyn Write + Send>>,
    color: bool,
    verbose: u8,
    linker: Linker,
}

impl Pretty {
    pub fn new(
        out: Box<dyn Write + Send>,
        color: bool,
        verbose: u8,
        versions: impl Into<Linker>,
    ) -> Pretty {
        Pretty {
            out: BufWriter::new(out),
            color,
            verbose,
            linker: versions.into(),
        }
    }

    fn paint(&self, text: &str, style: Style) -> String {
        if self.color {
            text.style(style).to_string()
        } else {
            text.to_string()
        }
    }
}

/// One colour per protocol layer, so the eye can follow a packet down the stack.
fn stage_style(stage: Stage) -> Style {
    let s = Style::new();
    match stage {
        Stage::TcpAccept | Stage::TcpClose | Stage::TcpData => s.dimmed(),
        Stage::HttpRequest | Stage::HttpResponse => s.blue(),
        Stage::WsHandshake | Stage::WsFrame | Stage::WsMessage | Stage::WsClose => s.cyan(),
        Stage::EioPacket | Stage::EioUpgrade => s.yellow(),
        Stage::SioPacket
        | Stage::SioDispatch
        | Stage::SioBroadcast
        | Stage::SioEmit
        | Stage::SioRoom => s.green().bold(),
        Stage::MqPublish | Stage::MqMessage => s.magenta().bold(),
        Stage::Error | Stage::Diagnosis => s.red().bold(),
        Stage::App => s.bold(),
    }
}

fn field_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Sink for Pretty {
    fn write(&mut self, _seq: u64, e: &Event) -> io::Result<()> {
        let conn = e.conn.map(|c| format!("#{c}")).unwrap_or_default();
        let dir = e.dir.map_or("   ", |d| d.as_str());
        let head = format!("{:8.3} {:<5} {dir} ", e.t, conn);
        let stage = format!("{:<13}", e.stage.as_str());
        let line = format!(
            "{}{} {}\n",
            self.paint(&head, Style::new().dimmed()),
            self.paint(&stage, stage_style(e.stage)),
            e.summary
        );
        self.out.write_all(line.as_bytes())?;
        if e.stage == Stage::Diagnosis && self.verbose == 0 {
            // What to do about it, and where it is decided, even at the default verbosity.
            return self.diagnosis(e);
        }
        if self.verbose == 0 {
            return Ok(());
        }
        for (k, v) in e.fields.iter() {
            if k == "observed" {
                continue;
            }
            let text = field_text(&v);
            let text = if self.verbose < 2 && text.len() > 120 {
                let mut end = 120;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                format!("{}…", &text[..end])
            } else {
                text
            };
            writeln!(
                self.out,
                "{:>23}{}: {text}",
                "",
                self.paint(k, Style::new().dimmed())
            )?;
        }
        // What `dispel watch` saw in the app beats the curated chain.
        if let Some(Value::Array(frames)) = e.fields.get("observed") {
            return self.observed(frames);
        }
        let steps = self.linker.for_event(e.stage, e.kind);
        if self.verbose == 1 {
            if let Some(deepest) = steps.last() {
                writeln!(
                    self.out,
                    "{:>23}{} {}",
                    "",
                    self.paint("source:", Style::new().dimmed()),
                    deepest.short
                )?;
            }
        } else {
            for (i, s) in steps.iter().enumerate() {
                writeln!(
                    self.out,
                    "{:>23}{:>2}. {} {}",
                    "",
                    i + 1,
                    s.short,
                    self.paint(&s.url, Style::new().dimmed())
                )?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// `path:line` of an observed frame, with its package and version when it has one.
fn frame_short(f: &Value) -> String {
    let place = format!("{}:{}", f["path"].as_str().unwrap_or("?"), f["line"]);
    match (f["package"].as_str(), f["version"].as_str()) {
        (Some(p), Some(v)) => format!("{p} {v} {place} {}", f["function"].as_str().unwrap_or("")),
        _ => format!(
            "{place} {} (your code)",
            f["function"].as_str().unwrap_or("")
        ),
    }
}

impl Pretty {
    /// A diagnosis's fix and deciding line, under its sentence.
    fn diagnosis(&mut self, e: &Event) -> io::Result<()> {
        if let Some(Value::String(fix)) = e.fields.get("fix") {
            writeln!(
                self.out,
                "{:>23}{} {fix}",
                "",
                self.paint("fix:", Style::new().bold())
            )?;
        }
        if let Some(url) = e
            .fields
            .get("source")
            .and_then(|s| s.get("url"))
            .and_then(Value::as_str)
        {
            writeln!(
                self.out,
                "{:>23}{} {url}",
                "",
                self.paint("decided at:", Style::new().dimmed())
            )?;
        }
        Ok(())
    }

    /// An observed chain: at -v the app's line and the deepest library function; at -vv
    /// every frame with its permalink.
    fn observed(&mut self, frames: &[Value]) -> io::Result<()> {
        if self.verbose == 1 {
            let own = frames.iter().rposition(|f| f["package"].is_null());
            let deepest = frames.iter().rev().find(|f| !f["package"].is_null());
            for (label, f) in [
                ("your line:", own.map(|i| &frames[i])),
                ("deepest:", deepest),
            ] {
                if let Some(f) = f {
                    writeln!(
                        self.out,
                        "{:>23}{} {}",
                        "",
                        self.paint(label, Style::new().dimmed()),
                        frame_short(f)
                    )?;
                }
            }
            return Ok(());
        }
        for (i, f) in frames.iter().enumerate() {
            writeln!(
                self.out,
                "{:>23}{:>2}. {} {}",
                "",
                i + 1,
                frame_short(f),
                self.paint(f["url"].as_str().unwrap_or(""), Style::new().dimmed())
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::SharedBuf;

    fn render(color: bool, verbose: u8) -> String {
        let buf = SharedBuf::default();
        let mut p = Pretty::new(
            Box::new(buf.clone()),
            color,
            verbose,
            crate::cli::VersionSet::Current,
        );
        let e = Event::new(
            Stage::SioPacket,
            1.5,
            Some(3),
            Some(super::super::Dir::C2S),
            "EVENT / \"bid\"".into(),
        )
        .with("nsp", "/");
        p.write(1, &e).unwrap();
        p.flush().unwrap();
        buf.text()
    }

    #[test]
    fn plain_and_coloured() {
        let plain = render(false, 0);
        assert_eq!(plain, "   1.500 #3    c2s sio.packet    EVENT / \"bid\"\n");
        assert!(!plain.contains('\x1b'));
        assert!(render(true, 0).contains('\x1b'));
        assert!(render(false, 1).contains("nsp: /"));
    }
}
