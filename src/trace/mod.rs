//! Trace events and where they go.

mod event;

pub use event::{Dir, Event, Stage};
