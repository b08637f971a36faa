#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! TLS with rustls, configured from Redis's `tls-*` directives.
//!
//! Clients, as Redis serves them on `tls-port`: the certificate and key of
//! `tls-cert-file`/`tls-key-file`, and client certificates checked against
//! `tls-ca-cert-file` as `tls-auth-clients` asks. A handshake that does not
//! finish in time closes the connection.
//!
//! Raft peers, when `tls-cluster yes` (Redis's name for its cluster bus):
//! mutual TLS, each side presenting its certificate (`tls-client-cert-file`
//! and `tls-client-key-file` when it dials, if given; else the server's)
//! and requiring the other's to chain to `tls-ca-cert-file`. As on Redis's
//! cluster bus the peer's name is not matched against its certificate: a
//! node is admitted by the CA that signed it, so that CA must sign only the
//! cluster's members.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::config::{TlsAuthClients, TlsSettings};

/// Longest a client may take over its TLS handshake.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why TLS could not be set up; the server does not start.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls-port is set but tls-cert-file and tls-key-file are not both given")]
    MissingFiles,
    #[error("tls-auth-clients {0} needs tls-ca-cert-file")]
    MissingCa(&'static str),
    #[error("tls-cluster yes needs tls-cert-file, tls-key-file and tls-ca-cert-file")]
    MissingClusterFiles,
    #[error("cannot read {what} {path}: {reason}")]
    Read {
        what: &'static str,
        path: String,
        reason: String,
    },
    #[error("{0} holds no certificate")]
    NoCertificate(String),
    #[error("TLS configuration rejected: {0}")]
    Rustls(String),
}

fn read_error(what: &'static str, path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Read {
        what,
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

fn certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| read_error(what, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read_error(what, path, e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.display().to_string()));
    }
    Ok(certs)
}

fn private_key(what: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| read_error(what, path, e))
}

fn trust_roots(ca_file: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates("tls-ca-cert-file", ca_file)? {
        roots
            .add(cert)
            .map_err(|e| read_error("tls-ca-cert-file", ca_file, e))?;
    }
    Ok(Arc::new(roots))
}

/// The acceptor for `tls-port`, or `None` when TLS is off.
pub(crate) fn acceptor(tls: &TlsSettings) -> Result<Option<TlsAcceptor>, TlsError> {
    if tls.port == 0 {
        return Ok(None);
    }
    let (Some(cert_file), Some(key_file)) = (&tls.cert_file, &tls.key_file) else {
        return Err(TlsError::MissingFiles);
    };
    let chain = certificates("tls-cert-file", cert_file)?;
    let key = private_key("tls-key-file", key_file)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let builder = match (tls.auth_clients, &tls.ca_cert_file) {
        (TlsAuthClients::No, _) => builder.with_no_client_auth(),
        (mode, None) => {
            return Err(TlsError::MissingCa(match mode {
                TlsAuthClients::Optional => "optional",
                _ => "yes",
            }))
        }
        (mode, Some(ca_file)) => {
            let roots = trust_roots(ca_file)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
            let verifier = match mode {
                TlsAuthClients::Optional => verifier.allow_unauthenticated(),
                _ => verifier,
            };
            let verifier = verifier
                .build()
                .map_err(|e| TlsError::Rustls(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

/// The TLS material a running server uses, replaced whole when CONFIG SET
/// changes a `tls-*` file (Redis reloads them the same way; connections
/// already open keep theirs).
#[derive(Default)]
pub struct TlsState {
    clients: RwLock<Option<TlsAcceptor>>,
    peers: RwLock<Option<PeerTls>>,
}

impl std::fmt::Debug for TlsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsState")
            .field("clients", &self.clients.read().is_some())
            .field("peers", &self.peers.read().is_some())
            .finish()
    }
}

impl TlsState {
    /// Read the files `tls` names and use them from now on; on error
    /// nothing changes.
    pub fn configure(&self, tls: &TlsSettings) -> Result<(), TlsError> {
        let clients = acceptor(tls)?;
        let peers = peer(tls)?;
        *self.clients.write() = clients;
        *self.peers.write() = peers;
        Ok(())
    }

    /// Take what `other` loaded (the server loads before the engine exists).
    pub fn adopt(&self, other: TlsState) {
        *self.clients.write() = other.clients.into_inner();
        *self.peers.write() = other.peers.into_inner();
    }

    /// What `tls-port` accepts with, if it is on.
    pub fn clients(&self) -> Option<TlsAcceptor> {
        self.clients.read().clone()
    }

    /// What raft links use, if `tls-cluster yes`.
    pub fn peers(&self) -> Option<PeerTls> {
        self.peers.read().clone()
    }
}

/// Both ends of TLS between raft peers: what a node accepts with and what
/// it dials with.
#[derive(Clone)]
pub struct PeerTls {
    pub acceptor: TlsAcceptor,
    pub connector: TlsConnector,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerTls")
    }
}

impl PeerTls {
    /// The name a dialing node sends for `addr` (`host:port`): the host as
    /// an IP address or DNS name. It is not checked against the peer's
    /// certificate (see the module docs), so any valid name will do.
    pub fn server_name(addr: &str) -> ServerName<'static> {
        let host = addr
            .rsplit_once(':')
            .map_or(addr, |(host, _)| host)
            .trim_start_matches('[')
            .trim_end_matches(']');
        ServerName::try_from(host.to_string())
            .unwrap_or_else(|_| ServerName::from(std::net::IpAddr::from([127, 0, 0, 1])))
    }
}

/// Mutual TLS for raft links, or `None` unless `tls-cluster yes`.
pub fn peer(tls: &TlsSettings) -> Result<Option<PeerTls>, TlsError> {
    if !tls.cluster {
        return Ok(None);
    }
    let (Some(cert_file), Some(key_file), Some(ca_file)) =
        (&tls.cert_file, &tls.key_file, &tls.ca_cert_file)
    else {
        return Err(TlsError::MissingClusterFiles);
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = trust_roots(ca_file)?;

    let client_verifier =
        WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let chain = certificates("tls-cert-file", cert_file)?;
    let key = private_key("tls-key-file", key_file)?;
    let (client_chain, client_key) = match (&tls.client_cert_file, &tls.client_key_file) {
        (Some(cert), Some(key)) => (
            certificates("tls-client-cert-file", cert)?,
            private_key("tls-client-key-file", key)?,
        ),
        _ => (chain.clone(), key.clone_key()),
    };
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;

    let server_verifier = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let client = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(MemberVerifier {
            chain: server_verifier,
            provider,
        }))
        .with_client_auth_cert(client_chain, client_key)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    Ok(Some(PeerTls {
        acceptor: TlsAcceptor::from(Arc::new(server)),
        connector: TlsConnector::from(Arc::new(client)),
    }))
}

/// Checks a peer's certificate chain against the cluster's CA but not its
/// name: peers are dialled by address, and what makes one a member is the
/// CA's signature (Redis's cluster bus checks the same).
#[derive(Debug)]
struct MemberVerifier {
    chain: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for MemberVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The name is checked only after the chain verified.
        match self.chain.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
