//! `dispel serve`: the live server.

use std::process::ExitCode;

use crate::cli::ServeArgs;

pub fn run(_args: ServeArgs) -> Result<ExitCode, crate::Error> {
    Err("dispel serve is not built yet".into())
}
