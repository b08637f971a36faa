//! The RESP request decoder and the inline parser.
//!
//! Properties: no input panics or stalls the decoder (a request it returns
//! consumed bytes); the same bytes give the same requests and errors
//! whether they arrive whole or cut anywhere (up to the size limits, whose
//! firing depends on how much has arrived, as in Redis); an error line
//! never carries CR or LF; an unauthenticated peer cannot make the decoder
//! allocate more than a few times what it sent; and the inline parser reads
//! back any arguments quoted as `redis-cli` would quote them.

use arbitrary::Unstructured;
use bytes::{Bytes, BytesMut};
use kiwi::decoders::{split_args, ProtocolError, RequestDecoder};
use kiwi::resp::MAX_INLINE_SIZE;

use crate::alloc::bounded;

/// `proto-max-bulk-len` while fuzzing: the smallest CONFIG SET accepts.
pub const MAX_BULK: usize = 1 << 20;
/// What an unauthenticated client may send per argument (request.rs).
const UNAUTHENTICATED_BULK: usize = 16 * 1024;

/// What one decoder run produced: the requests, then at most one error
/// (the connection closes on it).
pub type Outcome = Vec<Result<Vec<Bytes>, ProtocolError>>;

/// Decode `input` arriving as the pieces between `cuts` (offsets, any
/// order, out-of-range ones ignored).
pub fn decode(input: &[u8], cuts: &[usize], authenticated: bool) -> Outcome {
    let mut out = Vec::new();
    decode_into(input, cuts, authenticated, &mut out);
    out
}

/// [`decode`] into `out`, which the caller may size beforehand so that the
/// decoder's allocations can be measured apart from the harness's.
fn decode_into(input: &[u8], cuts: &[usize], authenticated: bool, out: &mut Outcome) {
    let mut cuts: Vec<usize> = cuts
        .iter()
        .copied()
        .filter(|&c| c > 0 && c < input.len())
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    cuts.push(input.len());
    let mut decoder = RequestDecoder::new(MAX_BULK);
    decoder.set_authenticated(authenticated);
    let mut buf = BytesMut::new();
    let mut start = 0;
    for end in cuts {
        buf.extend_from_slice(input.get(start..end).unwrap_or_default());
        start = end;
        loop {
            let before = buf.len();
            match decoder.parse(&mut buf) {
                Ok(Some(request)) => {
                    assert!(
                        buf.len() < before,
                        "a request was returned without consuming input"
                    );
                    out.push(Ok(request));
                }
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e));
                    return;
                }
            }
        }
    }
}

fn is_size_limit(outcome: Option<&Result<Vec<Bytes>, ProtocolError>>) -> bool {
    matches!(outcome, Some(Err(ProtocolError(msg))) if msg.starts_with(b"too big"))
}

/// Check every property of the request decoder on `input` cut at `cuts`.
pub fn check(input: &[u8], cuts: &[usize], authenticated: bool) {
    // What the decoder may hold at once: the input (twice over while a
    // buffer grows) and one announced argument.
    let per_arg = if authenticated {
        MAX_BULK
    } else {
        UNAUTHENTICATED_BULK
    };
    let limit = 4 * (input.len() + per_arg) + (64 << 10);
    // Every request consumes at least one byte: room for all of them is
    // made before measuring, so only the decoder's own allocations count.
    let (mut whole, mut split) = (
        Vec::with_capacity(input.len() + 1),
        Vec::with_capacity(input.len() + 1),
    );
    bounded("request decoder", limit, || {
        decode_into(input, &[], authenticated, &mut whole)
    });
    bounded("request decoder", limit, || {
        decode_into(input, cuts, authenticated, &mut split)
    });
    for outcome in whole.iter().chain(&split) {
        if let Err(e) = outcome {
            let line = e.reply_line();
            assert!(line.starts_with(b"-ERR Protocol error: ") && line.ends_with(b"\r\n"));
            let body = line.get(..line.len() - 2).unwrap_or_default();
            assert!(
                !body.contains(&b'\r') && !body.contains(&b'\n'),
                "error line breaks the protocol: {line:?}"
            );
        }
    }
    if input.len() <= MAX_INLINE_SIZE {
        assert_eq!(whole, split, "cutting the input changed what it decodes to");
        return;
    }
    // Past the limits, how much had arrived decides whether a line is too
    // long: the outcomes agree until one of them is a size-limit error.
    let same = whole.iter().zip(&split).take_while(|(a, b)| a == b).count();
    if same < whole.len().max(split.len()) {
        assert!(
            is_size_limit(whole.get(same)) || is_size_limit(split.get(same)),
            "outcome {same} differs without a size limit: {:?} vs {:?}",
            whole.get(same),
            split.get(same)
        );
    }
}

/// Fuzz entry: a flags byte (bit 0: unauthenticated), a cut count, that
/// many 16-bit cut offsets, then the bytes the client sends.
pub fn fuzz(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let flags: u8 = u.arbitrary().unwrap_or(0);
    let count: u8 = u.arbitrary().unwrap_or(0);
    let cuts: Vec<usize> = (0..count % 32)
        .map(|_| usize::from(u.arbitrary::<u16>().unwrap_or(0)))
        .collect();
    check(u.take_rest(), &cuts, flags & 1 == 0);
}

/// The input [`fuzz`] reads as (`authenticated`, `cuts`, `input`).
pub fn encode_input(authenticated: bool, cuts: &[u16], input: &[u8]) -> Vec<u8> {
    let mut out = vec![u8::from(!authenticated), cuts.len() as u8];
    for cut in cuts.iter().take(31) {
        out.extend_from_slice(&cut.to_le_bytes());
    }
    out.extend_from_slice(input);
    out
}

/// `args` as one inline line, every argument double-quoted with `\xHH`
/// escapes for anything but printable ASCII (as redis-cli's sdscatrepr).
pub fn quote_args(args: &[impl AsRef<[u8]>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.push(b'"');
        for &b in arg.as_ref() {
            match b {
                b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0x20..=0x7e => out.push(b),
                _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            }
        }
        out.push(b'"');
    }
    out
}

/// The inline parser: quoted arguments read back as themselves, and
/// whatever a line parses to reads back the same once quoted.
pub fn check_inline_args(args: &[Vec<u8>]) {
    let line = quote_args(args);
    let parsed = split_args(&line).map(|a| a.into_iter().map(|b| b.to_vec()).collect::<Vec<_>>());
    assert_eq!(parsed.as_deref(), Some(args), "line {line:?}");
}

/// Any line: no panic; if it parses, its arguments quoted parse the same.
pub fn check_inline_line(line: &[u8]) {
    // The line a few times over, plus one vector header per argument (an
    // argument takes at least one byte and its separator).
    let limit = 4 * line.len() + 4096 + line.len() * std::mem::size_of::<Vec<u8>>();
    let parsed = bounded("inline parser", limit, || split_args(line));
    if let Some(args) = parsed {
        let args: Vec<Vec<u8>> = args.into_iter().map(|b| b.to_vec()).collect();
        check_inline_args(&args);
    }
}

/// Fuzz entry for the inline parser: the bytes are one line.
pub fn fuzz_inline(data: &[u8]) {
    check_inline_line(data);
}
