//! The TLS settings' types: libpq's `sslmode` and where trusted CAs come from (`sslrootcert`).
//! Only parsed and stored here; what each requires of the transport is decided at connect time
//! (`crate::tls`).

use std::fmt;
use std::path::PathBuf;

/// libpq's `sslmode`. Only parsed and stored here; what each mode requires of the transport is
/// decided at connect time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SslMode {
    /// Never use TLS.
    Disable,
    /// Try without TLS first, then with it.
    Allow,
    /// Try TLS first, then without it (libpq's default).
    #[default]
    Prefer,
    /// TLS, without checking the server certificate.
    Require,
    /// TLS, with a certificate signed by a trusted CA.
    VerifyCa,
    /// TLS, with a trusted certificate whose name matches the host.
    VerifyFull,
}

impl SslMode {
    /// The libpq spelling, e.g. `verify-full`.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether the mode refuses a plaintext connection.
    pub fn requires_tls(self) -> bool {
        matches!(
            self,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
        )
    }

    /// The stronger of two modes, in the order of the enum.
    pub(crate) fn max_with(self, other: SslMode) -> SslMode {
        if (other as u8) > (self as u8) {
            other
        } else {
            self
        }
    }

    pub(crate) fn from_libpq(s: &str) -> Option<SslMode> {
        [
            SslMode::Disable,
            SslMode::Allow,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ]
        .into_iter()
        .find(|mode| mode.as_str() == s)
    }
}

/// Where trusted CA certificates for verifying the server come from (`sslrootcert`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RootCert {
    /// A PEM file (one certificate or a bundle, such as the RDS CA bundle). libpq's default is
    /// `~/.postgresql/root.crt`; when the file does not exist, `require` and weaker modes do not
    /// verify the server, and `verify-ca`/`verify-full` fail.
    File(PathBuf),
    /// `sslrootcert=system`: the operating system's trusted CAs (`SSL_CERT_FILE`/`SSL_CERT_DIR`
    /// honoured, as OpenSSL does). Implies `verify-full`, as in libpq.
    System,
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
