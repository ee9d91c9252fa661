//! Connections as byte streams: one [`Session`] per TCP connection turns the bytes seen in each
//! direction into trace events by calling the `wire` decoders. Live and replay both feed it, so
//! they cannot disagree about what the bytes mean.

pub(crate) mod diagnose;
pub(crate) mod infer;
mod memo;
mod present;
pub(crate) mod redis;
mod session;

pub(crate) use diagnose::Diagnoser;
pub(crate) use infer::Inference;
pub use memo::{Memo, SharedMemo};
pub use session::{Limits, Session};
