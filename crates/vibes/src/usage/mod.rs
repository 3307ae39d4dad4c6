//! `vibes usage`: API calls, tokens and cost per period, session or 5-hour block, from
//! the usage plugin's de-duplicated calls and a price table.

pub mod blocks;
pub mod coder_prices;
pub mod prices;
pub mod render;
pub mod report;

pub use prices::{PriceError, PriceTable};
pub use report::{Call, Filter, Period, Summary};
