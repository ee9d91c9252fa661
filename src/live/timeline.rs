//! One clock for what `dispel watch` sees from two sides: the bytes its taps read, stamped as
//! they pass, and what the tracer reports from inside the app, stamped by the app when it
//! happened but arriving later (a call is reported once it returns, after its bytes went
//! out). [`Timeline`] puts the app's wall-clock stamps on the taps' clock; [`InOrder`] holds
//! events back for a moment so that they leave in the order they happened: a handler before
//! the acknowledgement it returned, an emit before its packets.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::trace::{Event, Processor};

/// The clock of a watched session: seconds since it started.
#[derive(Debug, Clone, Copy)]
pub struct Timeline {
    start: Instant,
    /// The wall clock (Unix seconds) at `start`.
    epoch: f64,
}

impl Timeline {
    pub fn start() -> Timeline {
        Timeline {
            start: Instant::now(),
            epoch: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        }
    }

    pub fn instant(&self) -> Instant {
        self.start
    }

    pub fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// A Unix time the app stamped (Python's `time.time()`, the same clock as dispel's wall
    /// clock on one machine), on this timeline: never before the start, never after now. A
    /// message without one is placed when it came.
    pub fn place(&self, wall: Option<f64>) -> f64 {
        let now = self.now();
        match wall {
            Some(w) if w.is_finite() => (w - self.epoch).clamp(0.0, now),
            _ => now,
        }
    }
}

/// How long an event waits for earlier ones that are still on their way. The tracer's
/// messages reach dispel within a few milliseconds of the call's return; a call that blocks
/// longer than this (`socketio.call` waiting for its answer) is placed late, never lost.
pub const HOLD: Duration = Duration::from_millis(150);

/// The longest an event waits: while reports have been arriving late (a loaded machine, an
/// app whose threads the GIL starves), the hold grows to 1.5 times their lateness, up to this.
pub const MAX_HOLD: Duration = Duration::from_millis(1000);

/// How fast a lateness seen is forgotten: halved every this many seconds.
const LATE_HALF_LIFE: f64 = 10.0;

/// A processor fed in time order: events wait [`HOLD`] and leave sorted by `t` (events with
/// the same `t` keep the order they came in). One that comes after later ones have left goes
/// on at once, where it came.
pub struct InOrder<P> {
    inner: P,
    held: VecDeque<Event>,
    /// The `t` of the last event passed on.
    released: f64,
    /// The largest lateness seen (how long after its `t` an event came), capped, and when.
    late: (f64, f64),
    now: Box<dyn Fn() -> f64 + Send>,
}

impl<P: Processor> InOrder<P> {
    pub fn new(inner: P, timeline: Timeline) -> InOrder<P> {
        InOrder::with_clock(inner, Box::new(move || timeline.now()))
    }

    fn with_clock(inner: P, now: Box<dyn Fn() -> f64 + Send>) -> InOrder<P> {
        InOrder {
            inner,
            held: VecDeque::new(),
            released: f64::NEG_INFINITY,
            late: (0.0, 0.0),
            now,
        }
    }

    /// Passes on, in order, every event that happened before `until`.
    fn release(&mut self, until: f64, out: &mut Vec<Event>) {
        while self.held.front().is_some_and(|e| e.t <= until) {
            if let Some(e) = self.held.pop_front() {
                self.released = self.released.max(e.t);
                self.inner.push(e, out);
            }
        }
    }

    /// The lateness remembered at `now`, fading.
    fn lateness(&self, now: f64) -> f64 {
        let (late, at) = self.late;
        late * 0.5f64.powf((now - at).max(0.0) / LATE_HALF_LIFE)
    }

    /// How long events wait now: [`HOLD`], more while reports have come late.
    pub fn hold(&self) -> f64 {
        let now = (self.now)();
        (1.5 * self.lateness(now)).clamp(HOLD.as_secs_f64(), MAX_HOLD.as_secs_f64())
    }

    fn due(&self) -> f64 {
        (self.now)() - self.hold()
    }
}

impl<P: Processor> Processor for InOrder<P> {
    fn needs(&self) -> u32 {
        self.inner.needs()
    }

    fn push(&mut self, e: Event, out: &mut Vec<Event>) {
        let now = (self.now)();
        let late = (now - e.t).min(MAX_HOLD.as_secs_f64());
        if late > self.lateness(now) {
            self.late = (late, now);
        }
        if e.t < self.released {
            self.inner.push(e, out);
        } else {
            let at = self.held.partition_point(|h| h.t <= e.t);
            self.held.insert(at, e);
        }
        let due = self.due();
        self.release(due, out);
    }

