//! The price table: USD per million tokens per model, compiled in
//! (`data/prices.toml`) and overridable from a file; and the cost of one call.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;
use vibes_plugin_usage::Tokens;

/// The table compiled into the binary.
pub const BUILTIN: &str = include_str!("../../data/prices.toml");

/// Prices of one kind of request, USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rates {
    pub input: f64,
    pub output: f64,
    pub cache_write_5m: f64,
    pub cache_write_1h: f64,
    pub cache_read: f64,
}

/// Long-context pricing: `rates` for a request whose input side exceeds `threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LongContext {
    pub threshold: u64,
    pub input: f64,
    pub output: f64,
    pub cache_write_5m: f64,
    pub cache_write_1h: f64,
    pub cache_read: f64,
}

/// One model's prices.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelPrice {
    pub rates: Rates,
    pub long_context: Option<LongContext>,
}

/// A price table: its version and where it came from, and every model's prices.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable {
    /// `version` of the compiled-in table, and of the override file if one was given.
    pub version: String,
    models: BTreeMap<String, ModelPrice>,
}

/// A price file that cannot be used, with the place: `file:line:column: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for PriceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

impl std::error::Error for PriceError {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    version: Option<String>,
    #[serde(default)]
    models: BTreeMap<String, Spanned<ModelShape>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelShape {
    #[serde(default)]
    aliases: Vec<String>,
    input: f64,
    output: f64,
    cache_write_5m: f64,
    cache_write_1h: f64,
    cache_read: f64,
    long_context: Option<LongContext>,
}

impl PriceTable {
    /// The compiled-in table.
    ///
    /// Errors: it does not parse (a test keeps that from shipping).
    pub fn builtin() -> Result<PriceTable, PriceError> {
        let mut table = PriceTable {
            version: String::new(),
            models: BTreeMap::new(),
        };
        table.merge(BUILTIN, "<built-in prices>")?;
        Ok(table)
    }

    /// The compiled-in table with the models of the price file `path` replacing or
    /// adding to its own.
    pub fn with_override(path: &Path) -> anyhow::Result<PriceTable> {
        let mut table = PriceTable::builtin()?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read the price file {}: {e}", path.display()))?;
        table.merge(&text, &path.display().to_string())?;
        Ok(table)
    }

    /// Adds the models of price file `text` (named `file` in errors).
    pub fn merge(&mut self, text: &str, file: &str) -> Result<(), PriceError> {
        let at = |span: Option<Range<usize>>, message: String| {
            let (line, column) = line_column(text, span.map_or(0, |s| s.start));
            PriceError {
                file: file.to_owned(),
                line,
                column,
                message,
            }
        };
        let shape: FileShape =
            toml::from_str(text).map_err(|e| at(e.span(), e.message().to_owned()))?;
        for (name, model) in shape.models {
            let span = model.span();
            let model = model.into_inner();
            let rates = Rates {
                input: model.input,
                output: model.output,
                cache_write_5m: model.cache_write_5m,
                cache_write_1h: model.cache_write_1h,
                cache_read: model.cache_read,
            };
            let mut all = vec![
                rates.input,
                rates.output,
                rates.cache_write_5m,
                rates.cache_write_1h,
                rates.cache_read,
            ];
            if let Some(lc) = &model.long_context {
                all.extend([
                    lc.input,
                    lc.output,
                    lc.cache_write_5m,
                    lc.cache_write_1h,
                    lc.cache_read,
                ]);
                if lc.threshold == 0 {
                    return Err(at(
                        Some(span),
                        format!("model {name}: long_context.threshold must be above 0"),
                    ));
                }
            }
            if let Some(bad) = all.iter().find(|p| !p.is_finite() || **p < 0.0) {
                return Err(at(
                    Some(span),
                    format!(
                        "model {name}: a price must be a number of dollars from 0 up, not {bad}"
                    ),
                ));
            }
            let price = ModelPrice {
                rates,
                long_context: model.long_context,
            };
            for alias in &model.aliases {
                self.models.insert(alias.clone(), price.clone());
            }
            self.models.insert(name, price);
        }
        let version = shape.version.unwrap_or_else(|| "unversioned".to_owned());
        self.version = if self.version.is_empty() {
            version
        } else {
            format!("{} + {file} ({version})", self.version)
        };
        Ok(())
    }

