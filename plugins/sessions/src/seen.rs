//! The ids of one key already counted, as 64-bit fingerprints: a sorted base (what a
//! snapshot restored) and a set of those added since, so restoring millions of ids is a
//! copy, not millions of inserts.

use std::collections::BTreeSet;

/// Fingerprints seen.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    /// Sorted, no repeats.
    base: Vec<u64>,
    /// Not in `base`.
    added: BTreeSet<u64>,
}

impl Seen {
    /// Adds `fingerprint`; returns whether it was new.
    pub(crate) fn insert(&mut self, fingerprint: u64) -> bool {
        if self.base.binary_search(&fingerprint).is_ok() {
            return false;
        }
        self.added.insert(fingerprint)
    }

    /// Fingerprints held.
    pub(crate) fn len(&self) -> usize {
        self.base.len() + self.added.len()
    }

    /// Appends every fingerprint, ascending, as 8 little-endian bytes each.
    pub(crate) fn write_to(&self, out: &mut Vec<u8>) {
        out.reserve(self.len() * 8);
        let mut base = self.base.iter().peekable();
        let mut added = self.added.iter().peekable();
        loop {
            let next = match (base.peek(), added.peek()) {
                (Some(&&b), Some(&&a)) if a < b => added.next(),
                (Some(_), _) => base.next(),
                (None, Some(_)) => added.next(),
                (None, None) => break,
            };
            if let Some(v) = next {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
    }

    /// Reads what [`Seen::write_to`] wrote: `bytes` is 8 bytes per fingerprint.
    /// Errors (a length that is not a multiple of 8, or not ascending) say what is wrong.
    pub(crate) fn read_from(bytes: &[u8]) -> Result<Seen, String> {
        if !bytes.len().is_multiple_of(8) {
            return Err(format!(
                "{} bytes of ids is not a whole number of ids",
                bytes.len()
            ));
        }
        let base: Vec<u64> = bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect();
        if base.windows(2).any(|w| w[0] >= w[1]) {
            return Err("the ids are not in ascending order".to_owned());
        }
        Ok(Seen {
            base,
            added: BTreeSet::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_once_and_round_trips_in_order() {
        let mut seen = Seen::default();
        for v in [5u64, 1, 9, u64::MAX, 0] {
            assert!(seen.insert(v));
        }
        assert!(!seen.insert(9));
        let mut bytes = Vec::new();
        seen.write_to(&mut bytes);
        let mut back = Seen::read_from(&bytes).expect("reads");
        assert_eq!(back.len(), 5);
        assert!(!back.insert(u64::MAX), "restored ids are remembered");
        assert!(back.insert(7));
        let mut again = Vec::new();
        back.write_to(&mut again);
        let values: Vec<u64> = again
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8")))
            .collect();
        assert_eq!(
            values,
            [0, 1, 5, 7, 9, u64::MAX],
            "base and added merge sorted"
        );
    }

    #[test]
    fn damaged_bytes_are_refused() {
        assert!(Seen::read_from(&[0; 7]).is_err());
        let mut bytes = 5u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(&3u64.to_le_bytes());
        assert!(Seen::read_from(&bytes).unwrap_err().contains("ascending"));
    }
}
