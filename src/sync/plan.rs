//! Pure planning for the daily sync: which dates, which patterns, how many filters.
//!
//! DataSync filters take no variables, one `SIMPLE_PATTERN` rule per execution (patterns joined
//! with `|`), `*` only at the end, and at most [`DATASYNC_FILTER_MAX_LEN`](crate::config::DATASYNC_FILTER_MAX_LEN) characters. Nothing
//! here does I/O, so every rule is unit-tested.

use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::config::{SyncConfig, check_pattern, normalized_subdirectory};
use crate::verify::Partition;

/// Why a plan cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "{} pattern(s) cannot be expressed as a DataSync filter (exclude those projects with sync.exclude_projects): {}",
        .0.len(), .0.join("; ")
    )]
    Inexpressible(Vec<String>),
    #[error("pattern of {len} characters exceeds the filter limit of {max}")]
    TooLong { len: usize, max: usize },
}

/// The partition date a run at `now` targets: the calendar day in `tz`, minus `lag_days`.
/// Partitions are cut in the writer's timezone, so "yesterday" must be too (the seed used UTC).
pub fn target_date(now: DateTime<Utc>, tz: Tz, lag_days: u32) -> NaiveDate {
    let today = now.with_timezone(&tz).date_naive();
    today
        .checked_sub_days(Days::new(u64::from(lag_days)))
        .unwrap_or(today)
}

/// The date the schedule's last fire at or before `now` targeted (the date a start-up or a
/// manual run without `--date` takes); "today minus lag" when the schedule never fired.
pub fn scheduled_date(s: &SyncConfig, now: DateTime<Utc>) -> NaiveDate {
    let fired = s.schedule.previous_before(s.timezone, now).unwrap_or(now);
    target_date(fired, s.timezone, s.lag_days)
}

/// The dates one run's filter covers: `target` and the `lookback_days` before it, oldest first.
pub fn window(target: NaiveDate, lookback_days: u32) -> Vec<NaiveDate> {
    (0..=lookback_days)
        .rev()
        .filter_map(|d| target.checked_sub_days(Days::new(u64::from(d))))
        .collect()
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

/// Project-name glob filters.
pub(crate) fn project_selected(name: &str, include: &[String], exclude: &[String]) -> bool {
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
    /// What the filters select, one partition per project and date.
    pub partitions: Vec<Partition>,
}

/// The S3 key prefix a pattern selects: `/p1/day=06/*` under subdirectory `/topics/` is
/// `topics/p1/day=06/`.
pub(crate) fn pattern_prefix(location_subdirectory: &str, pattern: &str) -> String {
    let sub = normalized_subdirectory(location_subdirectory);
    let rest = pattern.trim_start_matches('/').trim_end_matches('*');
    format!("{}{rest}", sub.trim_start_matches('/'))
}

/// The partitions of `filters` (as a claim records them), for the dates of `window`.
/// Patterns that do not end in one of the window's partitions are not partitions of ours and
/// are left out.
pub(crate) fn partitions_of<'a>(
    s: &SyncConfig,
    window: &[NaiveDate],
    filters: impl IntoIterator<Item = &'a str>,
) -> Vec<Partition> {
    let mut out: Vec<Partition> = Vec::new();
    let rendered: Vec<(NaiveDate, String)> = window
        .iter()
        .map(|d| (*d, s.partition.render(*d)))
        .collect();
    for pattern in filters.into_iter().flat_map(|f| f.split('|')) {
        let prefix = pattern_prefix(&s.location_subdirectory, pattern);
        let found = rendered.iter().find_map(|(date, part)| {
            let head = prefix.strip_suffix(part.as_str())?;
            let project = head.strip_prefix(s.prefix.as_str())?.trim_end_matches('/');
            Some((*date, project.to_string()))
        });
        if let Some((date, project)) = found
            && !out.iter().any(|p| p.prefix == prefix)
        {
            out.push(Partition {
                date,
                project,
                prefix,
                pattern: pattern.to_string(),
            });
        }
    }
    out
}

