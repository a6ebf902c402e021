//! [`Secret`]: a configured secret, inline or from the environment or a file,
//! never shown in `Debug` or in serialized settings.

use std::{fmt, path::PathBuf};

use serde::{Deserialize, Serialize};

/// A secret value: inline, or read from an environment variable or a file
/// when used (so a rotated file is picked up without a restart).
#[derive(Clone, Deserialize)]
#[serde(untagged)]
pub enum Secret {
    Inline(String),
    Env { env: String },
    File { file: PathBuf },
}

impl Secret {
    pub fn reveal(&self) -> Result<String, String> {
        match self {
            Self::Inline(value) => Ok(value.clone()),
            Self::Env { env } => std::env::var(env).map_err(|_| format!("environment variable {env} is not set")),
            Self::File { file } => std::fs::read_to_string(file)
                .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
                .map_err(|e| format!("cannot read {}: {e}", file.display())),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inline(_) => f.write_str("\"***\""),
            Self::Env { env } => write!(f, "{{ env = {env:?} }}"),
            Self::File { file } => write!(f, "{{ file = {file:?} }}"),
        }
    }
}

/// Serialized (check-config, the channels API) as `***` when inline.
impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Self::Inline(_) => s.serialize_str("***"),
            Self::Env { env } => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("env", env)?;
                m.end()
            }
            Self::File { file } => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("file", file)?;
                m.end()
            }
        }
    }
}
