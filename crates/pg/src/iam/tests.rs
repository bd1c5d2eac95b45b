//! Known-answer tests: the expected signature is derived here step by step from the SigV4
//! specification with plain HMAC-SHA256, independently of the signing crate.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::{rds_auth_token, region_from_host};

const ACCESS_KEY: &str = "AKIDEXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const HOST: &str = "mydb.c1a2b3c4d5e6.eu-west-1.rds.amazonaws.com";
const PORT: u16 = 5432;
const USER: &str = "iam_user";
const REGION: &str = "eu-west-1";
/// 2015-08-30T12:36:00Z.
const TIME: u64 = 1_440_938_160;

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date);
    let k_region = hmac(&k_date, region);
    let k_service = hmac(&k_region, service);
    hmac(&k_service, "aws4_request")
}

#[test]
fn the_hand_written_key_derivation_matches_the_published_aws_example() {
    // From the AWS General Reference, "Examples of how to derive a signing key for SigV4".
    assert_eq!(
        hex::encode(signing_key(SECRET_KEY, "20120215", "us-east-1", "iam")),
        "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
    );
}

/// The query parameters of a token, decoded.
fn params(token: &str) -> BTreeMap<String, String> {
    let (_, query) = token.split_once("/?").expect("a token has a query");
    query
        .split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').expect("key=value");
            (k.to_owned(), v.replace("%2F", "/"))
        })
        .collect()
}

#[test]
fn the_token_is_signed_for_host_port_user_and_region() {
    let credentials = Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test");
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(TIME);
    let token =
        rds_auth_token(HOST, PORT, USER, REGION, &credentials, time).expect("token is signed");

    assert!(
        token.starts_with(&format!("{HOST}:{PORT}/?Action=connect&DBUser={USER}&")),
        "{token}"
    );
    assert!(!token.contains("://"), "no scheme: {token}");
    assert!(!token.contains(SECRET_KEY), "{token}");

    // The canonical request, string to sign and signature, by hand (SigV4, query-string auth).
    let credential_scope = format!("20150830/{REGION}/rds-db/aws4_request");
    let canonical_query = format!(
        "Action=connect&DBUser={USER}&X-Amz-Algorithm=AWS4-HMAC-SHA256&\
         X-Amz-Credential={ACCESS_KEY}%2F{}&X-Amz-Date=20150830T123600Z&X-Amz-Expires=900&\
         X-Amz-SignedHeaders=host",
        credential_scope.replace('/', "%2F")
    );
    let empty_payload_hash = hex::encode(Sha256::digest(b""));
    let canonical_request =
        format!("GET\n/\n{canonical_query}\nhost:{HOST}:{PORT}\n\nhost\n{empty_payload_hash}");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n20150830T123600Z\n{credential_scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let signature = hex::encode(hmac(
        &signing_key(SECRET_KEY, "20150830", REGION, "rds-db"),
        &string_to_sign,
    ));

    let expected: BTreeMap<String, String> = [
        ("Action", "connect".to_owned()),
        ("DBUser", USER.to_owned()),
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256".to_owned()),
        (
            "X-Amz-Credential",
            format!("{ACCESS_KEY}/{credential_scope}"),
        ),
        ("X-Amz-Date", "20150830T123600Z".to_owned()),
        ("X-Amz-Expires", "900".to_owned()),
        ("X-Amz-SignedHeaders", "host".to_owned()),
        ("X-Amz-Signature", signature),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(params(&token), expected, "{token}");
}

#[test]
fn a_session_token_is_carried_in_the_token() {
    let credentials = Credentials::new(
        ACCESS_KEY,
        SECRET_KEY,
        Some("SESSION/TOKEN+1".to_owned()),
        None,
        "test",
    );
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(TIME);
    let token = rds_auth_token(HOST, PORT, USER, REGION, &credentials, time).expect("signed");
    assert!(
        token.contains("&X-Amz-Security-Token=SESSION%2FTOKEN%2B1"),
        "{token}"
    );
}

#[test]
fn the_region_is_read_from_an_rds_host_name() {
    assert_eq!(region_from_host(HOST).as_deref(), Some(REGION));
    assert_eq!(
        region_from_host("db.cluster-ro-abc.us-east-2.rds.amazonaws.com.").as_deref(),
        Some("us-east-2")
    );
    assert_eq!(region_from_host("localhost"), None);
    assert_eq!(region_from_host("rds.amazonaws.com"), None);
}
