//! What a command may touch, for the storage locks (`storage/locks.rs`):
//! nothing, the keys it names, or any key.

use bytes::Bytes;

use super::{is, server::command_keys, CommandSpec, Flags};

/// The keys a run of a command may read or write.
#[derive(Debug, PartialEq, Eq)]
pub enum LockScope {
    /// No key (PING, CONFIG, CLIENT…).
    Nothing,
    /// Only these (the call's key arguments, as COMMAND GETKEYS finds them).
    Keys(Vec<Bytes>),
    /// Any key: the command walks the keyspace (KEYS, SCAN, FLUSHDB,
    /// SWAPDB…), names no key it can be held to, or reads keys its
    /// arguments only describe (SORT's BY and GET patterns).
    Everything,
}

/// What `call` (name included) of `spec` may touch.
pub fn lock_scope(spec: &CommandSpec, call: &[Bytes]) -> LockScope {
    // DEBUG OBJECT reads the key it names (DEBUG SLEEP takes the whole
    // store itself).
    if let ("debug", [_, sub, key]) = (spec.name, call) {
        if is(sub, "OBJECT") {
            return LockScope::Keys(vec![key.clone()]);
        }
    }
    if spec.flags.contains(Flags::NO_KEYS) {
        return LockScope::Nothing;
    }
    if reads_described_keys(spec, call) {
        return LockScope::Everything;
    }
    let keys = command_keys(spec, call);
    if keys.is_empty() {
        LockScope::Everything
    } else {
        LockScope::Keys(keys)
    }
}

/// SORT BY and GET name patterns whose matches are read, not keys.
fn reads_described_keys(spec: &CommandSpec, call: &[Bytes]) -> bool {
    matches!(spec.name, "sort" | "sort_ro")
        && call
            .iter()
            .skip(2)
            .any(|arg| is(arg, "BY") || is(arg, "GET"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(words: &str) -> LockScope {
        let call: Vec<Bytes> = words
            .split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect();
        let spec = super::super::lookup(&call[0]);
        assert!(spec.is_some(), "{words}");
        spec.map_or(LockScope::Nothing, |spec| lock_scope(spec, &call))
    }

    fn keys(names: &[&str]) -> LockScope {
        LockScope::Keys(
            names
                .iter()
                .map(|n| Bytes::copy_from_slice(n.as_bytes()))
                .collect(),
        )
    }

    #[test]
    fn keyed_commands_hold_their_keys() {
        assert_eq!(scope("set k v"), keys(&["k"]));
        assert_eq!(scope("mset a 1 b 2"), keys(&["a", "b"]));
        assert_eq!(
            scope("zunionstore d 2 a b weights 1 2"),
            keys(&["d", "a", "b"])
        );
        assert_eq!(scope("blmpop 0 2 a b left"), keys(&["a", "b"]));
        assert_eq!(scope("sort k limit 0 1 store d"), keys(&["k", "d"]));
        assert_eq!(scope("xread count 1 streams s t 0 0"), keys(&["s", "t"]));
    }

    #[test]
    fn the_rest_hold_everything_or_nothing() {
        assert_eq!(scope("ping"), LockScope::Nothing);
        assert_eq!(scope("debug object k"), keys(&["k"]));
        assert_eq!(scope("debug sleep 0"), LockScope::Nothing);
        assert_eq!(scope("keys *"), LockScope::Everything);
        assert_eq!(scope("scan 0"), LockScope::Everything);
        assert_eq!(scope("flushall"), LockScope::Everything);
        assert_eq!(scope("swapdb 0 1"), LockScope::Everything);
        assert_eq!(scope("dbsize"), LockScope::Everything);
        assert_eq!(scope("sort k by w_*"), LockScope::Everything);
        assert_eq!(scope("sort_ro k get #"), LockScope::Everything);
        assert_eq!(scope("object help"), LockScope::Everything);
    }
}
