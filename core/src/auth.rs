//! Bearer tokens and roles. A token is `hf_` + 64 hex digits (256 random
//! bits), shown once; the database keeps its SHA-256 and a non-secret prefix
//! to find it by. SHA-256 suffices: the secret is random, not a password.
//! Comparison is constant-time.

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{Error, closed_set::closed_set};

closed_set!(
    /// `viewer < operator < admin`.
    Role, "invalid_role", "a role" { Viewer = "viewer", Operator = "operator", Admin = "admin" }
);

/// Who is calling: the token's name and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub token_id: String,
    pub name: String,
    pub role: Role,
}

impl Principal {
    /// 403 unless this principal's role is at least `role`.
    pub fn require(&self, role: Role) -> Result<&Self, Error> {
        if self.role >= role {
            Ok(self)
        } else {
            Err(Error::Forbidden(format!(
                "token `{}` has role {}; this needs {} or above",
                self.name,
                self.role.as_str(),
                role.as_str()
            )))
        }
    }
}

pub const TOKEN_PREFIX: &str = "hf_";
const PREFIX_LEN: usize = 12;

/// A freshly generated token: the secret (shown once) and what is stored.
#[derive(Clone)]
pub struct NewSecret {
    pub secret: String,
    pub prefix: String,
    pub hash: String,
}

impl std::fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSecret").field("prefix", &self.prefix).field("secret", &"<redacted>").finish()
    }
}

pub fn generate() -> NewSecret {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
    let prefix = secret[TOKEN_PREFIX.len()..TOKEN_PREFIX.len() + PREFIX_LEN].to_owned();
    NewSecret { hash: hash(&secret), prefix, secret }
}

pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The lookup prefix of a presented token, if it is shaped like one.
pub fn prefix_of(presented: &str) -> Option<&str> {
    let hexpart = presented.strip_prefix(TOKEN_PREFIX)?;
    (hexpart.len() == 64 && hexpart.bytes().all(|b| b.is_ascii_hexdigit())).then(|| &hexpart[..PREFIX_LEN])
}

/// Constant-time equality of two hex digests.
pub fn digests_match(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `30d`, `12h`, `90m`, `3600s` → seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, Error> {
    let bad = || Error::invalid("invalid_duration", format!("`{text}` is not a duration like 30d, 12h, 90m or 3600s"));
    let (num, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let unit_secs: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let secs = n.checked_mul(unit_secs).ok_or_else(bad)?;
    if secs == 0 {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs(secs))
}

/// The longest lifetime a token may be given.
pub const MAX_TOKEN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(10 * 365 * 86_400);

/// A token's `expires_in`: a duration of at most ten years.
pub fn parse_token_lifetime(text: &str) -> Result<std::time::Duration, Error> {
    let lifetime = parse_duration(text)?;
    if lifetime > MAX_TOKEN_LIFETIME {
        return Err(Error::invalid(
            "invalid_expires_in",
            format!(
                "`{text}` is longer than a token may live: at most {}d (ten years)",
                MAX_TOKEN_LIFETIME.as_secs() / 86_400
            ),
        ));
    }
    Ok(lifetime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let t = generate();
        assert!(t.secret.starts_with("hf_") && t.secret.len() == 67);
        assert_eq!(prefix_of(&t.secret), Some(t.prefix.as_str()));
        assert!(digests_match(&hash(&t.secret), &t.hash));
        assert!(!digests_match(&hash("hf_x"), &t.hash));
        assert_eq!(prefix_of("hf_short"), None);
        assert!(!format!("{t:?}").contains(&t.secret));
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        assert_eq!(parse_duration("30d").unwrap().as_secs(), 30 * 86_400);
        assert!(parse_duration("30").is_err() && parse_duration("0d").is_err() && parse_duration("x").is_err());
        assert!(parse_token_lifetime("3650d").is_ok());
        for too_long in ["3651d", "3000000d", "100000000d", "99999999999999999999d"] {
            assert!(parse_token_lifetime(too_long).is_err(), "{too_long}");
        }
    }
}
