#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! Which commands may run at the same time. A command that names its keys
//! locks only those: the key's stripe (one of [`STRIPES`] read-write locks
//! a key hashes to), shared for a read, exclusive for a write, with the
//! whole store held shared. Writers on different keys therefore run side by
//! side, and RocksDB groups their WAL writes; two commands on one key still
//! follow each other, so a read-modify-write is never interleaved.
//!
//! A command that may touch keys it does not name (KEYS, SCAN, FLUSHALL,
//! SWAPDB, scripts, EXEC, a replicated entry, the expiry sweep) holds the
//! whole store exclusively, which waits for every keyed command to end.
//!
//! Order, to be free of deadlock: the whole store first, then stripes in
//! ascending order, each taken once; nothing else is waited for while
//! stripes are being taken.
//!
//! Stripes hash the key's bytes only, not its database: MOVE and COPY DB
//! touch the same name in two databases and lock one stripe for both.

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use smallvec::SmallVec;

/// The stripes of one command: most name one to four keys.
pub type Stripes = SmallVec<[u16; 4]>;

/// How many stripes keys hash to: enough that two busy keys rarely share
/// one, few enough to stay in cache (8 bytes each).
pub const STRIPES: usize = 1024;

/// The stripe `key` hashes to (FNV-1a: cheap and well spread on short keys).
pub fn stripe_of(key: &[u8]) -> u16 {
    let mut hash: u32 = 0x811c_9dc5;
    for &b in key {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    // Fold the high bits in: FNV's low bits mix least.
    ((hash ^ (hash >> 16)) as usize % STRIPES) as u16
}

/// The store's locks (see the module documentation).
pub struct KeyLocks {
    everything: RwLock<()>,
    stripes: Box<[RwLock<()>]>,
}

impl Default for KeyLocks {
    fn default() -> Self {
        KeyLocks {
            everything: RwLock::new(()),
            stripes: (0..STRIPES).map(|_| RwLock::new(())).collect(),
        }
    }
}

/// What a command (or a pipeline's group of commands) must hold.
#[derive(Debug, Default, Clone)]
pub struct LockRequest {
    everything: bool,
    /// Stripe and whether it is written, sorted and unique once `finish`ed.
    stripes: SmallVec<[(u16, bool); 4]>,
}

impl LockRequest {
    /// The whole store, exclusively.
    pub fn everything() -> LockRequest {
        LockRequest {
            everything: true,
            stripes: SmallVec::new(),
        }
    }

    /// These keys' stripes, each exclusively.
    pub fn writing<'k>(keys: impl IntoIterator<Item = &'k [u8]>) -> LockRequest {
        let mut request = LockRequest::default();
        for key in keys {
            request.add_key(key, true);
        }
        request
    }

    pub fn add_everything(&mut self) {
        self.everything = true;
        self.stripes.clear();
    }

    /// `key`'s stripe, exclusively when `write`.
    pub fn add_key(&mut self, key: &[u8], write: bool) {
        if !self.everything {
            self.stripes.push((stripe_of(key), write));
        }
    }

    /// Sort and merge: one entry per stripe, written if any asked so.
    fn finish(&mut self) {
        self.stripes.sort_unstable();
        // Sorted with `false < true`, so the last of equal stripes is the
        // strongest; keep it.
        let mut merged: SmallVec<[(u16, bool); 4]> = SmallVec::with_capacity(self.stripes.len());
        for &(stripe, write) in &self.stripes {
            match merged.last_mut() {
                Some(last) if last.0 == stripe => last.1 |= write,
                _ => merged.push((stripe, write)),
            }
        }
        self.stripes = merged;
    }
}

enum StripeGuard<'a> {
    Read(#[allow(dead_code)] RwLockReadGuard<'a, ()>),
    Write(#[allow(dead_code)] RwLockWriteGuard<'a, ()>),
}

/// Locks held for one command run; released when dropped.
pub struct Hold<'a> {
    _everything: Option<RwLockWriteGuard<'a, ()>>,
    _store: Option<RwLockReadGuard<'a, ()>>,
    _stripes: SmallVec<[StripeGuard<'a>; 4]>,
    /// The stripes held, sorted; `None` for the whole store.
    held: Option<Stripes>,
}

impl Hold<'_> {
    /// The stripes this hold covers (a context checks its keys against
    /// them); `None` when it covers every key.
    pub fn stripes(&self) -> Option<&[u16]> {
        self.held.as_deref()
    }
}

