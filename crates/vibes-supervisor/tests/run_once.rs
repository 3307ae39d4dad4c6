//! Running a child once: its exit status, and all its output, for the owner.

mod common;

use std::os::unix::process::ExitStatusExt;

use common::{child, within};
use vibes_supervisor::{Restart, State, StopOutcome, Supervisor, SupervisorOptions};

#[tokio::test]
async fn a_child_run_once_reports_its_exit_code_after_all_its_lines() {
    let spec = child("once", ["exit", "3", "0", "5"]).stdout_lines(2);
    let options = SupervisorOptions::new().restart(Restart::Never);
    let supervisor = Supervisor::start(spec, options).await.expect("start");
    let mut lines = supervisor.stdout_lines().expect("lines");
    let mut got = Vec::new();
    while let Some(line) = within("lines", lines.next()).await {
        got.push(String::from_utf8(line).expect("UTF-8"));
    }
    assert_eq!(got, ["line 0", "line 1", "line 2", "line 3", "line 4"]);
    let last = within("final", supervisor.wait_for(State::is_final))
        .await
        .expect("a final state");
    let failed = matches!(last, State::Failed { .. });
    assert!(failed, "{last:?}");
    let status = supervisor.last_exit().expect("an exit");
    assert_eq!(status.code(), Some(3), "{status}");
}

#[tokio::test]
async fn a_clean_exit_is_stopped_with_status_zero_and_a_stop_records_the_signal() {
    let supervisor = Supervisor::start(
        child("clean", ["exit", "0", "0", "0"]),
        SupervisorOptions::new().restart(Restart::Never),
    )
    .await
    .expect("start");
    let last = within("final", supervisor.wait_for(State::is_final))
        .await
        .expect("a final state");
    let stopped = matches!(last, State::Stopped);
    assert!(stopped, "{last:?}");
    assert!(supervisor.last_exit().expect("an exit").success());

    let supervisor = Supervisor::start(
        child("stopped", ["forever"]),
        SupervisorOptions::new().restart(Restart::Never),
    )
    .await
    .expect("start");
    assert_eq!(supervisor.last_exit(), None);
    let outcome = within("stop", supervisor.stop()).await.expect("stop");
    let exited = matches!(outcome, StopOutcome::Exited(_));
    assert!(exited, "{outcome:?}");
    let status = supervisor.last_exit().expect("an exit");
    assert_eq!(status.signal(), Some(15), "{status}");
}
