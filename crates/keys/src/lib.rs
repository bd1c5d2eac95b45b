//! Keys for encrypted backups: who a backup's data key is wrapped for (recipients: age X25519
//! public keys, AWS KMS keys), what a reader opens it with (age identity files, KMS access), and
//! the key envelope that holds the wrapped key (see `pgark_archive::seal` for what the key seals).
//!
//! A data key is wrapped once per kind: one age file for all age recipients (ASCII-armored, so
//! that `age -d` opens it by hand) and one KMS ciphertext per KMS key, each bound to the backup
//! by the encryption context `{"pgark-backup": <id>}`. Rewrapping (a rekey) needs the data key,
//! so an identity that opens the backup, but never touches the data.

mod kms;

use std::io::{Read, Write};
use std::path::Path;

use pgark_archive::ArchiveError;
use pgark_archive::seal::{DataKey, EncryptionInfo, KeyEnvelope, WrappedKey};

pub use kms::KmsAccess;

/// What can go wrong with keys, in the terms of keys: recipients, identities, envelopes, KMS.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("{given:?} is not a recipient: {reason}")]
    InvalidRecipient { given: String, reason: String },

    #[error("cannot read identities from {path}: {reason}")]
    IdentityFile { path: String, reason: String },

    #[error("backup {backup} is encrypted and no key given opens it; it accepts {accepted}{tried}")]
    NoKeyOpens {
        backup: String,
        /// The recipients' ids, comma-separated.
        accepted: String,
        /// What was tried and why each failed, starting with `; ` (empty if nothing was tried).
        tried: String,
    },

    #[error("KMS key {key_id}: {reason}")]
    Kms {
        key_id: String,
        reason: String,
        /// Whether trying again later may succeed (timeouts, throttling, unreachable).
        transient: bool,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    #[error("age: {reason}")]
    Age { reason: String },

    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

impl KeyError {
    /// Whether the same operation may succeed if tried again later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            KeyError::Kms {
                transient: true,
                ..
            }
        )
    }
}

/// Who a data key is wrapped for.
#[derive(Clone)]
pub enum Recipient {
    /// An age X25519 public key (`age1...`).
    Age {
        key: age::x25519::Recipient,
        text: String,
    },
    /// An AWS KMS key: its id, ARN, alias (`alias/backups`) or alias ARN.
    Kms { key_id: String },
}

impl std::fmt::Debug for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.id())
    }
}

/// The prefix that marks a KMS key among recipients.
pub const KMS_PREFIX: &str = "kms:";

