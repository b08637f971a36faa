//! Peer authentication on the Raft port: a mutual challenge-response on the
//! cluster's shared secret (`raft-secret`), run on every connection before
//! any RPC is read.
//!
//! ```text
//! connecting node                       listening node
//!   Hello { magic, version, secured, client nonce }  →
//!                     ←  Challenge { server nonce, server proof } | Refused
//!   Proof { client proof }                            →
//!                     ←  Welcome | Refused
//! ```
//!
//! A proof is HMAC-SHA256 keyed with the secret over the role's label and
//! both nonces. The secret never travels; each side draws a fresh nonce per
//! connection, so a recorded handshake cannot be replayed, and the labels
//! differ, so one side's proof cannot be sent back as the other's. Proofs
//! are compared in constant time (`hmac`'s `verify_slice`).
//!
//! Without a secret on either side the same exchange runs without proofs
//! (`secured: false`): anyone who reaches the port is a peer, which is why
//! a node without a secret only binds its raft port to loopback (see
//! [`RaftNode::start`](crate::raft::RaftNode::start)). A node with a
//! secret never talks to one without, in either direction.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::framing::{self, Conn, HANDSHAKE_FRAME_MAX};

const MAGIC: [u8; 8] = *b"KIWIRAFT";
const VERSION: u16 = 1;
const CLIENT_LABEL: &[u8] = b"kiwi raft client proof";
const SERVER_LABEL: &[u8] = b"kiwi raft server proof";

type Nonce = [u8; 32];
type Tag = [u8; 32];

/// The secret nodes of one cluster share (`raft-secret`). Never printed.
#[derive(Clone)]
pub struct RaftSecret(Arc<str>);

impl std::fmt::Debug for RaftSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RaftSecret(..)")
    }
}

impl RaftSecret {
    /// A secret from its text; an empty one is none at all.
    pub fn new(secret: impl AsRef<str>) -> Option<RaftSecret> {
        let secret = secret.as_ref();
        (!secret.is_empty()).then(|| RaftSecret(secret.into()))
    }

    /// 32 random bytes, as 64 hex digits.
    pub fn random() -> RaftSecret {
        let bytes: [u8; 32] = rand::random();
        let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        RaftSecret(text.into())
    }

    /// The secret's text, to hand to another node (a config file, a flag).
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn mac(&self, label: &[u8], client: &Nonce, server: &Nonce) -> Option<Hmac<Sha256>> {
        // HMAC takes keys of any length; `None` would be a bug of the crate.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.0.as_bytes()).ok()?;
        mac.update(label);
        mac.update(client);
        mac.update(server);
        Some(mac)
    }

    fn proof(&self, label: &[u8], client: &Nonce, server: &Nonce) -> Result<Tag, HandshakeError> {
        let mac = self
            .mac(label, client, server)
            .ok_or(HandshakeError::Malformed)?;
        Ok(mac.finalize().into_bytes().into())
    }

    fn verify(&self, label: &[u8], client: &Nonce, server: &Nonce, tag: &Tag) -> bool {
        self.mac(label, client, server)
            .is_some_and(|mac| mac.verify_slice(tag).is_ok())
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Hello {
    magic: [u8; 8],
    version: u16,
    secured: bool,
    nonce: Nonce,
}

#[derive(Debug, Serialize, Deserialize)]
enum Challenge {
    Challenge { nonce: Nonce, proof: Option<Tag> },
    Refused(String),
}

#[derive(Debug, Serialize, Deserialize)]
struct Proof {
    proof: Option<Tag>,
}

#[derive(Debug, Serialize, Deserialize)]
enum Verdict {
    Welcome,
    Refused(String),
}

/// Why a handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("connection closed during the handshake")]
    Closed,
    #[error("handshake i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a kiwi raft handshake")]
    Malformed,
    #[error("raft handshake version {0} is not supported (this node speaks {VERSION})")]
    Version(u16),
    #[error("the peer has no raft-secret and this node requires one")]
    PeerUnsecured,
    #[error("the peer has a raft-secret and this node has none")]
    PeerSecured,
    #[error("the peer proved no knowledge of this node's raft-secret")]
    BadProof,
    #[error("the peer refused this node: {0}")]
    Refused(String),
    #[error("no complete handshake within {0:?}")]
    Timeout(Duration),
    /// `tls-cluster yes`: the TLS handshake failed (no certificate, or one
    /// the cluster's CA did not sign).
    #[error("TLS handshake failed: {0}")]
    Tls(String),
}

impl HandshakeError {
    /// A failure of the network rather than of the peer's credentials.
    pub fn is_network(&self) -> bool {
        matches!(
            self,
            HandshakeError::Closed | HandshakeError::Io(_) | HandshakeError::Timeout(_)
        )
    }
}

async fn send<T: Serialize>(conn: &mut Conn, message: &T) -> Result<(), HandshakeError> {
    let bytes = postcard::to_allocvec(message).map_err(|_| HandshakeError::Malformed)?;
    framing::send(conn, &bytes).await?;
    Ok(())
}

async fn recv<T: serde::de::DeserializeOwned>(conn: &mut Conn) -> Result<T, HandshakeError> {
    let bytes = match framing::recv(conn, HANDSHAKE_FRAME_MAX).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Err(HandshakeError::Closed),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            return Err(HandshakeError::Malformed)
        }
        Err(e) => return Err(e.into()),
    };
    postcard::from_bytes(&bytes).map_err(|_| HandshakeError::Malformed)
}

