//! The vibes event taxonomy and the in-process Router.
//!
//! This is the foundation every other vibes crate builds on: pure data and in-memory
//! fan-out, with no I/O and no knowledge of any log backend. It must never depend on
//! another vibes crate, on an async runtime, or on a storage or network library.
//!
//! - [`Event`]: the envelope every event shares (`id`, `type`, `timestamp`, `source`),
//!   with its typed [`EventData`] and any fields this version does not know.
//!   Encoded as one flat JSON object; see [`Event`] for the decoding rules.
//! - [`display`]: one-line human-readable rendering, with optional ANSI colour.
//! - [`Router`]: emit/subscribe fan-out with filters, bounded per-subscriber buffers and
//!   an explicit overflow policy.
#![warn(missing_docs)]

pub mod display;
mod event;
pub mod filter;
pub mod router;
pub mod source;
mod taxonomy;

pub use event::{Event, EventId};
pub use filter::{Filter, TypePattern};
pub use router::{OverflowPolicy, Router, Subscription};
pub use taxonomy::*;

/// Re-exported so users name the same timestamp type vibes uses.
pub use jiff::Timestamp;
