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

pub use input::{load, Ev, Input};

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
    /// The server's async mode, when known (asked for, or reported by a watched app), and
    /// how it is known ("given" when `None`).
    pub async_mode: Option<crate::links::AsyncMode>,
    pub async_mode_known: Option<&'static str>,
    pub server_port: Option<u16>,
    pub conn: Option<u64>,
    /// The app's source (a file or its folder).
    pub app: Option<&'a std::path::Path>,
    /// Link the versions installed for this interpreter, or in this site-packages folder.
    pub python: Option<&'a std::path::Path>,
    pub site_packages: Option<&'a std::path::Path>,
    pub title: Option<&'a str>,
    /// The document a student hands in (`--hand-in`).
    pub hand_in: bool,
}

/// `dispel report INPUT [-o FILE] [--format md|html]`.
pub fn run(args: ReportArgs) -> Result<ExitCode, crate::Error> {
    write(&Request {
        input: &args.input,
        out: args.out.as_deref(),
        html: match args.format {
            Some(format) => format == ReportFormat::Html,
            None => args.out.as_deref().is_some_and(is_html_path),
        },
        versions: args.versions,
        async_mode: args.async_mode,
        async_mode_known: None,
        server_port: args.server_port,
        conn: args.conn,
        app: args.app.as_deref(),
        python: args.python.as_deref(),
        site_packages: args.site_packages.as_deref(),
        title: args.title.as_deref(),
        hand_in: args.hand_in,
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Whether a file's name asks for an HTML page (`report.html`, `REPORT.HTM`).
pub fn is_html_path(path: &std::path::Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"))
}

/// Reads the input and writes its report.
pub fn write(req: &Request) -> Result<(), crate::Error> {
    if let Some(app) = req.app.filter(|a| !a.exists()) {
        return Err(format!(
            "--app {}: no such file or folder (give the app's main .py file, or its folder)",
            app.display()
        )
        .into());
    }
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
    // A trace of `dispel watch` says what the app ran: its interpreter (whose installed
    // versions the links follow, when it is on this machine), its async mode and its source,
    // each unless asked otherwise.
    let watched = input.watched.as_ref();
    let own_python = watched
        .and_then(|w| w.executable.as_deref())
        .filter(|p| p.is_file());
    let python = match (req.python, req.site_packages) {
        (None, None) => own_python,
        (python, _) => python,
    };
    let app_source = req.app.or_else(|| {
        watched
            .and_then(|w| w.source.as_deref())
            .filter(|p| p.exists())
    });
    let installed = if python.is_some() || req.site_packages.is_some() {
        Some(crate::links::site::inspect(
            &crate::links::site::SiteOptions {
                site_packages: req.site_packages.map(std::path::Path::to_path_buf),
                python: python.map(std::path::Path::to_path_buf),
            },
        )?)
    } else {
        None
    };
    let req = &Request {
        app: app_source,
        async_mode: req
            .async_mode
            .or_else(|| watched.and_then(|w| w.async_mode)),
        async_mode_known: match (req.async_mode, watched.and_then(|w| w.async_mode)) {
            (None, Some(_)) => Some("reported by the app when it started, as the trace records"),
            _ => req.async_mode_known,
        },
        ..*req
    };
    let title = watched.map(|w| format!("the app {}, watched", w.name));
    let ran = watched
        .filter(|_| installed.is_none())
        .map(|w| w.versions.join(", "));
    let (mode, mode_known) = async_mode(req, installed.as_ref(), input.werkzeug);
    if installed.is_none() && watched.is_none() {
        eprintln!(
            "dispel report: the links point at dispel's built-in versions; --python .venv/bin/python (the app's interpreter) links the versions the app runs"
        );
    }
    let doc = sections::build(
        &input,
        conn,
        &sections::Options {
            stack: crate::links::Stack {
                set: req.versions,
                mode,
            },
            mode_known,
            name: &name,
            title: req.title.or(title.as_deref()),
            app: req.app,
            installed: installed.as_ref(),
            ran: ran.as_deref(),
            hand_in: req.hand_in,
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

/// The server's async mode, and how the report knows it: asked for (or reported by the
/// watched app), the app's own `SocketIO(..., async_mode=...)`, the capture's own responses
/// (Werkzeug, the threading mode's server, names itself in every one), what python-engineio
/// would pick among the installed packages, or the default. `werkzeug`: see
/// [`input::Input::werkzeug`].
fn async_mode(
    req: &Request,
    installed: Option<&crate::links::site::Installed>,
    werkzeug: Option<bool>,
) -> (crate::links::AsyncMode, &'static str) {
    use crate::links::AsyncMode;
    if let Some(m) = req.async_mode {
        return (m, req.async_mode_known.unwrap_or("given"));
    }
    let call = req
        .app
        .and_then(|app| pysource::scan(app).ok())
        .and_then(|scan| scan.socketio.map(|s| s.2));
    let from_source = call
        .as_deref()
        .and_then(|call| pysource::keyword_value(call, "async_mode"))
        .and_then(|m| AsyncMode::parse(&m));
    if let Some(m) = from_source {
        return (m, "the app's SocketIO(async_mode=...)");
    }
    if werkzeug == Some(true) {
        return (
            AsyncMode::Threading,
            "the HTTP responses' Server header names Werkzeug, the threading mode's server",
        );
    }
    // The app names its mode with an expression (an environment variable, say): what it
    // held when the traffic was made cannot be read from the source.
    let computed = call.is_some_and(|c| c.contains("async_mode"));
    let (mode, known) = match (installed, computed) {
        (Some(inst), false) => (
            inst.default_async_mode(),
            "the first python-engineio would pick among the installed packages",
        ),
        (Some(inst), true) => (
            inst.default_async_mode(),
            "the app's SocketIO(async_mode=...) is an expression the source cannot resolve, so this is the mode python-engineio would pick among the installed packages",
        ),
        (None, true) => (
            AsyncMode::Threading,
            "the app's SocketIO(async_mode=...) is an expression the source cannot resolve, so threading, the default, is assumed",
        ),
        (None, false) => (
            AsyncMode::Threading,
            "the default, not checked against your app",
        ),
    };
    if mode == AsyncMode::Threading && werkzeug == Some(false) {
        eprintln!("dispel report: the links follow the threading mode, assumed; the responses do not name Werkzeug, so the app may run eventlet or gevent: --async-mode eventlet|gevent says which");
        return (
            mode,
            "assumed, though the HTTP responses do not name Werkzeug, as every response of the threading mode's server does: the app may run eventlet or gevent, which --async-mode names",
        );
    }
    (mode, known)
}
