//! The doctor's report as text.

use super::eval::Check;
use crate::labels::CheckStatus;

/// The checks as text: one line each, then the fix, then a count.
pub(crate) fn render_text(checks: &[Check]) -> String {
    let mut out = String::new();
    for c in checks {
        out.push_str(&format!(
            "{:<5} {:<20} {}: {}\n",
            c.status.label().to_uppercase(),
            c.check.label(),
            c.resource,
            c.detail
        ));
        if let Some(fix) = &c.fix {
            out.push_str(&format!("{:<26} fix: {fix}\n", ""));
        }
    }
    let n = |s: CheckStatus| checks.iter().filter(|c| c.status == s).count();
    out.push_str(&format!(
        "{} check(s): {} pass, {} warn, {} fail\n",
        checks.len(),
        n(CheckStatus::Pass),
        n(CheckStatus::Warn),
        n(CheckStatus::Fail)
    ));
    out
}

/// No check failed (warnings allowed).
pub fn healthy(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.status != CheckStatus::Fail)
}
