//! `dispel replay`: capture file -> link layer -> IP -> TCP reassembly -> flow::Session.

use std::process::ExitCode;

use crate::cli::ReplayArgs;

pub fn run(_args: ReplayArgs) -> Result<ExitCode, crate::Error> {
    Err("dispel replay is not built yet".into())
}
