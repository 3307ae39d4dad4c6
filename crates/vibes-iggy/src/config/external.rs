//! The connection to an external server: from the configuration, else the
//! environment; a connection string parsed without ever echoing it.

use std::env;

use super::{ConfigError, IggyConfig, Mode, Secret};
use crate::connection::Connection;

/// Environment variable with the user name for an external server.
pub const USERNAME_ENV: &str = "IGGY_USERNAME";
/// Environment variable with the password for an external server.
pub const PASSWORD_ENV: &str = "IGGY_PASSWORD";
/// Environment variable with a connection string (`iggy://user:pass@host:port`) for an
/// external server.
pub const CONNECTION_STRING_ENV: &str = "IGGY_CONNECTION_STRING";

impl IggyConfig {
    /// The connection to an external server: from `connection_string`, else
    /// `username` + `password` (with `tcp_address`), else `$IGGY_CONNECTION_STRING`,
    /// else `$IGGY_USERNAME` + `$IGGY_PASSWORD` (with `tcp_address`). The first source
    /// that is set wins; one that is set only in part is an error. There is no default
    /// user: Iggy's well-known `iggy`/`iggy` is never assumed.
    ///
    /// Errors: [`ConfigError::Invalid`] (also when the mode is not external, or a
    /// connection string does not parse), [`ConfigError::MissingCredentials`].
    pub fn external_connection(&self) -> Result<Connection, ConfigError> {
        self.external_connection_with(|name| env::var(name).ok())
    }

