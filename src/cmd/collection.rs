//! What every collection command shares: finding a collection of the
//! right type, starting a new one, and saving (or deleting) its header.

use bytes::Bytes;

use super::{Call, CmdError, CmdResult};
use crate::storage::{
    data_key, CollectionMeta, Expiry, KeyType, Meta, MetaBody, StorageError, LIST_START_INDEX,
};

/// A collection's header as a command works on it.
#[derive(Debug, Clone, Copy)]
pub struct Collection {
    pub meta: CollectionMeta,
    pub expire_at_ms: Expiry,
    /// False for a collection this command is creating.
    pub existed: bool,
}

impl Collection {
    pub fn version(&self) -> u64 {
        self.meta.version
    }

    pub fn len(&self) -> u64 {
        self.meta.len
    }

    pub fn is_empty(&self) -> bool {
        self.meta.len == 0
    }
}

/// Stored elements that disagree with their collection's header or with
/// their own encoding (`what` names them): a storage error, never a reply
/// built from half the data.
pub fn corrupt(what: impl Into<String>) -> CmdError {
    CmdError::Storage(StorageError::Corrupt(what.into()))
}

/// The inclusive offsets (from the first element) that Redis index
/// arguments `start end` cover in a collection of `len` elements: negative
/// indexes count from the end, and the range is clamped as LRANGE, LTRIM
/// and ZRANGE clamp it; `None` when it is empty.
pub fn index_range(len: u64, start: i64, end: i64) -> Option<(u64, u64)> {
    let len = i128::from(len);
    let (mut s, mut e) = (i128::from(start), i128::from(end));
    if s < 0 {
        s += len;
    }
    if e < 0 {
        e += len;
    }
    if s < 0 {
        s = 0;
    }
    if s > e || s >= len {
        return None;
    }
    if e >= len {
        e = len - 1;
    }
    Some((s as u64, e as u64))
}

use crate::storage::events::class as events;

impl Call<'_, '_> {
    /// The live collection of type `kind` at `key`: `None` when the key is
    /// missing or expired, WRONGTYPE when it holds another type.
    pub fn collection(&self, key: &[u8], kind: KeyType) -> CmdResult<Option<Collection>> {
        match self.ctx.get_meta(key)? {
            None => Ok(None),
            Some(Meta {
                body: MetaBody::Collection(meta),
                expire_at_ms,
            }) if meta.kind == kind => Ok(Some(Collection {
                meta,
                expire_at_ms,
                existed: true,
            })),
            Some(_) => Err(CmdError::WrongType),
        }
    }

    /// The collection at `key`, or a new empty one with a fresh version
    /// (also over an expired key, so its old elements stay invisible).
    pub fn collection_or_new(&self, key: &[u8], kind: KeyType) -> CmdResult<Collection> {
        Ok(match self.collection(key, kind)? {
            Some(c) => c,
            None => self.new_collection(kind),
        })
    }

    /// A new, empty collection header with a fresh version.
    pub fn new_collection(&self, kind: KeyType) -> Collection {
        let (head, tail) = if kind == KeyType::List {
            (LIST_START_INDEX, LIST_START_INDEX)
        } else {
            (0, 0)
        };
        Collection {
            meta: CollectionMeta {
                kind,
                version: self.ctx.next_version(),
                len: 0,
                head,
                tail,
                indexed: kind == KeyType::Set,
                stream: Default::default(),
            },
            expire_at_ms: None,
            existed: false,
        }
    }

    /// Delete the elements named by `sub_keys` that exist (HDEL, SREM) and
    /// save the header: the count of removed ones. A name given twice is
    /// gone the second time (reads see this command's deletes), so it counts
    /// once; the last element gone deletes the key.
    pub fn remove_elements(
        &mut self,
        key: &[u8],
        coll: &mut Collection,
        sub_keys: &[Bytes],
        (class, event): (u32, &'static str),
    ) -> CmdResult<u64> {
        let mut removed = 0u64;
        for sub in sub_keys {
            let raw = data_key(self.ctx.keyspace(), key, coll.version(), sub);
            if self.ctx.get_data(&raw)?.is_some() {
                self.ctx.delete_data(&raw);
                removed += 1;
            }
        }
        if removed > 0 {
            coll.meta.len = coll.meta.len.saturating_sub(removed);
            self.notify_change(key, coll, class, event);
            self.save_collection(key, coll);
        }
        Ok(removed)
    }

    /// Raise the keyspace events of a change to `coll` named `event`:
    /// `new` first when it creates the key, then the command's own (the
    /// `del` of a collection left empty comes from [`Self::save_collection`]).
    pub fn notify_change(
        &mut self,
        key: &[u8],
        coll: &Collection,
        class: u32,
        event: &'static str,
    ) {
        if !coll.existed && coll.meta.len > 0 {
            self.ctx.notify(events::NEW, "new", key);
        }
        self.ctx.notify(class, event, key);
    }

    /// Write the header back; a collection left empty is deleted, as in Redis.
    pub fn save_collection(&mut self, key: &[u8], coll: &Collection) {
        if coll.meta.len == 0 {
            if coll.existed {
                self.ctx.delete_key(key);
                self.ctx.notify(events::GENERIC, "del", key);
            }
        } else {
            let meta = Meta {
                expire_at_ms: coll.expire_at_ms,
                body: MetaBody::Collection(coll.meta),
            };
            self.ctx.put_meta(key, &meta);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_ranges_as_lrange_clamps_them() {
        assert_eq!(index_range(5, 0, -1), Some((0, 4)));
        assert_eq!(index_range(5, 1, 2), Some((1, 2)));
        assert_eq!(index_range(5, -2, -1), Some((3, 4)));
        assert_eq!(index_range(5, -100, 100), Some((0, 4)));
        assert_eq!(index_range(5, 4, 100), Some((4, 4)));
        assert_eq!(index_range(5, 5, 10), None);
        assert_eq!(index_range(5, 3, 2), None);
        assert_eq!(index_range(5, 0, -6), None);
        assert_eq!(index_range(5, -6, -6), None);
        assert_eq!(index_range(5, -6, 0), Some((0, 0)));
        assert_eq!(index_range(0, 0, -1), None);
        assert_eq!(index_range(5, i64::MIN, i64::MAX), Some((0, 4)));
        assert_eq!(index_range(5, i64::MAX, i64::MIN), None);
        assert_eq!(index_range(5, i64::MIN, i64::MIN), None);
    }

    #[test]
    fn index_ranges_as_zrange_clamps_them() {
        assert_eq!(index_range(5, 0, -1), Some((0, 4)));
        assert_eq!(index_range(5, -100, 100), Some((0, 4)));
        assert_eq!(index_range(5, 3, 1), None);
        assert_eq!(index_range(5, 5, 10), None);
        assert_eq!(index_range(5, i64::MIN, i64::MAX), Some((0, 4)));
        assert_eq!(index_range(5, -1, -1), Some((4, 4)));
        assert_eq!(index_range(0, 0, -1), None);
    }
}
