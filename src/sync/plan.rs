//! Pure planning for the daily sync: which dates, which patterns, how many filters.
//!
//! DataSync filters take no variables, one `SIMPLE_PATTERN` rule per execution (patterns joined
//! with `|`), `*` only at the end, and at most [`DATASYNC_FILTER_MAX_LEN`] characters. Nothing
//! here does I/O, so every rule is unit-tested.

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

use crate::config::{DATASYNC_FILTER_MAX_LEN, SyncConfig};

/// Parses a cron expression with a mandatory seconds field.
pub fn parse_schedule(expr: &str) -> Result<Cron, String> {
    CronParser::builder()
        .seconds(Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(expr)
        .map_err(|e| {
            format!(
                "`{expr}` is not a cron expression with seconds (`sec min hour dom month dow`): {e}"
            )
        })
}

pub fn validate_schedule(expr: &str) -> Result<(), String> {
    parse_schedule(expr).map(|_| ())
}

/// The next time `cron` fires after `after`, evaluated in `tz` (so DST is honoured).
pub fn next_fire(cron: &Cron, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    cron.find_next_occurrence(&after.with_timezone(&tz), false)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The partition date a run at `now` targets: the calendar day in `tz`, minus `lag_days`.
/// Partitions are cut in the writer's timezone, so "yesterday" must be too (the seed used UTC).
pub fn target_date(now: DateTime<Utc>, tz: Tz, lag_days: u32) -> NaiveDate {
    let today = now.with_timezone(&tz).date_naive();
    today
        .checked_sub_days(Days::new(u64::from(lag_days)))
        .unwrap_or(today)
}

/// The dates one run's filter covers: `target` and the `lookback_days` before it, oldest first.
pub fn window(target: NaiveDate, lookback_days: u32) -> Vec<NaiveDate> {
    (0..=lookback_days)
        .rev()
        .filter_map(|d| target.checked_sub_days(Days::new(u64::from(d))))
        .collect()
}

/// Renders the partition template for one date.
pub fn render_partition(template: &str, date: NaiveDate) -> String {
    template
        .replace("{yyyy}", &format!("{:04}", date.year()))
        .replace("{MM}", &format!("{:02}", date.month()))
        .replace("{dd}", &format!("{:02}", date.day()))
}

/// `/`-bounded form of a DataSync location subdirectory: `/`, or `/a/b/`.
fn normalized_subdirectory(sub: &str) -> String {
    let trimmed = sub.trim_matches('/');
    if trimmed.is_empty() {
        "/".into()
    } else {
        format!("/{trimmed}/")
    }
}

/// The pattern for one project and date, relative to the location subdirectory.
///
/// `project_prefix` is a full key prefix as listed (`topics/project1/`).
pub fn pattern(
    location_subdirectory: &str,
    project_prefix: &str,
    partition: &str,
) -> Result<String, String> {
    let sub = normalized_subdirectory(location_subdirectory);
    let absolute = format!("/{project_prefix}{partition}");
    let Some(rest) = absolute.strip_prefix(&sub) else {
        return Err(format!(
            "`{absolute}` is outside the DataSync location subdirectory `{sub}`"
        ));
    };
    let p = format!("/{rest}*");
    check_pattern(&p)?;
    Ok(p)
}

/// DataSync SIMPLE_PATTERN rules: starts with `/`, no `|` inside, `*` only as the last char.
pub fn check_pattern(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err(format!("pattern `{p}` must begin with `/`"));
    }
    if p.contains('|') {
        return Err(format!(
            "pattern `{p}` contains `|`, DataSync's pattern separator"
        ));
    }
    if p.trim_end_matches('*').contains('*') || p.ends_with("**") {
        return Err(format!(
            "pattern `{p}` may only have `*` as its last character"
        ));
    }
    if p.len() > DATASYNC_FILTER_MAX_LEN {
        return Err(format!(
            "pattern is {} characters, over DataSync's {DATASYNC_FILTER_MAX_LEN}",
            p.len()
        ));
    }
    Ok(())
}

/// Config-time checks of prefix, template and subdirectory. Returns `(key, message)` pairs.
pub fn validate_layout(s: &SyncConfig) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut bad = |k: &str, m: String| out.push((k.to_string(), m));
    if s.prefix.starts_with('/') {
        bad(
            "sync.prefix",
            format!(
                "`{}` must not begin with `/` (it is an S3 key prefix)",
                s.prefix
            ),
        );
    }
    if !s.prefix.is_empty() && !s.prefix.ends_with('/') {
        bad("sync.prefix", format!("`{}` must end with `/`", s.prefix));
    }
    if s.prefix.contains('*') || s.prefix.contains('|') {
        bad(
            "sync.prefix",
            format!(
                "`{}` must not contain `*` or `|` (DataSync filter syntax)",
                s.prefix
            ),
        );
    }
    let t = &s.partition;
    for needed in ["{yyyy}", "{MM}", "{dd}"] {
        if !t.contains(needed) {
            bad(
                "sync.partition",
                format!("`{t}` must contain {needed}: the filter selects one day"),
            );
        }
    }
    let stripped = t
        .replace("{yyyy}", "")
        .replace("{MM}", "")
        .replace("{dd}", "");
    if stripped.contains('{') || stripped.contains('}') {
        bad(
            "sync.partition",
            format!("`{t}` has an unknown placeholder; use {{yyyy}}, {{MM}}, {{dd}}"),
        );
    }
    if t.contains('*') || t.contains('|') {
        bad(
            "sync.partition",
            format!("`{t}` must not contain `*` or `|` (DataSync filter syntax)"),
        );
    }
    if t.starts_with('/') || !t.ends_with('/') {
        bad(
            "sync.partition",
            format!("`{t}` must not begin with `/` and must end with `/`"),
        );
    }
    if !s.location_subdirectory.starts_with('/') {
        bad(
            "sync.location_subdirectory",
            format!("`{}` must begin with `/`", s.location_subdirectory),
        );
    } else {
        let sub = normalized_subdirectory(&s.location_subdirectory);
        if !format!("/{}", s.prefix).starts_with(&sub) {
            bad(
                "sync.location_subdirectory",
                format!(
                    "sync.prefix `{}` is not inside the DataSync location subdirectory `{sub}`",
                    s.prefix
                ),
            );
        }
    }
    out
}