    /// [`external_connection`](Self::external_connection) with the environment given.
    pub(crate) fn external_connection_with(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Connection, ConfigError> {
        self.validate()?;
        if self.mode != Mode::External {
            return Err(ConfigError::Invalid {
                field: "mode",
                reason: "is \"managed\": the connection comes from the running IggyManager".into(),
            });
        }
        let env = |name: &str| env(name).filter(|v| !v.is_empty());
        let (address, username, password) = if let Some(cs) = &self.connection_string {
            if self.username.is_some() || self.password.is_some() {
                return Err(ConfigError::Invalid {
                    field: "connection_string",
                    reason: "is set together with iggy.username/iggy.password; keep one".into(),
                });
            }
            parse_connection_string(cs.expose(), "iggy.connection_string")?
        } else if self.username.is_some() || self.password.is_some() {
            let (Some(user), Some(password)) = (&self.username, &self.password) else {
                return Err(ConfigError::MissingCredentials {
                    reason: "iggy.username and iggy.password must be set together".into(),
                });
            };
            (self.external_address()?, user.clone(), password.clone())
        } else if let Some(cs) = env(CONNECTION_STRING_ENV) {
            parse_connection_string(&cs, CONNECTION_STRING_ENV)?
        } else {
            match (env(USERNAME_ENV), env(PASSWORD_ENV)) {
                (Some(user), Some(password)) => {
                    (self.external_address()?, user, Secret::new(password))
                }
                (None, None) => {
                    return Err(ConfigError::MissingCredentials {
                        reason: format!(
                            "set iggy.connection_string, or iggy.username and iggy.password, \
                             in the configuration, or {CONNECTION_STRING_ENV}, or \
                             {USERNAME_ENV} and {PASSWORD_ENV} in the environment"
                        ),
                    });
                }
                _ => {
                    return Err(ConfigError::MissingCredentials {
                        reason: format!("{USERNAME_ENV} and {PASSWORD_ENV} must be set together"),
                    });
                }
            }
        };
        let mut connection = Connection::new(address, username, password.expose());
        connection.connect_timeout = self.connect_timeout;
        Ok(connection)
    }

    fn external_address(&self) -> Result<String, ConfigError> {
        let address = self.tcp_address.trim();
        match split_host_port(address) {
            Some((_, port)) if port != 0 => Ok(address.to_owned()),
            _ => Err(ConfigError::Invalid {
                field: "tcp_address",
                reason: format!(
                    "{address:?}: external mode needs the server's host:port \
                     (e.g. 127.0.0.1:8090), or a connection string"
                ),
            }),
        }
    }
}

/// `host:port` split, the port parsed; IPv6 hosts in brackets.
fn split_host_port(address: &str) -> Option<(&str, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let port = port.parse().ok()?;
    if host.is_empty() {
        return None;
    }
    Some((host, port))
}

/// Parses `iggy://user:password@host:port` (or `iggy+tcp://`): address, user,
/// password. Errors never quote the string, which holds a password.
fn parse_connection_string(
    text: &str,
    source: &str,
) -> Result<(String, String, Secret), ConfigError> {
    let invalid = |what: &str| ConfigError::Invalid {
        field: "connection_string",
        reason: format!(
            "{source} is not a valid connection string ({what}); \
             expected iggy://user:password@host:port"
        ),
    };
    let rest = text
        .trim()
        .strip_prefix("iggy://")
        .or_else(|| text.trim().strip_prefix("iggy+tcp://"))
        .ok_or_else(|| invalid("it must start with iggy:// or iggy+tcp://"))?;
    let (credentials, address) = rest
        .rsplit_once('@')
        .ok_or_else(|| invalid("no user:password@ before the address"))?;
    if address.contains('?') {
        return Err(invalid("options after '?' are not supported"));
    }
    let (user, password) = credentials.split_once(':').ok_or_else(|| {
        invalid("no password (a personal access token alone is not supported; use user:password)")
    })?;
    if user.is_empty() || password.is_empty() {
        return Err(invalid("the user or password is empty"));
    }
    match split_host_port(address) {
        Some((_, port)) if port != 0 => {}
        _ => return Err(invalid("the address must be host:port with a port above 0")),
    }
    Ok((address.to_owned(), user.to_owned(), Secret::new(password)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    /// An environment that names a user and a password.
    fn user_env(name: &str) -> Option<String> {
        match name {
            USERNAME_ENV => Some("env-user".to_owned()),
            PASSWORD_ENV => Some("env-pw".to_owned()),
            _ => None,
        }
    }

    fn external() -> IggyConfig {
        IggyConfig {
            mode: Mode::External,
            ..IggyConfig::default()
        }
    }

    #[test]
    fn external_credentials_come_from_the_config_first() {
        let config = IggyConfig {
            tcp_address: "iggy.internal:8090".into(),
            username: Some("vibes".into()),
            password: Some("pw-config".into()),
            ..external()
        };
        let connection = config.external_connection_with(user_env).unwrap();
        assert_eq!(connection.tcp_address, "iggy.internal:8090");
        assert_eq!(connection.username, "vibes");
        assert_eq!(connection.password, "pw-config");
        assert_eq!(connection.connect_timeout, Duration::from_secs(10));
    }

    #[test]
    fn external_credentials_fall_back_to_the_environment() {
        let config = IggyConfig {
            tcp_address: "127.0.0.1:8090".into(),
            ..external()
        };
        let connection = config.external_connection_with(user_env).unwrap();
        assert_eq!(
            (connection.username.as_str(), connection.password.as_str()),
            ("env-user", "env-pw")
        );
    }

    #[test]
    fn a_connection_string_gives_address_and_credentials() {
        let config = IggyConfig {
            connection_string: Some("iggy://alice:p@ss:w0rd@10.1.2.3:8090".into()),
            ..external()
        };
        let connection = config.external_connection_with(no_env).unwrap();
        assert_eq!(connection.tcp_address, "10.1.2.3:8090");
        assert_eq!(connection.username, "alice");
        assert_eq!(connection.password, "p@ss:w0rd");

        let env = |name: &str| {
            (name == CONNECTION_STRING_ENV).then(|| "iggy+tcp://bob:pw@[::1]:8090".to_owned())
        };
        let connection = external().external_connection_with(env).unwrap();
        assert_eq!(connection.tcp_address, "[::1]:8090");
        assert_eq!(connection.username, "bob");
    }

    #[test]
    fn bad_connection_strings_are_rejected_without_echoing_them() {
        for bad in [
            "http://u:secretpw@h:1",
            "iggy://secretpw@h:1",
            "iggy://u:secretpw@h",
            "iggy://u:secretpw@h:0",
            "iggy://u:secretpw@h:1?tls=true",
            "iggy://:secretpw@h:1",
        ] {
            let config = IggyConfig {
                connection_string: Some(bad.into()),
                ..external()
            };
            let message = config
                .external_connection_with(no_env)
                .unwrap_err()
                .to_string();
            assert!(message.contains("iggy.connection_string"), "{message}");
            assert!(!message.contains("secretpw"), "{bad}: {message}");
        }
    }

    #[test]
    fn missing_or_partial_credentials_say_where_to_set_them() {
        let none = external().external_connection_with(no_env).unwrap_err();
        let message = none.to_string();
        for place in [
            "iggy.connection_string",
            "iggy.username",
            CONNECTION_STRING_ENV,
            USERNAME_ENV,
            PASSWORD_ENV,
        ] {
            assert!(message.contains(place), "{message}");
        }
        let half = IggyConfig {
            username: Some("vibes".into()),
            ..external()
        };
        let message = half
            .external_connection_with(no_env)
            .unwrap_err()
            .to_string();
        assert!(message.contains("set together"), "{message}");
        let env_half = |name: &str| (name == USERNAME_ENV).then(|| "u".to_owned());
        let message = IggyConfig {
            tcp_address: "127.0.0.1:8090".into(),
            ..external()
        }
        .external_connection_with(env_half)
        .unwrap_err()
        .to_string();
        assert!(message.contains(PASSWORD_ENV), "{message}");
    }

    #[test]
    fn external_mode_needs_a_real_address() {
        let env = |name: &str| match name {
            USERNAME_ENV | PASSWORD_ENV => Some("x".to_owned()),
            _ => None,
        };
        let message = external()
            .external_connection_with(env)
            .unwrap_err()
            .to_string();
        assert!(message.starts_with("iggy.tcp_address"), "{message}");
    }

    #[test]
    fn managed_mode_has_no_external_connection() {
        let err = IggyConfig::default()
            .external_connection_with(no_env)
            .unwrap_err();
        assert!(err.to_string().starts_with("iggy.mode"), "{err}");
    }
}
