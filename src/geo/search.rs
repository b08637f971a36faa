//! Searching around a point as Redis does: the search shape, the cell size
//! (step) that covers it, the nine cells to scan (centre and neighbours,
//! the useless ones left out), and great-circle distances.

use std::cmp::Ordering;

use super::hash::{decode_wgs84, encode_wgs84, neighbors, Area, HashBits, Neighbors};

/// Redis's earth radius (quadratic mean radius of WGS-84), in metres.
pub const EARTH_RADIUS_IN_METERS: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;
const D_R: f64 = std::f64::consts::PI / 180.0;

fn deg_rad(ang: f64) -> f64 {
    ang * D_R
}

fn rad_deg(ang: f64) -> f64 {
    ang / D_R
}

/// What a search covers, in the unit of its arguments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Extent {
    Radius(f64),
    Box { width: f64, height: f64 },
}

/// A search area: its centre, extent and the unit's size in metres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    pub longitude: f64,
    pub latitude: f64,
    pub extent: Extent,
    /// Metres per unit.
    pub conversion: f64,
}

/// `[min_lon, min_lat, max_lon, max_lat]` around the shape.
fn bounding_box(shape: &Shape) -> [f64; 4] {
    let (lon, lat) = (shape.longitude, shape.latitude);
    let (half_height, half_width) = match shape.extent {
        Extent::Radius(r) => (r, r),
        Extent::Box { width, height } => (height / 2.0, width / 2.0),
    };
    let height = shape.conversion * half_height;
    let width = shape.conversion * half_width;
    let lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS);
    let long_delta_top = rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(lat + lat_delta).cos());
    let long_delta_bottom =
        rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(lat - lat_delta).cos());
    // The box is widest on its side nearer the equator.
    let long_delta = if lat < 0.0 {
        long_delta_bottom
    } else {
        long_delta_top
    };
    [
        lon - long_delta,
        lat - lat_delta,
        lon + long_delta,
        lat + lat_delta,
    ]
}

/// The step (bits per coordinate) of cells about as large as the search.
pub fn estimate_steps_by_radius(range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return 26;
    }
    let mut range = range_meters;
    let mut step: i32 = 1;
    // A NaN range would never end the loop; Redis cannot get one either
    // (radii are finite and non-negative), the bound only guards.
    while range < MERCATOR_MAX && step < 2048 {
        range *= 2.0;
        step += 1;
    }
    step -= 2;
    // Cells are narrower towards the poles.
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

/// The cells a search scans: the centre cell's hash and its neighbours
/// (the ones the search cannot reach set to [`HashBits::NONE`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Areas {
    pub hash: HashBits,
    pub neighbors: Neighbors,
    pub area: Area,
}

impl Areas {
    /// The nine cells in the order Redis scans them.
    pub fn cells(&self) -> [HashBits; 9] {
        let n = &self.neighbors;
        [
            self.hash,
            n.north,
            n.south,
            n.east,
            n.west,
            n.north_east,
            n.north_west,
            n.south_east,
            n.south_west,
        ]
    }
}

/// The cells covering a search (Redis's geohashCalculateAreasByShapeWGS84).
/// `None` when the centre cannot be hashed (it always can for a centre
/// inside Redis's limits).
pub fn areas_by_shape(shape: &Shape) -> Option<Areas> {
    let [min_lon, min_lat, max_lon, max_lat] = bounding_box(shape);
    let radius_meters = match shape.extent {
        Extent::Radius(r) => r,
        Extent::Box { width, height } => {
            ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
        }
    } * shape.conversion;
    let (lon, lat) = (shape.longitude, shape.latitude);
    let mut steps = estimate_steps_by_radius(radius_meters, lat);
    let mut hash = encode_wgs84(lon, lat, steps)?;
    let mut around = neighbors(&hash);
    let mut area = decode_wgs84(hash)?;

    // The estimate may leave the search poking out of the outer cells
    // when the centre is near its cell's edge: then use cells twice as big.
    let reaches_out = || -> Option<bool> {
        let north = decode_wgs84(around.north)?;
        let south = decode_wgs84(around.south)?;
        let east = decode_wgs84(around.east)?;
        let west = decode_wgs84(around.west)?;
        Some(
            north.latitude.max < max_lat
                || south.latitude.min > min_lat
                || east.longitude.max < max_lon
                || west.longitude.min > min_lon,
        )
    };
    if steps > 1 && reaches_out()? {
        steps -= 1;
        hash = encode_wgs84(lon, lat, steps)?;
        around = neighbors(&hash);
        area = decode_wgs84(hash)?;
    }

    // Leave out the cells the search cannot reach.
    if steps >= 2 {
        let none = HashBits::NONE;
        if area.latitude.min < min_lat {
            around.south = none;
            around.south_west = none;
            around.south_east = none;
        }
        if area.latitude.max > max_lat {
            around.north = none;
            around.north_east = none;
            around.north_west = none;
        }
        if area.longitude.min < min_lon {
            around.west = none;
            around.south_west = none;
            around.north_west = none;
        }
        if area.longitude.max > max_lon {
            around.east = none;
            around.south_east = none;
            around.north_east = none;
        }
    }
    Some(Areas {
        hash,
        neighbors: around,
        area,
    })
}

