//! Record headers recovered from a vibes event payload, for records that come without
//! (those that waited in an outbox, which keeps payloads but not headers).

use serde::Deserialize;

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    event_type: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    source: Option<std::borrow::Cow<'a, str>>,
}

/// `type` and `source` of a JSON event payload; none if it is not one.
pub(crate) fn from_payload(payload: &[u8]) -> Vec<(String, String)> {
    let Ok(envelope) = serde_json::from_slice::<Envelope<'_>>(payload) else {
        return Vec::new();
    };
    let mut headers = Vec::with_capacity(2);
    if let Some(t) = envelope.event_type {
        headers.push(("type".to_owned(), t.into_owned()));
    }
    if let Some(s) = envelope.source {
        headers.push(("source".to_owned(), s.into_owned()));
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_and_source_come_from_the_event() {
        let headers =
            from_payload(br#"{"id":"x","type":"claude.text","source":"claude","text":"hi"}"#);
        assert_eq!(
            headers,
            [
                ("type".to_owned(), "claude.text".to_owned()),
                ("source".to_owned(), "claude".to_owned())
            ]
        );
        assert!(from_payload(b"not json").is_empty());
        assert!(from_payload(b"[1,2]").is_empty());
    }
}
