use std::fmt;

use crate::StoreError;

/// The name of an object relative to a store's root, e.g. `2026-11-17T030000Z/data/00003.copy.zst`.
///
/// Invariants (checked by [`ObjectKey::new`], so every key in the program satisfies them): at most
/// 1024 bytes; `/`-separated segments that are non-empty, not `.` or `..`, and made only of ASCII
/// letters, digits, `.`, `_` and `-`. Such keys mean the same on a local file system and on S3, and
/// cannot escape the store's root.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey(String);

const MAX_KEY_LEN: usize = 1024;

impl ObjectKey {
    pub fn new(key: impl Into<String>) -> Result<Self, StoreError> {
        let key = key.into();
        let invalid = |reason| StoreError::InvalidKey {
            key: key.clone(),
            reason,
        };
        if key.is_empty() {
            return Err(invalid("empty"));
        }
        if key.len() > MAX_KEY_LEN {
            return Err(invalid("longer than 1024 bytes"));
        }
        for segment in key.split('/') {
            if segment.is_empty() {
                return Err(invalid("empty path segment"));
            }
            if segment == "." || segment == ".." {
                return Err(invalid("`.` and `..` segments are not allowed"));
            }
            if !segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            {
                return Err(invalid(
                    "only ASCII letters, digits, `.`, `_`, `-` and `/` are allowed",
                ));
            }
        }
        Ok(ObjectKey(key))
    }

    /// `self/child`; `child` is validated like any key.
    pub fn join(&self, child: &str) -> Result<Self, StoreError> {
        ObjectKey::new(format!("{}/{}", self.0, child))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The segments of the key, first to last.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The key with its first segment removed, if it has more than one.
    pub fn strip_first_segment(&self) -> Option<&str> {
        self.0.split_once('/').map(|(_, rest)| rest)
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectKey({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_keys_are_accepted() {
        for key in [
            "a",
            "2026-11-17T030000Z/manifest.json",
            "x/data/00001.copy.zst",
            "a_b-c.d",
        ] {
            let parsed = ObjectKey::new(key);
            assert!(parsed.is_ok(), "{key}: {parsed:?}");
        }
    }

    #[test]
    fn keys_that_could_escape_or_differ_between_stores_are_rejected() {
        let long = "a".repeat(1025);
        let cases = [
            ("", "empty"),
            ("/abs", "empty path segment"),
            ("a//b", "empty path segment"),
            ("a/", "empty path segment"),
            ("a/../b", "`.` and `..` segments are not allowed"),
            ("./a", "`.` and `..` segments are not allowed"),
            (
                "a b",
                "only ASCII letters, digits, `.`, `_`, `-` and `/` are allowed",
            ),
            (
                "a\\b",
                "only ASCII letters, digits, `.`, `_`, `-` and `/` are allowed",
            ),
            (
                "ä",
                "only ASCII letters, digits, `.`, `_`, `-` and `/` are allowed",
            ),
            (long.as_str(), "longer than 1024 bytes"),
        ];
        for (key, expected) in cases {
            match ObjectKey::new(key) {
                Err(StoreError::InvalidKey { reason, .. }) => {
                    assert_eq!(reason, expected, "{key}")
                }
                other => panic!("{key:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn join_validates_the_child() {
        let base = ObjectKey::new("backup").expect("valid");
        assert_eq!(
            base.join("data/1").expect("valid").as_str(),
            "backup/data/1"
        );
        assert!(base.join("../x").is_err());
        assert_eq!(
            base.join("m").expect("valid").strip_first_segment(),
            Some("m")
        );
    }
}
