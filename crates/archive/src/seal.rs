//! Client-side encryption: what a backup's data key seals and how (format 3).
//!
//! Every backup that is encrypted has its own random 256-bit data key. The key seals, with
//! AES-256-GCM, every piece of the backup that says anything about the data: each chunk's zstd
//! frame, each key filter, each table's frame of the chunk index, and the catalog (the schema,
//! the tables and the parts of the head that name things: the source, warnings, before-image
//! details). A sealed piece is the ciphertext followed by the 16-byte tag; compression comes
//! first, so sealed pieces are as small as clear ones plus the tag.
//!
//! **Associated data** binds each piece to where it belongs: its kind, the backup id, the object
//! it is stored in, its offset there and its table's id (see [`Piece`]). A piece moved within an
//! object, copied from another object or another backup, or replayed from an earlier dump, does
//! not authenticate where it is read. **Nonces** are the first 12 bytes of the SHA-256 of that
//! associated data: a backup's writer seals each place once, so under a key used for one backup
//! no nonce repeats (and none need be stored).
//!
//! The data key itself is wrapped for the backup's recipients (age X25519 keys, KMS keys) in a
//! key envelope object; the head records the envelope, the recipients' ids and [`DataKey::check`],
//! so that the key an envelope yields is known to be this backup's before anything is opened.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ArchiveError;
use crate::catalog::ObjectRef;

/// The only cipher: AES-256-GCM (aws-lc's, hardware-accelerated where the CPU has AES-NI).
pub const CIPHER: &str = "aes-256-gcm";

/// Bytes in a data key.
pub const DATA_KEY_LEN: usize = 32;

/// Bytes a sealed piece has beyond its plaintext: the GCM tag.
pub const TAG_LEN: usize = 16;

/// The format version of encrypted backups. Clear backups stay at [`crate::FORMAT_VERSION`], so
/// that earlier pgark versions still read them.
pub const ENCRYPTED_FORMAT_VERSION: u32 = 3;

/// One backup's data key, bound to the backup's id (which every piece's associated data holds).
pub struct DataKey {
    bytes: [u8; DATA_KEY_LEN],
    key: LessSafeKey,
    backup_id: String,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey({} of {})", self.check(), self.backup_id)
    }
}

impl PartialEq for DataKey {
    fn eq(&self, other: &Self) -> bool {
        self.check() == other.check() && self.backup_id == other.backup_id
    }
}

/// Where a sealed piece belongs: its associated data.
#[derive(Debug, Clone, Copy)]
pub enum Piece<'a> {
    /// A chunk's frame at `offset` of data object `object` (table `table`; 0 for large objects).
    Chunk {
        object: &'a str,
        offset: u64,
        table: u32,
    },
    /// A chunk's key filter, stored at `offset` of `object`.
    KeyFilter {
        object: &'a str,
        offset: u64,
        table: u32,
    },
    /// Table `table`'s chunk list, at `offset` of the chunk index.
    IndexFrame { offset: u64, table: u32 },
    /// The catalog object.
    Catalog,
}

impl Piece<'_> {
    fn associated_data(&self, backup_id: &str) -> Vec<u8> {
        let (kind, object, offset, table) = match *self {
            Piece::Chunk {
                object,
                offset,
                table,
            } => ("chunk", object, offset, table),
            Piece::KeyFilter {
                object,
                offset,
                table,
            } => ("key-filter", object, offset, table),
            Piece::IndexFrame { offset, table } => {
                ("index-frame", crate::CHUNK_INDEX_NAME, offset, table)
            }
            Piece::Catalog => ("catalog", crate::CATALOG_NAME, 0, 0),
        };
        let mut aad = Vec::with_capacity(64 + backup_id.len() + object.len());
        aad.extend_from_slice(b"pgark-seal-v1\0");
        for part in [kind, backup_id, object] {
            aad.extend_from_slice(part.as_bytes());
            aad.push(0);
        }
        aad.extend_from_slice(&offset.to_be_bytes());
        aad.extend_from_slice(&table.to_be_bytes());
        aad
    }
}

/// A sealed piece that did not open: altered, truncated, moved, or sealed under another key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAuthentic;

