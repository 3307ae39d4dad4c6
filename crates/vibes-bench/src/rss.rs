//! Resident set size growth during a piece of work.
//!
//! The kernel's peak (`VmHWM`) is process-wide and never falls, so it would show the
//! largest earlier workload. Instead a thread samples `VmRSS` every 10 ms and the growth
//! over the value at the start is reported.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

const SAMPLE_EVERY: Duration = Duration::from_millis(10);

/// Samples `VmRSS` from [`RssSampler::start`] until [`RssSampler::stop`].
#[derive(Debug)]
pub(crate) struct RssSampler {
    baseline_kib: Option<u64>,
    stop: Arc<AtomicBool>,
    sampler: JoinHandle<Option<u64>>,
}

impl RssSampler {
    pub(crate) fn start() -> Self {
        let baseline_kib = vm_rss_kib();
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut peak = vm_rss_kib();
                while !stop.load(Ordering::Relaxed) {
                    thread::sleep(SAMPLE_EVERY);
                    peak = peak.max(vm_rss_kib());
                }
                peak
            })
        };
        RssSampler {
            baseline_kib,
            stop,
            sampler,
        }
    }

    /// The largest growth of the resident set seen since the start, in MiB; `None`
    /// where `/proc/self/status` is not available.
    pub(crate) fn stop(self) -> Option<f64> {
        let last = vm_rss_kib();
        self.stop.store(true, Ordering::Relaxed);
        let peak = self.sampler.join().expect("the RSS sampler does not panic");
        let peak = peak.max(last)?;
        Some(peak.saturating_sub(self.baseline_kib?) as f64 / 1024.0)
    }
}

/// The current resident set size, KiB.
fn vm_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
}
