//! Publishing keyspace notifications: the events a command's context
//! recorded (`storage::events`), once its batch is committed, on Redis's
//! `__keyspace@<db>__:<key>` (message: the event) and
//! `__keyevent@<db>__:<event>` (message: the key) channels. Under Raft every
//! node publishes what it applies, so a subscriber on any node hears every
//! change.

use crate::storage::events::{class, KeyEvent};
use crate::storage::Touched;

use super::Shared;

impl Shared {
    /// Publish committed events (keyspace channel first, as Redis).
    pub(crate) fn publish_events(&self, events: Vec<KeyEvent>) {
        if events.is_empty() {
            return;
        }
        let flags = self.storage().notify_mask().get();
        for e in events {
            if flags & class::KEYSPACE != 0 {
                let mut channel = format!("__keyspace@{}__:", e.db).into_bytes();
                channel.extend_from_slice(&e.key);
                self.publish(false, &channel, e.event.as_bytes());
            }
            if flags & class::KEYEVENT != 0 {
                let channel = format!("__keyevent@{}__:{}", e.db, e.event);
                self.publish(false, channel.as_bytes(), &e.key);
            }
        }
    }

    /// `expired` events for keys the active expiry sweep deleted.
    pub fn publish_expired(&self, touched: &Touched) {
        if !self.storage().notify_mask().wants(class::EXPIRED) {
            return;
        }
        let events = touched
            .keys
            .iter()
            .map(|(db, key)| KeyEvent {
                event: "expired",
                db: *db,
                key: key.clone(),
            })
            .collect();
        self.publish_events(events);
    }
}
