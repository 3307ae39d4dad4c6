//! Query-string parameters: the `vibes tail` filters as the API takes them, checked so
//! that a wrong or unknown parameter is a 400 naming it, never ignored.

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use vibes_log::LogError;

use super::error::ApiError;
use crate::commands::tail::From;
use crate::search::Selection;

/// The parameter that carries the token for clients that cannot set a header
/// (EventSource); accepted everywhere, checked by the access layer.
pub(super) const TOKEN_PARAM: &str = "token";

/// The parameters of one request, in order, repeats kept.
#[derive(Debug, Default)]
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    /// From axum's parse of the query string.
    pub(super) fn from_query(
        query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    ) -> Result<Self, ApiError> {
        match query {
            Ok(Query(pairs)) => Ok(Params(pairs)),
            Err(e) => Err(ApiError::bad_request(format!(
                "invalid query string: {}",
                e.body_text()
            ))),
        }
    }

    /// Refuses a parameter not in `known` (or the token).
    pub(super) fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        for (name, _) in &self.0 {
            if name != TOKEN_PARAM && !known.contains(&name.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter {name:?}; this endpoint takes: {}",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                )));
            }
        }
        Ok(())
    }

    /// Every value of `name`.
    pub(super) fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The value of `name`, which may be given once.
    pub(super) fn one(&self, name: &str) -> Result<Option<&str>, ApiError> {
        let mut values = self.0.iter().filter(|(n, _)| n == name);
        let first = values.next().map(|(_, v)| v.as_str());
        if values.next().is_some() {
            return Err(ApiError::bad_request(format!(
                "parameter {name:?} given more than once"
            )));
        }
        Ok(first)
    }

    /// The whole number `name`, if given, at most `max`.
    pub(super) fn number(&self, name: &str, max: u64) -> Result<Option<u64>, ApiError> {
        let Some(text) = self.one(name)? else {
            return Ok(None);
        };
        match text.parse::<u64>() {
            Ok(n) if n <= max => Ok(Some(n)),
            Ok(_) => Err(ApiError::bad_request(format!(
                "invalid {name} {text:?}: at most {max}"
            ))),
            Err(_) => Err(ApiError::bad_request(format!(
                "invalid {name} {text:?}: expected a whole number"
            ))),
        }
    }

    /// Every parameter other than `skip` (and the token), as `name=value` words.
    pub(super) fn words_except(&self, skip: &[&str]) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n != TOKEN_PARAM && !skip.contains(&n.as_str()))
            .map(|(n, v)| format!("{n}={v}"))
            .collect()
    }
}

/// The filters of `vibes tail`: `type` (glob, repeatable), `source` (repeatable),
/// `session`, and where to start: `from` (beginning, end, an offset or an RFC 3339
/// time) or `cursor` (a [`Cursor`](super::cursor::Cursor) an earlier answer gave).
#[derive(Debug)]
pub(super) struct Filters {
    pub(super) selection: Selection,
    pub(super) from: Option<From>,
    pub(super) cursor: Option<String>,
}

/// The parameter names [`filters`] reads.
pub(super) const FILTER_PARAMS: [&str; 5] = ["type", "source", "session", "from", "cursor"];

pub(super) fn filters(params: &Params) -> Result<Filters, ApiError> {
    let types = params.all("type");
    let sources = params.all("source");
    for (name, values) in [("type", &types), ("source", &sources)] {
        if values.iter().any(String::is_empty) {
            return Err(ApiError::bad_request(format!(
                "parameter {name:?} is empty"
            )));
        }
    }
    let session = params.one("session")?.map(str::to_owned);
    if session.as_deref() == Some("") {
        return Err(ApiError::bad_request("parameter \"session\" is empty"));
    }
    let from = params
        .one("from")?
        .map(|text| From::parse_as(text, "from"))
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
    let cursor = params.one("cursor")?.map(str::to_owned);
    if from.is_some() && cursor.is_some() {
        return Err(ApiError::bad_request("give from or cursor, not both"));
    }
    Ok(Filters {
        selection: Selection::new(&types, &sources, session),
        from,
        cursor,
    })
}

/// An error of [`start_offsets`](crate::commands::tail::start_offsets): the log failing
/// is a 503, anything else (an offset past the end, say) the request's fault.
pub(super) fn start_error(error: anyhow::Error) -> ApiError {
    if error.downcast_ref::<LogError>().is_some() {
        ApiError::log(error)
    } else {
        ApiError::bad_request(format!("{error:#}"))
    }
}
