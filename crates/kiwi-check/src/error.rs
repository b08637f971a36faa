//! Why a history could not be checked at all (as opposed to a verdict).

/// A history or model the checker refuses; the message names the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("unknown model {0:?} (expected register, cas-register, kv or list-append)")]
    UnknownModel(String),
    /// `line` counts from 1, as editors do.
    #[error("history line {line}: {message}")]
    History { line: usize, message: String },
}
