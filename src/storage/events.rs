//! Keyspace notifications (`notify-keyspace-events`): which classes of
//! event are on, and the events a command's writes raise.
//!
//! A command records its events in its [`Ctx`](super::Ctx) as it changes
//! keys; they follow the writes — a rolled-back command raises nothing —
//! and the engine publishes them once the batch is committed (`__keyspace@`
//! and `__keyevent@` channels), so a subscriber never hears of a write that
//! did not happen. Recording costs one atomic load while notifications are
//! off (the default).

use std::sync::atomic::{AtomicU32, Ordering};

/// Redis's notification classes (`NOTIFY_*`).
pub mod class {
    pub const KEYSPACE: u32 = 1 << 0;
    pub const KEYEVENT: u32 = 1 << 1;
    pub const GENERIC: u32 = 1 << 2;
    pub const STRING: u32 = 1 << 3;
    pub const LIST: u32 = 1 << 4;
    pub const SET: u32 = 1 << 5;
    pub const HASH: u32 = 1 << 6;
    pub const ZSET: u32 = 1 << 7;
    pub const EXPIRED: u32 = 1 << 8;
    pub const EVICTED: u32 = 1 << 9;
    pub const STREAM: u32 = 1 << 10;
    pub const KEY_MISS: u32 = 1 << 11;
    pub const MODULE: u32 = 1 << 12;
    pub const NEW: u32 = 1 << 13;
    /// `A`: every class but key-miss and new.
    pub const ALL: u32 =
        GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;
}

/// `notify-keyspace-events`' letters → classes; `None` for a letter Redis
/// refuses.
pub fn parse_flags(text: &str) -> Option<u32> {
    let mut flags = 0;
    for c in text.chars() {
        flags |= match c {
            'A' => class::ALL,
            'g' => class::GENERIC,
            '$' => class::STRING,
            'l' => class::LIST,
            's' => class::SET,
            'h' => class::HASH,
            'z' => class::ZSET,
            'x' => class::EXPIRED,
            'e' => class::EVICTED,
            'K' => class::KEYSPACE,
            'E' => class::KEYEVENT,
            't' => class::STREAM,
            'm' => class::KEY_MISS,
            'd' => class::MODULE,
            'n' => class::NEW,
            _ => return None,
        };
    }
    Some(flags)
}

/// The classes as CONFIG GET shows them (Redis's order).
pub fn flags_text(flags: u32) -> String {
    let mut out = String::new();
    if flags & class::ALL == class::ALL {
        out.push('A');
    } else {
        for (bit, c) in [
            (class::GENERIC, 'g'),
            (class::STRING, '$'),
            (class::LIST, 'l'),
            (class::SET, 's'),
            (class::HASH, 'h'),
            (class::ZSET, 'z'),
            (class::EXPIRED, 'x'),
            (class::EVICTED, 'e'),
            (class::STREAM, 't'),
            (class::MODULE, 'd'),
            (class::NEW, 'n'),
        ] {
            if flags & bit != 0 {
                out.push(c);
            }
        }
    }
    for (bit, c) in [
        (class::KEYSPACE, 'K'),
        (class::KEYEVENT, 'E'),
        (class::KEY_MISS, 'm'),
    ] {
        if flags & bit != 0 {
            out.push(c);
        }
    }
    out
}

/// The classes switched on, shared by every context of a storage.
#[derive(Debug, Default)]
pub struct NotifyMask(AtomicU32);

impl NotifyMask {
    pub fn set(&self, flags: u32) {
        self.0.store(flags, Ordering::Relaxed);
    }

    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }

    /// Whether an event of `class` is published at all: its class is on,
    /// and keyspace or keyevent channels are.
    pub fn wants(&self, event_class: u32) -> bool {
        let flags = self.get();
        flags & event_class != 0 && flags & (class::KEYSPACE | class::KEYEVENT) != 0
    }
}

/// One event a command raised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEvent {
    pub event: &'static str,
    pub db: u8,
    pub key: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_read_and_print_as_redis() {
        assert_eq!(parse_flags("KEA").map(flags_text), Some("AKE".into()));
        assert_eq!(parse_flags("Kgx").map(flags_text), Some("gxK".into()));
        assert_eq!(parse_flags("").map(flags_text), Some(String::new()));
        assert_eq!(parse_flags("Em$n").map(flags_text), Some("$nEm".into()));
        assert_eq!(parse_flags("KQ"), None);
    }
}
