//! Printing results: a human table, or one JSON object per line.

use serde_json::json;

/// One measurement of one backend on one workload; `None` where not measured.
#[derive(Debug, Clone)]
pub(crate) struct Measurement {
    pub(crate) workload: String,
    pub(crate) backend: String,
    pub(crate) events_per_s: Option<f64>,
    /// Payload megabytes (10^6 bytes) per second.
    pub(crate) mb_per_s: Option<f64>,
    pub(crate) p50_us: Option<f64>,
    pub(crate) p99_us: Option<f64>,
    pub(crate) max_us: Option<f64>,
    pub(crate) seconds: Option<f64>,
    /// Growth of the resident set during the workload, MiB.
    pub(crate) rss_mb: Option<f64>,
    /// Peak resident set of a whole process (its `VmHWM`), MiB.
    pub(crate) peak_mib: Option<f64>,
    /// CPU seconds (user plus system) of a whole process.
    pub(crate) cpu_s: Option<f64>,
    /// Events a subscriber or consumer did not get (lag), where that can happen.
    pub(crate) lost: Option<u64>,
}

impl Measurement {
    /// A measurement with nothing measured yet.
    pub(crate) fn new(workload: &str, backend: &str) -> Self {
        Measurement {
            workload: workload.to_string(),
            backend: backend.to_string(),
            events_per_s: None,
            mb_per_s: None,
            p50_us: None,
            p99_us: None,
            max_us: None,
            seconds: None,
            rss_mb: None,
            peak_mib: None,
            cpu_s: None,
            lost: None,
        }
    }
}

/// A column of the table, after the workload and backend columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Column {
    EventsPerS,
    MbPerS,
    P50Us,
    P99Us,
    MaxUs,
    Seconds,
    RssMb,
    PeakMib,
    CpuS,
    Lost,
}

impl Column {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Column::EventsPerS => "events/s",
            Column::MbPerS => "MB/s",
            Column::P50Us => "p50 µs",
            Column::P99Us => "p99 µs",
            Column::MaxUs => "max µs",
            Column::Seconds => "seconds",
            Column::RssMb => "RSS+ MiB",
            Column::PeakMib => "peak MiB",
            Column::CpuS => "CPU s",
            Column::Lost => "lost",
        }
    }

    fn width(self) -> usize {
        match self {
            Column::EventsPerS => 14,
            _ => 10,
        }
    }

    /// The value this column shows for `m`.
    pub(crate) fn value(self, m: &Measurement) -> Option<f64> {
        match self {
            Column::EventsPerS => m.events_per_s,
            Column::MbPerS => m.mb_per_s,
            Column::P50Us => m.p50_us,
            Column::P99Us => m.p99_us,
            Column::MaxUs => m.max_us,
            Column::Seconds => m.seconds,
            Column::RssMb => m.rss_mb,
            Column::PeakMib => m.peak_mib,
            Column::CpuS => m.cpu_s,
            Column::Lost => m.lost.map(|l| l as f64),
        }
    }

    fn format(self, m: &Measurement) -> String {
        let Some(v) = self.value(m) else {
            return "-".to_string();
        };
        match self {
            Column::EventsPerS => format_rate(v),
            Column::MbPerS | Column::RssMb | Column::PeakMib => format!("{v:.1}"),
            Column::P50Us | Column::P99Us | Column::MaxUs | Column::Lost => format!("{v:.0}"),
            // Reopening takes well under a millisecond.
            Column::Seconds if v < 0.01 => format!("{v:.6}"),
            Column::Seconds | Column::CpuS => format!("{v:.3}"),
        }
    }
}

/// Prints measurements, as table sections or JSON lines.
#[derive(Debug)]
pub(crate) struct Report {
    json: bool,
    columns: Vec<Column>,
    /// Whether the current section compares with a baseline.
    compares: bool,
}

impl Report {
    pub(crate) fn new(json: bool) -> Self {
        Report {
            json,
            columns: Vec::new(),
            compares: false,
        }
    }

    /// Starts a group of rows showing `columns` and a ratio to the baseline (the
    /// heading is printed in table mode only).
    pub(crate) fn section(
        &mut self,
        title: &str,
        backend_label: &str,
        columns: &[Column],
        ratio_label: &str,
    ) {
        self.columns = columns.to_vec();
        self.compares = !ratio_label.is_empty();
        if !self.json {
            let mut header = format!("  {:<22} {:<24}", "workload", backend_label);
            for &column in columns {
                header.push_str(&format!(" {:>w$}", column.label(), w = column.width()));
            }
            header.push_str(&format!(" {ratio_label:>10}"));
            println!("\n{title}\n{header}");
        }
    }

    /// Prints a line that is not a measurement, such as why some rows are missing (in
    /// JSON mode as `{"note": ...}`).
    pub(crate) fn note(&mut self, text: &str) {
        if self.json {
            println!("{}", json!({ "note": text }));
        } else {
            println!("\n{text}");
        }
    }

    /// Prints one measurement; `ratio` compares it with the baseline of its workload
    /// (`None` for the baseline itself).
    pub(crate) fn row(&mut self, m: &Measurement, ratio: Option<f64>) {
        if self.json {
            let line = json!({
                "workload": m.workload,
                "backend": m.backend,
                "events_per_s": m.events_per_s.map(f64::round),
                "mb_per_s": m.mb_per_s,
                "p50_us": m.p50_us,
                "p99_us": m.p99_us,
                "max_us": m.max_us,
                "seconds": m.seconds,
                "rss_mb": m.rss_mb,
                "peak_mib": m.peak_mib,
                "cpu_s": m.cpu_s,
                "lost": m.lost,
                "ratio_to_baseline": ratio,
            });
            println!("{line}");
        } else {
            let mut line = format!("  {:<22} {:<24}", m.workload, m.backend);
            for &column in &self.columns {
                line.push_str(&format!(" {:>w$}", column.format(m), w = column.width()));
            }
            let none = if self.compares { "baseline" } else { "" };
            let ratio = ratio.map_or_else(|| none.to_string(), |r| format!("{r:.2}x"));
            line.push_str(&format!(" {ratio:>10}"));
            println!("{line}");
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
