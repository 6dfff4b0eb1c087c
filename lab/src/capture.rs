//! tcpdump in a lab namespace, with its own packet counts.

use std::{
    io::{BufRead as _, BufReader},
    marker::PhantomData,
    path::Path,
    process::{Command, Stdio},
    sync::mpsc,
    thread::{self, JoinHandle},
    time::Duration,
};

use nix::sys::signal::Signal;

use crate::{Lab, LabError, Side, command::ChildGuard};

impl Lab {
    /// Starts tcpdump in a host's namespace and returns once it listens.
    pub fn start_capture(&self, spec: &CaptureSpec<'_>) -> Result<Capture<'_>, LabError> {
        Capture::start(self.namespace(spec.side), spec)
    }

    /// Starts tcpdump at both ends at once for a two-capture analysis: on `any` (link type
    /// `LINUX_SLL2`) in the client's namespace and in the server's, TCP only, keeping
    /// `snaplen` bytes of each packet (0: all). With `--immediate-mode` libpcap uses fixed
    /// ring frames of the snaplen, so the default (262144) leaves few frames in the buffer
    /// and a loaded machine loses packets: for whole packets with offloads off (at most one
    /// MTU), pass a snaplen above it, such as 2048 (8 MiB of buffer then hold 4096 packets,
    /// more than a lab transfer of a few MB sends). A host captures its outgoing packets after its
    /// own qdisc, so with a router in between the two files differ only by what the router
    /// did (delay, drops, NAT).
    pub fn start_two_ended_capture(
        &self,
        client_file: &Path,
        server_file: &Path,
        snaplen: u32,
    ) -> Result<TwoEndedCapture<'_>, LabError> {
        let spec = |side, file| CaptureSpec {
            side,
            interface: "any",
            snaplen,
            file,
            link_type: Some("LINUX_SLL2"),
            filter: Some("tcp"),
            buffer_kib: Some(8 * 1024),
        };
        let client = self.start_capture(&spec(Side::Client, client_file))?;
        let server = self.start_capture(&spec(Side::Server, server_file))?;
        Ok(TwoEndedCapture { client, server })
    }
}

/// tcpdump running in both hosts' namespaces ([`Lab::start_two_ended_capture`]).
#[derive(Debug)]
pub struct TwoEndedCapture<'lab> {
    pub client: Capture<'lab>,
    pub server: Capture<'lab>,
}

impl TwoEndedCapture<'_> {
    /// Stops both (see [`Capture::stop`]): (client's counts, server's counts).
    pub fn stop(self) -> Result<(CaptureCounts, CaptureCounts), LabError> {
        let client = self.client.stop();
        let server = self.server.stop();
        Ok((client?, server?))
    }
}

/// What tcpdump should capture.
#[derive(Debug, Clone)]
pub struct CaptureSpec<'a> {
    pub side: Side,
    /// An interface of that host, or `any`.
    pub interface: &'a str,
    /// Bytes kept of each packet (`-s`); 0 means tcpdump's default (the whole packet).
    pub snaplen: u32,
    pub file: &'a Path,
    /// `-y` link type, e.g. `LINUX_SLL2` for `any`.
    pub link_type: Option<&'a str>,
    /// A pcap filter expression, if any.
    pub filter: Option<&'a str>,
    /// `-B`: the capture buffer in KiB (`None`: tcpdump's default, 2 MiB), for a capture that
    /// must keep up with a fast transfer.
    pub buffer_kib: Option<u32>,
}

/// A running tcpdump.
#[derive(Debug)]
pub struct Capture<'lab> {
    namespace: String,
    interface: String,
    child: ChildGuard,
    stderr_reader: Option<JoinHandle<Vec<String>>>,
    /// The "listening on …, link-type …" line.
    listening: String,
    _lab: PhantomData<&'lab Lab>,
}

/// tcpdump's own counts, printed when it stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureCounts {
    pub captured: u64,
    pub received_by_filter: u64,
    pub dropped_by_kernel: u64,
    /// The link type tcpdump announced, e.g. `EN10MB (Ethernet)`.
    pub link_type: String,
}

