//! Honest skips for tests that cannot run here (not root, a tool or the shared captures
//! missing, a benchmark not asked for).
//!
//! libtest has no runtime skip: a test that returns early counts as passed, and what it prints
//! is captured and shown only if it fails. A test that cannot run calls [`skip`] and returns.
//! [`skip`] prints why (seen with `--nocapture`) and, when [`SKIP_LOG_ENV`] names a file,
//! appends one line naming the test and the reason. `cargo xtask test` sets that variable,
//! reads the file after `cargo test` ([`read_log`]) and counts those tests as skipped instead
//! of passed, listing each with its reason. Tests run in parallel threads and processes: each
//! record is a single `write` to a file opened with `O_APPEND`, so records never interleave.
//!
//! The test's name is its thread's name: libtest runs every test on a thread named after the
//! test's full path (`source::live::tests::verifier_budget`), exactly as it reports it.

use std::{
    fmt::Display,
    fs::OpenOptions,
    io::{self, Write as _},
    path::Path,
};

/// The environment variable naming the file skips are appended to.
pub const SKIP_LOG_ENV: &str = "MPTCP_TEST_SKIP_LOG";

/// Set to `1`, root-only tests behave as if not run by root: a way to try the skip path as
/// root.
pub const UNPRIVILEGED_ENV: &str = "MPTCP_TEST_UNPRIVILEGED";

/// One test that skipped itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The test executable's name without cargo's hash (`integration`, `mptcp_tracer`).
    pub binary: String,
    /// The test's name as libtest reports it.
    pub test: String,
    pub reason: String,
}

/// Records that the running test skips itself because of `reason`; the caller returns.
/// `test` names it when the thread has no libtest name (a test run on the main thread).
pub fn skip(test: &str, reason: impl Display) {
    let log = std::env::var_os(SKIP_LOG_ENV);
    record(log.as_deref().map(Path::new), test, &reason.to_string());
}

fn record(log: Option<&Path>, test: &str, reason: &str) {
    let thread = std::thread::current();
    let test = thread.name().filter(|name| *name != "main").unwrap_or(test);
    let skipped = Skipped {
        binary: test_binary(),
        test: test.to_owned(),
        reason: one_line(reason),
    };
    eprintln!("SKIPPED {}: {}", skipped.test, skipped.reason);
    if let Some(log) = log
        && let Err(error) = append(log, &skipped)
    {
        // A lost record would count a skipped test as passed: fail loudly instead.
        panic!(
            "recording the skip of {} in {}: {error}",
            skipped.test,
            log.display()
        );
    }
}

/// Whether this process runs as root (and [`UNPRIVILEGED_ENV`] does not say to act
/// otherwise).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root() && std::env::var_os(UNPRIVILEGED_ENV).is_none_or(|v| v != "1")
}

/// Skips the running test unless this process is root; true if it skipped. `needs_root_to`
/// says what for ("create network namespaces").
pub fn skipped_unless_root(test: &str, needs_root_to: &str) -> bool {
    if is_root() {
        return false;
    }
    skip(test, format!("needs root to {needs_root_to}"));
    true
}

/// Skips the running test if one of `tools` is not installed; true if it skipped.
pub fn skipped_without_tools(test: &str, tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|tool| which::which(tool).is_err())
        .collect();
    if missing.is_empty() {
        return false;
    }
    skip(test, format!("{} not installed", missing.join(", ")));
    true
}

/// Every skip recorded in `log`; an absent file means none.
pub fn read_log(log: &Path) -> io::Result<Vec<Skipped>> {
    let text = match std::fs::read_to_string(log) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    Ok(text
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, '\t');
            Some(Skipped {
                binary: fields.next()?.to_owned(),
                test: fields.next()?.to_owned(),
                reason: fields.next()?.to_owned(),
            })
        })
        .collect())
}

fn append(log: &Path, skipped: &Skipped) -> io::Result<()> {
    let record = format!("{}\t{}\t{}\n", skipped.binary, skipped.test, skipped.reason);
    // One write of the whole record (O_APPEND): concurrent tests never interleave.
    let mut file = OpenOptions::new().create(true).append(true).open(log)?;
    let written = file.write(record.as_bytes())?;
    if written != record.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("short write: {written} of {} bytes", record.len()),
        ));
    }
    Ok(())
}

/// The test executable's name without cargo's `-<hash>` suffix.
fn test_binary() -> String {
    let executable = std::env::current_exe().ok();
    let stem = executable
        .as_deref()
        .and_then(Path::file_stem)
        .and_then(|stem| stem.to_str())
        .unwrap_or("?");
    match stem.rsplit_once('-') {
        Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_owned(),
        _ => stem.to_owned(),
    }
}

/// Tabs and newlines would break the record format.
fn one_line(text: &str) -> String {
    text.split(['\t', '\n', '\r'])
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skip_is_recorded_under_the_test_name_and_read_back() {
        let log = std::env::temp_dir().join(format!("mptcp-lab-skip-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&log);
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let log = log.clone();
                std::thread::Builder::new()
                    .name(format!("module::test_{i}"))
                    .spawn(move || record(Some(&log), "unused", "needs\troot\nto run"))
                    .expect("spawning a thread")
            })
            .collect();
        for thread in threads {
            thread.join().expect("recording does not panic");
        }
        let mut skipped = read_log(&log).expect("reading the log");
        std::fs::remove_file(&log).expect("removing the log");
        skipped.sort_by(|a, b| a.test.cmp(&b.test));
        let names: Vec<&str> = skipped.iter().map(|s| s.test.as_str()).collect();
        assert_eq!(
            names,
            (0..8)
                .map(|i| format!("module::test_{i}"))
                .collect::<Vec<_>>()
        );
        assert!(skipped.iter().all(|s| s.reason == "needs root to run"));
        assert!(
            skipped.iter().all(|s| s.binary == "mptcp_lab"),
            "{skipped:?}"
        );
    }

    #[test]
    fn a_thread_without_a_test_name_records_the_given_name() {
        let log =
            std::env::temp_dir().join(format!("mptcp-lab-skip-unnamed-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&log);
        let recorder = log.clone();
        std::thread::spawn(move || record(Some(&recorder), "given_name", "no shared captures"))
            .join()
            .expect("recording does not panic");
        let skipped = read_log(&log).expect("reading the log");
        std::fs::remove_file(&log).expect("removing the log");
        assert_eq!(
            skipped
                .iter()
                .map(|s| (s.test.as_str(), s.reason.as_str()))
                .collect::<Vec<_>>(),
            [("given_name", "no shared captures")]
        );
    }

    #[test]
    fn an_absent_log_has_no_skips() {
        let log = Path::new("/nonexistent/mptcp-lab-skips.log");
        assert_eq!(read_log(log).expect("absent is empty"), Vec::new());
    }
}
