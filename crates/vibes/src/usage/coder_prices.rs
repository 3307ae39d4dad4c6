//! The price table as the ai-coder plugin prices calls ([`vibes_plugin_ai_coder::Prices`]):
//! one call's usage, priced per request (long-context rates included).

use vibes_events::ApiUsage;
use vibes_plugin_ai_coder::Prices;
use vibes_plugin_usage::Tokens;

use super::PriceTable;

/// A price table lent to the ai-coder plugin.
#[derive(Debug, Clone)]
pub struct CoderPrices(pub PriceTable);

impl Prices for CoderPrices {
    fn cost(&self, model: &str, usage: &ApiUsage) -> Option<f64> {
        self.0.cost(model, &Tokens::from(usage))
    }

    fn fingerprint(&self) -> String {
        format!("vibes prices {}", self.0.version)
    }
}
