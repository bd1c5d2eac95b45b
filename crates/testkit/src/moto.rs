//! moto's server (`python3 -m moto.server`) for the tests: a second, independent implementation
//! of the AWS protocols the SDK talks — KMS (the JSON protocol) and S3, including Object Lock,
//! which the s3s-based [`crate::S3Server`] does not enforce — started on a free local port and
//! stopped when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

/// One running moto server.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    endpoint: String,
}

impl MotoServer {
    /// Starts the server and waits until it says where it listens. Panics, saying how to install
    /// moto, when it is missing.
    pub fn start() -> MotoServer {
        let mut child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run python3 for moto's KMS server: {e}"));
        let stderr = child.stderr.take().expect("piped stderr");
        // Its startup lines are read until the address (or the end, when it fails); then the
        // rest is drained, as moto logs every request there.
        let (found, said) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stderr).lines();
            let mut text = String::new();
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                text.push_str(&line);
                text.push('\n');
                if let Some(at) = line.find("Running on http://") {
                    let _ = found.send(Ok(line[at + "Running on ".len()..].trim().to_owned()));
                    for _ in lines.by_ref() {}
                    return;
                }
            }
            let _ = found.send(Err(text));
        });
        let (endpoint, said) = match said.recv() {
            Ok(Ok(endpoint)) => (Some(endpoint), String::new()),
            Ok(Err(text)) => (None, text),
            Err(_) => (None, String::new()),
        };
        let Some(endpoint) = endpoint else {
            let _ = child.kill();
            panic!(
                "moto's server did not start (install it with `pip install 'moto[server]'`; \
                 .ci/run does this):\n{said}"
            );
        };
        MotoServer { child, endpoint }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Creates a symmetric key and returns its id.
    pub fn create_key(&self) -> String {
        let answer = self.call("CreateKey", r#"{"Description":"pgark test"}"#);
        let id = answer
            .split("\"KeyId\": \"")
            .nth(1)
            .or_else(|| answer.split("\"KeyId\":\"").nth(1))
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no KeyId in moto's CreateKey answer: {answer}"));
        id.to_owned()
    }

    /// One KMS call (`TrentService.<action>`) with a JSON body; the answer's body. moto does not
    /// check signatures, so the request is sent unsigned.
    fn call(&self, action: &str, body: &str) -> String {
        let address = self.endpoint.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).expect("connect to moto");
        let request = format!(
            "POST / HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-amz-json-1.1\r\n\
             X-Amz-Target: TrentService.{action}\r\nAuthorization: AWS4-HMAC-SHA256 \
             Credential=test/20260101/us-east-1/kms/aws4_request, SignedHeaders=host, \
             Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).expect("send to moto");
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .expect("read moto's answer");
        assert!(
            answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200"),
            "moto refused {action}: {answer}"
        );
        answer
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default()
    }

    /// The environment pgark needs to use it as its KMS: credentials (moto accepts any) and a
    /// region.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "pgark-test".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "pgark-test".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("PGARK_KMS_ENDPOINT", self.endpoint.clone()),
        ]
    }

    /// The environment pgark needs to use it as its S3 store (see [`crate::S3Server::env`]).
    pub fn s3_env(&self) -> Vec<(&'static str, String)> {
        crate::s3::aws_env(&self.endpoint)
    }

    /// An SDK client for its S3 (path-style), to arrange and inspect what pgark cannot.
    pub fn s3_client(&self) -> aws_sdk_s3::Client {
        crate::s3::sdk_client(&self.endpoint, crate::s3::ACCESS_KEY, crate::s3::SECRET_KEY)
    }

    /// Creates bucket `name`, with Object Lock enabled (and so versioning) when `object_lock`.
    pub async fn create_bucket(&self, name: &str, object_lock: bool) {
        self.s3_client()
            .create_bucket()
            .bucket(name)
            .object_lock_enabled_for_bucket(object_lock)
            .send()
            .await
            .unwrap_or_else(|e| panic!("moto refused to create bucket {name}: {e:?}"));
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
