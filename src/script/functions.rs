//! FUNCTION LOAD's library code: `#!lua name=<lib>` and the functions it
//! registers with `redis.register_function`. (Being written.)

/// Flags a function declares (`flags={'no-writes', ...}`).
pub use super::cache::ScriptFlags as FunctionFlags;

/// A loaded library.
#[derive(Debug, Clone, Default)]
pub struct Library {
    pub name: String,
}

/// Why a library does not load (Redis's texts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LibraryError(pub String);
