//! The bidder's sending half: bids as the window (or each acknowledgement) allows.

use super::*;

/// What the bidder's reader tells the writer.
pub(super) struct Bidder {
    pub(super) mode: FanoutMode,
    pub(super) permits: Arc<Semaphore>,
}

pub(super) struct Plan {
    pub(super) mode: FanoutMode,
    pub(super) bids: Option<u64>,
    pub(super) duration: Option<Duration>,
}

/// The bidder's sending half: bids as the window allows, and the reader's PONGs.
pub(super) async fn bid_writer(
    mut sink: Sink,
    mut pongs: mpsc::UnboundedReceiver<Message>,
    permits: Arc<Semaphore>,
    plan: Plan,
    sent_tx: watch::Sender<Option<u64>>,
    first_send: Arc<OnceLock<u64>>,
) -> Sink {
    let deadline = plan
        .duration
        .map(|d| tokio::time::Instant::now() + d)
        .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400 * 365));
    let stop = tokio::time::sleep_until(deadline);
    tokio::pin!(stop);
    let mut k = 0u64;
    let mut text = String::with_capacity(128);
    loop {
        if plan.bids.is_some_and(|m| k >= m) {
            break;
        }
        tokio::select! {
            biased;
            m = pongs.recv() => match m {
                Some(m) => if sink.send(m).await.is_err() { break },
                None => break,
            },
            _ = &mut stop => break,
            p = permits.acquire() => {
                let Ok(p) = p else { break };
                p.forget();
                k += 1;
                let t = now_ns();
                first_send.get_or_init(|| t);
                text.clear();
                use std::fmt::Write as _;
                let _ = match plan.mode {
                    FanoutMode::Ack => write!(text, "42{k}[\"replace old value\",{{\"item\":\"lot\",\"bid\":{k},\"t\":{t}}}]"),
                    FanoutMode::Window => write!(text, "42[\"replace old value\",{{\"item\":\"lot\",\"bid\":{k},\"t\":{t}}}]"),
                };
                if sink.send(Message::text(text.as_str())).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = sent_tx.send(Some(k));
    // Keep answering PINGs until the reader is done.
    while let Some(m) = pongs.recv().await {
        let _ = sink.send(m).await;
    }
    sink
}
