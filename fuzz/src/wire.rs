//! The Raft transport's frames: what a listener reads from any peer
//! (`Frame`) and what a caller reads back (`RpcReply`). Any bytes decode
//! to a message or an error, with allocations in proportion to the bytes;
//! a decoded message encodes to bytes that decode to the same encoding.

use kiwi::decoders::{decode_frame, decode_reply};
use serde::Serialize;

use crate::alloc::bounded;

/// What decoding `len` bytes may allocate at once: serde caps what a
/// length prefix makes it reserve ahead at 1 MiB; the rest is data read.
pub fn decode_limit(len: usize) -> usize {
    (1 << 20) + 16 * len + 4096
}

fn reencodes<T: Serialize>(
    what: &str,
    value: &T,
    decode: impl Fn(&[u8]) -> Result<T, postcard::Error>,
) {
    let encode = |v: &T| postcard::to_allocvec(v).map_err(|e| format!("{what}: {e}"));
    let first = encode(value);
    let again = first
        .as_ref()
        .map(|bytes| decode(bytes).map(|v| encode(&v)));
    match (&first, again) {
        (Ok(bytes), Ok(Ok(Ok(second)))) => {
            assert_eq!(bytes, &second, "{what} re-encodes otherwise")
        }
        (first, again) => panic!("{what} does not round-trip: {first:?} / {again:?}"),
    }
}

/// Fuzz entry: the bytes are one frame as a listener receives it.
pub fn fuzz_frame(data: &[u8]) {
    let decoded = bounded("raft frame", decode_limit(data.len()), || {
        decode_frame(data)
    });
    if let Ok(frame) = decoded {
        reencodes("frame", &frame, decode_frame);
    }
}

/// Fuzz entry: the bytes are one answer as a caller receives it.
pub fn fuzz_reply(data: &[u8]) {
    let decoded = bounded("raft reply", decode_limit(data.len()), || {
        decode_reply(data)
    });
    if let Ok(reply) = decoded {
        reencodes("reply", &reply, decode_reply);
    }
}
