//! HyperLogLog values (a client can SET any string starting with `HYLL`
//! and then PFADD or PFCOUNT it): bad bytes answer an error, never a panic
//! or a read out of bounds, and a valid value counts the same sparse or
//! dense and stays valid when edited.

use kiwi::decoders::hll_value;
use kiwi::hll;

use crate::alloc::bounded;
use crate::wire::decode_limit;

/// Check `value` with `elements` adds under a sparse limit of `max_bytes`.
pub fn check(value: &[u8], max_bytes: u64, elements: u8) {
    let limit = decode_limit(value.len());
    let result = bounded("hll value", limit, || hll_value(value, max_bytes, elements));
    let Ok(encoding) = hll::encoding(value) else {
        assert!(result.is_err(), "not a HyperLogLog, yet counted");
        return;
    };
    let Ok(count) = hll::count(value) else {
        return;
    };
    // A valid value: its dense form counts the same, and adds keep it
    // valid unless it ends in a truncated XZERO (whose edits write past
    // the end, as Redis's do).
    let mut dense = value.to_vec();
    assert_eq!(
        hll::to_dense(&mut dense),
        Ok(encoding == hll::Encoding::Sparse)
    );
    assert_eq!(hll::count(&dense), Ok(count));
    if !hll::ends_mid_opcode(value) {
        assert!(result.is_ok(), "a valid value failed: {result:?}");
    }
}

/// Fuzz entry: the first byte picks the sparse limit and how many elements
/// to add, the rest follows `HYLL` (and is tried alone too).
pub fn fuzz(data: &[u8]) {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let max_bytes = match control >> 5 {
        0 => 0,
        1 => 20,
        2 => 64,
        3 => 300,
        _ => 3000,
    };
    let elements = control & 0x1f;
    check(&[&b"HYLL"[..], rest].concat(), max_bytes, elements);
    check(rest, max_bytes, elements);
}

/// The fuzz input for `value` (which starts after `HYLL`).
pub fn encode_input(control: u8, value: &[u8]) -> Vec<u8> {
    [&[control][..], value].concat()
}
