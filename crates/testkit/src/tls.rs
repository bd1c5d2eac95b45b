//! Certificates for TLS tests, made with the `openssl` command-line tool in a temporary
//! directory: a CA, a server certificate for `localhost` and `127.0.0.1` signed by it, a client
//! certificate (CN = [`TestCerts::CLIENT_USER`]) signed by it, and a second, unrelated CA whose
//! trust must get a client nowhere.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::server::{PgServer, ServerOptions};

/// A throw-away PKI. The directory and every file in it go away when this is dropped — or, after
/// [`start_server`](Self::start_server), with the server's directory.
#[derive(Debug)]
pub struct TestCerts {
    dir: PathBuf,
    /// Owns `dir` until the files move into a server's directory.
    #[expect(
        dead_code,
        reason = "held only for its Drop, which removes the directory"
    )]
    temp: Option<tempfile::TempDir>,
}

impl TestCerts {
    /// The database user the client certificate names (its CN), for `cert` authentication.
    pub const CLIENT_USER: &'static str = "pgark_cert_user";

    /// Generates everything. Panics, saying how to install `openssl`, if it cannot.
    pub fn generate() -> TestCerts {
        let dir = tempfile::Builder::new()
            .prefix("pgark-certs-")
            .tempdir()
            .expect("create a temporary directory for test certificates");
        let certs = TestCerts {
            dir: dir.path().to_owned(),
            temp: Some(dir),
        };
        certs.self_signed_ca("ca", "pgark test CA");
        certs.self_signed_ca("wrong-ca", "pgark unrelated CA");
        certs.signed(
            "server",
            "localhost",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
            1001,
        );
        certs.signed(
            "client",
            Self::CLIENT_USER,
            "extendedKeyUsage=clientAuth\n",
            1002,
        );
        certs
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts a server with [`server_options`](Self::server_options)`(hba)` and moves the
    /// certificates into its directory, so that they are removed with it when the test process
    /// ends even if these values live in a `static`. Panics on failure.
    #[track_caller]
    pub fn start_server(self, hba: &[&str]) -> (PgServer, TestCerts) {
        let server = PgServer::start(self.server_options(hba));
        let dir = server
            .data_dir()
            .parent()
            .expect("the data directory has a parent")
            .join("client-certs");
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        for entry in std::fs::read_dir(&self.dir).expect("read the certificates directory") {
            let from = entry.expect("directory entry").path();
            let to = dir.join(from.file_name().expect("a file name"));
            // Copying keeps each file's mode (0600 for keys).
            std::fs::copy(&from, &to)
                .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
        }
        drop(self);
        (server, TestCerts { dir, temp: None })
    }

    /// The CA that signed the server and client certificates (PEM).
    pub fn ca_cert(&self) -> PathBuf {
        self.path("ca.crt")
    }

    /// A CA that signed nothing here.
    pub fn wrong_ca_cert(&self) -> PathBuf {
        self.path("wrong-ca.crt")
    }

    pub fn server_cert(&self) -> PathBuf {
        self.path("server.crt")
    }

    pub fn server_key(&self) -> PathBuf {
        self.path("server.key")
    }

    /// The client certificate for [`Self::CLIENT_USER`].
    pub fn client_cert(&self) -> PathBuf {
        self.path("client.crt")
    }

    /// The client key, mode 0600.
    pub fn client_key(&self) -> PathBuf {
        self.path("client.key")
    }

    /// Server options for `ssl = on` with these certificates (`server.crt`, `server.key` and
    /// `root.crt` — the CA, for client certificates — in the data directory), listening on TCP,
    /// with `hba` lines placed first.
    pub fn server_options(&self, hba: &[&str]) -> ServerOptions {
        let read = |path: PathBuf| {
            std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        };
        ServerOptions {
            conf: vec![
                "ssl = on".to_owned(),
                "ssl_cert_file = 'server.crt'".to_owned(),
                "ssl_key_file = 'server.key'".to_owned(),
                "ssl_ca_file = 'root.crt'".to_owned(),
            ],
            hba: hba.iter().map(|line| (*line).to_owned()).collect(),
            files: vec![
                ("server.crt".to_owned(), read(self.server_cert())),
                ("server.key".to_owned(), read(self.server_key())),
                ("root.crt".to_owned(), read(self.ca_cert())),
            ],
            tcp: true,
            ..ServerOptions::default()
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn self_signed_ca(&self, name: &str, common_name: &str) {
        self.openssl(&[
            "req",
            "-x509",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-days",
            "3650",
            "-subj",
            &format!("/CN={common_name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
    }

    fn signed(&self, name: &str, common_name: &str, extensions: &str, serial: u32) {
        std::fs::write(self.path(&format!("{name}.ext")), extensions)
            .expect("write the certificate extensions file");
        self.openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={common_name}"),
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-set_serial",
            &serial.to_string(),
            "-days",
            "3650",
            "-out",
            &format!("{name}.crt"),
            "-extfile",
            &format!("{name}.ext"),
        ]);
        set_private(&self.path(&format!("{name}.key")));
    }

    fn openssl(&self, args: &[&str]) {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "could not run `openssl` ({e}); the TLS tests make their certificates with it \
                     — install it (Debian/Ubuntu: `apt-get install openssl`)"
                )
            });
        assert!(
            output.status.success(),
            "openssl {} failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .unwrap_or_else(|e| panic!("chmod 0600 {}: {e}", path.display()));
}
