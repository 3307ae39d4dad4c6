//! Caller-supplied readiness and health checks.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The future a [`Probe`] returns: `true` means ready (or healthy).
pub type ProbeFuture = Pin<Box<dyn Future<Output = bool> + Send>>;

/// An async check of a running child, given its pid: "is it ready?" or "is it
/// healthy?". Typically it connects to a port the child serves, or reads a file the
/// child keeps fresh.
///
/// The supervisor runs one check at a time, each as a tokio task of its own under
/// [`SupervisorOptions::probe_timeout`](crate::SupervisorOptions::probe_timeout); a check
/// that times out or panics counts as `false`. Cloning a probe is cheap (it is shared).
///
/// ```
/// use std::path::PathBuf;
/// use vibes_supervisor::Probe;
///
/// let ready_file = PathBuf::from("/run/my-server/ready");
/// let probe = Probe::new(move |_pid| {
///     let ready_file = ready_file.clone();
///     async move { ready_file.exists() }
/// });
/// # let _ = probe;
/// ```
#[derive(Clone)]
pub struct Probe {
    check: Arc<dyn Fn(u32) -> ProbeFuture + Send + Sync>,
}

impl Probe {
    /// A probe that calls `check(pid)` and awaits its answer.
    pub fn new<F, Fut>(check: F) -> Self
    where
        F: Fn(u32) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        Probe {
            check: Arc::new(move |pid| Box::pin(check(pid))),
        }
    }

    /// One check of the child with process id `pid`.
    pub(crate) fn check(&self, pid: u32) -> ProbeFuture {
        (self.check)(pid)
    }
}

impl fmt::Debug for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Probe(..)")
    }
}