impl Recipient {
    /// Parses `age1...` or `kms:KEY`.
    pub fn parse(text: &str) -> Result<Recipient, KeyError> {
        let text = text.trim();
        let invalid = |reason: &str| KeyError::InvalidRecipient {
            given: text.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(key_id) = text.strip_prefix(KMS_PREFIX) {
            if key_id.is_empty() || key_id.chars().any(char::is_whitespace) {
                return Err(invalid(
                    "a KMS recipient is kms: followed by a key id, ARN or alias",
                ));
            }
            return Ok(Recipient::Kms {
                key_id: key_id.to_owned(),
            });
        }
        if text.starts_with("age1") {
            let key = text
                .parse::<age::x25519::Recipient>()
                .map_err(|e| invalid(&format!("not a valid age X25519 public key ({e})")))?;
            return Ok(Recipient::Age {
                key,
                text: text.to_owned(),
            });
        }
        Err(invalid(
            "expected an age public key (age1...), kms:KEY, or a file of them",
        ))
    }

    /// The recipient as the head records it and messages name it.
    pub fn id(&self) -> String {
        match self {
            Recipient::Age { text, .. } => text.clone(),
            Recipient::Kms { key_id } => format!("{KMS_PREFIX}{key_id}"),
        }
    }
}

/// The recipients one `spec` names: a recipient itself, or the path of a file of them (one per
/// line; blank lines and `#` comments ignored), as age's `-R` reads.
pub fn recipients_from(spec: &str) -> Result<Vec<Recipient>, KeyError> {
    let path = Path::new(spec);
    if !(spec.starts_with("age1") || spec.starts_with(KMS_PREFIX)) && path.is_file() {
        let text = std::fs::read_to_string(path).map_err(|e| KeyError::InvalidRecipient {
            given: spec.to_owned(),
            reason: format!("cannot read the recipients file: {e}"),
        })?;
        let recipients = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(Recipient::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if recipients.is_empty() {
            return Err(KeyError::InvalidRecipient {
                given: spec.to_owned(),
                reason: "the recipients file lists no recipient".to_owned(),
            });
        }
        return Ok(recipients);
    }
    Ok(vec![Recipient::parse(spec)?])
}

/// Recipients without repeats (by [`Recipient::id`]), in the order given: the one place a
/// recipient list is deduplicated, for the envelope and for the head's list alike.
pub fn distinct(recipients: &[Recipient]) -> Vec<&Recipient> {
    let mut seen = std::collections::BTreeSet::new();
    recipients.iter().filter(|r| seen.insert(r.id())).collect()
}

/// A fresh data key for backup `backup_id` and its envelope for `recipients` (at least one).
/// With a KMS recipient the key comes from KMS (`GenerateDataKey` with the first KMS key);
/// otherwise from the system's random number generator.
pub async fn new_data_key(
    backup_id: &str,
    recipients: &[Recipient],
    kms: &KmsAccess,
) -> Result<(DataKey, KeyEnvelope), KeyError> {
    let recipients = distinct(recipients);
    let first_kms = recipients.iter().find_map(|r| match r {
        Recipient::Kms { key_id } => Some(key_id.as_str()),
        Recipient::Age { .. } => None,
    });
    let (key, generated) = match first_kms {
        Some(key_id) => {
            let (bytes, ciphertext) = kms.generate_data_key(key_id, backup_id).await?;
            let key = DataKey::from_bytes(backup_id, &bytes)?;
            (key, Some((key_id.to_owned(), ciphertext)))
        }
        None => (DataKey::generate(backup_id)?, None),
    };
    let envelope = wrap_with(&key, &recipients, kms, generated).await?;
    Ok((key, envelope))
}

/// The envelope of `key` for `recipients` (at least one): a rekey's new envelope.
pub async fn wrap(
    key: &DataKey,
    recipients: &[Recipient],
    kms: &KmsAccess,
) -> Result<KeyEnvelope, KeyError> {
    wrap_with(key, &distinct(recipients), kms, None).await
}

async fn wrap_with(
    key: &DataKey,
    recipients: &[&Recipient],
    kms: &KmsAccess,
    generated: Option<(String, String)>,
) -> Result<KeyEnvelope, KeyError> {
    let mut wrapped = Vec::new();
    let age_recipients: Vec<&Recipient> = recipients
        .iter()
        .copied()
        .filter(|r| matches!(r, Recipient::Age { .. }))
        .collect();
    if !age_recipients.is_empty() {
        wrapped.push(WrappedKey::Age {
            recipients: age_recipients.iter().map(|r| r.id()).collect(),
            file: age_wrap(key, &age_recipients)?,
        });
    }
    for recipient in recipients {
        let Recipient::Kms { key_id } = recipient else {
            continue;
        };
        let ciphertext = match &generated {
            Some((generated_by, ciphertext)) if generated_by == key_id => ciphertext.clone(),
            _ => kms.encrypt(key_id, key).await?,
        };
        wrapped.push(WrappedKey::Kms {
            key_id: key_id.clone(),
            ciphertext,
        });
    }
    Ok(KeyEnvelope {
        backup_id: key.backup_id().to_owned(),
        key_check: key.check(),
        wrapped,
    })
}

/// One armored age file holding `key`, for every age recipient in `recipients`.
fn age_wrap(key: &DataKey, recipients: &[&Recipient]) -> Result<String, KeyError> {
    let failed = |e: &dyn std::fmt::Display| KeyError::Age {
        reason: format!("cannot wrap the data key: {e}"),
    };
    let keys: Vec<&dyn age::Recipient> = recipients
        .iter()
        .filter_map(|r| match r {
            Recipient::Age { key, .. } => Some(key as &dyn age::Recipient),
            Recipient::Kms { .. } => None,
        })
        .collect();
    let encryptor = age::Encryptor::with_recipients(keys.into_iter()).map_err(|e| failed(&e))?;
    let mut armored = Vec::new();
    let armor =
        age::armor::ArmoredWriter::wrap_output(&mut armored, age::armor::Format::AsciiArmor)
            .map_err(|e| failed(&e))?;
    let mut writer = encryptor.wrap_output(armor).map_err(|e| failed(&e))?;
    writer
        .write_all(key.expose_bytes())
        .map_err(|e| failed(&e))?;
    writer
        .finish()
        .and_then(|armor| armor.finish())
        .map_err(|e| failed(&e))?;
    String::from_utf8(armored).map_err(|e| failed(&e))
}

/// What a reader has to open encrypted backups with: age identities and KMS access.
#[derive(Default)]
pub struct Keyring {
    identities: Vec<Box<dyn age::Identity + Send + Sync>>,
    /// The identity files read, for messages.
    files: Vec<String>,
    kms: KmsAccess,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("identity_files", &self.files)
            .field("kms", &self.kms)
            .finish()
    }
}

impl Keyring {
    pub fn new(kms: KmsAccess) -> Keyring {
        Keyring {
            kms,
            ..Keyring::default()
        }
    }

