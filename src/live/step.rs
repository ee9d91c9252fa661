//! Teaching mode (`serve --step`): one connection is paused before each stage. The terminal
//! shows what is about to happen and the source line that does it in Flask-SocketIO's stack,
//! then waits for Enter. Only that connection's task waits; every other client carries on.
//!
//! Enter advances one stage; `c` then Enter lets the connection run freely from then on. The
//! live view's page can do the same (`POST /trace/step?key=KEY&do=next|free`), but only with
//! the key printed at start: in a classroom everyone may watch, only the instructor steps.

use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use crate::cli::VersionSet;
use crate::links;
use crate::trace::Event;

pub struct Stepper {
    /// The connection being stepped: fixed by `--step N`, or claimed by the first connection
    /// that speaks Engine.IO (0 = not yet).
    target: AtomicU64,
    /// One permit per Enter.
    enters: Semaphore,
    running_free: AtomicBool,
    versions: VersionSet,
    /// What a page must show to step (`?key=`).
    key: String,
    /// The pause block on screen now, for the page.
    paused: Mutex<Option<String>>,
}

/// What a page asked the stepper.
pub enum Control {
    Next,
    Free,
}

impl Stepper {
    /// Starts reading Enter presses from stdin on a thread of its own.
    pub fn start(target: Option<u64>, versions: VersionSet, key: Option<String>) -> Arc<Stepper> {
        let key = key.unwrap_or_else(|| {
            let mut b = [0u8; 12];
            // Without OS randomness, the page cannot step: only the terminal can.
            match getrandom::fill(&mut b) {
                Ok(()) => crate::wire::hex(&b),
                Err(_) => String::new(),
            }
        });
        let stepper = Arc::new(Stepper {
            target: AtomicU64::new(target.unwrap_or(0)),
            enters: Semaphore::new(0),
            running_free: AtomicBool::new(false),
            versions,
            key,
            paused: Mutex::new(None),
        });
        let s = stepper.clone();
        let _ = std::thread::Builder::new()
            .name("dispel-step".into())
            .spawn(move || {
                for line in std::io::stdin().lock().lines() {
                    let Ok(line) = line else { break };
                    if line.trim().eq_ignore_ascii_case("c") {
                        s.control(Control::Free);
                        break;
                    }
                    s.control(Control::Next);
                }
            });
        stepper
    }

    /// The key a page must show, printed at start.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Does `given` open the controls? Compared in constant time; an empty key never does.
    pub fn admits(&self, given: &str) -> bool {
        let (a, b) = (self.key.as_bytes(), given.as_bytes());
        !a.is_empty()
            && a.len() == b.len()
            && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// One stage on, or run freely from now on (Enter, `c`, or the page's buttons).
    pub fn control(&self, c: Control) {
        match c {
            Control::Next => self.enters.add_permits(1),
            Control::Free => {
                self.running_free.store(true, Ordering::Release);
                // Wake whoever waits, for good.
                self.enters.add_permits(Semaphore::MAX_PERMITS / 2);
            }
        }
    }

    /// The pause block waiting for Enter now, if any.
    pub fn paused(&self) -> Option<String> {
        self.paused.lock().ok().and_then(|p| p.clone())
    }

    /// Does this connection step, given the events its bytes just produced? The first
    /// connection with an Engine.IO request claims an unclaimed stepper.
    pub fn steps(&self, conn: u64, events: &[Event]) -> bool {
        if self.running_free.load(Ordering::Acquire) {
            return false;
        }
        let claims = events
            .iter()
            .any(|e| e.stage == crate::trace::Stage::HttpRequest && e.fields.contains_key("eio"));
        if claims {
            let _ = self
                .target
                .compare_exchange(0, conn, Ordering::AcqRel, Ordering::Acquire);
        }
        self.target.load(Ordering::Acquire) == conn
    }

    /// Shows each upcoming stage and waits for Enter before the next.
    pub async fn pause(self: Arc<Self>, previews: Vec<String>) {
        for p in previews {
            if self.running_free.load(Ordering::Acquire) {
                return;
            }
            if let Ok(mut now) = self.paused.lock() {
                *now = Some(p.trim().to_string());
            }
            {
                let mut err = std::io::stderr().lock();
                // A block of its own, the prompt on its own line: trace lines written while
                // it waits start on a fresh line instead of running into the prompt.
                let _ = writeln!(err, "{p}\n    [Enter: go on, c + Enter: run freely]\n");
                let _ = err.flush();
            }
            let went_on = self.enters.acquire().await;
            if let Ok(mut now) = self.paused.lock() {
                *now = None;
            }
            match went_on {
                Ok(permit) => permit.forget(),
                Err(_) => return,
            }
        }
    }

    /// The line shown before a stage happens.
    pub fn preview(&self, e: &Event) -> String {
        let source = links::for_event(self.versions, e.stage, e.kind)
            .last()
            .map(|l| format!("\n    source: {}  {}", l.short, l.url))
            .unwrap_or_default();
        format!(
            "\n== paused #{} {} {}: {}{source}",
            e.conn.unwrap_or(0),
            e.dir.map_or("", |d| d.as_str()),
            e.stage,
            e.summary
        )
    }
}
