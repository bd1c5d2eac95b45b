use clap::Args;
use pgark_archive::layout;
use pgark_engine::inventory::{BackupState, list_backups, list_before_images};
use pgark_engine::rekey::{RecipientChange, rekey};
use pgark_engine::{BackupRef, EngineError, open_backup_head};

use super::output::Output;

#[derive(Debug, Args)]
pub struct RekeyArgs {
    /// An encrypted backup (DEST/<id>, DEST/latest), or DEST itself: every encrypted backup under
    /// it, before-images included.
    target: String,
    /// A recipient to add: age1..., kms:KEY, or a file of them. Repeatable.
    #[arg(long, value_name = "RECIPIENT")]
    add_recipient: Vec<String>,
    /// A recipient to remove, as `pgark show` lists it (age1..., kms:KEY). Repeatable.
    #[arg(long, value_name = "RECIPIENT")]
    remove_recipient: Vec<String>,
    #[command(flatten)]
    store: super::store_args::StoreArgs,
    #[command(flatten)]
    keys: super::key_args::KeyArgs,
}

pub async fn run(args: RekeyArgs, output: &Output) -> anyhow::Result<()> {
    if args.add_recipient.is_empty() && args.remove_recipient.is_empty() {
        anyhow::bail!("nothing to change: give --add-recipient and/or --remove-recipient");
    }
    let mut change = RecipientChange::default();
    for spec in &args.add_recipient {
        change.add.extend(pgark_engine::recipients_from(spec)?);
    }
    for id in &args.remove_recipient {
        change.remove.push(pgark_engine::Recipient::parse(id)?.id());
    }
    let keyring = args.keys.keyring()?;
    let last = args
        .target
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("");
    let backups = if last == "latest" || layout::is_backup_id(last) {
        let (backup, _) = open_backup_head(&args.target, &args.store.options()?).await?;
        vec![backup]
    } else {
        let store = super::open_dest(&args.target, &args.store)?;
        let mut backups: Vec<BackupRef> = list_backups(store.as_ref())
            .await?
            .into_iter()
            .filter(|b| b.state == BackupState::Complete && b.is_encrypted())
            .map(|b| BackupRef::new(store.clone(), b.id))
            .collect();
        for image in list_before_images(store.as_ref()).await? {
            backups.push(BackupRef::new(store.clone(), image.path));
        }
        backups
    };
    let mut done = 0;
    for backup in &backups {
        match rekey(backup, &keyring, &change).await {
            Ok(outcome) => {
                done += 1;
                output.summary(&format!(
                    "rekeyed {}: recipients {} ({})",
                    outcome.location,
                    outcome.recipients.join(", "),
                    outcome.envelope
                ));
                if let Some(reason) = outcome.old_envelope_left {
                    tracing::warn!(
                        "{}: the old key envelope could not be removed and still opens with the \
                         old recipients' keys; remove it by hand: {reason}",
                        outcome.location
                    );
                }
            }
            // A folder of backups may hold before-images of clear backups: nothing to rekey.
            Err(EngineError::NotEncrypted { location }) if backups.len() > 1 => {
                tracing::info!("{location} is not encrypted: skipped");
            }
            Err(e) => return Err(e.into()),
        }
    }
    if done == 0 {
        anyhow::bail!("no encrypted backup under {}", args.target);
    }
    Ok(())
}