/// The scores `[min, max)` of the points inside a cell.
pub fn score_span(hash: HashBits) -> (u64, u64) {
    let min = hash.align52();
    let next = HashBits {
        bits: hash.bits.wrapping_add(1),
        step: hash.step,
    };
    (min, next.align52())
}

/// The distance between two latitudes along a meridian, in metres.
pub fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS_IN_METERS * (deg_rad(lat2) - deg_rad(lat1)).abs()
}

/// The haversine great-circle distance in metres.
pub fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let lon1r = deg_rad(lon1);
    let lon2r = deg_rad(lon2);
    let v = ((lon2r - lon1r) / 2.0).sin();
    // Same longitude: the distance along the meridian, without the trig.
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let lat1r = deg_rad(lat1);
    let lat2r = deg_rad(lat2);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_IN_METERS * a.sqrt().asin()
}

/// The distance in metres from the shape's centre to a point, when the
/// point is inside the shape.
pub fn within(shape: &Shape, lon: f64, lat: f64) -> Option<f64> {
    match shape.extent {
        Extent::Radius(r) => {
            let d = distance(shape.longitude, shape.latitude, lon, lat);
            // Redis only refuses a distance greater than the radius: a
            // NaN one (nearly antipodal points) is inside.
            let outside = d.partial_cmp(&(r * shape.conversion)) == Some(Ordering::Greater);
            (!outside).then_some(d)
        }
        Extent::Box { width, height } => {
            let (width_m, height_m) = (width * shape.conversion, height * shape.conversion);
            // The latitude test is the cheaper one, so it goes first.
            if lat_distance(lat, shape.latitude) > height_m / 2.0 {
                return None;
            }
            if distance(lon, lat, shape.longitude, lat) > width_m / 2.0 {
                return None;
            }
            Some(distance(shape.longitude, shape.latitude, lon, lat))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn steps_follow_the_radius() {
        assert_eq!(estimate_steps_by_radius(0.0, 0.0), 26);
        assert_eq!(estimate_steps_by_radius(1.0, 0.0), 24);
        assert_eq!(estimate_steps_by_radius(1000.0, 0.0), 14);
        assert_eq!(estimate_steps_by_radius(1000.0, 70.0), 13);
        assert_eq!(estimate_steps_by_radius(1000.0, -85.0), 12);
        assert_eq!(estimate_steps_by_radius(f64::INFINITY, 0.0), 1);
        assert_eq!(estimate_steps_by_radius(f64::MIN_POSITIVE, 0.0), 26);
        assert_eq!(estimate_steps_by_radius(1e9, 0.0), 1);
    }

    #[test]
    fn distances_match_redis() {
        // GEODIST between Palermo and Catania on Redis 7.0: 166274.1516 m,
        // measured between the stored (decoded) points.
        let (a, b) = (3479099956230698.0, 3479447370796909.0);
        let (lon1, lat1) = super::super::hash::decode_score(a).unwrap();
        let (lon2, lat2) = super::super::hash::decode_score(b).unwrap();
        let d = distance(lon1, lat1, lon2, lat2);
        assert_eq!((d * 10000.0).round_ties_even(), 1662741516.0, "{d}");
        assert_eq!(distance(1.0, 2.0, 1.0, 3.0), lat_distance(2.0, 3.0));
    }

    #[test]
    fn the_cells_cover_the_search() {
        let shape = Shape {
            longitude: 10.0,
            latitude: 1.0,
            extent: Extent::Radius(100.0),
            conversion: 1000.0,
        };
        let areas = areas_by_shape(&shape).unwrap();
        let [min_lon, min_lat, max_lon, max_lat] = bounding_box(&shape);
        let mut lo = (f64::MAX, f64::MAX);
        let mut hi = (f64::MIN, f64::MIN);
        for cell in areas.cells().iter().filter(|c| !c.is_none()) {
            let a = decode_wgs84(*cell).unwrap();
            lo = (lo.0.min(a.longitude.min), lo.1.min(a.latitude.min));
            hi = (hi.0.max(a.longitude.max), hi.1.max(a.latitude.max));
        }
        assert!(lo.0 <= min_lon && lo.1 <= min_lat && hi.0 >= max_lon && hi.1 >= max_lat);
    }

    #[test]
    fn boxes_check_each_side() {
        let shape = Shape {
            longitude: 0.0,
            latitude: 0.0,
            extent: Extent::Box {
                width: 200.0,
                height: 100.0,
            },
            conversion: 1000.0,
        };
        assert!(within(&shape, 0.8, 0.0).is_some());
        assert!(within(&shape, 0.0, 0.8).is_none());
        assert!(within(&shape, 0.85, 0.4).is_some());
        assert!(within(&shape, 0.9, 0.4).is_none());
    }
}
