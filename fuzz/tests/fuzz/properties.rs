//! The fuzz targets' properties over generated inputs, a bounded number of
//! cases each: cheap properties 200,000 cases, those building whole
//! snapshots, reply trees or pipelines 50,000 (about 8 s of CPU in all).
//! Failures are kept in proptest-regressions/ and replayed first.
//! `KIWI_FUZZ_CASES=N` multiplies the cases for a longer run.

use kiwi_fuzz::{hll, payload, records, reply, request, seeds, snapshot, wire};

/// Cases of the cheap properties and of the costly ones.
const MANY: u32 = 200_000;
const FEWER: u32 = 50_000;
use proptest::prelude::*;

fn config(cases: u32) -> ProptestConfig {
    let scale: u32 = std::env::var("KIWI_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    ProptestConfig {
        cases: cases.saturating_mul(scale.max(1)),
        max_shrink_iters: 2048,
        ..ProptestConfig::default()
    }
}

/// Pieces requests are made of, well-formed and not.
fn fragment() -> impl Strategy<Value = Vec<u8>> {
    let token = prop::sample::select(vec![
        &b"*"[..],
        b"$",
        b"\r",
        b"\n",
        b"\r\n",
        b"-1",
        b"0",
        b"1",
        b"2",
        b"3",
        b"10",
        b"11",
        b"16385",
        b"1048577",
        b"9223372036854775808",
        b"\0",
        b"\"",
        b"'",
        b"\\x4",
        b" ",
        b"PING",
    ])
    .prop_map(|t| t.to_vec());
    let multibulk = prop::collection::vec(prop::collection::vec(any::<u8>(), 0..12), 0..4)
        .prop_map(|args| encode_multibulk(&args));
    let inline = prop::collection::vec(prop::collection::vec(any::<u8>(), 0..8), 0..4)
        .prop_map(|args| [request::quote_args(&args), b"\r\n".to_vec()].concat());
    prop_oneof![
        4 => token,
        3 => multibulk,
        2 => inline,
        1 => prop::collection::vec(any::<u8>(), 0..16),
    ]
}

fn encode_multibulk(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..400, 0..12)
}

/// Seeds of `target`, each changed by a few random edits.
fn mutated(target: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let inputs: Vec<Vec<u8>> = seeds::all()
        .into_iter()
        .filter(|(name, _)| *name == target)
        .map(|(_, data)| data)
        .collect();
    (
        prop::sample::select(inputs),
        prop::collection::vec((any::<usize>(), 0u8..4, any::<u8>()), 0..6),
    )
        .prop_map(|(mut data, edits)| {
            for (at, op, byte) in edits {
                let len = data.len();
                match (op, len) {
                    (_, 0) | (1, _) => data.insert(at % (len + 1), byte),
                    (0, _) => data[at % len] ^= byte | 1,
                    (2, _) => {
                        data.remove(at % len);
                    }
                    _ => data.truncate(at % len),
                }
            }
            data
        })
}

proptest! {
    #![proptest_config(config(MANY))]

    #[test]
    fn request_decoder_on_random_bytes(
        input in prop::collection::vec(any::<u8>(), 0..400),
        cuts in cuts(),
        authenticated in any::<bool>(),
    ) {
        request::check(&input, &cuts, authenticated);
    }

    #[test]
    fn inline_arguments_quoted_read_back(
        args in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..24), 0..6),
    ) {
        request::check_inline_args(&args);
    }

    #[test]
    fn inline_parser_on_quote_heavy_lines(
        line in prop::collection::vec(
            prop::sample::select(b"ab \t\n\r\"'\\x0fF\x0b\0".to_vec()), 0..40),
    ) {
        request::check_inline_line(&line);
    }

    #[test]
    fn doubles_print_as_redis(bits in any::<u64>(), small in any::<i32>()) {
        reply::check_double(f64::from_bits(bits));
        reply::check_double(f64::from(small) / 100.0);
    }

    #[test]
    fn raft_frames_from_mutated_seeds(data in mutated("raft_frame")) {
        wire::fuzz_frame(&data);
    }

    #[test]
    fn raft_replies_from_mutated_seeds(data in mutated("raft_reply")) {
        wire::fuzz_reply(&data);
    }

    #[test]
    fn raft_messages_from_random_bytes(data in prop::collection::vec(any::<u8>(), 0..256)) {
        wire::fuzz_frame(&data);
        wire::fuzz_reply(&data);
    }

    #[test]
    fn snapshots_from_mutated_seeds(data in mutated("snapshot")) {
        snapshot::fuzz(&data);
    }

    #[test]
    fn stored_records_from_mutated_seeds(data in mutated("records")) {
        records::fuzz(&data);
    }

    #[test]
    fn rdb_payloads_from_random_bytes(
        data in prop::collection::vec(
            prop_oneof![any::<u8>(), prop::sample::select(vec![0xc0u8, 0xc1, 0xc2, 0xc3, 0x80, 0x81, 0x40, 245])],
            0..200,
        ),
    ) {
        payload::check(&data);
    }

    #[test]
    fn stored_records_from_random_bytes(
        kind in any::<u8>(),
        raw in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        records::fuzz(&[&[kind][..], &raw].concat());
    }
}

