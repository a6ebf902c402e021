//! VM names and states. A [`VmName`] is valid by construction: anything that
//! does not match `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$` never gets past the edge.

use serde::{Deserialize, Serialize};

use crate::{Error, closed_set::closed_set};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct VmName(String);

impl VmName {
    pub fn parse(text: &str) -> Result<Self, Error> {
        if name_ok(text) {
            Ok(Self(text.to_owned()))
        } else {
            Err(Error::invalid(
                "invalid_vm_name",
                "VM names are 1-64 characters of A-Z, a-z, 0-9, '.', '_' or '-', starting with a letter or digit",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`: what VM and host names may be.
pub(crate) fn name_ok(text: &str) -> bool {
    let bytes = text.as_bytes();
    let valid_first = bytes.first().is_some_and(|b| b.is_ascii_alphanumeric());
    let valid_rest = bytes.iter().skip(1).all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    valid_first && valid_rest && bytes.len() <= 64
}

/// A hypervisor host's name in the fleet (its worker's `worker.host`). The
/// same characters as a VM name, but its own type and its own error code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct HostName(String);

impl HostName {
    pub fn parse(text: &str) -> Result<Self, Error> {
        if name_ok(text) {
            Ok(Self(text.to_owned()))
        } else {
            Err(Error::invalid(
                "invalid_host_name",
                "host names are 1-64 characters of A-Z, a-z, 0-9, '.', '_' or '-', starting with a letter or digit",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl<'de> Deserialize<'de> for VmName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for VmName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

closed_set!(
    /// A domain's state as libvirt names it.
    VmState, "invalid_vm_state", "a VM state" {
        Running = "running",
        Blocked = "blocked",
        Paused = "paused",
        /// Shutting down.
        Shutdown = "shutdown",
        Shutoff = "shutoff",
        Crashed = "crashed",
        /// Suspended by guest power management.
        Pmsuspended = "pmsuspended",
        Nostate = "nostate",
    }
);

/// A power action on a VM. Each one is an operation kind `vm.<action>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VmAction {
    Start,
    Shutdown,
    Reboot,
    Destroy,
    Suspend,
    Resume,
}

impl VmAction {
    pub const ALL: [VmAction; 6] =
        [Self::Start, Self::Shutdown, Self::Reboot, Self::Destroy, Self::Suspend, Self::Resume];

    pub fn parse(text: &str) -> Result<Self, Error> {
        Self::ALL.into_iter().find(|a| a.as_str() == text).ok_or_else(|| {
            Error::invalid(
                "invalid_action",
                format!("`{text}` is not a VM action; expected start, shutdown, reboot, destroy, suspend or resume"),
            )
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Shutdown => "shutdown",
            Self::Reboot => "reboot",
            Self::Destroy => "destroy",
            Self::Suspend => "suspend",
            Self::Resume => "resume",
        }
    }
}

/// Parameters of a VM power operation, as stored in the ledger.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerParams {
    /// Seconds a shutdown waits for the guest to reach SHUTOFF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<u32>,
    /// Destroy the VM when a shutdown times out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}

impl PowerParams {
    pub const DEFAULT_SHUTDOWN_TIMEOUT_S: u32 = 120;
    pub const MAX_TIMEOUT_S: u32 = 3600;

    pub fn validate(&self, action: VmAction) -> Result<(), Error> {
        if action != VmAction::Shutdown && (self.timeout_s.is_some() || self.force) {
            return Err(Error::invalid("invalid_parameters", "`timeout_s` and `force` apply to shutdown only"));
        }
        if let Some(t) = self.timeout_s
            && !(1..=Self::MAX_TIMEOUT_S).contains(&t)
        {
            return Err(Error::invalid(
                "invalid_parameters",
                format!("`timeout_s` must be 1..={}", Self::MAX_TIMEOUT_S),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_names() {
        for ok in ["test", "a", "web-01.prod_x", &"a".repeat(64)] {
            assert!(VmName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", ".a", "a b", "a;rm -rf /", "a/b", "$(x)", &"a".repeat(65), "é"] {
            assert_eq!(VmName::parse(bad).unwrap_err().code(), "invalid_vm_name", "{bad}");
            assert_eq!(HostName::parse(bad).unwrap_err().code(), "invalid_host_name", "{bad}");
        }
        assert_eq!(HostName::parse("hv-01.rack2").unwrap().as_str(), "hv-01.rack2");
    }
}
