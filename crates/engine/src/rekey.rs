//! Changing who can open an encrypted backup without touching its data: the data key is
//! rewrapped for the new recipients into a new key envelope, and the head is switched to it.
//!
//! The steps are ordered so that a rekey stopped at any point (killed, store gone) leaves a
//! backup that the old recipients or the new ones open:
//!
//! 1. the new envelope `keys.NNNN.json` (the next number) is stored, never over an object, and
//!    read back: until the head names it, the head still names the old envelope;
//! 2. the head is rewritten to name the new envelope and recipients (one atomic put), and read
//!    back;
//! 3. only then is the old envelope removed. Until then, the old envelope is still there too.

use pgark_archive::seal::{EncryptionInfo, KeyEnvelope};
use pgark_archive::{ObjectRef, layout};
use pgark_keys::{Keyring, Recipient};
use pgark_storage::{ObjectKey, StoreError};

use crate::{BackupRef, EngineError};

/// Envelope numbers a backup may reach (rekeys, interrupted ones included).
const MAX_ENVELOPES: u32 = 9999;

/// Who to add and who to remove.
#[derive(Debug, Clone, Default)]
pub struct RecipientChange {
    pub add: Vec<Recipient>,
    /// Recipients' ids as the head lists them (`age1...`, `kms:...`).
    pub remove: Vec<String>,
}

/// What a rekey did to one backup.
#[derive(Debug, Clone)]
pub struct RekeyOutcome {
    pub location: String,
    pub recipients: Vec<String>,
    /// The new envelope's name.
    pub envelope: String,
    /// The old envelope could not be removed (it still opens with the old recipients' keys);
    /// the reason.
    pub old_envelope_left: Option<String>,
}

/// Rewraps `backup`'s data key (opened with `keys`) for its recipients changed by `change`.
pub async fn rekey(
    backup: &BackupRef,
    keys: &Keyring,
    change: &RecipientChange,
) -> Result<RekeyOutcome, EngineError> {
    let store = backup.store.as_ref();
    let location = backup.location();
    let (head, _) = crate::inventory::read_head(store, &backup.id).await?;
    let Some(info) = &head.encryption else {
        return Err(EngineError::NotEncrypted { location });
    };
    for id in &change.remove {
        if !info.recipients.contains(id) {
            return Err(EngineError::NotARecipient {
                location,
                recipient: id.clone(),
                recipients: info.recipients.join(", "),
            });
        }
    }
    let kept = info
        .recipients
        .iter()
        .filter(|id| !change.remove.contains(id))
        .map(|id| Recipient::parse(id))
        .collect::<Result<Vec<_>, _>>()?;
    let changed: Vec<Recipient> = kept.into_iter().chain(change.add.iter().cloned()).collect();
    let recipients: Vec<Recipient> = pgark_keys::distinct(&changed)
        .into_iter()
        .cloned()
        .collect();
    if recipients.is_empty() {
        return Err(EngineError::NoRecipientLeft { location });
    }
    let key =
        crate::inventory::open_data_key(store, &backup.id, &head.backup_id, info, keys).await?;

    // 1. The new envelope, beside the old one.
    let envelope = pgark_keys::wrap(&key, &recipients, keys.kms()).await?;
    let bytes = envelope.to_bytes()?;
    // The next free number: an interrupted rekey may have left an envelope the head never
    // named (it is removed with the old one below).
    let mut stale = Vec::new();
    let mut generation = info.envelope_generation().unwrap_or(1);
    let (name, envelope_key) = loop {
        generation += 1;
        let name = EncryptionInfo::envelope_name(generation);
        let key = ObjectKey::new(layout::object_name(&backup.id, &name))?;
        match store.put_if_absent(&key, bytes.clone().into()).await {
            Ok(()) => break (name, key),
            Err(StoreError::AlreadyExists { .. }) if generation < MAX_ENVELOPES => stale.push(key),
            Err(e) => return Err(e.into()),
        }
    };
    let stored = store.get(&envelope_key).await?;
    if stored[..] != bytes[..] {
        return Err(EngineError::ReadBackDiffers {
            object: format!("{location}/{name}"),
        });
    }
    KeyEnvelope::from_bytes(&name, &stored, &head.backup_id, &info.key_check)?;

    // 2. The head names it.
    let mut new_head = head.clone();
    let new_info = EncryptionInfo {
        recipients: recipients.iter().map(Recipient::id).collect(),
        envelope: ObjectRef {
            object: name.clone(),
            length: bytes.len() as u64,
            sha256: pgark_archive::sha256_hex(&bytes),
        },
        ..info.clone()
    };
    new_head.encryption = Some(new_info.clone());
    let head_bytes = new_head.to_bytes()?;
    let head_key = ObjectKey::new(layout::manifest_name(&backup.id))?;
    store.put(&head_key, head_bytes.clone().into()).await?;
    if store.get(&head_key).await?[..] != head_bytes[..] {
        return Err(EngineError::ReadBackDiffers {
            object: format!("{location}/{}", layout::MANIFEST_NAME),
        });
    }

    // 3. The old envelope goes, and any an interrupted rekey left.
    let old_key = ObjectKey::new(layout::object_name(&backup.id, &info.envelope.object))?;
    let mut old_envelope_left = None;
    for key in std::iter::once(old_key).chain(stale) {
        if let Err(e) = store.delete(&key).await {
            old_envelope_left.get_or_insert(format!("{key}: {e}"));
        }
    }
    Ok(RekeyOutcome {
        location,
        recipients: new_info.recipients,
        envelope: name,
        old_envelope_left,
    })
}
