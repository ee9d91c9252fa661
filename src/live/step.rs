//! Teaching mode (`serve --step`): one connection is paused before each stage. The terminal
//! shows what is about to happen and the source line that does it in Flask-SocketIO's stack,
//! then waits for Enter. Only that connection's task waits; every other client carries on.
//!
//! Enter advances one stage; `c` then Enter lets the connection run freely from then on.

use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

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
}

impl Stepper {
    /// Starts reading Enter presses from stdin on a thread of its own.
    pub fn start(target: Option<u64>, versions: VersionSet) -> Arc<Stepper> {
        let stepper = Arc::new(Stepper {
            target: AtomicU64::new(target.unwrap_or(0)),
            enters: Semaphore::new(0),
            running_free: AtomicBool::new(false),
            versions,
        });
        let s = stepper.clone();
        let _ = std::thread::Builder::new()
            .name("dispel-step".into())
            .spawn(move || {
                for line in std::io::stdin().lock().lines() {
                    let Ok(line) = line else { break };
                    if line.trim().eq_ignore_ascii_case("c") {
                        s.running_free.store(true, Ordering::Release);
                        // Wake whoever waits, for good.
                        s.enters.add_permits(Semaphore::MAX_PERMITS / 2);
                        break;
                    }
                    s.enters.add_permits(1);
                }
            });
        stepper
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
            {
                let mut err = std::io::stderr().lock();
                // A block of its own, the prompt on its own line: trace lines written while
                // it waits start on a fresh line instead of running into the prompt.
                let _ = writeln!(err, "{p}\n    [Enter: go on, c + Enter: run freely]\n");
                let _ = err.flush();
            }
            match self.enters.acquire().await {
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
