//! The saved state: a [`vibes_plugin::saved`] frame whose JSON part holds the price
//! table's fingerprint, the coders and the aggregator (no binary tail: the state is
//! bounded and small).

use serde::{Deserialize, Serialize};
use vibes_plugin::{PluginError, saved};

use crate::aggregator::Aggregator;
use crate::derive::Deriver;
use crate::prices::Prices;

/// The frame's magic line.
const MAGIC: &[u8] = b"vibes-ai-coder/1\n";

#[derive(Serialize)]
struct SavedRef<'a> {
    prices: String,
    deriver: &'a Deriver,
    aggregator: &'a Aggregator,
}

#[derive(Deserialize)]
struct Saved {
    prices: String,
    deriver: Deriver,
    aggregator: Aggregator,
}

/// The state as bytes.
pub fn save(deriver: &Deriver, aggregator: &Aggregator, prices: &dyn Prices) -> Option<Vec<u8>> {
    let json = serde_json::to_vec(&SavedRef {
        prices: prices.fingerprint(),
        deriver,
        aggregator,
    })
    .ok()?;
    Some(saved::frame(MAGIC, &json, 0))
}

/// The state saved by [`save`]. Errors: another format, a cut frame, JSON that does
/// not decode, or a state priced with another table (the runtime then replays).
pub fn restore(bytes: &[u8], prices: &dyn Prices) -> Result<(Deriver, Aggregator), PluginError> {
    let (json, _tail) = saved::unframe(MAGIC, bytes)
        .map_err(|e| PluginError::new(format!("the ai-coder snapshot is cut short: {e}")))?
        .ok_or_else(|| PluginError::new("the ai-coder snapshot is of another format"))?;
    let saved: Saved = serde_json::from_slice(json)
        .map_err(|e| PluginError::new(format!("the ai-coder snapshot does not decode: {e}")))?;
    let now = prices.fingerprint();
    if saved.prices != now {
        return Err(PluginError::new(format!(
            "the ai-coder snapshot was priced with {:?}, this run prices with {now:?}",
            saved.prices
        )));
    }
    Ok((saved.deriver, saved.aggregator))
}
