//! Failures the fuzz targets found, each kept as a test of its own.

use kiwi::decoders::{decode_reply, Meta, Protocol, Reply, RpcReply};
use kiwi::raft::{KiwiResponse, NodeId, WireReply};
use openraft::error::{Fatal, RaftError};
use openraft::{AnyError, ErrorSubject, ErrorVerb, StorageError, StorageIOError};

/// `RpcReply::Forward(Ok(..))` holding one reply nested `depth` arrays deep,
/// in postcard's bytes (variant indexes as declared in raft/network.rs and
/// raft/types.rs).
fn nested_forward_reply(depth: usize) -> Vec<u8> {
    let forward = 3;
    let ok = 0;
    let (array, nil) = (6, 4);
    let mut out = vec![forward, ok, 1, 1];
    for _ in 0..depth {
        out.extend_from_slice(&[array, 1]);
    }
    out.push(nil);
    out
}

#[test]
fn a_deeply_nested_forwarded_reply_is_an_error_not_a_stack_overflow() {
    // 300 KB of nesting: decoded with postcard directly, the recursion
    // overflowed the stack and aborted the node that forwarded a write.
    let raw = nested_forward_reply(150_000);
    assert!(decode_reply(&raw).is_err());
}

#[test]
fn replies_nested_as_deep_as_kiwi_nests_them_decode() {
    let raw = nested_forward_reply(40);
    match decode_reply(&raw) {
        Ok(RpcReply::Forward(Ok(KiwiResponse { replies }))) => {
            let mut reply = replies.first().and_then(|r| r.first()).cloned();
            let mut depth = 0;
            while let Some(WireReply::Array(items)) = reply {
                reply = items.first().cloned();
                depth += 1;
            }
            assert_eq!((depth, reply), (40, Some(WireReply::Nil)));
        }
        other => panic!("decoded as {other:?}"),
    }
}

/// An error whose source has a source, `depth` times.
#[derive(Debug)]
struct Chain(Option<Box<Chain>>);

impl std::fmt::Display for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("link")
    }
}

impl std::error::Error for Chain {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.as_deref().map(|c| c as _)
    }
}

#[test]
fn an_openraft_error_with_a_deep_source_chain_is_refused() {
    // openraft's errors carry AnyError, whose source is an AnyError: a
    // peer choosing the chain's length chose the decoder's recursion.
    // Built on a thread with room for the recursion of building it.
    let raw = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(|| {
            let mut chain = Chain(None);
            for _ in 0..2_000 {
                chain = Chain(Some(Box::new(chain)));
            }
            let io = StorageIOError::<NodeId>::new(
                ErrorSubject::Store,
                ErrorVerb::Read,
                AnyError::new(&chain),
            );
            let reply = RpcReply::AppendEntries(Err(RaftError::Fatal(Fatal::StorageError(
                StorageError::from(io),
            ))));
            postcard::to_allocvec(&reply).unwrap_or_default()
        })
        .and_then(|t| t.join().map_err(|_| std::io::Error::other("panicked")))
        .unwrap_or_default();
    assert!(raw.len() > 2_000, "the chain did not encode");
    assert!(decode_reply(&raw).is_err());
}

#[test]
fn status_lines_cannot_break_the_protocol() {
    // A status from a peer (WireReply::Status) reached clients verbatim.
    let reply = Reply::StatusOwned("line\r\nbreak\n".into());
    assert_eq!(&reply.to_bytes(Protocol::Resp2)[..], b"+line  break \r\n");
    assert_eq!(&reply.to_bytes(Protocol::Resp3)[..], b"+line  break \r\n");
}

#[test]
fn a_list_header_whose_length_disagrees_with_its_window_is_corrupt() {
    let mut raw = vec![3];
    raw.extend_from_slice(&0u64.to_be_bytes()); // no expiry
    raw.extend_from_slice(&5u64.to_be_bytes()); // version
    for n in [2u64, 10, 9] {
        // len 2, but head 10 > tail 9
        raw.extend_from_slice(&n.to_be_bytes());
    }
    assert!(Meta::decode(&raw).is_err());
}
