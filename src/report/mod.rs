//! `dispel report INPUT`: a capture or a JSONL trace turned into a document for students.
//!
//! The events come from the same pipeline as `dispel replay` (a capture goes through
//! `replay::read_capture` -> `TraceSink` -> `Tracer` with a collecting sink) or from a JSONL
//! trace read back line by line. Both end up as [`Ev`], the JSON schema of
//! docs/trace-format.md, so a capture and its trace give the same report.
//!
//! - [`input`]: the events read in, their connections, and which one is reported on.
//! - [`model`]: the document (sections of blocks); [`md`] and [`html`] render it.
//! - [`sections`]: one section per stage of the chosen connection, the entry points, the diagram.
//! - [`explain`]: the "how it works" text, taken from `docs/stages/*.md` (one source for both).
//! - [`diagram`]: the frame header bit diagram and the Mermaid sequence diagram.

pub mod diagram;
pub mod explain;
pub mod html;
mod input;
pub mod md;
pub mod model;
pub mod pysource;
pub mod sections;

pub use input::{load, pick_conn, ConnSummary, Ev, Input};

use std::io::Write;
use std::process::ExitCode;

use crate::cli::{ReportArgs, ReportFormat};

/// What a report is made from and how: the report command's options, or what `serve` and
/// `watch --report` know when they stop. CLI types stay at the edge.
pub struct Request<'a> {
    /// A capture or a JSONL trace.
    pub input: &'a std::path::Path,
    /// Where to write it; stdout when `None`.
    pub out: Option<&'a std::path::Path>,
    pub html: bool,
    pub versions: crate::cli::VersionSet,
    pub server_port: Option<u16>,
    pub conn: Option<u64>,
    /// The app's source (a file or its folder).
    pub app: Option<&'a std::path::Path>,
    /// Link the versions installed for this interpreter, or in this site-packages folder.
    pub python: Option<&'a std::path::Path>,
    pub site_packages: Option<&'a std::path::Path>,
    pub title: Option<&'a str>,
}

/// `dispel report INPUT [-o FILE] [--format md|html]`.
pub fn run(args: ReportArgs) -> Result<ExitCode, crate::Error> {
    write(&Request {
        input: &args.input,
        out: args.out.as_deref(),
        html: args.format == ReportFormat::Html,
        versions: args.versions,
        server_port: args.server_port,
        conn: args.conn,
        app: args.app.as_deref(),
        python: args.python.as_deref(),
        site_packages: args.site_packages.as_deref(),
        title: args.title.as_deref(),
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Reads the input and writes its report.
pub fn write(req: &Request) -> Result<(), crate::Error> {
    let path = req.input;
    let reopen =
        || std::fs::File::open(path).map(|f| std::io::BufReader::with_capacity(1 << 20, f));
    let input =
        load(reopen, req.server_port, req.conn).map_err(|e| format!("{}: {e}", path.display()))?;
    for p in &input.problems {
        eprintln!("dispel report: {}: {p}", path.display());
    }
    let conn = input.conn;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let installed = if req.python.is_some() || req.site_packages.is_some() {
        Some(crate::links::site::inspect(
            &crate::links::site::SiteOptions {
                site_packages: req.site_packages.map(std::path::Path::to_path_buf),
                python: req.python.map(std::path::Path::to_path_buf),
                base: req.versions,
            },
        )?)
    } else {
        None
    };
    let doc = sections::build(
        &input,
        conn,
        &sections::Options {
            set: req.versions,
            name: &name,
            title: req.title,
            app: req.app,
            installed: installed.as_ref(),
        },
    );
    let text = if req.html {
        html::render(&doc)
    } else {
        md::render(&doc)
    };
    match req.out {
        Some(out) => {
            std::fs::write(out, text).map_err(|e| format!("cannot write {}: {e}", out.display()))?
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(())
}