proptest! {
    #![proptest_config(config(FEWER))]

    #[test]
    fn hll_values_from_random_bytes(
        control in any::<u8>(),
        head in prop::collection::vec(any::<u8>(), 12..13),
        body in prop::collection::vec(
            prop_oneof![any::<u8>(), prop::sample::select(vec![0x7fu8, 0xff, 0x3f, 0x00, 0x80, 0x83, 0xfc])],
            0..96,
        ),
    ) {
        // `head`: encoding, unused bytes, cache; then the opcodes.
        let mut head = head;
        head[0] &= 1;
        hll::fuzz(&[&[control][..], &head, &body].concat());
    }

    #[test]
    fn hll_values_from_mutated_seeds(data in mutated("hll")) {
        hll::fuzz(&data);
    }

    #[test]
    fn dump_payloads_from_random_bytes(
        kind in prop::sample::select(vec![0u8, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]),
        data in prop::collection::vec(
            prop_oneof![any::<u8>(), prop::sample::select(vec![0xc0u8, 0xc3, 0x80, 0x81, 0x40, 0x01, 0x02, 0xfe, 0xff])],
            0..300,
        ),
    ) {
        payload::check_dump(&[&[kind][..], &data].concat());
    }

    #[test]
    fn dump_payloads_with_random_nested_blobs(
        kind in prop::sample::select(vec![9u8, 10, 11, 12, 13, 14, 16, 17, 18]),
        container in 0u8..4,
        blob in prop::collection::vec(
            prop_oneof![
                any::<u8>(),
                prop::sample::select(vec![0u8, 2, 4, 8, 0x80, 0xc0, 0xe0, 0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xfe, 0xff]),
            ],
            0..300,
        ),
    ) {
        payload::check_dump(&payload::nested_body(kind, container, blob));
    }

    #[test]
    fn dumped_values_restore_unchanged(
        kind in 0u8..5,
        items in prop::collection::btree_map(
            prop::collection::vec(any::<u8>(), 0..40),
            (prop::collection::vec(any::<u8>(), 0..40), any::<f64>()),
            1..40,
        ),
    ) {
        use kiwi::rdb::value::Value;
        let value = match kind {
            0 => Value::String(items.keys().flatten().copied().collect()),
            1 => Value::List(items.values().map(|(v, _)| v.clone()).collect()),
            2 => Value::Set(items.keys().cloned().collect()),
            3 => Value::Hash(items.iter().map(|(k, (v, _))| (k.clone(), v.clone())).collect()),
            _ => Value::ZSet(
                items.iter().map(|(k, (_, s))| (k.clone(), if s.is_nan() { 0.0 } else { *s })).collect(),
            ),
        };
        payload::round_trip(&value);
    }

    #[test]
    fn request_decoder_on_request_pieces(
        pieces in prop::collection::vec(fragment(), 0..24),
        cuts in cuts(),
        authenticated in any::<bool>(),
    ) {
        request::check(&pieces.concat(), &cuts, authenticated);
    }

    #[test]
    fn well_formed_requests_decode_to_their_arguments(
        requests in prop::collection::vec(
            prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..6), 0..6),
        cuts in cuts(),
    ) {
        let input: Vec<u8> = requests.iter().flat_map(|r| encode_multibulk(r)).collect();
        let decoded = request::decode(&input, &cuts, true);
        let want: Vec<_> = requests
            .iter()
            .map(|r| Ok(r.iter().map(|a| bytes::Bytes::copy_from_slice(a)).collect::<Vec<_>>()))
            .collect();
        prop_assert_eq!(decoded, want);
    }

    #[test]
    fn reply_trees_round_trip(data in prop::collection::vec(any::<u8>(), 0..1500)) {
        reply::fuzz(&data);
    }

    #[test]
    fn snapshots_round_trip(data in prop::collection::vec(any::<u8>(), 0..600)) {
        snapshot::fuzz(&[&[1][..], &data].concat());
    }
}
