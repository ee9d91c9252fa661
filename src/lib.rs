//! dispel: watch a real Socket.IO connection work, stage by stage, from the TCP accept to the
//! broadcast, with a link to the Python source line that does each step in Flask-SocketIO's stack.
//!
//! # Layout
//! - [`wire`]: sans-IO decoders and encoders (HTTP/1.1 head, WebSocket handshake and frames,
//!   permessage-deflate, Engine.IO v4, Socket.IO v5). No I/O, no clock.
//! - [`flow`]: one [`flow::Session`] per TCP connection turns the bytes seen in each direction
//!   into trace events by calling `wire`. Live and replay both feed it.
//! - [`live`]: the tokio server (`dispel serve`): listener, tap, Engine.IO sessions, Socket.IO
//!   namespaces, the auction. Dispatch and broadcast events come from here only.
//! - [`replay`]: capture files (pcap, pcapng) -> link layer -> IP -> TCP reassembly -> `flow`.
//! - [`trace`]: the [`trace::Event`] type, filters and sinks (pretty terminal, JSON Lines).
//! - [`links`]: the stage -> Python call-chain table and its permalinks.
//! - [`report`]: `dispel report`, a document for students from a capture or a JSONL trace.
//! - [`cli`]: clap types; [`run`] is the only place errors become exit codes.

// Public: what the binary (cli, run), the fuzz targets (wire, flow, replay, trace) and the
// integration tests use. The rest is the crate's own, so the dead-code lint sees it.
pub(crate) mod bench;
pub mod cli;
pub mod flow;
pub(crate) mod links;
pub(crate) mod live;
pub(crate) mod mq;
pub mod replay;
pub(crate) mod report;
pub(crate) mod stage;
pub mod trace;
pub mod wire;

use std::process::ExitCode;

/// Errors at the edge of the program: printed once by `main`.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Runs one command line.
pub fn run(cli: cli::Cli) -> Result<ExitCode, Error> {
    match cli.command {
        cli::Command::Serve(args) => live::run(args),
        cli::Command::Emit(args) => live::mq::emit_command(args),
        cli::Command::Watch(args) => live::watch::run(args),
        cli::Command::Replay(args) => replay::run(args),
        cli::Command::Links(args) => links::run(&args.query()),
        cli::Command::Bench(args) => bench::run(args),
        cli::Command::Report(args) => report::run(args),
    }
}
