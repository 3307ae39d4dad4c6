//! Printing results: a human table, or one JSON object per line.

use serde_json::json;

/// One measurement of one backend on one workload.
#[derive(Debug, Clone)]
pub(crate) struct Measurement {
    pub(crate) workload: String,
    pub(crate) backend: String,
    pub(crate) events_per_s: f64,
    pub(crate) seconds: f64,
    /// Events a subscriber or consumer did not get (lag), where that can happen.
    pub(crate) lost: Option<u64>,
}

/// Collects and prints measurements.
#[derive(Debug)]
pub(crate) struct Report {
    json: bool,
}

impl Report {
    pub(crate) fn new(json: bool) -> Self {
        Report { json }
    }

    /// A heading for a group of rows (table mode only).
    pub(crate) fn section(&mut self, title: &str, columns: &str) {
        if !self.json {
            println!("\n{title}\n{columns}");
        }
    }

    /// Prints one measurement; `ratio` compares it with the baseline of its workload.
    pub(crate) fn row(&mut self, m: &Measurement, ratio: Option<f64>) {
        if self.json {
            let line = json!({
                "workload": m.workload,
                "backend": m.backend,
                "events_per_s": m.events_per_s.round(),
                "mb_per_s": null,
                "p50_us": null,
                "p99_us": null,
                "seconds": m.seconds,
                "rss_mb": null,
                "lost": m.lost,
                "ratio_to_baseline": ratio,
            });
            println!("{line}");
        } else {
            let ratio = ratio.map_or_else(|| "baseline".to_string(), |r| format!("{r:.2}x"));
            let lost = m.lost.map_or_else(|| "-".to_string(), |l| l.to_string());
            println!(
                "  {:<22} {:<24} {:>14} {:>10} {:>10}",
                m.workload,
                m.backend,
                format_rate(m.events_per_s),
                lost,
                ratio
            );
        }
    }
}

/// `12.34M/s`, `567.8k/s`.
fn format_rate(per_s: f64) -> String {
    if per_s >= 1e6 {
        format!("{:.2}M/s", per_s / 1e6)
    } else if per_s >= 1e3 {
        format!("{:.1}k/s", per_s / 1e3)
    } else {
        format!("{per_s:.0}/s")
    }
}