/// Authenticate a connection this node opened; on success its frames may
/// be full-sized.
pub async fn connect(conn: &mut Conn, secret: Option<&RaftSecret>) -> Result<(), HandshakeError> {
    let nonce: Nonce = rand::random();
    send(
        conn,
        &Hello {
            magic: MAGIC,
            version: VERSION,
            secured: secret.is_some(),
            nonce,
        },
    )
    .await?;
    let (server_nonce, server_proof) = match recv(conn).await? {
        Challenge::Challenge { nonce, proof } => (nonce, proof),
        Challenge::Refused(why) => return Err(HandshakeError::Refused(why)),
    };
    match (secret, server_proof) {
        (Some(secret), Some(proof)) => {
            if !secret.verify(SERVER_LABEL, &nonce, &server_nonce, &proof) {
                // Say so (no proof) rather than hang up, so the peer logs
                // the refusal too.
                let _ = send(conn, &Proof { proof: None }).await;
                return Err(HandshakeError::BadProof);
            }
        }
        (Some(_), None) => return Err(HandshakeError::PeerUnsecured),
        (None, Some(_)) => return Err(HandshakeError::PeerSecured),
        (None, None) => {}
    }
    let proof = secret
        .map(|s| s.proof(CLIENT_LABEL, &nonce, &server_nonce))
        .transpose()?;
    send(conn, &Proof { proof }).await?;
    match recv(conn).await? {
        Verdict::Welcome => {
            framing::open(conn);
            Ok(())
        }
        Verdict::Refused(why) => Err(HandshakeError::Refused(why)),
    }
}

/// Authenticate a connection a peer opened; on success its frames may be
/// full-sized. A refused peer is told why before the connection closes.
pub async fn accept(conn: &mut Conn, secret: Option<&RaftSecret>) -> Result<(), HandshakeError> {
    let hello: Hello = recv(conn).await?;
    if hello.magic != MAGIC {
        return Err(HandshakeError::Malformed);
    }
    if hello.version != VERSION {
        let _ = send(
            conn,
            &Challenge::Refused(format!("raft handshake version {VERSION} only")),
        )
        .await;
        return Err(HandshakeError::Version(hello.version));
    }
    let refusal = match (secret.is_some(), hello.secured) {
        (true, false) => Some(HandshakeError::PeerUnsecured),
        (false, true) => Some(HandshakeError::PeerSecured),
        _ => None,
    };
    if let Some(refusal) = refusal {
        let why = match refusal {
            HandshakeError::PeerUnsecured => "this node requires a raft-secret",
            _ => "this node has no raft-secret",
        };
        let _ = send(conn, &Challenge::Refused(why.into())).await;
        return Err(refusal);
    }
    let nonce: Nonce = rand::random();
    let proof = secret
        .map(|s| s.proof(SERVER_LABEL, &hello.nonce, &nonce))
        .transpose()?;
    send(conn, &Challenge::Challenge { nonce, proof }).await?;
    let Proof { proof } = recv(conn).await?;
    let proven = match (secret, proof) {
        (Some(secret), Some(proof)) => secret.verify(CLIENT_LABEL, &hello.nonce, &nonce, &proof),
        (None, None) => true,
        _ => false,
    };
    if !proven {
        let _ = send(conn, &Verdict::Refused("wrong raft-secret".into())).await;
        return Err(HandshakeError::BadProof);
    }
    send(conn, &Verdict::Welcome).await?;
    framing::open(conn);
    Ok(())
}