    /// Adds the identities of an age identity file (`AGE-SECRET-KEY-1...` lines, as
    /// `age-keygen` or `pgark keygen` writes them).
    pub fn add_identity_file(&mut self, path: &Path) -> Result<(), KeyError> {
        let failed = |reason: String| KeyError::IdentityFile {
            path: path.display().to_string(),
            reason,
        };
        let file = age::IdentityFile::from_file(path.display().to_string())
            .map_err(|e| failed(e.to_string()))?;
        let identities = file.into_identities().map_err(|e| failed(e.to_string()))?;
        if identities.is_empty() {
            return Err(failed("it holds no identity".to_owned()));
        }
        self.identities.extend(identities);
        self.files.push(path.display().to_string());
        Ok(())
    }

    pub fn kms(&self) -> &KmsAccess {
        &self.kms
    }

    /// The data key of the backup whose head records `info`, from its envelope: with an age
    /// identity if one matches, else with KMS for a KMS wrapping. The key must be the one the
    /// head records.
    pub async fn open(
        &self,
        envelope: &KeyEnvelope,
        info: &EncryptionInfo,
    ) -> Result<DataKey, KeyError> {
        let backup = envelope.backup_id.as_str();
        let mut tried = Vec::new();
        for wrapped in &envelope.wrapped {
            let WrappedKey::Age { file, .. } = wrapped else {
                continue;
            };
            if self.identities.is_empty() {
                continue;
            }
            match self.age_unwrap(file) {
                Ok(Some(bytes)) => return checked(backup, &bytes, info),
                Ok(None) => tried.push(format!(
                    "no age identity in {} matches",
                    self.files.join(", ")
                )),
                Err(e) => tried.push(e.to_string()),
            }
        }
        for wrapped in &envelope.wrapped {
            let WrappedKey::Kms { key_id, ciphertext } = wrapped else {
                continue;
            };
            match self.kms.decrypt(key_id, ciphertext, backup).await {
                Ok(bytes) => return checked(backup, &bytes, info),
                Err(e) if e.is_transient() => return Err(e),
                Err(e) => tried.push(e.to_string()),
            }
        }
        if self.identities.is_empty()
            && envelope
                .wrapped
                .iter()
                .all(|w| matches!(w, WrappedKey::Age { .. }))
        {
            tried.push("no age identity was given".to_owned());
        }
        Err(KeyError::NoKeyOpens {
            backup: backup.to_owned(),
            accepted: info.recipients.join(", "),
            tried: tried.iter().map(|t| format!("; {t}")).collect(),
        })
    }

