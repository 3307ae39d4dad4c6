//! The [`Plugin`] trait and what a plugin declares about itself ([`Manifest`]).

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use vibes_events::{Event, Filter};
use vibes_log::{RecordAddress, TopicName};

use crate::emitter::Emitter;
use crate::error::{ManifestError, PluginError, QueryError};

/// A plugin: a deterministic fold over the log.
///
/// The runtime delivers the events of its input topic that match its filter, one
/// [`handle`](Plugin::handle) call each, in log order per partition. `handle` updates
/// the plugin's state and may write events through the [`Emitter`]; the runtime stores
/// them and only then commits the input. On start the runtime rebuilds the state by
/// replaying the input (from the latest snapshot, if the plugin takes snapshots), with
/// the emitter discarding what was already stored.
///
/// So that a replay rebuilds the same state and the same outputs, `handle` must depend
/// only on the events it was given and the state they built: no wall clock, no random
/// numbers, no iteration order of a `HashMap` in anything it emits or saves.
pub trait Plugin: Send + 'static {
    /// What the plugin reads, writes and answers. Called once per start.
    fn manifest(&self) -> Manifest;

    /// Folds one delivered event into the state, writing events through `out`.
    ///
    /// An error (or a panic) sends the record to the plugin's dead-letter topic with
    /// the error, discards what this call emitted, and processing goes on with the next
    /// record. Check before you change state, so a rejected event leaves none behind.
    fn handle(&mut self, input: &Input<'_>, out: &mut Emitter) -> Result<(), PluginError>;

    /// Answers query `name` (one the manifest declares) from the current state.
    fn query(&self, name: &str, args: &QueryArgs) -> Result<serde_json::Value, QueryError>;

    /// The state as bytes, for a snapshot; `None` (the default) takes none.
    fn save(&self) -> Option<Vec<u8>> {
        None
    }

    /// Restores the state from bytes that [`save`](Plugin::save) returned for the same
    /// manifest version. An error makes the runtime warn and replay everything instead,
    /// into this plugin: on error, leave the state as new.
    fn restore(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        let _ = bytes;
        Err(PluginError::new("this plugin takes no snapshots"))
    }

    /// The part of the state that only handling more events needs and no query reads
    /// (say, the ids already counted, kept to count a repeated event once), saved apart
    /// from [`save`](Plugin::save)'s bytes. `None` (the default): there is none.
    ///
    /// A query over a snapshot with no input after it then skips reading this part:
    /// the runtime restores it (through
    /// [`restore_for_handling`](Plugin::restore_for_handling)) only before the plugin
    /// handles an event or saves again. So after [`restore`](Plugin::restore) alone
    /// every query must answer as after both.
    fn save_for_handling(&self) -> Option<Vec<u8>> {
        None
    }

    /// Restores the part [`save_for_handling`](Plugin::save_for_handling) saved, after
    /// [`restore`](Plugin::restore) of the same snapshot. An error makes the runtime
    /// warn and replay everything instead, into this plugin: on error, leave the state
    /// as new.
    fn restore_for_handling(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        let _ = bytes;
        Ok(())
    }
}

/// One event as the runtime delivers it to [`Plugin::handle`].
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The event.
    pub event: &'a Event,
    /// Where it is stored in the input topic.
    pub address: RecordAddress,
    /// When the log appended it. Plugins should prefer `event.timestamp`, the time the
    /// event happened.
    pub appended: Timestamp,
}

