//! What `--version` prints besides the version: the commit and the build date (`build.rs`).

/// The commit the binaries were built from (12 hex digits, or the image build's `REVISION`), or
/// `unknown` outside a checkout.
pub const COMMIT: &str = env!("SPIKEWATCH_COMMIT");

/// The build date, `YYYY-MM-DD` (UTC; `SOURCE_DATE_EPOCH` when set).
pub const BUILD_DATE: &str = env!("SPIKEWATCH_BUILD_DATE");

/// `<version> (commit <commit>, built <date>)`: the long `--version` of both binaries.
pub fn long_version(version: &str) -> String {
    format!("{version} (commit {COMMIT}, built {BUILD_DATE})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_version_names_the_commit_and_a_date() {
        let text = long_version("1.2.3");
        assert!(text.starts_with("1.2.3 (commit "), "{text}");
        assert!(!COMMIT.is_empty());
        let parts: Vec<&str> = BUILD_DATE.split('-').collect();
        assert_eq!(parts.len(), 3, "{BUILD_DATE}");
        assert!(parts.iter().all(|p| p.chars().all(|c| c.is_ascii_digit())), "{BUILD_DATE}");
        assert!(BUILD_DATE >= "2025-01-01", "{BUILD_DATE}");
    }
}
