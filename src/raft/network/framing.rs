//! Messages on a raft connection, and how big they may be.
//!
//! A connection carries length-prefixed frames (tokio-util's
//! [`LengthDelimitedCodec`]). Until the peer has authenticated (see
//! [`super::auth`]) a frame may hold at most [`HANDSHAKE_FRAME_MAX`] bytes:
//! a header claiming more closes the connection before anything is
//! allocated. Afterwards frames hold at most [`FRAME_MAX`] bytes, and a
//! message (one postcard-encoded request or reply) larger than a frame is
//! sent as a run of frames: each frame's first byte says whether more of
//! the message follows. The receiver's buffer grows with the bytes that
//! actually arrived, never with what a header claims, up to
//! [`MESSAGE_MAX`].
//!
//! The sizes: a Redis client may legally write one command of up to
//! `client-query-buffer-limit` (1 GB in Redis) whose single values reach
//! `proto-max-bulk-len` (512 MB): `SET k <512 MB>` must replicate. A
//! proposal of one client is refused before it is proposed when it is
//! larger than [`PROPOSAL_MAX`] (1 GiB + 32 MiB), so every entry that
//! reaches the log fits in a message; the proposer packs at most
//! [`BATCH_SOFT_MAX`] of several clients' proposals into one entry, and
//! an `AppendEntries` carrying more than [`APPEND_SOFT_MAX`] is sent as
//! several smaller ones (openraft's `PayloadTooLarge`). A snapshot chunk is
//! openraft's `snapshot_max_chunk_size` (3 MiB).

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

/// Largest frame before the peer authenticated: the handshake's messages
/// are well under 100 bytes.
pub const HANDSHAKE_FRAME_MAX: usize = 256;

/// Largest frame of an authenticated connection (its marker byte included).
pub const FRAME_MAX: usize = 1024 * 1024;

/// Largest proposal (one client's write or transaction, estimated by
/// [`Op::size_hint`](crate::raft::Op::size_hint)) a node proposes: above
/// Redis's default `client-query-buffer-limit` (1 GB), so any single
/// command Redis accepts replicates.
pub const PROPOSAL_MAX: usize = (1 << 30) + 32 * 1024 * 1024;

/// Largest message: a proposal plus what wraps it (the entry, the RPC).
pub const MESSAGE_MAX: usize = PROPOSAL_MAX + 32 * 1024 * 1024;

/// The proposer stops adding proposals to an entry past this size (a
/// single bigger proposal goes alone).
pub const BATCH_SOFT_MAX: usize = 16 * 1024 * 1024;

/// An `AppendEntries` larger than this carries fewer entries (unless it
/// carries one).
pub const APPEND_SOFT_MAX: usize = 64 * 1024 * 1024;

/// Marker bytes: the first byte of every frame of a message.
const LAST: u8 = 0;
const MORE: u8 = 1;

/// What a raft connection runs over: TCP, or TLS over TCP.
pub trait PeerIo: AsyncRead + AsyncWrite + Unpin + Send + Sync {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> PeerIo for T {}

pub type Conn = Framed<Box<dyn PeerIo>, LengthDelimitedCodec>;

/// A new connection, limited to handshake-sized frames.
pub fn handshake_conn(stream: impl PeerIo + 'static) -> Conn {
    Framed::new(
        Box::new(stream),
        LengthDelimitedCodec::builder()
            .max_frame_length(HANDSHAKE_FRAME_MAX)
            .new_codec(),
    )
}

/// The peer authenticated: let frames up to [`FRAME_MAX`] through.
pub fn open(conn: &mut Conn) {
    conn.codec_mut().set_max_frame_length(FRAME_MAX);
}

fn invalid(what: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what)
}

/// Send one message, split into frames.
pub async fn send(conn: &mut Conn, message: &[u8]) -> std::io::Result<()> {
    if message.len() > MESSAGE_MAX {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "a raft message of {} bytes is over the limit of {MESSAGE_MAX}",
                message.len()
            ),
        ));
    }
    let mut chunks = message.chunks(FRAME_MAX - 1).peekable();
    if chunks.peek().is_none() {
        return conn.send(Bytes::from_static(&[LAST])).await;
    }
    while let Some(chunk) = chunks.next() {
        let mut frame = BytesMut::with_capacity(chunk.len() + 1);
        frame.extend_from_slice(&[if chunks.peek().is_some() { MORE } else { LAST }]);
        frame.extend_from_slice(chunk);
        // `feed` writes out whatever exceeds the codec's buffer, so a large
        // message never sits in memory twice.
        conn.feed(frame.freeze()).await?;
    }
    SinkExt::<Bytes>::flush(conn).await
}

/// Receive one message (`None`: the peer closed the connection between
/// messages). A message over `max` bytes is an error.
pub async fn recv(conn: &mut Conn, max: usize) -> std::io::Result<Option<Bytes>> {
    let mut message = BytesMut::new();
    loop {
        let mut frame = match conn.next().await {
            Some(frame) => frame?,
            None if message.is_empty() => return Ok(None),
            None => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection closed inside a message",
                ))
            }
        };
        if frame.is_empty() {
            return Err(invalid("an empty raft frame".into()));
        }
        let marker = frame.get_u8();
        if marker != LAST && marker != MORE {
            return Err(invalid(format!("bad raft frame marker {marker}")));
        }
        if message.len().saturating_add(frame.len()) > max {
            return Err(invalid(format!(
                "a raft message over the limit of {max} bytes"
            )));
        }
        if marker == LAST && message.is_empty() {
            return Ok(Some(frame.freeze()));
        }
        message.extend_from_slice(&frame);
        if marker == LAST {
            return Ok(Some(message.freeze()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    async fn pair() -> (Conn, Conn) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (a, b) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let (mut a, mut b) = (
            handshake_conn(a.expect("connect")),
            handshake_conn(b.expect("accept").0),
        );
        open(&mut a);
        open(&mut b);
        (a, b)
    }

    #[tokio::test]
    async fn messages_of_any_size_round_trip_in_capped_frames() {
        let (mut a, mut b) = pair().await;
        for size in [0, 1, FRAME_MAX - 1, FRAME_MAX, 3 * FRAME_MAX + 5] {
            let message: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let (sent, got) = tokio::join!(send(&mut a, &message), recv(&mut b, MESSAGE_MAX));
            sent.expect("send");
            assert_eq!(
                got.expect("recv").expect("a message").as_ref(),
                &message[..]
            );
        }
        // Over the receiver's limit: an error, not a message.
        let big = vec![7u8; 2 * FRAME_MAX];
        let (sent, got) = tokio::join!(send(&mut a, &big), recv(&mut b, FRAME_MAX));
        sent.expect("send");
        assert!(got.is_err());
    }

    #[tokio::test]
    async fn a_header_over_the_cap_is_an_error_before_any_allocation() {
        let (mut a, mut b) = pair().await;
        b.codec_mut().set_max_frame_length(HANDSHAKE_FRAME_MAX);
        let claim = (u32::MAX - 1).to_be_bytes();
        a.get_mut().write_all(&claim).await.expect("write");
        let got = recv(&mut b, MESSAGE_MAX).await;
        assert!(got.is_err());
        assert!(
            b.read_buffer().capacity() < 64 * 1024,
            "nothing was reserved"
        );
    }
}
