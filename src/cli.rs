//! Command-line interface: clap derive types only. `lib::run` turns them into work.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// dispel: watch Socket.IO work, byte by byte, with links to the Python code that does each step.
#[derive(Debug, Parser)]
#[command(name = "dispel", version, about, long_about = None, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "\
Examples:
  dispel serve                          # auction page on http://127.0.0.1:5000/auctions, narrated
  dispel serve -v --stage 'sio.*'       # only Socket.IO events, with details
  dispel serve --format jsonl --out trace.jsonl
  dispel watch -- python app.py         # your own app, its real traffic narrated live
  dispel replay capture.pcapng          # the same trace from a Wireshark/tcpdump capture
  dispel links ws.handshake --format md # the Python call chain of one stage, as Markdown
  dispel report capture.pcap -o report.md # every stage of one connection explained, for a report";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the auction server (Engine.IO v4, Socket.IO v5, RFC 6455) and narrate every stage.
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(ServeArgs),
    /// Run your own app and narrate its real traffic live: no root, no capture, no change to
    /// your code (`dispel watch -- python app.py`).
    #[command(after_help = WATCH_EXAMPLES)]
    Watch(WatchArgs),
    /// Decode a pcap/pcapng capture of any Socket.IO app into the same annotated trace.
    #[command(after_help = REPLAY_EXAMPLES)]
    Replay(ReplayArgs),
    /// Print the Flask-SocketIO call chain behind each stage, with permalinks.
    #[command(after_help = LINKS_EXAMPLES)]
    Links(LinksArgs),
    /// Write a report for students: each stage of one connection explained, with the real bytes,
    /// the spec sections, the Python call chain and a sequence diagram.
    #[command(after_help = REPORT_EXAMPLES)]
    Report(ReportArgs),
    /// Publish one emit on the message queue (Redis), as `SocketIO(message_queue=URL).emit()`
    /// from a Celery worker or a script: every server on the queue sends it to its clients.
    #[command(after_help = EMIT_EXAMPLES)]
    Emit(EmitArgs),
    /// Workloads for the benchmarks in docs/performance.md.
    Bench(BenchArgs),
}

const EMIT_EXAMPLES: &str = "\
Examples:
  dispel emit --message-queue redis://127.0.0.1:6379 'replaced values' '{\"item\": \"lamp\", \"bid\": 99}'
  dispel emit --message-queue redis://127.0.0.1:6379 notice '\"closing soon\"' --to SID
  dispel emit --message-queue redis://127.0.0.1:6379 notice '{\"n\": 1}' --namespace /chat";

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum BenchCommand {
    /// Write a large synthetic capture of a busy auction (for `dispel replay` benchmarks).
    Capture(BenchCaptureArgs),
    /// Connect N WebSocket clients to a Socket.IO server, bid, and measure the broadcast fan-out.
    #[command(after_help = FANOUT_EXAMPLES)]
    Fanout(BenchFanoutArgs),
}

const FANOUT_EXAMPLES: &str = "\
Examples:
  dispel bench fanout --url http://127.0.0.1:5000 --clients 1000 --duration 10
  dispel bench fanout --url http://127.0.0.1:5000 --clients 1000 --mode window --window 64
  dispel bench fanout --url http://127.0.0.1:5000 --clients 20 --bids 50 --json
  dispel bench fanout --url http://127.0.0.1:5000 --clients 5000 --server-pid \"$(pgrep -n dispel)\"

5000 clients need more than 5000 file descriptors on both sides: `ulimit -n 20000` first.";

/// How the bidder paces its bids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FanoutMode {
    /// `replace old value` with an ack id; the next bid goes out when the ack (`43<id>[]`) is
    /// back.
    Ack,
    /// `replace old value` flat out, at most --window bids not yet seen back by the bidder.
    Window,
}

