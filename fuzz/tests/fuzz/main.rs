//! The fuzz targets under `cargo test`, one binary (RocksDB links once):
//! the corpus and seeds replayed, the properties over generated inputs
//! (bounded: about 10 s on two cores), and the failures found so far.

mod corpus;
mod properties;
mod regressions;
