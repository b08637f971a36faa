//! Geospatial math as Redis 7.0 does it, without storage: points hashed
//! into 52-bit sorted-set scores ([`hash`]), the cells and distances of a
//! search ([`search`]), and the sorts that order results ([`sort`]).
//! The GEO* commands (`cmd/geo`) store points as sorted-set members.

pub mod hash;
pub mod search;
pub mod sort;
