//! A collection's elements numbered `0..len`, so that a uniform random
//! pick is one point lookup whatever the size (SPOP, SRANDMEMBER).
//!
//! `data_prefix(key, version) ‖ position (u64 BE)` → element, in the
//! ZScore family (sets keep nothing else there); the element's own record
//! holds its position. Removing an element moves the last one into the
//! freed number, so the numbers stay dense. The entries live under the
//! collection's version like its elements: copied by RENAME/COPY/MOVE,
//! dropped with it by compaction.

use crate::storage::{data_prefix, Cf, Ctx, StorageError};

use super::{CmdError, CmdResult};

/// The numbered elements of one collection version.
pub struct Positions {
    prefix: Vec<u8>,
}

/// An element record's value: its number.
pub fn encode(position: u64) -> [u8; 8] {
    position.to_be_bytes()
}

/// The number an element record holds.
pub fn decode(raw: &[u8]) -> CmdResult<u64> {
    let bytes: [u8; 8] = raw
        .try_into()
        .map_err(|_| CmdError::Storage(StorageError::Corrupt("element position".into())))?;
    Ok(u64::from_be_bytes(bytes))
}

impl Positions {
    pub fn new(ctx: &Ctx<'_>, key: &[u8], version: u64) -> Positions {
        Positions {
            prefix: data_prefix(ctx.keyspace(), key, version),
        }
    }

    fn key(&self, position: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prefix.len() + 8);
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(&position.to_be_bytes());
        out
    }

    /// The element numbered `position`.
    pub fn get(&self, ctx: &Ctx<'_>, position: u64) -> CmdResult<Option<Vec<u8>>> {
        Ok(ctx.get(Cf::ZScore, &self.key(position))?)
    }

    /// Number `element` as `position`.
    pub fn put(&self, ctx: &mut Ctx<'_>, position: u64, element: &[u8]) {
        ctx.put(Cf::ZScore, &self.key(position), element);
    }

    /// Free `position` in a collection of `len` elements: the last element
    /// takes the number, and is answered so that its own record can say
    /// so (`None` when the freed number was the last).
    pub fn remove(&self, ctx: &mut Ctx<'_>, position: u64, len: u64) -> CmdResult<Option<Vec<u8>>> {
        let Some(last) = len.checked_sub(1) else {
            return Ok(None);
        };
        let last_key = self.key(last);
        if position >= last {
            ctx.delete(Cf::ZScore, &last_key);
            return Ok(None);
        }
        let moved = ctx.get(Cf::ZScore, &last_key)?.ok_or_else(|| {
            CmdError::Storage(StorageError::Corrupt("collection positions".into()))
        })?;
        ctx.delete(Cf::ZScore, &last_key);
        self.put(ctx, position, &moved);
        Ok(Some(moved))
    }
}
