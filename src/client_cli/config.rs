//! The client config file: where the API is and the token to use, for a
//! shell that should not carry a token in its environment.
//!
//! ```toml
//! url = "https://fleet.example.org:8443"
//! token_file = "/home/ops/.config/hyperfleet/token"   # or: token = "hf_…"
//! ca_cert = "/etc/hyperfleet/ca.pem"                  # a private CA, besides the system's
//! ```

use std::path::{Path, PathBuf};

use super::{Exit, Failure};

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    url: Option<String>,
    token: Option<String>,
    token_file: Option<PathBuf>,
    ca_cert: Option<PathBuf>,
}

/// What the file says, the token read from `token_file` if it names one.
#[derive(Debug, Default)]
pub struct ClientConfig {
    pub url: Option<String>,
    pub token: Option<String>,
    pub ca_cert: Option<PathBuf>,
}

/// `$XDG_CONFIG_HOME/hyperfleet/client.toml`, else `~/.config/hyperfleet/client.toml`.
fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("hyperfleet").join("client.toml"))
}

impl ClientConfig {
    /// Reads `path` (which must exist), else the default file if there is one.
    pub fn load(path: Option<&Path>) -> Result<Self, Failure> {
        let path = match path {
            Some(p) => p.to_owned(),
            None => match default_path() {
                Some(p) if p.exists() => p,
                _ => return Ok(Self::default()),
            },
        };
        let bad = |what: String| Failure::new(Exit::Usage, format!("client config {}: {what}", path.display()));
        let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
        let file: File = toml::from_str(&text).map_err(|e| bad(e.message().to_owned()))?;
        let token = match (file.token, file.token_file) {
            (Some(_), Some(_)) => return Err(bad("give `token` or `token_file`, not both".into())),
            (Some(t), None) => Some(t),
            (None, Some(f)) => Some(
                std::fs::read_to_string(&f)
                    .map_err(|e| bad(format!("token_file {}: {e}", f.display())))?
                    .trim()
                    .to_owned(),
            ),
            (None, None) => None,
        };
        Ok(Self { url: file.url, token, ca_cert: file.ca_cert })
    }
}
