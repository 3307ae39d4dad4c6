//! A framing for a plugin's saved state that restores fast when most of the state is
//! fixed-width numbers: a magic line naming the format, the length of a small JSON part
//! (8 bytes, little-endian), that part, then a binary tail the plugin lays out itself.

/// Starts a saved state: `magic`, the length of `json`, `json`. The caller appends its
/// binary tail; `tail` bytes are reserved for it.
pub fn frame(magic: &[u8], json: &[u8], tail: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(magic.len() + 8 + json.len() + tail);
    out.extend_from_slice(magic);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(json);
    out
}

/// A saved state split into its JSON part and its binary tail.
pub type Parts<'a> = (&'a [u8], &'a [u8]);

/// Splits what [`frame`] wrote (plus its tail) into the JSON part and the tail.
/// `Ok(None)` when `bytes` do not start with `magic` (another format, perhaps an older
/// one); an error saying what does not fit when the frame is cut short.
pub fn unframe<'a>(magic: &[u8], bytes: &'a [u8]) -> Result<Option<Parts<'a>>, String> {
    let Some(rest) = bytes.strip_prefix(magic) else {
        return Ok(None);
    };
    let (len, rest) = rest
        .split_first_chunk::<8>()
        .ok_or("it ends before the length of its JSON part")?;
    let len = usize::try_from(u64::from_le_bytes(*len)).map_err(|e| e.to_string())?;
    if rest.len() < len {
        return Err(format!(
            "its JSON part needs {len} bytes, {} are left",
            rest.len()
        ));
    }
    Ok(Some(rest.split_at(len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_cut_frames_say_why() {
        let mut bytes = frame(b"m/1\n", br#"{"a":1}"#, 3);
        bytes.extend_from_slice(&[7, 8, 9]);
        assert_eq!(
            unframe(b"m/1\n", &bytes),
            Ok(Some((&br#"{"a":1}"#[..], &[7u8, 8, 9][..])))
        );
        assert_eq!(unframe(b"m/2\n", &bytes), Ok(None));
        assert!(
            unframe(b"m/1\n", &bytes[..6])
                .unwrap_err()
                .contains("before the length")
        );
        assert!(
            unframe(b"m/1\n", &bytes[..14])
                .unwrap_err()
                .contains("needs 7 bytes, 2 are left")
        );
    }
}
