//! What this binary is: its version, the git revision it was built from and the build date
//! (stamped by `build.rs`), for `--version`, `/status` and the `build_info` metric.

use serde::Serialize;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const REVISION: &str = env!("S3R_BUILD_REVISION");
pub const BUILD_DATE: &str = env!("S3R_BUILD_DATE");

/// `--version`'s text: `0.1.0 (rev 1a2b3c4d5e6f, built 2026-12-02)`.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (rev ",
    env!("S3R_BUILD_REVISION"),
    ", built ",
    env!("S3R_BUILD_DATE"),
    ")"
);

/// The build, as `/status` shows it.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct BuildInfo {
    pub version: &'static str,
    pub revision: &'static str,
    pub build_date: &'static str,
}

pub const BUILD: BuildInfo = BuildInfo {
    version: VERSION,
    revision: REVISION,
    build_date: BUILD_DATE,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_is_stamped() {
        assert!(LONG_VERSION.starts_with(VERSION));
        assert!(!REVISION.is_empty() && !REVISION.contains(char::is_whitespace));
        // Built from a git checkout without an explicit S3R_REVISION: the commit's id.
        let checkout = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".git");
        if checkout.exists() && option_env!("S3R_REVISION").is_none() {
            assert!(
                REVISION.len() == 12 && REVISION.chars().all(|c| c.is_ascii_hexdigit()),
                "{REVISION}"
            );
            assert!(LONG_VERSION.contains(&format!("(rev {REVISION}, built {BUILD_DATE})")));
        }
        let d = chrono::NaiveDate::parse_from_str(BUILD_DATE, "%Y-%m-%d");
        assert!(d.is_ok(), "{BUILD_DATE}");
    }
}
