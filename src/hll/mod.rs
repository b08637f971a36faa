#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! HyperLogLog as Redis 7.0 keeps it inside a string value, byte for byte,
//! so a value copied between Redis and Kiwi keeps counting the same.
//!
//! A value is a 16-byte header — `HYLL`, the encoding (0 dense, 1 sparse),
//! three unused bytes, the cached cardinality (little endian, its top bit
//! set when stale) — followed by 16384 registers, either dense (6 bits
//! each, packed from the least significant bit) or sparse (run-length
//! opcodes, see [`sparse`]). Elements are hashed with MurmurHash64A; the
//! low 14 bits pick a register, the run of zeros above them (plus one)
//! is the value it may rise to. The count is Ertl's improved estimator.
//!
//! Everything here is a pure function of bytes: values come from clients
//! (SET can store anything that starts with `HYLL`), so bad input answers
//! [`HllError::Corrupt`], never a panic or a read out of bounds.

mod dense;
mod sparse;

#[cfg(test)]
mod tests;

/// Length of the header before the registers.
pub const HEADER_LEN: usize = 16;
/// Number of registers (2^P).
pub const REGISTERS: usize = 1 << P;
/// Bits of the hash that index a register.
const P: u32 = 14;
/// Bits of the hash left for the run of zeros.
const Q: usize = 64 - P as usize;
/// Bits per dense register.
const REGISTER_BITS: usize = 6;
/// Length of a dense value, header included.
pub const DENSE_LEN: usize = HEADER_LEN + (REGISTERS * REGISTER_BITS).div_ceil(8);
/// Redis's `hll-sparse-max-bytes` default.
pub const DEFAULT_SPARSE_MAX_BYTES: u64 = 3000;

const MAGIC: &[u8; 4] = b"HYLL";
const ENCODING_AT: usize = 4;
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
/// The byte of the cached cardinality whose top bit marks it stale.
const CACHE_FLAG_AT: usize = HEADER_LEN - 1;
const STALE: u8 = 0x80;
/// Redis's hash seed.
const SEED: u64 = 0xadc8_3b19;
/// 0.5 / ln 2, the estimator's constant for m → ∞.
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// Why a value cannot be used as a HyperLogLog, with Redis's replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HllError {
    /// Not `HYLL`, an unknown encoding, or a dense value of the wrong size.
    #[error("WRONGTYPE Key is not a valid HyperLogLog string value.")]
    NotHll,
    /// Sparse opcodes that do not cover exactly the 16384 registers.
    #[error("INVALIDOBJ Corrupted HLL object detected")]
    Corrupt,
}

/// How a value stores its registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Dense,
    Sparse,
}

impl Encoding {
    /// The name PFDEBUG ENCODING answers.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Dense => "dense",
            Encoding::Sparse => "sparse",
        }
    }
}

/// The encoding of `value`, if it may be used as a HyperLogLog (Redis's
/// isHLLObjectOrReply: sparse opcodes are judged only when read).
pub fn encoding(value: &[u8]) -> Result<Encoding, HllError> {
    if value.len() < HEADER_LEN || !value.starts_with(MAGIC) {
        return Err(HllError::NotHll);
    }
    match value.get(ENCODING_AT) {
        Some(&DENSE) if value.len() == DENSE_LEN => Ok(Encoding::Dense),
        Some(&SPARSE) => Ok(Encoding::Sparse),
        _ => Err(HllError::NotHll),
    }
}

/// A new, empty value: sparse, all registers zero, cardinality 0 (valid).
pub fn empty() -> Vec<u8> {
    let mut value = Vec::with_capacity(HEADER_LEN + 2);
    value.extend_from_slice(MAGIC);
    value.push(SPARSE);
    value.resize(HEADER_LEN, 0);
    sparse::push_zeros(&mut value, REGISTERS);
    value
}

/// The cached cardinality, when it is not stale.
pub fn cached_count(value: &[u8]) -> Option<u64> {
    let card: [u8; 8] = value.get(8..HEADER_LEN)?.try_into().ok()?;
    (card[7] & STALE == 0).then(|| u64::from_le_bytes(card))
}

/// Store `count` as the cached cardinality.
pub fn set_cached_count(value: &mut [u8], count: u64) {
    if let Some(card) = value.get_mut(8..HEADER_LEN) {
        card.copy_from_slice(&count.to_le_bytes());
    }
}

/// Mark the cached cardinality stale.
pub fn invalidate_cache(value: &mut [u8]) {
    if let Some(b) = value.get_mut(CACHE_FLAG_AT) {
        *b |= STALE;
    }
}

