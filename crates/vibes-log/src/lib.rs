//! The vibes event log: what every producer and consumer codes against.
//!
//! Two audiences, two places:
//!
//! - **Applications and plugins** use the crate root: the typed API [`EventLog<E>`]
//!   (append, append_batch, append_batch_receipts, consumer, high_water_mark),
//!   [`EventConsumer<E>`] (poll, commit, seek, committed_offset, group) and
//!   [`EventBatch<E>`], with positions ([`SeekPosition`], [`StartFrom`]), names,
//!   durability and [`LogError`]. Events are encoded by a [`Codec`], JSON by default,
//!   and only here. [`InMemoryLog`] is a
//!   backend with every semantic and no storage, for tests.
//! - **Backend implementors** use [`backend`]: the object-safe byte-level
//!   [`LogBackend`](backend::LogBackend) and [`RecordConsumer`](backend::RecordConsumer)
//!   traits (so the host picks a backend at run time and each backend is written once),
//!   the records they store, the [`Receipt`](backend::Receipt) of an append that may be
//!   queued rather than stored (an outbox), [`backend::group`], consumer-group
//!   positions written once for every backend (each supplies a
//!   [`GroupMember`](backend::group::GroupMember)), and [`backend::local`], group
//!   membership for backends in this process's reach (memory, files).
//! - **Anything that writes a file** that must survive a crash whole uses [`durable`]:
//!   one atomic, durable replace (temporary file, fsync, rename, directory fsync) for
//!   every crate, so no two copies give different guarantees.
//! - `testkit` (feature `testkit`, unstable): the conformance suite every backend runs,
//!   and `Switchable`, a backend whose "server" a test can switch off.
//!
//! # The model
//!
//! A topic `stream/topic` has N partitions. A record has a key (same key, same
//! partition, order kept), an id, a payload, and the time the backend appended it; its
//! address is (partition, offset), offsets dense from 0 and assigned only by the
//! backend. Consumer groups commit a next offset per partition; a new member resumes
//! after the group's last commit; delivery is at-least-once; members of a group split
//! the partitions.
//!
//! This crate depends on `vibes-events` and nothing of vibes above it: it must never
//! depend on a backend crate.
#![warn(missing_docs)]

pub mod backend;
mod decode;
pub mod durable;
mod error;
mod memory;
mod name;
mod position;
mod record;
#[cfg(feature = "testkit")]
pub mod testkit;
mod typed;

pub use backend::{ConsumerOptions, TopicConfig};
pub use decode::decode_batch;
pub use error::{CodecError, DecodeError, LogError, Missing, Result};
pub use memory::InMemoryLog;
pub use name::{GroupName, MAX_NAME_LEN, TopicName};
pub use position::{SeekPosition, StartFrom};
pub use record::{AppendOptions, Durability, Offset, RecordAddress, Watermarks};
pub use typed::{
    Codec, Delivered, EventBatch, EventConsumer, EventLog, EventReceipt, JsonCodec, LogEvent,
    PartitionBatch,
};
