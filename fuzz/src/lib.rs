//! Fuzz targets for every decoder of bytes Kiwi did not produce itself
//! (see `kiwi::decoders`).
//!
//! A target is a function of raw bytes that panics when a property fails;
//! the decoders must answer an error for bad input, never panic, loop,
//! recurse without bound or allocate out of proportion to the input (the
//! allocator in [`alloc`] watches that). The same targets run three ways:
//! - `cargo test` replays the committed corpus (`fuzz/corpus/<target>/`)
//!   and the seeds of [`seeds`] through them (tests/corpus.rs);
//! - `cargo test` drives the checks they are built on with proptest
//!   generators for a bounded number of cases (tests/properties.rs);
//! - `fuzz/campaign.sh` runs them under AFL++ for as long as asked.

#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

pub mod alloc;
pub mod hll;
pub mod payload;
pub mod records;
pub mod reply;
pub mod request;
pub mod resp_value;
pub mod seeds;
pub mod snapshot;
pub mod wire;

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

/// A fuzz target: bytes in, a panic when a property fails.
pub type Target = fn(&[u8]);

/// Every target by name (the corpus directory and the AFL target name).
pub const TARGETS: &[(&str, Target)] = &[
    ("request", request::fuzz),
    ("inline", request::fuzz_inline),
    ("reply", reply::fuzz),
    ("raft_frame", wire::fuzz_frame),
    ("raft_reply", wire::fuzz_reply),
    ("snapshot", snapshot::fuzz),
    ("records", records::fuzz),
    ("hll", hll::fuzz),
    ("dump", payload::check_dump),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, target)| *target)
}
