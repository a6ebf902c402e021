//! Matchers (for silences and channels) and silences.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{AlertSource, MAX_TITLE_CHARS, MatchOp, Severity};
use crate::{Error, Result, SilenceId, Timestamp};

/// Selects alerts by one field: `source`, `host`, `severity`, `title`, or any
/// other name for the label of that name. An absent field or label is `""`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matcher {
    pub name: String,
    #[serde(default = "default_op")]
    pub op: MatchOp,
    pub value: String,
}

fn default_op() -> MatchOp {
    MatchOp::Eq
}

impl Matcher {
    pub fn validate(&self) -> Result<()> {
        if !label_name_ok(&self.name) {
            return Err(Error::invalid("invalid_matcher", format!("matcher name `{}` is not a label name", self.name)));
        }
        if self.value.chars().count() > MAX_TITLE_CHARS {
            return Err(Error::invalid("invalid_matcher", "a matcher value is at most 512 characters"));
        }
        if matches!(self.op, MatchOp::Re | MatchOp::NotRe) {
            self.regex()?;
        }
        Ok(())
    }

    fn regex(&self) -> Result<regex::Regex> {
        regex::Regex::new(&format!("^(?:{})$", self.value))
            .map_err(|e| Error::invalid("invalid_matcher", format!("matcher `{}`: {e}", self.name)))
    }

    pub fn matches(&self, alert: &AlertFacts<'_>) -> bool {
        let field = match self.name.as_str() {
            "source" => alert.source.as_str(),
            "host" => alert.host.unwrap_or(""),
            "severity" => alert.severity.as_str(),
            "title" => alert.title,
            label => alert.labels.get(label).map_or("", String::as_str),
        };
        match self.op {
            MatchOp::Eq => field == self.value,
            MatchOp::Ne => field != self.value,
            MatchOp::Re => self.regex().is_ok_and(|r| r.is_match(field)),
            MatchOp::NotRe => self.regex().is_ok_and(|r| !r.is_match(field)),
        }
    }
}

pub fn all_match(matchers: &[Matcher], alert: &AlertFacts<'_>) -> bool {
    matchers.iter().all(|m| m.matches(alert))
}

pub(crate) fn label_name_ok(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
}

/// What matchers look at.
#[derive(Debug, Clone, Copy)]
pub struct AlertFacts<'a> {
    pub source: AlertSource,
    pub host: Option<&'a str>,
    pub severity: Severity,
    pub title: &'a str,
    pub labels: &'a BTreeMap<String, String>,
}

/// A silence as stored; it mutes notifications of matching alerts between
/// `starts_at` and `ends_at` (expiring one sets `ends_at` to now).
#[derive(Debug, Clone, Serialize)]
pub struct Silence {
    pub id: SilenceId,
    pub matchers: Vec<Matcher>,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub created_by: String,
    pub comment: String,
    pub created_at: Timestamp,
}

impl Silence {
    pub fn active(&self, now: Timestamp) -> bool {
        self.starts_at <= now && now < self.ends_at
    }

    pub fn mutes(&self, alert: &AlertFacts<'_>, now: Timestamp) -> bool {
        self.active(now) && all_match(&self.matchers, alert)
    }
}

#[derive(Debug, Clone)]
pub struct NewSilence {
    pub matchers: Vec<Matcher>,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Timestamp,
    pub comment: String,
    pub created_by: String,
}

impl NewSilence {
    pub fn validate(&self, now: Timestamp) -> Result<()> {
        if self.matchers.is_empty() || self.matchers.len() > 16 {
            return Err(Error::invalid("invalid_matcher", "a silence needs 1-16 matchers"));
        }
        for m in &self.matchers {
            m.validate()?;
        }
        let starts = self.starts_at.unwrap_or(now);
        if self.ends_at <= starts || self.ends_at <= now {
            return Err(Error::invalid("invalid_time_window", "`ends_at` must be later than `starts_at` and than now"));
        }
        if self.comment.trim().is_empty() || self.comment.chars().count() > 1024 {
            return Err(Error::invalid("invalid_comment", "`comment` must be 1-1024 characters (say why)"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::sample_alert as alert;

    #[test]
    fn matchers() {
        let a = alert(Severity::Warning);
        let m = |name: &str, op, value: &str| Matcher { name: name.into(), op, value: value.into() };
        assert!(m("host", MatchOp::Eq, "hv1").matches(&a.facts()));
        assert!(m("check", MatchOp::Re, "di.k").matches(&a.facts()));
        assert!(!m("check", MatchOp::Re, "di").matches(&a.facts()), "regexes match whole values");
        assert!(m("severity", MatchOp::Ne, "critical").matches(&a.facts()));
        assert!(m("missing", MatchOp::Eq, "").matches(&a.facts()));
        assert!(m("x", MatchOp::Re, "(").validate().is_err());
        assert!(m("bad name", MatchOp::Eq, "").validate().is_err());
    }
}
