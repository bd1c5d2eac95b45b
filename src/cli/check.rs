/// A check that ran and found a problem (a damaged backup, a stale newest backup): reported as one
/// line, with its own exit code so that monitoring can tell it from pgark failing to run.
#[derive(Debug)]
pub struct CheckFailed(pub String);

impl std::fmt::Display for CheckFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CheckFailed {}
