//! The GEO commands: points stored as sorted-set members whose score is
//! their 52-bit geohash (`crate::geo`), so a geo key is a sorted set (TYPE
//! zset, ZRANGE works on it). GEOADD goes through ZADD's code path, the
//! searches walk the score index one geohash cell at a time, and the STORE
//! forms store through the sorted-set store.

use std::cmp::Ordering;

use bytes::Bytes;

use super::table::{commands, flags::*};
use super::zset::members::{add_scored, AddOptions};
use super::zset::store::{get_score, prefix_of, store_result, walk};
use super::{int_arg, is, Call, CmdError, CmdResult, Collection, CommandSpec};
use crate::geo::hash::{decode_score, geohash_string, score_of, LAT_MAX, LAT_MIN};
use crate::geo::hash::{LONG_MAX, LONG_MIN};
use crate::geo::search::{areas_by_shape, distance, score_span, within, Extent, Shape};
use crate::geo::sort::{merge_sort, partial_sort};
use crate::num::string2d;
use crate::resp::Reply;
use crate::storage::{encode_score, KeyType};

pub static COMMANDS: &[CommandSpec] = commands! {
    "geoadd", -5, W, 1, 1, 1, geoadd;
    "geodist", -4, R, 1, 1, 1, geodist;
    "geohash", -2, R, 1, 1, 1, geohash;
    "geopos", -2, R, 1, 1, 1, geopos;
    "georadius", -6, W, 1, 1, 1, georadius;
    "georadius_ro", -6, R, 1, 1, 1, georadius_ro;
    "georadiusbymember", -5, W, 1, 1, 1, georadiusbymember;
    "georadiusbymember_ro", -5, R, 1, 1, 1, georadiusbymember_ro;
    "geosearch", -7, R, 1, 1, 1, geosearch;
    "geosearchstore", -8, W, 1, 2, 1, geosearchstore;
};

// ------------------------------------------------------------ arguments

/// A longitude,latitude pair inside Redis's limits.
fn lonlat_arg(lon: &[u8], lat: &[u8]) -> CmdResult<(f64, f64)> {
    let lon = string2d(lon).ok_or(CmdError::NotFloat)?;
    let lat = string2d(lat).ok_or(CmdError::NotFloat)?;
    if !(LONG_MIN..=LONG_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return Err(CmdError::err(format!(
            "invalid longitude,latitude pair {lon:.6},{lat:.6}"
        )));
    }
    Ok((lon, lat))
}

/// Metres per unit.
fn unit_arg(unit: &[u8]) -> CmdResult<f64> {
    if is(unit, "m") {
        Ok(1.0)
    } else if is(unit, "km") {
        Ok(1000.0)
    } else if is(unit, "ft") {
        Ok(0.3048)
    } else if is(unit, "mi") {
        Ok(1609.34)
    } else {
        Err(CmdError::err(
            "unsupported unit provided. please use M, KM, FT, MI",
        ))
    }
}

/// `<radius> <unit>`: the radius and metres per unit.
fn radius_args(radius: &[u8], unit: &[u8]) -> CmdResult<(f64, f64)> {
    let r = string2d(radius).ok_or_else(|| CmdError::err("need numeric radius"))?;
    if r < 0.0 {
        return Err(CmdError::err("radius cannot be negative"));
    }
    Ok((r, unit_arg(unit)?))
}

/// `<width> <height> <unit>`.
fn box_args(width: &[u8], height: &[u8], unit: &[u8]) -> CmdResult<(f64, f64, f64)> {
    let w = string2d(width).ok_or_else(|| CmdError::err("need numeric width"))?;
    let h = string2d(height).ok_or_else(|| CmdError::err("need numeric height"))?;
    if h < 0.0 || w < 0.0 {
        return Err(CmdError::err("height or width cannot be negative"));
    }
    Ok((w, h, unit_arg(unit)?))
}

/// The point a member of a geo set stands for.
fn member_point(
    call: &Call<'_, '_>,
    key: &[u8],
    coll: &Collection,
    member: &[u8],
) -> CmdResult<Option<(f64, f64)>> {
    Ok(get_score(&call.ctx, key, coll.version(), member)?.and_then(decode_score))
}