    /// The prices of `model`: its exact id, else the id without a trailing `[...]`
    /// and a trailing `-YYYYMMDD` date.
    pub fn find(&self, model: &str) -> Option<&ModelPrice> {
        if let Some(price) = self.models.get(model) {
            return Some(price);
        }
        let mut base = model;
        if base.ends_with(']')
            && let Some(open) = base.rfind('[')
        {
            base = &base[..open];
        }
        if let Some((head, date)) = base.rsplit_once('-')
            && date.len() == 8
            && date.bytes().all(|b| b.is_ascii_digit())
        {
            base = head;
        }
        self.models.get(base)
    }

    /// The cost in USD of one call of `model` with `tokens`; `None` when the model
    /// has no price.
    pub fn cost(&self, model: &str, tokens: &Tokens) -> Option<f64> {
        self.find(model).map(|price| price.cost(tokens))
    }
}

impl ModelPrice {
    /// The cost in USD of one request with `tokens`: long-context rates when it has
    /// them and the input side exceeds their threshold.
    pub fn cost(&self, tokens: &Tokens) -> f64 {
        let r = match &self.long_context {
            Some(lc) if tokens.input_side() > lc.threshold => Rates {
                input: lc.input,
                output: lc.output,
                cache_write_5m: lc.cache_write_5m,
                cache_write_1h: lc.cache_write_1h,
                cache_read: lc.cache_read,
            },
            _ => self.rates,
        };
        let per_million = tokens.input as f64 * r.input
            + tokens.output as f64 * r.output
            + tokens.cache_creation_5m as f64 * r.cache_write_5m
            + tokens.cache_creation_1h as f64 * r.cache_write_1h
            + tokens.cache_read as f64 * r.cache_read;
        per_million / 1_000_000.0
    }
}

/// 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(input: u64, output: u64, w5m: u64, w1h: u64, read: u64) -> Tokens {
        Tokens {
            input,
            output,
            cache_creation_5m: w5m,
            cache_creation_1h: w1h,
            cache_read: read,
        }
    }

    #[test]
    fn the_builtin_table_parses_and_has_a_version() {
        let table = PriceTable::builtin().unwrap();
        assert_eq!(table.version, "2026-03-13");
        assert!(table.find("claude-opus-4-6").is_some());
    }

    #[test]
    fn dated_and_suffixed_ids_find_their_model() {
        let table = PriceTable::builtin().unwrap();
        let sonnet = table.find("claude-sonnet-4-5").unwrap();
        assert_eq!(table.find("claude-sonnet-4-5-20250929"), Some(sonnet));
        assert_eq!(table.find("claude-sonnet-4-5-20250929[1m]"), Some(sonnet));
        assert_eq!(table.find("claude-sonnet-4-5[1m]"), Some(sonnet));
        assert_eq!(
            table.find("claude-opus-4-0"),
            table.find("claude-opus-4-20250514")
        );
        assert!(table.find("claude-opus-4-20250514").is_some());
        assert!(table.find("claude-sonnet-4-5-2025").is_none(), "not a date");
        assert!(table.find("gpt-5").is_none());
        assert!(table.find("<synthetic>").is_none());
    }

    #[test]
    fn each_kind_is_priced_apart_with_5m_and_1h_cache_writes_at_their_rates() {
        let table = PriceTable::builtin().unwrap();
        // Opus 4.6: $5 in, $25 out, $6.25 5m write, $10 1h write, $0.50 read.
        let cost = table
            .cost(
                "claude-opus-4-6",
                &tokens(1_000, 2_000, 100_000, 10_000, 1_000_000),
            )
            .unwrap();
        let expected = (1_000.0 * 5.0
            + 2_000.0 * 25.0
            + 100_000.0 * 6.25
            + 10_000.0 * 10.0
            + 1_000_000.0 * 0.5)
            / 1e6;
        assert!((cost - expected).abs() < 1e-12, "{cost} vs {expected}");
        assert!((cost - 1.28).abs() < 1e-12);
        // The same writes as 1-hour writes cost more than as 5-minute ones.
        let five = table
            .cost("claude-opus-4-6", &tokens(0, 0, 1_000_000, 0, 0))
            .unwrap();
        let hour = table
            .cost("claude-opus-4-6", &tokens(0, 0, 0, 1_000_000, 0))
            .unwrap();
        assert_eq!((five, hour), (6.25, 10.0));
    }

    #[test]
    fn long_context_rates_apply_per_request_above_the_threshold() {
        let table = PriceTable::builtin().unwrap();
        // Sonnet 4.5: input side 200,000 is not above the threshold...
        let at = tokens(10_000, 1_000, 90_000, 0, 100_000);
        assert_eq!(at.input_side(), 200_000);
        let cost = table.cost("claude-sonnet-4-5-20250929", &at).unwrap();
        let base = (10_000.0 * 3.0 + 1_000.0 * 15.0 + 90_000.0 * 3.75 + 100_000.0 * 0.3) / 1e6;
        assert!((cost - base).abs() < 1e-12, "{cost} vs {base}");
        // ...one more cache read is, and every token of the request pays the long rates.
        let over = tokens(10_000, 1_000, 90_000, 0, 100_001);
        let cost = table.cost("claude-sonnet-4-5-20250929", &over).unwrap();
        let long = (10_000.0 * 6.0 + 1_000.0 * 22.5 + 90_000.0 * 7.5 + 100_001.0 * 0.6) / 1e6;
        assert!((cost - long).abs() < 1e-12, "{cost} vs {long}");
        // Opus 4.6 has no long-context rates: the same request at its base rates.
        let opus = table.cost("claude-opus-4-6", &over).unwrap();
        let base = (10_000.0 * 5.0 + 1_000.0 * 25.0 + 90_000.0 * 6.25 + 100_001.0 * 0.5) / 1e6;
        assert!((opus - base).abs() < 1e-12);
    }

    #[test]
    fn an_override_replaces_and_adds_models_and_its_errors_name_file_and_line() {
        let mut table = PriceTable::builtin().unwrap();
        table
            .merge(
                "version = \"mine-1\"\n[models.my-model]\ninput = 1.0\noutput = 2.0\ncache_write_5m = 0.0\ncache_write_1h = 0.0\ncache_read = 0.0\n",
                "mine.toml",
            )
            .unwrap();
        assert_eq!(table.version, "2026-03-13 + mine.toml (mine-1)");
        assert_eq!(
            table.cost("my-model", &tokens(1_000_000, 1_000_000, 0, 0, 0)),
            Some(3.0)
        );
        let error = table
            .merge(
                "version = \"x\"\n[models.a]\ninput = 1.0\noutput = \"cheap\"\n",
                "bad.toml",
            )
            .unwrap_err();
        assert_eq!(
            (error.file.as_str(), error.line),
            ("bad.toml", 4),
            "{error}"
        );
        assert!(error.to_string().starts_with("bad.toml:4:"), "{error}");
        let error = table
            .merge(
                "\n\n[models.b]\ninput = -1.0\noutput = 1.0\ncache_write_5m = 0.0\ncache_write_1h = 0.0\ncache_read = 0.0\n",
                "neg.toml",
            )
            .unwrap_err();
        assert_eq!(error.line, 3, "{error}");
        assert!(error.message.contains("model b"), "{error}");
        let error = table
            .merge("[models.c]\ninput = 1.0\ncolour = 1\n", "unknown.toml")
            .unwrap_err();
        assert_eq!(error.line, 3, "{error}");
    }
}
