//! `dispel bench`: workloads for the benchmarks in docs/performance.md.
//!
//! - `capture`: writes a large synthetic capture of a busy Socket.IO auction (many
//!   connections, broadcasts, every WebSocket length form, some connections with
//!   permessage-deflate) for measuring `dispel replay` against tshark and `cat`.
//! - `fanout`: a load generator for `dispel serve` (or any Socket.IO server running the
//!   auction): N WebSocket clients, one bidder, every broadcast checked and timed.

mod capture;
mod fanout;
pub mod histogram;

use std::process::ExitCode;

use crate::cli::{BenchArgs, BenchCommand};

pub fn run(args: BenchArgs) -> Result<ExitCode, crate::Error> {
    match args.command {
        BenchCommand::Capture(a) => capture::run(a),
        BenchCommand::Fanout(a) => fanout::run(a),
    }
}