impl DataKey {
    /// A fresh random key for backup `backup_id`.
    pub fn generate(backup_id: &str) -> Result<DataKey, ArchiveError> {
        let mut bytes = [0u8; DATA_KEY_LEN];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| ArchiveError::Crypto {
            reason: "the system's random number generator failed".to_owned(),
        })?;
        DataKey::from_bytes(backup_id, &bytes)
    }

    /// The key `bytes` (as unwrapped from an envelope) for backup `backup_id`.
    pub fn from_bytes(backup_id: &str, bytes: &[u8]) -> Result<DataKey, ArchiveError> {
        let bytes: [u8; DATA_KEY_LEN] = bytes.try_into().map_err(|_| ArchiveError::Crypto {
            reason: format!(
                "a data key is {DATA_KEY_LEN} bytes, the envelope yielded {}",
                bytes.len()
            ),
        })?;
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| ArchiveError::Crypto {
            reason: "AES-256-GCM refused the key".to_owned(),
        })?;
        Ok(DataKey {
            bytes,
            key: LessSafeKey::new(key),
            backup_id: backup_id.to_owned(),
        })
    }

    /// The raw key, to be wrapped for recipients. Never written anywhere in the clear.
    pub fn expose_bytes(&self) -> &[u8; DATA_KEY_LEN] {
        &self.bytes
    }

    pub fn backup_id(&self) -> &str {
        &self.backup_id
    }

    /// A public fingerprint of the key (32 hex digits of a domain-separated SHA-256): the head
    /// records it, so that a key unwrapped from an envelope is known to be this backup's.
    pub fn check(&self) -> String {
        let mut hash = Sha256::new();
        hash.update(b"pgark-key-check-v1\0");
        hash.update(self.bytes);
        hex::encode(&hash.finalize()[..16])
    }

    fn nonce(aad: &[u8]) -> Nonce {
        let digest = Sha256::digest(aad);
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&digest[..12]);
        Nonce::assume_unique_for_key(nonce)
    }

    /// Seals `plaintext` as `piece`: ciphertext and tag, in the same buffer.
    pub fn seal(&self, piece: Piece<'_>, mut plaintext: Vec<u8>) -> Result<Vec<u8>, ArchiveError> {
        let aad = piece.associated_data(&self.backup_id);
        plaintext.reserve_exact(TAG_LEN);
        self.key
            .seal_in_place_append_tag(Self::nonce(&aad), Aad::from(&aad[..]), &mut plaintext)
            .map_err(|_| ArchiveError::Crypto {
                reason: "sealing failed".to_owned(),
            })?;
        Ok(plaintext)
    }

    /// Opens `sealed`, stored as `piece`: its plaintext, or [`NotAuthentic`].
    pub fn open(&self, piece: Piece<'_>, sealed: &[u8]) -> Result<Vec<u8>, NotAuthentic> {
        let aad = piece.associated_data(&self.backup_id);
        let mut buffer = sealed.to_vec();
        let plain_len = self
            .key
            .open_in_place(Self::nonce(&aad), Aad::from(&aad[..]), &mut buffer)
            .map_err(|_| NotAuthentic)?
            .len();
        buffer.truncate(plain_len);
        Ok(buffer)
    }
}

/// The head's record of a backup's encryption, readable without any key: what `ls` and `show`
/// print, and where the key envelope and the stored pieces' checksums are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptionInfo {
    /// [`CIPHER`].
    pub cipher: String,
    /// The recipients the data key is wrapped for, as given: `age1...` public keys, and
    /// `kms:` followed by a KMS key's id, ARN or alias.
    pub recipients: Vec<String>,
    /// [`DataKey::check`] of the backup's data key.
    pub key_check: String,
    /// The key envelope: the data key wrapped for each recipient.
    pub envelope: ObjectRef,
    /// Every stored piece of the data objects with its length and SHA-256, so that `verify`
    /// checks the stored bytes without a key. Set when the backup is finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksums: Option<ObjectRef>,
}

impl EncryptionInfo {
    /// The name of key envelope number `generation` (1 for the dump's; each rekey the next).
    pub fn envelope_name(generation: u32) -> String {
        format!("keys.{generation:04}.json")
    }

    /// The generation of the envelope the head names, if its name has the envelope's shape.
    pub fn envelope_generation(&self) -> Option<u32> {
        self.envelope
            .object
            .strip_prefix("keys.")?
            .strip_suffix(".json")?
            .parse()
            .ok()
    }
}

/// A key envelope object (`keys.NNNN.json`): the data key wrapped for every recipient. Nothing
/// in it is secret without a recipient's private key or KMS access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEnvelope {
    pub backup_id: String,
    /// [`DataKey::check`] of the key every wrapping holds.
    pub key_check: String,
    pub wrapped: Vec<WrappedKey>,
}

/// The data key wrapped one way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum WrappedKey {
    /// An ASCII-armored age file whose payload is the data key, for every age recipient listed:
    /// `jq -r '.wrapped[0].file' keys.0001.json | age -d -i KEY.txt` prints the key.
    Age {
        recipients: Vec<String>,
        file: String,
    },
    /// The data key encrypted by KMS key `key_id` (as given: id, ARN or alias), with the
    /// encryption context `{"pgark-backup": <backup id>}`; `ciphertext` is base64.
    Kms { key_id: String, ciphertext: String },
}

