//! RDB payloads a client hands to FUNCTION RESTORE and RESTORE: corrupt
//! bytes are an error, never a panic, and decoding allocates in proportion
//! to the input (LZF strings expand at most ~90 times, and no more is
//! reserved; integers in listpacks, ziplists and intsets at most ~20 times).

use kiwi::decoders::{dump_payload, rdb_payload};
use kiwi::rdb::seal;
use kiwi::rdb::value::{encode_payload, Value};

use crate::alloc::bounded;

fn limit(data: &[u8]) -> usize {
    (1 << 20) + 96 * data.len() + 4096
}

/// Check `data` as a payload, and sealed (so its body is decoded too).
pub fn check(data: &[u8]) {
    let limit = limit(data);
    let _ = bounded("rdb payload", limit, || rdb_payload(data));
    let sealed = seal(data.to_vec());
    let _ = bounded("sealed rdb payload", limit, || rdb_payload(&sealed));
}

/// Check `body` (a type byte and an object) as a RESTORE payload, sealed
/// so the object itself is decoded.
pub fn check_dump(body: &[u8]) {
    let limit = limit(body);
    let _ = bounded("dump payload", limit, || dump_payload(body));
    let sealed = seal(body.to_vec());
    let _ = bounded("sealed dump payload", limit, || dump_payload(&sealed));
}

/// A body whose outer layers are well formed, so the nested blob (a
/// listpack, ziplist, zipmap or intset of random content with its own size
/// field right) is what gets decoded: type, for quicklists a node count and
/// container, then the blob as an RDB string.
pub fn nested_body(kind: u8, container: u8, mut blob: Vec<u8>) -> Vec<u8> {
    if blob.len() >= 4 && kind != 9 && kind != 11 {
        let total = (blob.len() as u32).to_le_bytes();
        blob.splice(0..4, total);
    }
    let mut body = vec![kind];
    if kind == 14 || kind == 18 {
        body.push(1);
    }
    if kind == 18 {
        body.push(container);
    }
    kiwi::rdb::write_string(&mut body, &blob);
    body
}

/// What Kiwi dumps, Kiwi restores unchanged.
pub fn round_trip(value: &Value) {
    let payload = encode_payload(value);
    assert_eq!(dump_payload(&payload).as_ref(), Ok(value));
}