/// Project-name glob filters.
pub fn project_selected(name: &str, include: &[String], exclude: &[String]) -> bool {
    let included = include.is_empty() || include.iter().any(|g| glob_match::glob_match(g, name));
    included && !exclude.iter().any(|g| glob_match::glob_match(g, name))
}

/// The full plan of one run: patterns and the filters they are packed into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub dates: Vec<NaiveDate>,
    pub projects: usize,
    pub patterns: usize,
    /// Filter values, each at most `max_len` characters, to be run one after another.
    pub filters: Vec<String>,
}

/// Renders every pattern for `project_prefixes` × `dates` and packs them into filters.
pub fn build_plan(
    s: &SyncConfig,
    project_prefixes: &[String],
    dates: &[NaiveDate],
    max_len: usize,
) -> Result<Plan, String> {
    let mut patterns = Vec::with_capacity(project_prefixes.len() * dates.len());
    let mut problems = Vec::new();
    for date in dates {
        let partition = render_partition(&s.partition, *date);
        for prefix in project_prefixes {
            match pattern(&s.location_subdirectory, prefix, &partition) {
                Ok(p) => patterns.push(p),
                Err(e) => problems.push(e),
            }
        }
    }
    if !problems.is_empty() {
        problems.dedup();
        return Err(format!(
            "{} pattern(s) cannot be expressed as a DataSync filter (exclude those projects with sync.exclude_projects): {}",
            problems.len(),
            problems.join("; ")
        ));
    }
    let filters = chunk(&patterns, max_len)?;
    Ok(Plan {
        dates: dates.to_vec(),
        projects: project_prefixes.len(),
        patterns: patterns.len(),
        filters,
    })
}

