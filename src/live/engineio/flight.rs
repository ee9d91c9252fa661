//! A broadcast on its way out, so that its sender can wait for it to land ([`Flight`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::{EioSession, OutItem};

/// The longest a sender waits for its broadcast to land (see [`Flight`]).
pub const FLIGHT_WAIT: Duration = Duration::from_secs(1);

/// A client whose queue holds this many packets is not waited for (see [`Flight`]).
pub(super) const KEEPING_UP: usize = 8;

/// How many broadcasts of one sender may be on their way before reading from it waits (see
/// [`Flight`]). A few let a fast sender's broadcasts share the recipients' writes; an
/// acknowledged event waits for its own broadcast whatever this is.
pub(super) const IN_FLIGHT: usize = 4;

/// One broadcast on its way out, so that its sender can wait for it to land.
///
/// A broadcast has landed once every recipient's connection has taken it from its queue. The
/// sender waits for it in two ways:
/// - what the handler sends its own client next (the acknowledgement of a bid) is written after
///   the broadcast has landed: an ack-paced sender cannot run ahead of the room, so a busy
///   room has one broadcast in flight per sender instead of several queued behind each other
///   (each recipient's delay is one fan-out, not several);
/// - with [`IN_FLIGHT`] of its broadcasts on their way, nothing more is read from the sender
///   until the oldest lands: a client sending events flat out is slowed to the pace the room
///   takes them (its excess waits in its own TCP buffers) instead of filling every other
///   client's queue.
///
/// Node's socket.io gets the first effect by writing into every socket before the handler
/// returns (a backlog then grows in its memory); python-socketio queues and goes on at once.
///
/// A recipient that is not keeping up (its queue already holding [`KEEPING_UP`] packets, its
/// WebSocket write waiting for room in its socket, or, on polling, no GET waiting) is not
/// waited for, so a client that stops reading never holds the sender back; and the wait is
/// capped at [`FLIGHT_WAIT`] whatever happens.
pub struct Flight {
    /// One clone per waited-for recipient's queued copy, and this one until [`Flight::landed`].
    share: Arc<Share>,
    landed: Landed,
}

/// Held by a queued copy of a broadcast: when the last share goes (the copy taken by the
/// writer, or discarded with its connection), the flight has landed.
struct Share(Arc<Landing>);

impl Drop for Share {
    fn drop(&mut self) {
        self.0.done.store(true, Ordering::Release);
        self.0.notify.notify_waiters();
    }
}

#[derive(Default)]
struct Landing {
    done: AtomicBool,
    notify: Notify,
}

/// What a sender waits for: its broadcast landing.
#[derive(Clone)]
pub struct Landed(Arc<Landing>);

impl Landed {
    pub(super) fn is_done(&self) -> bool {
        self.0.done.load(Ordering::Acquire)
    }

