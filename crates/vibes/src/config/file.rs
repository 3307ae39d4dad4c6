//! The TOML config file: every value found, under its dotted key name (`log.topic`,
//! `iggy.mode`), with the byte where it starts so that an error can name the line. Which
//! keys exist is [`KEYS`](super::keys::KEYS): a name not there is an error.

use std::collections::BTreeMap;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::keys::KEYS;
use super::value::RawValue;

/// Keys earlier versions had, and what replaced each.
const REMOVED: &[(&str, &str)] = &[
    (
        "iggy.flush",
        "when an append is acknowledged is `log.durability` (always, interval or never), \
         the same on every backend; move the value there",
    ),
    (
        "iggy.partitions",
        "a new topic's partitions are `log.partitions`, the same on every backend; move the \
         value there",
    ),
];

/// Why a file's contents cannot be taken.
#[derive(Debug)]
pub(super) enum FileError {
    /// Not TOML, or a key that does not exist: the message names the line.
    Syntax(String),
    /// A key earlier versions had: where it is, and what replaced it.
    Removed {
        key: &'static str,
        offset: usize,
        instead: &'static str,
    },
}

/// A value the file sets: its key, where it starts, what it is.
pub(super) struct FileValue {
    pub(super) key: &'static str,
    pub(super) offset: usize,
    pub(super) value: RawValue,
}

/// Every value `text` sets, in the order of [`KEYS`].
pub(super) fn values(text: &str) -> Result<Vec<FileValue>, FileError> {
    let document = DeTable::parse(text)
        .map_err(|e| FileError::Syntax(located(text, e.span(), e.message())))?;
    let mut found = BTreeMap::new();
    for (name, value) in document.get_ref() {
        match value.get_ref() {
            DeValue::Table(section) => {
                for (field, value) in section {
                    take(
                        text,
                        &format!("{}.{}", name.get_ref(), field.get_ref()),
                        field,
                        value,
                        &mut found,
                    )?;
                }
            }
            _ => take(text, name.get_ref(), name, value, &mut found)?,
        }
    }
    Ok(KEYS
        .iter()
        .enumerate()
        .filter_map(|(i, _)| found.remove(&i))
        .collect())
}

/// Files the value of `name` (whose key is `key` in the text) under its row of KEYS.
fn take(
    text: &str,
    name: &str,
    key: &Spanned<impl AsRef<str>>,
    value: &Spanned<DeValue<'_>>,
    found: &mut BTreeMap<usize, FileValue>,
) -> Result<(), FileError> {
    if let Some(&(removed, instead)) = REMOVED.iter().find(|(k, _)| *k == name) {
        return Err(FileError::Removed {
            key: removed,
            offset: key.span().start,
            instead,
        });
    }
    let unknown = matches!(value.get_ref(), DeValue::Table(_));
    let row = KEYS
        .iter()
        .position(|k| k.name == name)
        .filter(|_| !unknown);
    let Some(row) = row else {
        return Err(FileError::Syntax(located(
            text,
            Some(key.span()),
            &format!("unknown key `{name}` (`vibes config show` lists every key)"),
        )));
    };
    found.insert(
        row,
        FileValue {
            key: KEYS[row].name,
            offset: value.span().start,
            value: raw(value.get_ref()),
        },
    );
    Ok(())
}

/// A TOML value as a key's parser takes it.
fn raw(value: &DeValue<'_>) -> RawValue {
    match value {
        DeValue::String(s) => RawValue::Text(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .map_or(RawValue::Other("integer too large"), RawValue::Integer),
        DeValue::Boolean(b) => RawValue::Boolean(*b),
        other => RawValue::Other(other.type_str()),
    }
}

/// 1-based line and column of byte `offset` in `text`.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// `message` as one line with its position: `line 3, column 1: unknown key ...`.
fn located(text: &str, span: Option<std::ops::Range<usize>>, message: &str) -> String {
    let message = message.trim_end();
    match span {
        Some(span) => {
            let (line, column) = line_column(text, span.start);
            format!("line {line}, column {column}: {message}")
        }
        None => message.to_owned(),
    }
}