/// MurmurHash64A (Austin Appleby's, 64-bit, little-endian reads), as
/// Redis hashes elements.
pub fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let mut k = u64::from_le_bytes(word);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element falls in and the value it proposes for it:
/// the length of the run of zeros after the index bits, plus one (1..=51).
pub fn register_of(element: &[u8]) -> (usize, u8) {
    let hash = murmur64a(element, SEED);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    // The set bit at Q bounds the run.
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// A value being edited by one command. Redis edits the string in place,
/// and an edit of a truncated XZERO at its end writes one byte past the
/// string, which later edits in the same command read: kept as `past_end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    bytes: Vec<u8>,
    past_end: u8,
}

impl Edit {
    /// Start editing `bytes` (already checked with [`encoding`]).
    pub fn new(bytes: Vec<u8>) -> Edit {
        Edit { bytes, past_end: 0 }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Add `element`: true when a register rose. A sparse value may turn
    /// dense, when a register needs more than the sparse opcodes hold or
    /// it would grow past `sparse_max_bytes`.
    pub fn add(&mut self, element: &[u8], sparse_max_bytes: u64) -> Result<bool, HllError> {
        let (index, count) = register_of(element);
        self.set_register(index, count, sparse_max_bytes)
    }

    /// Raise register `index` to `count` when it is lower: true when it rose.
    pub fn set_register(
        &mut self,
        index: usize,
        count: u8,
        sparse_max_bytes: u64,
    ) -> Result<bool, HllError> {
        match self.bytes.get(ENCODING_AT) {
            Some(&DENSE) => Ok(dense::raise(registers_mut(&mut self.bytes), index, count)),
            Some(&SPARSE) => {
                match sparse::raise(
                    &mut self.bytes,
                    &mut self.past_end,
                    index,
                    count,
                    sparse_max_bytes,
                )? {
                    sparse::Raised::Unchanged => Ok(false),
                    sparse::Raised::Updated => Ok(true),
                    sparse::Raised::NeedsDense => {
                        self.to_dense()?;
                        Ok(dense::raise(registers_mut(&mut self.bytes), index, count))
                    }
                }
            }
            _ => Err(HllError::Corrupt),
        }
    }

    /// Turn a sparse value dense (the header, cache included, is kept):
    /// true when it was sparse.
    pub fn to_dense(&mut self) -> Result<bool, HllError> {
        if self.bytes.get(ENCODING_AT) != Some(&SPARSE) {
            return Ok(false);
        }
        self.bytes = sparse::to_dense(&self.bytes, self.past_end)?;
        self.past_end = 0;
        Ok(true)
    }

    /// Mark the cached cardinality stale.
    pub fn invalidate_cache(&mut self) {
        invalidate_cache(&mut self.bytes);
    }
}

/// Add `element` to `value` (already checked with [`encoding`]), as one
/// edit: true when a register rose.
pub fn add(value: &mut Vec<u8>, element: &[u8], sparse_max_bytes: u64) -> Result<bool, HllError> {
    let mut edit = Edit::new(std::mem::take(value));
    let result = edit.add(element, sparse_max_bytes);
    *value = edit.into_bytes();
    result
}

/// Turn a sparse value dense (the header, cache included, is kept): true
/// when it was sparse.
pub fn to_dense(value: &mut Vec<u8>) -> Result<bool, HllError> {
    let mut edit = Edit::new(std::mem::take(value));
    let result = edit.to_dense();
    *value = edit.into_bytes();
    result
}

fn registers_mut(value: &mut [u8]) -> &mut [u8] {
    value.get_mut(HEADER_LEN..).unwrap_or_default()
}

fn registers(value: &[u8]) -> &[u8] {
    value.get(HEADER_LEN..).unwrap_or_default()
}

/// The estimated cardinality of `value` (already checked with
/// [`encoding`]), ignoring its cache.
pub fn count(value: &[u8]) -> Result<u64, HllError> {
    let mut histogram = [0u64; 64];
    match value.get(ENCODING_AT) {
        Some(&DENSE) => dense::histogram(registers(value), &mut histogram),
        Some(&SPARSE) => {
            if !sparse::histogram(registers(value), &mut histogram) {
                return Err(HllError::Corrupt);
            }
        }
        _ => return Err(HllError::Corrupt),
    }
    Ok(estimate(&histogram))
}

/// Whether a sparse value ends inside an opcode (a truncated XZERO): its
/// edits read and write past the string, as Redis's do, so a value that
/// counts may turn invalid once edited.
pub fn ends_mid_opcode(value: &[u8]) -> bool {
    value.get(ENCODING_AT) == Some(&SPARSE) && sparse::ends_mid_opcode(registers(value))
}

/// One register per byte: what PFCOUNT of several keys and PFMERGE build.
pub type RawRegisters = [u8; REGISTERS];

/// Raise each of `max` to `value`'s register (already checked with
/// [`encoding`]).
pub fn merge_into(max: &mut RawRegisters, value: &[u8]) -> Result<(), HllError> {
    match value.get(ENCODING_AT) {
        Some(&DENSE) => {
            dense::merge_into(max, registers(value));
            Ok(())
        }
        _ => sparse::merge_into(max, registers(value)),
    }
}

/// The estimated cardinality of one-byte registers.
pub fn count_raw(max: &RawRegisters) -> u64 {
    let mut histogram = [0u64; 64];
    for &r in max {
        if let Some(slot) = histogram.get_mut(usize::from(r)) {
            *slot += 1;
        }
    }
    estimate(&histogram)
}

/// Every register of a dense value (PFDEBUG GETREG).
pub fn dense_registers(value: &[u8]) -> Vec<u8> {
    let regs = registers(value);
    (0..REGISTERS).map(|i| dense::get(regs, i)).collect()
}

/// The opcodes of a sparse value as PFDEBUG DECODE prints them.
pub fn decode_sparse(value: &[u8]) -> String {
    sparse::describe(registers(value))
}

/// Ertl's estimator ("New cardinality estimation algorithms for
/// HyperLogLog sketches", arXiv:1702.01284) over the histogram of register
/// values, computed in the same order as Redis so results are equal.
fn estimate(histogram: &[u64; 64]) -> u64 {
    let m = REGISTERS as f64;
    let at = |i: usize| histogram.get(i).copied().unwrap_or(0) as f64;
    let mut z = m * tau((m - at(Q + 1)) / m);
    for j in (1..=Q).rev() {
        z += at(j);
        z *= 0.5;
    }
    z += m * sigma(at(0) / m);
    (ALPHA_INF * m * m / z).round() as u64
}

/// More than either series needs before it stops changing (doubles run
/// out of bits long before); a bound for values no register set gives.
const SERIES_LIMIT: usize = 4096;

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    for _ in 0..SERIES_LIMIT {
        x *= x;
        let previous = z;
        z += x * y;
        y += y;
        if previous == z {
            break;
        }
    }
    z
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    for _ in 0..SERIES_LIMIT {
        x = x.sqrt();
        let previous = z;
        y *= 0.5;
        z -= (1.0 - x).powf(2.0) * y;
        if previous == z {
            break;
        }
    }
    z / 3.0
}

