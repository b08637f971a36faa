//! ACL LOG: the recent refusals (commands, keys, channels, failed AUTHs),
//! similar ones within a minute folded into one entry with a count, newest
//! first, at most `acllog-max-len` of them, as Redis 7.0 keeps them.

use std::collections::VecDeque;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::resp::Reply;

/// Entries this close in time (ms) with the same reason, context, object
/// and user are one entry.
const GROUPING_MS: u64 = 60_000;

/// Why something was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Command,
    Key,
    Channel,
    Auth,
}

impl Reason {
    fn name(self) -> &'static str {
        match self {
            Reason::Command => "command",
            Reason::Key => "key",
            Reason::Channel => "channel",
            Reason::Auth => "auth",
        }
    }
}

/// Where the refused command came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Toplevel,
    Multi,
    Lua,
}

impl Context {
    fn name(self) -> &'static str {
        match self {
            Context::Toplevel => "toplevel",
            Context::Multi => "multi",
            Context::Lua => "lua",
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    count: u64,
    reason: Reason,
    context: Context,
    object: Bytes,
    username: Bytes,
    ctime_ms: u64,
    client_info: String,
}

/// The log itself.
#[derive(Debug, Default)]
pub struct AclLog {
    entries: Mutex<VecDeque<Entry>>,
}

/// One refusal to record.
pub struct Event {
    pub reason: Reason,
    pub context: Context,
    pub object: Bytes,
    pub username: Bytes,
    /// CLIENT LIST's line of the client (without its newline).
    pub client_info: String,
}

impl AclLog {
    /// Record `event` at `now_ms`, keeping at most `max_len` entries.
    pub fn add(&self, event: Event, now_ms: u64, max_len: usize) {
        let mut entries = self.entries.lock();
        // Like Redis, look for a similar entry among the ten newest.
        let similar = entries.iter().take(10).position(|e| {
            e.reason == event.reason
                && e.context == event.context
                && e.ctime_ms.abs_diff(now_ms) <= GROUPING_MS
                && e.object == event.object
                && e.username == event.username
        });
        if let Some(at) = similar {
            if let Some(mut entry) = entries.remove(at) {
                entry.count += 1;
                entry.ctime_ms = now_ms;
                entry.client_info = event.client_info;
                entries.push_front(entry);
            }
            return;
        }
        entries.push_front(Entry {
            count: 1,
            reason: event.reason,
            context: event.context,
            object: event.object,
            username: event.username,
            ctime_ms: now_ms,
            client_info: event.client_info,
        });
        entries.truncate(max_len);
    }

    pub fn reset(&self) {
        self.entries.lock().clear();
    }

    /// ACL LOG [count]: the newest `count` entries as Redis prints them.
    pub fn reply(&self, count: usize, now_ms: u64) -> Reply {
        let entries = self.entries.lock();
        Reply::Array(
            entries
                .iter()
                .take(count)
                .map(|e| {
                    let age = now_ms.saturating_sub(e.ctime_ms) as f64 / 1000.0;
                    Reply::Map(vec![
                        (Reply::bulk_str("count"), Reply::Int(e.count as i64)),
                        (Reply::bulk_str("reason"), Reply::bulk_str(e.reason.name())),
                        (
                            Reply::bulk_str("context"),
                            Reply::bulk_str(e.context.name()),
                        ),
                        (Reply::bulk_str("object"), Reply::Bulk(e.object.clone())),
                        (Reply::bulk_str("username"), Reply::Bulk(e.username.clone())),
                        (Reply::bulk_str("age-seconds"), Reply::Double(age)),
                        (
                            Reply::bulk_str("client-info"),
                            Reply::bulk(e.client_info.clone()),
                        ),
                    ])
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(object: &str) -> Event {
        Event {
            reason: Reason::Command,
            context: Context::Toplevel,
            object: Bytes::from(object.to_string()),
            username: Bytes::from_static(b"u"),
            client_info: String::new(),
        }
    }

    #[test]
    fn similar_entries_fold_and_the_length_is_bounded() {
        let log = AclLog::default();
        log.add(event("get"), 1000, 2);
        log.add(event("get"), 2000, 2);
        log.add(event("set"), 3000, 2);
        log.add(event("del"), 4000, 2);
        let entries = log.entries.lock();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].object, "del");
        assert_eq!(entries[1].object, "set");
        drop(entries);
        log.add(event("set"), 200_000, 2);
        assert_eq!(log.entries.lock()[0].count, 1);
    }
}
