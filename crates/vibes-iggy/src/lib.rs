//! The Apache Iggy backend of the vibes event log, and a managed iggy-server.
//!
//! [`IggyLog`] implements [`vibes_log::backend::LogBackend`] on an iggy-server 0.8 through the
//! `iggy` 0.10 SDK: a vibes topic `stream/topic` is the Iggy stream and topic of those
//! names, offsets are the server's, the event id is the Iggy message id, and message
//! headers carry the event type, source and partition key. Consumers are members of
//! real Iggy consumer groups: the server assigns partitions and stores commits.
//!
//! [`IggyConfig`] says how to reach Iggy: a server vibes runs itself
//! ([`IggyManager`], on `vibes-supervisor`) or one someone else runs
//! ([`IggyConfig::external_connection`]). [`preflight`] checks whether this machine can
//! run the server, for `vibes doctor`.
//!
//! Appends that must survive an unreachable server go through an outbox in front of
//! an [`IggyLog`]: `vibes_filelog::Outbox` wraps any backend, and the host wraps Iggy
//! in it. A failed call that means the server is unreachable makes the log replace its
//! connection in the background, so that the outbox's retries find a working one once
//! the server is back. A record without headers (one that waited in an outbox) gets
//! its event's `type` and `source` headers from the payload. docs/IGGY.md says what
//! holds at each step.
//!
//! This crate must never depend on the host (`vibes`), on any plugin, or on another
//! backend (vibes-filelog is only a dev-dependency, for the outbox tests).

#![warn(missing_docs)]

pub mod config;
mod connection;
mod consumer;
mod error;
mod headers;
mod log;
pub mod manager;
mod options;
pub mod preflight;
mod shared;

pub use config::{ConfigError, IggyConfig, Mode};
pub use connection::Connection;
pub use log::IggyLog;
pub use manager::{IggyManager, ManagerError};
pub use options::IggyLogOptions;
