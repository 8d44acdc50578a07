//! Tessera terminating TLS itself (rustls on ring, no OpenSSL), so that it
//! can see client certificates: mutual TLS needs the handshake, which a
//! TLS-terminating proxy would keep to itself.
//!
//! [`Tls::load`] reads `TESSERA_TLS_CERT` / `_KEY` (and `_CLIENT_CA`,
//! `_CLIENT_CRL`) at start-up and refuses, naming the variable, whatever it
//! cannot use. As a [`Handshake`] for the accept loop, it shakes hands within
//! `TESSERA_TLS_HANDSHAKE_TIMEOUT` and hands over the client certificate, if
//! the client sent one and it passes every check: its chain to the client
//! CA, its validity, the CRL, and an explicit `clientAuth` extended key
//! usage (webpki accepts a certificate with no EKU extension at all; we do
//! not). A certificate that fails is treated as absent, not refused in the
//! handshake: the caller can still authenticate with Basic or form
//! credentials, and every failure looks the same to it (`401
//! invalid_client` from the endpoint).

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use rustls::{
    client::danger::HandshakeSignatureValid,
    crypto::CryptoProvider,
    pki_types::{
        pem::PemObject, CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime,
    },
    server::{
        danger::{ClientCertVerified, ClientCertVerifier},
        VerifierBuilderError, WebPkiClientVerifier,
    },
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, ServerConnection,
    SignatureScheme,
};
use tessera_core::client::PeerCertificate;
use tokio::net::TcpStream;
use tokio_rustls::{server::TlsStream, TlsAcceptor};
use x509_cert::{
    der::{asn1::ObjectIdentifier, Decode, Tag, Tagged},
    ext::pkix::ExtendedKeyUsage,
    Certificate,
};

use super::connections::{Accepted, Handshake};
use crate::config::TlsSettings;

const CERT: &str = "TESSERA_TLS_CERT";
const KEY: &str = "TESSERA_TLS_KEY";
const CLIENT_CA: &str = "TESSERA_TLS_CLIENT_CA";
const CLIENT_CRL: &str = "TESSERA_TLS_CLIENT_CRL";

const EXT_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const KP_CLIENT_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");
const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");

/// A TLS file Tessera cannot use; names the variable and the file, never
/// the file's content.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct TlsError {
    pub variable: &'static str,
    pub message: String,
}

fn refuse(variable: &'static str, path: &Path, what: impl std::fmt::Display) -> TlsError {
    TlsError {
        variable,
        message: format!("{}: {what}", path.display()),
    }
}

/// The TLS side of the listener, ready to accept.
pub struct Tls {
    acceptor: TlsAcceptor,
    /// The checks of a client certificate (chain, validity, CRL), with
    /// `TESSERA_TLS_CLIENT_CA`; run after the handshake.
    client_certs: Option<Arc<dyn ClientCertVerifier>>,
    handshake_timeout: Duration,
}

impl Tls {
    /// Reads and checks every file; the first one that is missing,
    /// unreadable or unusable stops start-up.
    pub fn load(settings: &TlsSettings) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs = certificates(CERT, &settings.cert)?;
        let key = private_key(&settings.key)?;
        let client_certs = match &settings.client_ca {
            Some(ca) => Some(client_verifier(
                ca,
                settings.client_crl.as_deref(),
                provider.clone(),
            )?),
            None => None,
        };
        let builder = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions");
        let builder = match &client_certs {
            Some(checks) => {
                builder.with_client_cert_verifier(Arc::new(CheckedAfterHandshake(checks.clone())))
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(certs, key).map_err(|e| {
            refuse(
                KEY,
                &settings.key,
                format_args!("cannot be used with the certificate of {CERT} ({e})"),
            )
        })?;
        // HTTP/1.1 only, as on plain HTTP.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            client_certs,
            handshake_timeout: settings.handshake_timeout,
        })
    }

    /// Whether client certificates are requested.
    pub fn requests_client_certificates(&self) -> bool {
        self.client_certs.is_some()
    }

    /// The client's certificate if it sent one that passes every check.
    fn peer(&self, conn: &ServerConnection, remote: SocketAddr) -> Option<PeerCertificate> {
        let checks = self.client_certs.as_deref()?;
        let (end_entity, intermediates) = conn.peer_certificates()?.split_first()?;
        match check_client_certificate(checks, end_entity, intermediates, UnixTime::now()) {
            Ok(peer) => Some(peer),
            Err(reason) => {
                tracing::info!(
                    %remote,
                    reason,
                    "client certificate not accepted; the connection goes on without one"
                );
                None
            }
        }
    }
}

impl Handshake for Tls {
    type Stream = TlsStream<TcpStream>;

    async fn handshake(
        &self,
        tcp: TcpStream,
        remote: SocketAddr,
    ) -> Option<Accepted<TlsStream<TcpStream>>> {
        let accept = tokio::time::timeout(self.handshake_timeout, self.acceptor.accept(tcp));
        let stream = match accept.await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::debug!(%remote, error = %e, "TLS handshake failed");
                return None;
            }
            Err(_) => {
                tracing::debug!(%remote, "TLS handshake did not finish in time");
                return None;
            }
        };
        let peer = self.peer(stream.get_ref().1, remote);
        Some(Accepted { stream, peer })
    }
}