    /// The data key from an armored age file, or `None` when no identity matches it.
    fn age_unwrap(&self, file: &str) -> Result<Option<Vec<u8>>, KeyError> {
        let failed = |e: &dyn std::fmt::Display| KeyError::Age {
            reason: format!("cannot open the key envelope's age file: {e}"),
        };
        let reader = age::armor::ArmoredReader::new(file.as_bytes());
        let decryptor = age::Decryptor::new(reader).map_err(|e| failed(&e))?;
        let identities = self
            .identities
            .iter()
            .map(|i| i.as_ref() as &dyn age::Identity);
        match decryptor.decrypt(identities) {
            Ok(mut reader) => {
                let mut bytes = Vec::new();
                reader.read_to_end(&mut bytes).map_err(|e| failed(&e))?;
                Ok(Some(bytes))
            }
            Err(age::DecryptError::NoMatchingKeys) => Ok(None),
            Err(e) => Err(failed(&e)),
        }
    }
}

/// `bytes` as backup `backup`'s data key, if it is the one `info` records.
fn checked(backup: &str, bytes: &[u8], info: &EncryptionInfo) -> Result<DataKey, KeyError> {
    let key = DataKey::from_bytes(backup, bytes)?;
    if key.check() != info.key_check {
        return Err(KeyError::NoKeyOpens {
            backup: backup.to_owned(),
            accepted: info.recipients.join(", "),
            tried: format!(
                "; the envelope yielded key {}, the head records {}",
                key.check(),
                info.key_check
            ),
        });
    }
    Ok(key)
}

/// A new age identity: the secret key line and its public key (`age1...`), as `age-keygen`
/// makes them.
pub fn generate_identity() -> (String, String) {
    use age::secrecy::ExposeSecret;
    let identity = age::x25519::Identity::generate();
    let public = identity.to_public().to_string();
    (identity.to_string().expose_secret().to_owned(), public)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity_file(dir: &Path, name: &str) -> (std::path::PathBuf, Recipient) {
        let (secret, public) = generate_identity();
        let path = dir.join(name);
        std::fs::write(&path, format!("# public key: {public}\n{secret}\n")).expect("write");
        (path, Recipient::parse(&public).expect("recipient"))
    }

    #[tokio::test]
    async fn an_envelope_opens_with_any_of_its_age_identities_and_no_other() {
        let dir = tempfile::tempdir().expect("dir");
        let (a_file, a) = identity_file(dir.path(), "a.txt");
        let (b_file, b) = identity_file(dir.path(), "b.txt");
        let (c_file, _) = identity_file(dir.path(), "c.txt");
        let kms = KmsAccess::default();
        let (key, envelope) = new_data_key("id", &[a.clone(), b.clone(), a], &kms)
            .await
            .expect("key");
        let info = EncryptionInfo {
            cipher: pgark_archive::seal::CIPHER.to_owned(),
            recipients: vec![],
            key_check: key.check(),
            envelope: pgark_archive::ObjectRef {
                object: "keys.0001.json".into(),
                length: 0,
                sha256: String::new(),
            },
            checksums: None,
        };
        let WrappedKey::Age { recipients, file } = &envelope.wrapped[0] else {
            panic!("an age wrapping first");
        };
        assert_eq!(recipients.len(), 2, "repeats are dropped");
        assert!(file.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
        for path in [&a_file, &b_file] {
            let mut keyring = Keyring::default();
            keyring.add_identity_file(path).expect("identity");
            let opened = keyring.open(&envelope, &info).await.expect("opens");
            assert_eq!(opened.expose_bytes(), key.expose_bytes());
        }
        let mut wrong = Keyring::default();
        wrong.add_identity_file(&c_file).expect("identity");
        let refused = wrong.open(&envelope, &info).await.expect_err("refused");
        assert!(
            refused.to_string().contains("no age identity in"),
            "{refused}"
        );
        let none = Keyring::default().open(&envelope, &info).await;
        assert!(
            none.expect_err("refused")
                .to_string()
                .contains("no age identity was given")
        );
    }

    #[test]
    fn recipients_are_parsed_from_text_and_files() {
        let dir = tempfile::tempdir().expect("dir");
        let (_, public) = generate_identity();
        let file = dir.path().join("recipients.txt");
        std::fs::write(&file, format!("# team\n{public}\n\nkms:alias/backups\n")).expect("write");
        let ids: Vec<String> = recipients_from(&file.display().to_string())
            .expect("file")
            .iter()
            .map(Recipient::id)
            .collect();
        assert_eq!(ids, [public.clone(), "kms:alias/backups".to_owned()]);
        for bad in ["age1nope", "kms:", "nothing", "kms:a b"] {
            assert!(recipients_from(bad).is_err(), "{bad}");
        }
        std::fs::write(&file, "# nobody\n").expect("write");
        assert!(recipients_from(&file.display().to_string()).is_err());
    }
}
