//! RDB payloads a client hands to FUNCTION RESTORE: corrupt bytes are an
//! error, never a panic, and decoding allocates in proportion to the input
//! (LZF strings expand at most ~90 times, and no more is reserved).

use kiwi::decoders::rdb_payload;
use kiwi::rdb::seal;

use crate::alloc::bounded;

/// Check `data` as a payload, and sealed (so its body is decoded too).
pub fn check(data: &[u8]) {
    let limit = (1 << 20) + 96 * data.len() + 4096;
    let _ = bounded("rdb payload", limit, || rdb_payload(data));
    let sealed = seal(data.to_vec());
    let _ = bounded("sealed rdb payload", limit, || rdb_payload(&sealed));
}