/// What a plugin declares up front.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The plugin's name: `[a-z0-9-]`, 1 to 48 characters. Its consumer group is
    /// `plugin-<name>`.
    pub name: String,
    /// The version of its state and outputs. A snapshot saved by another version is not
    /// restored: the runtime replays everything instead.
    pub version: u32,
    /// What it is for, one line.
    pub about: String,
    /// The topic it reads (`stream/topic`); the host fills in its event topic when this
    /// is empty.
    pub input: String,
    /// Which events of the input it wants; the rest are skipped (and committed).
    pub filter: Filter,
    /// Its own stream: every topic it writes lives here. Defaults to the name.
    pub stream: String,
    /// The topics it writes, by their name within its stream, with partition counts.
    pub outputs: Vec<OutputSpec>,
    /// The queries it answers.
    pub queries: Vec<QuerySpec>,
    /// Save a snapshot every this many handled events (0: never).
    pub snapshot_every: u64,
}

/// Topics of a plugin's stream the runtime owns: dead letters and snapshots. No output
/// may take these names.
pub(crate) const RESERVED_TOPICS: [&str; 2] = ["dead-letter", "snapshots"];

impl Manifest {
    /// A manifest for plugin `name`, version 1, reading everything of the host's event
    /// topic, writing nothing, answering nothing.
    pub fn new(name: impl Into<String>, about: impl Into<String>) -> Self {
        let name = name.into();
        Manifest {
            stream: name.clone(),
            name,
            version: 1,
            about: about.into(),
            input: String::new(),
            filter: Filter::all(),
            outputs: Vec::new(),
            queries: Vec::new(),
            snapshot_every: 0,
        }
    }

    /// With this state version.
    #[must_use]
    pub fn version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// Reading `topic` instead of the host's event topic.
    #[must_use]
    pub fn input(mut self, topic: impl Into<String>) -> Self {
        self.input = topic.into();
        self
    }

    /// Only events that `filter` matches.
    #[must_use]
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = filter;
        self
    }

    /// Writing into stream `stream` instead of one named after the plugin.
    #[must_use]
    pub fn stream(mut self, stream: impl Into<String>) -> Self {
        self.stream = stream.into();
        self
    }

    /// Writing topic `<stream>/<topic>` with one partition.
    #[must_use]
    pub fn output(mut self, topic: impl Into<String>) -> Self {
        self.outputs.push(OutputSpec {
            topic: topic.into(),
            partitions: 1,
        });
        self
    }

    /// Answering query `name`, whose positional arguments fill `params` in order.
    #[must_use]
    pub fn query(mut self, name: &str, about: &str, params: &[&str]) -> Self {
        self.queries.push(QuerySpec {
            name: name.to_owned(),
            about: about.to_owned(),
            params: params.iter().map(|p| (*p).to_owned()).collect(),
        });
        self
    }

    /// Saving a snapshot every `n` handled events.
    #[must_use]
    pub fn snapshot_every(mut self, n: u64) -> Self {
        self.snapshot_every = n;
        self
    }

    /// The consumer group the plugin reads as.
    pub fn group(&self) -> String {
        format!("plugin-{}", self.name)
    }

    /// The full name of output `topic` (`<stream>/<topic>`).
    pub fn output_topic(&self, topic: &str) -> String {
        format!("{}/{topic}", self.stream)
    }

    /// The topic holding records the plugin could not handle.
    pub fn dead_letter_topic(&self) -> String {
        self.output_topic(RESERVED_TOPICS[0])
    }

    /// The topic holding its snapshots.
    pub fn snapshot_topic(&self) -> String {
        self.output_topic(RESERVED_TOPICS[1])
    }

    /// Checks the name and the topics: `ManifestError` says which is wrong and why.
    pub fn check(&self) -> Result<(), ManifestError> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 48
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok {
            return Err(ManifestError::new(
                &self.name,
                "a plugin name is 1 to 48 of a-z, 0-9 and -",
            ));
        }
        if self.stream.contains('/') {
            return Err(ManifestError::new(
                &self.name,
                format!("stream {:?} must be a stream name, without /", self.stream),
            ));
        }
        let mut seen = Vec::new();
        for output in &self.outputs {
            if output.topic.contains('/') {
                return Err(ManifestError::new(
                    &self.name,
                    format!(
                        "output {:?} must be a topic name within stream {}, without /",
                        output.topic, self.stream
                    ),
                ));
            }
            if RESERVED_TOPICS.contains(&output.topic.as_str()) {
                return Err(ManifestError::new(
                    &self.name,
                    format!("output {:?} is reserved for the runtime", output.topic),
                ));
            }
            if output.partitions == 0 {
                return Err(ManifestError::new(
                    &self.name,
                    format!("output {:?} needs at least one partition", output.topic),
                ));
            }
            if seen.contains(&&output.topic) {
                return Err(ManifestError::new(
                    &self.name,
                    format!("output {:?} is declared twice", output.topic),
                ));
            }
            seen.push(&output.topic);
            TopicName::new(&self.output_topic(&output.topic))
                .map_err(|e| ManifestError::new(&self.name, e.to_string()))?;
        }
        TopicName::new(&self.snapshot_topic())
            .map_err(|e| ManifestError::new(&self.name, e.to_string()))?;
        if !self.input.is_empty() {
            let input = TopicName::new(&self.input)
                .map_err(|e| ManifestError::new(&self.name, e.to_string()))?;
            if input.stream() == self.stream {
                return Err(ManifestError::new(
                    &self.name,
                    format!("it may not read its own stream {}", self.stream),
                ));
            }
        }
        Ok(())
    }

    /// The query called `name`, if declared.
    pub fn find_query(&self, name: &str) -> Option<&QuerySpec> {
        self.queries.iter().find(|q| q.name == name)
    }
}

