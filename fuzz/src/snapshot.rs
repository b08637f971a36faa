//! Snapshot decoding, as a follower checks a snapshot before installing
//! it. Any bytes: an error or the records, never a panic. A snapshot
//! written in the documented format reads back as its records (the
//! replicated `raft_state` ones first, as they are installed apart), and
//! cut short or followed by anything, it is refused.

use arbitrary::Unstructured;
use kiwi::decoders::snapshot;

use crate::alloc::bounded;

/// `KIWISNAP ‖ version ‖ records ‖ 0` (src/raft/state_machine.rs).
pub const MAGIC: &[u8] = b"KIWISNAP";
pub const VERSION: u8 = 2;
/// The tag of replicated `raft_state` records, whose keys start `shared.`.
pub const SHARED_TAG: u8 = 4;
pub const TAGS: [u8; 5] = [1, 2, 3, SHARED_TAG, 5];

pub type Owned = (u8, Vec<u8>, Vec<u8>);

/// A snapshot of `records` in format `version`.
pub fn build(version: u8, records: &[Owned]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.push(version);
    for (tag, key, value) in records {
        out.push(*tag);
        for field in [key, value] {
            out.extend_from_slice(&(field.len() as u32).to_be_bytes());
            out.extend_from_slice(field);
        }
    }
    out.push(0);
    out
}

fn decode_bounded(data: &[u8]) -> Result<Vec<Owned>, String> {
    bounded("snapshot", 64 * data.len() + 4096, || {
        snapshot(data)
            .map(|records| {
                records
                    .into_iter()
                    .map(|(t, k, v)| (t, k.to_vec(), v.to_vec()))
                    .collect()
            })
            .map_err(|e| e.to_string())
    })
}

/// Check that a well-formed snapshot of `records` reads back, and that
/// every cut or extension of it is refused.
pub fn check_records(records: &[Owned]) {
    let data = build(VERSION, records);
    let (shared, rest): (Vec<Owned>, Vec<Owned>) = records
        .iter()
        .cloned()
        .partition(|(t, _, _)| *t == SHARED_TAG);
    let want: Vec<Owned> = shared.into_iter().chain(rest).collect();
    assert_eq!(decode_bounded(&data), Ok(want));
    for cut in 0..data.len() {
        let prefix = data.get(..cut).unwrap_or_default();
        assert!(
            decode_bounded(prefix).is_err(),
            "a snapshot cut at {cut} was accepted"
        );
    }
    let mut longer = data.clone();
    longer.push(0);
    assert!(
        decode_bounded(&longer).is_err(),
        "bytes after the end were accepted"
    );
}

fn arbitrary_records(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<Owned>> {
    let n = u.int_in_range(0u8..=12)?;
    (0..n)
        .map(|_| {
            let tag = *u.choose(&TAGS)?;
            let mut key: Vec<u8> = u.arbitrary()?;
            if tag == SHARED_TAG {
                key.splice(0..0, b"shared.".iter().copied());
            }
            Ok((tag, key, u.arbitrary()?))
        })
        .collect()
}

/// Fuzz entry: a mode byte; even: the rest is a snapshot as received;
/// odd: the rest chooses records whose well-formed snapshot must read back.
pub fn fuzz(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let _ = decode_bounded(rest);
    } else if let Ok(records) = arbitrary_records(&mut Unstructured::new(rest)) {
        check_records(&records);
    }
}
