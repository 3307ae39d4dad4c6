//! The server's addresses: those it bound (read from its runtime config), the form a
//! client connects to, and a port 0 resolved to a free port.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};

use serde::Deserialize;

use super::ManagerError;
use crate::config::ConfigError;

/// The addresses a server bound, from its `runtime/current_config.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundAddresses {
    /// The TCP (binary protocol) address.
    pub tcp: SocketAddr,
    /// The HTTP address.
    pub http: SocketAddr,
}

impl BoundAddresses {
    /// Reads the TCP and HTTP addresses from the text of `current_config.toml`. Both
    /// listeners must be enabled and bound (port above 0).
    pub(crate) fn parse(text: &str) -> Result<BoundAddresses, String> {
        #[derive(Deserialize)]
        struct Listener {
            enabled: bool,
            address: String,
        }
        #[derive(Deserialize)]
        struct RuntimeConfig {
            tcp: Listener,
            http: Listener,
        }
        let config: RuntimeConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        let bound = |name: &str, listener: &Listener| -> Result<SocketAddr, String> {
            if !listener.enabled {
                return Err(format!("{name} is not enabled"));
            }
            let address: SocketAddr = listener
                .address
                .parse()
                .map_err(|_| format!("{name} address {:?} is not ip:port", listener.address))?;
            if address.port() == 0 {
                return Err(format!("{name} is not bound yet"));
            }
            Ok(address)
        };
        Ok(BoundAddresses {
            tcp: bound("tcp", &config.tcp)?,
            http: bound("http", &config.http)?,
        })
    }

    /// The addresses a client connects to: a wildcard address (`0.0.0.0`, `::`) becomes
    /// the loopback address of its family.
    pub(super) fn connectable(self) -> BoundAddresses {
        BoundAddresses {
            tcp: connectable(self.tcp),
            http: connectable(self.http),
        }
    }
}

/// `address`, with a wildcard IP replaced by the loopback IP of its family.
pub(super) fn connectable(address: SocketAddr) -> SocketAddr {
    match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, address.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, address.port()).into(),
        _ => address,
    }
}

/// `address`, or, when its port is 0, the same IP with a port that is free now.
pub(super) fn resolve_port(
    address: SocketAddr,
    field: &'static str,
) -> Result<SocketAddr, ManagerError> {
    if address.port() != 0 {
        return Ok(address);
    }
    TcpListener::bind(address)
        .and_then(|listener| listener.local_addr())
        .map_err(|e| {
            ManagerError::Config(ConfigError::Invalid {
                field,
                reason: format!("cannot listen on {address}: {e}"),
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from an iggy-server 0.8.0 that IggyManager started with TCP and HTTP on
    /// port 0 (resolved to 38443 and 33977).
    const CURRENT_CONFIG: &str = include_str!("../../testdata/current_config.toml");

    #[test]
    fn bound_addresses_come_from_a_real_runtime_config() {
        let bound = BoundAddresses::parse(CURRENT_CONFIG).unwrap();
        assert_eq!(bound.tcp, "127.0.0.1:38443".parse().unwrap());
        assert_eq!(bound.http, "127.0.0.1:33977".parse().unwrap());
    }

    #[test]
    fn unbound_disabled_or_partial_runtime_configs_are_not_ready() {
        let unbound = CURRENT_CONFIG.replace("127.0.0.1:38443", "127.0.0.1:0");
        let err = BoundAddresses::parse(&unbound).unwrap_err();
        assert!(err.contains("tcp is not bound"), "{err}");
        let disabled = CURRENT_CONFIG.replace("[http]\nenabled = true", "[http]\nenabled = false");
        let err = BoundAddresses::parse(&disabled).unwrap_err();
        assert!(err.contains("http is not enabled"), "{err}");
        // The server truncates, then writes: a reader can see any prefix.
        let cut = &CURRENT_CONFIG[..CURRENT_CONFIG.find("[http]").unwrap()];
        assert!(BoundAddresses::parse(cut).is_err());
        assert!(BoundAddresses::parse("").is_err());
    }

    #[test]
    fn wildcard_addresses_are_reached_on_loopback() {
        let any4: SocketAddr = "0.0.0.0:8090".parse().unwrap();
        let any6: SocketAddr = "[::]:8090".parse().unwrap();
        let ip: SocketAddr = "10.1.2.3:8090".parse().unwrap();
        assert_eq!(connectable(any4), "127.0.0.1:8090".parse().unwrap());
        assert_eq!(connectable(any6), "[::1]:8090".parse().unwrap());
        assert_eq!(connectable(ip), ip);
    }

    #[test]
    fn port_zero_resolves_to_a_free_port_and_a_fixed_port_stays() {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let resolved = resolve_port(any, "tcp_address").unwrap();
        assert_ne!(resolved.port(), 0);
        assert_eq!(resolved.ip(), any.ip());
        let fixed: SocketAddr = "127.0.0.1:18090".parse().unwrap();
        assert_eq!(resolve_port(fixed, "tcp_address").unwrap(), fixed);
    }
}