fn member_point_or_err(
    call: &Call<'_, '_>,
    key: &[u8],
    coll: &Collection,
    member: &[u8],
) -> CmdResult<(f64, f64)> {
    member_point(call, key, coll, member)?
        .ok_or_else(|| CmdError::err("could not decode requested zset member"))
}

/// A distance as Redis prints one: fixed point, four decimals (`llrint`
/// of the value times 10^4, ties to even).
fn distance_reply(d: f64) -> Reply {
    if d == 0.0 {
        return Reply::Bulk(Bytes::from_static(b"0.0000"));
    }
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    let scaled = (d * 10000.0).round_ties_even();
    // x86-64's llrint gives i64::MIN for NaN and out-of-range values.
    let v = if (-TWO63..TWO63).contains(&scaled) {
        scaled as i64
    } else {
        i64::MIN
    };
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    Reply::Bulk(Bytes::from(format!("{sign}{}.{:04}", a / 10000, a % 10000)))
}

// ------------------------------------------------------------ commands

/// GEOADD key [NX|XX] [CH] lon lat member [lon lat member …]: ZADD with
/// the points' geohashes as scores.
pub fn geoadd(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let (mut nx, mut xx, mut ch) = (false, false, false);
    let mut i = 2;
    while i < args.len() {
        if is(&args[i], "nx") {
            nx = true;
        } else if is(&args[i], "xx") {
            xx = true;
        } else if is(&args[i], "ch") {
            ch = true;
        } else {
            break;
        }
        i += 1;
    }
    let rest = &args[i..];
    // No point at all is ZADD's syntax error once the call is rewritten.
    if !rest.len().is_multiple_of(3) || (xx && nx) || rest.is_empty() {
        return Err(CmdError::Syntax);
    }
    let mut pairs = Vec::with_capacity(rest.len() / 3);
    for point in rest.chunks_exact(3) {
        let (lon, lat) = lonlat_arg(&point[0], &point[1])?;
        let score = score_of(lon, lat).ok_or(CmdError::Syntax)?;
        pairs.push((score as f64, &point[2][..]));
    }
    let opts = AddOptions {
        nx,
        xx,
        ch,
        ..AddOptions::default()
    };
    add_scored(call, &args[1], opts, &pairs)
}

/// GEODIST key member1 member2 [unit].
pub fn geodist(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let to_meters = match args.len() {
        5 => unit_arg(&args[4])?,
        n if n > 5 => return Err(CmdError::Syntax),
        _ => 1.0,
    };
    let key = &args[1];
    let Some(coll) = call.read_collection(key, KeyType::ZSet)? else {
        return Ok(Reply::Nil);
    };
    let a = get_score(&call.ctx, key, coll.version(), &args[2])?;
    let b = get_score(&call.ctx, key, coll.version(), &args[3])?;
    let (Some(a), Some(b)) = (a.and_then(decode_score), b.and_then(decode_score)) else {
        return Ok(Reply::Nil);
    };
    Ok(distance_reply(distance(a.0, a.1, b.0, b.1) / to_meters))
}

/// GEOHASH key member …: standard 11-character geohashes.
pub fn geohash(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let key = &args[1];
    let coll = call.read_collection(key, KeyType::ZSet)?;
    let mut out = Vec::with_capacity(args.len() - 2);
    for member in &args[2..] {
        let score = match &coll {
            Some(c) => get_score(&call.ctx, key, c.version(), member)?,
            None => None,
        };
        out.push(match score.and_then(geohash_string) {
            Some(text) => Reply::Bulk(Bytes::copy_from_slice(&text)),
            None => Reply::Nil,
        });
    }
    Ok(Reply::Array(out))
}

/// GEOPOS key member …: each member's longitude and latitude.
pub fn geopos(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let key = &args[1];
    let coll = call.read_collection(key, KeyType::ZSet)?;
    let mut out = Vec::with_capacity(args.len() - 2);
    for member in &args[2..] {
        let point = match &coll {
            Some(c) => member_point(call, key, c, member)?,
            None => None,
        };
        out.push(match point {
            Some((lon, lat)) => {
                Reply::Array(vec![Reply::HumanDouble(lon), Reply::HumanDouble(lat)])
            }
            None => Reply::NilArray,
        });
    }
    Ok(Reply::Array(out))
}

