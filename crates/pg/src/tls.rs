//! TLS for connections: rustls with the aws-lc-rs provider (installed explicitly here, never taken
//! from process-wide defaults), configured the way libpq's `sslmode`, `sslrootcert`, `sslcert`
//! and `sslkey` configure OpenSSL:
//!
//! | sslmode | server certificate check |
//! |---|---|
//! | `allow`, `prefer`, `require` | none — unless the root certificate file exists, then as `verify-ca` |
//! | `verify-ca` | signed by a CA in `sslrootcert`; host name not checked |
//! | `verify-full` | signed by a CA in `sslrootcert` and valid for the `host` connected to |
//!
//! A client certificate is offered when the `sslcert` file exists; its key must then exist and
//! be private (mode 0600 or less, or 0640 owned by root), as libpq insists.

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::PgError;
use crate::config::{ConnConfig, RootCert, SslMode};

/// The connector for `cfg`'s TLS attempts, reading the certificate files it names.
pub(crate) fn connector(cfg: &ConnConfig) -> Result<MakeRustlsConnect, PgError> {
    let fail = |reason: String| PgError::TlsSetup {
        target: cfg.redacted(),
        reason,
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let roots = load_roots(cfg).map_err(fail)?;
    let verifier: Arc<dyn ServerCertVerifier> = match roots {
        None => Arc::new(NoVerification(provider.clone())),
        Some(roots) => {
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| fail(format!("could not use the root certificates: {e}")))?;
            if cfg.sslmode() == SslMode::VerifyFull {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            }
        }
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(format!("could not set up TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match load_client_identity(cfg).map_err(fail)? {
        Some((certs, key)) => builder
            .with_client_auth_cert(certs, key)
            .map_err(|e| fail(format!("could not use the client certificate: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    Ok(MakeRustlsConnect::new(config))
}

/// The trusted CAs, or `None` when the server's certificate is not to be checked (no root file
/// and a mode below `verify-ca`).
fn load_roots(cfg: &ConnConfig) -> Result<Option<RootCertStore>, String> {
    let mut store = RootCertStore::empty();
    match cfg.sslrootcert() {
        Some(RootCert::System) => {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::debug!(%error, "skipping part of the system's trusted certificates");
            }
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(
                    "sslrootcert=system, but no trusted CA certificates were found on this system \
                     — install the ca-certificates package, set SSL_CERT_FILE, or name a CA \
                     bundle file in sslrootcert="
                        .to_owned(),
                );
            }
        }
        Some(RootCert::File(path)) if path.exists() => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(|e| {
                    format!(
                        "could not read root certificate file \"{}\": {e}",
                        path.display()
                    )
                })?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!(
                    "root certificate file \"{}\" holds no usable PEM certificate",
                    path.display()
                ));
            }
        }
        missing => {
            if matches!(cfg.sslmode(), SslMode::VerifyCa | SslMode::VerifyFull) {
                let named = match missing {
                    Some(RootCert::File(path)) => {
                        format!(
                            "root certificate file \"{}\" does not exist",
                            path.display()
                        )
                    }
                    _ => "no root certificate file (no home directory for ~/.postgresql/root.crt)"
                        .to_owned(),
                };
                return Err(format!(
                    "{named} — sslmode={} needs the CA that signed the server's certificate: \
                     name it in sslrootcert= (for RDS, the RDS CA bundle), use \
                     sslrootcert=system for the system's trusted CAs, or weaken sslmode",
                    cfg.sslmode()
                ));
            }
            return Ok(None);
        }
    }
    Ok(Some(store))
}

type ClientIdentity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// The client certificate chain and key, if the certificate file exists.
fn load_client_identity(cfg: &ConnConfig) -> Result<Option<ClientIdentity>, String> {
    let Some(cert_path) = cfg.sslcert().filter(|path| path.exists()) else {
        return Ok(None);
    };
    let certs = CertificateDer::pem_file_iter(cert_path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| {
            format!(
                "could not read client certificate file \"{}\": {e}",
                cert_path.display()
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "client certificate file \"{}\" holds no PEM certificate",
            cert_path.display()
        ));
    }
    let Some(key_path) = cfg.sslkey().filter(|path| path.exists()) else {
        return Err(format!(
            "certificate present, but not private key file \"{}\" — set sslkey= (PGSSLKEY)",
            cfg.sslkey()
                .map_or_else(|| "(none)".into(), |p| p.display().to_string())
        ));
    };
    check_key_permissions(key_path)?;
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| {
        format!(
            "could not read private key file \"{}\": {e} (encrypted keys are not supported; \
             decrypt it with `openssl pkey`)",
            key_path.display()
        )
    })?;
    Ok(Some((certs, key)))
}