/// PFSELFTEST: the dense registers keep what is stored in them, and dense
/// and sparse values agree, within the expected error, as ten million
/// elements arrive. `seed` varies the elements. `Err` holds the failure's
/// reply text.
pub fn self_test(seed: u64, sparse_max_bytes: u64) -> Result<(), String> {
    let mut rng = seed | 1;
    let mut next = move || {
        // xorshift64*: enough to vary register contents.
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut dense_value = vec![0u8; DENSE_LEN];
    if let Some(magic) = dense_value.get_mut(..MAGIC.len()) {
        magic.copy_from_slice(MAGIC);
    }
    let mut expected = vec![0u8; REGISTERS];
    for _ in 0..1000 {
        let regs = registers_mut(&mut dense_value);
        for (i, e) in expected.iter_mut().enumerate() {
            let r = (next() & 63) as u8;
            *e = r;
            dense::set(regs, i, r);
        }
        for (i, &e) in expected.iter().enumerate() {
            let got = dense::get(regs, i);
            if got != e {
                return Err(format!(
                    "TESTFAILED Register {i} should be {e} but is {got}"
                ));
            }
        }
    }
    registers_mut(&mut dense_value).fill(0);
    let mut sparse_value = empty();
    let relative_error = 1.04 / (REGISTERS as f64).sqrt();
    let base = next();
    let mut checkpoint: u64 = 1;
    for j in 1..=10_000_000u64 {
        let element = (j ^ base).to_ne_bytes();
        add(&mut dense_value, &element, sparse_max_bytes).map_err(|e| e.to_string())?;
        add(&mut sparse_value, &element, sparse_max_bytes).map_err(|e| e.to_string())?;
        if j != checkpoint {
            continue;
        }
        if j < sparse_max_bytes / 2 && encoding(&sparse_value) != Ok(Encoding::Sparse) {
            return Err("TESTFAILED sparse encoding not used".into());
        }
        let dense_count = count(&dense_value).map_err(|e| e.to_string())?;
        if dense_count != count(&sparse_value).map_err(|e| e.to_string())? {
            return Err("TESTFAILED dense/sparse disagree".into());
        }
        let max_error = if j == 10 {
            1
        } else {
            (relative_error * 6.0 * checkpoint as f64).ceil() as u64
        };
        let error = checkpoint.abs_diff(dense_count);
        if error > max_error {
            return Err(format!(
                "TESTFAILED Too big error. card:{checkpoint} abserr:{error}"
            ));
        }
        checkpoint *= 10;
    }
    Ok(())
}
