//! Payloads redis-server 7.0.15 produced, Kiwi's own round trips, and
//! forged or damaged payloads.

#![allow(clippy::indexing_slicing)]

use super::*;

fn b(s: &[u8]) -> Vec<u8> {
    s.to_vec()
}

fn decoded(payload: &[u8]) -> Option<Value> {
    decode_payload(payload).ok()
}

#[test]
fn redis_strings_decode() {
    // SET s 12345 (int-encoded) and SET t with 40 'a' (LZF).
    assert_eq!(
        decoded(b"\x00\xc190\n\x00\x9d\x94\xea'\x93\xfc\x08\xb9"),
        Some(Value::String(b(b"12345")))
    );
    assert_eq!(
        decoded(b"\x00\xc3\t(\x01aa\xe0\x1b\x00\x01aa\n\x00\xcf\t/\xaa\xae%\x83\x1d"),
        Some(Value::String(vec![b'a'; 40]))
    );
}

#[test]
fn redis_small_encodings_decode() {
    // RPUSH l a 1 -2 xyz: quicklist 2, one listpack node.
    let list = b"\x12\x01\x02\x14\x14\x00\x00\x00\x04\x00\x81a\x02\x01\x01\xdf\xfe\x02\x83xyz\x04\xff\n\x00;\x98\xa4\x866\xec\x86+";
    assert_eq!(
        decoded(list),
        Some(Value::List(vec![b(b"a"), b(b"1"), b(b"-2"), b(b"xyz")]))
    );
    // SADD si 1 2 -70000: intset.
    let intset = b"\x0b\x14\x04\x00\x00\x00\x03\x00\x00\x00\x90\xee\xfe\xff\x01\x00\x00\x00\x02\x00\x00\x00\n\x00]\x9d\xf7\xda/C\xd0k";
    assert_eq!(
        decoded(intset),
        Some(Value::Set(vec![b(b"-70000"), b(b"1"), b(b"2")]))
    );
    // ZADD z 1.5 a -2 b: listpack.
    let zset = b"\x11\x15\x15\x00\x00\x00\x04\x00\x81b\x02\xdf\xfe\x02\x81a\x02\x831.5\x04\xff\n\x00l5\x9d\xf63\xd0\x8b]";
    assert_eq!(
        decoded(zset),
        Some(Value::ZSet(vec![(b(b"b"), -2.0), (b(b"a"), 1.5)]))
    );
}

#[test]
fn redis_plain_encodings_decode() {
    // With the listpack/intset limits at 0 and a packed threshold of 10.
    let zset = b"\x05\x03\x00\x00\x00\x00\x00\x00\x00\x08@\x01a\x00\x00\x00\x00\x00\x00\xf8?\x01b\x00\x00\x00\x00\x00\x00\xf0\xff\n\x00\x8e\x8c\xfb9=#9x";
    assert_eq!(
        decoded(zset),
        Some(Value::ZSet(vec![
            (b(b""), 3.0),
            (b(b"a"), 1.5),
            (b(b"b"), f64::NEG_INFINITY)
        ]))
    );
    let hash = b"\x04\x02\x01n\xc0\x0c\x01f\x01v\n\x00Q\xa9iH\xd7\xae\xf9\x81";
    assert_eq!(
        decoded(hash),
        Some(Value::Hash(vec![(b(b"n"), b(b"12")), (b(b"f"), b(b"v"))]))
    );
    let set = b"\x02\x02\xc0\x07\x01x\n\x00i\xd4\\Ng3Ql";
    assert_eq!(decoded(set), Some(Value::Set(vec![b(b"7"), b(b"x")])));
    // A PLAIN node between two packed ones.
    let list = b"\x12\x03\x02\x0e\x0e\x00\x00\x00\x01\x00\x85short\x06\xff\x01\x0caaaaaaaaaaaa\x02\n\n\x00\x00\x00\x01\x00\x81b\x02\xff\n\x00}\x19`\x92\xf1C/\xe4";
    assert_eq!(
        decoded(list),
        Some(Value::List(vec![b(b"short"), vec![b'a'; 12], b(b"b")]))
    );
}

#[test]
fn kiwi_payloads_round_trip() {
    let big: Vec<Vec<u8>> = (0..1000).map(|i| format!("e{i}").into_bytes()).collect();
    let values = [
        Value::String(b(b"")),
        Value::String(vec![0xff; 100_000]),
        Value::List(vec![b(b""), vec![7; 20_000], b(b"x")]),
        Value::List(big.clone()),
        Value::Set(big.clone()),
        Value::Hash(big.iter().map(|e| (e.clone(), b(b"v"))).collect()),
        Value::ZSet(vec![
            (b(b"a"), f64::INFINITY),
            (b(b"b"), -0.5),
            (b(b""), 1e300),
        ]),
    ];
    for v in values {
        assert_eq!(decoded(&encode_payload(&v)), Some(v));
    }
}

