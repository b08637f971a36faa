#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! A client's mailbox: data pushed to it from outside its own commands
//! (pub/sub messages), already encoded in its protocol, waiting for its
//! connection to write it out between replies or while it is idle.
//!
//! The bytes it holds, plus those its connection took and has not yet
//! written, are judged against `client-output-buffer-limit pubsub` each
//! time something is pushed, as Redis judges a client's output buffer on
//! every append: at the hard size, or above the soft size for longer than
//! its seconds, the client is closed (its connection's stop token is
//! cancelled) and nothing more is queued for it.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::OutputLimit;

#[derive(Default)]
pub struct Mailbox {
    state: Mutex<State>,
    ready: Notify,
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the queued bytes themselves: they may be megabytes.
        let state = self.state.lock();
        f.debug_struct("Mailbox")
            .field("pending", &state.pending)
            .field("overrun", &state.overrun)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    queue: BytesMut,
    /// Bytes queued plus bytes taken by the connection and not yet written.
    pending: usize,
    above_soft_since: Option<Instant>,
    /// The connection's stop token; `None`: nobody delivers (an embedded
    /// session), so nothing may subscribe.
    stop: Option<CancellationToken>,
    overrun: bool,
}

impl Mailbox {
    /// A connection will deliver what arrives; `stop` ends it on overrun.
    pub fn attach(&self, stop: CancellationToken) {
        self.state.lock().stop = Some(stop);
    }

    /// CLIENT KILL: close the connection that delivers this mailbox (an
    /// embedded session has none and stays).
    pub fn kill(&self) {
        if let Some(stop) = &self.state.lock().stop {
            stop.cancel();
        }
    }

    /// Whether a connection delivers this mailbox.
    pub fn is_attached(&self) -> bool {
        self.state.lock().stop.is_some()
    }

    /// Whether the client was closed for overrunning its limit.
    pub fn is_overrun(&self) -> bool {
        self.state.lock().overrun
    }

    /// Queue `frame` (encoded) under `limit`. An overrun drops what is
    /// queued and closes the client, as Redis does.
    pub fn push(&self, frame: &[u8], limit: OutputLimit) {
        let mut state = self.state.lock();
        if state.overrun || state.stop.is_none() {
            return;
        }
        state.queue.extend_from_slice(frame);
        state.pending = state.pending.saturating_add(frame.len());
        if state.over_limit(limit, Instant::now()) {
            state.overrun = true;
            state.queue = BytesMut::new();
            if let Some(stop) = &state.stop {
                stop.cancel();
            }
        }
        drop(state);
        self.ready.notify_one();
    }

    /// Move everything queued to `out`; the number of bytes moved, which
    /// the connection hands back to [`Mailbox::written`] once written.
    pub fn take(&self, out: &mut BytesMut) -> usize {
        // Taken whole, so a burst's buffer is not kept for the client's life.
        let queued = std::mem::take(&mut self.state.lock().queue);
        out.extend_from_slice(&queued);
        queued.len()
    }

    /// `n` bytes taken earlier are written.
    pub fn written(&self, n: usize) {
        if n == 0 {
            return;
        }
        let mut state = self.state.lock();
        state.pending = state.pending.saturating_sub(n);
        if state.pending == 0 {
            state.above_soft_since = None;
        }
    }

    /// Resolves once something was pushed since the last time it resolved
    /// (possibly already taken: take, then wait again).
    pub async fn ready(&self) {
        self.ready.notified().await;
    }
}

impl State {
    /// Redis's checkClientOutputBufferLimits on the pending bytes.
    fn over_limit(&mut self, limit: OutputLimit, now: Instant) -> bool {
        let pending = self.pending as u64;
        if limit.hard > 0 && pending >= limit.hard {
            return true;
        }
        if limit.soft == 0 || pending < limit.soft {
            self.above_soft_since = None;
            return false;
        }
        let since = *self.above_soft_since.get_or_insert(now);
        now.duration_since(since) > Duration::from_secs(limit.soft_seconds)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn limit(hard: u64, soft: u64, soft_seconds: u64) -> OutputLimit {
        OutputLimit {
            hard,
            soft,
            soft_seconds,
        }
    }

    #[test]
    fn an_unattached_mailbox_queues_nothing() {
        let mailbox = Mailbox::default();
        mailbox.push(b"abc", OutputLimit::default());
        let mut out = BytesMut::new();
        assert_eq!(mailbox.take(&mut out), 0);
    }

    #[test]
    fn the_hard_limit_counts_what_is_not_yet_written() {
        let mailbox = Mailbox::default();
        let stop = CancellationToken::new();
        mailbox.attach(stop.clone());
        mailbox.push(&[b'x'; 60], limit(100, 0, 0));
        let mut out = BytesMut::new();
        assert_eq!(mailbox.take(&mut out), 60);
        mailbox.push(&[b'x'; 39], limit(100, 0, 0));
        assert!(!stop.is_cancelled());
        mailbox.written(60);
        mailbox.push(&[b'x'; 60], limit(100, 0, 0));
        assert!(!stop.is_cancelled());
        mailbox.push(&[b'x'; 1], limit(100, 0, 0));
        assert!(stop.is_cancelled() && mailbox.is_overrun());
        assert_eq!(mailbox.take(&mut BytesMut::new()), 0);
    }

    #[test]
    fn the_soft_limit_allows_its_seconds() {
        let mut state = State::default();
        let start = Instant::now();
        state.pending = 50;
        assert!(!state.over_limit(limit(0, 10, 2), start));
        assert!(!state.over_limit(limit(0, 10, 2), start + Duration::from_secs(2)));
        assert!(state.over_limit(limit(0, 10, 2), start + Duration::from_millis(2001)));
        state.pending = 5;
        assert!(!state.over_limit(limit(0, 10, 2), start + Duration::from_secs(3)));
        assert_eq!(state.above_soft_since, None);
    }
}
