//! `ip mptcp monitor`: the kernel's own account of connections and subflows.

use std::{
    io::{BufRead as _, BufReader},
    marker::PhantomData,
    process::{Command, Stdio},
    thread::{self, JoinHandle},
    time::Duration,
};

use nix::sys::signal::Signal;

use crate::{Lab, LabError, Side, command::ChildGuard};

impl Lab {
    /// Starts `ip mptcp monitor` in a host's namespace; stop it with [`MptcpMonitor::stop`].
    pub fn start_monitor(&self, side: Side) -> Result<MptcpMonitor<'_>, LabError> {
        MptcpMonitor::start(self.namespace(side))
    }
}

/// `ip mptcp monitor` running in one namespace.
#[derive(Debug)]
pub struct MptcpMonitor<'lab> {
    namespace: String,
    child: ChildGuard,
    reader: Option<JoinHandle<Vec<String>>>,
    _lab: PhantomData<&'lab Lab>,
}

/// What `ip mptcp monitor` reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonitorReport {
    /// `CREATED` events: MPTCP connections.
    pub connections: usize,
    /// `ESTABLISHED` events: connections whose MP_CAPABLE handshake completed.
    pub established: usize,
    /// `SF_ESTABLISHED` events: joined (extra) subflows.
    pub joins: usize,
    /// `CLOSED` events.
    pub closed: usize,
    /// The raw lines, for a truth file or a failure message.
    pub lines: Vec<String>,
}

impl MonitorReport {
    /// All subflows: each connection's initial subflow plus the joins.
    pub fn subflows(&self) -> usize {
        self.connections + self.joins
    }

    /// Counts the events in `ip mptcp monitor` output lines such as
    /// `[       CREATED] token=… remid=0 locid=0 saddr4=10.0.1.1 …`.
    pub fn parse(lines: Vec<String>) -> Self {
        let mut report = Self::default();
        for line in &lines {
            let Some(event) = line
                .trim_start()
                .strip_prefix('[')
                .and_then(|rest| rest.split(']').next())
                .map(str::trim)
            else {
                continue;
            };
            match event {
                "CREATED" => report.connections += 1,
                "ESTABLISHED" => report.established += 1,
                "SF_ESTABLISHED" => report.joins += 1,
                "CLOSED" => report.closed += 1,
                _ => {}
            }
        }
        report.lines = lines;
        report
    }
}

impl MptcpMonitor<'_> {
    fn start(namespace: &str) -> Result<Self, LabError> {
        // stdbuf: ip's stdout is a pipe here, and a block-buffered monitor loses its last
        // events when it is stopped by a signal.
        let args = ["-oL", "ip", "-n", namespace, "mptcp", "monitor"];
        let command = format!("stdbuf {}", args.join(" "));
        let mut child = Command::new("stdbuf")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| LabError::Spawn { command, source })?;
        let stdout = child.stdout.take();
        let reader = thread::spawn(move || {
            stdout
                .map(|out| BufReader::new(out).lines().map_while(Result::ok).collect())
                .unwrap_or_default()
        });
        // The monitor prints nothing when it has subscribed to the MPTCP netlink events;
        // give it time to do so before anything happens.
        thread::sleep(Duration::from_millis(300));
        Ok(Self {
            namespace: namespace.to_owned(),
            child: ChildGuard::new(child),
            reader: Some(reader),
            _lab: PhantomData,
        })
    }

    /// Stops the monitor and counts what it saw.
    pub fn stop(mut self) -> Result<MonitorReport, LabError> {
        // Let the last events (CLOSED after a FIN exchange) arrive.
        thread::sleep(Duration::from_millis(200));
        let _ = self.child.signal_and_wait(Signal::SIGTERM);
        let lines = self
            .reader
            .take()
            .map(JoinHandle::join)
            .transpose()
            .map_err(|_| LabError::ThreadPanicked("ip mptcp monitor reader"))?
            .unwrap_or_default();
        log::debug!(
            "ip mptcp monitor in {}: {} lines",
            self.namespace,
            lines.len()
        );
        Ok(MonitorReport::parse(lines))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_lines_are_counted_by_event() {
        let lines = [
            "[       CREATED] token=4a3b2c1d remid=0 locid=0 saddr4=10.0.1.1 daddr4=10.0.1.2 sport=40000 dport=5201",
            "[   ESTABLISHED] token=4a3b2c1d remid=0 locid=0 saddr4=10.0.1.1 daddr4=10.0.1.2 sport=40000 dport=5201",
            "[SF_ESTABLISHED] token=4a3b2c1d remid=0 locid=2 saddr4=10.0.2.1 daddr4=10.0.1.2 sport=40001 dport=5201 backup=0 ifindex=3",
            "[SF_ESTABLISHED] token=4a3b2c1d remid=0 locid=3 saddr4=10.0.3.1 daddr4=10.0.1.2 sport=40002 dport=5201 backup=0 ifindex=4",
            "[        CLOSED] token=4a3b2c1d",
            "unrelated noise",
        ];
        let report = MonitorReport::parse(lines.iter().map(|line| (*line).to_owned()).collect());
        assert_eq!(
            (
                report.connections,
                report.established,
                report.joins,
                report.closed
            ),
            (1, 1, 2, 1)
        );
        assert_eq!(report.subflows(), 3);
    }
}