/// Requests a client certificate, takes whatever the client sends, and
/// checks only that the client holds its key (the handshake signature).
/// The real checks run after the handshake ([`check_client_certificate`]),
/// where a failure can mean "no certificate" instead of a failed handshake.
#[derive(Debug)]
struct CheckedAfterHandshake(Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for CheckedAfterHandshake {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Every check of a client certificate: `checks` (webpki: chain to the
/// client CA, validity at `now`, the CRL, and `clientAuth` if the
/// certificate lists usages at all), then `clientAuth` listed explicitly,
/// then the subject's CNs. `Err` says why, for the log.
pub fn check_client_certificate(
    checks: &dyn ClientCertVerifier,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: UnixTime,
) -> Result<PeerCertificate, String> {
    checks
        .verify_client_cert(end_entity, intermediates, now)
        .map_err(|e| e.to_string())?;
    let cert = Certificate::from_der(end_entity).map_err(|_| "the certificate does not parse")?;
    let tbs = &cert.tbs_certificate;
    let usages = tbs
        .extensions
        .iter()
        .flatten()
        .find(|ext| ext.extn_id == EXT_KEY_USAGE)
        .ok_or("the certificate has no extended key usage (clientAuth is required)")?;
    let usages = ExtendedKeyUsage::from_der(usages.extn_value.as_bytes())
        .map_err(|_| "the extended key usage does not parse")?;
    if !usages.0.contains(&KP_CLIENT_AUTH) {
        return Err("the extended key usage does not include clientAuth".into());
    }
    let mut common_names = Vec::new();
    for atv in tbs.subject.0.iter().flat_map(|rdn| rdn.0.iter()) {
        if atv.oid == COMMON_NAME {
            let cn = directory_string(atv.value.tag(), atv.value.value())
                .ok_or("a CN of the subject is not a readable string")?;
            common_names.push(cn);
        }
    }
    Ok(PeerCertificate { common_names })
}

/// A CN's text: UTF-8, printable and IA5 strings as they are, BMP strings
/// from UTF-16; `None` for anything else (Teletex and the like).
fn directory_string(tag: Tag, value: &[u8]) -> Option<String> {
    match tag {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String => {
            String::from_utf8(value.to_vec()).ok()
        }
        Tag::BmpString if value.len().is_multiple_of(2) => {
            let units = value.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .ok()
        }
        _ => None,
    }
}

fn read(variable: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| refuse(variable, path, format_args!("cannot read it ({e})")))
}

/// The PEM certificates of a file: at least one.
fn certificates(
    variable: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(variable, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| refuse(variable, path, "is not a PEM file of certificates"))?;
    if certs.is_empty() {
        return Err(refuse(variable, path, "holds no PEM certificate"));
    }
    Ok(certs)
}

/// The key: the first PEM private key of the file. The error never says
/// more than that (a PEM parser's message could quote the file).
fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(KEY, path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| {
        refuse(
            KEY,
            path,
            "holds no unencrypted PEM private key (PKCS#8, PKCS#1 or SEC1)",
        )
    })
}

/// The CRLs of a file, PEM (one or more) or DER (one).
fn revocation_lists(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let bytes = read(CLIENT_CRL, path)?;
    if !bytes.windows(10).any(|w| w == b"-----BEGIN") {
        return Ok(vec![CertificateRevocationListDer::from(bytes)]);
    }
    let crls = CertificateRevocationListDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| refuse(CLIENT_CRL, path, "is not a PEM file of CRLs"))?;
    if crls.is_empty() {
        return Err(refuse(CLIENT_CRL, path, "holds no X509 CRL"));
    }
    Ok(crls)
}

/// The checks of client certificates: chains to the certificates of
/// `ca`, and, with `crl`, revocation of the certificate itself (a CRL that
/// does not cover its issuer refuses it: unknown status is not "good").
fn client_verifier(
    ca: &Path,
    crl: Option<&Path>,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(CLIENT_CA, ca)? {
        roots.add(cert).map_err(|e| {
            refuse(
                CLIENT_CA,
                ca,
                format_args!("holds a certificate that cannot be a trust anchor ({e})"),
            )
        })?;
    }
    let mut builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .allow_unauthenticated();
    if let Some(crl) = crl {
        builder = builder
            .with_crls(revocation_lists(crl)?)
            .only_check_end_entity_revocation();
    }
    builder.build().map_err(|e| match e {
        VerifierBuilderError::InvalidCrl(e) => {
            let path = crl.unwrap_or(ca);
            refuse(CLIENT_CRL, path, format_args!("is not a valid CRL ({e:?})"))
        }
        e => refuse(CLIENT_CA, ca, format_args!("cannot be used ({e})")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_names_are_read_from_the_usual_string_types() {
        assert_eq!(
            directory_string(Tag::PrintableString, b"gw").as_deref(),
            Some("gw")
        );
        let bmp: Vec<u8> = "gé".encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert_eq!(
            directory_string(Tag::BmpString, &bmp).as_deref(),
            Some("gé")
        );
        assert_eq!(directory_string(Tag::BmpString, &[0]), None);
        assert_eq!(directory_string(Tag::TeletexString, b"gw"), None);
    }
}
