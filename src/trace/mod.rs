//! Trace events and where they go.
//!
//! Producers (the flow sessions, the live server) build [`Event`]s and hand them to a
//! [`Tracer`]; one writer thread numbers them, attaches the source links of their stage and
//! renders them through a [`Sink`]. Serialization and colour happen only here.

mod event;
mod fields;
mod filter;
mod json;
mod jsonl;
mod pretty;
mod writer;

pub use event::{header, Dir, Event, Kind, Stage, Summary};
pub use fields::{Fields, Shared};
pub use filter::Filter;
pub use jsonl::{to_json, Jsonl, LineWriter};
pub use pretty::Pretty;
pub use writer::{Output, Processor, Sink, TraceWriter, Tracer, Watched};

use std::io::{IsTerminal, Write};

use crate::cli::{Format, TraceArgs};

/// Builds the sink the trace options ask for.
pub fn sink_for(
    args: &TraceArgs,
    linker: crate::links::Linker,
) -> Result<Box<dyn Sink>, crate::Error> {
    let (out, is_terminal): (Box<dyn Write + Send>, bool) = match &args.out {
        Some(path) => (Box::new(std::fs::File::create(path)?), false),
        None => (Box::new(std::io::stdout()), std::io::stdout().is_terminal()),
    };
    Ok(match args.format {
        Format::Jsonl => Box::new(Jsonl::new(out, linker)),
        Format::Pretty => Box::new(Pretty::new(
            out,
            args.color.enabled(is_terminal),
            args.verbose,
            linker,
        )),
    })
}

/// A writer whose bytes a test can read back after handing it to a sink.
#[cfg(test)]
#[derive(Clone, Default)]
pub(crate) struct SharedBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(test)]
impl SharedBuf {
    pub(crate) fn text(&self) -> String {
        let bytes = self.0.lock().map(|v| v.clone()).unwrap_or_default();
        String::from_utf8(bytes).unwrap_or_default()
    }
}

#[cfg(test)]
impl Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::ColorWhen;

    #[test]
    fn colour_decision() {
        assert!(ColorWhen::Always.enabled(false));
        assert!(!ColorWhen::Never.enabled(true));
        assert!(!ColorWhen::Auto.enabled(false));
    }
}
