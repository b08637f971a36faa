//! CLIENT PAUSE: for a while, clients' commands (all of them, or those that
//! write) wait before they run, as Redis postpones them. A pause only ever
//! grows (a longer end, WRITE to ALL) until it ends or CLIENT UNPAUSE.

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

/// What a pause holds back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PauseKind {
    /// Commands that write or may propagate (EVAL, PUBLISH, ...).
    Write,
    All,
}

#[derive(Default)]
pub struct ClientPause {
    /// Whether a pause may be in force: every command looks here first, so
    /// while none is, checking costs one atomic load, no lock.
    active: AtomicBool,
    state: Mutex<Option<(Instant, PauseKind)>>,
    /// Woken when the pause is lifted early.
    lifted: Notify,
}

impl ClientPause {
    /// Pause until `end`, merged with a pause already on.
    pub fn pause(&self, end: Instant, kind: PauseKind) {
        let mut state = self.state.lock();
        *state = Some(match *state {
            Some((old_end, old_kind)) => (old_end.max(end), old_kind.max(kind)),
            None => (end, kind),
        });
        self.active.store(true, Ordering::Release);
    }

    pub fn unpause(&self) {
        let mut state = self.state.lock();
        *state = None;
        self.active.store(false, Ordering::Release);
        drop(state);
        self.lifted.notify_waiters();
    }

    /// The pause in force now, if any.
    pub fn current(&self) -> Option<(Instant, PauseKind)> {
        if !self.active.load(Ordering::Acquire) {
            return None;
        }
        let mut state = self.state.lock();
        match *state {
            Some((end, _)) if end <= Instant::now() => {
                *state = None;
                self.active.store(false, Ordering::Release);
                None
            }
            other => other,
        }
    }

    /// Wait while a pause holds back a command that writes (`writes`) or
    /// not; returns at once when none does.
    pub async fn wait(&self, writes: bool) {
        loop {
            let lifted = self.lifted.notified();
            tokio::pin!(lifted);
            lifted.as_mut().enable();
            let end = match self.current() {
                Some((end, PauseKind::All)) => end,
                Some((end, PauseKind::Write)) if writes => end,
                _ => return,
            };
            tokio::select! {
                _ = tokio::time::sleep_until(end) => {}
                _ = &mut lifted => {}
            }
        }
    }
}
