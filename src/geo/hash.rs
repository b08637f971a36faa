//! Redis's geohash: longitude and latitude cut into `step` bits each,
//! interleaved (latitude on the even bits, longitude on the odd ones), and
//! the neighbouring cells of a hash.

/// Latitudes Redis accepts (the Web Mercator limits).
pub const LAT_MIN: f64 = -85.05112878;
pub const LAT_MAX: f64 = 85.05112878;
pub const LONG_MIN: f64 = -180.0;
pub const LONG_MAX: f64 = 180.0;
/// The precision of a stored point: 26 bits per coordinate, 52 in all.
pub const STEP_MAX: u8 = 26;

/// An interval of one coordinate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

impl Range {
    fn is_zero(&self) -> bool {
        self.min == 0.0 && self.max == 0.0
    }
}

/// The ranges a stored point is hashed in.
pub const LONG_RANGE: Range = Range {
    min: LONG_MIN,
    max: LONG_MAX,
};
pub const LAT_RANGE: Range = Range {
    min: LAT_MIN,
    max: LAT_MAX,
};

/// A geohash of `step` bits per coordinate. Both zero marks a cell that a
/// search leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HashBits {
    pub bits: u64,
    pub step: u8,
}

impl HashBits {
    pub const NONE: HashBits = HashBits { bits: 0, step: 0 };

    pub fn is_none(&self) -> bool {
        self.bits == 0 && self.step == 0
    }

    /// The hash moved to the 52-bit scale of sorted-set scores.
    pub fn align52(&self) -> u64 {
        self.bits << (52 - u32::from(self.step) * 2)
    }
}

/// The cell a hash names.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Area {
    pub hash: HashBits,
    pub longitude: Range,
    pub latitude: Range,
}

/// Spread the low 32 bits of `even` over the even bit positions and those
/// of `odd` over the odd ones.
fn interleave(even: u32, odd: u32) -> u64 {
    fn spread(v: u32) -> u64 {
        let mut x = u64::from(v);
        x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
        x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
        x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
        x = (x | (x << 2)) & 0x3333_3333_3333_3333;
        (x | (x << 1)) & 0x5555_5555_5555_5555
    }
    spread(even) | (spread(odd) << 1)
}

/// The inverse of [`interleave`]: the even bits in the low half of the
/// result, the odd bits in the high half.
fn deinterleave(v: u64) -> u64 {
    fn gather(v: u64) -> u64 {
        let mut x = v & 0x5555_5555_5555_5555;
        x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
        x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
        x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
        x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
        (x | (x >> 16)) & 0x0000_0000_FFFF_FFFF
    }
    gather(v) | (gather(v >> 1) << 32)
}

/// C's `(uint32_t)` of a non-negative double below 2^32 (truncation).
fn to_u32(v: f64) -> u32 {
    // The callers' values lie in [0, 2^32): `as` truncates them as C does.
    v as u32
}