/// Packs patterns, in order, into `|`-joined values of at most `max_len` characters.
/// Never truncates: a single pattern longer than `max_len` is an error.
pub fn chunk(patterns: &[String], max_len: usize) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for p in patterns {
        if p.len() > max_len {
            return Err(format!(
                "pattern of {} characters exceeds the filter limit of {max_len}",
                p.len()
            ));
        }
        let needed = if current.is_empty() {
            p.len()
        } else {
            current.len() + 1 + p.len()
        };
        if needed > max_len {
            out.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push('|');
        }
        current.push_str(p);
    }
    if !current.is_empty() {
        out.push(current);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn target_date_across_month_and_year_ends() {
        let utc: Tz = "UTC".parse().unwrap();
        let t = Utc.with_ymd_and_hms(2024, 1, 1, 0, 30, 0).unwrap();
        assert_eq!(target_date(t, utc, 1), d(2023, 12, 31));
        let t = Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap();
        assert_eq!(target_date(t, utc, 1), d(2024, 2, 29), "leap year");
        let t = Utc.with_ymd_and_hms(2023, 3, 1, 12, 0, 0).unwrap();
        assert_eq!(target_date(t, utc, 1), d(2023, 2, 28));
        assert_eq!(target_date(t, utc, 0), d(2023, 3, 1));
        assert_eq!(target_date(t, utc, 3), d(2023, 2, 26));
    }

    #[test]
    fn target_date_in_seoul_around_midnight() {
        let seoul: Tz = "Asia/Seoul".parse().unwrap();
        // 2023-11-06 15:30 UTC is 2023-11-07 00:30 in Seoul: yesterday there is the 6th,
        // while the seed's UTC arithmetic would have said the 5th.
        let t = Utc.with_ymd_and_hms(2023, 11, 6, 15, 30, 0).unwrap();
        assert_eq!(target_date(t, seoul, 1), d(2023, 11, 6));
        assert_eq!(target_date(t, "UTC".parse().unwrap(), 1), d(2023, 11, 5));
        // One minute before Seoul midnight it is still the 6th there.
        let t = Utc.with_ymd_and_hms(2023, 11, 6, 14, 59, 0).unwrap();
        assert_eq!(target_date(t, seoul, 1), d(2023, 11, 5));
        // New year in Seoul while UTC is still in the old year.
        let t = Utc.with_ymd_and_hms(2023, 12, 31, 15, 0, 0).unwrap();
        assert_eq!(target_date(t, seoul, 1), d(2023, 12, 31));
        assert_eq!(target_date(t, seoul, 0), d(2024, 1, 1));
    }

    #[test]
    fn window_is_oldest_first() {
        assert_eq!(window(d(2024, 3, 1), 0), vec![d(2024, 3, 1)]);
        assert_eq!(
            window(d(2024, 3, 1), 2),
            vec![d(2024, 2, 28), d(2024, 2, 29), d(2024, 3, 1)]
        );
    }

    #[test]
    fn renders_the_seed_pattern() {
        let part = render_partition("year={yyyy}/month={MM}/day={dd}/", d(2023, 11, 6));
        assert_eq!(part, "year=2023/month=11/day=06/");
        assert_eq!(
            pattern("/", "topics/project1/", &part).unwrap(),
            "/topics/project1/year=2023/month=11/day=06/*"
        );
        assert_eq!(
            pattern("/topics", "topics/project1/", &part).unwrap(),
            "/project1/year=2023/month=11/day=06/*"
        );
        assert_eq!(
            pattern("/topics/", "topics/project1/", &part).unwrap(),
            "/project1/year=2023/month=11/day=06/*"
        );
        assert!(pattern("/other/", "topics/project1/", &part).is_err());
        let dt = render_partition("dt={yyyy}-{MM}-{dd}/", d(2024, 1, 9));
        assert_eq!(dt, "dt=2024-01-09/");
    }

    #[test]
    fn pattern_validation() {
        assert!(check_pattern("/a/b/*").is_ok());
        assert!(check_pattern("a/b/*").is_err());
        assert!(check_pattern("/a/*/b/*").is_err());
        assert!(check_pattern("/a/b|c/*").is_err());
        assert!(check_pattern("/a/**").is_err());
        assert!(pattern("/", "topics/we|ird/", "year=2023/month=01/day=01/").is_err());
        assert!(pattern("/", "topics/st*r/", "year=2023/month=01/day=01/").is_err());
    }

    #[test]
    fn layout_validation_names_keys() {
        let mut s = SyncConfig::default();
        assert!(validate_layout(&s).is_empty());
        s.partition = "year={yyyy}/month={MM}/day={d}/".into();
        s.prefix = "/topics".into();
        s.location_subdirectory = "/elsewhere/".into();
        let keys: Vec<String> = validate_layout(&s).into_iter().map(|(k, _)| k).collect();
        assert!(keys.contains(&"sync.partition".to_string()));
        assert!(keys.contains(&"sync.prefix".to_string()));
        assert!(keys.contains(&"sync.location_subdirectory".to_string()));
        let s = SyncConfig {
            partition: "year={yyyy}/month={MM}/day={dd}/*".into(),
            ..Default::default()
        };
        assert!(!validate_layout(&s).is_empty());
    }

    #[test]
    fn chunking_exactly_at_and_just_over_the_limit() {
        // Ten patterns of 10 chars: joined = 10*10 + 9 separators = 109 chars.
        let pats: Vec<String> = (0..10).map(|i| format!("/p{i}/abcd/*")).collect();
        assert!(pats.iter().all(|p| p.len() == 10));
        let joined = pats.join("|");
        assert_eq!(joined.len(), 109);
        assert_eq!(chunk(&pats, 109).unwrap(), vec![joined.clone()]);
        let split = chunk(&pats, 108).unwrap();
        assert_eq!(split.len(), 2);
        assert!(split.iter().all(|f| f.len() <= 108));
        assert_eq!(split.join("|"), joined, "nothing lost, order kept");
        assert!(
            chunk(&pats, 9).is_err(),
            "a pattern longer than the limit is an error"
        );
        assert_eq!(chunk(&[], 100).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn chunking_at_the_real_datasync_limit() {
        let s = SyncConfig::default();
        let day = [d(2023, 11, 6)];
        // "/topics/pNNNNN/year=2023/month=11/day=06/*" is 42 chars, 43 with the separator.
        let projects: Vec<String> = (0..20_000).map(|i| format!("topics/p{i:05}/")).collect();
        let plan = build_plan(&s, &projects, &day, DATASYNC_FILTER_MAX_LEN).unwrap();
        assert_eq!(plan.patterns, 20_000);
        assert!(
            plan.filters
                .iter()
                .all(|f| f.len() <= DATASYNC_FILTER_MAX_LEN)
        );
        assert_eq!(
            plan.filters
                .iter()
                .map(|f| f.split('|').count())
                .sum::<usize>(),
            20_000
        );
        // n patterns of 42 fit when 43n - 1 <= 102400: n = 2381 exactly fills 102382.
        assert_eq!(plan.filters[0].split('|').count(), 2381);
        let exact: Vec<String> = projects[..2381].to_vec();
        let one = build_plan(&s, &exact, &day, DATASYNC_FILTER_MAX_LEN).unwrap();
        assert_eq!(one.filters.len(), 1);
        let over: Vec<String> = projects[..2382].to_vec();
        assert_eq!(
            build_plan(&s, &over, &day, DATASYNC_FILTER_MAX_LEN)
                .unwrap()
                .filters
                .len(),
            2
        );
    }

    #[test]
    fn plan_refuses_inexpressible_projects() {
        let s = SyncConfig::default();
        let err = build_plan(&s, &["topics/a|b/".into()], &[d(2024, 1, 1)], 1000).unwrap_err();
        assert!(err.contains("exclude_projects"), "{err}");
    }

    #[test]
    fn project_globs() {
        let inc = vec!["proj*".to_string()];
        let exc = vec!["*-test".to_string()];
        assert!(project_selected("project1", &inc, &exc));
        assert!(!project_selected("project1-test", &inc, &exc));
        assert!(!project_selected("other", &inc, &exc));
        assert!(project_selected("other", &[], &[]));
    }

    #[test]
    fn schedule_in_zone() {
        let cron = parse_schedule("0 30 1 * * *").unwrap();
        let seoul: Tz = "Asia/Seoul".parse().unwrap();
        let now = Utc.with_ymd_and_hms(2023, 11, 6, 15, 0, 0).unwrap(); // 00:00 Seoul
        let next = next_fire(&cron, seoul, now).unwrap();
        assert_eq!(next, Utc.with_ymd_and_hms(2023, 11, 6, 16, 30, 0).unwrap());
        assert!(
            parse_schedule("30 1 * * *").is_err(),
            "seconds are required"
        );
        // DST: 01:30 in New York is 05:30 UTC in summer and 06:30 UTC in winter.
        let ny: Tz = "America/New_York".parse().unwrap();
        let summer = next_fire(
            &cron,
            ny,
            Utc.with_ymd_and_hms(2024, 7, 1, 12, 0, 0).unwrap(),
        );
        let winter = next_fire(
            &cron,
            ny,
            Utc.with_ymd_and_hms(2024, 12, 1, 12, 0, 0).unwrap(),
        );
        assert_eq!(summer.unwrap().format("%H:%M").to_string(), "05:30");
        assert_eq!(winter.unwrap().format("%H:%M").to_string(), "06:30");
    }
}
