//! Client-side caching (CLIENT TRACKING): which clients read which keys,
//! and the invalidation messages a write sends them, as Redis 7.0 does.
//!
//! - Default mode: the keys a tracking client reads (read-only commands,
//!   subject to OPTIN/OPTOUT and CLIENT CACHING) are remembered; the first
//!   write to one sends `invalidate [key]` to each client that read it and
//!   forgets them, until they read it again.
//! - BCAST: every written key under one of the client's prefixes is sent,
//!   one message per commit and prefix set.
//! - A flush sends `invalidate` with a null to every tracking client.
//! - Messages go to the client itself as RESP3 pushes, or to its REDIRECT
//!   client: a RESP3 push there too, or for a RESP2 client subscribed to
//!   `__redis__:invalidate`, a pub/sub message on that channel. NOLOOP
//!   skips what the client wrote itself.
//!
//! Invalidations are sent once the write is committed (`Shared::commit`),
//! through the target's mailbox, so a client's own write gets its reply
//! first, as in Redis 7.0.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;

use super::{ClientInfo, Kind, Shared};
use crate::resp::{Protocol, Reply};
use crate::storage::Touched;

/// The channel RESP2 redirect clients listen on.
pub const INVALIDATE_CHANNEL: &[u8] = b"__redis__:invalidate";

/// A client's CLIENT TRACKING settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackingMode {
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// The client messages go to (0: the client itself).
    pub redirect: u64,
    pub prefixes: Vec<Bytes>,
    /// CLIENT CACHING YES/NO for the next command (OPTIN/OPTOUT).
    pub caching: Option<bool>,
    /// The redirect client went away.
    pub broken_redirect: bool,
}

impl TrackingMode {
    /// Whether the keys of the command about to run are remembered.
    pub fn remembers_reads(&self) -> bool {
        !self.bcast
            && match (self.optin, self.optout) {
                (true, _) => self.caching == Some(true),
                (_, true) => self.caching != Some(false),
                _ => true,
            }
    }
}

/// One tracking client as the invalidation side sees it.
#[derive(Debug, Clone)]
struct Tracker {
    info: Arc<ClientInfo>,
    mode: TrackingMode,
}

/// Every tracking client, and who read what.
#[derive(Debug, Default)]
pub struct Tracking {
    trackers: Mutex<HashMap<u64, Tracker>>,
    /// Key → the clients that read it since its last invalidation. Keyed by
    /// name alone, as Redis's table (every database).
    readers: Mutex<HashMap<Vec<u8>, HashSet<u64>>>,
    count: AtomicUsize,
}

impl Tracking {
    pub fn is_empty(&self) -> bool {
        self.count.load(Ordering::Relaxed) == 0
    }

    /// How many clients track (INFO's tracking_clients).
    pub fn client_count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub fn enable(&self, info: Arc<ClientInfo>, mode: TrackingMode) {
        let mut trackers = self.trackers.lock();
        trackers.insert(info.id, Tracker { info, mode });
        self.count.store(trackers.len(), Ordering::Relaxed);
    }

    pub fn disable(&self, id: u64) {
        if self.is_empty() {
            return;
        }
        let mut trackers = self.trackers.lock();
        trackers.remove(&id);
        self.count.store(trackers.len(), Ordering::Relaxed);
    }

    /// Remember that client `id` read `keys`.
    pub fn remember(&self, id: u64, keys: impl Iterator<Item = Bytes>) {
        let mut readers = self.readers.lock();
        for key in keys {
            readers.entry(key.to_vec()).or_default().insert(id);
        }
    }
}

/// `invalidate` with `keys` (`None`: everything, after a flush) for a
/// client speaking `protocol`; `None` when it cannot receive it (RESP2 and
/// not subscribed to the invalidation channel).
fn message(target: &ClientInfo, keys: Option<&[Vec<u8>]>) -> Option<Vec<u8>> {
    let payload = match keys {
        Some(keys) => Reply::Array(
            keys.iter()
                .map(|k| Reply::Bulk(Bytes::copy_from_slice(k)))
                .collect(),
        ),
        None => Reply::NilArray,
    };
    let resp3 = target.resp.load(Ordering::Relaxed) == 3;
    let reply = if resp3 {
        let payload = match payload {
            Reply::NilArray => Reply::Nil,
            other => other,
        };
        Reply::Push(vec![
            Reply::Bulk(Bytes::from_static(b"invalidate")),
            payload,
        ])
    } else if target.subscribed.get(Kind::Channel) > 0 {
        // RESP2 has one null: a flush's is a null bulk string there.
        let payload = match payload {
            Reply::NilArray => Reply::Nil,
            other => other,
        };
        Reply::Array(vec![
            Reply::Bulk(Bytes::from_static(b"message")),
            Reply::Bulk(Bytes::from_static(INVALIDATE_CHANNEL)),
            payload,
        ])
    } else {
        return None;
    };
    let mut out = BytesMut::new();
    let protocol = if resp3 {
        Protocol::Resp3
    } else {
        Protocol::Resp2
    };
    reply.encode(protocol, &mut out);
    Some(out.to_vec())
}

