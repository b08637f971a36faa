#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! Which stored keyspace each logical database (SELECT's index) names.
//!
//! Keys are stored under a one-byte keyspace number. SWAPDB exchanges two
//! databases by swapping their entries in this map: O(1) whatever their
//! size, and one small record (`dbmap` in the replicated family) written
//! in the command's batch, so it is atomic with the rest of a transaction,
//! travels in Raft snapshots and survives restarts. Clients, keyspace
//! events, WATCH and blocked commands all speak logical numbers; only the
//! storage keys carry the physical one.

use super::{Result, StorageError, DATABASES};

/// The record in the replicated family holding the map (absent: identity).
pub(crate) const RECORD: &[u8] = b"dbmap";

const N: usize = DATABASES as usize;

/// A permutation of the databases: `physical[logical]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbMap {
    physical: [u8; N],
}

impl Default for DbMap {
    fn default() -> Self {
        Self::IDENTITY
    }
}

impl DbMap {
    pub const IDENTITY: DbMap = DbMap {
        physical: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    };

    /// The stored keyspace of logical database `db` (out of range: itself,
    /// which no command reaches since SELECT checks the index).
    pub fn physical(&self, db: u8) -> u8 {
        self.physical.get(usize::from(db)).copied().unwrap_or(db)
    }

    /// The logical database whose keys live in keyspace `space`.
    pub fn logical(&self, space: u8) -> u8 {
        self.physical
            .iter()
            .position(|&p| p == space)
            .map_or(space, |l| l as u8)
    }

    /// SWAPDB `a` `b`.
    pub fn swap(&mut self, a: u8, b: u8) {
        let (a, b) = (usize::from(a), usize::from(b));
        if a < N && b < N {
            self.physical.swap(a, b);
        }
    }

    pub fn is_identity(&self) -> bool {
        *self == Self::IDENTITY
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        self.physical.to_vec()
    }

    /// Decode a stored map; anything but a permutation of the databases is
    /// corruption (it would merge two databases into one).
    pub(crate) fn decode(raw: &[u8]) -> Result<DbMap> {
        let corrupt = || StorageError::Corrupt("database map record".into());
        let physical: [u8; N] = raw.try_into().map_err(|_| corrupt())?;
        let mut seen = [false; N];
        for &p in &physical {
            match seen.get_mut(usize::from(p)) {
                Some(s) if !*s => *s = true,
                _ => return Err(corrupt()),
            }
        }
        Ok(DbMap { physical })
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn swaps_compose_and_round_trip() {
        let mut map = DbMap::IDENTITY;
        map.swap(0, 1);
        map.swap(1, 5);
        assert_eq!(map.physical(0), 1);
        assert_eq!(map.physical(1), 5);
        assert_eq!(map.physical(5), 0);
        for l in 0..DATABASES {
            assert_eq!(map.logical(map.physical(l)), l);
        }
        assert_eq!(DbMap::decode(&map.encode()).ok(), Some(map));
        map.swap(1, 5);
        map.swap(0, 1);
        assert!(map.is_identity());
    }

    #[test]
    fn refuses_what_is_not_a_permutation() {
        let mut raw = DbMap::IDENTITY.encode();
        raw[3] = 4;
        assert!(DbMap::decode(&raw).is_err());
        assert!(DbMap::decode(&raw[..15]).is_err());
        raw[3] = 16;
        assert!(DbMap::decode(&raw).is_err());
    }
}
