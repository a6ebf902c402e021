//! Matchers (for silences and channels) and silences.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    sync::{Arc, LazyLock, Mutex, PoisonError},
};

use serde::{Deserialize, Serialize};

use super::{AlertSource, MAX_TITLE_CHARS, MatchOp, Severity};
use crate::{Error, Result, SilenceId, Timestamp};

/// Selects alerts by one field: `source`, `host`, `severity`, `title`, or any
/// other name for the label of that name. An absent field or label is `""`.
///
/// A regular expression is compiled once, when the matcher is made (from the
/// API, the config or a stored silence), never per alert: the router checks
/// every event against every silence.
#[derive(Clone)]
pub struct Matcher {
    name: String,
    op: MatchOp,
    value: String,
    test: Test,
}

#[derive(Clone)]
enum Test {
    Equal,
    Regex(Arc<regex::Regex>),
    /// A pattern that does not compile within the limits (a silence stored
    /// before them): it matches nothing, as such a pattern always did, and
    /// [`Matcher::validate`] says why.
    Refused(String),
}

/// Longest regular expression a matcher takes, in bytes.
pub const MAX_PATTERN_BYTES: usize = 256;
/// Most memory one compiled matcher pattern may take (its NFA, and each lazy
/// DFA cache). Unicode classes grow fast: `\w{100}` needs more than 4 MiB.
const MAX_COMPILED_BYTES: usize = 1 << 20;

impl Matcher {
    /// A matcher from its parts; a bad name, value or pattern is an `invalid_matcher` error.
    pub fn new(name: impl Into<String>, op: MatchOp, value: impl Into<String>) -> Result<Self> {
        let matcher = Self::compile(name.into(), op, value.into());
        matcher.validate()?;
        Ok(matcher)
    }

    /// Never fails: what does not compile is kept as [`Test::Refused`], so
    /// that a stored silence stays readable.
    fn compile(name: String, op: MatchOp, value: String) -> Self {
        let test = match op {
            MatchOp::Eq | MatchOp::Ne => Test::Equal,
            MatchOp::Re | MatchOp::NotRe => match cached_regex(&value) {
                Ok(regex) => Test::Regex(regex),
                Err(why) => Test::Refused(why),
            },
        };
        Self { name, op, value, test }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn op(&self) -> MatchOp {
        self.op
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    pub fn validate(&self) -> Result<()> {
        if !label_name_ok(&self.name) {
            return Err(Error::invalid("invalid_matcher", format!("matcher name `{}` is not a label name", self.name)));
        }
        if self.value.chars().count() > MAX_TITLE_CHARS {
            return Err(Error::invalid("invalid_matcher", "a matcher value is at most 512 characters"));
        }
        match &self.test {
            Test::Refused(why) => Err(Error::invalid("invalid_matcher", format!("matcher `{}`: {why}", self.name))),
            Test::Equal | Test::Regex(_) => Ok(()),
        }
    }

    pub fn matches(&self, alert: &AlertFacts<'_>) -> bool {
        let field = match self.name.as_str() {
            "source" => alert.source.as_str(),
            "host" => alert.host.unwrap_or(""),
            "severity" => alert.severity.as_str(),
            "title" => alert.title,
            label => alert.labels.get(label).map_or("", String::as_str),
        };
        match (&self.test, self.op) {
            (Test::Refused(_), _) => false,
            (Test::Regex(r), MatchOp::NotRe) => !r.is_match(field),
            (Test::Regex(r), _) => r.is_match(field),
            (Test::Equal, MatchOp::Ne) => field != self.value,
            (Test::Equal, _) => field == self.value,
        }
    }
}

/// Compiles `pattern` to match whole values, within the size limits.
fn compile_regex(pattern: &str) -> std::result::Result<regex::Regex, String> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(format!("a regular expression is at most {MAX_PATTERN_BYTES} bytes"));
    }
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(MAX_COMPILED_BYTES)
        .dfa_size_limit(MAX_COMPILED_BYTES)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => format!(
                "the regular expression compiles to more than {} KiB; simplify it (Unicode classes such as \\w \
                 repeated many times are large: try [A-Za-z0-9_] or fewer repetitions)",
                MAX_COMPILED_BYTES >> 10
            ),
            e => e.to_string(),
        })
}

