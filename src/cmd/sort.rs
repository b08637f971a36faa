//! SORT and SORT_RO, as Redis 7.0 runs them: the elements of a list, set or
//! sorted set, weighed by themselves or by other keys (`BY weight_*`,
//! `BY obj_*->field`), ordered numerically or as strings, cut by LIMIT,
//! projected through GET patterns and returned or STOREd as a list.
//!
//! Equal numeric weights are ordered by the elements' bytes, as Redis does,
//! so the result is deterministic (also when replicated); equal string
//! weights under ALPHA keep no defined order in Redis either.

use std::cmp::Ordering;

use bytes::Bytes;

use super::lookup::count_lookup;
use super::{hash, int_arg, is, list, set, zset, Call, CmdError, CmdResult};
use crate::resp::Reply;
use crate::storage::{KeyType, MetaBody};

pub fn sort(call: &mut Call<'_, '_>) -> CmdResult {
    run(call, false)
}

pub fn sort_ro(call: &mut Call<'_, '_>) -> CmdResult {
    run(call, true)
}

struct Options {
    desc: bool,
    alpha: bool,
    limit: (i64, i64),
    store: Option<Bytes>,
    by: Option<Bytes>,
    /// BY a pattern without `*`: keep the collection's own order.
    dont_sort: bool,
    gets: Vec<Bytes>,
}

/// Whether the caller's user may read every key (Redis lets only such a
/// user use BY with a pattern, or GET).
fn reads_every_key(call: &Call<'_, '_>) -> bool {
    let Some(user) = &call.session.user else {
        return true;
    };
    if user.unrestricted() {
        return true;
    }
    let Some(spec) = super::lookup(&call.args[0]) else {
        return true;
    };
    let cat = crate::acl::catalog();
    cat.id_of_call(spec, call.args)
        .is_none_or(|id| user.state().reads_every_key(id, spec, call.args))
}