impl Capture<'_> {
    fn start(namespace: &str, spec: &CaptureSpec<'_>) -> Result<Self, LabError> {
        let snaplen = spec.snaplen.to_string();
        let file = spec.file.to_string_lossy().into_owned();
        // -Z root: Debian's tcpdump drops to user tcpdump, which may not write `file`.
        // -U: write each packet at once so that the file is complete when tcpdump stops.
        // --immediate-mode: hand over each packet at once; otherwise packets waiting in a
        // TPACKET_V3 block when SIGINT comes count as "received by filter" but are not written.
        let mut args = vec![
            "netns",
            "exec",
            namespace,
            "tcpdump",
            "-Z",
            "root",
            "-U",
            "--immediate-mode",
            "-n",
            "-i",
            spec.interface,
        ];
        if spec.snaplen != 0 {
            args.extend(["-s", &snaplen]);
        }
        let buffer_kib = spec.buffer_kib.map(|kib| kib.to_string());
        if let Some(buffer_kib) = &buffer_kib {
            args.extend(["-B", buffer_kib]);
        }
        if let Some(link_type) = spec.link_type {
            args.extend(["-y", link_type]);
        }
        args.extend(["-w", &file]);
        if let Some(filter) = spec.filter {
            args.push(filter);
        }
        let command = format!("ip {}", args.join(" "));
        let error = |detail: String| LabError::Capture {
            interface: spec.interface.to_owned(),
            namespace: namespace.to_owned(),
            detail,
        };
        let mut child = Command::new("ip")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| LabError::Spawn {
                command: command.clone(),
                source,
            })?;
        let stderr = child.stderr.take();
        let (listening_tx, listening_rx) = mpsc::channel();
        let stderr_reader = thread::spawn(move || {
            let mut lines = Vec::new();
            if let Some(stderr) = stderr {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if line.contains("listening on") {
                        let _ = listening_tx.send(line.clone());
                    }
                    lines.push(line);
                }
            }
            lines
        });
        let timeout = Duration::from_secs(10);
        let Ok(listening) = listening_rx.recv_timeout(timeout) else {
            let _ = child.kill();
            let status = child
                .wait()
                .map(|status| status.to_string())
                .unwrap_or_default();
            let stderr = stderr_reader.join().unwrap_or_default().join("\n");
            return Err(error(format!(
                "`{command}` did not start listening within {timeout:?} ({status}): {stderr}"
            )));
        };
        Ok(Self {
            namespace: namespace.to_owned(),
            interface: spec.interface.to_owned(),
            child: ChildGuard::new(child),
            stderr_reader: Some(stderr_reader),
            listening,
            _lab: PhantomData,
        })
    }

    /// Stops tcpdump with SIGINT, waits for it and checks that it captured every packet the
    /// filter received.
    pub fn stop(self) -> Result<CaptureCounts, LabError> {
        let error = self.error_maker();
        let counts = self.stop_counting()?;
        if counts.captured != counts.received_by_filter || counts.dropped_by_kernel != 0 {
            return Err(error(format!(
                "lost packets: {} captured, {} received by filter, {} dropped by kernel",
                counts.captured, counts.received_by_filter, counts.dropped_by_kernel
            )));
        }
        Ok(counts)
    }

    fn error_maker(&self) -> impl Fn(String) -> LabError + use<> {
        let (interface, namespace) = (self.interface.clone(), self.namespace.clone());
        move |detail| LabError::Capture {
            interface: interface.clone(),
            namespace: namespace.clone(),
            detail,
        }
    }

    /// Stops tcpdump with SIGINT, waits for it and returns its counts, also when it lost
    /// packets (a test that compares against the capture allows for `dropped_by_kernel`).
    pub fn stop_counting(mut self) -> Result<CaptureCounts, LabError> {
        let error = self.error_maker();
        // `ip netns exec` execs tcpdump, so the child's pid is tcpdump's.
        let status = self
            .child
            .signal_and_wait(Signal::SIGINT)
            .ok_or_else(|| error("already stopped".into()))?
            .map_err(|source| error(format!("waiting for tcpdump: {source}")))?;
        let lines = self
            .stderr_reader
            .take()
            .map(JoinHandle::join)
            .transpose()
            .map_err(|_| LabError::ThreadPanicked("tcpdump stderr reader"))?
            .unwrap_or_default();
        let count = |suffix: &str| {
            lines.iter().find_map(|line| {
                line.strip_suffix(suffix)
                    .and_then(|number| number.trim().parse::<u64>().ok())
            })
        };
        let (Some(captured), Some(received_by_filter), Some(dropped_by_kernel)) = (
            count(" packets captured"),
            count(" packets received by filter"),
            count(" packets dropped by kernel"),
        ) else {
            return Err(error(format!(
                "no packet counts in its output ({status}): {}",
                lines.join("\n")
            )));
        };
        let link_type = self
            .listening
            .split("link-type ")
            .nth(1)
            .and_then(|rest| rest.split(", snapshot").next())
            .unwrap_or_default()
            .to_owned();
        Ok(CaptureCounts {
            captured,
            received_by_filter,
            dropped_by_kernel,
            link_type,
        })
    }
}
