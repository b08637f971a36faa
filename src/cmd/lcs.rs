//! LCS: the longest common subsequence of two strings, as Redis 7.0
//! computes it (the dynamic-programming table, walked back from the end),
//! so that the subsequence and the matched ranges are the ones Redis picks
//! when several are equally long.

use bytes::Bytes;

use super::lookup::count_lookup;
use super::{int_arg, is, Call, CmdError, CmdResult};
use crate::resp::Reply;
use crate::storage::MetaBody;

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]
pub fn lcs(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    // Both keys are looked up (and counted) before either type is judged.
    let mut values = Vec::with_capacity(2);
    let mut wrong_type = false;
    for key in &args[1..3] {
        let meta = call.ctx.get_meta(key)?;
        count_lookup(call, meta.is_some(), key);
        match meta.map(|m| m.body) {
            None => values.push(Bytes::new()),
            Some(MetaBody::String(v)) => values.push(v),
            Some(_) => wrong_type = true,
        }
    }
    if wrong_type {
        return Err(CmdError::err(
            "The specified keys must contain string values",
        ));
    }
    let options = parse_options(&args[3..])?;
    let (a, b) = (&values[0], &values[1]);
    if a.len() as u64 >= u64::from(u32::MAX - 1) || b.len() as u64 >= u64::from(u32::MAX - 1) {
        return Err(CmdError::err("String too long for LCS"));
    }
    let cells = (a.len() as u64 + 1) * (b.len() as u64 + 1);
    let max = call.engine.config.read().proto_max_bulk_len as u64;
    if cells.saturating_mul(4) > max {
        return Err(CmdError::err(
            "Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        ));
    }
    let table = Table::build(a, b).ok_or_else(|| {
        CmdError::err("Insufficient memory, failed allocating transient memory for LCS")
    })?;
    let length = table.at(a.len(), b.len());
    if options.len && !options.idx {
        return Ok(Reply::Int(i64::from(length)));
    }
    let walk = table.walk_back(a, b, options.min_match_len);
    if !options.idx {
        return Ok(Reply::Bulk(Bytes::from(walk.subsequence)));
    }
    let matches = walk
        .ranges
        .into_iter()
        .map(|m| {
            let mut item = vec![
                Reply::Array(vec![Reply::Int(m.a.0), Reply::Int(m.a.1)]),
                Reply::Array(vec![Reply::Int(m.b.0), Reply::Int(m.b.1)]),
            ];
            if options.with_match_len {
                item.push(Reply::Int(m.a.1 - m.a.0 + 1));
            }
            Reply::Array(item)
        })
        .collect();
    Ok(Reply::Map(vec![
        (
            Reply::Bulk(Bytes::from_static(b"matches")),
            Reply::Array(matches),
        ),
        (
            Reply::Bulk(Bytes::from_static(b"len")),
            Reply::Int(i64::from(length)),
        ),
    ]))
}

struct Options {
    len: bool,
    idx: bool,
    with_match_len: bool,
    min_match_len: u64,
}

fn parse_options(args: &[Bytes]) -> CmdResult<Options> {
    let mut options = Options {
        len: false,
        idx: false,
        with_match_len: false,
        min_match_len: 0,
    };
    let mut i = 0;
    while let Some(opt) = args.get(i) {
        if is(opt, "IDX") {
            options.idx = true;
        } else if is(opt, "LEN") {
            options.len = true;
        } else if is(opt, "WITHMATCHLEN") {
            options.with_match_len = true;
        } else if let (true, Some(value)) = (is(opt, "MINMATCHLEN"), args.get(i + 1)) {
            options.min_match_len = int_arg(value)?.max(0) as u64;
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if options.len && options.idx {
        return Err(CmdError::err(
            "If you want both the length and indexes, please just use IDX.",
        ));
    }
    Ok(options)
}

/// `cell[i][j]`: the LCS length of `a[..i]` and `b[..j]`.
struct Table {
    cells: Vec<u32>,
    width: usize,
}

/// One matched run: inclusive ranges in `a` and in `b`.
struct Match {
    a: (i64, i64),
    b: (i64, i64),
}

struct Walk {
    subsequence: Vec<u8>,
    ranges: Vec<Match>,
}

impl Table {
    /// None when the table cannot be allocated.
    fn build(a: &[u8], b: &[u8]) -> Option<Table> {
        let width = b.len() + 1;
        let size = (a.len() + 1).checked_mul(width)?;
        let mut cells = Vec::new();
        cells.try_reserve_exact(size).ok()?;
        cells.resize(size, 0u32);
        for (i, &ca) in a.iter().enumerate() {
            let (above, row) = cells.split_at_mut((i + 1) * width);
            let above = &above[i * width..];
            let row = &mut row[..width];
            for (j, &cb) in b.iter().enumerate() {
                row[j + 1] = if ca == cb {
                    above[j] + 1
                } else {
                    above[j + 1].max(row[j])
                };
            }
        }
        Some(Table { cells, width })
    }

    fn at(&self, i: usize, j: usize) -> u32 {
        self.cells[i * self.width + j]
    }

    /// Walk from the end as Redis does: on a match take the byte and go
    /// diagonally, otherwise towards the larger neighbour (`j` on ties).
    /// Contiguous matches form a range, emitted (if long enough) when the
    /// run breaks or reaches the start of either string.
    fn walk_back(&self, a: &[u8], b: &[u8], min_match_len: u64) -> Walk {
        let mut subsequence = Vec::with_capacity(self.at(a.len(), b.len()) as usize);
        let mut ranges = Vec::new();
        let (mut i, mut j) = (a.len(), b.len());
        let mut run: Option<(usize, usize, usize, usize)> = None;
        while i > 0 && j > 0 {
            let mut emit = false;
            if a[i - 1] == b[j - 1] {
                subsequence.push(a[i - 1]);
                match &mut run {
                    None => run = Some((i - 1, i - 1, j - 1, j - 1)),
                    Some((a_start, _, b_start, _)) if *a_start == i && *b_start == j => {
                        *a_start -= 1;
                        *b_start -= 1;
                    }
                    Some(_) => emit = true,
                }
                if let Some((a_start, _, b_start, _)) = run {
                    if a_start == 0 || b_start == 0 {
                        emit = true;
                    }
                }
                i -= 1;
                j -= 1;
            } else {
                if self.at(i - 1, j) > self.at(i, j - 1) {
                    i -= 1;
                } else {
                    j -= 1;
                }
                emit = run.is_some();
            }
            if emit {
                if let Some((a_start, a_end, b_start, b_end)) = run.take() {
                    let len = (a_end - a_start + 1) as u64;
                    if min_match_len == 0 || len >= min_match_len {
                        ranges.push(Match {
                            a: (a_start as i64, a_end as i64),
                            b: (b_start as i64, b_end as i64),
                        });
                    }
                }
            }
        }
        subsequence.reverse();
        Walk {
            subsequence,
            ranges,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Ranges = Vec<((i64, i64), (i64, i64))>;

    fn lcs_of(a: &str, b: &str) -> (String, Ranges) {
        let table = Table::build(a.as_bytes(), b.as_bytes()).unwrap();
        let walk = table.walk_back(a.as_bytes(), b.as_bytes(), 0);
        (
            String::from_utf8(walk.subsequence).unwrap(),
            walk.ranges.iter().map(|m| (m.a, m.b)).collect(),
        )
    }

    #[test]
    fn redis_documentation_example() {
        let (s, ranges) = lcs_of("ohmytext", "mynewtext");
        assert_eq!(s, "mytext");
        assert_eq!(ranges, vec![((4, 7), (5, 8)), ((2, 3), (0, 1))]);
    }

    #[test]
    fn empty_and_disjoint() {
        assert_eq!(lcs_of("", "abc").0, "");
        assert_eq!(lcs_of("abc", "xyz").0, "");
    }
}
