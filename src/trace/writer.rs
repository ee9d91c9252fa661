//! The trace pipeline: cheap [`Tracer`] handles in every task, one writer thread.
//!
//! A dedicated thread keeps terminal and file writes off the server's async workers. It numbers
//! events in the order it receives them (`seq`), looks up their source links, renders them, and
//! flushes whenever its queue runs empty, so a trace file is always current without a write
//! system call per event under load.

use std::io;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Event, Filter, Stage};

/// Where rendered events go.
pub trait Sink: Send {
    fn write(&mut self, seq: u64, event: &Event) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()>;
}

enum Msg {
    Event(Event),
    /// Several events in order: one channel operation instead of one per event.
    Batch(Vec<Event>),
    Stop,
    /// Not sent: the writer's own, when time passed with no event while the processor holds
    /// some back.
    Tick,
}

/// A handle for producers. Cloning is cheap; a disabled tracer does nothing.
#[derive(Clone)]
pub struct Tracer {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    tx: SyncSender<Msg>,
    /// One per output; an event is sent when any active output wants it.
    filters: Vec<(Filter, Option<Watched>)>,
    /// Stages the processor needs, shown or not.
    needs: u32,
}

/// Whether an output has anyone to show events to right now (the live view: a viewer count).
pub type Watched = Arc<std::sync::atomic::AtomicUsize>;

fn active(w: &Option<Watched>) -> bool {
    w.as_ref()
        .is_none_or(|n| n.load(std::sync::atomic::Ordering::Relaxed) > 0)
}

/// One destination of the trace and the events it wants. Each output numbers its own events,
/// so every output's `seq` is contiguous.
pub struct Output {
    pub sink: Box<dyn Sink>,
    pub filter: Filter,
    /// For an output that may have nobody to show events to: events are built and sent for it
    /// only while this count is above zero. `None`: always active.
    pub watched: Option<Watched>,
}

/// Work on the whole trace, in the writer thread, before the outputs see it: what only the
/// events of every connection together can say (inferred broadcasts, a session across
/// connections, where an event reported from inside the app belongs).
pub trait Processor: Send {
    /// The stages it needs to see, whether or not an output shows them (a mask of
    /// `Stage::bit`s).
    fn needs(&self) -> u32;
    /// One event; what comes of it (the event itself, and anything inferred) goes to `out`.
    fn push(&mut self, e: Event, out: &mut Vec<Event>);
    /// The end of the trace.
    fn finish(&mut self, _out: &mut Vec<Event>) {}
    /// Whether it holds events back that time alone may release ([`Processor::tick`]).
    fn holding(&self) -> bool {
        false
    }
    /// Time passed with no event: what has been held long enough goes to `out`.
    fn tick(&mut self, _out: &mut Vec<Event>) {}
}

/// How often a processor that holds events back is ticked while no event comes.
const TICK: Duration = Duration::from_millis(50);

/// Owns the writer thread; `finish` flushes and reports a write error, if any.
pub struct TraceWriter {
    tx: Option<SyncSender<Msg>>,
    handle: Option<JoinHandle<io::Result<u64>>>,
}

impl Tracer {
    /// A tracer that drops everything (`--no-trace`).
    pub fn disabled() -> Tracer {
        Tracer { inner: None }
    }

    /// Starts the writer thread with one output.
    pub fn start(sink: Box<dyn Sink>, filter: Filter) -> (Tracer, TraceWriter) {
        Tracer::start_many(vec![Output {
            sink,
            filter,
            watched: None,
        }])
    }

    /// Starts the writer thread with several outputs (the terminal, a report's raw trace, the
    /// browser's live view...).
    pub fn start_many(outputs: Vec<Output>) -> (Tracer, TraceWriter) {
        Tracer::start_processed(outputs, None)
    }

    /// Starts the writer thread with a [`Processor`] in front of the outputs.
    pub fn start_processed(
        outputs: Vec<Output>,
        processor: Option<Box<dyn Processor>>,
    ) -> (Tracer, TraceWriter) {
        // Bounded: a producer faster than the output waits rather than piling events up in
        // memory. A message is one event or one batch (at most a few hundred events: what one
        // socket write or one stretch of a capture made).
        let (tx, rx) = mpsc::sync_channel(32);
        let filters = outputs
            .iter()
            .map(|o| (o.filter.clone(), o.watched.clone()))
            .collect();
        let needs = processor.as_ref().map_or(0, |p| p.needs());
        let handle = std::thread::Builder::new()
            .name("dispel-trace".into())
            .spawn(move || write_loop(rx, outputs, processor))
            .ok();
        (
            Tracer {
                inner: Some(Arc::new(Inner {
                    tx: tx.clone(),
                    filters,
                    needs,
                })),
            },
            TraceWriter {
                tx: Some(tx),
                handle,
            },
        )
    }

    /// Is anything traced at all? Producers skip decoding when not.
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Would an event of this stage on this connection be written?
    pub fn wants(&self, stage: Stage, conn: Option<u64>) -> bool {
        self.inner.as_ref().is_some_and(|i| {
            i.needs & stage.bit() != 0
                || i.filters
                    .iter()
                    .any(|(f, w)| active(w) && f.wants(stage, conn))
        })
    }