/// Hash a point with `step` bits per coordinate inside the given ranges;
/// `None` outside Redis's limits or the ranges.
pub fn encode(
    long_range: Range,
    lat_range: Range,
    longitude: f64,
    latitude: f64,
    step: u8,
) -> Option<HashBits> {
    if step == 0 || step > 32 || lat_range.is_zero() || long_range.is_zero() {
        return None;
    }
    if !(LONG_MIN..=LONG_MAX).contains(&longitude) || !(LAT_MIN..=LAT_MAX).contains(&latitude) {
        return None;
    }
    if latitude < lat_range.min
        || latitude > lat_range.max
        || longitude < long_range.min
        || longitude > long_range.max
    {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let lat_offset = (latitude - lat_range.min) / (lat_range.max - lat_range.min) * scale;
    let long_offset = (longitude - long_range.min) / (long_range.max - long_range.min) * scale;
    Some(HashBits {
        bits: interleave(to_u32(lat_offset), to_u32(long_offset)),
        step,
    })
}

/// Hash a point as a stored point is hashed.
pub fn encode_wgs84(longitude: f64, latitude: f64, step: u8) -> Option<HashBits> {
    encode(LONG_RANGE, LAT_RANGE, longitude, latitude, step)
}

/// The cell of a hash inside the given ranges.
pub fn decode(long_range: Range, lat_range: Range, hash: HashBits) -> Option<Area> {
    if hash.is_none() || lat_range.is_zero() || long_range.is_zero() || hash.step > 32 {
        return None;
    }
    let sep = deinterleave(hash.bits);
    let lat_scale = lat_range.max - lat_range.min;
    let long_scale = long_range.max - long_range.min;
    let ilat = sep as u32;
    let ilong = (sep >> 32) as u32;
    let div = (1u64 << hash.step) as f64;
    let edge = |i: u32, scale: f64, min: f64| min + (f64::from(i) / div) * scale;
    let edge_next = |i: u32, scale: f64, min: f64| min + ((f64::from(i) + 1.0) / div) * scale;
    Some(Area {
        hash,
        latitude: Range {
            min: edge(ilat, lat_scale, lat_range.min),
            max: edge_next(ilat, lat_scale, lat_range.min),
        },
        longitude: Range {
            min: edge(ilong, long_scale, long_range.min),
            max: edge_next(ilong, long_scale, long_range.min),
        },
    })
}

/// The cell of a hash of a stored point.
pub fn decode_wgs84(hash: HashBits) -> Option<Area> {
    decode(LONG_RANGE, LAT_RANGE, hash)
}

/// The centre of a cell, kept inside Redis's limits: the coordinates Redis
/// reports for a stored point.
pub fn area_center(area: &Area) -> (f64, f64) {
    let lon = ((area.longitude.min + area.longitude.max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((area.latitude.min + area.latitude.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (lon, lat)
}

/// C's `(uint64_t)` of a double as x86-64 code computes it: truncation,
/// values at or past 2^63 through the high half, out of range values to
/// the "integer indefinite" pattern.
fn double_to_u64(v: f64) -> u64 {
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    let cvtt = |x: f64| -> u64 {
        if x.is_nan() || !(-TWO63..TWO63).contains(&x) {
            1 << 63
        } else {
            (x as i64) as u64
        }
    };
    if v < TWO63 {
        cvtt(v)
    } else {
        cvtt(v - TWO63) ^ (1 << 63)
    }
}

/// The point a sorted-set score stands for: `(longitude, latitude)`.
/// Any score decodes (Redis reads whatever ZADD stored as 52 bits).
pub fn decode_score(score: f64) -> Option<(f64, f64)> {
    let hash = HashBits {
        bits: double_to_u64(score),
        step: STEP_MAX,
    };
    decode_wgs84(hash).map(|area| area_center(&area))
}

/// The score a point is stored with.
pub fn score_of(longitude: f64, latitude: f64) -> Option<u64> {
    encode_wgs84(longitude, latitude, STEP_MAX).map(|h| h.align52())
}

/// The standard 11-character base32 geohash of a stored score (GEOHASH):
/// the point decoded and hashed again over latitudes -90..90.
pub fn geohash_string(score: f64) -> Option<[u8; 11]> {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (lon, lat) = decode_score(score)?;
    let hash = encode(
        Range {
            min: -180.0,
            max: 180.0,
        },
        Range {
            min: -90.0,
            max: 90.0,
        },
        lon,
        lat,
        26,
    )?;
    let mut out = [b'0'; 11];
    // 52 bits make ten characters; the eleventh is always '0'.
    for (i, c) in out.iter_mut().take(10).enumerate() {
        let idx = (hash.bits >> (52 - (i + 1) * 5)) & 0x1f;
        *c = ALPHABET[idx as usize];
    }
    Some(out)
}

/// The eight cells around a hash, same step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Neighbors {
    pub north: HashBits,
    pub east: HashBits,
    pub west: HashBits,
    pub south: HashBits,
    pub north_east: HashBits,
    pub south_east: HashBits,
    pub north_west: HashBits,
    pub south_west: HashBits,
}

const EVEN: u64 = 0x5555_5555_5555_5555;
const ODD: u64 = 0xaaaa_aaaa_aaaa_aaaa;

/// Step the longitude bits (odd positions) one cell east (`d > 0`) or west.
fn move_x(hash: &mut HashBits, d: i8) {
    if d == 0 {
        return;
    }
    let shift = 64 - u32::from(hash.step) * 2;
    let mut x = hash.bits & ODD;
    let y = hash.bits & EVEN;
    // Filling the other coordinate's positions with ones lets a carry or
    // borrow run through them.
    let fill = EVEN >> shift;
    if d > 0 {
        x = x.wrapping_add(fill.wrapping_add(1));
    } else {
        x = (x | fill).wrapping_sub(fill.wrapping_add(1));
    }
    x &= ODD >> shift;
    hash.bits = x | y;
}

/// Step the latitude bits (even positions) one cell north (`d > 0`) or south.
fn move_y(hash: &mut HashBits, d: i8) {
    if d == 0 {
        return;
    }
    let shift = 64 - u32::from(hash.step) * 2;
    let x = hash.bits & ODD;
    let mut y = hash.bits & EVEN;
    let fill = ODD >> shift;
    if d > 0 {
        y = y.wrapping_add(fill.wrapping_add(1));
    } else {
        y = (y | fill).wrapping_sub(fill.wrapping_add(1));
    }
    y &= EVEN >> shift;
    hash.bits = x | y;
}

/// The neighbours of a hash of step 1..=32 (they wrap around the ranges).
pub fn neighbors(hash: &HashBits) -> Neighbors {
    let at = |dx: i8, dy: i8| {
        let mut h = *hash;
        move_x(&mut h, dx);
        move_y(&mut h, dy);
        h
    };
    Neighbors {
        east: at(1, 0),
        west: at(-1, 0),
        south: at(0, -1),
        north: at(0, 1),
        north_west: at(-1, 1),
        north_east: at(1, 1),
        south_east: at(1, -1),
        south_west: at(-1, -1),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn interleave_round_trips() {
        for (a, b) in [
            (0u32, 0u32),
            (1, 0),
            (0, 1),
            (u32::MAX, 0),
            (0x1234_5678, 0x9abc_def0),
        ] {
            let v = interleave(a, b);
            assert_eq!(deinterleave(v), u64::from(a) | (u64::from(b) << 32));
        }
        assert_eq!(interleave(1, 0), 1);
        assert_eq!(interleave(0, 1), 2);
    }

    #[test]
    fn scores_match_redis() {
        // GEOADD g 10 1 m; ZSCORE g m → 3380672543826282 on Redis 7.0.
        assert_eq!(score_of(10.0, 1.0), Some(3380672543826282));
        assert_eq!(score_of(10.5, 1.1), Some(3380684252489650));
        assert_eq!(score_of(180.1, 0.0), None);
        assert_eq!(score_of(0.0, 85.06), None);
    }

    #[test]
    fn decoded_points_are_cell_centres() {
        let (lon, lat) = decode_score(3380672543826282.0).unwrap();
        assert_eq!(lon, 10.000002086162567);
        assert_eq!(lat, 0.9999994591429768);
    }

    #[test]
    fn neighbours_are_adjacent_cells() {
        let h = encode_wgs84(10.0, 1.0, 10).unwrap();
        let centre = decode_wgs84(h).unwrap();
        let n = neighbors(&h);
        let north = decode_wgs84(n.north).unwrap();
        let east = decode_wgs84(n.east).unwrap();
        let south_west = decode_wgs84(n.south_west).unwrap();
        assert_eq!(north.latitude.min, centre.latitude.max);
        assert_eq!(north.longitude, centre.longitude);
        assert_eq!(east.longitude.min, centre.longitude.max);
        assert_eq!(east.latitude, centre.latitude);
        assert_eq!(south_west.latitude.max, centre.latitude.min);
        assert_eq!(south_west.longitude.max, centre.longitude.min);
    }

    #[test]
    fn geohash_strings_match_redis() {
        // GEOADD g 13.361389 38.115556 Palermo; GEOHASH g Palermo.
        let score = score_of(13.361389, 38.115556).unwrap() as f64;
        assert_eq!(&geohash_string(score).unwrap(), b"sqc8b49rny0");
    }

    #[test]
    fn odd_scores_decode_as_x86_does() {
        assert_eq!(double_to_u64(-1.0), u64::MAX);
        assert_eq!(double_to_u64(1e30), 0);
        assert_eq!(double_to_u64(1.5), 1);
        assert_eq!(double_to_u64(f64::NEG_INFINITY), 1 << 63);
    }
}