/// Silences are read from the database for every batch of events the router
/// takes; compiling their patterns each time is what stalled routing. Compiled
/// patterns are shared by text; the cache forgets everything when full, which
/// costs one compile per pattern in use.
fn cached_regex(pattern: &str) -> std::result::Result<Arc<regex::Regex>, String> {
    // 256 silences of 16 different patterns; most patterns take a few KiB.
    const CAPACITY: usize = 4096;
    type Cache = HashMap<String, std::result::Result<Arc<regex::Regex>, String>>;
    static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(Mutex::default);
    let lock = || CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(hit) = lock().get(pattern) {
        return hit.clone();
    }
    // Compiled outside the lock: a slow pattern does not hold up the others.
    let compiled = compile_regex(pattern).map(Arc::new);
    let mut cache = lock();
    if cache.len() >= CAPACITY {
        cache.clear();
    }
    cache.insert(pattern.to_owned(), compiled.clone());
    compiled
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        (&self.name, self.op, &self.value) == (&other.name, other.op, &other.value)
    }
}

impl Eq for Matcher {}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {:?}", self.name, self.op.as_str(), self.value)
    }
}

/// A matcher as written in the config, the API and the database.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MatcherText<S> {
    name: S,
    #[serde(default = "default_op")]
    op: MatchOp,
    value: S,
}

fn default_op() -> MatchOp {
    MatchOp::Eq
}

impl Serialize for Matcher {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        MatcherText { name: self.name.as_str(), op: self.op, value: self.value.as_str() }.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = MatcherText::<String>::deserialize(d)?;
        Ok(Self::compile(text.name, text.op, text.value))
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
        let m = |name: &str, op, value: &str| Matcher::compile(name.into(), op, value.into());
        assert!(m("host", MatchOp::Eq, "hv1").matches(&a.facts()));
        assert!(m("check", MatchOp::Re, "di.k").matches(&a.facts()));
        assert!(!m("check", MatchOp::Re, "di").matches(&a.facts()), "regexes match whole values");
        assert!(m("severity", MatchOp::Ne, "critical").matches(&a.facts()));
        assert!(m("missing", MatchOp::Eq, "").matches(&a.facts()));
        assert!(m("x", MatchOp::Re, "(").validate().is_err());
        assert!(m("bad name", MatchOp::Eq, "").validate().is_err());
    }

    #[test]
    fn regexes_are_bounded_in_length_and_compiled_size() {
        let refused = |value: &str| Matcher::new("host", MatchOp::NotRe, value).unwrap_err().to_string();
        assert!(refused(r"\w{100}").contains("compiles to more than 1024 KiB"), "{}", refused(r"\w{100}"));
        assert!(refused(&"a".repeat(257)).contains("at most 256 bytes"));
        assert!(refused("(").contains("matcher `host`"));
        Matcher::new("host", MatchOp::NotRe, "a".repeat(256)).unwrap();
        Matcher::new("host", MatchOp::NotRe, r"[A-Za-z0-9_]{100}").unwrap();
        // Equality matchers are not patterns: up to 512 characters of anything.
        Matcher::new("title", MatchOp::Eq, "(".repeat(512)).unwrap();
    }

    #[test]
    fn a_stored_pattern_past_the_limits_stays_readable_and_matches_nothing() {
        let stored =
            r#"[{"name": "host", "op": "!~", "value": "\\w{100}"}, {"name": "host", "op": "=~", "value": "hv.*"}]"#;
        let matchers: Vec<Matcher> = serde_json::from_str(stored).unwrap();
        let a = alert(Severity::Warning);
        assert!(
            !matchers[0].matches(&a.facts()),
            "as before the limits: a pattern that does not compile matches nothing"
        );
        assert!(matchers[0].validate().is_err());
        assert!(matchers[1].matches(&a.facts()));
        assert_eq!(serde_json::to_string(&matchers).unwrap(), stored.replace(": ", ":").replace(", ", ","));
    }
}