pub fn georadius(call: &mut Call<'_, '_>) -> CmdResult {
    search(call, 1, Variant::Radius { store: true })
}

pub fn georadius_ro(call: &mut Call<'_, '_>) -> CmdResult {
    search(call, 1, Variant::Radius { store: false })
}

pub fn georadiusbymember(call: &mut Call<'_, '_>) -> CmdResult {
    search(call, 1, Variant::ByMember { store: true })
}

pub fn georadiusbymember_ro(call: &mut Call<'_, '_>) -> CmdResult {
    search(call, 1, Variant::ByMember { store: false })
}

pub fn geosearch(call: &mut Call<'_, '_>) -> CmdResult {
    search(call, 1, Variant::Search { store: false })
}

pub fn geosearchstore(call: &mut Call<'_, '_>) -> CmdResult {
    search(call, 2, Variant::Search { store: true })
}

// ------------------------------------------------------------ searches

/// Which search command runs; `store`: whether it may store its result
/// (STORE/STOREDIST for GEORADIUS*, the destination of GEOSEARCHSTORE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Radius { store: bool },
    ByMember { store: bool },
    Search { store: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sort {
    None,
    Asc,
    Desc,
}

/// A point found by a search.
struct Found {
    member: Bytes,
    longitude: f64,
    latitude: f64,
    /// Metres from the centre.
    dist: f64,
    score: f64,
}

/// Everything a search call asks for once its arguments are read.
struct Query<'a> {
    center: Option<(f64, f64)>,
    extent: Option<Extent>,
    conversion: f64,
    store: Option<&'a Bytes>,
    storedist: bool,
    withdist: bool,
    withhash: bool,
    withcoord: bool,
    sort: Sort,
    count: u64,
    any: bool,
}

/// The search commands, as Redis's georadiusGeneric reads and answers
/// them: the checks in its order, then the cells around the centre.
fn search(call: &mut Call<'_, '_>, src_at: usize, variant: Variant) -> CmdResult {
    let args = call.args;
    let src = &args[src_at];
    let coll = call.read_collection(src, KeyType::ZSet)?;
    let q = read_query(call, coll.as_ref(), src_at, variant)?;
    let Some(coll) = coll else {
        return match q.store {
            Some(dst) => Ok(Reply::Int(store_result(call, dst, &[])?)),
            None => Ok(Reply::Array(Vec::new())),
        };
    };
    // With the source set present every form has read both (GEOSEARCH has
    // checked its FROM and BY options).
    let (Some((longitude, latitude)), Some(extent)) = (q.center, q.extent) else {
        return Err(CmdError::Syntax);
    };
    let shape = Shape {
        longitude,
        latitude,
        extent,
        conversion: q.conversion,
    };
    let mut found = points_within(call, src, &coll, &shape, if q.any { q.count } else { 0 })?;
    if found.is_empty() && q.store.is_none() {
        return Ok(Reply::Array(Vec::new()));
    }
    let returned = if q.count == 0 {
        found.len()
    } else {
        found
            .len()
            .min(usize::try_from(q.count).unwrap_or(usize::MAX))
    };
    let sort = if q.count != 0 && q.sort == Sort::None && !q.any {
        Sort::Asc
    } else {
        q.sort
    };
    order(&mut found, sort, returned);
    found.truncate(returned);
    for f in &mut found {
        f.dist /= q.conversion;
    }
    if let Some(dst) = q.store {
        let items: Vec<(Bytes, f64)> = found
            .into_iter()
            .map(|f| (f.member, if q.storedist { f.dist } else { f.score }))
            .collect();
        return Ok(Reply::Int(store_result(call, dst, &items)?));
    }
    let options = usize::from(q.withdist) + usize::from(q.withhash) + usize::from(q.withcoord);
    let out = found
        .into_iter()
        .map(|f| {
            if options == 0 {
                return Reply::Bulk(f.member);
            }
            let mut item = Vec::with_capacity(options + 1);
            item.push(Reply::Bulk(f.member));
            if q.withdist {
                item.push(distance_reply(f.dist));
            }
            if q.withhash {
                item.push(Reply::Int(f.score as i64));
            }
            if q.withcoord {
                item.push(Reply::Array(vec![
                    Reply::HumanDouble(f.longitude),
                    Reply::HumanDouble(f.latitude),
                ]));
            }
            Reply::Array(item)
        })
        .collect();
    Ok(Reply::Array(out))
}

