#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! Clients over TLS, as Redis serves them on `tls-port`: rustls with the
//! certificate and key of `tls-cert-file`/`tls-key-file`, and client
//! certificates checked against `tls-ca-cert-file` as `tls-auth-clients`
//! asks. A handshake that does not finish in time closes the connection.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::config::{TlsAuthClients, TlsSettings};

/// Longest a client may take over its TLS handshake.
pub(super) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why TLS could not be set up; the server does not start.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls-port is set but tls-cert-file and tls-key-file are not both given")]
    MissingFiles,
    #[error("tls-auth-clients {0} needs tls-ca-cert-file")]
    MissingCa(&'static str),
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

/// The acceptor for `tls-port`, or `None` when TLS is off.
pub(super) fn acceptor(tls: &TlsSettings) -> Result<Option<TlsAcceptor>, TlsError> {
    if tls.port == 0 {
        return Ok(None);
    }
    let (Some(cert_file), Some(key_file)) = (&tls.cert_file, &tls.key_file) else {
        return Err(TlsError::MissingFiles);
    };
    let chain = certificates("tls-cert-file", cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| read_error("tls-key-file", key_file, e))?;
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
            let mut roots = RootCertStore::empty();
            for cert in certificates("tls-ca-cert-file", ca_file)? {
                roots
                    .add(cert)
                    .map_err(|e| read_error("tls-ca-cert-file", ca_file, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
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
