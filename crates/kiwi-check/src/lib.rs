//! A linearizability checker for Kiwi's test histories (`kiwi.testing`).
//!
//! A history is JSON lines of invokes and completions (`ok`, `fail`,
//! `info`) by concurrent processes; [`check`] decides whether some order of
//! its operations, each taking effect at one instant between its invoke
//! and its completion, is allowed by a sequential model (a register, a
//! compare-and-set register, a string key-value map, lists appended to).
//! The search is Wing–Gong–Lowe's with Lowe's memoization, as the
//! Porcupine checker does it, run per key, iteratively and within a time
//! budget (an explicit Unknown when it runs out). On top: operations with
//! an unknown outcome whose effect nothing observes are left out, identical
//! ones are taken in invoke order, and for appends a state that cannot
//! lead to the next read is cut (see `prune`). For a violation it finds a
//! small failing window of operations and explains it (see `explain`).
//!
//! ```
//! use std::time::Duration;
//! let history = r#"
//! {"process": 0, "type": "invoke", "f": "write", "value": 1}
//! {"process": 0, "type": "ok", "f": "write", "value": 1}
//! {"process": 1, "type": "invoke", "f": "read", "value": null}
//! {"process": 1, "type": "ok", "f": "read", "value": null}
//! "#;
//! let result = kiwi_check::check("register", history, Duration::from_secs(1)).unwrap();
//! assert_eq!(result.verdict, kiwi_check::Verdict::Invalid);
//! assert_eq!(result.window.len(), 2);
//! ```

mod cache;
mod check;
mod entries;
mod error;
mod explain;
mod hash;
mod history;
mod model;
mod prune;
mod search;
pub mod simulate;
mod states;
mod value;

pub use check::{check, check_parsed, CheckResult, Verdict, WindowOp};
pub use error::CheckError;
pub use history::{parse, Completion, History, Operation};
pub use model::ModelKind;
pub use value::Value;