fn parse(
    args: &[Bytes],
    read_only: bool,
    reads_every_key: &dyn Fn() -> bool,
) -> CmdResult<Options> {
    let mut o = Options {
        desc: false,
        alpha: false,
        limit: (0, -1),
        store: None,
        by: None,
        dont_sort: false,
        gets: Vec::new(),
    };
    let mut j = 0;
    while let Some(arg) = args.get(j) {
        let left = args.len() - j - 1;
        if is(arg, "ASC") {
            o.desc = false;
        } else if is(arg, "DESC") {
            o.desc = true;
        } else if is(arg, "ALPHA") {
            o.alpha = true;
        } else if is(arg, "LIMIT") && left >= 2 {
            o.limit = (int_arg(&args[j + 1])?, int_arg(&args[j + 2])?);
            j += 2;
        } else if !read_only && is(arg, "STORE") && left >= 1 {
            o.store = Some(args[j + 1].clone());
            j += 1;
        } else if is(arg, "BY") && left >= 1 {
            let pattern = args[j + 1].clone();
            o.dont_sort = !pattern.contains(&b'*');
            // A real pattern reads keys the ACL check never saw.
            if !o.dont_sort && !reads_every_key() {
                return Err(CmdError::err(
                    "BY option of SORT denied due to insufficient ACL permissions.",
                ));
            }
            o.by = Some(pattern);
            j += 1;
        } else if is(arg, "GET") && left >= 1 {
            if !reads_every_key() {
                return Err(CmdError::err(
                    "GET option of SORT denied due to insufficient ACL permissions.",
                ));
            }
            o.gets.push(args[j + 1].clone());
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    Ok(o)
}

/// One element with what it is ordered by.
struct Item {
    element: Bytes,
    score: f64,
    /// ALPHA BY: the weight's text (None: the weight key is missing).
    text: Option<Bytes>,
}

fn run(call: &mut Call<'_, '_>, read_only: bool) -> CmdResult {
    let args = call.args;
    let mut o = parse(&args[2..], read_only, &|| reads_every_key(call))?;
    let key = &args[1];
    let meta = call.ctx.get_meta(key)?;
    count_lookup(call, meta.is_some(), key);
    let kind = match meta.as_ref().map(|m| &m.body) {
        None => None,
        Some(MetaBody::Collection(c))
            if matches!(c.kind, KeyType::List | KeyType::Set | KeyType::ZSet) =>
        {
            Some(c.kind)
        }
        Some(_) => return Err(CmdError::WrongType),
    };
    // Redis sorts a set it stores, its own order being arbitrary (Kiwi's is
    // byte order already; this matters for DESC).
    if o.dont_sort && kind == Some(KeyType::Set) && o.store.is_some() {
        o.dont_sort = false;
        o.alpha = true;
        o.by = None;
    }
    let mut elements = match kind {
        None => Vec::new(),
        Some(kind) => {
            let coll = call
                .collection(key, kind)?
                .ok_or_else(|| CmdError::err("the key vanished while sorting"))?;
            match kind {
                KeyType::List => list::elements(call, key, &coll)?,
                KeyType::Set => set::members_of(call, key, &coll)?,
                _ => zset::members_by_score(call, key, &coll)?,
            }
        }
    };
    let (start, end) = limit_window(o.limit, elements.len());
    let selected: Vec<Bytes> = if o.dont_sort {
        // The collection's own order, read backwards for DESC (a set's
        // order is its own either way).
        if o.desc && kind != Some(KeyType::Set) {
            elements.reverse();
        }
        window(elements, start, end)
    } else {
        let mut items = weigh(call, &o, elements)?;
        items.sort_by(|a, b| compare(a, b, &o));
        window(items.into_iter().map(|i| i.element).collect(), start, end)
    };
    output(call, &o, selected)
}

/// Redis's LIMIT arithmetic: `(start, end)` inclusive, `end < start` for
/// nothing.
fn limit_window((offset, count): (i64, i64), len: usize) -> (i64, i64) {
    let len = len as i64;
    let start = offset.max(0).min(len);
    let count = count.max(-1).min(len);
    let mut end = if count < 0 {
        len - 1
    } else {
        start + count - 1
    };
    if start >= len {
        return (len - 1, len - 2);
    }
    if end >= len {
        end = len - 1;
    }
    (start, end)
}

fn window<T>(items: Vec<T>, start: i64, end: i64) -> Vec<T> {
    if end < start || start < 0 {
        return Vec::new();
    }
    items
        .into_iter()
        .skip(start as usize)
        .take((end - start + 1) as usize)
        .collect()
}

fn weigh(call: &Call<'_, '_>, o: &Options, elements: Vec<Bytes>) -> CmdResult<Vec<Item>> {
    let mut bad_number = false;
    let mut items = Vec::with_capacity(elements.len());
    for element in elements {
        let mut item = Item {
            element,
            score: 0.0,
            text: None,
        };
        let weight = match &o.by {
            Some(pattern) => lookup_by_pattern(call, pattern, &item.element)?,
            None => Some(item.element.clone()),
        };
        if let Some(weight) = weight {
            if o.alpha {
                if o.by.is_some() {
                    item.text = Some(weight);
                }
            } else {
                match c_strtod(&weight) {
                    Some(score) => item.score = score,
                    None => bad_number = true,
                }
            }
        }
        items.push(item);
    }
    if bad_number {
        return Err(CmdError::err(
            "One or more scores can't be converted into double",
        ));
    }
    Ok(items)
}

fn compare(a: &Item, b: &Item, o: &Options) -> Ordering {
    let order = if !o.alpha {
        a.score
            .partial_cmp(&b.score)
            .unwrap_or(Ordering::Equal)
            .then_with(|| a.element.cmp(&b.element))
    } else if o.by.is_some() {
        match (&a.text, &b.text) {
            (Some(x), Some(y)) => x.cmp(y),
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
        }
    } else {
        a.element.cmp(&b.element)
    };
    if o.desc {
        order.reverse()
    } else {
        order
    }
}

fn output(call: &mut Call<'_, '_>, o: &Options, selected: Vec<Bytes>) -> CmdResult {
    let mut rows: Vec<Option<Bytes>> = Vec::new();
    for element in selected {
        if o.gets.is_empty() {
            rows.push(Some(element));
            continue;
        }
        for pattern in &o.gets {
            rows.push(lookup_by_pattern(call, pattern, &element)?);
        }
    }
    match &o.store {
        None => Ok(Reply::Array(
            rows.into_iter().map(Reply::bulk_opt).collect(),
        )),
        Some(dest) => {
            let values: Vec<Bytes> = rows.into_iter().map(Option::unwrap_or_default).collect();
            let dest = dest.clone();
            Ok(Reply::Int(list::store_list(
                call,
                &dest,
                &values,
                "sortstore",
            )?))
        }
    }
}

/// Redis's lookupKeyByPattern: `#` is the element itself; otherwise the
/// first `*` is replaced by it and the key read as a string, or as a hash
/// field when `->field` follows the `*`. Anything else is no value.
fn lookup_by_pattern(
    call: &Call<'_, '_>,
    pattern: &[u8],
    element: &Bytes,
) -> CmdResult<Option<Bytes>> {
    if pattern == b"#" {
        return Ok(Some(element.clone()));
    }
    let Some(star) = pattern.iter().position(|&c| c == b'*') else {
        return Ok(None);
    };
    let after = &pattern[star + 1..];
    let (postfix, field) = match after.windows(2).position(|w| w == b"->") {
        Some(arrow) if arrow + 2 < after.len() => (&after[..arrow], Some(&after[arrow + 2..])),
        _ => (after, None),
    };
    let key = [&pattern[..star], &element[..], postfix].concat();
    let meta = call.ctx.get_meta(&key)?;
    count_lookup(call, meta.is_some(), &key);
    match (meta.map(|m| m.body), field) {
        (Some(MetaBody::String(value)), None) => Ok(Some(value)),
        (Some(MetaBody::Collection(c)), Some(field)) if c.kind == KeyType::Hash => {
            match call.collection(&key, KeyType::Hash)? {
                Some(coll) => hash::field_value(call, &key, &coll, field),
                None => Ok(None),
            }
        }
        _ => Ok(None),
    }
}

/// C's strtod as SORT uses it: leading white space allowed, nothing may
/// follow the number, out-of-range values and NaN refused; the empty
/// string is 0. The text ends at its first zero byte, as a C string does.
/// (Redis then also refuses a weight whose text before the zero byte is
/// empty when `errno` happens to hold ERANGE from an earlier conversion,
/// which no client can know; Kiwi answers as a fresh Redis does.)
fn c_strtod(text: &[u8]) -> Option<f64> {
    let text = text.split(|&b| b == 0).next().unwrap_or(text);
    let trimmed = match text
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
    {
        Some(i) => &text[i..],
        None if text.is_empty() => return Some(0.0),
        None => return None,
    };
    let s = std::str::from_utf8(trimmed).ok()?;
    let value: f64 = s.parse().ok()?;
    if value.is_nan() {
        return None;
    }
    let word = s.trim_start_matches(['+', '-']).to_ascii_lowercase();
    if value.is_infinite() && word != "inf" && word != "infinity" {
        return None; // ERANGE: overflow
    }
    let mantissa = word.split('e').next().unwrap_or("");
    let nonzero_digits = mantissa.bytes().any(|c| (b'1'..=b'9').contains(&c));
    if (value == 0.0 && nonzero_digits) || value.is_subnormal() {
        return None; // ERANGE: underflow
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_as_redis() {
        assert_eq!(limit_window((0, -1), 5), (0, 4));
        assert_eq!(limit_window((1, 2), 5), (1, 2));
        assert_eq!(limit_window((10, 2), 5), (4, 3));
        assert_eq!(limit_window((-3, 2), 5), (0, 1));
        assert_eq!(limit_window((0, 0), 5), (0, -1));
        assert_eq!(limit_window((0, 10), 0), (-1, -2));
    }

    #[test]
    fn strtod_as_c() {
        assert_eq!(c_strtod(b""), Some(0.0));
        assert_eq!(c_strtod(b" 1.5"), Some(1.5));
        assert_eq!(c_strtod(b"1.5 "), None);
        assert_eq!(c_strtod(b"inf"), Some(f64::INFINITY));
        assert_eq!(c_strtod(b"nan"), None);
        assert_eq!(c_strtod(b"1e400"), None);
        assert_eq!(c_strtod(b"\x00\x01"), Some(0.0));
        assert_eq!(c_strtod(b"2\x00x"), Some(2.0));
        assert_eq!(c_strtod(b" \x00"), None);
        assert_eq!(c_strtod(b"1e-400"), None);
        assert_eq!(c_strtod(b"abc"), None);
        assert_eq!(c_strtod(b"0.0"), Some(0.0));
    }
}
