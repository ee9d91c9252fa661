//! A sink that keeps the numbered events in memory instead of printing them (`dispel report`
//! runs the same pipeline as `replay` and reads the events afterwards).

use std::io;
use std::sync::{Arc, Mutex};

use super::{Event, Sink};

/// Collects `(seq, event)` pairs; clone the handle before giving the sink to the writer.
#[derive(Clone, Default)]
pub struct Collect {
    events: Arc<Mutex<Vec<(u64, Event)>>>,
}

impl Collect {
    pub fn new() -> Collect {
        Collect::default()
    }

    /// Takes what was collected so far.
    pub fn take(&self) -> Vec<(u64, Event)> {
        match self.events.lock() {
            Ok(mut v) => std::mem::take(&mut *v),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }
}

impl Sink for Collect {
    fn write(&mut self, seq: u64, event: &Event) -> io::Result<()> {
        match self.events.lock() {
            Ok(mut v) => v.push((seq, event.clone())),
            Err(poisoned) => poisoned.into_inner().push((seq, event.clone())),
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
