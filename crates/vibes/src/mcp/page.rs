//! Keeps what a tool returns small enough for a model's context: every string cut to
//! [`MAX_TEXT`] characters (the cut marked in the string), a page of items cut to
//! [`MAX_BYTES`] of JSON, and the offset of the next page when there is more.

use serde_json::{Map, Value, json};

/// The longest string returned, in characters.
pub const MAX_TEXT: usize = 2_000;

/// The most JSON one result carries, in bytes (about 12k tokens).
pub const MAX_BYTES: usize = 48 * 1024;

/// Cuts every string in `value` longer than `max` characters to its first `max`,
/// followed by `… [cut: N more characters]`; returns how many were cut.
pub fn cut_strings(value: &mut Value, max: usize) -> u64 {
    match value {
        Value::String(s) => {
            let total = s.chars().count();
            if total <= max {
                return 0;
            }
            let kept: String = s.chars().take(max).collect();
            *s = format!("{kept}… [cut: {} more characters]", total - max);
            1
        }
        Value::Array(items) => items.iter_mut().map(|v| cut_strings(v, max)).sum(),
        Value::Object(map) => map.values_mut().map(|v| cut_strings(v, max)).sum(),
        _ => 0,
    }
}

/// One page of `items` (those from `offset` on) under `key`, with `extra` fields:
/// strings cut (see [`cut_strings`]), and items left off once the page would pass
/// [`MAX_BYTES`] (never the first). `more` says whether items exist past those given.
///
/// The page says `offset`, `returned`, `next_offset` (where the next page starts, or
/// `null` at the end) and, when anything was cut, `truncated` with what and why.
pub fn page(
    key: &str,
    items: Vec<Value>,
    offset: u64,
    more: bool,
    extra: Map<String, Value>,
) -> Value {
    let mut map = extra;
    let base = serde_json::to_vec(&Value::Object(map.clone())).map_or(0, |b| b.len());
    let given = items.len();
    let mut kept = Vec::with_capacity(given);
    let mut size = base + 200;
    let mut strings_cut = 0;
    for mut item in items {
        strings_cut += cut_strings(&mut item, MAX_TEXT);
        let len = serde_json::to_vec(&item).map_or(0, |b| b.len()) + 1;
        if !kept.is_empty() && size + len > MAX_BYTES {
            break;
        }
        size += len;
        kept.push(item);
    }
    let returned = kept.len();
    let left_off = given - returned;
    let next = (more || left_off > 0).then(|| offset + returned as u64);
    map.insert(key.to_owned(), Value::Array(kept));
    map.insert("offset".to_owned(), json!(offset));
    map.insert("returned".to_owned(), json!(returned));
    map.insert("next_offset".to_owned(), json!(next));
    if strings_cut > 0 || left_off > 0 {
        let mut why = Vec::new();
        if strings_cut > 0 {
            why.push(format!(
                "{strings_cut} strings longer than {MAX_TEXT} characters were cut (marked `[cut: N more characters]`)"
            ));
        }
        if left_off > 0 {
            why.push(format!(
                "{left_off} more items would pass {MAX_BYTES} bytes: ask again with offset {}",
                offset + returned as u64
            ));
        }
        map.insert(
            "truncated".to_owned(),
            json!({"strings_cut": strings_cut, "items_left_off": left_off, "note": why.join("; ")}),
        );
    }
    Value::Object(map)
}

/// `value` with its strings cut (see [`cut_strings`]) and, when that is still over
/// [`MAX_BYTES`], each array in it shortened from the end until it fits; marked with
/// `truncated` when anything was cut.
pub fn bound(mut value: Value) -> Value {
    let strings_cut = cut_strings(&mut value, MAX_TEXT);
    let mut dropped = 0u64;
    // Room for the `truncated` note added below.
    while serde_json::to_vec(&value).map_or(0, |b| b.len()) > MAX_BYTES - 512 {
        if !shorten_longest_array(&mut value) {
            break;
        }
        dropped += 1;
    }
    if (strings_cut > 0 || dropped > 0)
        && let Value::Object(map) = &mut value
    {
        map.insert(
            "truncated".to_owned(),
            json!({
                "strings_cut": strings_cut,
                "items_left_off": dropped,
                "note": format!("cut to stay under {MAX_BYTES} bytes: strings over {MAX_TEXT} characters end in `[cut: N more characters]`; {dropped} list items were left off the end of the longest lists"),
            }),
        );
    }
    value
}

/// Removes the last item of the longest non-empty array in `value`; whether there was
/// one.
fn shorten_longest_array(value: &mut Value) -> bool {
    fn find(value: &Value, at: &str, best: &mut Option<(usize, String)>) {
        match value {
            Value::Array(items) => {
                if !items.is_empty() && best.as_ref().is_none_or(|(n, _)| items.len() > *n) {
                    *best = Some((items.len(), at.to_owned()));
                }
                for (i, v) in items.iter().enumerate() {
                    find(v, &format!("{at}/{i}"), best);
                }
            }
            Value::Object(map) => {
                for (k, v) in map {
                    let k = k.replace('~', "~0").replace('/', "~1");
                    find(v, &format!("{at}/{k}"), best);
                }
            }
            _ => {}
        }
    }
    let mut best = None;
    find(value, "", &mut best);
    best.and_then(|(_, pointer)| value.pointer_mut(&pointer))
        .and_then(Value::as_array_mut)
        .and_then(Vec::pop)
        .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_strings_are_cut_and_marked() {
        let mut v = json!({"a": "x".repeat(2_500), "b": ["short"]});
        assert_eq!(cut_strings(&mut v, MAX_TEXT), 1);
        let a = v["a"].as_str().expect("string");
        assert!(a.starts_with(&"x".repeat(MAX_TEXT)), "{a}");
        assert!(a.ends_with("… [cut: 500 more characters]"), "{a}");
        assert_eq!(v["b"][0], "short");
    }

    #[test]
    fn a_page_stops_at_its_byte_budget_and_says_where_to_go_on() {
        let items: Vec<Value> = (0..100)
            .map(|i| json!({"i": i, "text": "y".repeat(1_500)}))
            .collect();
        let p = page("events", items, 10, false, Map::new());
        let returned = p["returned"].as_u64().expect("returned");
        assert!(returned > 0 && returned < 100, "{returned}");
        assert_eq!(p["next_offset"], json!(10 + returned));
        assert_eq!(p["truncated"]["items_left_off"], json!(100 - returned));
        assert!(serde_json::to_vec(&p).expect("json").len() <= MAX_BYTES);
        let last = page("events", vec![json!(1)], 3, false, Map::new());
        assert_eq!(last["next_offset"], Value::Null);
        assert!(last.get("truncated").is_none());
    }

    #[test]
    fn bound_shortens_the_longest_list() {
        let v =
            json!({"rows": (0..5000).map(|i| json!({"n": i})).collect::<Vec<_>>(), "k": [1, 2]});
        let b = bound(v);
        assert!(serde_json::to_vec(&b).expect("json").len() <= MAX_BYTES);
        assert_eq!(b["k"], json!([1, 2]));
        assert!(b["truncated"]["items_left_off"].as_u64().expect("n") > 0);
    }
}