    fn finish(&mut self, out: &mut Vec<Event>) {
        self.release(f64::INFINITY, out);
        self.inner.finish(out);
    }

    fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    fn tick(&mut self, out: &mut Vec<Event>) {
        let due = self.due();
        self.release(due, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Stage;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    /// Passes everything through.
    struct Same;
    impl Processor for Same {
        fn needs(&self) -> u32 {
            0
        }
        fn push(&mut self, e: Event, out: &mut Vec<Event>) {
            out.push(e);
        }
    }

    fn at(t: f64, what: &'static str) -> Event {
        Event::new(Stage::SioPacket, t, Some(1), None, what.to_string())
    }

    /// A clock the test sets, in milliseconds.
    fn clock() -> (Arc<AtomicU64>, Box<dyn Fn() -> f64 + Send>) {
        let ms = Arc::new(AtomicU64::new(0));
        let read = ms.clone();
        (
            ms,
            Box::new(move || read.load(Ordering::Relaxed) as f64 / 1000.0),
        )
    }

    fn names(events: &[Event]) -> Vec<&str> {
        events.iter().map(|e| e.summary.as_ref()).collect()
    }

    #[test]
    fn a_call_reported_after_its_bytes_leaves_before_them() {
        let (ms, now) = clock();
        let mut p = InOrder::with_clock(Same, now);
        let mut out = Vec::new();
        ms.store(1_010, Ordering::Relaxed);
        p.push(at(1.000, "EVENT in"), &mut out);
        p.push(at(1.008, "ACK out"), &mut out);
        // The handler's report, stamped when it began, comes after the answer it gave.
        p.push(at(1.002, "handler"), &mut out);
        assert!(out.is_empty(), "{:?}", names(&out));
        assert!(p.holding());
        ms.store(1_100, Ordering::Relaxed);
        p.tick(&mut out);
        assert!(out.is_empty(), "held {HOLD:?}");
        ms.store(1_200, Ordering::Relaxed);
        p.tick(&mut out);
        assert_eq!(names(&out), ["EVENT in", "handler", "ACK out"]);
        assert!(!p.holding());
    }

    #[test]
    fn the_hold_grows_while_reports_come_late_and_shrinks_after() {
        let (ms, now) = clock();
        let mut p = InOrder::with_clock(Same, now);
        let mut out = Vec::new();
        ms.store(1_000, Ordering::Relaxed);
        assert_eq!(p.hold(), HOLD.as_secs_f64());
        // A report 400 ms late: events now wait 600 ms.
        p.push(at(0.600, "late report"), &mut out);
        assert!((p.hold() - 0.6).abs() < 1e-9, "{}", p.hold());
        p.push(at(1.000, "bytes"), &mut out);
        ms.store(1_300, Ordering::Relaxed);
        p.push(at(1.100, "the call behind them"), &mut out);
        p.tick(&mut out);
        assert_eq!(names(&out), ["late report"]);
        ms.store(1_800, Ordering::Relaxed);
        p.tick(&mut out);
        assert_eq!(
            names(&out),
            ["late report", "bytes", "the call behind them"]
        );
        // A minute later it has faded back to the floor; a report a minute late counts 1 s.
        ms.store(61_800, Ordering::Relaxed);
        assert_eq!(p.hold(), HOLD.as_secs_f64());
        p.push(at(0.0, "very late"), &mut out);
        assert_eq!(p.hold(), MAX_HOLD.as_secs_f64());
    }

    #[test]
    fn equal_times_keep_their_order_and_late_events_are_not_lost() {
        let (ms, now) = clock();
        let mut p = InOrder::with_clock(Same, now);
        let mut out = Vec::new();
        p.push(at(0.5, "a"), &mut out);
        p.push(at(0.5, "b"), &mut out);
        ms.store(2_000, Ordering::Relaxed);
        p.push(at(1.9, "c"), &mut out);
        assert_eq!(names(&out), ["a", "b"]);
        // Older than what already left: passed on at once.
        p.push(at(0.1, "late"), &mut out);
        assert_eq!(names(&out), ["a", "b", "late"]);
        p.finish(&mut out);
        assert_eq!(names(&out), ["a", "b", "late", "c"]);
    }

    #[test]
    fn the_apps_wall_clock_is_placed_on_the_timeline() {
        let tl = Timeline::start();
        assert_eq!(tl.place(Some(tl.epoch - 5.0)), 0.0);
        assert!(tl.place(Some(tl.epoch + 3600.0)) <= tl.now());
        let just = tl.place(Some(tl.epoch + 0.0));
        assert!((0.0..=tl.now()).contains(&just));
        assert!(tl.place(None) >= just);
        assert!(tl.place(Some(f64::NAN)).is_finite());
    }
}
