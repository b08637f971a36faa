#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! Redis's intset, the blob a small set of integers is kept (and dumped)
//! as: element width in bytes (u32 LE: 2, 4 or 8), count (u32 LE), then the
//! integers, little endian, ascending.

use super::RdbError;

/// The members of an intset as decimal text.
pub fn decode(blob: &[u8]) -> Result<Vec<Vec<u8>>, RdbError> {
    let bad = || RdbError::Format;
    let word = |range: std::ops::Range<usize>| -> Result<usize, RdbError> {
        let raw: [u8; 4] = blob
            .get(range)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?;
        usize::try_from(u32::from_le_bytes(raw)).map_err(|_| bad())
    };
    let width = word(0..4)?;
    let count = word(4..8)?;
    if !matches!(width, 2 | 4 | 8) || count.checked_mul(width) != blob.len().checked_sub(8) {
        return Err(bad());
    }
    let body = blob.get(8..).ok_or_else(bad)?;
    Ok(body
        .chunks_exact(width)
        .map(|raw| {
            let v = raw
                .iter()
                .rev()
                .fold(0u64, |acc, &b| acc << 8 | u64::from(b));
            let shift = 64 - 8 * width as u32;
            (((v << shift) as i64) >> shift).to_string().into_bytes()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn reads_a_redis_intset() {
        // SADD si 1 2 -70000 on redis-server 7.0.15, the blob of its DUMP.
        let blob =
            b"\x04\x00\x00\x00\x03\x00\x00\x00\x90\xee\xfe\xff\x01\x00\x00\x00\x02\x00\x00\x00";
        let want: Vec<Vec<u8>> = vec![b"-70000".to_vec(), b"1".to_vec(), b"2".to_vec()];
        assert_eq!(decode(blob), Ok(want));
        let wide = b"\x08\x00\x00\x00\x01\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\x7f";
        assert_eq!(decode(wide), Ok(vec![i64::MAX.to_string().into_bytes()]));
    }

    #[test]
    fn corrupt_intsets_are_refused() {
        let blob = b"\x02\x00\x00\x00\x02\x00\x00\x00\x01\x00\x02\x00";
        assert!(decode(blob).is_ok());
        for cut in 0..blob.len() {
            assert_eq!(
                decode(blob.get(..cut).unwrap_or_default()),
                Err(RdbError::Format)
            );
        }
        assert_eq!(
            decode(b"\x03\x00\x00\x00\x00\x00\x00\x00"),
            Err(RdbError::Format)
        );
        assert_eq!(
            decode(b"\x08\x00\x00\x00\xff\xff\xff\xff"),
            Err(RdbError::Format)
        );
    }
}
