//! `[metrics]`: an optional listener of its own for `GET /metrics`, without
//! authentication, for a Prometheus that scrapes over loopback or a private
//! network. Off unless `listen` is set; a bare port binds loopback only, so
//! exposing it beyond the machine takes an explicit address.

use std::net::{Ipv4Addr, SocketAddr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// `9464` (→ `127.0.0.1:9464`) or `ADDRESS:PORT`. Served by the process
    /// that runs the API (`up` or `api`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<MetricsListen>,
}

/// Where the metrics listener binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsListen(pub SocketAddr);

impl MetricsListen {
    /// `PORT` (loopback) or `ADDRESS:PORT`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Ok(port) = text.parse::<u16>() {
            return Ok(Self(SocketAddr::from((Ipv4Addr::LOCALHOST, port))));
        }
        text.parse::<SocketAddr>()
            .map(Self)
            .map_err(|_| format!("`{text}` is neither a port nor ADDRESS:PORT (e.g. 9464 or 127.0.0.1:9464)"))
    }
}

impl Serialize for MetricsListen {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for MetricsListen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Port(u16),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Port(port) => Ok(Self(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))),
            Raw::Text(text) => Self::parse(&text).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_port_binds_loopback_and_an_address_is_taken_as_given() {
        assert_eq!(MetricsListen::parse("9464").unwrap().0.to_string(), "127.0.0.1:9464");
        assert_eq!(MetricsListen::parse("0.0.0.0:9464").unwrap().0.to_string(), "0.0.0.0:9464");
        assert_eq!(MetricsListen::parse("[::1]:9464").unwrap().0.to_string(), "[::1]:9464");
        assert!(MetricsListen::parse("localhost").is_err());
        let s: MetricsSettings = toml::from_str("listen = 9464").unwrap();
        assert_eq!(s.listen.unwrap().0.to_string(), "127.0.0.1:9464");
        let s: MetricsSettings = toml::from_str("listen = \"127.0.0.1:0\"").unwrap();
        assert_eq!(toml::to_string(&s).unwrap().trim(), "listen = \"127.0.0.1:0\"");
        assert!(toml::from_str::<MetricsSettings>("listen = \"nowhere\"").is_err());
    }
}
