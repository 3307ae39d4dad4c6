//! Following the log with a plugin in-process, for a live read-only view (`vibes top`):
//! the plugin is rebuilt as for a query, then fed each record its owner reads after
//! that. Nothing is written and nothing is committed; outputs are dropped.

use std::collections::BTreeMap;

use vibes_events::Event;
use vibes_log::{Delivered, Offset};

use super::Runtime;
use super::rebuild::{Progress, Rebuilt};
use super::run::handle_caught;
use crate::emitter::Emitter;
use crate::error::{QueryError, RuntimeError};
use crate::plugin::{Input, Manifest, Plugin, QueryArgs};

/// A plugin kept up to date in this process from records read by its owner.
pub struct Follower {
    plugin: Box<dyn Plugin>,
    manifest: Manifest,
    input: String,
    /// Per partition, the offset of the next record the plugin has not seen.
    positions: BTreeMap<u32, Offset>,
    emitter: Emitter,
    refused: u64,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower")
            .field("plugin", &self.manifest.name)
            .field("positions", &self.positions)
            .field("refused", &self.refused)
            .finish_non_exhaustive()
    }
}

/// What [`Follower::handle`] did with a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followed {
    /// The plugin folded it in.
    Handled,
    /// Not for this plugin: its filter does not want it, or it was seen already.
    Passed,
    /// The plugin refused it (or panicked); the state is as before, the error says why.
    Refused(String),
}

impl Runtime {
    /// Rebuilds `plugin` (fresh) as [`rebuild`](Runtime::rebuild) does, and returns it
    /// ready to follow the records after the end it read to.
    pub async fn follow(
        &self,
        mut plugin: Box<dyn Plugin>,
        progress: impl FnMut(Progress),
    ) -> Result<(Follower, Rebuilt), RuntimeError> {
        let rebuilt = self.rebuild(&mut *plugin, progress).await?;
        let manifest = plugin.manifest();
        let input = self.input_of(&manifest);
        let emitter = Emitter::discarding(&manifest.name);
        let follower = Follower {
            plugin,
            input,
            positions: rebuilt.positions.clone(),
            emitter,
            manifest,
            refused: 0,
        };
        Ok((follower, rebuilt))
    }
}

impl Follower {
    /// A follower of `plugin` from the start of its input (nothing rebuilt): for tests
    /// and views that feed it every record themselves.
    pub fn fresh(plugin: Box<dyn Plugin>, input: &str) -> Self {
        let manifest = plugin.manifest();
        let input = if manifest.input.is_empty() {
            input.to_owned()
        } else {
            manifest.input.clone()
        };
        Follower {
            emitter: Emitter::discarding(&manifest.name),
            plugin,
            manifest,
            input,
            positions: BTreeMap::new(),
            refused: 0,
        }
    }

    /// The plugin's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Per partition, the offset of the next record it has not seen.
    pub fn positions(&self) -> &BTreeMap<u32, Offset> {
        &self.positions
    }

    /// Records refused so far.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Folds one record of the plugin's input in, unless it was seen already (before
    /// its partition's position) or the plugin's filter does not want it.
    pub fn handle(&mut self, delivered: &Delivered<Event>) -> Followed {
        let address = delivered.address;
        let next = self.positions.entry(address.partition).or_insert(0);
        if address.offset < *next {
            return Followed::Passed;
        }
        *next = address.offset + 1;
        if !self.manifest.filter.matches(&delivered.event) {
            return Followed::Passed;
        }
        self.emitter.begin(&self.input, address, &delivered.event);
        let input = Input {
            event: &delivered.event,
            address,
            appended: delivered.timestamp,
        };
        let result = handle_caught(&mut *self.plugin, &input, &mut self.emitter);
        match result {
            Ok(()) => Followed::Handled,
            Err(e) => {
                self.refused += 1;
                Followed::Refused(e.to_string())
            }
        }
    }

    /// Answers query `name` from the state it has now.
    pub fn query(&self, name: &str, args: &QueryArgs) -> Result<serde_json::Value, QueryError> {
        super::query_plugin(&*self.plugin, &self.manifest, name, args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PluginError;
    use jiff::Timestamp;
    use vibes_events::Filter;
    use vibes_log::RecordAddress;

    /// Counts the events of one type it sees.
    struct Count(u64);

    impl Plugin for Count {
        fn manifest(&self) -> Manifest {
            Manifest::new("count", "counts")
                .filter(Filter::all().event_type("test.wanted"))
                .output("x")
                .query("n", "how many", &[])
        }
        fn handle(&mut self, input: &Input<'_>, out: &mut Emitter) -> Result<(), PluginError> {
            if input.address.offset == 3 {
                return Err(PluginError::new("refused three"));
            }
            self.0 += 1;
            out.emit("x", "count.seen", serde_json::json!({}))
        }
        fn query(&self, _: &str, _: &QueryArgs) -> Result<serde_json::Value, QueryError> {
            Ok(serde_json::json!(self.0))
        }
    }

    fn delivered(offset: u64, event_type: &str) -> Delivered<Event> {
        let json = format!(
            r#"{{"id":"0193a5c0-0000-7000-8000-{offset:012}","type":"{event_type}","timestamp":"2026-01-01T00:00:00Z","source":"t"}}"#
        );
        Delivered {
            address: RecordAddress {
                partition: 0,
                offset,
            },
            timestamp: Timestamp::UNIX_EPOCH,
            event: Event::from_json(&json).expect("a test event"),
        }
    }

    #[test]
    fn folds_each_wanted_record_once_and_reports_refusals() {
        let mut f = Follower::fresh(Box::new(Count(0)), "vibes/events");
        assert_eq!(f.handle(&delivered(0, "test.wanted")), Followed::Handled);
        assert_eq!(f.handle(&delivered(1, "test.other")), Followed::Passed);
        // Seen already: skipped, not counted twice.
        assert_eq!(f.handle(&delivered(0, "test.wanted")), Followed::Passed);
        assert_eq!(f.handle(&delivered(2, "test.wanted")), Followed::Handled);
        assert_eq!(
            f.handle(&delivered(3, "test.wanted")),
            Followed::Refused("refused three".to_owned())
        );
        assert_eq!(
            f.query("n", &QueryArgs::new()).ok(),
            Some(serde_json::json!(2))
        );
        assert_eq!(f.refused(), 1);
        assert_eq!(f.positions().get(&0), Some(&4));
        assert!(f.query("nope", &QueryArgs::new()).is_err());
    }
}