/// Rate limit of refusal warnings: a misconfigured peer retries many times
/// a second, the log says so once every [`RefusalLog::EVERY`] per peer.
#[derive(Debug, Default)]
pub struct RefusalLog {
    last: Mutex<HashMap<String, Instant>>,
}

impl RefusalLog {
    const EVERY: Duration = Duration::from_secs(10);
    /// Peers remembered at most (a flood of addresses forgets them all).
    const CAPACITY: usize = 4096;

    /// Whether a refusal about `peer` is worth a warning now.
    pub fn should_warn(&self, peer: &str) -> bool {
        let now = Instant::now();
        let mut last = self.last.lock();
        if let Some(at) = last.get(peer) {
            if now.duration_since(*at) < Self::EVERY {
                return false;
            }
        }
        if last.len() >= Self::CAPACITY {
            last.clear();
        }
        last.insert(peer.to_string(), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::{TcpListener, TcpStream};

    /// Run a handshake over loopback: (client's outcome, server's outcome).
    async fn shake(
        client: Option<RaftSecret>,
        server: Option<RaftSecret>,
    ) -> (Result<(), HandshakeError>, Result<(), HandshakeError>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let serving = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.expect("accept");
            let mut conn = framing::handshake_conn(stream);
            accept(&mut conn, server.as_ref()).await
        });
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut conn = framing::handshake_conn(stream);
        let client = connect(&mut conn, client.as_ref()).await;
        drop(conn);
        (client, serving.await.expect("server task"))
    }

    #[tokio::test]
    async fn the_same_secret_or_none_on_both_sides_gets_in() {
        let secret = RaftSecret::new("s3cret").expect("secret");
        let (c, s) = shake(Some(secret.clone()), Some(secret)).await;
        assert!(c.is_ok() && s.is_ok(), "{c:?} {s:?}");
        let (c, s) = shake(None, None).await;
        assert!(c.is_ok() && s.is_ok(), "{c:?} {s:?}");
    }

    #[tokio::test]
    async fn another_secret_or_none_is_refused_on_both_sides() {
        let (c, s) = shake(RaftSecret::new("one"), RaftSecret::new("two")).await;
        assert!(matches!(c, Err(HandshakeError::BadProof)), "{c:?}");
        assert!(matches!(s, Err(HandshakeError::BadProof)), "{s:?}");
        let (c, s) = shake(None, RaftSecret::new("two")).await;
        assert!(matches!(c, Err(HandshakeError::Refused(_))), "{c:?}");
        assert!(matches!(s, Err(HandshakeError::PeerUnsecured)), "{s:?}");
        let (c, s) = shake(RaftSecret::new("one"), None).await;
        assert!(matches!(c, Err(HandshakeError::Refused(_))), "{c:?}");
        assert!(matches!(s, Err(HandshakeError::PeerSecured)), "{s:?}");
    }

    #[test]
    fn proofs_depend_on_secret_role_and_both_nonces() {
        let secret = RaftSecret::new("k").expect("secret");
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let proof = secret.proof(CLIENT_LABEL, &a, &b).expect("proof");
        assert!(secret.verify(CLIENT_LABEL, &a, &b, &proof));
        // Not the server's, not for other nonces, not under another key.
        assert!(!secret.verify(SERVER_LABEL, &a, &b, &proof));
        assert!(!secret.verify(CLIENT_LABEL, &b, &a, &proof));
        assert!(!secret.verify(CLIENT_LABEL, &a, &[3; 32], &proof));
        let other = RaftSecret::new("K").expect("secret");
        assert!(!other.verify(CLIENT_LABEL, &a, &b, &proof));
        assert_eq!(format!("{secret:?}"), "RaftSecret(..)");
        assert!(RaftSecret::new("").is_none());
        assert_eq!(RaftSecret::random().expose().len(), 64);
    }

    #[test]
    fn refusals_are_logged_once_in_a_while_per_peer() {
        let log = RefusalLog::default();
        assert!(log.should_warn("10.0.0.1 wrong secret"));
        assert!(!log.should_warn("10.0.0.1 wrong secret"));
        assert!(log.should_warn("10.0.0.2 wrong secret"));
    }
}
