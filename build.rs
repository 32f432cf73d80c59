//! Stamps the build with its git revision and date, for `--version`, `/status` and the
//! `build_info` metric. A build outside a git checkout (the container image's build stage,
//! which gets no `.git`) takes them from `S3R_REVISION` and `SOURCE_DATE_EPOCH` (the
//! reproducible-builds convention), else says "unknown" and today's date.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-env-changed=S3R_REVISION");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    // A commit moves the branch's ref (or packed-refs) and rewrites the index. Only paths
    // that exist: a missing one would rerun this script on every build.
    let branch = std::fs::read_to_string(".git/HEAD").ok().and_then(|h| {
        h.strip_prefix("ref: ")
            .map(|r| format!(".git/{}", r.trim()))
    });
    for path in [".git/HEAD", ".git/index", ".git/packed-refs"]
        .map(String::from)
        .into_iter()
        .chain(branch)
    {
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let revision = std::env::var("S3R_REVISION")
        .ok()
        .filter(|r| !r.trim().is_empty())
        .or_else(git_revision)
        .unwrap_or_else(|| "unknown".into());
    let seconds = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        });
    println!("cargo:rustc-env=S3R_BUILD_REVISION={}", revision.trim());
    println!("cargo:rustc-env=S3R_BUILD_DATE={}", civil_date(seconds));
}

/// The short commit id of HEAD.
fn git_revision() -> Option<String> {
    Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|r| !r.is_empty())
}

/// `YYYY-MM-DD` (UTC) of a Unix time, by the days-to-civil algorithm (no date crate needed
/// in a build script).
fn civil_date(seconds: i64) -> String {
    let z = seconds.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
