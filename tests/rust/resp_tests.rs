//! The RESP codec: request framing (whole, split at every byte, malformed)
//! and reply encoding under both protocols.

use bytes::{Bytes, BytesMut};
use kiwi::resp::{format_double, split_args, Protocol, Reply, RequestDecoder};

fn decode_all(decoder: &mut RequestDecoder, buf: &mut BytesMut) -> Vec<Vec<Bytes>> {
    let mut out = Vec::new();
    while let Some(req) = decoder.parse(buf).expect("valid input") {
        out.push(req);
    }
    out
}

fn strs(req: &[Bytes]) -> Vec<String> {
    req.iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect()
}

const PIPELINE: &[u8] = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv\r\nal\r\n*1\r\n$4\r\nPING\r\nECHO \"a b\" 'c'\r\n*2\r\n$3\r\nGET\r\n$0\r\n\r\n";

fn expected_pipeline() -> Vec<Vec<String>> {
    vec![
        vec!["SET".into(), "k".into(), "v\r\nal".into()],
        vec!["PING".into()],
        vec!["ECHO".into(), "a b".into(), "c".into()],
        vec!["GET".into(), String::new()],
    ]
}

#[test]
fn whole_pipeline_decodes_in_order() {
    let mut decoder = RequestDecoder::default();
    let mut buf = BytesMut::from(PIPELINE);
    let got: Vec<_> = decode_all(&mut decoder, &mut buf)
        .iter()
        .map(|r| strs(r))
        .collect();
    assert_eq!(got, expected_pipeline());
    assert!(buf.is_empty());
}

#[test]
fn split_at_every_byte_boundary() {
    for cut in 0..=PIPELINE.len() {
        let mut decoder = RequestDecoder::default();
        let mut buf = BytesMut::from(&PIPELINE[..cut]);
        let mut got = decode_all(&mut decoder, &mut buf);
        buf.extend_from_slice(&PIPELINE[cut..]);
        got.extend(decode_all(&mut decoder, &mut buf));
        let got: Vec<_> = got.iter().map(|r| strs(r)).collect();
        assert_eq!(got, expected_pipeline(), "split at byte {cut}");
    }
}

#[test]
fn one_byte_at_a_time() {
    let mut decoder = RequestDecoder::default();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for b in PIPELINE {
        buf.extend_from_slice(&[*b]);
        got.extend(decode_all(&mut decoder, &mut buf));
    }
    let got: Vec<_> = got.iter().map(|r| strs(r)).collect();
    assert_eq!(got, expected_pipeline());
}

fn protocol_error(input: &[u8]) -> String {
    let mut decoder = RequestDecoder::new(1024 * 1024);
    let mut buf = BytesMut::from(input);
    loop {
        match decoder.parse(&mut buf) {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("no error for {:?}", String::from_utf8_lossy(input)),
            Err(e) => return e.to_string(),
        }
    }
}

#[test]
fn malformed_frames_get_redis_texts() {
    assert_eq!(
        protocol_error(b"*abc\r\n"),
        "Protocol error: invalid multibulk length"
    );
    assert_eq!(
        protocol_error(b"*1\r\n$abc\r\n"),
        "Protocol error: invalid bulk length"
    );
    assert_eq!(
        protocol_error(b"*1\r\n$-5\r\n"),
        "Protocol error: invalid bulk length"
    );
    assert_eq!(
        protocol_error(b"*1\r\n$2000000\r\n"),
        "Protocol error: invalid bulk length"
    );
    assert_eq!(
        protocol_error(b"*1\r\nfoo\r\n"),
        "Protocol error: expected '$', got 'f'"
    );
    assert_eq!(
        protocol_error(b"*99999999999\r\n"),
        "Protocol error: invalid multibulk length"
    );
    assert_eq!(
        protocol_error(b"\"unbalanced\r\n"),
        "Protocol error: unbalanced quotes in request"
    );
    let long_header = [b"*".as_slice(), &vec![b'1'; 70 * 1024]].concat();
    assert_eq!(
        protocol_error(&long_header),
        "Protocol error: too big mbulk count string"
    );
    let long_inline = vec![b'a'; 70 * 1024];
    assert_eq!(
        protocol_error(&long_inline),
        "Protocol error: too big inline request"
    );
}

#[test]
fn huge_multibulk_header_allocates_nothing_up_front() {
    let mut decoder = RequestDecoder::default();
    let mut buf = BytesMut::from(&b"*1000000\r\n$1\r\na\r\n"[..]);
    // Incomplete: waits for more data instead of failing or reserving a million slots.
    assert_eq!(decoder.parse(&mut buf).expect("valid so far"), None);
    assert!(buf.capacity() < 1024 * 1024);
}

#[test]
fn empty_requests_are_skipped() {
    let mut decoder = RequestDecoder::default();
    let mut buf = BytesMut::from(&b"\r\n*0\r\n*-1\r\nPING\r\n"[..]);
    let reqs = decode_all(&mut decoder, &mut buf);
    let non_empty: Vec<_> = reqs
        .iter()
        .filter(|r| !r.is_empty())
        .map(|r| strs(r))
        .collect();
    assert_eq!(non_empty, vec![vec!["PING".to_string()]]);
}

