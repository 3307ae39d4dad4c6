//! How to reach an iggy-server: address and credentials, and the one place that builds
//! and connects SDK clients.

use std::fmt;
use std::time::Duration;

use iggy::prelude::{AutoLogin, Client, IggyClient, IggyClientBuilder, IggyDuration, SystemClient};
use iggy_common::Credentials;
use vibes_log::LogError;

use crate::error::from_iggy;

/// Where an iggy-server listens and who to sign in as.
#[derive(Clone, PartialEq, Eq)]
pub struct Connection {
    /// The server's TCP address, `host:port`.
    pub tcp_address: String,
    /// User to sign in as.
    pub username: String,
    /// Its password. Never printed: `Debug` shows `***`.
    pub password: String,
    /// How long connecting may take before it is an error (the SDK's own first
    /// connect would otherwise retry forever).
    pub connect_timeout: Duration,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("tcp_address", &self.tcp_address)
            .field("username", &self.username)
            .field("password", &"***")
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl Connection {
    /// A connection to `tcp_address` as `username` with `password`, giving up on
    /// connecting after 10 s.
    pub fn new(
        tcp_address: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Connection {
            tcp_address: tcp_address.into(),
            username: username.into(),
            password: password.into(),
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// Builds a client, connects and signs in. The client must be
    /// [`shutdown`](Client::shutdown) when done: it has no `Drop`.
    pub async fn connect(&self) -> Result<IggyClient, LogError> {
        let interval = Duration::from_millis(200);
        let retries = (self.connect_timeout.as_millis() / interval.as_millis()).max(1) as u32;
        let client = IggyClientBuilder::new()
            .with_tcp()
            .with_server_address(self.tcp_address.clone())
            .with_auto_sign_in(AutoLogin::Enabled(Credentials::UsernamePassword(
                self.username.clone(),
                self.password.clone().into(),
            )))
            .with_reconnection_max_retries(Some(retries))
            .with_reconnection_interval(IggyDuration::from(interval))
            .with_reestablish_after(IggyDuration::from(interval))
            .with_no_delay()
            .build()
            .map_err(|e| from_iggy(e, format!("building a client for {}", self.tcp_address)))?;
        let connected = tokio::time::timeout(self.connect_timeout * 2, async {
            client.connect().await?;
            client.ping().await
        })
        .await;
        match connected {
            Ok(Ok(())) => Ok(client),
            Ok(Err(e)) => {
                let _ = client.shutdown().await;
                Err(from_iggy(
                    e,
                    format!("connecting to iggy-server at {}", self.tcp_address),
                ))
            }
            Err(_) => {
                let _ = client.shutdown().await;
                Err(LogError::Backend {
                    message: format!(
                        "connecting to iggy-server at {} timed out after {:?}",
                        self.tcp_address,
                        self.connect_timeout * 2
                    ),
                    transient: true,
                    source: None,
                })
            }
        }
    }
}
