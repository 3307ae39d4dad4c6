//! vibes plugins: deterministic folds over the log.
//!
//! A plugin implements [`Plugin`]: it declares a [`Manifest`] (its name, the topic and
//! events it reads, the topics it writes under its own stream, its queries), handles
//! one delivered event at a time, writes its own events through an [`Emitter`], and
//! answers queries from its state. The [`Runtime`] runs it as a consumer group:
//!
//! 1. creates its topics (idempotently) and joins the group `plugin-<name>`;
//! 2. restores its newest snapshot, if it takes snapshots, and replays the input after
//!    it up to the group's last commit, storing nothing (those outputs were stored);
//! 3. then polls, filters, handles, stores the outputs, and only then commits.
//!
//! Output ids derive from the input that caused them, and every output names its
//! cause, so a restart after a crash between storing and committing recognises what
//! it already stored: a run killed at any point and resumed stores exactly the outputs
//! of an uninterrupted run. A record the plugin cannot handle (an error, a panic, or a
//! payload that does not decode) goes to `<stream>/dead-letter` and processing goes
//! on. [`Runtime::spawn`] restarts a failed run with growing backoff and keeps a
//! [`PluginStatus`] for the host. [`testing`] drives a plugin over an in-memory log.
//!
//! This crate depends on `vibes-events` and the application API of `vibes-log` only;
//! it must never depend on a backend crate or on the host.
#![warn(missing_docs)]

mod emitter;
mod error;
mod plugin;
mod runtime;
pub mod saved;
mod status;
pub mod testing;

pub use emitter::{CAUSE_FIELD, Emitter, Output, derive_id};
pub use error::{ManifestError, PluginError, QueryError, RuntimeError};
pub use plugin::{Input, Manifest, OutputSpec, Plugin, QueryArgs, QuerySpec};
pub use runtime::{
    Folded, Followed, Follower, PluginFactory, PluginHandle, Progress, Rebuilt, RunningPlugin,
    Runtime, RuntimeOptions, SharedPlugin, Shutdown,
};
pub use status::{PluginState, PluginStatus, StatusHandle};

/// The event type of a dead letter: a record a plugin could not handle, with the
/// plugin, the error, the record's topic, partition and offset, and the event.
pub const DEAD_LETTER_TYPE: &str = "vibes.dead_letter";