#[test]
fn old_and_forged_payloads() {
    let sealed = |body: &[u8]| seal(body.to_vec());
    // RDB_TYPE_ZSET with text scores, including +inf.
    assert_eq!(
        decoded(&sealed(b"\x03\x02\x01a\x031.5\x01b\xfe")),
        Some(Value::ZSet(vec![(b(b"a"), 1.5), (b(b"b"), f64::INFINITY)]))
    );
    // NaN, duplicates, empties, streams and modules.
    assert_eq!(
        decode_payload(&sealed(b"\x03\x01\x01a\xfd")),
        Err(RdbError::Format)
    );
    assert_eq!(
        decode_payload(&sealed(b"\x02\x02\x01a\x01a")),
        Err(RdbError::Format)
    );
    assert_eq!(decode_payload(&sealed(b"\x02\x00")), Err(RdbError::Format));
    assert_eq!(
        decode_payload(&sealed(b"\x0f\x00")),
        Err(RdbError::Unsupported("pre-7.0 stream"))
    );
    assert_eq!(
        decode_payload(&sealed(b"\x07\x00")),
        Err(RdbError::Unsupported("module"))
    );
    // A count far past the payload is refused before anything is read.
    assert_eq!(
        decode_payload(&sealed(b"\x01\x81\xff\xff\xff\xff\xff\xff\xff\xff\x01a")),
        Err(RdbError::Format)
    );
    assert_eq!(decode_payload(&sealed(b"\x08")), Err(RdbError::Format));
    // A truncated payload fails its footer; a truncated body, resealed,
    // may run into the footer as Redis's reader does, but never past it.
    let full = encode_payload(&Value::Hash(vec![(b(b"f"), b(b"v")), (b(b"g"), b(b"w"))]));
    let body = &full[..full.len() - 10];
    for cut in 0..full.len() {
        assert_eq!(decode_payload(&full[..cut]), Err(RdbError::Footer));
    }
    for cut in 0..body.len() {
        if let Ok(Value::Hash(pairs)) = decode_payload(&sealed(&body[..cut])) {
            assert_eq!(pairs.len(), 2);
        }
    }
    // A string that claims more than the payload holds, footer included.
    assert_eq!(
        decode_payload(&sealed(b"\x00\x0dab")),
        Err(RdbError::Format)
    );
    assert_eq!(
        decode_payload(&sealed(b"\x00\x0cab")),
        Ok(Value::String(
            b"ab\x0a\x00"
                .iter()
                .chain(&crc_tail(b"\x00\x0cab"))
                .copied()
                .collect()
        ))
    );
}

/// The 8 CRC bytes of `body` sealed.
fn crc_tail(body: &[u8]) -> Vec<u8> {
    seal(body.to_vec())[body.len() + 2..].to_vec()
}

#[test]
fn redis_stream_decodes() {
    // XADD ds 1-1 f 1 g x; XADD ds 2-5 f 300 g -7; XADD ds 3-0 h yy;
    // XDEL ds 2-5; XGROUP CREATE ds grp 0; XREADGROUP GROUP grp alice
    // COUNT 1 STREAMS ds >; XGROUP CREATECONSUMER ds grp bob (7.0.15).
    let payload = b"\x13\x01\x10\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01@BB\x00\x00\x00\x19\x00\x02\x01\x01\x01\x02\x01\x81f\x02\x81g\x02\x00\x01\x02\x01\x00\x01\x00\x01\x01\x01\x81x\x02\x05\x01\x03\x01\x01\x01\x04\x01\xc1,\x02\xdf\xf9\x02\x05\x01\x00\x01\x02\x01\xdf\xff\x02\x01\x01\x81h\x02\x82yy\x03\x06\x01\xff\x02\x03\x00\x01\x01\x02\x05\x03\x01\x03grp\x01\x01\x81\xff\xff\xff\xff\xff\xff\xff\xff\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\xef\x06\xca$\xa2\x01\x00\x00\x01\x02\x05alice\xef\x06\xca$\xa2\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x03bob\xf6\x06\xca$\xa2\x01\x00\x00\x00\n\x00\x9d\xa0\xef@\xe3J\xe4\xa5";
    let Some(Value::Stream(s)) = decoded(payload) else {
        panic!("a stream");
    };
    let ids: Vec<_> = s.nodes[0].entries.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![(1, 1), (3, 0)]);
    assert_eq!(s.nodes[0].entries[1].1, vec![b(b"h"), b(b"yy")]);
    assert_eq!(s.nodes[0].deleted, 1);
    assert_eq!(
        (s.length, s.last_id, s.max_deleted, s.entries_added),
        (2, (3, 0), (2, 5), 3)
    );
    let g = &s.groups[0];
    assert_eq!(
        (g.name.as_slice(), g.last_id, g.entries_read),
        (&b"grp"[..], (1, 1), -1)
    );
    assert_eq!(g.pending[0].consumer, b(b"alice"));
    assert_eq!(g.consumers.len(), 2);
    // Kiwi's payload of it decodes to the same stream (without the
    // deleted entry's bytes).
    let again = decoded(&encode_payload(&Value::Stream(s.clone())));
    let Some(Value::Stream(mut again)) = again else {
        panic!("a stream");
    };
    again.nodes[0].deleted = 1;
    again.nodes[0].bytes = s.nodes[0].bytes;
    assert_eq!(again, s);
}
