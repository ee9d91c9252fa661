//! `dispel bench`: workloads for the benchmarks in docs/performance.md.
//!
//! - `capture`: writes a large synthetic capture of a busy Socket.IO auction (many
//!   connections, broadcasts, every WebSocket length form, some connections with
//!   permessage-deflate) for measuring `dispel replay` against tshark and `cat`.

mod capture;

use std::process::ExitCode;

use crate::cli::{BenchArgs, BenchCommand};

pub fn run(args: BenchArgs) -> Result<ExitCode, crate::Error> {
    match args.command {
        BenchCommand::Capture(a) => capture::run(a),
    }
}
