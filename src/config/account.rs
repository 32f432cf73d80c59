//! `[source]`, `[target]` and `[control]`: which account, region, endpoint and credentials each
//! side is reached with, plus the ARN and bucket-name rules that catch typos at start-up.

use serde::{Deserialize, Serialize};

use super::read::{Problems, SectionInput, read_fields};

/// How to reach one AWS account: region, endpoint and credentials.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Account {
    /// AWS region, e.g. `ap-northeast-2`.
    pub region: String,
    /// Endpoint override (an emulator, a VPC endpoint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// Named profile from the shared AWS config files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Role assumed on top of the default credential chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// External id presented when assuming `role_arn` (treated as a secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

/// One side of the reconciliation: a bucket and how to reach its account.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BucketSide {
    pub bucket: String,
    #[serde(flatten)]
    pub account: Account,
    /// Path-style addressing; defaults to true whenever `endpoint_url` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_path_style: Option<bool>,
}

impl BucketSide {
    /// Emulators and most S3-compatible endpoints only speak path-style.
    pub(crate) fn path_style(&self) -> bool {
        self.force_path_style
            .unwrap_or(self.account.endpoint_url.is_some())
    }

    pub(super) fn read(input: &mut SectionInput, p: &mut Problems) -> Self {
        let mut side = BucketSide::default();
        read_fields!(input, p, side; bucket, force_path_style);
        side.account = Account::read(input, p);
        side
    }

    /// Value checks; `required` says whether this run needs the bucket at all.
    pub(super) fn validate(&self, name: &str, required: bool, p: &mut Problems) {
        let key = format!("{name}.bucket");
        if self.bucket.is_empty() {
            if required && p.ok(&[&key]) {
                p.push(key, "required");
            }
        } else if let Err(e) = check_bucket_name(&self.bucket) {
            p.push(key, e);
        }
        self.account.validate(name, required, p);
    }
}

impl Account {
    pub(super) fn read(input: &mut SectionInput, p: &mut Problems) -> Self {
        let mut a = Account::default();
        read_fields!(input, p, a; region, endpoint_url, profile, role_arn, external_id);
        a
    }

    pub(super) fn validate(&self, name: &str, region_required: bool, p: &mut Problems) {
        let key = format!("{name}.region");
        if self.region.is_empty() {
            if region_required && p.ok(&[&key]) {
                p.push(key, "required (e.g. ap-northeast-2)");
            }
        } else if !self
            .region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            p.push(key, format!("`{}` is not a region name", self.region));
        }
        if let Some(ep) = &self.endpoint_url
            && !(ep.starts_with("http://") || ep.starts_with("https://"))
        {
            p.push(
                format!("{name}.endpoint_url"),
                format!("`{ep}` must start with http:// or https://"),
            );
        }
        if let Some(role) = &self.role_arn
            && !is_role_arn(role)
        {
            p.push(
                format!("{name}.role_arn"),
                "is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)",
            );
        }
        if self.external_id.is_some() && self.role_arn.is_none() {
            p.push(
                format!("{name}.external_id"),
                "only makes sense together with role_arn",
            );
        }
    }

    /// This account with every unset field taken from `base` (`[control]` over `[source]`:
    /// the seeds run the queue and the DataSync task in the source account).
    pub fn or(&self, base: &Account) -> Account {
        let overridden = !self.region.is_empty()
            || self.endpoint_url.is_some()
            || self.profile.is_some()
            || self.role_arn.is_some();
        if !overridden {
            return base.clone();
        }
        Account {
            region: if self.region.is_empty() {
                base.region.clone()
            } else {
                self.region.clone()
            },
            endpoint_url: self.endpoint_url.clone().or(base.endpoint_url.clone()),
            profile: self.profile.clone().or(base.profile.clone()),
            role_arn: self.role_arn.clone().or(base.role_arn.clone()),
            // An external id belongs to the role it was issued for.
            external_id: if self.role_arn.is_some() {
                self.external_id.clone()
            } else {
                base.external_id.clone()
            },
        }
    }
}

fn is_role_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && is_account_id(parts[4])
        && parts[5].starts_with("role/")
        && parts[5].len() > 5
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.chars().all(|c| c.is_ascii_digit())
}

/// The parts of a DataSync task ARN, `arn:PARTITION:datasync:REGION:ACCOUNT:task/task-ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskArn<'a> {
    pub region: &'a str,
    pub account: &'a str,
    pub task_id: &'a str,
}

/// Splits a DataSync task ARN, or says why it is not one.
pub fn parse_task_arn(s: &str) -> Option<TaskArn<'_>> {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "datasync"
        && !parts[3].is_empty()
        && is_account_id(parts[4])
        && parts[5].starts_with("task/task-");
    ok.then(|| TaskArn {
        region: parts[3],
        account: parts[4],
        task_id: &parts[5]["task/".len()..],
    })
}

/// S3 bucket naming rules (the subset that catches typos: length, charset, edges).
pub fn check_bucket_name(b: &str) -> Result<(), String> {
    if b.len() < 3 || b.len() > 63 {
        return Err(format!("`{b}` must be 3 to 63 characters long"));
    }
    if !b
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    {
        return Err(format!(
            "`{b}` may contain only lowercase letters, digits, `-` and `.`"
        ));
    }
    let edges_ok = b.starts_with(|c: char| c.is_ascii_alphanumeric())
        && b.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !edges_ok {
        return Err(format!("`{b}` must begin and end with a letter or digit"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        assert!(check_bucket_name("source-s3-bucket").is_ok());
        assert!(check_bucket_name("Destination-s3-bucket").is_err());
        assert!(check_bucket_name("ab").is_err());
        assert!(check_bucket_name("-abc").is_err());
        assert!(check_bucket_name("abc.").is_err());
    }

    #[test]
    fn task_arns() {
        let arn = parse_task_arn(
            "arn:aws:datasync:ap-northeast-2:111111111111:task/task-0123456789abcdef0",
        )
        .unwrap();
        assert_eq!(arn.region, "ap-northeast-2");
        assert_eq!(arn.account, "111111111111");
        assert_eq!(arn.task_id, "task-0123456789abcdef0");
        assert!(parse_task_arn("arn:aws:datasync:x").is_none());
        assert!(parse_task_arn("arn:aws:datasync:r:1111:task/task-1").is_none());
    }

    #[test]
    fn path_style_defaults_with_endpoint() {
        let mut side = BucketSide::default();
        assert!(!side.path_style());
        side.account.endpoint_url = Some("http://127.0.0.1:5000".into());
        assert!(side.path_style());
        side.force_path_style = Some(false);
        assert!(!side.path_style());
    }

    #[test]
    fn control_falls_back_to_source() {
        let source = Account {
            region: "ap-northeast-2".into(),
            role_arn: Some("arn:aws:iam::111111111111:role/src".into()),
            external_id: Some("x".into()),
            ..Default::default()
        };
        assert_eq!(Account::default().or(&source), source);
        let control = Account {
            endpoint_url: Some("http://127.0.0.1:1".into()),
            ..Default::default()
        };
        let merged = control.or(&source);
        assert_eq!(merged.region, "ap-northeast-2");
        assert_eq!(merged.endpoint_url.as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(merged.external_id.as_deref(), Some("x"));
    }
}
