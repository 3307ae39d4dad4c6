//! Blocking file work called from async code runs on tokio's blocking pool, never on
//! a runtime worker thread: an fsync or a lock wait there would stall every task of
//! that worker (a host's plugins, timers, other consumers).

use vibes_log::LogError;

/// Runs `work` on the blocking pool of the current tokio runtime and waits for it;
/// inline when there is no runtime (a caller driving the future by other means).
///
/// A panic in `work` is resumed in the caller, as if it had run inline.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T, LogError>
where
    F: FnOnce() -> Result<T, LogError> + Send + 'static,
    T: Send + 'static,
{
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return work();
    };
    match runtime.spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only a runtime shutting down cancels a blocking task.
        Err(_) => Err(LogError::Closed),
    }
}
