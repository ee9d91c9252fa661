//! `dispel replay`: capture file -> link layer -> IP -> TCP reassembly -> flow::Session.
//!
//! This module turns a capture into per-connection, per-direction TCP byte streams and pushes
//! them into a [`StreamSink`], one packet at a time (streaming: the file is never held whole).
//!
//! - [`capture`]: pcap / pcapng records (via `pcap-file`), timestamps, interfaces.
//! - [`link`]: link layers (Ethernet + VLAN, SLL, SLL2, NULL/LOOP, raw IP) -> one TCP segment.
//! - [`reassembly`]: per-connection TCP reassembly, server side detection, gaps, closes.

use std::fmt;
use std::net::SocketAddr;
use std::process::ExitCode;

use crate::cli::ReplayArgs;
pub use crate::trace::Dir;

pub mod capture;
pub mod link;
pub mod reassembly;
pub mod record;

pub use capture::{is_capture_magic, read_capture};

mod decode;

pub use decode::TraceSink;

/// `dispel replay FILE`: the capture's trace, through the same decoders as `serve`.
pub fn run(args: ReplayArgs) -> Result<ExitCode, crate::Error> {
    let filter = crate::trace::Filter::new(&args.trace.conn, &args.trace.stage, args.trace.quiet)?;
    let file = std::fs::File::open(&args.file)
        .map_err(|e| format!("cannot open {}: {e}", args.file.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let progress = progress_bar(size);
    let input = std::io::BufReader::with_capacity(1 << 20, progress.wrap_read(file));
    let linker = args.trace.linker()?;
    let (tracer, writer) =
        crate::trace::Tracer::start(crate::trace::sink_for(&args.trace, linker.clone())?, filter);
    let mut sink = TraceSink::new(tracer, crate::flow::Limits::default(), linker)
        .with_redis_port(args.redis_port);
    let result = read_capture(input, args.server_port, &mut sink);
    sink.finish();
    drop(sink);
    progress.finish_and_clear();
    writer.finish()?;
    let stats = result.map_err(|e| format!("{}: {e}", args.file.display()))?;
    if stats.problems > 0 {
        eprintln!(
            "dispel replay: {} problem(s) in the capture, shown as error events; the rest was decoded",
            stats.problems
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A progress bar on stderr for captures big enough to wait for, only on a terminal.
fn progress_bar(size: u64) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if size < 50 * 1024 * 1024 || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(size);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {wide_bar}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// How a connection came into view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenHow {
    /// The client's SYN (or the server's SYN+ACK) was in the capture.
    Syn,
    /// No SYN seen: the capture starts in the middle of the connection. The streams start at
    /// the first data segment seen in each direction.
    MidStream,
}

/// How (one direction of) a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseHow {
    /// A FIN from the side given by `dir`, after all its bytes were delivered.
    Fin,
    /// A RST (from either side): the whole connection.
    Rst,
    /// The capture ended while the connection was still open.
    EndOfCapture,
    /// No packet for this connection for a long time (see [`reassembly::IDLE_TIMEOUT`]).
    Idle,
    /// A new SYN reused the 4-tuple of a connection that never closed; the next connection
    /// gets a new id.
    Reused,
}

/// Receives the TCP byte streams of a capture, in capture order.
///
/// For each connection the calls are: `open` once, then any `data`/`gap`/`close(Some(dir))`
/// in capture order, then exactly one final `close` with `dir == None` (RST, end of capture,
/// idle, reuse) unless both directions closed with FIN (two `close(Some(_), _, Fin)` calls).
pub trait StreamSink {
    /// A new TCP connection; ids are 1, 2, 3... in order of opening (first SYN, or first data
    /// segment for a connection seen mid-stream).
    fn open(&mut self, conn: u64, client: SocketAddr, server: SocketAddr, t: f64, how: OpenHow);
    /// In-order bytes of one direction, with the capture time and the 1-based capture frame
    /// number of the packet that carried them.
    fn data(&mut self, conn: u64, dir: Dir, t: f64, frame: u64, bytes: &[u8]);
    /// `len` bytes of `dir` that never appeared in the capture (a missing segment, or the tail
    /// of a packet cut by the capture's snap length). The stream continues after them.
    fn gap(&mut self, conn: u64, dir: Dir, t: f64, len: u64);
    /// The connection ended: `Some(dir)` for a FIN from that side (the other direction may
    /// still carry data), `None` for the whole connection (RST, end of capture, ...).
    fn close(&mut self, conn: u64, dir: Option<Dir>, t: f64, how: CloseHow);
    /// Something in the capture could not be used (corrupt record, unknown link type,
    /// truncated file, IP fragment...). Non-TCP traffic is silently ignored, not a problem.
    fn problem(&mut self, t: Option<f64>, frame: Option<u64>, message: String);
}

/// What [`read_capture`] saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Packet records read (every frame, usable or not).
    pub packets: u64,
    /// Packets that carried a TCP segment.
    pub tcp_packets: u64,
    /// Captured bytes of all packet records (the link-layer frames, as stored in the file).
    pub bytes: u64,
    /// TCP connections opened (`StreamSink::open` calls).
    pub connections: u64,
    /// `StreamSink::problem` calls.
    pub problems: u64,
}

/// Why nothing at all could be read from the input.
#[derive(Debug)]
pub enum CaptureError {
    /// The first four bytes are not a pcap or pcapng magic number.
    NotACapture { magic: [u8; 4] },
    /// The input is shorter than a file header (`len` bytes).
    TooShort { len: usize },
    /// The file header could not be parsed.
    BadHeader(String),
    /// Reading the input failed before anything was read.
    Io(std::io::Error),
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureError::NotACapture { magic } => write!(
                f,
                "not a pcap or pcapng file (magic number {:02x} {:02x} {:02x} {:02x})",
                magic[0], magic[1], magic[2], magic[3]
            ),
            CaptureError::TooShort { len } => {
                write!(
                    f,
                    "not a capture file: only {len} bytes, shorter than a file header"
                )
            }
            CaptureError::BadHeader(msg) => write!(f, "unreadable capture file header: {msg}"),
            CaptureError::Io(e) => write!(f, "cannot read the capture: {e}"),
        }
    }
}

impl std::error::Error for CaptureError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CaptureError::Io(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod testutil;
