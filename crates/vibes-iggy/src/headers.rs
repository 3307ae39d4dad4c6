//! Record headers recovered from a vibes event payload, for records that come without
//! (those that waited in an outbox, which keeps payloads but not headers).

use bytes::{BufMut, Bytes, BytesMut};
use iggy::prelude::HeaderKind;
use serde::Deserialize;

/// Headers (name, kind of value, value; each 1 to 255 bytes) in the layout Iggy keeps
/// them in a message: for the name and then the value, a kind code, a little-endian
/// u32 length and the bytes (names are strings). `None` for no headers.
pub(crate) fn encode(fields: &[(&str, HeaderKind, &[u8])]) -> Option<Bytes> {
    if fields.is_empty() {
        return None;
    }
    let size: usize = fields
        .iter()
        .map(|(name, _, value)| 10 + name.len() + value.len())
        .sum();
    let mut buf = BytesMut::with_capacity(size);
    for (name, kind, value) in fields {
        buf.put_u8(HeaderKind::String.as_code());
        buf.put_u32_le(name.len() as u32);
        buf.put_slice(name.as_bytes());
        buf.put_u8(kind.as_code());
        buf.put_u32_le(value.len() as u32);
        buf.put_slice(value);
    }
    Some(buf.freeze())
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    event_type: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    source: Option<std::borrow::Cow<'a, str>>,
}

/// `type` and `source` of a JSON event payload; none if it is not one. A payload laid
/// out as vibes encodes events is read from its head alone (records of a batch of
/// raw appends each come here), anything else parsed.
pub(crate) fn from_payload(payload: &[u8]) -> Vec<(String, String)> {
    if let Some((event_type, source)) = vibes_events::filter::canonical_head(payload) {
        return vec![
            ("type".to_owned(), event_type.to_owned()),
            ("source".to_owned(), source.to_owned()),
        ];
    }
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
        // Laid out otherwise (keys in another order), the same answer.
        assert_eq!(
            from_payload(br#"{"source":"claude","text":"hi","type":"claude.text","id":"x"}"#),
            headers
        );
        let canonical = br#"{"id":"x","type":"claude.text","timestamp":"2026-01-01T00:00:00Z","source":"claude","text":"hi"}"#;
        assert_eq!(from_payload(canonical), headers);
        assert!(from_payload(b"not json").is_empty());
        assert!(from_payload(b"[1,2]").is_empty());
    }
}
