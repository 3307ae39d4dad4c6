//! Topic and group names, validated so that they can name directories and Iggy
//! resources safely.

use std::fmt;
use std::str::FromStr;

use crate::error::LogError;

/// Longest stream, topic or group name, in bytes.
pub const MAX_NAME_LEN: usize = 128;

fn check_part(whole: &str, part: &str, what: &str) -> Result<(), LogError> {
    let invalid = |reason: String| LogError::InvalidName {
        name: whole.to_owned(),
        reason,
    };
    if part.is_empty() {
        return Err(invalid(format!("the {what} is empty")));
    }
    if part.len() > MAX_NAME_LEN {
        return Err(invalid(format!(
            "the {what} is {} bytes long; at most {MAX_NAME_LEN} are allowed",
            part.len()
        )));
    }
    if part.starts_with('.') {
        return Err(invalid(format!("the {what} starts with `.`")));
    }
    if let Some(c) = part
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(invalid(format!(
            "the {what} contains {c:?}; only ASCII letters, digits, `.`, `_` and `-` are allowed"
        )));
    }
    Ok(())
}

/// A topic name: `stream/topic`, each part 1 to 128 of ASCII letters, digits, `.`, `_`
/// and `-`, not starting with `.`. These rules keep a name from escaping a data
/// directory (no `..`, no separators, no absolute paths) and fit Iggy's naming.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName {
    full: String,
    split: usize,
}

impl TopicName {
    /// Validates `stream/topic`.
    pub fn new(name: &str) -> Result<Self, LogError> {
        let Some((stream, topic)) = name.split_once('/') else {
            return Err(LogError::InvalidName {
                name: name.to_owned(),
                reason: "a topic is named `stream/topic`".to_owned(),
            });
        };
        check_part(name, stream, "stream")?;
        check_part(name, topic, "topic")?;
        Ok(TopicName {
            full: name.to_owned(),
            split: stream.len(),
        })
    }

    /// The stream part.
    pub fn stream(&self) -> &str {
        &self.full[..self.split]
    }

    /// The topic part.
    pub fn topic(&self) -> &str {
        &self.full[self.split + 1..]
    }

    /// `stream/topic`.
    pub fn as_str(&self) -> &str {
        &self.full
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl FromStr for TopicName {
    type Err = LogError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TopicName::new(s)
    }
}

/// A consumer-group name: 1 to 128 of ASCII letters, digits, `.`, `_` and `-`, not
/// starting with `.`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupName(String);

impl GroupName {
    /// Validates a group name.
    pub fn new(name: &str) -> Result<Self, LogError> {
        check_part(name, name, "group name")?;
        Ok(GroupName(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for GroupName {
    type Err = LogError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GroupName::new(s)
    }
}
