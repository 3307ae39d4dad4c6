//! Which events a subscriber (or a `vibes tail`) wants: type patterns and sources.

use std::fmt;
use std::str::FromStr;

use crate::Event;

/// A pattern over event types: `claude.tool_use` (exact), `claude.*` (prefix), `*`
/// (everything) or any pattern where `*` stands for any run of characters
/// (`*.start`, `bead.*ed`). There is no escape: event types never contain `*`.
#[derive(Clone, PartialEq, Eq)]
pub struct TypePattern {
    source: String,
    matcher: Matcher,
}

#[derive(Clone, PartialEq, Eq)]
enum Matcher {
    Any,
    Exact,
    Prefix(usize),
    Glob,
}

impl TypePattern {
    /// Compiles a pattern. Every string is a valid pattern.
    pub fn new(pattern: impl Into<String>) -> Self {
        let source = pattern.into();
        let stars = source.matches('*').count();
        let matcher = if source.chars().all(|c| c == '*') && stars > 0 {
            Matcher::Any
        } else if stars == 0 {
            Matcher::Exact
        } else if stars == 1 && source.ends_with('*') {
            Matcher::Prefix(source.len() - 1)
        } else {
            Matcher::Glob
        };
        TypePattern { source, matcher }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `event_type` matches.
    pub fn matches(&self, event_type: &str) -> bool {
        match self.matcher {
            Matcher::Any => true,
            Matcher::Exact => self.source == event_type,
            Matcher::Prefix(n) => event_type
                .as_bytes()
                .starts_with(&self.source.as_bytes()[..n]),
            Matcher::Glob => glob_match(self.source.as_bytes(), event_type.as_bytes()),
        }
    }
}

/// `*`-only wildcard matching, linear time: on a mismatch, retry from the last `*`
/// with one more character consumed by it.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            backtrack = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star_p, star_t)) = backtrack {
            p = star_p + 1;
            t = star_t + 1;
            backtrack = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

impl fmt::Debug for TypePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TypePattern({:?})", self.source)
    }
}

impl fmt::Display for TypePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl FromStr for TypePattern {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(TypePattern::new(s))
    }
}

impl From<&str> for TypePattern {
    fn from(s: &str) -> Self {
        TypePattern::new(s)
    }
}

/// Selects events by type and by source.
///
/// An event matches when its type matches any of the type patterns (or none were
/// given) and its source is one of the sources (or none were given).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    types: Vec<TypePattern>,
    sources: Vec<String>,
}

impl Filter {
    /// A filter that lets every event through.
    pub fn all() -> Self {
        Self::default()
    }

    /// Adds type patterns (any one of them must match).
    #[must_use]
    pub fn types<I, P>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<TypePattern>,
    {
        self.types.extend(patterns.into_iter().map(Into::into));
        self
    }

    /// Adds one type pattern.
    #[must_use]
    pub fn event_type(self, pattern: impl Into<TypePattern>) -> Self {
        self.types([pattern.into()])
    }

    /// Adds sources (the event's source must be one of them).
    #[must_use]
    pub fn sources<I, S>(mut self, sources: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.sources.extend(sources.into_iter().map(Into::into));
        self
    }

    /// Adds one source.
    #[must_use]
    pub fn source(self, source: impl Into<String>) -> Self {
        self.sources([source.into()])
    }

    /// Whether the filter lets every event through.
    pub fn is_all(&self) -> bool {
        self.types.is_empty() && self.sources.is_empty()
    }

    /// Whether `event` passes.
    pub fn matches(&self, event: &Event) -> bool {
        self.matches_parts(event.event_type(), &event.source)
    }

    /// Whether an event of this type and source passes.
    pub fn matches_parts(&self, event_type: &str, source: &str) -> bool {
        (self.types.is_empty() || self.types.iter().any(|p| p.matches(event_type)))
            && (self.sources.is_empty() || self.sources.iter().any(|s| s == source))
    }

    /// Whether an event stored as JSON (`payload`, as [`Event`] serializes) passes,
    /// judged from its `type` and `source` alone: the rest is skipped over, never
    /// decoded, so a reader wanting few of many events pays little for the others.
    /// `true` when the two cannot be read, so that decoding the record reports why.
    pub fn matches_json(&self, payload: &[u8]) -> bool {
        if self.is_all() {
            return true;
        }
        if let Some((event_type, source)) = canonical_head(payload) {
            return self.matches_parts(event_type, source);
        }
        #[derive(serde::Deserialize)]
        struct Head<'a> {
            #[serde(rename = "type", borrow)]
            event_type: std::borrow::Cow<'a, str>,
            #[serde(borrow)]
            source: std::borrow::Cow<'a, str>,
        }
        match serde_json::from_slice::<Head<'_>>(payload) {
            Ok(head) => self.matches_parts(&head.event_type, &head.source),
            Err(_) => true,
        }
    }
}

/// The type and source of an event as [`Event`]'s own encoding writes it:
/// `{"id":"…","type":"…","timestamp":"…","source":"…",…`, read without parsing the
/// rest (which is not checked to be JSON). `None` for any other layout, or a string
/// with an escape in it, which the caller then parses in full: a shortcut for the
/// common case, never a different answer for a whole event.
pub fn canonical_head(payload: &[u8]) -> Option<(&str, &str)> {
    let rest = payload.strip_prefix(br#"{"id":""#)?;
    let (_, rest) = plain_string(rest)?;
    let rest = rest.strip_prefix(br#","type":""#)?;
    let (event_type, rest) = plain_string(rest)?;
    let rest = rest.strip_prefix(br#","timestamp":""#)?;
    let (_, rest) = plain_string(rest)?;
    let rest = rest.strip_prefix(br#","source":""#)?;
    let (source, rest) = plain_string(rest)?;
    // The object goes on (or ends) right after: `source` was a whole value.
    if !matches!(rest.first(), Some(b',' | b'}')) {
        return None;
    }
    Some((
        std::str::from_utf8(event_type).ok()?,
        std::str::from_utf8(source).ok()?,
    ))
}

/// The bytes of a JSON string's contents up to its closing quote, and what follows
/// the quote; `None` if it holds an escape or does not end.
fn plain_string(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = memchr::memchr2(b'"', b'\\', bytes)?;
    if bytes[end] != b'"' {
        return None;
    }
    Some((&bytes[..end], &bytes[end + 1..]))
}