/// Read a search's arguments with Redis's checks in Redis's order. With
/// no source set, a member centre is not looked up (Redis answers the
/// empty reply after the other checks).
fn read_query<'a>(
    call: &Call<'_, 'a>,
    coll: Option<&Collection>,
    src_at: usize,
    variant: Variant,
) -> CmdResult<Query<'a>> {
    let args: &'a [Bytes] = call.args;
    let src = &args[src_at];
    let mut q = Query {
        center: None,
        extent: None,
        conversion: 1.0,
        store: None,
        storedist: false,
        withdist: false,
        withhash: false,
        withcoord: false,
        sort: Sort::None,
        count: 0,
        any: false,
    };
    let (base, may_store, search) = match variant {
        Variant::Radius { store } => {
            q.center = Some(lonlat_arg(&args[2], &args[3])?);
            let (r, conv) = radius_args(&args[4], &args[5])?;
            q.extent = Some(Extent::Radius(r));
            q.conversion = conv;
            (6, store, false)
        }
        Variant::ByMember { store } => {
            if let Some(coll) = coll {
                q.center = Some(member_point_or_err(call, src, coll, &args[2])?);
                let (r, conv) = radius_args(&args[3], &args[4])?;
                q.extent = Some(Extent::Radius(r));
                q.conversion = conv;
            }
            (5, store, false)
        }
        Variant::Search { store } => {
            if store {
                q.store = Some(&args[1]);
                (3, false, true)
            } else {
                (2, false, true)
            }
        }
    };
    let searchstore = variant == Variant::Search { store: true };
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let rest = &args[base.min(args.len())..];
    let mut i = 0;
    while i < rest.len() {
        let arg = &rest[i];
        let left = rest.len() - i - 1;
        if is(arg, "withdist") {
            q.withdist = true;
        } else if is(arg, "withhash") {
            q.withhash = true;
        } else if is(arg, "withcoord") {
            q.withcoord = true;
        } else if is(arg, "any") {
            q.any = true;
        } else if is(arg, "asc") {
            q.sort = Sort::Asc;
        } else if is(arg, "desc") {
            q.sort = Sort::Desc;
        } else if is(arg, "count") && left >= 1 {
            let count = int_arg(&rest[i + 1])?;
            if count <= 0 {
                return Err(CmdError::err("COUNT must be > 0"));
            }
            q.count = count as u64;
            i += 1;
        } else if (is(arg, "store") || is(arg, "storedist")) && left >= 1 && may_store {
            q.store = Some(&rest[i + 1]);
            q.storedist = is(arg, "storedist");
            i += 1;
        } else if is(arg, "storedist") && searchstore {
            q.storedist = true;
        } else if is(arg, "frommember") && left >= 1 && search && !fromloc {
            if let Some(coll) = coll {
                q.center = Some(member_point_or_err(call, src, coll, &rest[i + 1])?);
            }
            frommember = true;
            i += 1;
        } else if is(arg, "fromlonlat") && left >= 2 && search && !frommember {
            q.center = Some(lonlat_arg(&rest[i + 1], &rest[i + 2])?);
            fromloc = true;
            i += 2;
        } else if is(arg, "byradius") && left >= 2 && search && !bybox {
            let (r, conv) = radius_args(&rest[i + 1], &rest[i + 2])?;
            q.extent = Some(Extent::Radius(r));
            q.conversion = conv;
            byradius = true;
            i += 2;
        } else if is(arg, "bybox") && left >= 3 && search && !byradius {
            let (width, height, conv) = box_args(&rest[i + 1], &rest[i + 2], &rest[i + 3])?;
            q.extent = Some(Extent::Box { width, height });
            q.conversion = conv;
            bybox = true;
            i += 3;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if q.store.is_some() && (q.withdist || q.withhash || q.withcoord) {
        return Err(CmdError::err(format!(
            "{} is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
            if searchstore {
                "GEOSEARCHSTORE"
            } else {
                "STORE option in GEORADIUS"
            }
        )));
    }
    let name = || String::from_utf8_lossy(&args[0]).into_owned();
    if search && !(frommember || fromloc) {
        return Err(CmdError::err(format!(
            "exactly one of FROMMEMBER or FROMLONLAT can be specified for {}",
            name()
        )));
    }
    if search && !(byradius || bybox) {
        return Err(CmdError::err(format!(
            "exactly one of BYRADIUS and BYBOX can be specified for {}",
            name()
        )));
    }
    if q.any && q.count == 0 {
        return Err(CmdError::err("the ANY argument requires COUNT argument"));
    }
    Ok(q)
}

/// The members inside the shape, cell by cell in Redis's order (centre,
/// N, S, E, W, NE, NW, SE, SW), each cell in score order. With a `limit`
/// (COUNT … ANY) the walk stops as soon as that many are found.
fn points_within(
    call: &Call<'_, '_>,
    key: &[u8],
    coll: &Collection,
    shape: &Shape,
    limit: u64,
) -> CmdResult<Vec<Found>> {
    let mut found: Vec<Found> = Vec::new();
    let Some(areas) = areas_by_shape(shape) else {
        return Ok(found);
    };
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let full = |found: &Vec<Found>| limit > 0 && found.len() >= limit;
    let prefix = prefix_of(&call.ctx, key, coll);
    let cells = areas.cells();
    // The last cell scanned; Redis compares with it only past the centre.
    let mut last = 0;
    for (i, &cell) in cells.iter().enumerate() {
        if cell.is_none() {
            continue;
        }
        // Huge searches can give the same cell twice in a row.
        if last > 0 && cells.get(last) == Some(&cell) {
            continue;
        }
        if full(&found) {
            break;
        }
        let (min, max) = score_span(cell);
        let lower = [&prefix[..], &encode_score(min as f64)[..]].concat();
        let upper = [&prefix[..], &encode_score(max as f64)[..]].concat();
        walk(
            &call.ctx,
            prefix.len(),
            &lower,
            Some(&upper),
            false,
            |m, score| {
                if let Some((lon, lat)) = decode_score(score) {
                    if let Some(dist) = within(shape, lon, lat) {
                        found.push(Found {
                            member: Bytes::copy_from_slice(m),
                            longitude: lon,
                            latitude: lat,
                            dist,
                            score,
                        });
                    }
                }
                !full(&found)
            },
        )?;
        last = i;
    }
    Ok(found)
}

/// Order the results as Redis does: a stable sort when all are returned,
/// its partial quicksort when COUNT keeps only the first `returned`.
fn order(found: &mut Vec<Found>, sort: Sort, returned: usize) {
    let asc = |a: &Found, b: &Found| {
        if a.dist > b.dist {
            Ordering::Greater
        } else if a.dist == b.dist {
            Ordering::Equal
        } else {
            Ordering::Less
        }
    };
    let cmp = |a: &Found, b: &Found| match sort {
        Sort::Desc => asc(a, b).reverse(),
        _ => asc(a, b),
    };
    if sort == Sort::None || found.is_empty() {
        return;
    }
    if returned == found.len() {
        merge_sort(found, cmp);
    } else if returned > 0 {
        partial_sort(found, cmp, 0, returned - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_print_with_four_decimals() {
        let text = |d: f64| match distance_reply(d) {
            Reply::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
            _ => String::new(),
        };
        assert_eq!(text(0.0), "0.0000");
        assert_eq!(text(0.00004), "0.0000");
        assert_eq!(text(0.00016), "0.0002");
        assert_eq!(text(0.775), "0.7750");
        assert_eq!(text(166274.15156), "166274.1516");
        assert_eq!(text(12.0), "12.0000");
        assert_eq!(text(-0.0), "0.0000");
        assert_eq!(text(f64::NAN), "-922337203685477.5808");
    }
}
