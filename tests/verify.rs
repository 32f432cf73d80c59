//! `s3-reconciler verify` against the emulator: missing and size-mismatched objects are
//! found and named, extra ones reported, and the date passes once they are copied.

mod common;

use std::process::Command;

use chrono::NaiveDate;
use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_s3-reconciler");

fn toml(src: &str, tgt: &str) -> tempfile::NamedTempFile {
    let buckets = buckets_toml(src, tgt);
    config_file(&format!(
        r#"{buckets}[sync]
timezone = "Asia/Seoul"
lookback_days = 1
"#
    ))
}

/// `verify --date date` (`""`: without `--date`).
fn verify(cfg: &tempfile::NamedTempFile, date: &str) -> (i32, Vec<serde_json::Value>) {
    let mut cmd = Command::new(BIN);
    cmd.arg("--config").arg(cfg.path()).arg("verify");
    if !date.is_empty() {
        cmd.args(["--date", date]);
    }
    let out = cmd.output().unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    (out.status.code().unwrap(), lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_missing_and_mismatched_objects_then_passes_once_copied() {
    let s3 = s3().await;
    let (src, tgt) = (unique("src"), unique("tgt"));
    create_bucket(&s3, &src, true).await;
    create_bucket(&s3, &tgt, true).await;
    let d = |day| NaiveDate::from_ymd_opt(2024, 3, day).unwrap();
    let part = |p: &str, day| format!("topics/{p}/year=2024/month=03/day={day:02}/");
    // The 9th and its lookback day, the 8th.
    for (p, day, name, body) in [
        ("p1", 9, "a.json", "aaaa"),
        ("p1", 9, "b.json", "bbbb"),
        ("p1", 9, "c.json", "cccc"),
        ("p2", 9, "d.json", "dddd"),
        ("p2", 8, "old.json", "oooo"),
    ] {
        put(&s3, &src, &format!("{}{name}", part(p, day)), body).await;
    }
    // A look-alike project must not be counted in p1's partition.
    put(
        &s3,
        &src,
        "topics/p1-other/year=2024/month=03/day=09/z.json",
        "z",
    )
    .await;
    put(&s3, &tgt, &format!("{}a.json", part("p1", 9)), "aaaa").await;
    put(&s3, &tgt, &format!("{}b.json", part("p1", 9)), "bb").await;
    put(&s3, &tgt, &format!("{}d.json", part("p2", 9)), "dddd").await;
    put(&s3, &tgt, &format!("{}e.json", part("p2", 9)), "extra").await;
    put(&s3, &tgt, &format!("{}old.json", part("p2", 8)), "oooo").await;
    let cfg = toml(&src, &tgt);

    let (code, lines) = verify(&cfg, "2024-03-09");
    assert_eq!(code, 1, "{lines:#?}");
    let find = |project: &str, day: u32| {
        lines
            .iter()
            .find(|l| l["project"] == project && l["date"] == d(day).to_string())
            .unwrap_or_else(|| panic!("no line for {project} {day}: {lines:#?}"))
            .clone()
    };
    let p1 = find("p1", 9);
    assert_eq!(p1["prefix"], part("p1", 9));
    assert_eq!(
        (
            &p1["expected"],
            &p1["present"],
            &p1["missing"],
            &p1["size_mismatched"],
            &p1["extra"]
        ),
        (&3.into(), &1.into(), &1.into(), &1.into(), &0.into())
    );
    assert_eq!(
        p1["missing_keys"],
        serde_json::json!([format!("{}c.json", part("p1", 9))])
    );
    assert_eq!(
        p1["size_mismatched_keys"],
        serde_json::json!([format!("{}b.json", part("p1", 9))])
    );
    let p2 = find("p2", 9);
    assert_eq!((&p2["present"], &p2["extra"]), (&1.into(), &1.into()));
    assert_eq!(
        find("p2", 8)["present"],
        1,
        "the lookback day is verified too"
    );
    let summary = lines.last().unwrap();
    assert_eq!(summary["summary"], true);
    assert_eq!(summary["complete"], false);
    assert_eq!(
        summary["missing"], 2,
        "c.json and the other project's z.json"
    );
    assert_eq!(summary["size_mismatched"], 1);
    assert_eq!(
        find("p1-other", 9)["missing"],
        1,
        "a look-alike project is its own partition"
    );
    assert_eq!(
        lines.iter().filter(|l| l.get("project").is_some()).count(),
        6,
        "three projects (p1, p1-other, p2) x two days: {lines:#?}"
    );
    // Nothing was deleted: extra objects are only reported.
    assert_eq!(
        entries(&s3, &tgt, &format!("{}e.json", part("p2", 9)))
            .await
            .len(),
        1
    );

    // Playing DataSync: copy what was missing or wrong.
    put(&s3, &tgt, &format!("{}b.json", part("p1", 9)), "bbbb").await;
    put(&s3, &tgt, &format!("{}c.json", part("p1", 9)), "cccc").await;
    put(
        &s3,
        &tgt,
        "topics/p1-other/year=2024/month=03/day=09/z.json",
        "z",
    )
    .await;
    let (code, lines) = verify(&cfg, "2024-03-09");
    assert_eq!(code, 0, "{lines:#?}");
    assert_eq!(lines.last().unwrap()["complete"], true);
}

#[test]
fn verify_needs_both_buckets_but_no_task() {
    let f = config_file("[source]\nbucket = \"a-bucket\"\nregion = \"ap-northeast-2\"\n");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(f.path())
        .args(["verify", "--date", "2024-03-09"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("target.bucket: required"), "{err}");
    assert!(
        !err.contains("task_arn") && !err.contains("state.bucket"),
        "{err}"
    );
}

/// Issue 23 item 6: without `--date`, the date of the schedule's last fire, as the daemon's
/// start-up takes it, not "today minus lag" (still being written just after midnight).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_date_the_schedules_last_fire_is_verified() {
    use chrono::Datelike;
    let s3 = s3().await;
    let (src, tgt) = (unique("src"), unique("tgt"));
    create_bucket(&s3, &src, true).await;
    create_bucket(&s3, &tgt, true).await;
    put(&s3, &src, "topics/p1/year=2020/month=01/day=01/a.json", "a").await;
    let buckets = buckets_toml(&src, &tgt);
    // Fires once a year, at New Year in Seoul: the last fire synced December 31st.
    let cfg = config_file(&format!(
        "{buckets}[sync]\ntimezone = \"Asia/Seoul\"\nschedule = \"0 0 0 1 1 *\"\nlookback_days = 1\n"
    ));
    let (_, lines) = verify(&cfg, "");
    let year = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Seoul)
        .year();
    let expected = NaiveDate::from_ymd_opt(year - 1, 12, 31)
        .unwrap()
        .to_string();
    assert!(
        lines.iter().any(|l| l["date"] == expected.as_str()),
        "{lines:#?}"
    );
}
