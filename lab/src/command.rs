//! Running the lab's tools (`ip`, `nft`, `tcpdump`, ...) and stopping the long-running ones.

use std::{
    io::{self, Write as _},
    process::{Child, Command, Output, Stdio},
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

use crate::LabError;

/// Runs a command to completion; its stdout on success, its stderr in the error otherwise.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<String, LabError> {
    run_with_stdin(program, args, None)
}

/// [`run`] with `stdin` written to the command's standard input (`None`: no input).
pub(crate) fn run_with_stdin(
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String, LabError> {
    let command = format!("{program} {}", args.join(" "));
    let output = output_with_input(Command::new(program).args(args), stdin).map_err(|source| {
        LabError::Spawn {
            command: command.clone(),
            source,
        }
    })?;
    if !output.status.success() {
        return Err(LabError::Command {
            command,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs `command` to completion with `stdin` written to its standard input (`None`: no input,
/// not even an open pipe) and its stdout and stderr captured, whatever its exit status.
pub fn output_with_input(command: &mut Command, stdin: Option<&str>) -> io::Result<Output> {
    let mut child = command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())?;
    }
    child.wait_with_output()
}

/// A child process that is killed and reaped when the guard goes, unless it was taken out
/// with [`ChildGuard::signal_and_wait`] first: a monitor or tcpdump must not outlive a test
/// that failed half-way.
#[derive(Debug)]
pub(crate) struct ChildGuard(Option<Child>);

impl ChildGuard {
    pub(crate) fn new(child: Child) -> Self {
        Self(Some(child))
    }

    /// Sends `signal` (the tool's own way to stop cleanly) and waits for the child to exit.
    /// `None` if it was already stopped.
    pub(crate) fn signal_and_wait(
        &mut self,
        signal: Signal,
    ) -> Option<io::Result<std::process::ExitStatus>> {
        let mut child = self.0.take()?;
        if let Ok(pid) = i32::try_from(child.id()) {
            // The child is ours and not yet reaped, so the pid is still its own; an error means
            // it has exited already, which the wait below reports.
            let _ = kill(Pid::from_raw(pid), signal);
        }
        Some(child.wait())
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt as _;

    use super::*;

    fn alive(pid: i32) -> bool {
        // Signal 0 checks for existence only; a reaped child is gone (ESRCH).
        kill(Pid::from_raw(pid), None).is_ok()
    }

    #[test]
    fn the_guard_kills_and_reaps_its_child_on_drop() {
        let child = Command::new("sleep").arg("30").spawn().expect("sleep");
        let pid = i32::try_from(child.id()).expect("a pid");
        let guard = ChildGuard::new(child);
        assert!(alive(pid));
        drop(guard);
        assert!(!alive(pid), "the child outlived its guard");
    }

    #[test]
    fn signal_and_wait_stops_with_that_signal_once() {
        let child = Command::new("sleep").arg("30").spawn().expect("sleep");
        let mut guard = ChildGuard::new(child);
        let status = guard
            .signal_and_wait(Signal::SIGTERM)
            .expect("running")
            .expect("waited");
        assert_eq!(status.signal(), Some(Signal::SIGTERM as i32));
        assert!(guard.signal_and_wait(Signal::SIGTERM).is_none());
    }

    #[test]
    fn a_failing_command_reports_its_stderr() {
        let error = run("sh", &["-c", "echo oops >&2; exit 3"]).expect_err("exit 3");
        assert_eq!(
            error.to_string(),
            "`sh -c echo oops >&2; exit 3` failed (exit status: 3): oops"
        );
        assert_eq!(
            run_with_stdin("cat", &[], Some("through stdin")).expect("cat"),
            "through stdin"
        );
    }
}