/// A topic a plugin writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    /// Its name within the plugin's stream.
    pub topic: String,
    /// Partitions (outputs are keyed like any event: by session or bead id).
    pub partitions: u32,
}

/// A query a plugin answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuerySpec {
    /// Its name.
    pub name: String,
    /// What it answers, one line.
    pub about: String,
    /// The names its positional arguments fill, in order.
    pub params: Vec<String>,
}

/// The arguments of a query, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryArgs(BTreeMap<String, String>);

impl QueryArgs {
    /// No arguments.
    pub fn new() -> Self {
        Self::default()
    }

    /// With `name` set to `value`.
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.insert(name.into(), value.into());
        self
    }

    /// Parses command-line words for `spec`: `name=value` sets a parameter by name, a
    /// bare word fills the next positional parameter. Errors name the word.
    pub fn parse(spec: &QuerySpec, words: &[String]) -> Result<Self, QueryError> {
        let mut args = QueryArgs::new();
        let mut positional = spec.params.iter();
        for word in words {
            match word.split_once('=') {
                Some((name, value)) if spec.params.iter().any(|p| p == name) => {
                    args.0.insert(name.to_owned(), value.to_owned());
                }
                Some((name, _)) => {
                    return Err(QueryError::BadArgument(format!(
                        "query {} has no parameter {name:?} (it takes: {})",
                        spec.name,
                        describe_params(spec)
                    )));
                }
                None => match positional.find(|p| !args.0.contains_key(*p)) {
                    Some(name) => {
                        args.0.insert(name.clone(), word.clone());
                    }
                    None => {
                        return Err(QueryError::BadArgument(format!(
                            "query {} takes {}; {word:?} is one too many",
                            spec.name,
                            describe_params(spec)
                        )));
                    }
                },
            }
        }
        Ok(args)
    }

    /// The value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The value of `name`, or `BadArgument` saying it is needed.
    pub fn require(&self, name: &str) -> Result<&str, QueryError> {
        self.get(name)
            .ok_or_else(|| QueryError::BadArgument(format!("missing argument {name}")))
    }

    /// Every argument, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

fn describe_params(spec: &QuerySpec) -> String {
    if spec.params.is_empty() {
        "no arguments".to_owned()
    } else {
        spec.params.join(", ")
    }
}

impl fmt::Display for QuerySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        for p in &self.params {
            write!(f, " [{p}]")?;
        }
        Ok(())
    }
}