#[test]
fn inline_splitting_follows_redis() {
    let args = split_args(br#"set "a\x41\n" 'it\'s' plain"#).expect("balanced");
    assert_eq!(strs(&args), vec!["set", "aA\n", "it's", "plain"]);
    assert!(split_args(br#""closed"x"#).is_none());
    assert!(split_args(b"'open").is_none());
    assert_eq!(split_args(b"   ").expect("empty").len(), 0);
}

#[test]
fn a_flood_of_lone_crs_is_an_error_not_a_stack_overflow() {
    // Once a crash: the header search recursed once per lone CR.
    let flood = [b"*1\r\n$".as_slice(), &vec![b'\r'; 200_000]].concat();
    assert_eq!(
        protocol_error(&flood),
        "Protocol error: invalid bulk length"
    );
    let flood = [b"*".as_slice(), &vec![b'\r'; 200_000]].concat();
    assert_eq!(
        protocol_error(&flood),
        "Protocol error: invalid multibulk length"
    );
}

#[test]
fn an_inline_line_with_a_nul_waits_like_redis_strchr() {
    // Once an endless loop of empty arguments. Redis finds the newline with
    // strchr, which stops at NUL: the line never completes.
    let mut decoder = RequestDecoder::default();
    let mut buf = BytesMut::from(&b"\x00\xff\xfe\x00\xff\xfe\r\nPING\r\n"[..]);
    assert_eq!(decoder.parse(&mut buf).expect("waits"), None);
    let mut over = [b"PI\x00NG\r\n".as_slice(), &vec![b'x'; 70 * 1024]].concat();
    over.push(b'\n');
    assert_eq!(
        protocol_error(&over),
        "Protocol error: too big inline request"
    );
    // split_args itself reads a C string: the line ends at the NUL.
    let args = split_args(b"GET k\x00ey more").expect("balanced");
    assert_eq!(strs(&args), vec!["GET", "k"]);
    assert!(split_args(b"\"a\x00b\"").is_none());
}

#[test]
fn protocol_error_lines_carry_raw_bytes_without_crlf() {
    let mut decoder = RequestDecoder::default();
    let mut buf = BytesMut::from(&b"*1\r\n\xff\r\n"[..]);
    let err = decoder.parse(&mut buf).expect_err("not a bulk");
    assert_eq!(
        err.reply_line(),
        b"-ERR Protocol error: expected '$', got '\xff'\r\n"
    );
    let mut buf = BytesMut::from(&b"*1\r\r\r\n"[..]);
    let err = RequestDecoder::default()
        .parse(&mut buf)
        .expect_err("not a bulk");
    assert_eq!(
        err.reply_line(),
        b"-ERR Protocol error: expected '$', got ' '\r\n"
    );
}

fn enc(reply: &Reply, p: Protocol) -> String {
    String::from_utf8_lossy(&reply.to_bytes(p)).into_owned()
}

#[test]
fn replies_encode_per_protocol() {
    use Protocol::{Resp2, Resp3};
    assert_eq!(enc(&Reply::OK, Resp2), "+OK\r\n");
    assert_eq!(enc(&Reply::Nil, Resp2), "$-1\r\n");
    assert_eq!(enc(&Reply::Nil, Resp3), "_\r\n");
    assert_eq!(enc(&Reply::NilArray, Resp2), "*-1\r\n");
    assert_eq!(enc(&Reply::Int(-3), Resp3), ":-3\r\n");
    assert_eq!(enc(&Reply::bulk_str("hi"), Resp2), "$2\r\nhi\r\n");
    let map = Reply::Map(vec![(Reply::bulk_str("a"), Reply::Int(1))]);
    assert_eq!(enc(&map, Resp2), "*2\r\n$1\r\na\r\n:1\r\n");
    assert_eq!(enc(&map, Resp3), "%1\r\n$1\r\na\r\n:1\r\n");
    let set = Reply::Set(vec![Reply::bulk_str("x")]);
    assert_eq!(enc(&set, Resp2), "*1\r\n$1\r\nx\r\n");
    assert_eq!(enc(&set, Resp3), "~1\r\n$1\r\nx\r\n");
    assert_eq!(enc(&Reply::Double(1.5), Resp2), "$3\r\n1.5\r\n");
    assert_eq!(enc(&Reply::Double(1.5), Resp3), ",1.5\r\n");
    assert_eq!(enc(&Reply::Double(f64::INFINITY), Resp3), ",inf\r\n");
    assert_eq!(enc(&Reply::Bool(true), Resp2), ":1\r\n");
    assert_eq!(enc(&Reply::Bool(false), Resp3), "#f\r\n");
    assert_eq!(
        enc(&Reply::Verbatim("ab".into()), Resp3),
        "=6\r\ntxt:ab\r\n"
    );
    assert_eq!(enc(&Reply::Verbatim("ab".into()), Resp2), "$2\r\nab\r\n");
    assert_eq!(enc(&Reply::error("ERR a\r\nb"), Resp2), "-ERR a  b\r\n");
}

#[test]
fn doubles_format_like_redis_7_0() {
    assert_eq!(format_double(1.0), "1");
    assert_eq!(format_double(1.5), "1.5");
    assert_eq!(format_double(1.1), "1.1000000000000001");
    assert_eq!(format_double(-0.25), "-0.25");
    assert_eq!(format_double(1e20), "1e+20");
    assert_eq!(format_double(1.5e-7), "1.4999999999999999e-07");
    assert_eq!(format_double(f64::NEG_INFINITY), "-inf");
}
