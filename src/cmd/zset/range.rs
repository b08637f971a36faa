//! Range arguments of the sorted-set commands: score ranges (Redis's
//! `zslParseRange`), lex ranges (`zslParseLexRange`), and
//! where each one starts and ends in the score index.

use std::cmp::Ordering;

use super::super::{CmdError, CmdResult};
use crate::num::{string2d, strtod};
use crate::storage::{encode_score, prefix_end};

pub(super) fn score_arg(arg: &[u8]) -> CmdResult<f64> {
    string2d(arg).ok_or(CmdError::NotFloat)
}

/// A score-range bound as Redis parses it (`strtod` up to the end of the
/// string): `(` for exclusive, leading spaces and an empty number allowed.
pub(super) fn parse_score_bound(arg: &[u8]) -> Option<(f64, bool)> {
    let (text, exclusive) = match arg.first() {
        Some(b'(') => (&arg[1..], true),
        _ => (arg, false),
    };
    let (v, n, _) = strtod(text);
    // C stops at a NUL byte as at the end of the string.
    let ends = text.get(n).is_none_or(|c| *c == 0);
    (ends && !v.is_nan()).then_some((v, exclusive))
}

/// A range of scores, `min`/`max` each inclusive or exclusive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct ScoreRange {
    min: f64,
    minex: bool,
    max: f64,
    maxex: bool,
}

impl ScoreRange {
    fn parse(min: &[u8], max: &[u8]) -> Option<ScoreRange> {
        let (min, minex) = parse_score_bound(min)?;
        let (max, maxex) = parse_score_bound(max)?;
        Some(ScoreRange {
            min,
            minex,
            max,
            maxex,
        })
    }

    pub(super) fn parse_arg(min: &[u8], max: &[u8]) -> CmdResult<ScoreRange> {
        ScoreRange::parse(min, max).ok_or_else(|| CmdError::err("min or max is not a float"))
    }

    pub(super) fn is_empty(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.minex || self.maxex))
    }

    /// Key bounds in the score index of the set whose entries start with
    /// `prefix`: lower inclusive, upper exclusive.
    pub(super) fn span(&self, prefix: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
        let at = |score: f64| [prefix, &encode_score(score)[..]].concat();
        let lower = if self.minex {
            prefix_end(&at(self.min)).unwrap_or_else(|| at(self.min))
        } else {
            at(self.min)
        };
        let upper = if self.maxex {
            Some(at(self.max))
        } else {
            prefix_end(&at(self.max)).or_else(|| prefix_end(prefix))
        };
        (lower, upper)
    }
}

/// One end of a lex range: `-`, `+`, `[member` or `(member`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Lex {
    Min,
    Max,
    In(Vec<u8>),
    Ex(Vec<u8>),
}

impl Lex {
    fn parse(arg: &[u8]) -> Option<Lex> {
        match arg.first()? {
            b'-' if arg.len() == 1 => Some(Lex::Min),
            b'+' if arg.len() == 1 => Some(Lex::Max),
            b'[' => Some(Lex::In(arg[1..].to_vec())),
            b'(' => Some(Lex::Ex(arg[1..].to_vec())),
            _ => None,
        }
    }

    fn exclusive(&self) -> bool {
        !matches!(self, Lex::In(_))
    }