/// Renders every pattern for `project_prefixes` × `dates` and packs them into filters.
pub(crate) fn build_plan(
    s: &SyncConfig,
    project_prefixes: &[String],
    dates: &[NaiveDate],
    max_len: usize,
) -> Result<Plan, PlanError> {
    let mut patterns = Vec::with_capacity(project_prefixes.len() * dates.len());
    let mut partitions = Vec::with_capacity(patterns.capacity());
    let mut problems = Vec::new();
    for date in dates {
        let partition = s.partition.render(*date);
        for prefix in project_prefixes {
            match pattern(&s.location_subdirectory, prefix, &partition) {
                Ok(p) => {
                    partitions.push(Partition {
                        date: *date,
                        project: prefix
                            .strip_prefix(s.prefix.as_str())
                            .unwrap_or(prefix)
                            .trim_end_matches('/')
                            .to_string(),
                        prefix: format!("{prefix}{partition}"),
                        pattern: p.clone(),
                    });
                    patterns.push(p);
                }
                Err(e) => problems.push(e),
            }
        }
    }
    if !problems.is_empty() {
        problems.dedup();
        return Err(PlanError::Inexpressible(problems));
    }
    let filters = chunk(&patterns, max_len)?;
    Ok(Plan {
        dates: dates.to_vec(),
        projects: project_prefixes.len(),
        patterns: patterns.len(),
        filters,
        partitions,
    })
}

/// Packs patterns, in order, into `|`-joined values of at most `max_len` characters.
/// Never truncates: a single pattern longer than `max_len` is an error.
pub fn chunk(patterns: &[String], max_len: usize) -> Result<Vec<String>, PlanError> {
    let mut out = Vec::new();
    let mut current = String::new();
    for p in patterns {
        if p.len() > max_len {
            return Err(PlanError::TooLong {
                len: p.len(),
                max: max_len,
            });
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
    use crate::config::DATASYNC_FILTER_MAX_LEN;
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
    fn without_a_date_the_schedules_last_fire_decides() {
        let s = SyncConfig {
            timezone: "Asia/Seoul".parse().unwrap(),
            schedule: crate::config::Schedule::parse("59 59 23 * * *").unwrap(),
            ..SyncConfig::default()
        };
        // 2023-11-07 00:10 in Seoul: the last fire was 11-06 23:59:59, which synced the 5th;
        // "today minus one" would be the 6th, still being written.
        let t = Utc.with_ymd_and_hms(2023, 11, 6, 15, 10, 0).unwrap();
        assert_eq!(scheduled_date(&s, t), d(2023, 11, 5));
        assert_eq!(target_date(t, s.timezone, 1), d(2023, 11, 6));
        // Just after the fire, its own date.
        let t = Utc.with_ymd_and_hms(2023, 11, 7, 15, 0, 0).unwrap();
        assert_eq!(scheduled_date(&s, t), d(2023, 11, 6));
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
        let s = SyncConfig::default();
        let part = s.partition.render(d(2023, 11, 6));
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
        assert!(pattern("/", "topics/we|ird/", "year=2023/month=01/day=01/").is_err());
        assert!(pattern("/", "topics/st*r/", "year=2023/month=01/day=01/").is_err());
        assert!(pattern("/", "topics/back\\slash/", "year=2023/month=01/day=01/").is_err());
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
        assert!(err.to_string().contains("exclude_projects"), "{err}");
    }

    #[test]
    fn partitions_come_back_from_the_filters() {
        let mut s = SyncConfig::default();
        let dates = [d(2024, 3, 8), d(2024, 3, 9)];
        let projects = vec!["topics/p1/".to_string(), "topics/차량/".to_string()];
        for sub in ["/", "/topics/"] {
            s.location_subdirectory = sub.into();
            let plan = build_plan(&s, &projects, &dates, 60).unwrap();
            assert!(plan.filters.len() > 1, "several filters");
            let back = partitions_of(&s, &plan.dates, plan.filters.iter().map(String::as_str));
            assert_eq!(back, plan.partitions, "{sub}");
            assert_eq!(back[0].prefix, "topics/p1/year=2024/month=03/day=08/");
            assert_eq!(back[3].project, "차량");
            assert_eq!(back[3].date, d(2024, 3, 9));
        }
        // A pattern outside the window is not one of ours.
        assert!(partitions_of(&s, &dates, ["/p1/year=2020/month=01/day=01/*"]).is_empty());
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
}