impl Shared {
    /// After `spec` ran for a tracking client: remember the keys a
    /// read-only command read (as its mode says), and spend a CLIENT
    /// CACHING that applied to it.
    pub(crate) fn track_command(
        &self,
        session: &mut crate::cmd::Session,
        spec: &crate::cmd::CommandSpec,
        args: &[Bytes],
    ) {
        let Some(mode) = session.tracking.as_mut() else {
            return;
        };
        let is_caching = spec.name == "client"
            && args
                .get(1)
                .is_some_and(|s| s.eq_ignore_ascii_case(b"caching"));
        if is_caching {
            return;
        }
        if spec.flags.contains(crate::cmd::Flags::READONLY) && mode.remembers_reads() {
            let keys = crate::cmd::command_keys(spec, args);
            self.tracking.remember(session.info.id, keys.into_iter());
            self.limit_tracking_table();
        }
        if session.multi.is_none() {
            if let Some(mode) = session.tracking.as_mut() {
                mode.caching = None;
            }
        }
    }

    /// `tracking-table-max-keys`: past it, forget keys (any) and tell
    /// their readers, as Redis does when its table is full.
    fn limit_tracking_table(&self) {
        let max = self.config.read().tracking_table_max_keys;
        if max == 0 {
            return;
        }
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        let evicted: Vec<(Vec<u8>, HashSet<u64>)> = {
            let mut readers = self.tracking.readers.lock();
            let excess = readers.len().saturating_sub(max);
            let keys: Vec<Vec<u8>> = readers.keys().take(excess).cloned().collect();
            keys.into_iter()
                .filter_map(|k| readers.remove_entry(&k))
                .collect()
        };
        if evicted.is_empty() {
            return;
        }
        let trackers: HashMap<u64, Tracker> = self.tracking.trackers.lock().clone();
        for (key, ids) in evicted {
            for id in ids {
                if let Some(t) = trackers.get(&id) {
                    self.send(t, Some(std::slice::from_ref(&key)));
                }
            }
        }
    }

    /// Send the invalidations a committed write of client `writer` (0: not
    /// a client's, e.g. expiry or a replicated entry) causes.
    pub(crate) fn invalidate(&self, touched: &Touched, writer: u64) {
        if self.tracking.is_empty() {
            return;
        }
        let trackers: Vec<Tracker> = self.tracking.trackers.lock().values().cloned().collect();
        if !touched.flushed.is_empty() {
            // Redis sends every tracking client a null on any flush.
            self.tracking.readers.lock().clear();
            for t in &trackers {
                self.send(t, None);
            }
        }
        if touched.keys.is_empty() {
            return;
        }
        let by_id: HashMap<u64, &Tracker> = trackers.iter().map(|t| (t.info.id, t)).collect();
        let mut readers = self.tracking.readers.lock();
        let mut single: Vec<(u64, Vec<u8>)> = Vec::new();
        for (_, key) in &touched.keys {
            if let Some(ids) = readers.remove(key) {
                let mut ids: Vec<u64> = ids.into_iter().collect();
                ids.sort_unstable();
                single.extend(ids.into_iter().map(|id| (id, key.clone())));
            }
        }
        drop(readers);
        for (id, key) in single {
            if let Some(t) = by_id.get(&id) {
                let own = t.mode.noloop && id == writer;
                if !own && !t.mode.bcast {
                    self.send(t, Some(std::slice::from_ref(&key)));
                }
            }
        }
        for t in trackers.iter().filter(|t| t.mode.bcast) {
            if t.mode.noloop && t.info.id == writer {
                continue;
            }
            let keys: Vec<Vec<u8>> = touched
                .keys
                .iter()
                .filter(|(_, key)| {
                    t.mode.prefixes.is_empty() || t.mode.prefixes.iter().any(|p| key.starts_with(p))
                })
                .map(|(_, key)| key.clone())
                .collect();
            if !keys.is_empty() {
                self.send(t, Some(&keys));
            }
        }
    }

    fn send(&self, tracker: &Tracker, keys: Option<&[Vec<u8>]>) {
        let target = match tracker.mode.redirect {
            0 => Some(tracker.info.clone()),
            id => self.clients.lock().get(&id).cloned(),
        };
        match target {
            Some(target) => {
                if let Some(frame) = message(&target, keys) {
                    target.mailbox.push(&frame, self.normal_output_limit());
                }
            }
            // As Redis: found out when a message cannot go, and said to
            // the tracking client (RESP3) each time.
            None => self.redirect_broken(tracker),
        }
    }

    fn redirect_broken(&self, tracker: &Tracker) {
        let id = tracker.info.id;
        if let Some(t) = self.tracking.trackers.lock().get_mut(&id) {
            t.mode.broken_redirect = true;
        }
        if tracker.info.resp.load(Ordering::Relaxed) == 3 {
            let push = Reply::Push(vec![
                Reply::Bulk(Bytes::from_static(b"tracking-redir-broken")),
                Reply::Int(i64::try_from(tracker.mode.redirect).unwrap_or(i64::MAX)),
            ]);
            let mut out = BytesMut::new();
            push.encode(Protocol::Resp3, &mut out);
            tracker.info.mailbox.push(&out, self.normal_output_limit());
        }
    }

    /// A client went away: its tracking ends.
    pub(crate) fn tracking_client_gone(&self, id: u64) {
        self.tracking.disable(id);
    }

    /// Client `id`'s tracking settings, if it tracks (CLIENT LIST).
    pub fn tracking_summary(&self, id: u64) -> Option<TrackingMode> {
        if self.tracking.is_empty() {
            return None;
        }
        self.tracking
            .trackers
            .lock()
            .get(&id)
            .map(|t| t.mode.clone())
    }

    /// Whether the client `id`'s redirect broke (CLIENT TRACKINGINFO).
    pub fn tracking_redirect_broken(&self, id: u64) -> bool {
        self.tracking
            .trackers
            .lock()
            .get(&id)
            .is_some_and(|t| t.mode.broken_redirect)
    }
}
