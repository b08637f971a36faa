#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

use rand::{Rng, SeedableRng};

use super::*;

fn filled(n: u64, seed: u64, max_bytes: u64) -> (Vec<u8>, Vec<u8>) {
    let mut sparse = empty();
    let mut reference = vec![0u8; DENSE_LEN];
    reference[..4].copy_from_slice(MAGIC);
    for i in 0..n {
        let element = format!("e{seed}:{i}");
        add(&mut sparse, element.as_bytes(), max_bytes).unwrap();
        add(&mut reference, element.as_bytes(), max_bytes).unwrap();
    }
    (sparse, reference)
}

#[test]
fn bytes_match_redis() {
    // redis-server 7.0: PFADD x a b c; GET x; PFDEBUG DECODE x; PFCOUNT x.
    let mut v = empty();
    for e in [&b"a"[..], b"b", b"c"] {
        assert_eq!(add(&mut v, e, 3000), Ok(true));
    }
    invalidate_cache(&mut v);
    assert_eq!(
        v,
        b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80`\xf3\x80P\xb1\x84K\xfb\x80BZ".to_vec()
    );
    assert_eq!(
        decode_sparse(&v),
        "Z:8436 v:1,1 Z:4274 v:2,1 Z:3068 v:1,1 Z:603"
    );
    assert_eq!(count(&v), Ok(3));
    assert_eq!(cached_count(&v), None);
    set_cached_count(&mut v, 3);
    assert_eq!(&v[8..16], &[3, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(cached_count(&v), Some(3));
}

#[test]
fn empty_value_is_redis_bytes() {
    let v = empty();
    assert_eq!(&v[..5], b"HYLL\x01");
    assert_eq!(&v[5..16], &[0u8; 11]);
    assert_eq!(&v[16..], &[0x7f, 0xff]);
    assert_eq!(encoding(&v), Ok(Encoding::Sparse));
    assert_eq!(count(&v), Ok(0));
    assert_eq!(cached_count(&v), Some(0));
    assert_eq!(decode_sparse(&v), "Z:16384");
}

#[test]
fn sparse_and_dense_agree_and_round_trip() {
    for (n, seed) in [(1, 1), (10, 2), (100, 3), (700, 4), (3000, 5), (20000, 6)] {
        let (sparse, dense) = filled(n, seed, u64::MAX);
        assert_eq!(count(&sparse), count(&dense), "n={n}");
        let mut converted = sparse.clone();
        if encoding(&sparse) == Ok(Encoding::Sparse) {
            assert_eq!(to_dense(&mut converted), Ok(true));
        }
        assert_eq!(encoding(&converted), Ok(Encoding::Dense));
        assert_eq!(dense_registers(&converted), dense_registers(&dense));
        // The cache is stale after adds (the header is otherwise kept).
        assert_eq!(cached_count(&converted), None);
        let c = count(&dense).unwrap();
        let err = (c as f64 - n as f64).abs() / n as f64;
        assert!(err < 0.05, "n={n} count={c}");
    }
}

#[test]
fn sparse_promotes_at_the_byte_limit() {
    let (small, _) = filled(50, 7, DEFAULT_SPARSE_MAX_BYTES);
    assert_eq!(encoding(&small), Ok(Encoding::Sparse));
    let (big, reference) = filled(5000, 7, DEFAULT_SPARSE_MAX_BYTES);
    assert_eq!(encoding(&big), Ok(Encoding::Dense));
    assert_eq!(big.len(), DENSE_LEN);
    assert_eq!(dense_registers(&big), dense_registers(&reference));
    // A sparse value never grows past the limit.
    let mut v = empty();
    for i in 0..100_000u32 {
        add(&mut v, &i.to_le_bytes(), 300).unwrap();
        if encoding(&v) == Ok(Encoding::Dense) {
            break;
        }
        assert!(v.len() <= 300);
    }
    assert_eq!(encoding(&v), Ok(Encoding::Dense));
}

#[test]
fn merge_is_the_union() {
    let (a, _) = filled(2000, 8, 3000);
    let (b, _) = filled(500, 9, 3000);
    let mut max = [0u8; REGISTERS];
    merge_into(&mut max, &a).unwrap();
    merge_into(&mut max, &b).unwrap();
    let mut both = a.clone();
    for i in 0..500 {
        add(&mut both, format!("e9:{i}").as_bytes(), 3000).unwrap();
    }
    assert_eq!(count_raw(&max), count(&both).unwrap());
}

#[test]
fn values_that_are_not_hll() {
    assert_eq!(encoding(b"HYLL"), Err(HllError::NotHll));
    assert_eq!(
        encoding(b"hello world, this is long"),
        Err(HllError::NotHll)
    );
    let mut v = empty();
    v[4] = 2;
    assert_eq!(encoding(&v), Err(HllError::NotHll));
    let mut d = vec![0u8; DENSE_LEN - 1];
    d[..4].copy_from_slice(MAGIC);
    assert_eq!(encoding(&d), Err(HllError::NotHll));
}

#[test]
fn corrupt_sparse_values_are_errors() {
    let header = &empty()[..HEADER_LEN];
    let cases: Vec<Vec<u8>> = vec![
        vec![],                 // no opcodes
        vec![0x7f],             // truncated XZERO
        vec![0x7f, 0xff, 0x00], // one register too many
        vec![0x7f, 0xfe],       // one too few
        vec![0xff; 10],         // VAL runs short of the registers
        vec![0x7f, 0xff, 0xff], // VAL past the end
        vec![0x00; 300],        // ZERO runs short
    ];
    for body in cases {
        let v = [header, &body].concat();
        assert_eq!(encoding(&v), Ok(Encoding::Sparse));
        assert_eq!(count(&v), Err(HllError::Corrupt), "{body:?}");
        let mut max = [0u8; REGISTERS];
        assert_eq!(merge_into(&mut max, &v), Err(HllError::Corrupt));
        assert_eq!(to_dense(&mut v.clone()), Err(HllError::Corrupt));
        let _ = decode_sparse(&v);
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    for round in 0..3000 {
        let len = rng.random_range(0..64);
        let mut body: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        if round % 2 == 0 {
            // Bias towards plausible opcodes.
            for b in &mut body {
                *b &= 0xc3;
            }
        }
        let mut v = [&empty()[..HEADER_LEN], &body].concat();
        let _ = count(&v);
        let _ = decode_sparse(&v);
        for i in 0..20u32 {
            if add(&mut v, &i.to_le_bytes(), rng.random_range(0..4000)).is_err() {
                break;
            }
        }
        let _ = count(&v);
    }
}

#[test]
fn truncated_xzero_edits_match_redis() {
    // redis-server 7.0: SET g <sparse header><0x7f>; PFADD g a b c d e f g;
    // GET g. Each split of the truncated XZERO at the end leaves its last
    // byte past the string, where the next element's edit reads it.
    let mut header = empty()[..HEADER_LEN].to_vec();
    invalidate_cache(&mut header);
    let mut edit = Edit::new([&header[..], &[0x7f]].concat());
    for e in [&b"a"[..], b"b", b"c", b"d", b"e", b"f", b"g"] {
        edit.add(e, 3000).unwrap();
    }
    let mut expected = header.clone();
    expected.extend_from_slice(b"Fm\x80V\x0c\x80D<\x848\x80P\xb1\x84I\x8c\x80Bm\x80A");
    assert_eq!(edit.bytes(), &expected[..]);
    assert_eq!(
        decode_sparse(edit.bytes()),
        "Z:1646 v:1,1 Z:5645 v:1,1 Z:1085 v:2,1 z:57 v:1,1 Z:4274 v:2,1 Z:2445 v:1,1 Z:622 v:1,1 Z:257"
    );
    assert_eq!(count(edit.bytes()), Err(HllError::Corrupt));
}