impl KeyLocks {
    /// The whole store, exclusively: no keyed command runs meanwhile.
    pub fn everything(&self) -> RwLockWriteGuard<'_, ()> {
        self.everything.write()
    }

    /// The whole store, shared: keeps out those holding it exclusively
    /// (under Raft, the apply of an entry) but not keyed commands.
    pub fn everything_shared(&self) -> RwLockReadGuard<'_, ()> {
        self.everything.read()
    }

    /// Take what `request` asks for, in the order that cannot deadlock.
    pub fn take(&self, mut request: LockRequest) -> Hold<'_> {
        let mut hold = Hold {
            _everything: None,
            _store: None,
            _stripes: SmallVec::new(),
            held: Some(Stripes::new()),
        };
        if request.everything {
            hold._everything = Some(self.everything.write());
            hold.held = None;
            return hold;
        }
        if request.stripes.is_empty() {
            return hold;
        }
        request.finish();
        hold._store = Some(self.everything.read());
        let mut held = Stripes::with_capacity(request.stripes.len());
        for (stripe, write) in request.stripes {
            let Some(lock) = self.stripes.get(usize::from(stripe)) else {
                continue;
            };
            hold._stripes.push(match write {
                true => StripeGuard::Write(lock.write()),
                false => StripeGuard::Read(lock.read()),
            });
            held.push(stripe);
        }
        hold.held = Some(held);
        hold
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[test]
    fn stripes_spread_and_stay_in_range() {
        let mut used = std::collections::HashSet::new();
        for i in 0..10_000u32 {
            let s = stripe_of(format!("key:{i}").as_bytes());
            assert!(usize::from(s) < STRIPES);
            used.insert(s);
        }
        // 10,000 keys over 1,024 stripes leave almost none unused.
        assert!(
            used.len() > STRIPES * 95 / 100,
            "{} stripes used",
            used.len()
        );
    }

    #[test]
    fn a_request_merges_repeated_stripes_into_the_strongest() {
        let mut r = LockRequest::default();
        r.add_key(b"a", false);
        r.add_key(b"b", false);
        r.add_key(b"a", true);
        r.add_key(b"b", false);
        r.finish();
        assert_eq!(r.stripes.len(), 2);
        let a = stripe_of(b"a");
        assert!(r.stripes.contains(&(a, true)));
        assert!(r.stripes.contains(&(stripe_of(b"b"), false)));
    }

    #[test]
    fn writers_of_different_keys_hold_their_locks_together() {
        let locks = Arc::new(KeyLocks::default());
        let mut first = LockRequest::default();
        first.add_key(b"x", true);
        let held = locks.take(first);
        // Find a key on another stripe; it is not held up by `x`.
        let other = (0..)
            .map(|i| format!("y{i}"))
            .find(|k| stripe_of(k.as_bytes()) != stripe_of(b"x"))
            .unwrap_or_default();
        let done = Arc::new(AtomicBool::new(false));
        let (l, d) = (locks.clone(), done.clone());
        let t = std::thread::spawn(move || {
            let mut r = LockRequest::default();
            r.add_key(other.as_bytes(), true);
            let _h = l.take(r);
            d.store(true, Ordering::SeqCst);
        });
        let joined = t.join();
        assert!(joined.is_ok());
        assert!(done.load(Ordering::SeqCst));
        drop(held);
    }

    #[test]
    fn everything_waits_for_keyed_holders_and_keeps_them_out() {
        let locks = KeyLocks::default();
        let mut r = LockRequest::default();
        r.add_key(b"x", false);
        let held = locks.take(r);
        assert!(locks.everything.try_write().is_none());
        drop(held);
        let all = locks.take(LockRequest::everything());
        assert!(locks.everything.try_read().is_none());
        assert!(all.stripes().is_none());
    }
}