#[derive(Debug, Clone, Args)]
pub struct BenchFanoutArgs {
    /// The Socket.IO server (Engine.IO v4 over WebSocket at /socket.io/).
    #[arg(long, default_value = "http://127.0.0.1:5000")]
    pub url: String,
    /// WebSocket clients; the bidder is one of them. Every bid is broadcast to all.
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// How bids are paced.
    #[arg(long, value_enum, default_value_t = FanoutMode::Ack)]
    pub mode: FanoutMode,
    /// Window mode: most bids in flight (sent, own broadcast not yet back).
    #[arg(long, value_name = "W", default_value_t = 64)]
    pub window: usize,
    /// Bid for this many seconds (default 10 when --bids is not given).
    #[arg(long, value_name = "S")]
    pub duration: Option<f64>,
    /// Stop after this many bids.
    #[arg(long, value_name = "M")]
    pub bids: Option<u64>,
    /// Print the result as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also report this server process's peak RSS and CPU time (from /proc).
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// Spread the clients over source addresses 127.0.0.1..127.0.0.K (more ephemeral ports).
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub source_ips: u8,
    /// Connections being opened at the same time.
    #[arg(long, value_name = "N", default_value_t = 128)]
    pub connect_concurrency: usize,
    /// Worker threads of the generator (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// After the last bid, how long to wait for broadcasts still on their way, in seconds.
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    pub grace: f64,
}