/// libpq's rule: the key may be read by its owner only — or also by the group if root owns it.
#[cfg(unix)]
fn check_key_permissions(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path).map_err(|e| {
        format!(
            "could not read private key file \"{}\": {e}",
            path.display()
        )
    })?;
    if !metadata.is_file() {
        return Err(format!(
            "private key file \"{}\" is not a regular file",
            path.display()
        ));
    }
    let mode = metadata.mode() & 0o777;
    let allowed = if metadata.uid() == 0 { 0o640 } else { 0o600 };
    if mode & !allowed != 0 {
        return Err(format!(
            "private key file \"{}\" has group or world access (mode {mode:04o}); permissions \
             should be u=rw (0600) or less",
            path.display()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_key_permissions(_: &Path) -> Result<(), String> {
    Ok(())
}

/// `verify-ca`, and weaker modes with a root certificate file: the chain must lead to a trusted
/// CA, but the certificate need not name the host. webpki checks the chain before the name, so
/// a name mismatch is only reported for a chain already found valid.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
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

/// `require` (and `allow`/`prefer`) without a root certificate: encryption without
/// authentication of the server, exactly what libpq does. The handshake signatures are still
/// checked, so the session key really belongs to whoever holds the certificate's key.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
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
            &self.0.signature_verification_algorithms,
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
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS failure from tokio-postgres in words a user can act on, or `None` if `e` is not one.
pub(crate) fn explain_failure(
    e: &tokio_postgres::Error,
    cfg: &ConnConfig,
    host_name: &str,
) -> Option<String> {
    use std::error::Error as _;
    if e.to_string() != "error performing TLS handshake" {
        return None;
    }
    let source = e.source()?;
    let rustls_error = source
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let roots = match cfg.sslrootcert() {
        Some(RootCert::System) => "the system's trusted CAs (sslrootcert=system)".to_owned(),
        Some(RootCert::File(path)) => format!("sslrootcert \"{}\"", path.display()),
        None => "sslrootcert".to_owned(),
    };
    Some(match rustls_error {
        Some(rustls::Error::InvalidCertificate(cert_error)) => match cert_error {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => format!(
                "the server's certificate is not signed by a CA in {roots} — check that \
                 sslrootcert= names the CA that signed it (for RDS, the RDS CA bundle)"
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!(
                    "the server's certificate is not valid for the host name \"{host_name}\" \
                 (sslmode=verify-full checks it) — connect with a host name the certificate \
                 lists"
                )
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the server's certificate has expired".to_owned()
            }
            other => format!("the server's certificate was rejected: {other:?}"),
        },
        Some(rustls::Error::AlertReceived(alert)) => format!(
            "the server ended the TLS handshake ({alert:?}) — if it requires a client \
             certificate, set sslcert= and sslkey="
        ),
        Some(other) => format!("TLS handshake failed: {other}"),
        None if source.to_string() == "server does not support TLS" => format!(
            "the server does not accept TLS connections, but sslmode={} requires TLS",
            cfg.sslmode()
        ),
        None => format!("TLS handshake failed: {source}"),
    })
}
