//! Connections as byte streams: one [`Session`] per TCP connection turns the bytes seen in each
//! direction into trace events by calling the `wire` decoders. Live and replay both feed it, so
//! they cannot disagree about what the bytes mean.

pub mod diagnose;
pub mod infer;
mod memo;
mod present;
pub mod redis;
mod session;

pub use diagnose::Diagnoser;
pub use infer::Inference;
pub use memo::{Memo, SharedMemo};
pub use session::{Limits, Session};