#[derive(Debug, Clone, Args)]
pub struct BenchCaptureArgs {
    /// Where to write the pcap.
    #[arg(long, value_name = "FILE.pcap")]
    pub out: PathBuf,
    /// Approximate size of the WebSocket traffic, in MiB.
    #[arg(long, default_value_t = 200)]
    pub size_mb: u64,
    /// Number of connections (every broadcast goes to all of them).
    #[arg(long, default_value_t = 100)]
    pub conns: usize,
    /// Seed of the generator (same seed, same file).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

const SERVE_EXAMPLES: &str = "\
Examples:
  dispel serve                                  # 127.0.0.1:5000, pretty trace on stdout
  dispel serve -q                               # only Socket.IO events (a busy classroom)
  dispel serve --conn 3 -vv                     # one connection, every field and link
  dispel serve --format jsonl --out trace.jsonl # machine-readable trace
  dispel serve --host 0.0.0.0                   # let a classroom connect (prints a warning)
  dispel serve --app conformance --port 3000    # for the official protocol test suites";

const WATCH_EXAMPLES: &str = "\
Examples:
  dispel watch -- python app.py                 # open the app where you always do; the trace is here
  dispel watch -q -- python app.py              # only Socket.IO events
  dispel watch --report session.md -- python app.py
  dispel watch --port 8000 --app-port 8001 -- gunicorn -k gthread -b 127.0.0.1:8001 app:app

dispel starts the command with a small hook on its PYTHONPATH that moves the app's listening
socket to a private loopback port and tells dispel the address the app asked for; dispel
listens there instead and passes every byte through, decoding it. For an app that is not
started by Python, or that binds in an unusual way, give --port and --app-port (the app must
then listen on --app-port itself).";

const REPLAY_EXAMPLES: &str = "\
Examples:
  dispel replay capture.pcapng
  dispel replay capture.pcap --server-port 5000 --format jsonl --out trace.jsonl
  dispel replay capture.pcap --stage 'ws.*' -v";

const LINKS_EXAMPLES: &str = "\
Examples:
  dispel links                         # every stage, numbered, with permalinks
  dispel links sio.broadcast --format md
  dispel links --versions seed --format json
  dispel links --python .venv/bin/python   # links for the versions installed there";

const REPORT_EXAMPLES: &str = "\
Examples:
  dispel report capture.pcap -o report.md          # the most interesting connection, Markdown
  dispel report trace.jsonl --conn 3 -o report.md  # a JSONL trace, connection #3
  dispel report capture.pcapng --format html -o report.html --versions seed";

/// Options shared by every command that prints a trace.
#[derive(Debug, Clone, Args)]
pub struct TraceArgs {
    /// Output format of the trace.
    #[arg(long, value_enum, default_value_t = Format::Pretty)]
    pub format: Format,
    /// Write the trace to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// When to colour the pretty trace (NO_COLOR is honoured; never colour when not a terminal).
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
    /// More detail: -v shows fields and the deepest source line, -vv every field and every link.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only Socket.IO events (sio.*) and errors: the quiet level for a busy room.
    #[arg(short, long)]
    pub quiet: bool,
    /// Only these connections (repeatable).
    #[arg(long, value_name = "N")]
    pub conn: Vec<u64>,
    /// Only stages matching these globs, e.g. 'sio.*' or 'ws.frame' (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub stage: Vec<String>,
    /// Which version set the source links point at.
    #[arg(long, value_enum, default_value_t = VersionSet::Current)]
    pub versions: VersionSet,
    /// Link the versions installed for this Python interpreter (your app's virtualenv), each
    /// line found again in its files, as `dispel links --python`.
    #[arg(long, value_name = "PATH", conflicts_with = "site_packages")]
    pub python: Option<PathBuf>,
    /// Link the versions installed in this site-packages folder.
    #[arg(long, value_name = "DIR")]
    pub site_packages: Option<PathBuf>,
    /// The server's async mode, whose server, WebSocket and background-task code the links
    /// follow. Default: what the app reports (watch), else what python-engineio would pick
    /// among the packages installed (--python), else threading.
    #[arg(long, value_enum, value_name = "MODE")]
    pub async_mode: Option<AsyncMode>,
}

impl TraceArgs {
    /// Where the trace's links point, from `--versions`, `--python`, `--site-packages` and
    /// `--async-mode`.
    pub fn linker(&self) -> Result<crate::links::Linker, crate::Error> {
        crate::links::Linker::from_options(
            self.versions,
            self.python.as_deref(),
            self.site_packages.as_deref(),
            self.async_mode,
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Pretty,
    Jsonl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

impl ColorWhen {
    /// Decides colour once, at the edge: `always`, `never`, or `auto` = a terminal and no
    /// NO_COLOR.
    pub fn enabled(self, is_terminal: bool) -> bool {
        match self {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => {
                is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        }
    }
}

/// The built-in version sets and async modes belong to the links; the command line only
/// names them.
pub use crate::links::{AsyncMode, VersionSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum App {
    /// The Flask-SocketIO auction: `replace old value` in, `replaced values` out to everyone.
    Auction,
    /// What the official engine.io-protocol and socket.io-protocol test suites expect.
    Conformance,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to bind. Anything but loopback exposes the server to your network.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to bind (0 picks a free one; the URL printed says which).
    #[arg(long, default_value_t = 5000)]
    pub port: u16,
    /// Which application to serve.
    #[arg(long, value_enum, default_value_t = App::Auction)]
    pub app: App,
    /// Turn the trace off entirely (for benchmarks).
    #[arg(long)]
    pub no_trace: bool,
    /// Also write the session as a pcap capture (Wireshark, tshark and `dispel replay` open it).
    #[arg(long, value_name = "FILE.pcap")]
    pub record: Option<PathBuf>,
    /// Teaching mode: pause connection N (default: the first Socket.IO connection) before each
    /// stage, show what is about to happen and its source line, and wait for Enter. Other
    /// connections are not blocked. Heartbeat timers are stretched so a paused client is not
    /// dropped.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "0")]
    pub step: Option<u64>,
    /// The key that lets a page step the paused connection (the live view's "next"
    /// button); drawn at random when left out, and printed at start. Anyone may watch the
    /// live view; only a page that has the key controls.
    #[arg(long, value_name = "KEY", requires = "step", env = "DISPEL_STEP_KEY")]
    pub step_key: Option<String>,
    /// When the server stops, write a report of the session (Markdown, or HTML for *.html).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Pages allowed to connect, as Flask-SocketIO's `cors_allowed_origins` (repeatable; `*`
    /// for any). By default only the server's own origin, as in Flask-SocketIO.
    #[arg(long, value_name = "ORIGIN")]
    pub cors_allowed_origins: Vec<String>,
    /// The auction's demo extras, which the course's app does not have: a late joiner gets the
    /// current values, `bid-with-ack` is acknowledged with the bid, `/admin` is a second
    /// namespace, `upload` echoes a binary event. Marked as extras in the trace.
    #[arg(long)]
    pub extras: bool,
    #[command(flatten)]
    pub queue: QueueArgs,
    #[command(flatten)]
    pub trace: TraceArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Several server processes as one, through Redis (Flask-SocketIO's `message_queue`).
#[derive(Debug, Clone, Args)]
pub struct QueueArgs {
    /// Join the other processes on this Redis (`redis://HOST:PORT[/DB]`), as
    /// `SocketIO(app, message_queue=URL)` does: broadcasts reach their clients too, theirs
    /// reach ours.
    #[arg(long, value_name = "URL")]
    pub message_queue: Option<String>,
    /// The channel the processes share: the same as `SocketIO(..., channel=...)` in the
    /// other apps (Flask-SocketIO's default when they give none).
    #[arg(long, value_name = "NAME", default_value = crate::mq::DEFAULT_CHANNEL, requires = "message_queue")]
    pub channel: String,
    /// When Redis cannot be reached at start, serve this process's clients alone (and keep
    /// trying) instead of refusing to start.
    #[arg(long, requires = "message_queue")]
    pub message_queue_optional: bool,
}

/// `dispel emit`: publish one emit on the message queue, as a write-only
/// `SocketIO(message_queue=URL).emit(...)` in a Celery worker or a script does.
#[derive(Debug, Clone, Args)]
pub struct EmitArgs {
    /// The Redis the servers share (`redis://HOST:PORT[/DB]`).
    #[arg(long, value_name = "URL")]
    pub message_queue: String,
    /// The channel the servers listen on (their `SocketIO(..., channel=...)`).
    #[arg(long, value_name = "NAME", default_value = crate::mq::DEFAULT_CHANNEL)]
    pub channel: String,
    /// The event's name.
    pub event: String,
    /// Its argument, as JSON (`'{"item": "lamp", "bid": 12}'`, `'"text"'`, `42`).
    pub data: String,
    /// A room, or one client's Socket.IO sid (every client is alone in the room of its sid);
    /// everyone in the namespace when left out.
    #[arg(long, value_name = "ROOM|SID")]
    pub to: Option<String>,
    /// The namespace.
    #[arg(long, value_name = "NS", default_value = "/")]
    pub namespace: String,
    /// Print the trace event as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Protocol timers and limits. Defaults match python-engineio's.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Engine.IO pingInterval in milliseconds (conformance app: 300).
    #[arg(long, value_name = "MS")]
    pub ping_interval: Option<u64>,
    /// Engine.IO pingTimeout in milliseconds (conformance app: 200).
    #[arg(long, value_name = "MS")]
    pub ping_timeout: Option<u64>,
    /// Engine.IO maxPayload: largest polling body or WebSocket message accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1_000_000)]
    pub max_payload: usize,
    /// Largest HTTP request head, in bytes (431 above it).
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024)]
    pub max_head_bytes: usize,
    /// Most HTTP request headers (431 above it).
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_headers: usize,
    /// Most simultaneous TCP connections (503 above it).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_connections: usize,
    /// A request head, or a body, must arrive whole within this many milliseconds of its first
    /// byte (408 otherwise: slowloris).
    #[arg(long = "request-timeout", value_name = "MS", default_value_t = 10_000)]
    pub request_timeout_ms: u64,
    /// Packets queued for one client before it is dropped as too slow.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_queue: usize,
}

#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    /// Listen here for the app's clients (default: the port the app asks for).
    #[arg(long)]
    pub port: Option<u16>,
    /// The app listens here (default: a free loopback port the hook moves it to). With
    /// --port, the app must be started on this port.
    #[arg(long)]
    pub app_port: Option<u16>,
    /// Address to listen on (default: the one the app asks for, else 127.0.0.1).
    #[arg(long)]
    pub host: Option<String>,
    /// Also write the session as a capture (Wireshark, tshark and `dispel replay` open it).
    #[arg(long, value_name = "FILE.pcap")]
    pub record: Option<PathBuf>,
    /// Teaching mode: pause connection N (default: the first Socket.IO connection) before
    /// each stage and wait for Enter; the app's real bytes are held meanwhile.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "0")]
    pub step: Option<u64>,
    /// The key that lets a page step the paused connection (the live view's "next"
    /// button); drawn at random when left out, and printed at start. Anyone may watch the
    /// live view; only a page that has the key controls.
    #[arg(long, value_name = "KEY", requires = "step", env = "DISPEL_STEP_KEY")]
    pub step_key: Option<String>,
    /// When the app exits, write a report of the session (Markdown, or HTML for *.html).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// With --report: write the report a student hands in (as `dispel report --hand-in`):
    /// one path from the socket to the app's handler and back, the chain of each kind of
    /// call the app makes, no connection numbers and no tool commands.
    #[arg(long, requires = "report")]
    pub hand_in: bool,
    /// Only the wire: no tracer in the app (broadcasts are then inferred, as in replay).
    #[arg(long)]
    pub no_tracer: bool,
    #[command(flatten)]
    pub trace: TraceArgs,
    /// The command that starts the app, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// The capture: pcap (either byte order, µs or ns) or pcapng.
    pub file: PathBuf,
    /// Treat this TCP port as the server's (otherwise: from the SYN, else the HTTP request).
    #[arg(long, value_name = "PORT")]
    pub server_port: Option<u16>,
    /// Decode connections to this port as Redis (the message queue's PUBLISH, SUBSCRIBE and
    /// pushed messages).
    #[arg(long, value_name = "PORT", default_value_t = 6379)]
    pub redis_port: u16,
    #[command(flatten)]
    pub trace: TraceArgs,
}

#[derive(Debug, Clone, Args)]
pub struct LinksArgs {
    /// Only this stage: a chain stage (ws_upgrade), a trace stage with an optional packet kind
    /// (ws.handshake, eio.packet:ping) or an entry point (entry:on); all stages when omitted.
    pub stage: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = LinksFormat::Text)]
    pub format: LinksFormat,
    /// Which built-in version set.
    #[arg(long, value_enum, default_value_t = VersionSet::Current)]
    pub versions: VersionSet,
    /// Read the versions installed in this site-packages folder and link exactly those.
    #[arg(long, value_name = "DIR", conflicts_with = "python")]
    pub site_packages: Option<PathBuf>,
    /// Ask this Python interpreter where its site-packages is, then as --site-packages.
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// The server's async mode: threading (Werkzeug, simple-websocket), eventlet or gevent.
    /// Default: what python-engineio would pick among the packages installed (--python,
    /// --site-packages), else threading.
    #[arg(long, value_enum, value_name = "MODE")]
    pub async_mode: Option<AsyncMode>,
    /// When to colour the text output.
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
}

pub use crate::links::Format as LinksFormat;

impl LinksArgs {
    /// The query the links command runs: colour decided here, at the edge.
    pub fn query(&self) -> crate::links::Query {
        use std::io::IsTerminal;
        crate::links::Query {
            stage: self.stage.clone(),
            versions: self.versions,
            async_mode: self.async_mode,
            site_packages: self.site_packages.clone(),
            python: self.python.clone(),
            format: self.format,
            color: self.color.enabled(std::io::stdout().is_terminal()),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// A capture (pcap/pcapng, recognised by its magic number) or a JSONL trace
    /// (`dispel replay/serve --format jsonl`).
    pub input: PathBuf,
    /// Write the report to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Markdown (GitHub-flavoured) or one self-contained HTML page. Default: HTML when
    /// --out ends in .html or .htm, else Markdown.
    #[arg(long, value_enum)]
    pub format: Option<ReportFormat>,
    /// Which version set the source links point at.
    #[arg(long, value_enum, default_value_t = VersionSet::Current)]
    pub versions: VersionSet,
    /// For captures: treat this TCP port as the server's.
    #[arg(long, value_name = "PORT")]
    pub server_port: Option<u16>,
    /// Explain this connection (default: one with a WebSocket handshake and a Socket.IO
    /// EVENT, else the first with Engine.IO).
    #[arg(long, value_name = "N")]
    pub conn: Option<u64>,
    /// Your app's source (its main file or its folder): the "Your code" sections of a watched
    /// app quote your lines from it.
    #[arg(long, value_name = "PATH")]
    pub app: Option<PathBuf>,
    /// What the report calls its input in its title (default: the input's file name).
    #[arg(long, value_name = "TEXT")]
    pub title: Option<String>,
    /// Link the versions installed in this site-packages folder (as `dispel links`).
    #[arg(long, value_name = "DIR", conflicts_with = "python")]
    pub site_packages: Option<PathBuf>,
    /// Ask this Python interpreter (your app's) where its packages are, then as
    /// --site-packages; CPython's own lines at its version too.
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// The server's async mode (threading, eventlet, gevent), whose server and WebSocket code
    /// the links follow. Default: the app's SocketIO(async_mode=...) (--app), else what
    /// python-engineio would pick among the packages installed (--python), else threading.
    #[arg(long, value_enum, value_name = "MODE")]
    pub async_mode: Option<AsyncMode>,
    /// The report a student hands in: one path from the socket to the app's handler and
    /// back out to the bytes, which thread runs each step, each source line listed once,
    /// the app's handlers, what went wrong, and the licenses; no connection numbers and no
    /// tool commands.
    #[arg(long)]
    pub hand_in: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Md,
    Html,
}