    /// The stages some output wants for this connection, as a mask of `Stage::bit`s: a
    /// decoder can skip building the rest.
    pub fn interest(&self, conn: Option<u64>) -> u32 {
        Stage::ALL
            .iter()
            .filter(|s| self.wants(**s, conn))
            .fold(0, |mask, s| mask | s.bit())
    }

    pub fn emit(&self, event: Event) {
        if let Some(inner) = &self.inner {
            if inner.needs & event.stage.bit() != 0
                || inner
                    .filters
                    .iter()
                    .any(|(f, w)| active(w) && f.accepts(&event))
            {
                // The writer is gone only after `finish`: late events are dropped.
                let _ = inner.tx.send(Msg::Event(event));
            }
        }
    }

    /// Sends events in one message, keeping only those some output wants. `events` is left
    /// empty (its capacity goes with the batch).
    pub fn emit_batch(&self, events: &mut Vec<Event>) {
        let Some(inner) = &self.inner else {
            events.clear();
            return;
        };
        events.retain(|e| {
            inner.needs & e.stage.bit() != 0
                || inner.filters.iter().any(|(f, w)| active(w) && f.accepts(e))
        });
        if !events.is_empty() {
            // The writer is gone only after `finish`: late events are dropped.
            let _ = inner.tx.send(Msg::Batch(std::mem::take(events)));
        }
    }
}

impl TraceWriter {
    /// Writes what is queued, flushes, stops the thread. Returns how many events were written.
    pub fn finish(mut self) -> io::Result<u64> {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Msg::Stop);
        }
        match self.handle.take() {
            Some(h) => h
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the trace writer thread panicked"))),
            None => Ok(0),
        }
    }
}

fn write_loop(
    rx: Receiver<Msg>,
    mut outputs: Vec<Output>,
    mut processor: Option<Box<dyn Processor>>,
) -> io::Result<u64> {
    let mut processed: Vec<Event> = Vec::new();
    let mut seqs = vec![0u64; outputs.len()];
    // An output that failed (a closed pipe, a full disk) is dropped; the others go on. The
    // first error is reported when the writer finishes.
    let mut alive = vec![true; outputs.len()];
    let mut first_error: Option<io::Error> = None;
    let mut dirty = false;
    let mut fail = |i: usize, e: io::Error, alive: &mut Vec<bool>| {
        alive[i] = false;
        first_error.get_or_insert(e);
    };
    loop {
        let msg = if dirty {
            match rx.try_recv() {
                Ok(m) => m,
                Err(mpsc::TryRecvError::Empty) => {
                    for (i, o) in outputs.iter_mut().enumerate() {
                        if alive[i] {
                            if let Err(e) = o.sink.flush() {
                                fail(i, e, &mut alive);
                            }
                        }
                    }
                    dirty = false;
                    continue;
                }
                Err(mpsc::TryRecvError::Disconnected) => break,
            }
        } else {
            let holding = processor.as_ref().is_some_and(|p| p.holding());
            match rx.recv_timeout(if holding {
                TICK
            } else {
                Duration::from_secs(1)
            }) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) if holding => Msg::Tick,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        };
        let mut write = |e: &Event, alive: &mut Vec<bool>| {
            for (i, o) in outputs.iter_mut().enumerate() {
                if alive[i] && active(&o.watched) && o.filter.accepts(e) {
                    seqs[i] += 1;
                    if let Err(err) = o.sink.write(seqs[i], e) {
                        fail(i, err, alive);
                    }
                }
            }
        };
        let stop = matches!(msg, Msg::Stop);
        match (msg, processor.as_mut()) {
            (Msg::Event(e), None) => write(&e, &mut alive),
            (Msg::Batch(events), None) => {
                for e in &events {
                    write(e, &mut alive);
                }
            }
            (Msg::Event(e), Some(p)) => {
                p.push(e, &mut processed);
                for e in processed.drain(..) {
                    write(&e, &mut alive);
                }
            }
            (Msg::Batch(events), Some(p)) => {
                for e in events {
                    p.push(e, &mut processed);
                }
                for e in processed.drain(..) {
                    write(&e, &mut alive);
                }
            }
            (Msg::Stop, Some(p)) => {
                p.finish(&mut processed);
                for e in processed.drain(..) {
                    write(&e, &mut alive);
                }
            }
            (Msg::Tick, Some(p)) => {
                p.tick(&mut processed);
                for e in processed.drain(..) {
                    write(&e, &mut alive);
                }
            }
            (Msg::Stop | Msg::Tick, None) => {}
        }
        if stop {
            break;
        }
        dirty = true;
        if !alive.iter().any(|a| *a) {
            break;
        }
    }
    for (i, o) in outputs.iter_mut().enumerate() {
        if alive[i] {
            if let Err(e) = o.sink.flush() {
                fail(i, e, &mut alive);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(seqs.first().copied().unwrap_or(0)),
    }
}
