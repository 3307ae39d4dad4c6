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
//! - [`json`]: `serde_json::from_slice` with the UTF-8 check done once, faster.
//! - [`Router`]: emit/subscribe fan-out with filters, bounded per-subscriber buffers and
//!   an explicit overflow policy.
//!
//! ```
//! use vibes_events::router::{OverflowPolicy, SubscribeOptions};
//! use vibes_events::{Event, Filter, Router, ToolUse};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let router = Router::new();
//! // Every Claude tool call and result; never drop any (emitters wait instead).
//! let mut tools = router.subscribe_with(
//!     SubscribeOptions::new(Filter::all().event_type("claude.tool_*"))
//!         .policy(OverflowPolicy::Backpressure),
//! );
//! let call = ToolUse::new("toolu_01", "Bash", serde_json::json!({"command": "git status"}));
//! router.emit(Event::claude(call)).await.unwrap();
//!
//! let event = tools.recv().await.unwrap();
//! assert_eq!(event.summary().to_string(), "$ git status");
//! let json = event.to_json().unwrap();
//! assert!(json.starts_with(r#"{"id":"#));
//! assert_eq!(Event::from_json(&json).unwrap(), *event);
//! # });
//! ```
#![warn(missing_docs)]

mod direct;
pub mod display;
mod event;
pub mod filter;
pub mod json;
pub mod router;
pub mod source;
mod taxonomy;

pub use event::{Event, EventId};
pub use filter::{Filter, TypePattern};
pub use router::{OverflowPolicy, Router, Subscription};
pub use taxonomy::*;

/// Re-exported so users name the same timestamp type vibes uses.
pub use jiff::Timestamp;