    pub(super) fn same(&self, other: &Landed) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Waits until the broadcast has landed, or until `deadline`.
    pub(super) async fn wait_until(&self, deadline: tokio::time::Instant) {
        let landing = async {
            loop {
                let notified = self.0.notify.notified();
                tokio::pin!(notified);
                // Registered before the check: a landing in between is not missed.
                notified.as_mut().enable();
                if self.is_done() {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout_at(deadline, landing).await;
    }

    /// Waits until the broadcast has landed, at most [`FLIGHT_WAIT`].
    pub(super) async fn wait(&self) {
        self.wait_until(tokio::time::Instant::now() + FLIGHT_WAIT)
            .await
    }
}

impl Flight {
    pub fn new() -> Flight {
        let landing = Arc::new(Landing::default());
        Flight {
            share: Arc::new(Share(landing.clone())),
            landed: Landed(landing),
        }
    }

    /// The broadcast, as queued for one recipient.
    pub fn copy(&self, session: &EioSession, item: &OutItem) -> Queued {
        Queued {
            item: item.clone(),
            _share: session.keeping_up().then(|| self.share.clone()),
            after: None,
        }
    }

    /// Every copy is queued: what the sender waits for.
    pub fn landed(self) -> Landed {
        self.landed
    }
}

impl Default for Flight {
    fn default() -> Flight {
        Flight::new()
    }
}

/// What goes through a session's queue.
pub struct Queued {
    pub item: OutItem,
    /// Held while this copy of a broadcast is queued ([`Flight`]).
    _share: Option<Arc<Share>>,
    /// Written only after this broadcast has landed (or [`FLIGHT_WAIT`]).
    pub after: Option<Landed>,
}

impl From<OutItem> for Queued {
    fn from(item: OutItem) -> Queued {
        Queued {
            item,
            _share: None,
            after: None,
        }
    }
}

impl Queued {
    /// Waits, if this packet must follow a broadcast.
    pub(super) async fn wait_turn(&mut self) {
        if let Some(after) = self.after.take() {
            after.wait().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{test_server as server, text_item, EioServer, Transport};
    use super::*;
    use crate::wire::engineio::PacketType;

    /// A session, its OPEN already taken.
    fn open(server: &Arc<EioServer>, conn: u64, t: Transport) -> Arc<EioSession> {
        let s = server.open_session(conn, t);
        if let Ok(mut rx) = s.rx.try_lock() {
            let _ = rx.try_recv();
        }
        s
    }

    /// A session on WebSocket, idle.
    fn on_websocket(server: &Arc<EioServer>, conn: u64) -> Arc<EioSession> {
        open(server, conn, Transport::WebSocket)
    }

    #[tokio::test]
    async fn a_broadcast_lands_when_every_recipient_keeping_up_has_taken_it() {
        let server = server();
        let (a, b) = (on_websocket(&server, 1), on_websocket(&server, 2));
        let item = text_item(PacketType::Message, "2[\"replaced values\"]");
        let flight = Flight::new();
        for s in [&a, &b] {
            s.send(flight.copy(s, &item)).unwrap();
        }
        let done = flight.landed();
        assert!(!done.is_done());
        let taken_a = a.rx.lock().await.try_recv().unwrap();
        drop(taken_a);
        assert!(!done.is_done(), "b has not taken it yet");
        let taken_b = b.rx.lock().await.try_recv().unwrap();
        assert_eq!(taken_b.item, item);
        drop(taken_b);
        assert!(done.is_done());
    }

    #[tokio::test]
    async fn a_recipient_that_is_not_keeping_up_is_not_waited_for() {
        let server = server();
        let (backlogged, blocked, idle) = (
            on_websocket(&server, 1),
            on_websocket(&server, 2),
            on_websocket(&server, 3),
        );
        // On polling, a client is waited for only while a GET of its is waiting.
        let (polling, between_gets) = (
            open(&server, 4, Transport::Polling),
            open(&server, 5, Transport::Polling),
        );
        polling.polling.store(true, Ordering::Release);
        for _ in 0..KEEPING_UP {
            backlogged.send(text_item(PacketType::Noop, "")).unwrap();
        }
        blocked.blocked.store(true, Ordering::Relaxed);
        let item = text_item(PacketType::Message, "2[\"replaced values\"]");
        let flight = Flight::new();
        for s in [&backlogged, &blocked, &between_gets] {
            s.send(flight.copy(s, &item)).unwrap();
        }
        // Nobody keeping up got it: landed at once, though every copy is still queued.
        assert!(flight.landed().is_done());
        let flight = Flight::new();
        polling.send(flight.copy(&polling, &item)).unwrap();
        let done = flight.landed();
        assert!(!done.is_done());
        drop(polling.rx.lock().await.try_recv().unwrap());
        assert!(done.is_done());
        // An idle recipient is waited for; what it was sent after the broadcast waits too.
        let flight = Flight::new();
        idle.send(flight.copy(&idle, &item)).unwrap();
        let mut answer = Queued::from(text_item(PacketType::Message, "3"));
        answer.after = Some(flight.landed());
        let waiting = tokio::spawn(async move { answer.wait_turn().await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(idle.rx.lock().await.try_recv().unwrap());
        tokio::time::timeout(Duration::from_millis(100), waiting)
            .await
            .expect("the answer's turn comes once the broadcast is taken")
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_is_capped() {
        let server = server();
        let s = on_websocket(&server, 1);
        let flight = Flight::new();
        let item = text_item(PacketType::Message, "2[\"x\"]");
        s.send(flight.copy(&s, &item)).unwrap();
        let mut answer = Queued::from(item);
        answer.after = Some(flight.landed());
        let start = tokio::time::Instant::now();
        answer.wait_turn().await;
        assert_eq!(start.elapsed(), FLIGHT_WAIT);
    }
}
