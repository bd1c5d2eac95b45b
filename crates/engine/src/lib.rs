//! pgark's dump and restore engines: they drive PostgreSQL sessions (crate `pgark-pg`), the
//! archive format (`pgark-archive`) and a store (`pgark-storage`) to take and restore backups.
//!
//! The engines own the pipelines and their invariants: one exported snapshot per dump, the
//! manifest written last, every chunk checked before its rows reach a target, bounded memory
//! (each worker keeps at most a few chunks in flight), and a failed restore leaving the target as
//! it was. They take validated options and report progress through shared counters; argument
//! parsing, terminals and exit codes belong to the binary.

mod backup;
mod budget;
mod cancel;
pub mod cat;
pub mod copy;
mod cpu;
mod error;
mod key_lookup;
mod progress;
mod session;
mod writer;

pub mod dump;
pub mod globals;
pub mod instance;
pub mod inventory;
pub mod metrics;
pub mod prune;
pub mod rekey;
pub mod restore;
pub mod surgical;
pub mod verify;

pub use backup::{BackupRef, open_backup, open_backup_head, open_backup_with};
pub use cancel::{Cancel, CancelHandle};
pub use error::{EngineError, ErrorClass};
pub use pgark_keys::{KeyError, Keyring, KmsAccess, Recipient, generate_identity, recipients_from};
pub use progress::Progress;
pub use session::describe_duration;
pub use writer::lock_record;
