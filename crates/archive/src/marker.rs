use serde::{Deserialize, Serialize};

use crate::ArchiveError;

/// The start marker (`<id>/started.json`), written before any data. It says a dump began; only
/// the manifest says it finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartedMarker {
    pub backup_id: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub database: String,
    pub pgark_version: String,
}

impl StartedMarker {
    pub fn new(backup_id: String, started_at: String, database: String) -> Self {
        StartedMarker {
            backup_id,
            started_at,
            database,
            pgark_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    pub fn from_bytes(object: &str, bytes: &[u8]) -> Result<Self, ArchiveError> {
        serde_json::from_slice(bytes).map_err(|e| ArchiveError::ManifestCorrupt {
            object: object.to_owned(),
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trips() {
        let marker = StartedMarker::new("id".into(), "2026-01-01T00:00:00Z".into(), "d\"b".into());
        assert_eq!(
            StartedMarker::from_bytes("m", &marker.to_bytes()).expect("parses"),
            marker
        );
        assert!(StartedMarker::from_bytes("m", b"nope").is_err());
    }
}