impl KeyEnvelope {
    pub fn to_bytes(&self) -> Result<Vec<u8>, ArchiveError> {
        let mut bytes =
            serde_json::to_vec_pretty(self).map_err(|e| ArchiveError::ManifestCorrupt {
                object: self.backup_id.clone(),
                reason: format!("cannot serialize the key envelope: {e}"),
            })?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Parses envelope `object` and checks that it is backup `backup_id`'s.
    pub fn from_bytes(
        object: &str,
        bytes: &[u8],
        backup_id: &str,
        key_check: &str,
    ) -> Result<KeyEnvelope, ArchiveError> {
        let corrupt = |reason: String| ArchiveError::ManifestCorrupt {
            object: object.to_owned(),
            reason,
        };
        let envelope: KeyEnvelope =
            serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        if envelope.backup_id != backup_id || envelope.key_check != key_check {
            return Err(corrupt(format!(
                "it is the key envelope of backup {} (key {}), not of {backup_id} (key {key_check})",
                envelope.backup_id, envelope.key_check
            )));
        }
        Ok(envelope)
    }
}

/// One stored piece of a data object, as the checksum list of an encrypted backup records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPiece {
    pub object: String,
    pub offset: u64,
    pub length: u64,
    pub sha256: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(offset: u64) -> Piece<'static> {
        Piece::Chunk {
            object: "data/00001.0000.copy.zst",
            offset,
            table: 1,
        }
    }

    #[test]
    fn a_sealed_piece_opens_only_where_it_was_sealed_and_under_its_key() {
        let key = DataKey::generate("2026-12-05T000000Z").expect("key");
        let sealed = key.seal(chunk(0), b"rows\n".to_vec()).expect("seal");
        assert_eq!(sealed.len(), 5 + TAG_LEN);
        assert_eq!(key.open(chunk(0), &sealed).expect("opens"), b"rows\n");
        // Moved within the object, or to another table, kind, backup or key: refused.
        assert_eq!(key.open(chunk(21), &sealed), Err(NotAuthentic));
        let other_table = Piece::Chunk {
            object: "data/00001.0000.copy.zst",
            offset: 0,
            table: 2,
        };
        assert_eq!(key.open(other_table, &sealed), Err(NotAuthentic));
        let filter = Piece::KeyFilter {
            object: "data/00001.0000.copy.zst",
            offset: 0,
            table: 1,
        };
        assert_eq!(key.open(filter, &sealed), Err(NotAuthentic));
        let same_bytes_other_backup =
            DataKey::from_bytes("2026-12-06T000000Z", key.expose_bytes()).expect("key");
        assert_eq!(
            same_bytes_other_backup.open(chunk(0), &sealed),
            Err(NotAuthentic)
        );
        let other = DataKey::generate("2026-12-05T000000Z").expect("key");
        assert_eq!(other.open(chunk(0), &sealed), Err(NotAuthentic));
        assert_ne!(other.check(), key.check());
        // Any flipped bit or lost byte.
        for at in 0..sealed.len() {
            let mut flipped = sealed.clone();
            flipped[at] ^= 0x40;
            assert_eq!(key.open(chunk(0), &flipped), Err(NotAuthentic), "byte {at}");
        }
        assert_eq!(
            key.open(chunk(0), &sealed[..sealed.len() - 1]),
            Err(NotAuthentic)
        );
    }

    #[test]
    fn a_key_is_refused_unless_it_has_the_right_length() {
        assert!(DataKey::from_bytes("b", &[7; 31]).is_err());
        let key = DataKey::from_bytes("b", &[7; 32]).expect("key");
        assert_eq!(
            key.check(),
            DataKey::from_bytes("b", &[7; 32]).expect("key").check()
        );
        assert!(!format!("{key:?}").contains("0707"));
    }

    #[test]
    fn an_envelope_belongs_to_one_backup_and_one_key() {
        let envelope = KeyEnvelope {
            backup_id: "a".into(),
            key_check: "k".into(),
            wrapped: vec![WrappedKey::Kms {
                key_id: "alias/x".into(),
                ciphertext: "AAAA".into(),
            }],
        };
        let bytes = envelope.to_bytes().expect("bytes");
        assert_eq!(
            KeyEnvelope::from_bytes("e", &bytes, "a", "k").expect("parses"),
            envelope
        );
        assert!(KeyEnvelope::from_bytes("e", &bytes, "b", "k").is_err());
        assert!(KeyEnvelope::from_bytes("e", &bytes, "a", "other").is_err());
    }
}
