//! Who waits for keys to change: clients blocked in BLPOP and friends, and
//! WATCHes. A committed write wakes every WATCH of a key it changed and
//! the key's oldest blocked client, as Redis serves them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::Shared;
use crate::storage::{Ctx, Flushed, StorageError, Touched};

/// One client waiting for keys to change: a blocked pop sleeps on
/// `notify`; WATCH reads `touched` at EXEC.
#[derive(Debug, Default)]
pub struct Waiter {
    pub notify: tokio::sync::Notify,
    touched: AtomicBool,
    /// A client blocked in BLPOP and friends (not a WATCH): blocked clients
    /// of a key are woken one at a time, oldest first, as Redis serves them.
    blocked: bool,
}

impl Waiter {
    /// The waiter of a blocked command.
    pub fn blocked_client() -> Waiter {
        Waiter {
            blocked: true,
            ..Waiter::default()
        }
    }

    /// The waiter of a blocked command every write to its keys wakes
    /// (XREAD: a stream serves all its readers at once).
    pub fn woken_by_every_write() -> Waiter {
        Waiter::default()
    }

    pub fn is_touched(&self) -> bool {
        self.touched.load(Ordering::Acquire)
    }

    fn touch(&self) {
        self.touched.store(true, Ordering::Release);
        self.notify.notify_one();
    }
}

/// Wake every WATCH on a key's list and its oldest blocked client.
fn wake(list: &[Arc<Waiter>]) {
    let mut blocked_woken = false;
    for w in list {
        if !w.blocked {
            w.touch();
        } else if !blocked_woken {
            w.touch();
            blocked_woken = true;
        }
    }
}

/// A key of one database: (database, key).
pub type DbKey = (u8, Vec<u8>);

/// Who waits on which key.
#[derive(Debug, Default)]
pub struct KeyWaiters {
    by_key: Mutex<HashMap<DbKey, Vec<Arc<Waiter>>>>,
    registered: AtomicUsize,
}

impl KeyWaiters {
    pub fn is_empty(&self) -> bool {
        self.registered.load(Ordering::Acquire) == 0
    }

    pub fn register(&self, key: &DbKey, waiter: &Arc<Waiter>) {
        self.by_key
            .lock()
            .entry(key.clone())
            .or_default()
            .push(waiter.clone());
        self.registered.fetch_add(1, Ordering::AcqRel);
    }

    /// Forget `waiter` on `key`. A blocked client leaving (served, timed
    /// out, gone) hands its turn to the next one, in case what woke it is
    /// still there to take.
    pub fn unregister(&self, key: &DbKey, waiter: &Arc<Waiter>) {
        let mut map = self.by_key.lock();
        if let Some(list) = map.get_mut(key) {
            if let Some(pos) = list.iter().position(|w| Arc::ptr_eq(w, waiter)) {
                // `remove`, not `swap_remove`: the list is in arrival order.
                list.remove(pos);
                self.registered.fetch_sub(1, Ordering::AcqRel);
                if waiter.blocked {
                    // Nothing was written: only the next blocked client
                    // is woken, never a WATCH (its EXEC would fail).
                    if let Some(next) = list.iter().find(|w| w.blocked) {
                        next.touch();
                    }
                }
            }
            if list.is_empty() {
                map.remove(key);
            }
        }
    }

    /// The keys waited on in database `db` (`None`: in every one).
    pub fn keys_in(&self, dbs: Flushed) -> Vec<DbKey> {
        self.by_key
            .lock()
            .keys()
            .filter(|(d, _)| dbs.contains(*d))
            .cloned()
            .collect()
    }

    /// Wake who waits on a key the command changed: every WATCH, and the
    /// oldest blocked client (the next one gets its turn when it leaves).
    pub fn touch(&self, touched: &Touched) {
        let map = self.by_key.lock();
        if !touched.flushed.is_empty() {
            for ((db, _), list) in map.iter() {
                if touched.flushed.contains(*db) {
                    wake(list);
                }
            }
        }
        for key in &touched.keys {
            if let Some(list) = map.get(key) {
                wake(list);
            }
        }
    }
}

impl Shared {
    /// Commit `ctx`'s writes as one batch, then wake who waits on the keys
    /// they changed. Callers hold the storage lock, so a client woken (or
    /// an EXEC checking its WATCH) sees the batch whole.
    pub(crate) fn commit(&self, ctx: &mut Ctx<'_>) -> Result<(), StorageError> {
        let touched = self.touched_by(ctx);
        let tracked = (!self.tracking.is_empty()).then(|| ctx.touched());
        ctx.commit()?;
        self.saves
            .dirty
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(touched) = touched {
            self.waiters.touch(&touched);
        }
        if let Some(tracked) = tracked {
            self.invalidate(&tracked, ctx.writer);
        }
        self.publish_events(ctx.take_events());
        Ok(())
    }

    /// What `ctx`'s writes change for waiters, if anyone waits; called
    /// before the batch is committed. A flush counts only for the keys it
    /// deletes, as in Redis (a WATCH of a key that did not exist holds).
    fn touched_by(&self, ctx: &Ctx<'_>) -> Option<Touched> {
        if self.waiters.is_empty() {
            return None;
        }
        let mut touched = ctx.touched();
        let flushed = std::mem::take(&mut touched.flushed);
        if !flushed.is_empty() {
            for (db, key) in self.waiters.keys_in(flushed) {
                // Unsure (a read error): wake it, which is only spurious.
                let existed = self
                    .storage()
                    .ctx(db, 0)
                    .get_raw_meta(&key)
                    .map_or(true, |meta| meta.is_some());
                if existed {
                    touched.keys.push((db, key));
                }
            }
        }
        let swapped = std::mem::take(&mut touched.swapped);
        if !swapped.is_empty() {
            // As Redis's SWAPDB: a key waited on changed if it exists in
            // either database, before or after the swap.
            for (db, key) in self.waiters.keys_in(swapped) {
                let exists = swapped.dbs().any(|other| {
                    self.storage()
                        .ctx(other, 0)
                        .get_raw_meta(&key)
                        .map_or(true, |meta| meta.is_some())
                });
                if exists {
                    touched.keys.push((db, key));
                }
            }
        }
        Some(touched)
    }
}
