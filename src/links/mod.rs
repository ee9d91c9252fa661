//! The stage -> Python call-chain table (see `dispel links`).

use std::process::ExitCode;

use crate::cli::{LinksArgs, VersionSet};
use crate::trace::Stage;

/// One step of a chain, ready to print next to a trace event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepLink {
    /// GitHub permalink, `https://github.com/REPO/blob/TAG/PATH#Lstart-Lend`.
    pub url: String,
    /// Short form for the terminal: `engineio/packet.py:64`.
    pub short: String,
}

/// The links of a trace event: its stage, narrowed by `kind` where the code path differs
/// (an Engine.IO ping is not an event dispatch). The last step is the deepest.
pub fn for_event(_set: VersionSet, _stage: Stage, _kind: Option<&str>) -> &'static [StepLink] {
    &[]
}

pub fn run(_args: LinksArgs) -> Result<ExitCode, crate::Error> {
    Err("dispel links is not built yet".into())
}