    /// Redis's `sdscmplex`: `-` below every string, `+` above.
    fn cmp(&self, other: &Lex) -> Ordering {
        use Lex::*;
        match (self, other) {
            (Min, Min) | (Max, Max) => Ordering::Equal,
            (Min, _) | (_, Max) => Ordering::Less,
            (Max, _) | (_, Min) => Ordering::Greater,
            (In(a) | Ex(a), In(b) | Ex(b)) => a.cmp(b),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LexRange {
    min: Lex,
    max: Lex,
}

impl LexRange {
    fn parse(min: &[u8], max: &[u8]) -> Option<LexRange> {
        Some(LexRange {
            min: Lex::parse(min)?,
            max: Lex::parse(max)?,
        })
    }

    pub(super) fn parse_arg(min: &[u8], max: &[u8]) -> CmdResult<LexRange> {
        LexRange::parse(min, max)
            .ok_or_else(|| CmdError::err("min or max not valid string range item"))
    }

    pub(super) fn is_empty(&self) -> bool {
        match self.min.cmp(&self.max) {
            Ordering::Greater => true,
            Ordering::Equal => self.min.exclusive() || self.max.exclusive(),
            Ordering::Less => false,
        }
    }

    pub(super) fn gte_min(&self, m: &[u8]) -> bool {
        match &self.min {
            Lex::Min => true,
            Lex::Max => false,
            Lex::In(x) => m >= &x[..],
            Lex::Ex(x) => m > &x[..],
        }
    }

    pub(super) fn lte_max(&self, m: &[u8]) -> bool {
        match &self.max {
            Lex::Max => true,
            Lex::Min => false,
            Lex::In(x) => m <= &x[..],
            Lex::Ex(x) => m < &x[..],
        }
    }

    /// Key bounds among entries that share `base` (prefix ‖ one score).
    pub(super) fn span(&self, base: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
        let after = |m: &[u8]| [base, m, &[0u8][..]].concat();
        let lower = match &self.min {
            Lex::Min => base.to_vec(),
            Lex::Max => prefix_end(base).unwrap_or_else(|| base.to_vec()),
            Lex::In(m) => [base, m].concat(),
            Lex::Ex(m) => after(m),
        };
        let upper = match &self.max {
            Lex::Max => prefix_end(base),
            Lex::Min => Some(base.to_vec()),
            Lex::In(m) => Some(after(m)),
            Lex::Ex(m) => Some([base, m].concat()),
        };
        (lower, upper)
    }
}

#[cfg(test)]
mod tests {
    use super::super::store::score_entry;
    use super::*;
    #[test]
    fn score_bounds_parse_like_redis() {
        assert_eq!(parse_score_bound(b"1"), Some((1.0, false)));
        assert_eq!(parse_score_bound(b"(1"), Some((1.0, true)));
        assert_eq!(parse_score_bound(b"-inf"), Some((f64::NEG_INFINITY, false)));
        assert_eq!(parse_score_bound(b"(+inf"), Some((f64::INFINITY, true)));
        // strtod: leading spaces, an empty number and overflow are fine.
        assert_eq!(parse_score_bound(b" 1"), Some((1.0, false)));
        assert_eq!(parse_score_bound(b""), Some((0.0, false)));
        assert_eq!(parse_score_bound(b"("), Some((0.0, true)));
        assert_eq!(parse_score_bound(b"1e400"), Some((f64::INFINITY, false)));
        for bad in [&b"1 "[..], b"nan", b"(nan", b"x", b"((1", b" ", b"[1"] {
            assert_eq!(parse_score_bound(bad), None);
        }
    }

    #[test]
    fn score_range_emptiness() {
        let r = |a: &[u8], b: &[u8]| ScoreRange::parse(a, b).map(|r| r.is_empty());
        assert_eq!(r(b"1", b"1"), Some(false));
        assert_eq!(r(b"(1", b"1"), Some(true));
        assert_eq!(r(b"1", b"(1"), Some(true));
        assert_eq!(r(b"2", b"1"), Some(true));
        assert_eq!(r(b"-inf", b"+inf"), Some(false));
    }

    #[test]
    fn score_span_bounds() {
        let prefix = b"\x00pfx".to_vec();
        let key = |s: f64, m: &[u8]| score_entry(&prefix, s, m);
        let inside = |r: &ScoreRange, k: &[u8]| {
            let (lo, hi) = r.span(&prefix);
            k >= &lo[..] && hi.as_deref().is_none_or(|h| k < h)
        };
        let incl = ScoreRange::parse(b"1", b"2").unwrap();
        let excl = ScoreRange::parse(b"(1", b"(2").unwrap();
        for (k, a, b) in [
            (key(1.0, b""), true, false),
            (key(1.0, b"\xff\xff"), true, false),
            (key(1.5, b"m"), true, true),
            (key(2.0, b""), true, false),
            (key(2.0, b"\xff"), true, false),
            (key(0.5, b"\xff"), false, false),
            (key(2.5, b""), false, false),
        ] {
            assert_eq!(inside(&incl, &k), a);
            assert_eq!(inside(&excl, &k), b);
        }
        let zero = ScoreRange::parse(b"-0", b"0").unwrap();
        assert!(inside(&zero, &key(0.0, b"a")));
        assert!(inside(&zero, &key(-0.0, b"a")));
    }

    #[test]
    fn lex_bounds_parse_like_redis() {
        assert_eq!(Lex::parse(b"-"), Some(Lex::Min));
        assert_eq!(Lex::parse(b"+"), Some(Lex::Max));
        assert_eq!(Lex::parse(b"[a"), Some(Lex::In(b"a".to_vec())));
        assert_eq!(Lex::parse(b"(a"), Some(Lex::Ex(b"a".to_vec())));
        assert_eq!(Lex::parse(b"["), Some(Lex::In(Vec::new())));
        for bad in [&b""[..], b"a", b"+a", b"-a", b"{a"] {
            assert_eq!(Lex::parse(bad), None);
        }
        let empty = |a: &[u8], b: &[u8]| LexRange::parse(a, b).map(|r| r.is_empty());
        assert_eq!(empty(b"-", b"+"), Some(false));
        assert_eq!(empty(b"+", b"-"), Some(true));
        assert_eq!(empty(b"-", b"-"), Some(true));
        assert_eq!(empty(b"+", b"+"), Some(true));
        assert_eq!(empty(b"[a", b"[a"), Some(false));
        assert_eq!(empty(b"[a", b"(a"), Some(true));
        assert_eq!(empty(b"[b", b"[a"), Some(true));
        let r = LexRange::parse(b"(a", b"[c").unwrap();
        assert!(!r.gte_min(b"a") && r.gte_min(b"aa") && r.lte_max(b"c") && !r.lte_max(b"ca"));
    }

    #[test]
    fn lex_span_bounds() {
        let base = b"\x00pfx12345678".to_vec();
        let inside = |r: &LexRange, m: &[u8]| {
            let k = [&base[..], m].concat();
            let (lo, hi) = r.span(&base);
            k >= lo && hi.as_deref().is_none_or(|h| &k[..] < h)
        };
        let r = LexRange::parse(b"(b", b"[d").unwrap();
        assert!(!inside(&r, b"a"));
        assert!(!inside(&r, b"b"));
        assert!(inside(&r, b"b\x00"));
        assert!(inside(&r, b"c"));
        assert!(inside(&r, b"d"));
        assert!(!inside(&r, b"d\x00"));
        let all = LexRange::parse(b"-", b"+").unwrap();
        assert!(inside(&all, b""));
        assert!(inside(&all, b"\xff\xff"));
    }
}
