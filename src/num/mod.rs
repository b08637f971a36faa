//! Numbers as Redis reads and prints them.
//!
//! Redis parses and formats numbers with C library calls whose exact
//! acceptance and output clients see: `string2ll` for integers, `strtod`
//! (`string2d`) for doubles, `strtold` (`string2ld`) in x87 `long double`
//! for INCRBYFLOAT and timeouts, `%.17g` and `d2string` for printing. Every
//! command reads and prints numbers through this module, so there is one
//! implementation of each.

mod big;
mod format;
mod int;
pub mod long_double;
mod strtod;

pub use format::{d2string, format_double, format_g};
pub use int::{atoi, parse_i64};
pub use long_double::{string2ld, LongDouble};
pub use strtod::{is_c_space, string2d, strtod};
